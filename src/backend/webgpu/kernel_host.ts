// What the kernel launcher modules (model kernels, attention, small-M matmul) need from WebGPUBackend,
// without reaching into its private state: validated storages, the pipeline cache, dispatch recording and
// the device facts that pick kernel variants.
import { type DType, type Storage, type View, KernelError } from '../backend.js';

export interface GPUStorageRef {
  readonly dtype: DType;
  readonly size: number;
  readonly buffer: GPUBuffer;
}

export interface PipelineRef {
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
}

/** A dispatch's 256-byte uniform block, zero-filled, seen as u32 / f32 / i32 words. */
export interface UniformSlot {
  u: Uint32Array;
  f: Float32Array;
  i: Int32Array;
}

export type Groups = readonly [number, number, number];

export interface KernelHost {
  /** Workgroup size of the 1-D kernels (a power of two ≤ 256 within the device limits). */
  readonly wg: number;
  readonly maxInvocations: number;
  readonly maxWorkgroupsPerDim: number;
  readonly maxWorkgroupStorage: number;
  /** CPU rasteriser (llvmpipe, SwiftShader, WARP): barrier-free, load-frugal kernels win there. */
  readonly software: boolean;
  /** Subgroup size when the device has the feature and a single fixed size (llvmpipe: 8); else 0. */
  readonly fixedSubgroupSize: number;
  /** Kernel variant overrides (tests, tuning). */
  readonly variants: KernelVariants;

  /** Checks the backend is usable and registers `name` for error attribution; returns it. */
  kernel(name: string): string;
  /** Validates a storage of this backend (not freed). */
  st(x: Storage, kernel: string): GPUStorageRef;
  pipeline(family: string, entry: string, tpl: Record<string, number>, kernel: string): PipelineRef;
  /** Records a dispatch; `buffers` bind at 1, 2, … after the uniform at 0. */
  launch(kernel: string, pe: PipelineRef, fill: (s: UniformSlot) => void, buffers: GPUBuffer[], groups: Groups): void;
  /** Grid for n work items of `wg` each, spilling into y past the per-dimension limit. */
  groups1d(n: number, kernel: string, wg?: number): [number, number, number];
  /** Writes shape, strides and offsets of up to three views into the elementwise uniform block layout. */
  stridedParams(kernel: string, shape: readonly number[], views: readonly View[]): (s: UniformSlot) => void;
  alloc(dtype: DType, size: number): Storage;
  upload(dtype: DType, data: ArrayLike<number>): Storage;
  /** Uploads a table the backend keeps for its lifetime (not counted as a live user buffer). */
  uploadConstant(dtype: DType, data: ArrayLike<number>): Storage;
  free(x: Storage): void;
}

export interface KernelVariants {
  /**
   * Row-wise kernels (log-softmax-gather, RMSNorm): 'rows' runs one invocation per row without workgroup
   * memory (CPU rasterisers), 'tree' one workgroup per row with a workgroup-memory reduction (GPUs).
   * Default: 'rows' on software adapters when there are enough rows to fill the lanes.
   */
  rowReduce?: 'rows' | 'tree';
  /**
   * Attention kernels: 'subgroups' (CPU rasterisers with fixed 8-or-more-lane subgroups: lanes share rows
   * through subgroupBroadcast, no workgroup memory) or 'tiled' (key / query tiles in workgroup memory, one
   * invocation per row: GPUs, and devices without subgroups). Default: by adapter.
   */
  attention?: 'subgroups' | 'tiled';
}

/** Throws unless `s` holds at least `n` elements of `dtype`. */
export function requireStorage(kernel: string, what: string, s: GPUStorageRef, n: number, dtype: DType = 'float32'): void {
  if (s.dtype !== dtype) throw new KernelError(kernel, `${what} must be ${dtype}, got ${s.dtype}`);
  if (s.size < n) throw new KernelError(kernel, `${what} has ${s.size} elements, needs ${n}`);
}

/** Throws when an output shares its buffer with any other operand (outputs are bound writable). */
export function requireNoAlias(kernel: string, outputs: Record<string, GPUStorageRef>, inputs: Record<string, GPUStorageRef | null>): void {
  const outs = Object.entries(outputs);
  for (const [i, [name, o]] of outs.entries()) {
    for (const [other, s] of [...outs.slice(i + 1), ...Object.entries(inputs)]) {
      if (s && s.buffer === o.buffer) throw new KernelError(kernel, `${name} must not alias ${other}`);
    }
  }
}

/** Throws unless every value is a non-negative integer (shapes and counts from the caller). */
export function requireCounts(kernel: string, counts: Record<string, number>): void {
  for (const [name, v] of Object.entries(counts)) {
    if (!Number.isInteger(v) || v < 0) throw new KernelError(kernel, `${name} must be a non-negative integer, got ${v}`);
  }
}
