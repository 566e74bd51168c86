// A WebGPU backend next to the float64 reference: the same data uploaded to both, outputs read from both.
import type { DType, Storage } from '../../src/backend/backend.js';
import type { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import type { WebGPUBackend } from '../../src/backend/webgpu/webgpu_backend.js';

// Earlier names of the shared helpers, kept for the tests that still import them from here.

export interface Pair { gpu: WebGPUBackend; ref: ReferenceBackend }

/** Uploads the same data to both backends. */
export function up(p: Pair, dtype: DType, data: ArrayLike<number>): [Storage, Storage] {
  return [p.gpu.upload(dtype, data), p.ref.upload(dtype, data)];
}

/** Allocates an output of n elements on both backends. */
export function allocBoth(p: Pair, n: number, dtype: DType = 'float32'): [Storage, Storage] {
  return [p.gpu.alloc(dtype, n), p.ref.alloc(dtype, n)];
}

/** Reads an output from both backends: the GPU's float32 (or int32) next to the reference's float64. */
export async function readBoth(p: Pair, gpu: Storage, ref: Storage): Promise<[Float32Array | Int32Array, Float64Array | Int32Array]> {
  return [await p.gpu.read(gpu) as Float32Array | Int32Array, await p.ref.read(ref) as Float64Array | Int32Array];
}
