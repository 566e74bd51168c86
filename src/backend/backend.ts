// The Backend interface: storage management plus one method per kernel family.
// Every product backend (WebGPU, WASM) and the float64 reference implement it; the tensor layer above
// never knows which one it talks to. Kernels are enqueue-style and synchronous to call; only `read` is
// asynchronous, so GPU backends can batch dispatches and read back without blocking.
// The fused model kernels are one object per backend, `backend.kernels` (contract: model_kernels.ts).

import type { ModelKernels } from './model_kernels.js';
import type {
  BackendName, DType, MatmulArgs, MemoryStats, RandomArgs, Storage, View,
} from './types.js';
import type { BinaryOp, ReduceOp, UnaryOp } from './ops.js';

export type { ModelKernels } from './model_kernels.js';
export * from './types.js';

// Op names, their numeric kernel codes and cost classes live in one table (ops.ts), which also generates the
// kernel-side constants; re-exported here so the backend interface stays the one import for callers.
export type { BinaryOp, ReduceOp, UnaryOp } from './ops.js';
export { BINARY_CODE, BINARY_OPS, REDUCE_CODE, REDUCE_OPS, UNARY_CODE, UNARY_OPS } from './ops.js';

export interface Backend {
  readonly name: BackendName;
  /** Human-readable detail of what runs the kernels (adapter, threads, SIMD). */
  describe(): Record<string, unknown>;

  /** A zero-filled storage of `size` elements. */
  alloc(dtype: DType, size: number): Storage;
  /** Optional: like alloc, contents unspecified (for outputs a kernel writes completely; skips zeroing). */
  allocUninitialized?(dtype: DType, size: number): Storage;
  /**
   * A storage holding `data`. bfloat16 / float16: a Uint16Array is taken as the raw 16-bit patterns, any other
   * array as values rounded (to nearest even, from float32) to the format.
   */
  upload(dtype: DType, data: ArrayLike<number>): Storage;
  /** Resolves with a copy of the storage contents (float32 backends: Float32Array; int32: Int32Array; 16-bit
   *  storages: their values widened to float32, or float64 on the reference). */
  read(s: Storage): Promise<Float32Array | Int32Array | Float64Array>;
  free(s: Storage): void;
  memory(): MemoryStats;
  /** The fused transformer kernels (model_kernels.ts), validated against the signature table. */
  readonly kernels: ModelKernels;
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
