// Platform-neutral worker pool over one shared WebAssembly.Memory. Every worker instantiates the same
// engine module on the same memory and sleeps on a control word; a dispatch writes the kernel id, its
// arguments and one [start, end) slice per thread into the control block, bumps the sequence word, runs
// slice 0 on the calling thread, then waits until every worker has acknowledged. Dispatch is synchronous.
//
// Control block (byte offset `ctrl` in the shared memory, CONTROL_BYTES long), as Int32 indices:
//   0 SEQ  1 DONE  2 KERNEL  3 NARGS  4 SHUTDOWN  5 ERROR  6 PROBE  7 SCRATCH_SLOT  8 SCRATCH_STRIDE
//   bytes 64..255: float64 arguments (24 slots); int32 index 64 + 2t, 65 + 2t: slice of thread t.

export const CONTROL_BYTES = 4096;
export const ARG_SLOTS = 24;
export const MAX_THREADS = 256;
const SEQ = 0, DONE = 1, KERNEL = 2, NARGS = 3, SHUTDOWN = 4, ERROR = 5, PROBE = 6, SCRATCH_SLOT = 7, SCRATCH_STRIDE = 8;
const RANGES = 64;

/** What a worker receives when it starts. */
export interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  tid: number;
  ctrl: number;
  names: string[];
  /** Milliseconds an idle worker spins before it sleeps on the control word. */
  spin: number;
}

/** A started worker, as the platform adapter hands it back. */
export interface PoolWorker {
  terminate(): void;
}

/**
 * Starts workers on a platform (Node worker_threads, browser Web Workers). `source` is a self-contained
 * script defining `__poolMain(init, post)`; the factory runs it with `init` and resolves when the worker
 * posts `{ type: 'ready' }`. Workers must not keep the host process alive (Node: unref them).
 */
export interface WorkerFactory {
  readonly kind: string;
  start(source: string, init: WorkerInit): Promise<PoolWorker>;
}

/** The code every worker runs (plain JS so it works from TS sources and compiled dist/ alike). */
export const WORKER_SOURCE = `
function __poolMain(init, post) {
  var inst = new WebAssembly.Instance(init.module, { env: { memory: init.memory } });
  var fns = init.names.map(function (n) { return inst.exports[n]; });
  var buf = init.memory.buffer;
  var I = new Int32Array(buf, init.ctrl, ${CONTROL_BYTES / 4});
  var F = new Float64Array(buf, init.ctrl + 64, ${ARG_SLOTS});
  var tid = init.tid, spin = init.spin;
  var seq = Atomics.load(I, ${SEQ});
  var args = [];
  post({ type: 'ready', tid: tid });
  for (;;) {
    var s = Atomics.load(I, ${SEQ});
    if (s === seq) {
      // spin a little (back-to-back kernels), then sleep on the sequence word
      var t0 = performance.now(), spins = 0;
      while (s === seq) {
        if ((++spins & 255) === 0 && performance.now() - t0 > spin) { Atomics.wait(I, ${SEQ}, seq); t0 = performance.now(); }
        s = Atomics.load(I, ${SEQ});
      }
    }
    seq = s;
    if (Atomics.load(I, ${SHUTDOWN}) !== 0) break;
    var n = I[${NARGS}];
    args.length = 0;
    for (var i = 0; i < n; i++) args.push(F[i]);
    var slot = I[${SCRATCH_SLOT}];
    if (slot >= 0) args[slot] = F[slot] + tid * I[${SCRATCH_STRIDE}];
    var st = I[${RANGES} + 2 * tid], en = I[${RANGES + 1} + 2 * tid];
    if (st < en) {
      args.push(st, en);
      try { fns[I[${KERNEL}]].apply(null, args); } catch (e) { Atomics.store(I, ${ERROR}, tid + 1); }
    }
    Atomics.add(I, ${DONE}, 1);
    Atomics.notify(I, ${DONE});
  }
}
`;

/** Kernel entry points of the engine module. */
export type KernelFn = (...args: number[]) => void;

export interface DispatchOptions {
  /** Slice boundaries are rounded to multiples of this. */
  align?: number;
  /** Argument index that holds a scratch base; thread t receives base + t * scratchStride. */
  scratchSlot?: number;
  scratchStride?: number;
}

export class ThreadPool {
  readonly threads: number;
  private readonly I: Int32Array;
  private readonly F: Float64Array;
  private readonly canBlock: boolean;
  private destroyed = false;

  private constructor(
    memory: WebAssembly.Memory,
    private readonly ctrl: number,
    private readonly fns: KernelFn[],
    private readonly workers: PoolWorker[],
  ) {
    this.threads = workers.length + 1;
    this.I = new Int32Array(memory.buffer, ctrl, CONTROL_BYTES / 4);
    this.F = new Float64Array(memory.buffer, ctrl + 64, ARG_SLOTS);
    this.canBlock = ThreadPool.probeBlocking(this.I);
  }

  /** Atomics.wait throws on a browser main thread; there we spin instead. */
  private static probeBlocking(I: Int32Array): boolean {
    if (!(I.buffer instanceof SharedArrayBuffer)) return false;
    try {
      Atomics.wait(I, PROBE, 1, 0);
      return true;
    } catch {
      return false;
    }
  }

  static async create(opts: {
    module: WebAssembly.Module;
    memory: WebAssembly.Memory;
    ctrl: number;
    names: string[];
    fns: KernelFn[];
    threads: number;
    factory?: WorkerFactory;
    /** How long an idle worker spins before sleeping (ms). */
    spinMs?: number;
  }): Promise<ThreadPool> {
    const n = Math.max(1, Math.min(MAX_THREADS, Math.floor(opts.threads)));
    const workers: PoolWorker[] = [];
    if (n > 1 && opts.factory) {
      const I = new Int32Array(opts.memory.buffer, opts.ctrl, CONTROL_BYTES / 4);
      I.fill(0);
      I[SCRATCH_SLOT] = -1;
      const started = await Promise.allSettled(Array.from({ length: n - 1 }, (_, i) => opts.factory!.start(WORKER_SOURCE, {
        module: opts.module, memory: opts.memory, tid: i + 1, ctrl: opts.ctrl, names: opts.names, spin: opts.spinMs ?? 0.5,
      })));
      const failed = started.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
      for (const r of started) if (r.status === 'fulfilled') workers.push(r.value);
      if (failed) {
        for (const w of workers) w.terminate();
        throw new Error(`wasm thread pool: a worker failed to start: ${String(failed.reason)}`);
      }
    }
    return new ThreadPool(opts.memory, opts.ctrl, opts.fns, workers);
  }

  /** Splits [0, work) into `parts` slices whose boundaries are multiples of `align`. */
  static split(work: number, parts: number, align: number): number[] {
    const b = [0];
    for (let t = 1; t < parts; t++) b.push(Math.min(work, Math.round((work * t) / parts / align) * align));
    b.push(work);
    for (let t = 1; t <= parts; t++) b[t] = Math.max(b[t], b[t - 1]);
    return b;
  }

  /**
   * Runs kernel `id` over [0, work) on `parts` threads (<= threads) and returns when all are done.
   * Throws (naming the kernel) if a worker trapped.
   */
  run(kernel: string, id: number, args: number[], work: number, parts: number, opts: DispatchOptions = {}): void {
    if (this.destroyed) throw new Error('thread pool destroyed');
    const I = this.I;
    const F = this.F;
    const nw = this.workers.length;
    parts = Math.max(1, Math.min(parts, this.threads));
    const bounds = ThreadPool.split(work, parts, opts.align ?? 1);
    const slot = opts.scratchSlot ?? -1;
    if (args.length > ARG_SLOTS) throw new Error('too many kernel arguments');
    for (let i = 0; i < args.length; i++) F[i] = args[i];
    I[KERNEL] = id;
    I[NARGS] = args.length;
    I[SCRATCH_SLOT] = slot;
    I[SCRATCH_STRIDE] = opts.scratchStride ?? 0;
    for (let t = 0; t <= nw; t++) {
      I[RANGES + 2 * t] = t < parts ? bounds[t] : 0;
      I[RANGES + 2 * t + 1] = t < parts ? bounds[t + 1] : 0;
    }
    Atomics.store(I, ERROR, 0);
    Atomics.store(I, DONE, 0);
    Atomics.add(I, SEQ, 1);
    Atomics.notify(I, SEQ);
    let err: unknown = null;
    try {
      if (bounds[0] < bounds[1]) this.fns[id](...args, bounds[0], bounds[1]);
    } catch (e) {
      err = e;
    }
    // Spin (a sleeping thread takes tens of microseconds to wake); after 2 ms, sleep where allowed.
    let spins = 0, t0 = 0;
    for (;;) {
      const d = Atomics.load(I, DONE);
      if (d >= nw) break;
      if ((++spins & 1023) === 0) {
        const now = performance.now();
        if (t0 === 0) t0 = now;
        else if (this.canBlock && now - t0 > 2) Atomics.wait(I, DONE, d, 1);
      }
    }
    const werr = Atomics.load(I, ERROR);
    if (err) throw err;
    if (werr) throw new Error(`kernel '${kernel}' trapped on worker ${werr - 1}`);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    Atomics.store(this.I, SHUTDOWN, 1);
    Atomics.add(this.I, SEQ, 1);
    Atomics.notify(this.I, SEQ);
    for (const w of this.workers) w.terminate();
    this.workers.length = 0;
  }
}
