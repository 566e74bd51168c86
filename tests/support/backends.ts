// The product backends this machine can run. Missing ones are skipped on a user's machine (with the
// reason printed) but fail the run when CI=true: CI must exercise WebGPU and threaded WASM for real.
import type { Backend } from '../../src/backend/backend.js';
import { createBackend } from '../../src/backend/select.js';
import { nodePlatform } from '../../src/node.js';

export interface NamedBackend {
  name: string;
  backend: Backend;
}

const inCI = process.env.CI === 'true' || process.env.CI === '1';

export async function productBackends(): Promise<{ available: NamedBackend[]; missing: string[] }> {
  const available: NamedBackend[] = [];
  const missing: string[] = [];
  const platform = nodePlatform({ threads: 2 });
  try {
    available.push({ name: 'webgpu', backend: (await createBackend('webgpu', platform)).backend });
  } catch (e) {
    missing.push(`webgpu: ${(e as Error).message}`);
  }
  try {
    const { backend } = await createBackend('wasm', platform, { threads: 2 });
    const threads = Number(backend.describe().threads ?? 1);
    if (threads < 2) missing.push(`wasm threads: only ${threads} thread could start`);
    available.push({ name: `wasm(${threads} threads)`, backend });
  } catch (e) {
    missing.push(`wasm: ${(e as Error).message}`);
  }
  if (missing.length) {
    const msg = `backends unavailable on this machine:\n  ${missing.join('\n  ')}`;
    if (inCI) throw new Error(`CI=true requires every product backend; ${msg}`);
    console.warn(`[skip] ${msg}`);
  }
  return { available, missing };
}

/** Seeded host data (mulberry32), identical for every backend. */
export function hostRandom(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  }
  return out;
}

/** Asserts |got − want| ≤ atol + rtol·|want| elementwise, reporting the worst element. */
export function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string, atol = 1e-5, rtol = 1e-4): void {
  if (got.length !== want.length) throw new Error(`${what}: length ${got.length} ≠ expected ${want.length}`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i];
    const w = want[i];
    if (Number.isNaN(w) ? !Number.isNaN(g) : !(Math.abs(g - w) <= atol + rtol * Math.abs(w)) && !(g === w)) {
      const excess = Number.isFinite(g - w) ? Math.abs(g - w) : Infinity;
      if (worst < 0 || excess > worstExcess) { worst = i; worstExcess = excess; }
    }
  }
  if (worst >= 0) {
    throw new Error(`${what}: element ${worst} is ${got[worst]}, expected ${want[worst]} (atol ${atol}, rtol ${rtol})`);
  }
}
