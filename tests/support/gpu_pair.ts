// Shared helpers of the WebGPU kernel tests: seeded data, a GPU/reference backend pair, tolerant comparison.
import { expect } from 'vitest';
import type { DType, Storage } from '../../src/backend/backend.js';
import type { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import { mix32, uniformAt } from '../../src/backend/rng.js';
import type { WebGPUBackend } from '../../src/backend/webgpu/webgpu_backend.js';

/** Deterministic float32 test data. */
export function rand(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  const key = mix32(seed);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * uniformAt(key, i);
  return out;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i])) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** |got − want| ≤ rtol·(|want| + 1e-2·scale) + 1e-2·rtol·scale, scale = max |want| (or atolScale). */
export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string, rtol = 1e-4, atolScale?: number): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  const scale = atolScale ?? Math.max(1, maxAbs(want));
  for (let i = 0; i < want.length; i++) {
    const g = got[i];
    const w = want[i];
    if (Number.isNaN(w)) { expect(Number.isNaN(g), `${what}[${i}]: want NaN got ${g}`).toBe(true); continue; }
    if (!Number.isFinite(w)) { expect(g, `${what}[${i}]`).toBe(w); continue; }
    const tol = rtol * Math.max(Math.abs(w), scale * 1e-2) + rtol * 1e-2 * scale;
    if (!(Math.abs(g - w) <= tol)) throw new Error(`${what}[${i}]: got ${g}, want ${w} (tol ${tol.toExponential(2)})`);
  }
}

export interface Pair { gpu: WebGPUBackend; ref: ReferenceBackend }

/** Uploads the same data to both backends. */
export function up(p: Pair, dtype: DType, data: ArrayLike<number>): [Storage, Storage] {
  return [p.gpu.upload(dtype, data), p.ref.upload(dtype, data)];
}
