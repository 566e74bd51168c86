// Dispatch recording for the WebGPU backend: the pipeline cache, batching of dispatches into one compute
// pass per submit, the per-batch uniform arenas, and error scopes that turn WebGPU errors into KernelErrors
// naming the kernel.
//
// Submission model: dispatches are recorded into one compute pass of one command encoder; the batch is submitted
// when it reaches its size (or on read/sync/microtask idle). The first batch after an idle submit holds
// `batchDispatches` dispatches, so the GPU starts early; while recording goes on without a pause each next batch
// doubles, up to `maxBatchDispatches`, so a long step (a train step: hundreds of dispatches) takes a few submits,
// not one per `batchDispatches`. Each dispatch's
// uniform block lives in a 256-byte slot of the batch's uniform arena, written with one writeBuffer right
// before that batch's submit; the arena returns to its pool when the submit has completed. Buffers freed
// meanwhile return to the storage pool only after the submit that last used them has completed.
import { KernelError } from '../types.js';
import type { Groups, PipelineRef, UniformSlot } from './kernel_host.js';
import { WGSL } from './shaders.gen.js';
import { expandTemplate } from './wgsl_template.js';

// Numeric GPUBufferUsage flags (globals are not guaranteed under Node).
const USAGE_COPY_DST = 0x0008;
const USAGE_UNIFORM = 0x0040;

const UNIFORM_SLOT_BYTES = 256;
const UNIFORM_SLOT_WORDS = UNIFORM_SLOT_BYTES / 4;

interface UniformArena {
  gpu: GPUBuffer;
  cpu: ArrayBuffer;
  u32: Uint32Array;
  f32: Float32Array;
  i32: Int32Array;
}

export class Dispatcher {
  private dev: GPUDevice | null;
  private readonly arenaPool: UniformArena[] = [];
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly pipelines = new Map<string, PipelineRef>();
  /** WGSL sources registered at run time (test hooks), by family name. */
  readonly extraSources = new Map<string, string>();

  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private arena: UniformArena | null = null;
  private slots = 0;
  private batchKernels: string[] = [];
  /** The open run of coalesced calls (multi-tensor kernels), recorded before any other dispatch or submit. */
  private run: { key: readonly unknown[]; items: unknown[]; emit: (items: unknown[]) => void } | null = null;
  private batchFrees: GPUBuffer[] = [];
  private flushScheduled = false;
  private readonly inflight = new Set<Promise<unknown>>();

  dispatches = 0;
  submits = 0;
  /** Dispatches by kernel name since creation (diagnostics: which ops issue how many). */
  readonly dispatchesByKernel = new Map<string, number>();

  private lastKernel = '(none)';
  private pendingError: KernelError | null = null;
  private pendingErrorSecondary = false;
  private lostInfo: { reason: string; message: string } | null = null;
  destroyed = false;
  /** Rejecters of the waits in flight (untilLost), called when the device is lost. */
  private readonly lossWaiters = new Set<() => void>();
  private readonly kernelNames = new Set<string>();

  /** Dispatches the current batch is submitted at (batchDispatches after an idle submit, doubling after full ones). */
  private batchLimit: number;

  constructor(
    device: GPUDevice,
    private readonly batchDispatches: number,
    /** Upper bound of the growing batch size (≥ batchDispatches; equal: fixed batches). */
    private readonly maxBatchDispatches: number,
    private readonly maxWorkgroupsPerDim: number,
    /** Workgroup size of the 1-D kernels (groups1d's default). */
    private readonly wg: number,
    /** Returns a freed storage buffer to its pool (called once no submitted work uses it). */
    private readonly releaseBuffer: (buffer: GPUBuffer) => void,
  ) {
    this.dev = device;
    this.batchLimit = batchDispatches;
    device.lost.then((info) => {
      if (!this.destroyed) this.lostInfo = { reason: info.reason, message: info.message };
      for (const abort of this.lossWaiters) abort();
      this.lossWaiters.clear();
    }).catch(() => {});
    device.onuncapturederror = (ev: GPUUncapturedErrorEvent) => {
      if (this.destroyed || this.lostInfo) return;
      this.recordError(ev.error.message, this.lastKernel);
    };
  }

  /** The device (tests use it to simulate loss). Throws once the backend is destroyed. */
  get device(): GPUDevice {
    if (!this.dev) throw new KernelError('device', 'WebGPU backend was destroyed');
    return this.dev;
  }

  get pipelineCount(): number {
    return this.pipelines.size;
  }

  get uniformArenaCount(): number {
    return this.arenaPool.length;
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
      for (const label of message.matchAll(/"+([^"]+)"+/g)) {
        if (this.kernelNames.has(label[1])) { kernel = label[1]; break; }
      }
    }
    const secondary = /due to a previous error/.test(message);
    if (this.pendingError && !(this.pendingErrorSecondary && !secondary)) return;
    this.pendingError = new KernelError(kernel, `WebGPU error in kernel '${kernel}': ${message}`);
    this.pendingErrorSecondary = secondary;
  }

  /** Throws when the backend cannot run `kernel`: destroyed, device lost, or an earlier recorded error. */
  check(kernel: string): GPUDevice {
    if (this.destroyed || !this.dev) throw new KernelError(kernel, 'WebGPU backend was destroyed');
    if (this.lostInfo) {
      const why = this.lostInfo.message ? `${this.lostInfo.reason}: ${this.lostInfo.message}` : this.lostInfo.reason;
      throw new KernelError(kernel, `WebGPU device lost (${why}): ${kernel}`);
    }
    if (this.pendingError) {
      const error = this.pendingError;
      this.pendingError = null;
      throw error;
    }
    return this.dev;
  }

  /** Checks the backend is usable and registers `name` for error attribution; returns it. */
  kernel(name: string): string {
    this.check(name);
    this.kernelNames.add(name);
    return name;
  }

  /** When an error is pending, waits for in-flight work so its root cause is recorded before reporting. */
  async settleIfFailed(): Promise<void> {
    if (this.pendingError && this.inflight.size) await Promise.allSettled([...this.inflight]);
  }

  /** Waits for every tracked promise (submits, error scopes, maps). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.inflight]);
  }

  /**
   * `promise`, tracked, or a KernelError naming `kernel` once the device is lost first: a readback must end with
   * an error, not wait forever, whatever the implementation does with maps pending at the loss.
   */
  untilLost<T>(promise: Promise<T>, kernel: string): Promise<T> {
    return this.track(new Promise<T>((resolve, reject) => {
      const abort = () => {
        try {
          this.check(kernel);
          reject(new KernelError(kernel, `WebGPU device lost: ${kernel}`));
        } catch (e) {
          reject(e);
        }
      };
      this.lossWaiters.add(abort);
      promise.then(resolve, reject).finally(() => this.lossWaiters.delete(abort));
    }));
  }

  track<T>(promise: Promise<T>): Promise<T> {
    const tracked = promise.finally(() => this.inflight.delete(tracked));
    this.inflight.add(tracked);
    tracked.catch(() => {});
    return tracked;
  }

  // ---------------------------------------------------------------- pipelines and dispatch

  pipeline(family: string, entry: string, tpl: Record<string, number>, kernel: string): PipelineRef {
    const tplKey = Object.keys(tpl).sort().map((name) => `${name}=${tpl[name]}`).join(',');
    const key = `${family}:${entry}:${tplKey}`;
    const hit = this.pipelines.get(key);
    if (hit) return hit;
    const dev = this.device;
    const src = this.extraSources.get(family) ?? WGSL[family];
    if (src === undefined) throw new KernelError(kernel, `no WGSL source '${family}' (run node scripts/build.mjs shaders)`);
    const moduleKey = `${family}:${tplKey}`;
    let module = this.modules.get(moduleKey);
    dev.pushErrorScope('validation');
    if (!module) {
      const code = expandTemplate(src, tpl);
      module = dev.createShaderModule({ code, label: `${family}[${tplKey}]` });
      this.modules.set(moduleKey, module);
    }
    const pipeline = dev.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: entry }, label: kernel });
    const layout = pipeline.getBindGroupLayout(0);
    const scope = dev.popErrorScope().then(async (err) => {
      if (!err) return;
      let detail = err.message;
      try {
        const info = await module!.getCompilationInfo();
        const messages = info.messages.filter((entry) => entry.type === 'error').map((entry) => `${entry.lineNum}:${entry.linePos} ${entry.message}`);
        if (messages.length) detail += ` | ${messages.join(' | ')}`;
      } catch { /* ignore */ }
      this.recordError(`pipeline creation failed: ${detail}`, kernel, true);
    });
    this.track(scope);
    const entryRef = { pipeline, layout };
    this.pipelines.set(key, entryRef);
    return entryRef;
  }

  private newArena(): UniformArena {
    const reuse = this.arenaPool.pop();
    if (reuse) return reuse;
    const bytes = UNIFORM_SLOT_BYTES * this.maxBatchDispatches;
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
  launch(kernel: string, pipeline: PipelineRef, fill: (slot: UniformSlot) => void, buffers: (GPUBuffer | GPUBufferBinding)[], groups: Groups): void {
    const dev = this.device;
    if (groups[0] === 0 || groups[1] === 0 || groups[2] === 0) return;
    this.emitRun();
    if (!this.encoder) {
      this.encoder = dev.createCommandEncoder({ label: 'batch' });
      this.pass = this.encoder.beginComputePass({ label: 'batch' });
      this.arena = this.newArena();
      this.slots = 0;
    }
    const arena = this.arena!;
    const slot = this.slots++;
    const firstWord = slot * UNIFORM_SLOT_WORDS;
    const endWord = firstWord + UNIFORM_SLOT_WORDS;
    arena.u32.fill(0, firstWord, endWord);
    fill({ u: arena.u32.subarray(firstWord, endWord), f: arena.f32.subarray(firstWord, endWord), i: arena.i32.subarray(firstWord, endWord) });
    const entries: GPUBindGroupEntry[] = [
      { binding: 0, resource: { buffer: arena.gpu, offset: slot * UNIFORM_SLOT_BYTES, size: UNIFORM_SLOT_BYTES } },
    ];
    for (const [index, buffer] of buffers.entries()) entries.push({ binding: index + 1, resource: 'buffer' in buffer ? buffer : { buffer } });
    const bindGroup = dev.createBindGroup({ layout: pipeline.layout, entries, label: kernel });
    const pass = this.pass!;
    pass.setPipeline(pipeline.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(groups[0], groups[1], groups[2]);
    this.lastKernel = kernel;
    this.batchKernels.push(kernel);
    this.dispatches++;
    this.dispatchesByKernel.set(kernel, (this.dispatchesByKernel.get(kernel) ?? 0) + 1);
    if (this.slots >= this.batchLimit) {
      const next = Math.min(this.batchLimit * 2, this.maxBatchDispatches);
      this.flush();
      this.batchLimit = next;
    } else {
      this.scheduleFlush();
    }
  }

  /**
   * Defers `item` into a run of calls that one multi-tensor launch can serve: it joins the open run when that has
   * the same `key` (compared element by element with ===), else the open run is emitted and a new one opened. A run
   * is emitted (`emit` records its dispatches) before any other dispatch is recorded and before every submit, so
   * the GPU sees the calls in program order; the caller must have resolved and checked its storages already.
   */
  coalesce<T>(key: readonly unknown[], item: T, emit: (items: T[]) => void): void {
    const open = this.run;
    if (open && open.key.length === key.length && open.key.every((part, i) => part === key[i])) {
      open.items.push(item);
    } else {
      this.emitRun();
      this.run = { key, items: [item], emit: emit as (items: unknown[]) => void };
    }
    this.scheduleFlush();
  }

  private emitRun(): void {
    const open = this.run;
    if (!open) return;
    this.run = null;
    open.emit(open.items);
  }

  /** Grid for n work items of `wg` each, spilling into y past the per-dimension limit. */
  groups1d(n: number, kernel: string, wg = this.wg): [number, number, number] {
    const groups = Math.ceil(n / wg);
    const maxDim = this.maxWorkgroupsPerDim;
    if (groups <= maxDim) return [groups, 1, 1];
    const rows = Math.ceil(groups / maxDim);
    if (rows > maxDim) throw new KernelError(kernel, `${n} work items exceed the dispatch limits`);
    return [Math.ceil(groups / rows), rows, 1];
  }

  /** Hands a freed buffer back to the pool once the work recorded so far has been submitted (flush). */
  releaseAfterWork(buffer: GPUBuffer): void {
    this.batchFrees.push(buffer);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      if (!this.destroyed && !this.lostInfo) this.flush();
    });
  }

  /**
   * Submits the recorded batch (if any) and schedules the release of buffers freed since the last flush. The next
   * batch starts at `batchDispatches` again (launch raises it after a full batch).
   */
  flush(): void {
    const dev = this.dev;
    if (!dev || this.destroyed) return;
    this.emitRun();
    this.batchLimit = this.batchDispatches;
    const frees = this.batchFrees;
    this.batchFrees = [];
    let arena: UniformArena | null = null;
    if (this.encoder) {
      this.pass!.end();
      arena = this.arena!;
      const kernels = this.batchKernels;
      dev.queue.writeBuffer(arena.gpu, 0, arena.cpu, 0, this.slots * UNIFORM_SLOT_BYTES);
      dev.pushErrorScope('validation');
      const commands = this.encoder.finish({ label: 'batch' });
      dev.queue.submit([commands]);
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
    // Freed buffers go back to the pool as soon as the work that last used them is submitted: the queue runs every
    // later submit and writeBuffer after it, so reusing them cannot overtake that work. Waiting for completion
    // instead kept every buffer freed while a slow queue lagged behind recording (lavapipe: 12 GiB of buffers for a
    // 4.5 GiB LoRA step of a 0.5 B model).
    for (const buffer of frees) this.releaseBuffer(buffer);
    if (!arena) return;
    this.track(dev.queue.onSubmittedWorkDone().then(() => {
      if (this.destroyed) return;
      this.arenaPool.push(arena);
    }));
  }

  /** Ends recording and drops the caches; the caller destroys the device. */
  destroy(): void {
    this.run = null;
    try {
      if (this.pass) this.pass.end();
    } catch { /* ignore */ }
    this.pass = null;
    this.encoder = null;
    this.destroyed = true;
    for (const arena of this.arenaPool) arena.gpu.destroy();
    this.arenaPool.length = 0;
    this.modules.clear();
    this.pipelines.clear();
    if (this.dev) this.dev.onuncapturederror = null;
    this.dev = null;
  }
}
