// The WebGPU backend: platform-neutral (no Node imports). Device acquisition lives in node_gpu.ts and
// browser_gpu.ts; this module takes a GPUAdapter and owns the device, the pipeline cache, the buffer pool,
// the uniform arenas and the command batching.
//
// Submission model: dispatches are recorded into one compute pass of one command encoder; every
// `BATCH_DISPATCHES` dispatches (or on read/sync/microtask idle) the batch is submitted. Each dispatch's
// uniform block lives in a 256-byte slot of the batch's uniform arena, written with one writeBuffer right
// before that batch's submit; the arena returns to its pool when the submit has completed. Uploads go
// into buffers that no pending work can reference (freed buffers come back only after their last submit
// completes), so queue.writeBuffer never overtakes encoded work.
import {
  type AdamWArgs, type AttentionArgs, type Backend, type BinaryOp, type DType, type MatmulArgs, type MemoryStats,
  type RandomArgs, type ReduceOp, type RopeArgs, type Storage, type UnaryOp, type View,
  BINARY_CODE, KernelError, UNARY_CODE, coalesce, sizeOf,
} from '../backend.js';
import type { TokenLossArgs } from '../model_kernels.js';
import { mix32 } from '../rng.js';
import { attention, attentionBackward } from './attention_webgpu.js';
import { BufferPool, sizeClass } from './buffer_pool.js';
import type { KernelHost, KernelVariants } from './kernel_host.js';
import { matmulSmall, smallMatmulProblem } from './matmul_small_webgpu.js';
import * as mk from './model_kernels_webgpu.js';
import { WGSL } from './shaders.gen.js';

// Numeric GPUBufferUsage / GPUMapMode flags (globals are not guaranteed under Node).
const USAGE_MAP_READ = 0x0001;
const USAGE_COPY_SRC = 0x0004;
const USAGE_COPY_DST = 0x0008;
const USAGE_UNIFORM = 0x0040;
const USAGE_STORAGE = 0x0080;
const MAP_READ = 0x0001;

const UNIFORM_SLOT_BYTES = 256;
const UNIFORM_SLOT_WORDS = UNIFORM_SLOT_BYTES / 4;
/** Highest rank the strided elementwise kernels index (MAX_RANK = 6 fits; 8 slots in the uniform). */
const STRIDED_SLOTS = 8;

export interface WebGPUBackendOptions {
  /** Request the adapter's maximum for the limits that matter (default true). False keeps the defaults
   *  (compatibility adapters: 128 invocations per workgroup), which tests use to exercise small limits. */
  requestMaxLimits?: boolean;
  /** Dispatches recorded per submit (default 24). */
  batchDispatches?: number;
  /** Overrides the matmul kernel choice (tuning, tests). */
  matmul?: Partial<MatmulConfig>;
  /** Overrides the choice between kernel variants of the model kernels (tests, tuning). */
  variants?: KernelVariants;
  /** Upper bound of bytes kept in the free pool (default 512 MiB). */
  maxPooledBytes?: number;
  /** Informational: how the adapter was obtained (Dawn flags, 'navigator.gpu'). */
  source?: string;
  featureLevel?: 'core' | 'compatibility';
  /** The GPU object the adapter came from. Held until destroy(): Dawn tears its instance down when the
   *  object returned by `create()` is garbage-collected, even while devices are alive. */
  gpu?: GPU;
}

export interface AdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}

const SOFTWARE_PATTERNS = ['llvmpipe', 'lavapipe', 'swiftshader', 'software', 'mesa/x.org', 'softpipe', 'warp', 'basic render driver', 'microsoft basic'];

/** True for CPU rasterisers (llvmpipe / lavapipe / SwiftShader / WARP) and fallback adapters. */
export function isSoftwareAdapter(info: AdapterInfoLike): boolean {
  if (info.isFallbackAdapter) return true;
  const text = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ').toLowerCase();
  return SOFTWARE_PATTERNS.some((p) => text.includes(p));
}

/**
 * WGSL templating: `__NAME__` becomes tpl.NAME (0 when absent); a block between `//#unroll v COUNT` and
 * `//#end` is repeated for v = 0 … COUNT-1 (COUNT a number or a tpl name) with `{v}` replaced by the index
 * (`{v/N}` and `{v%N}` by its quotient and remainder, N a number or a tpl name). Blocks nest: the innermost
 * expand first, leaving the outer variables' `{…}` for the outer expansion.
 */
export function expandTemplate(src: string, tpl: Record<string, number>): string {
  const value = (token: string): number => (/^\d+$/.test(token) ? Number(token) : (tpl[token] ?? 0));
  const innermost = /^\/\/#unroll (\w+) (\w+)\n((?:(?!\/\/#unroll )[\s\S])*?)^\/\/#end\n/m;
  let text = src;
  for (let m = innermost.exec(text); m; m = innermost.exec(text)) {
    const [whole, v, count, body] = m;
    const n = value(count);
    const index = new RegExp(`\\{${v}(?:([/%])(\\w+))?\\}`, 'g');
    let out = '';
    for (let i = 0; i < n; i++) {
      out += body.replace(index, (_m, op: string | undefined, d: string | undefined) =>
        String(op === '/' ? Math.floor(i / value(d!)) : op === '%' ? i % value(d!) : i));
    }
    text = text.slice(0, m.index) + out + text.slice(m.index + whole.length);
  }
  return text.replace(/__([A-Z][A-Z0-9_]*)__/g, (_, name: string) => String(tpl[name] ?? 0));
}

class WebGPUStorage implements Storage {
  readonly backend = 'webgpu' as const;
  freed = false;
  constructor(readonly dtype: DType, readonly size: number, public buffer: GPUBuffer) {}
}

interface UniformArena {
  gpu: GPUBuffer;
  cpu: ArrayBuffer;
  u32: Uint32Array;
  f32: Float32Array;
  i32: Int32Array;
}

interface Slot {
  u: Uint32Array;
  f: Float32Array;
  i: Int32Array;
}

interface PipelineEntry {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
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

/**
 * Creates the device (requesting the adapter's maxima for the limits that matter) and wraps it.
 * `opts.adapter` is used when given; otherwise one is requested from `gpu` (core, then compatibility).
 */
export async function createWebGPUBackend(gpu: GPU, opts: WebGPUBackendOptions & { adapter?: GPUAdapter } = {}): Promise<WebGPUBackend> {
  let adapter = opts.adapter ?? null;
  let featureLevel = opts.featureLevel;
  if (!adapter) {
    adapter = await gpu.requestAdapter().catch(() => null);
    if (!adapter) {
      adapter = await gpu.requestAdapter({ featureLevel: 'compatibility' } as GPURequestAdapterOptions).catch(() => null);
      featureLevel ??= 'compatibility';
    }
    if (!adapter) throw new Error('WebGPU: requestAdapter() returned no adapter');
  }
  const want = [
    'maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeInvocationsPerWorkgroup',
    'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY', 'maxComputeWorkgroupSizeZ',
    'maxComputeWorkgroupStorageSize', 'maxStorageBuffersPerShaderStage', 'maxComputeWorkgroupsPerDimension',
  ] as const;
  const requiredLimits: Record<string, number> = {};
  if (opts.requestMaxLimits !== false) {
    const lim = adapter.limits as unknown as Record<string, number | undefined>;
    for (const k of want) if (typeof lim[k] === 'number') requiredLimits[k] = lim[k]!;
  }
  // Subgroups feed the software-rasteriser matmul; every kernel has a path without them.
  const requiredFeatures = (['subgroups'] as const).filter((f) => adapter.features.has(f)) as GPUFeatureName[];
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'dapo-webgpu' });
  return new WebGPUBackend(adapter, device, { ...opts, featureLevel, gpu });
}

export class WebGPUBackend implements Backend {
  readonly name = 'webgpu' as const;
  private dev: GPUDevice | null;
  private adapter: GPUAdapter | null;
  private gpu: GPU | null;
  private readonly info: AdapterInfoLike;
  private readonly features: string[];
  private readonly featureLevel: 'core' | 'compatibility';
  /** Smallest subgroup size of the device; 0 without the 'subgroups' feature. */
  private readonly subgroupMinSize: number;
  private readonly source: string | undefined;
  readonly limits: {
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupSizeX: number;
    maxComputeWorkgroupSizeY: number;
    maxComputeWorkgroupsPerDimension: number;
    maxStorageBuffersPerShaderStage: number;
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    maxComputeWorkgroupStorageSize: number;
  };
  /** Workgroup size of the 1-D kernels (a power of two). */
  readonly wg: number;
  private readonly matmulCfg: MatmulConfig;
  private readonly batchDispatches: number;

  private readonly storagePool: BufferPool;
  private readonly stagingPool: BufferPool;
  private readonly arenaPool: UniformArena[] = [];
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly pipelines = new Map<string, PipelineEntry>();
  private readonly extraSources = new Map<string, string>();

  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private arena: UniformArena | null = null;
  private slots = 0;
  private batchKernels: string[] = [];
  private batchFrees: GPUBuffer[] = [];
  private flushScheduled = false;
  private readonly inflight = new Set<Promise<unknown>>();

  private live = 0;
  private peak = 0;
  private liveCount = 0;
  private constantBytes = 0;
  private dispatches = 0;
  private submits = 0;

  private lastKernel = '(none)';
  private pendingError: KernelError | null = null;
  private pendingErrorSecondary = false;
  private lostInfo: { reason: string; message: string } | null = null;
  private destroyed = false;
  private readonly kernelNames = new Set<string>();
  private readonly subgroupMaxSize: number;
  private readonly variants: KernelVariants;
  /** The narrow view of this backend that the kernel launcher modules work through. */
  private readonly host: KernelHost;

  constructor(adapter: GPUAdapter, device: GPUDevice, opts: WebGPUBackendOptions = {}) {
    this.dev = device;
    this.adapter = adapter;
    this.gpu = opts.gpu ?? null;
    const ai = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
    const fb = (ai as (GPUAdapterInfo & { isFallbackAdapter?: boolean }) | undefined)?.isFallbackAdapter
      ?? (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false;
    this.info = {
      vendor: ai?.vendor ?? '', architecture: ai?.architecture ?? '', device: ai?.device ?? '',
      description: ai?.description ?? '', isFallbackAdapter: fb,
    };
    this.features = [...adapter.features].map(String).sort();
    const sg = ai as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number } | undefined;
    this.subgroupMinSize = device.features.has('subgroups') ? sg?.subgroupMinSize ?? 0 : 0;
    this.subgroupMaxSize = device.features.has('subgroups') ? sg?.subgroupMaxSize ?? 0 : 0;
    this.variants = { ...opts.variants };
    const adapterLevel = (adapter as GPUAdapter & { featureLevel?: string }).featureLevel;
    this.featureLevel = opts.featureLevel
      ?? (adapterLevel === 'compatibility' || adapterLevel === 'core' ? adapterLevel
        : adapter.features.has('core-features-and-limits') ? 'core' : 'compatibility');
    this.source = opts.source;
    const l = device.limits;
    this.limits = {
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    };
    const maxWg = Math.min(256, l.maxComputeInvocationsPerWorkgroup, l.maxComputeWorkgroupSizeX);
    this.wg = 2 ** Math.floor(Math.log2(maxWg));
    this.matmulCfg = { ...this.pickMatmulConfig(), ...opts.matmul };
    this.batchDispatches = Math.max(1, Math.min(opts.batchDispatches ?? 24, 256));
    this.host = this.makeHost();

    this.storagePool = new BufferPool(device, USAGE_STORAGE | USAGE_COPY_SRC | USAGE_COPY_DST, 'storage', opts.maxPooledBytes);
    this.stagingPool = new BufferPool(device, USAGE_MAP_READ | USAGE_COPY_DST, 'readback', 64 * 1024 * 1024);

    device.lost.then((info) => {
      if (!this.destroyed) this.lostInfo = { reason: info.reason, message: info.message };
    }).catch(() => {});
    device.onuncapturederror = (ev: GPUUncapturedErrorEvent) => {
      if (this.destroyed || this.lostInfo) return;
      this.recordError(ev.error.message, this.lastKernel);
    };
  }

  // ---------------------------------------------------------------- describe / memory

  describe(): Record<string, unknown> {
    return {
      api: 'webgpu',
      vendor: this.info.vendor,
      architecture: this.info.architecture,
      device: this.info.device,
      description: this.info.description,
      isFallbackAdapter: this.info.isFallbackAdapter,
      software: isSoftwareAdapter(this.info),
      featureLevel: this.featureLevel,
      features: this.features,
      limits: { ...this.limits },
      workgroupSize: this.wg,
      matmulTile: { ...this.matmulCfg },
      // Model kernels: attention 'subgroups' (barrier-free, subgroupBroadcast; head dims % 4 == 0) on CPU
      // rasterisers with a fixed subgroup size, else 'tiled' (workgroup memory); row reductions per invocation
      // ('rows') on CPU rasterisers, per workgroup ('tree') elsewhere.
      modelKernels: {
        attention: this.variants.attention
          ?? (isSoftwareAdapter(this.info) && this.subgroupMinSize >= 4 && this.subgroupMinSize === this.subgroupMaxSize ? 'subgroups' : 'tiled'),
        rowReduce: this.variants.rowReduce ?? (isSoftwareAdapter(this.info) ? 'rows' : 'tree'),
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
      dispatches: this.dispatches, submits: this.submits, pipelines: this.pipelines.size,
      buffersCreated: this.storagePool.created, buffersReused: this.storagePool.reused,
      pooledBytes: this.storagePool.bytes, uniformArenas: this.arenaPool.length, constantBytes: this.constantBytes,
    };
  }

  /** The device (tests use it to simulate loss). Throws once the backend is destroyed. */
  get device(): GPUDevice {
    if (!this.dev) throw new KernelError('device', 'WebGPU backend was destroyed');
    return this.dev;
  }

  // ---------------------------------------------------------------- errors

  /**
   * Records a WebGPU error for the next backend call to throw. The kernel is taken from the object labels
   * in the message when one names a kernel; a root cause replaces a recorded "invalid due to a previous
   * error" follow-up.
   */
  private recordError(message: string, fallbackKernel: string, rootCause = false): void {
    let kernel = fallbackKernel;
    if (!rootCause) {
      for (const m of message.matchAll(/"+([^"]+)"+/g)) {
        if (this.kernelNames.has(m[1])) { kernel = m[1]; break; }
      }
    }
    const secondary = /due to a previous error/.test(message);
    if (this.pendingError && !(this.pendingErrorSecondary && !secondary)) return;
    this.pendingError = new KernelError(kernel, `WebGPU error in kernel '${kernel}': ${message}`);
    this.pendingErrorSecondary = secondary;
  }

  /** Throws when the backend cannot run `kernel`: destroyed, device lost, or an earlier recorded error. */
  private check(kernel: string): GPUDevice {
    if (this.destroyed || !this.dev) throw new KernelError(kernel, 'WebGPU backend was destroyed');
    if (this.lostInfo) {
      const why = this.lostInfo.message ? `${this.lostInfo.reason}: ${this.lostInfo.message}` : this.lostInfo.reason;
      throw new KernelError(kernel, `WebGPU device lost (${why}): ${kernel}`);
    }
    if (this.pendingError) {
      const e = this.pendingError;
      this.pendingError = null;
      throw e;
    }
    return this.dev;
  }

  private st(x: Storage, kernel: string): WebGPUStorage {
    if (!(x instanceof WebGPUStorage)) throw new KernelError(kernel, 'storage belongs to another backend');
    if (x.freed) throw new KernelError(kernel, 'storage was freed');
    return x;
  }

  private track<T>(p: Promise<T>): Promise<T> {
    const q = p.finally(() => this.inflight.delete(q));
    this.inflight.add(q);
    q.catch(() => {});
    return q;
  }

  // ---------------------------------------------------------------- storage

  alloc(dtype: DType, size: number): Storage {
    this.check('alloc');
    if (!Number.isInteger(size) || size < 0) throw new KernelError('alloc', `invalid size ${size}`);
    const bytes = size * 4;
    const cap = Math.min(this.limits.maxStorageBufferBindingSize, this.limits.maxBufferSize);
    if (bytes > cap) {
      throw new KernelError('alloc', `storage of ${size} ${dtype} elements (${bytes} bytes) exceeds the adapter's `
        + `maxStorageBufferBindingSize/maxBufferSize (${cap} bytes)`);
    }
    const buf = this.storagePool.acquire(sizeClass(bytes, cap));
    this.live += bytes;
    this.liveCount++;
    if (this.live > this.peak) this.peak = this.live;
    return new WebGPUStorage(dtype, size, buf);
  }

  upload(dtype: DType, data: ArrayLike<number>): Storage {
    const s = this.alloc(dtype, data.length) as WebGPUStorage;
    if (data.length > 0) {
      const arr = dtype === 'int32'
        ? (data instanceof Int32Array ? data : Int32Array.from(data as ArrayLike<number>))
        : (data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>));
      // A fresh or pool-returned buffer is referenced by no pending work, so this write cannot overtake any.
      this.device.queue.writeBuffer(s.buffer, 0, arr.buffer, arr.byteOffset, arr.byteLength);
    }
    return s;
  }

  /**
   * A buffer the backend itself keeps for its lifetime (lookup tables): kept out of the user-visible live
   * counts, so leak checks see only tensors; its bytes show in stats().constantBytes.
   */
  private uploadConstant(dtype: DType, data: ArrayLike<number>): Storage {
    const s = this.upload(dtype, data);
    this.live -= s.size * 4;
    this.liveCount--;
    this.constantBytes += s.size * 4;
    return s;
  }

  free(x: Storage): void {
    const s = this.st(x, 'free');
    s.freed = true;
    this.live -= s.size * 4;
    this.liveCount--;
    if (this.destroyed) return;
    // Back to the pool only after the submit that last used it has completed.
    this.batchFrees.push(s.buffer);
    this.scheduleFlush();
  }

  async read(x: Storage): Promise<Float32Array | Int32Array> {
    if (this.pendingError && this.inflight.size) await Promise.allSettled([...this.inflight]);
    const dev = this.check('read');
    const s = this.st(x, 'read');
    const bytes = s.size * 4;
    if (bytes === 0) return s.dtype === 'int32' ? new Int32Array(0) : new Float32Array(0);
    this.flush();
    const staging = this.stagingPool.acquire(sizeClass(bytes));
    const enc = dev.createCommandEncoder({ label: 'read' });
    enc.copyBufferToBuffer(s.buffer, 0, staging, 0, bytes);
    dev.queue.submit([enc.finish()]);
    this.submits++;
    try {
      await this.track(staging.mapAsync(MAP_READ, 0, bytes));
    } catch (e) {
      this.check('read');
      throw new KernelError('read', `mapAsync failed: ${(e as Error).message}`);
    }
    const copy = staging.getMappedRange(0, bytes).slice(0);
    staging.unmap();
    this.stagingPool.release(staging);
    this.check('read');
    return s.dtype === 'int32' ? new Int32Array(copy) : new Float32Array(copy);
  }

  async sync(): Promise<void> {
    if (this.pendingError && this.inflight.size) await Promise.allSettled([...this.inflight]);
    const dev = this.check('sync');
    this.flush();
    await this.track(dev.queue.onSubmittedWorkDone()).catch(() => {});
    await Promise.allSettled([...this.inflight]);
    // device.lost resolves through the event loop; give it a chance before reporting.
    this.check('sync');
  }

  destroy(): void {
    if (this.destroyed) return;
    try {
      if (this.pass) this.pass.end();
    } catch { /* ignore */ }
    this.pass = null;
    this.encoder = null;
    this.destroyed = true;
    this.storagePool.destroyAll();
    this.stagingPool.destroyAll();
    for (const a of this.arenaPool) a.gpu.destroy();
    this.arenaPool.length = 0;
    this.modules.clear();
    this.pipelines.clear();
    if (this.dev) {
      this.dev.onuncapturederror = null;
      this.dev.destroy();
    }
    this.dev = null;
    this.adapter = null;
    this.gpu = null;
  }

  // ---------------------------------------------------------------- pipelines and dispatch

  private pipeline(family: string, entry: string, tpl: Record<string, number>, kernel: string): PipelineEntry {
    const tkey = Object.keys(tpl).sort().map((k) => `${k}=${tpl[k]}`).join(',');
    const key = `${family}:${entry}:${tkey}`;
    const hit = this.pipelines.get(key);
    if (hit) return hit;
    const dev = this.device;
    const src = this.extraSources.get(family) ?? WGSL[family];
    if (src === undefined) throw new KernelError(kernel, `no WGSL source '${family}' (run node scripts/build.mjs shaders)`);
    const mkey = `${family}:${tkey}`;
    let module = this.modules.get(mkey);
    dev.pushErrorScope('validation');
    if (!module) {
      const code = expandTemplate(src, tpl);
      module = dev.createShaderModule({ code, label: `${family}[${tkey}]` });
      this.modules.set(mkey, module);
    }
    const pipeline = dev.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: entry }, label: kernel });
    const layout = pipeline.getBindGroupLayout(0);
    const scope = dev.popErrorScope().then(async (err) => {
      if (!err) return;
      let detail = err.message;
      try {
        const info = await module!.getCompilationInfo();
        const msgs = info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}:${m.linePos} ${m.message}`);
        if (msgs.length) detail += ` | ${msgs.join(' | ')}`;
      } catch { /* ignore */ }
      this.recordError(`pipeline creation failed: ${detail}`, kernel, true);
    });
    this.track(scope);
    const entryObj = { pipeline, layout };
    this.pipelines.set(key, entryObj);
    return entryObj;
  }

  private newArena(): UniformArena {
    const reuse = this.arenaPool.pop();
    if (reuse) return reuse;
    const bytes = UNIFORM_SLOT_BYTES * this.batchDispatches;
    const cpu = new ArrayBuffer(bytes);
    return {
      gpu: this.device.createBuffer({ size: bytes, usage: USAGE_UNIFORM | USAGE_COPY_DST, label: 'uniforms' }),
      cpu, u32: new Uint32Array(cpu), f32: new Float32Array(cpu), i32: new Int32Array(cpu),
    };
  }

  /**
   * Records one dispatch: `fill` writes the uniform block, `buffers` bind at 1, 2, … (binding 0 is the
   * uniform). Flushes every `batchDispatches` dispatches.
   */
  private launch(
    kernel: string, pe: PipelineEntry, fill: (s: Slot) => void, buffers: GPUBuffer[], groups: readonly [number, number, number],
  ): void {
    const dev = this.device;
    if (groups[0] === 0 || groups[1] === 0 || groups[2] === 0) return;
    if (!this.encoder) {
      this.encoder = dev.createCommandEncoder({ label: 'batch' });
      this.pass = this.encoder.beginComputePass({ label: 'batch' });
      this.arena = this.newArena();
      this.slots = 0;
    }
    const arena = this.arena!;
    const slot = this.slots++;
    const w0 = slot * UNIFORM_SLOT_WORDS;
    arena.u32.fill(0, w0, w0 + UNIFORM_SLOT_WORDS);
    fill({
      u: arena.u32.subarray(w0, w0 + UNIFORM_SLOT_WORDS),
      f: arena.f32.subarray(w0, w0 + UNIFORM_SLOT_WORDS),
      i: arena.i32.subarray(w0, w0 + UNIFORM_SLOT_WORDS),
    });
    const entries: GPUBindGroupEntry[] = [
      { binding: 0, resource: { buffer: arena.gpu, offset: slot * UNIFORM_SLOT_BYTES, size: UNIFORM_SLOT_BYTES } },
    ];
    for (let b = 0; b < buffers.length; b++) entries.push({ binding: b + 1, resource: { buffer: buffers[b] } });
    const bg = dev.createBindGroup({ layout: pe.layout, entries, label: kernel });
    const pass = this.pass!;
    pass.setPipeline(pe.pipeline);
    pass.setBindGroup(0, bg);
    pass.dispatchWorkgroups(groups[0], groups[1], groups[2]);
    this.lastKernel = kernel;
    this.batchKernels.push(kernel);
    this.dispatches++;
    if (this.slots >= this.batchDispatches) this.flush();
    else this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      if (!this.destroyed && !this.lostInfo) this.flush();
    });
  }

  /** Submits the recorded batch (if any) and schedules the release of buffers freed since the last flush. */
  flush(): void {
    const dev = this.dev;
    if (!dev || this.destroyed) return;
    const frees = this.batchFrees;
    this.batchFrees = [];
    let arena: UniformArena | null = null;
    if (this.encoder) {
      this.pass!.end();
      arena = this.arena!;
      const kernels = this.batchKernels;
      dev.queue.writeBuffer(arena.gpu, 0, arena.cpu, 0, this.slots * UNIFORM_SLOT_BYTES);
      dev.pushErrorScope('validation');
      const cb = this.encoder.finish({ label: 'batch' });
      dev.queue.submit([cb]);
      this.track(dev.popErrorScope().then((err) => {
        if (err) this.recordError(err.message, [...new Set(kernels)].join('|'));
      }));
      this.encoder = null;
      this.pass = null;
      this.arena = null;
      this.slots = 0;
      this.batchKernels = [];
      this.submits++;
    }
    if (frees.length === 0 && !arena) return;
    this.track(dev.queue.onSubmittedWorkDone().then(() => {
      if (this.destroyed) return;
      for (const b of frees) this.storagePool.release(b);
      if (arena) this.arenaPool.push(arena);
    }));
  }

  private groups1d(n: number, kernel: string, wg = this.wg): [number, number, number] {
    const g = Math.ceil(n / wg);
    const maxDim = this.limits.maxComputeWorkgroupsPerDimension;
    if (g <= maxDim) return [g, 1, 1];
    const gy = Math.ceil(g / maxDim);
    if (gy > maxDim) throw new KernelError(kernel, `${n} work items exceed the dispatch limits`);
    return [Math.ceil(g / gy), gy, 1];
  }

  /** Runs `body(outBuffer)`; when `out` aliases an input, into a temporary that is then copied to `out`. */
  private aliasGuard(out: WebGPUStorage, inputs: WebGPUStorage[], body: (outBuf: GPUBuffer) => void): void {
    if (!inputs.some((s) => s.buffer === out.buffer)) {
      body(out.buffer);
      return;
    }
    const tmp = this.alloc(out.dtype, out.size) as WebGPUStorage;
    body(tmp.buffer);
    this.copyWords(tmp.buffer, out.buffer, out.size, 'copy');
    this.free(tmp);
  }

  private copyWords(src: GPUBuffer, dst: GPUBuffer, n: number, kernel: string): void {
    const pe = this.pipeline('elementwise', 'copy', { WG: this.wg, OP: 0 }, kernel);
    this.kernelNames.add(kernel);
    this.launch(kernel, pe, (s) => {
      s.u[0] = n; s.u[1] = 1; s.u[2] = 0;
      s.u[8] = n; // shape[0]
      s.u[16] = 1; // stride of view 0, dim 0
    }, [dst, src], this.groups1d(n, kernel));
  }

  private kernel(name: string): string {
    this.check(name);
    this.kernelNames.add(name);
    return name;
  }

  // ---------------------------------------------------------------- kernels

  fill(out: Storage, value: number): void {
    const k = this.kernel('fill');
    const o = this.st(out, k);
    const bits = o.dtype === 'int32' ? (Math.trunc(value) | 0) >>> 0 : new Uint32Array(new Float32Array([value]).buffer)[0];
    const pe = this.pipeline('elementwise', 'fill', { WG: this.wg, OP: 0 }, k);
    this.launch(k, pe, (s) => { s.u[0] = o.size; s.u[3] = bits; }, [o.buffer], this.groups1d(o.size, k));
  }

  arange(out: Storage, start: number, step: number): void {
    const k = this.kernel('arange');
    const o = this.st(out, k);
    const intExact = o.dtype === 'int32' && Number.isInteger(start) && Number.isInteger(step)
      && Math.abs(start) < 2 ** 31 && Math.abs(step) < 2 ** 31;
    const mode = o.dtype === 'float32' ? 0 : intExact ? 1 : 2;
    const pe = this.pipeline('elementwise', 'arange', { WG: this.wg, OP: 0 }, k);
    this.launch(k, pe, (s) => {
      s.u[0] = o.size; s.u[3] = mode; s.f[4] = start; s.f[5] = step; s.i[6] = start | 0; s.i[7] = step | 0;
    }, [o.buffer], this.groups1d(o.size, k));
  }

  random(out: Storage, args: RandomArgs): void {
    const k = this.kernel(`random.${args.kind}`);
    const o = this.st(out, k);
    const key = mix32(args.seed);
    const pe = this.pipeline('random', 'random', { WG: this.wg }, k);
    this.launch(k, pe, (s) => {
      s.u[0] = o.size; s.u[1] = key; s.u[2] = args.kind === 'uniform' ? 0 : 1; s.f[4] = args.a; s.f[5] = args.b;
    }, [o.buffer], this.groups1d(o.size, k));
  }

  cast(x: Storage, out: Storage): void {
    const k = this.kernel('cast');
    const a = this.st(x, k);
    const o = this.st(out, k);
    if (a.size < o.size) throw new KernelError(k, `input has ${a.size} elements, output ${o.size}`);
    const mode = a.dtype === o.dtype ? 2 : a.dtype === 'float32' ? 0 : 1;
    const pe = this.pipeline('elementwise', 'cast_dtype', { WG: this.wg, OP: 0 }, k);
    this.aliasGuard(o, [a], (ob) => {
      this.launch(k, pe, (s) => { s.u[0] = o.size; s.u[3] = mode; }, [ob, a.buffer], this.groups1d(o.size, k));
    });
  }

  /** Writes shape, strides and offsets of up to three views into the elementwise uniform block. */
  private stridedParams(kernel: string, shape: readonly number[], views: readonly View[]): (s: Slot) => void {
    const c = coalesce(shape, views);
    if (c.shape.length > STRIDED_SLOTS) throw new KernelError(kernel, `rank ${c.shape.length} exceeds ${STRIDED_SLOTS}`);
    const n = sizeOf(shape);
    return (s) => {
      s.u[0] = n;
      s.u[1] = c.shape.length;
      for (let d = 0; d < c.shape.length; d++) {
        s.u[8 + d] = c.shape[d];
        for (let v = 0; v < c.views.length; v++) s.u[16 + v * 8 + d] = c.views[v].strides[d];
      }
      for (let v = 0; v < c.views.length; v++) s.u[40 + v] = c.views[v].offset;
    };
  }

  unary(op: UnaryOp, x: Storage, xView: View, out: Storage, shape: readonly number[], scalar: number): void {
    const k = this.kernel(`unary.${op}`);
    const a = this.st(x, k);
    const o = this.st(out, k);
    const n = sizeOf(shape);
    if (n === 0) return;
    const params = this.stridedParams(k, shape, [xView]);
    const pe = this.pipeline('elementwise', 'unary', { WG: this.wg, OP: UNARY_CODE[op] }, k);
    this.aliasGuard(o, [a], (ob) => {
      this.launch(k, pe, (s) => { params(s); s.f[4] = scalar; }, [ob, a.buffer], this.groups1d(n, k));
    });
  }

  binary(op: BinaryOp, a: Storage, aView: View, b: Storage, bView: View, out: Storage, shape: readonly number[]): void {
    const k = this.kernel(`binary.${op}`);
    const sa = this.st(a, k);
    const sb = this.st(b, k);
    const o = this.st(out, k);
    const n = sizeOf(shape);
    if (n === 0) return;
    const params = this.stridedParams(k, shape, [aView, bView]);
    const pe = this.pipeline('elementwise', 'binary', { WG: this.wg, OP: BINARY_CODE[op] }, k);
    this.aliasGuard(o, [sa, sb], (ob) => {
      this.launch(k, pe, params, [ob, sa.buffer, sb.buffer], this.groups1d(n, k));
    });
  }

  where(cond: Storage, cView: View, a: Storage, aView: View, b: Storage, bView: View, out: Storage, shape: readonly number[]): void {
    const k = this.kernel('where');
    const sc = this.st(cond, k);
    const sa = this.st(a, k);
    const sb = this.st(b, k);
    const o = this.st(out, k);
    const n = sizeOf(shape);
    if (n === 0) return;
    const params = this.stridedParams(k, shape, [cView, aView, bView]);
    const pe = this.pipeline('elementwise', 'where_', { WG: this.wg, OP: 0 }, k);
    this.aliasGuard(o, [sc, sa, sb], (ob) => {
      this.launch(k, pe, (s) => { params(s); s.u[3] = sc.dtype === 'int32' ? 1 : 0; },
        [ob, sc.buffer, sa.buffer, sb.buffer], this.groups1d(n, k));
    });
  }

  copy(x: Storage, xView: View, out: Storage, outOffset: number, shape: readonly number[]): void {
    const k = this.kernel('copy');
    const a = this.st(x, k);
    const o = this.st(out, k);
    const n = sizeOf(shape);
    if (n === 0) return;
    if (outOffset + n > o.size) throw new KernelError(k, `writes [${outOffset}, ${outOffset + n}) past the output size ${o.size}`);
    const params = this.stridedParams(k, shape, [xView]);
    const pe = this.pipeline('elementwise', 'copy', { WG: this.wg, OP: 0 }, k);
    this.aliasGuard(o, [a], (ob) => {
      this.launch(k, pe, (s) => { params(s); s.u[2] = outOffset; }, [ob, a.buffer], this.groups1d(n, k));
    });
  }

  reduce(op: ReduceOp, x: Storage, out: Storage, outer: number, len: number, inner: number): void {
    const k = this.kernel(`reduce.${op}`);
    const a = this.st(x, k);
    const o = this.st(out, k);
    const total = outer * inner;
    if (total === 0) return;
    const code = op === 'sum' ? 0 : op === 'max' ? 1 : 2;
    const init = op === 'sum' ? 0 : op === 'max' ? -Infinity : Infinity;
    // A workgroup per output for long rows when there are few outputs or rows are contiguous (inner = 1);
    // otherwise one invocation per output, whose reads coalesce across q.
    const tree = len >= 64 && (inner === 1 || total <= 2048);
    const entry = tree ? 'reduce_tree' : 'reduce_loop';
    const pe = this.pipeline('reduce', entry, { WG: this.wg, OP: code }, k);
    const groups = tree ? this.groups1d(total, k, 1) : this.groups1d(total, k);
    this.aliasGuard(o, [a], (ob) => {
      this.launch(k, pe, (s) => { s.u[0] = outer; s.u[1] = len; s.u[2] = inner; s.u[3] = total; s.f[4] = init; },
        [ob, a.buffer], groups);
    });
  }

  /**
   * CPU rasterisers (llvmpipe, SwiftShader) run invocations as SIMD lanes: workgroup memory and barriers
   * only add traffic there, so they get barrier-free kernels; with subgroups of ≥ 8 lanes, the one that
   * shares rows of A through subgroupBroadcast (16 lanes × 16 rows × 4 columns: 20 GFLOP/s at 1024² on
   * 2-core llvmpipe, against 10 without subgroups and 8 for 8 rows). GPUs get workgroup-memory tiles sized
   * to the invocation limit.
   */
  private pickMatmulConfig(): MatmulConfig {
    const inv = Math.min(this.limits.maxComputeInvocationsPerWorkgroup, 256);
    const WX = Math.min(16, this.limits.maxComputeWorkgroupSizeX);
    if (isSoftwareAdapter(this.info)) {
      return this.subgroupMinSize >= 8 ? { kind: 'subgroups', WX, WY: 1, TM: 16, BK: 4 } : { kind: 'direct', WX, WY: 1, TM: 8, BK: 4 };
    }
    const WY = Math.max(1, Math.min(Math.floor(inv / WX), this.limits.maxComputeWorkgroupSizeY, 16));
    return { kind: 'tiled', WX, WY, TM: 4, BK: 16 };
  }

  matmul(a: Storage, b: Storage, out: Storage, g: MatmulArgs): void {
    const k = this.kernel('matmul');
    const sa = this.st(a, k);
    const sb = this.st(b, k);
    const o = this.st(out, k);
    const { batch, m, n } = g;
    if (batch * m * n === 0) return;
    if (o.size < batch * m * n) throw new KernelError(k, `output has ${o.size} elements, needs ${batch * m * n}`);
    const cfg = this.matmulCfg;
    const small = cfg.small === false ? null : smallMatmulProblem(this.host, g);
    if (small) {
      this.aliasGuard(o, [sa, sb], (ob) => matmulSmall(this.host, k, sa, sb, ob, g, small));
      return;
    }
    // The vec4 variants need every vec4 read aligned and in bounds.
    const vec4 = cfg.kind !== 'tiled' && g.k % 4 === 0 && g.strideA % 4 === 0 && g.strideB % 4 === 0 && (g.transB || n % 4 === 0);
    const subgroups = cfg.kind === 'subgroups' && this.subgroupMinSize >= 8 && cfg.TM % 8 === 0;
    const entry = cfg.kind === 'tiled' ? 'matmul' : !vec4 ? 'matmul_direct' : subgroups ? 'matmul_subgroups' : 'matmul_direct4';
    const tiled = entry === 'matmul';
    const pe = this.pipeline(entry === 'matmul_subgroups' ? 'matmul_subgroups' : 'matmul', entry, {
      WX: cfg.WX, WY: tiled ? cfg.WY : 1, TM: cfg.TM, BK: tiled ? cfg.BK : 4, R: subgroups ? cfg.TM / 8 : 0,
      TRANS_A: g.transA ? 1 : 0, TRANS_B: g.transB ? 1 : 0,
    }, k);
    const rowBlock = tiled ? cfg.WY * cfg.TM : cfg.TM;
    const colBlock = cfg.WX * 4;
    const gx = Math.ceil(n / colBlock);
    const gy = Math.ceil(m / rowBlock);
    const maxDim = this.limits.maxComputeWorkgroupsPerDimension;
    if (gx > maxDim || gy > maxDim) throw new KernelError(k, `matrix of ${m}×${n} exceeds the dispatch limits`);
    const rowsFirst = entry !== 'matmul' && entry !== 'matmul_direct';
    this.aliasGuard(o, [sa, sb], (ob) => {
      for (let b0 = 0; b0 < batch; b0 += maxDim) {
        const nb = Math.min(maxDim, batch - b0);
        this.launch(k, pe, (s) => {
          s.u[0] = m; s.u[1] = n; s.u[2] = g.k; s.u[3] = b0; s.u[4] = g.strideA; s.u[5] = g.strideB;
        }, [ob, sa.buffer, sb.buffer], rowsFirst ? [gy, gx, nb] : [gx, gy, nb]);
      }
    });
  }

  softmax(x: Storage, out: Storage, rows: number, cols: number, log: boolean): void {
    const k = this.kernel(log ? 'logSoftmax' : 'softmax');
    const a = this.st(x, k);
    const o = this.st(out, k);
    if (rows * cols === 0) return;
    const pe = this.pipeline('softmax', 'softmax', { WG: this.wg, LOG: log ? 1 : 0 }, k);
    this.aliasGuard(o, [a], (ob) => {
      this.launch(k, pe, (s) => { s.u[0] = rows; s.u[1] = cols; s.f[2] = -Infinity; }, [ob, a.buffer], this.groups1d(rows, k, 1));
    });
  }

  gather(table: Storage, ids: Storage, out: Storage, nIds: number, rowLen: number): void {
    const k = this.kernel('gather');
    const t = this.st(table, k);
    const id = this.st(ids, k);
    const o = this.st(out, k);
    if (id.dtype !== 'int32') throw new KernelError(k, 'ids must be int32');
    const total = nIds * rowLen;
    if (total === 0) return;
    const pe = this.pipeline('embedding', 'gather', { WG: this.wg }, k);
    const rows = Math.floor(t.size / rowLen);
    this.aliasGuard(o, [t, id], (ob) => {
      this.launch(k, pe, (s) => { s.u[0] = nIds; s.u[1] = rowLen; s.u[2] = rows; s.u[3] = total; },
        [ob, t.buffer, id.buffer], this.groups1d(total, k));
    });
  }

  scatterAdd(src: Storage, ids: Storage, out: Storage, nIds: number, rowLen: number): void {
    const k = this.kernel('scatterAdd');
    const sr = this.st(src, k);
    const id = this.st(ids, k);
    const o = this.st(out, k);
    if (id.dtype !== 'int32') throw new KernelError(k, 'ids must be int32');
    if (nIds * rowLen === 0) return;
    if (o.buffer === sr.buffer || o.buffer === id.buffer) throw new KernelError(k, 'out must not alias src or ids');
    const pe = this.pipeline('embedding', 'scatter_add', { WG: this.wg }, k);
    const rows = Math.floor(o.size / rowLen);
    this.launch(k, pe, (s) => { s.u[0] = nIds; s.u[1] = rowLen; s.u[2] = rows; s.u[3] = rowLen; },
      [o.buffer, sr.buffer, id.buffer], this.groups1d(rowLen, k));
  }

  // ---------------------------------------------------------------- model kernels (launchers in separate modules)

  writeView(x: Storage, xView: View, out: Storage, outView: View, shape: readonly number[]): void {
    mk.writeView(this.host, x, xView, out, outView, shape);
  }

  attention(q: Storage, k: Storage, v: Storage, keyStart: Storage | null, out: Storage, lse: Storage, args: AttentionArgs): void {
    attention(this.host, q, k, v, keyStart, out, lse, args);
  }

  attentionBackward(
    q: Storage, k: Storage, v: Storage, keyStart: Storage | null, out: Storage, lse: Storage, gOut: Storage,
    gq: Storage, gk: Storage, gv: Storage, args: AttentionArgs,
  ): void {
    attentionBackward(this.host, q, k, v, keyStart, out, lse, gOut, gq, gk, gv, args);
  }

  logSoftmaxGather(logits: Storage, targets: Storage, logp: Storage, entropy: Storage, lse: Storage, rows: number, cols: number): void {
    mk.logSoftmaxGather(this.host, logits, targets, logp, entropy, lse, rows, cols);
  }

  logSoftmaxGatherBackward(
    logits: Storage, targets: Storage, lse: Storage, entropy: Storage, gLogp: Storage, gEntropy: Storage,
    gLogits: Storage, rows: number, cols: number,
  ): void {
    mk.logSoftmaxGatherBackward(this.host, logits, targets, lse, entropy, gLogp, gEntropy, gLogits, rows, cols);
  }

  rmsNorm(x: Storage, weight: Storage, out: Storage, rstd: Storage, rows: number, cols: number, eps: number): void {
    mk.rmsNorm(this.host, x, weight, out, rstd, rows, cols, eps);
  }

  rmsNormBackward(x: Storage, weight: Storage, rstd: Storage, gOut: Storage, gx: Storage, gWeight: Storage, rows: number, cols: number): void {
    mk.rmsNormBackward(this.host, x, weight, rstd, gOut, gx, gWeight, rows, cols);
  }

  rope(x: Storage, positions: Storage, out: Storage, args: RopeArgs): void {
    mk.rope(this.host, x, positions, out, args);
  }

  tokenLoss(logp: Storage, oldLogp: Storage, adv: Storage, weight: Storage, loss: Storage, stats: Storage, n: number, args: TokenLossArgs): void {
    mk.tokenLoss(this.host, logp, oldLogp, adv, weight, loss, stats, n, args);
  }

  tokenLossBackward(
    logp: Storage, oldLogp: Storage, adv: Storage, weight: Storage, gLoss: Storage, gLogp: Storage, n: number, args: TokenLossArgs,
  ): void {
    mk.tokenLossBackward(this.host, logp, oldLogp, adv, weight, gLoss, gLogp, n, args);
  }

  swiglu(gate: Storage, up: Storage, out: Storage, n: number): void {
    mk.swiglu(this.host, gate, up, out, n);
  }

  swigluBackward(gate: Storage, up: Storage, gOut: Storage, gGate: Storage, gUp: Storage, n: number): void {
    mk.swigluBackward(this.host, gate, up, gOut, gGate, gUp, n);
  }

  adamw(param: Storage, grad: Storage, m: Storage, v: Storage, scale: Storage, args: AdamWArgs, n: number): void {
    mk.adamw(this.host, param, grad, m, v, scale, args, n);
  }

  sumSquares(x: Storage, out: Storage, n: number, accumulate: boolean): void {
    mk.sumSquares(this.host, x, out, n, accumulate);
  }

  private makeHost(): KernelHost {
    const fixedSubgroup = this.subgroupMinSize > 0 && this.subgroupMinSize === this.subgroupMaxSize ? this.subgroupMinSize : 0;
    return {
      wg: this.wg,
      maxInvocations: Math.min(this.limits.maxComputeInvocationsPerWorkgroup, this.limits.maxComputeWorkgroupSizeX),
      maxWorkgroupsPerDim: this.limits.maxComputeWorkgroupsPerDimension,
      maxWorkgroupStorage: this.limits.maxComputeWorkgroupStorageSize,
      software: isSoftwareAdapter(this.info),
      fixedSubgroupSize: fixedSubgroup,
      variants: this.variants,
      kernel: (name) => this.kernel(name),
      st: (x, kernel) => this.st(x, kernel),
      pipeline: (family, entry, tpl, kernel) => this.pipeline(family, entry, tpl, kernel),
      launch: (kernel, pe, fill, buffers, groups) => this.launch(kernel, pe, fill, buffers, groups),
      groups1d: (n, kernel, wg) => this.groups1d(n, kernel, wg),
      stridedParams: (kernel, shape, views) => this.stridedParams(kernel, shape, views),
      alloc: (dtype, size) => this.alloc(dtype, size),
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
    const k = this.kernel(kernel);
    const family = `debug:${kernel}`;
    this.extraSources.set(family, wgsl);
    const pe = this.pipeline(family, 'main', {}, k);
    this.launch(k, pe, () => {}, storages.map((s) => this.st(s, k).buffer), groups);
  }
}
