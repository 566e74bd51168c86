// What the kernel launcher modules (core kernels, model kernels, attention, small-M matmul) need from
// WebGPUBackend, without reaching into its private state: the backend's own storages, the pipeline cache,
// dispatch recording and the device facts that pick kernel variants.
import { type DType, KernelError, type Storage, storageBytes } from '../types.js';

export interface GPUStorageRef {
  readonly dtype: DType;
  readonly size: number;
  readonly buffer: GPUBuffer;
  /** A window into a larger storage (windows_webgpu.ts windowOf): where it starts in the buffer, in bytes. */
  readonly byteOffset?: number;
}

/** What a launch binds for a storage: the whole buffer, or the window a windowOf ref covers. */
export function bindingOf(ref: GPUStorageRef): GPUBuffer | GPUBufferBinding {
  if (ref.byteOffset === undefined) return ref.buffer;
  const bytes = storageBytes(ref.dtype, ref.size);
  return { buffer: ref.buffer, offset: ref.byteOffset, size: Math.max(4, bytes) };
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
  /** Storage buffers one dispatch may bind (multi-tensor kernels bind several tensors at once). */
  readonly maxStorageBuffers: number;
  /** CPU rasteriser (llvmpipe, SwiftShader, WARP): barrier-free, load-frugal kernels win there. */
  readonly software: boolean;
  /** Subgroup size when the device has the feature and a single fixed size (llvmpipe: 8); else 0. */
  readonly fixedSubgroupSize: number;
  /** Kernel variant overrides (tests, tuning). */
  readonly variants: KernelVariants;
  /** Smallest subgroup size of the device; 0 without the 'subgroups' feature. */
  readonly subgroupMinSize: number;
  /** The matmul kernel choice (adapter.ts pickMatmulConfig, overridable). */
  readonly matmul: MatmulConfig;
  /** The most bytes one binding may cover (maxStorageBufferBindingSize, or a smaller test override): larger
   *  storages (up to maxBufferSize) are bound in windows by the kernels that can (windows_webgpu.ts). */
  readonly maxBindingBytes: number;
  /** Byte alignment of a binding's offset (minStorageBufferOffsetAlignment). */
  readonly bindingAlignment: number;

  /** Checks the backend is usable and registers `name` for error attribution; returns it. */
  kernel(name: string): string;
  /**
   * The storage as this backend's own, live one (throws a KernelError naming `kernel` otherwise); a 16-bit
   * (bfloat16 / float16) one only with `acceptHalf` (matmul's B, gather's table, cast).
   */
  gpuStorage(x: Storage, kernel: string, acceptHalf?: boolean): GPUStorageRef;
  /**
   * Like gpuStorage, but also for a storage larger than one binding may cover (only the windowed kernels ask:
   * they bind it in windows, windows_webgpu.ts); `oversized` says which it is.
   */
  gpuStorageAnySize(x: Storage, kernel: string, acceptHalf?: boolean): GPUStorageRef & { oversized: boolean };
  pipeline(family: string, entry: string, tpl: Record<string, number>, kernel: string): PipelineRef;
  /** Records a dispatch; `buffers` bind at 1, 2, … after the uniform at 0 (whole, or a window: bindingOf). */
  launch(kernel: string, pipeline: PipelineRef, fill: (slot: UniformSlot) => void, buffers: (GPUBuffer | GPUBufferBinding)[], groups: Groups): void;
  /** Defers `item` into a run that one launch serves (see Dispatcher.coalesce). */
  coalesce<T>(key: readonly unknown[], item: T, emit: (items: T[]) => void): void;
  /** Grid for n work items of `wg` each, spilling into y past the per-dimension limit. */
  groups1d(n: number, kernel: string, wg?: number): [number, number, number];
  /** A temporary whose contents are unspecified (the launchers write it completely before reading). */
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
  /**
   * Optimizer kernels: true records runs of consecutive adamw / sumSquares calls as multi-tensor dispatches
   * (optimizer_multi.wgsl), false one launch per call. Default: true on GPUs (where the device's storage-binding
   * limit allows), false on CPU rasterisers (cheap dispatches; the multi kernels' per-invocation tensor choice
   * costs more there than the dispatches it saves).
   */
  multiTensor?: boolean;
}

/** The named storages as this backend's own (null stays null), resolved in the order given. */
export function gpuStorages<T extends Record<string, Storage | null>>(
  host: KernelHost, kernel: string, storages: T,
): { [Name in keyof T]: T[Name] extends Storage ? GPUStorageRef : GPUStorageRef | null } {
  const resolved: Record<string, GPUStorageRef | null> = {};
  for (const [name, storage] of Object.entries(storages)) resolved[name] = storage ? host.gpuStorage(storage, kernel) : null;
  return resolved as { [Name in keyof T]: T[Name] extends Storage ? GPUStorageRef : GPUStorageRef | null };
}

/** Throws when an output shares its buffer with any other operand (outputs are bound writable). */
export function requireNoAlias(kernel: string, outputs: Record<string, GPUStorageRef>, inputs: Record<string, GPUStorageRef | null>): void {
  const outs = Object.entries(outputs);
  for (const [i, [name, output]] of outs.entries()) {
    for (const [other, storage] of [...outs.slice(i + 1), ...Object.entries(inputs)]) {
      if (storage && storage.buffer === output.buffer) throw new KernelError(kernel, `${name} must not alias ${other}`);
    }
  }
}

export interface MatmulConfig {
  /**
   * 'tiled': workgroup-memory tiles (GPUs). 'direct': no workgroup memory, no barriers, a row block per
   * workgroup (CPU rasterisers). 'subgroups': 'direct' with the rows of A shared by subgroupBroadcast
   * (TM a multiple of 8; used only with subgroups of ≥ 8 lanes, else 'direct'). The vec4 variants fall back
   * to the scalar 'direct' kernel where their alignment conditions do not hold.
   */
  kind: 'tiled' | 'direct' | 'subgroups';
  /** Few-row (m ≤ 8 on CPU rasterisers, ≤ 16 on GPUs) and few-column (n ≤ 4) products take the split-K
   *  small-output kernel (matmul_small.wgsl); false keeps them on `kind` (default true). */
  small?: boolean;
  WX: number;
  WY: number;
  TM: number;
  BK: number;
}
