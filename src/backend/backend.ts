// The Backend interface: storage management plus one method per kernel family.
// Every product backend (WebGPU, WASM) and the float64 reference implement it; the tensor layer above
// never knows which one it talks to. Kernels are enqueue-style and synchronous to call; only `read` is
// asynchronous, so GPU backends can batch dispatches and read back without blocking.

import type { ModelKernels } from './model_kernels.js';
import type { BinaryOp, ReduceOp, UnaryOp } from './ops.js';

export type { AdamWArgs, AttentionArgs, ModelKernels, RopeArgs } from './model_kernels.js';

export type DType = 'float32' | 'int32';
export const DTYPES: readonly DType[] = ['float32', 'int32'];
export const BYTES_PER_ELEMENT: Record<DType, number> = { float32: 4, int32: 4 };

export type BackendName = 'webgpu' | 'wasm' | 'reference';

/** Opaque handle to a backend allocation of `size` elements of `dtype`. */
export interface Storage {
  readonly backend: BackendName;
  readonly dtype: DType;
  readonly size: number;
}

// Op names, their numeric kernel codes and cost classes live in one table (ops.ts), which also generates the
// kernel-side constants; re-exported here so the backend interface stays the one import for callers.
export type { BinaryOp, ReduceOp, UnaryOp } from './ops.js';
export { BINARY_CODE, BINARY_OPS, REDUCE_CODE, REDUCE_OPS, UNARY_CODE, UNARY_OPS } from './ops.js';

/** Highest tensor rank the strided kernels accept. */
export const MAX_RANK = 6;

/**
 * A strided view used by elementwise kernels: element at multi-index i of the output shape reads
 * `offset + Σ i[d]·strides[d]`. A stride of 0 broadcasts; arbitrary strides express permute and slice.
 */
export interface View {
  readonly strides: readonly number[];
  readonly offset: number;
}

export interface MatmulArgs {
  /** Number of independent matrix products. */
  batch: number;
  m: number;
  n: number;
  k: number;
  /** a is stored [k, m] (per batch) and read transposed. */
  transA: boolean;
  /** b is stored [n, k] (per batch) and read transposed. */
  transB: boolean;
  /** Element strides between consecutive batches of a and b (0 broadcasts one matrix over the batch). */
  strideA: number;
  strideB: number;
}

export interface RandomArgs {
  kind: 'uniform' | 'normal';
  seed: number;
  /** uniform: [low, high); normal: mean, std. */
  a: number;
  b: number;
}

export interface MemoryStats {
  liveBytes: number;
  peakBytes: number;
  liveBuffers: number;
}

export interface Backend extends ModelKernels {
  readonly name: BackendName;
  /** Human-readable detail of what runs the kernels (adapter, threads, SIMD). */
  describe(): Record<string, unknown>;

  alloc(dtype: DType, size: number): Storage;
  /** Optional: like alloc, contents unspecified (for outputs a kernel writes completely; skips zeroing). */
  allocUninitialized?(dtype: DType, size: number): Storage;
  upload(dtype: DType, data: ArrayLike<number>): Storage;
  /** Resolves with a copy of the storage contents (float32 backends: Float32Array; int32: Int32Array). */
  read(s: Storage): Promise<Float32Array | Int32Array | Float64Array>;
  free(s: Storage): void;
  memory(): MemoryStats;
  /** Waits until all enqueued work has finished. */
  sync(): Promise<void>;
  /** Releases every resource (device, workers). The backend is unusable afterwards. */
  destroy(): void;

  // ---- kernels: `out` is always a contiguous storage of the output size, written completely ----
  // Dtypes: unary/binary/where/reduce/matmul/softmax/random/gather-table/scatterAdd read and write float32
  // only (the tensor layer casts int32 first); ids are int32; fill/arange/copy/cast work on both dtypes
  // (copy moves raw 32-bit words). Views' strides and offsets are non-negative element counts.
  fill(out: Storage, value: number): void;
  arange(out: Storage, start: number, step: number): void;
  random(out: Storage, args: RandomArgs): void;
  /** Cast between dtypes (float32 → int32 truncates toward zero). */
  cast(x: Storage, out: Storage): void;
  /** out[i] = op(x[view(i)], scalar) over `shape`. */
  unary(op: UnaryOp, x: Storage, xView: View, out: Storage, shape: readonly number[], scalar: number): void;
  /** out[i] = op(a[viewA(i)], b[viewB(i)]) over `shape`; comparisons yield 1 or 0. */
  binary(op: BinaryOp, a: Storage, aView: View, b: Storage, bView: View, out: Storage, shape: readonly number[]): void;
  /** out[i] = cond[viewC(i)] != 0 ? a[viewA(i)] : b[viewB(i)]. */
  where(cond: Storage, cView: View, a: Storage, aView: View, b: Storage, bView: View, out: Storage, shape: readonly number[]): void;
  /** Copies a strided view of x into out[outOffset + contiguous index] (permute, slice, broadcast, concat). */
  copy(x: Storage, xView: View, out: Storage, outOffset: number, shape: readonly number[]): void;
  /** x viewed as [outer, len, inner] contiguous; out[o, i] = op over len. */
  reduce(op: ReduceOp, x: Storage, out: Storage, outer: number, len: number, inner: number): void;
  /** out[b] = opA(a[b]) · opB(b[b]) with out contiguous [batch, m, n]. */
  matmul(a: Storage, b: Storage, out: Storage, args: MatmulArgs): void;
  /** x viewed as [rows, cols] contiguous; (log-)softmax along cols. */
  softmax(x: Storage, out: Storage, rows: number, cols: number, log: boolean): void;
  /** out[r, :] = table[ids[r], :] for r < nIds; ids is int32; rowLen = table columns. */
  gather(table: Storage, ids: Storage, out: Storage, nIds: number, rowLen: number): void;
  /** out[ids[r], :] += src[r, :] (out must be pre-filled; duplicates accumulate). */
  scatterAdd(src: Storage, ids: Storage, out: Storage, nIds: number, rowLen: number): void;
}

/** Contiguous row-major strides of a shape. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d];
  }
  return strides;
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function contiguousView(shape: readonly number[]): View {
  return { strides: contiguousStrides(shape), offset: 0 };
}

/**
 * Collapses adjacent dimensions that are contiguous in every view, so kernels run fewer index
 * computations (a fully contiguous elementwise op becomes rank 1). Returns the reduced shape and views.
 */
export function coalesce(shape: readonly number[], views: readonly View[]): { shape: number[]; views: View[] } {
  const outShape: number[] = [];
  const outStrides: number[][] = views.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && views.every((v, i) => outStrides[i][last] === v.strides[d] * shape[d])) {
      outShape[last] *= shape[d];
      views.forEach((v, i) => { outStrides[i][last] = v.strides[d]; });
    } else {
      outShape.push(shape[d]);
      views.forEach((v, i) => outStrides[i].push(v.strides[d]));
    }
  }
  if (outShape.length === 0) {
    outShape.push(1);
    outStrides.forEach((s) => s.push(1));
  }
  return { shape: outShape, views: views.map((v, i) => ({ strides: outStrides[i], offset: v.offset })) };
}

/** Error raised by a backend kernel, naming the kernel so failures are traceable. */
export class KernelError extends Error {
  constructor(readonly kernel: string, message: string) {
    super(`kernel '${kernel}': ${message}`);
    this.name = 'KernelError';
  }
}
