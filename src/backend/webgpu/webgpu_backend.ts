// The WebGPU backend: platform-neutral (no Node imports). Device acquisition lives in adapter.ts (with
// node_gpu.ts and browser_gpu.ts finding the GPU object); dispatch recording and batching in dispatch.ts;
// the kernel launchers in core_kernels_webgpu.ts, model_kernels_webgpu.ts and attention_webgpu.ts. This
// class owns the device and the storages, and hands the launchers a KernelHost.
//
// Uploads go into buffers that no unsubmitted work can reference (freed buffers come back when the batch that last
// used them is submitted, and the queue orders a later writeBuffer after it), so queue.writeBuffer never overtakes
// encoded work.
import type { Backend, BinaryOp, ReduceOp, UnaryOp } from '../backend.js';
import { type ModelKernels, validatedKernels } from '../model_kernels.js';
import { packHalf, unpackHalf } from '../half.js';
import {
  type DType, KernelError, type MatmulArgs, type MemoryStats, type RandomArgs, type Storage, type View, halfStorageMessage, isHalfDType,
  storageBytes,
} from '../types.js';
import {
  type AdapterInfoLike, type DeviceLimits, acquireDevice, isSoftwareAdapter, pickMatmulConfig, readAdapterFacts, readLimits,
} from './adapter.js';
import { BufferPool, sizeClass } from './buffer_pool.js';
import * as core from './core_kernels_webgpu.js';
import { Dispatcher } from './dispatch.js';
import type { KernelHost, KernelVariants, MatmulConfig } from './kernel_host.js';
import { webgpuModelKernels } from './model_kernels_webgpu.js';
import * as windowed from './windows_webgpu.js';

export { type AdapterInfoLike, isSoftwareAdapter } from './adapter.js';
export type { MatmulConfig } from './kernel_host.js';
export { expandTemplate } from './wgsl_template.js';

// Numeric GPUBufferUsage / GPUMapMode flags (globals are not guaranteed under Node).
const USAGE_MAP_READ = 0x0001;
const USAGE_COPY_SRC = 0x0004;
const USAGE_COPY_DST = 0x0008;
const USAGE_STORAGE = 0x0080;
const MAP_READ = 0x0001;

export interface WebGPUBackendOptions {
  /** Request the adapter's maximum for the limits that matter (default true). False keeps the defaults
   *  (compatibility adapters: 128 invocations per workgroup), which tests use to exercise small limits. */
  requestMaxLimits?: boolean;
  /** Dispatches of the first batch after an idle submit (default 24). */
  batchDispatches?: number;
  /** While recording continues, each full batch doubles the next one's size up to this (default 256; at least
   *  batchDispatches; equal to it: fixed-size batches). */
  maxBatchDispatches?: number;
  /** Overrides the matmul kernel choice (tuning, tests). */
  matmul?: Partial<MatmulConfig>;
  /** Overrides the choice between kernel variants of the model kernels (tests, tuning). */
  variants?: KernelVariants;
  /** Caps the bytes one binding may cover below the device's maxStorageBufferBindingSize (tests: exercises the
   *  windowed kernels that bind larger storages piecewise at small sizes). */
  maxBindingBytes?: number;
  /** Upper bound of bytes kept in the free pool (default 512 MiB). */
  maxPooledBytes?: number;
  /** Informational: how the adapter was obtained (Dawn flags, 'navigator.gpu'). */
  source?: string;
  featureLevel?: 'core' | 'compatibility';
  /** The GPU object the adapter came from. Held until destroy(): Dawn tears its instance down when the
   *  object returned by `create()` is garbage-collected, even while devices are alive. */
  gpu?: GPU;
}

/**
 * Creates the device (requesting the adapter's maxima for the limits that matter) and wraps it.
 * `opts.adapter` is used when given; otherwise one is requested from `gpu` (core, then compatibility).
 */
export async function createWebGPUBackend(gpu: GPU, opts: WebGPUBackendOptions & { adapter?: GPUAdapter } = {}): Promise<WebGPUBackend> {
  const { adapter, device, featureLevel } = await acquireDevice(gpu, opts);
  return new WebGPUBackend(adapter, device, { ...opts, featureLevel, gpu });
}

class WebGPUStorage implements Storage {
  readonly backend = 'webgpu' as const;
  freed = false;
  constructor(readonly dtype: DType, readonly size: number, public buffer: GPUBuffer) {}
}

export class WebGPUBackend implements Backend {
  readonly name = 'webgpu' as const;
  private dev: GPUDevice | null;
  private adapter: GPUAdapter | null;
  private gpu: GPU | null;
  private readonly info: AdapterInfoLike;
  private readonly features: string[];
  private readonly featureLevel: 'core' | 'compatibility';
  /** Smallest and largest subgroup size of the device; 0 without the 'subgroups' feature. */
  private readonly subgroupMinSize: number;
  private readonly subgroupMaxSize: number;
  private readonly source: string | undefined;
  readonly limits: DeviceLimits;
  /** Workgroup size of the 1-D kernels (a power of two). */
  readonly wg: number;
  private readonly matmulConfig: MatmulConfig;
  private readonly variants: KernelVariants;

  private readonly storagePool: BufferPool;
  private readonly stagingPool: BufferPool;
  private readonly dispatcher: Dispatcher;
  /** The narrow view of this backend that the kernel launcher modules work through. */
  private readonly host: KernelHost;
  readonly kernels: ModelKernels;

  private live = 0;
  private peak = 0;
  private liveCount = 0;
  private constantBytes = 0;

  constructor(adapter: GPUAdapter, device: GPUDevice, opts: WebGPUBackendOptions = {}) {
    this.dev = device;
    this.adapter = adapter;
    this.gpu = opts.gpu ?? null;
    const facts = readAdapterFacts(adapter, device, opts.featureLevel);
    this.info = facts.info;
    this.features = facts.features;
    this.featureLevel = facts.featureLevel;
    this.subgroupMinSize = facts.subgroupMinSize;
    this.subgroupMaxSize = facts.subgroupMaxSize;
    this.variants = { ...opts.variants };
    this.source = opts.source;
    const deviceLimits = readLimits(device);
    const bindingCap = opts.maxBindingBytes;
    if (bindingCap !== undefined && !(Number.isInteger(bindingCap) && bindingCap >= 256 && bindingCap % 4 === 0)) {
      throw new KernelError('createWebGPUBackend', `maxBindingBytes must be a multiple of 4 of at least 256, got ${bindingCap}`);
    }
    this.limits = bindingCap === undefined ? deviceLimits
      : { ...deviceLimits, maxStorageBufferBindingSize: Math.min(deviceLimits.maxStorageBufferBindingSize, bindingCap) };
    const maxWg = Math.min(256, this.limits.maxComputeInvocationsPerWorkgroup, this.limits.maxComputeWorkgroupSizeX);
    this.wg = 2 ** Math.floor(Math.log2(maxWg));
    this.matmulConfig = { ...pickMatmulConfig(this.limits, isSoftwareAdapter(this.info), this.subgroupMinSize), ...opts.matmul };
    const batchDispatches = Math.max(1, Math.min(opts.batchDispatches ?? 24, 256));
    const maxBatchDispatches = Math.max(batchDispatches, Math.min(opts.maxBatchDispatches ?? 256, 1024));

    this.storagePool = new BufferPool(device, USAGE_STORAGE | USAGE_COPY_SRC | USAGE_COPY_DST, 'storage', opts.maxPooledBytes);
    this.stagingPool = new BufferPool(device, USAGE_MAP_READ | USAGE_COPY_DST, 'readback', 64 * 1024 * 1024);
    this.dispatcher = new Dispatcher(device, batchDispatches, maxBatchDispatches, this.limits.maxComputeWorkgroupsPerDimension, this.wg,
      (buffer) => this.storagePool.release(buffer));
    this.host = this.makeHost();
    this.kernels = validatedKernels(webgpuModelKernels(this.host));
  }

  // ---------------------------------------------------------------- describe / memory

  describe(): Record<string, unknown> {
    const software = isSoftwareAdapter(this.info);
    return {
      api: 'webgpu',
      vendor: this.info.vendor,
      architecture: this.info.architecture,
      device: this.info.device,
      description: this.info.description,
      isFallbackAdapter: this.info.isFallbackAdapter,
      software,
      featureLevel: this.featureLevel,
      features: this.features,
      limits: { ...this.limits },
      workgroupSize: this.wg,
      matmulTile: { ...this.matmulConfig },
      // Model kernels: attention 'subgroups' (barrier-free, subgroupBroadcast; head dims % 4 == 0) on CPU
      // rasterisers with a fixed subgroup size, else 'tiled' (workgroup memory); row reductions per invocation
      // ('rows') on CPU rasterisers, per workgroup ('tree') elsewhere.
      modelKernels: {
        attention: this.variants.attention
          ?? (software && this.subgroupMinSize >= 4 && this.subgroupMinSize === this.subgroupMaxSize ? 'subgroups' : 'tiled'),
        rowReduce: this.variants.rowReduce ?? (software ? 'rows' : 'tree'),
        multiTensor: this.variants.multiTensor ?? !software,
        subgroupSize: this.subgroupMinSize === this.subgroupMaxSize ? this.subgroupMinSize : [this.subgroupMinSize, this.subgroupMaxSize],
      },
      source: this.source,
    };
  }

  memory(): MemoryStats {
    return { liveBytes: this.live, peakBytes: this.peak, liveBuffers: this.liveCount };
  }

  /** Counters for diagnostics and tests. */
  stats(): Record<string, number> {
    return {
      dispatches: this.dispatcher.dispatches, submits: this.dispatcher.submits, pipelines: this.dispatcher.pipelineCount,
      buffersCreated: this.storagePool.created, buffersReused: this.storagePool.reused,
      pooledBytes: this.storagePool.bytes, uniformArenas: this.dispatcher.uniformArenaCount, constantBytes: this.constantBytes,
    };
  }

  /** Dispatches recorded so far, by kernel name (a copy; diff two snapshots to attribute a span). */
  dispatchCounts(): Record<string, number> {
    return Object.fromEntries(this.dispatcher.dispatchesByKernel);
  }

  /** The device (tests use it to simulate loss). Throws once the backend is destroyed. */
  get device(): GPUDevice {
    if (!this.dev) throw new KernelError('device', 'WebGPU backend was destroyed');
    return this.dev;
  }

  /** The storage as this backend's own, live one; one larger than a binding only with `anySize` (windowed kernels). */
  private own(x: Storage, kernel: string, acceptHalf = false, anySize = false): WebGPUStorage {
    if (!(x instanceof WebGPUStorage)) throw new KernelError(kernel, 'storage belongs to another backend');
    if (x.freed) throw new KernelError(kernel, 'storage was freed');
    if (!acceptHalf && isHalfDType(x.dtype)) throw new KernelError(kernel, halfStorageMessage(x.dtype));
    if (!anySize && this.oversized(x)) {
      throw new KernelError(kernel, `a ${x.dtype} storage of ${x.size} elements (${storageBytes(x.dtype, x.size)} bytes) exceeds the device's `
        + `maxStorageBufferBindingSize (${this.limits.maxStorageBufferBindingSize} bytes), and ${kernel} binds its operands whole; only `
        + `matmul's B operand, gather's table, fill, random, cast and read take storages that large (in windows)`);
    }
    return x;
  }

  private oversized(x: WebGPUStorage): boolean {
    return storageBytes(x.dtype, x.size) > this.limits.maxStorageBufferBindingSize;
  }

  // ---------------------------------------------------------------- storage

  /** A zero-filled storage (the Backend contract). Pool buffers keep old contents, so they are cleared by a fill
   *  dispatch recorded before any later use (core.zeroFill says why not queue.writeBuffer). */
  alloc(dtype: DType, size: number): Storage {
    const storage = this.allocUninitialized(dtype, size) as WebGPUStorage;
    if (size > 0) windowed.zeroFill(this.host, storage);
    return storage;
  }

  /** Like alloc with unspecified contents: kernel outputs and uploads write every element anyway. */
  allocUninitialized(dtype: DType, size: number): Storage {
    this.dispatcher.check('alloc');
    if (!Number.isInteger(size) || size < 0) throw new KernelError('alloc', `invalid size ${size}`);
    const bytes = storageBytes(dtype, size);
    // Past one binding, storages are bound in windows by the kernels that can (windows_webgpu.ts), so the cap is
    // the buffer size; such a buffer gets its exact size (the pool's size classes would round 544 MiB up to 640).
    const binding = this.limits.maxStorageBufferBindingSize;
    const cap = this.limits.maxBufferSize;
    if (bytes > cap) {
      throw new KernelError('alloc', `storage of ${size} ${dtype} elements (${bytes} bytes) exceeds the adapter's maxBufferSize (${cap} bytes)`);
    }
    const buffer = this.storagePool.acquire(sizeClass(bytes, bytes > binding ? bytes : binding));
    this.live += bytes;
    this.liveCount++;
    if (this.live > this.peak) this.peak = this.live;
    return new WebGPUStorage(dtype, size, buffer);
  }

  upload(dtype: DType, data: ArrayLike<number>): Storage {
    const storage = this.allocUninitialized(dtype, data.length) as WebGPUStorage;
    if (data.length > 0) {
      const words = dtype === 'int32'
        ? (data instanceof Int32Array ? data : Int32Array.from(data as ArrayLike<number>))
        : isHalfDType(dtype) ? packHalf(dtype, data)
          : (data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>));
      // A fresh or pool-returned buffer is referenced by no pending work, so this write cannot overtake any.
      this.device.queue.writeBuffer(storage.buffer, 0, words.buffer, words.byteOffset, words.byteLength);
    }
    return storage;
  }

  /**
   * A buffer the backend itself keeps for its lifetime (lookup tables): kept out of the user-visible live
   * counts, so leak checks see only tensors; its bytes show in stats().constantBytes.
   */
  private uploadConstant(dtype: DType, data: ArrayLike<number>): Storage {
    const storage = this.upload(dtype, data);
    this.live -= storage.size * 4;
    this.liveCount--;
    this.constantBytes += storage.size * 4;
    return storage;
  }

  free(x: Storage): void {
    const storage = this.own(x, 'free', true, true);
    storage.freed = true;
    this.live -= storageBytes(storage.dtype, storage.size);
    this.liveCount--;
    if (this.dispatcher.destroyed) return;
    // Back to the pool only after the submit that last used it has completed.
    this.dispatcher.releaseAfterWork(storage.buffer);
  }

  async read(x: Storage): Promise<Float32Array | Int32Array> {
    await this.dispatcher.settleIfFailed();
    const dev = this.dispatcher.check('read');
    const storage = this.own(x, 'read', true, true);
    const bytes = storageBytes(storage.dtype, storage.size);
    if (bytes === 0) return storage.dtype === 'int32' ? new Int32Array(0) : new Float32Array(0);
    this.dispatcher.flush();
    const staging = this.stagingPool.acquire(sizeClass(bytes));
    const encoder = dev.createCommandEncoder({ label: 'read' });
    encoder.copyBufferToBuffer(storage.buffer, 0, staging, 0, bytes);
    dev.queue.submit([encoder.finish()]);
    this.dispatcher.submits++;
    try {
      await this.dispatcher.untilLost(staging.mapAsync(MAP_READ, 0, bytes), 'read');
    } catch (e) {
      this.dispatcher.check('read');
      if (e instanceof KernelError) throw e;
      throw new KernelError('read', `mapAsync failed: ${(e as Error).message}`);
    }
    const copy = staging.getMappedRange(0, bytes).slice(0);
    staging.unmap();
    this.stagingPool.release(staging);
    this.dispatcher.check('read');
    if (isHalfDType(storage.dtype)) return unpackHalf(storage.dtype, new Uint32Array(copy), storage.size);
    return storage.dtype === 'int32' ? new Int32Array(copy) : new Float32Array(copy);
  }

  async sync(): Promise<void> {
    await this.dispatcher.settleIfFailed();
    const dev = this.dispatcher.check('sync');
    this.dispatcher.flush();
    await this.dispatcher.untilLost(dev.queue.onSubmittedWorkDone(), 'sync').catch(() => {});
    await this.dispatcher.settle();
    // device.lost resolves through the event loop; give it a chance before reporting.
    this.dispatcher.check('sync');
  }

  /** Submits the recorded batch now. */
  flush(): void {
    this.dispatcher.flush();
  }

  destroy(): void {
    if (this.dispatcher.destroyed) return;
    this.dispatcher.destroy();
    this.storagePool.destroyAll();
    this.stagingPool.destroyAll();
    this.dev?.destroy();
    this.dev = null;
    this.adapter = null;
    this.gpu = null;
  }

  // ---------------------------------------------------------------- core kernels (core_kernels_webgpu.ts)

  fill(out: Storage, value: number): void { windowed.fill(this.host, out, value); }
  arange(out: Storage, start: number, step: number): void { core.arange(this.host, out, start, step); }
  random(out: Storage, args: RandomArgs): void { windowed.random(this.host, out, args); }
  cast(x: Storage, out: Storage): void { windowed.cast(this.host, x, out); }
  unary(op: UnaryOp, x: Storage, xView: View, out: Storage, shape: readonly number[], scalar: number): void {
    core.unary(this.host, op, x, xView, out, shape, scalar);
  }
  binary(op: BinaryOp, a: Storage, aView: View, b: Storage, bView: View, out: Storage, shape: readonly number[]): void {
    core.binary(this.host, op, a, aView, b, bView, out, shape);
  }
  where(cond: Storage, cView: View, a: Storage, aView: View, b: Storage, bView: View, out: Storage, shape: readonly number[]): void {
    core.where(this.host, cond, cView, a, aView, b, bView, out, shape);
  }
  copy(x: Storage, xView: View, out: Storage, outOffset: number, shape: readonly number[]): void {
    core.copy(this.host, x, xView, out, outOffset, shape);
  }
  reduce(op: ReduceOp, x: Storage, out: Storage, outer: number, len: number, inner: number): void {
    core.reduce(this.host, op, x, out, outer, len, inner);
  }
  matmul(a: Storage, b: Storage, out: Storage, args: MatmulArgs): void { windowed.matmul(this.host, a, b, out, args); }
  softmax(x: Storage, out: Storage, rows: number, cols: number, log: boolean): void { core.softmax(this.host, x, out, rows, cols, log); }
  gather(table: Storage, ids: Storage, out: Storage, nIds: number, rowLen: number): void { windowed.gather(this.host, table, ids, out, nIds, rowLen); }
  scatterAdd(src: Storage, ids: Storage, out: Storage, nIds: number, rowLen: number): void {
    core.scatterAdd(this.host, src, ids, out, nIds, rowLen);
  }

  private makeHost(): KernelHost {
    const fixedSubgroup = this.subgroupMinSize > 0 && this.subgroupMinSize === this.subgroupMaxSize ? this.subgroupMinSize : 0;
    const dispatcher = this.dispatcher;
    return {
      wg: this.wg,
      maxInvocations: Math.min(this.limits.maxComputeInvocationsPerWorkgroup, this.limits.maxComputeWorkgroupSizeX),
      maxWorkgroupsPerDim: this.limits.maxComputeWorkgroupsPerDimension,
      maxWorkgroupStorage: this.limits.maxComputeWorkgroupStorageSize,
      maxStorageBuffers: this.limits.maxStorageBuffersPerShaderStage,
      software: isSoftwareAdapter(this.info),
      fixedSubgroupSize: fixedSubgroup,
      subgroupMinSize: this.subgroupMinSize,
      matmul: this.matmulConfig,
      variants: this.variants,
      kernel: (name) => dispatcher.kernel(name),
      maxBindingBytes: this.limits.maxStorageBufferBindingSize,
      bindingAlignment: this.limits.minStorageBufferOffsetAlignment,
      gpuStorage: (x, kernel, acceptHalf) => this.own(x, kernel, acceptHalf),
      gpuStorageAnySize: (x, kernel, acceptHalf) => {
        const storage = this.own(x, kernel, acceptHalf, true);
        return { dtype: storage.dtype, size: storage.size, buffer: storage.buffer, oversized: this.oversized(storage) };
      },
      pipeline: (family, entry, tpl, kernel) => dispatcher.pipeline(family, entry, tpl, kernel),
      launch: (kernel, pipeline, fill, buffers, groups) => dispatcher.launch(kernel, pipeline, fill, buffers, groups),
      coalesce: (key, item, emit) => dispatcher.coalesce(key, item, emit),
      groups1d: (n, kernel, wg) => dispatcher.groups1d(n, kernel, wg),
      alloc: (dtype, size) => this.allocUninitialized(dtype, size),
      upload: (dtype, data) => this.upload(dtype, data),
      uploadConstant: (dtype, data) => this.uploadConstant(dtype, data),
      free: (x) => this.free(x),
    };
  }

  /**
   * Test hook: compiles `wgsl` (entry point `main`, bindings 0 = uniform, 1.. = storages) under the kernel
   * name `kernel` and dispatches it once. Lets tests check that shader and validation errors name kernels.
   */
  debugDispatch(kernel: string, wgsl: string, storages: Storage[], groups: [number, number, number]): void {
    const name = this.dispatcher.kernel(kernel);
    const family = `debug:${kernel}`;
    this.dispatcher.extraSources.set(family, wgsl);
    const pipeline = this.dispatcher.pipeline(family, 'main', {}, name);
    this.dispatcher.launch(name, pipeline, () => {}, storages.map((x) => this.own(x, name).buffer), groups);
  }
}
