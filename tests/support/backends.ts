// The product backends this machine can run. Missing ones are skipped on a user's machine (with the
// reason printed) but fail the run when CI=true: CI must exercise WebGPU and threaded WASM for real.
import type { Backend } from '../../src/backend/backend.js';
import { createBackend } from '../../src/backend/select.js';
import { nodePlatform } from '../../src/node.js';

// Kept here for the tests that import them with the backends; they live in random.ts and close.ts.

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
