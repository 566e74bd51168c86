// Platform-neutral worker pool over one shared WebAssembly.Memory. Every worker instantiates the same
// engine module on the same memory and sleeps on a control word. A dispatch writes the kernel id, its
// arguments and the boundaries of its chunks into the control block, publishes a claim word tagged with the
// dispatch's sequence number, bumps the sequence word and then claims chunks itself like any worker. Chunks are
// claimed one at a time with a compare-exchange on the claim word, so a worker that the OS has not scheduled
// (2 busy cores, another process running) simply claims nothing: the calling thread never waits for a worker
// to wake, only for chunks that a worker already started. Which thread runs a chunk never changes a result
// (every chunk owns its outputs). Dispatch is synchronous.
//
// Control block (byte offset `ctrl` in the shared memory, CONTROL_BYTES long), as Int32 indices:
//   0 SEQ  1 DONE (chunks finished)  2 KERNEL  3 NARGS  4 SHUTDOWN  5 ERROR  6 PROBE  7 SCRATCH_SLOT
//   8 SCRATCH_STRIDE  9 NCHUNKS  10–11 CLAIM (int64: sequence << 16 | next chunk)
//   bytes 64..255: float64 arguments (24 slots); int32 index 64 + q: start of chunk q (q ≤ MAX_CHUNKS).

export const CONTROL_BYTES = 4096;
export const ARG_SLOTS = 24;
export const MAX_THREADS = 256;
/** Most chunks one dispatch is cut into (their boundaries fill int32 words 64..64 + MAX_CHUNKS). */
export const MAX_CHUNKS = 511;
const SEQ = 0, DONE = 1, KERNEL = 2, NARGS = 3, SHUTDOWN = 4, ERROR = 5, PROBE = 6, SCRATCH_SLOT = 7, SCRATCH_STRIDE = 8;
const NCHUNKS = 9;
const CLAIM64 = 5; // BigInt64 index of int32 words 10–11
const BOUNDS = 64;
/** Low bits of the claim word: the next chunk; CLOSED marks a dispatch whose chunks may no longer be claimed. */
const CLOSED = 0xffff;

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
  var control = new Int32Array(buf, init.ctrl, ${CONTROL_BYTES / 4});
  var claim = new BigInt64Array(buf, init.ctrl, 8);
  var argSlots = new Float64Array(buf, init.ctrl + 64, ${ARG_SLOTS});
  var tid = init.tid, spin = init.spin;
  var seq = Atomics.load(control, ${SEQ});
  var args = [];
  post({ type: 'ready', tid: tid });
  for (;;) {
    var current = Atomics.load(control, ${SEQ});
    if (current === seq) {
      // spin a little (back-to-back kernels), then sleep on the sequence word
      var t0 = performance.now(), spins = 0;
      while (current === seq) {
        if ((++spins & 255) === 0 && performance.now() - t0 > spin) { Atomics.wait(control, ${SEQ}, seq); t0 = performance.now(); }
        current = Atomics.load(control, ${SEQ});
      }
    }
    seq = current;
    if (Atomics.load(control, ${SHUTDOWN}) !== 0) break;
    // The tag binds what is read next to this dispatch: the host closes the claim word before rewriting it.
    var claimed = Atomics.load(claim, ${CLAIM64});
    var tag = claimed >> 16n;
    var n = control[${NARGS}], nc = control[${NCHUNKS}], fn = fns[control[${KERNEL}]];
    args.length = 0;
    for (var i = 0; i < n; i++) args.push(argSlots[i]);
    var slot = control[${SCRATCH_SLOT}];
    if (slot >= 0) args[slot] = argSlots[slot] + tid * control[${SCRATCH_STRIDE}];
    args.push(0, 0);
    for (;;) {
      claimed = Atomics.load(claim, ${CLAIM64});
      if ((claimed >> 16n) !== tag) break;
      var q = Number(claimed & 0xffffn);
      if (q >= nc) break;
      if (Atomics.compareExchange(claim, ${CLAIM64}, claimed, claimed + 1n) !== claimed) continue;
      args[n] = control[${BOUNDS} + q];
      args[n + 1] = control[${BOUNDS + 1} + q];
      try { fn.apply(null, args); } catch (e) { Atomics.store(control, ${ERROR}, tid + 1); }
      Atomics.add(control, ${DONE}, 1);
      Atomics.notify(control, ${DONE});
    }
  }
}
`;

/** Kernel entry points of the engine module. */
export type KernelFn = (...args: number[]) => void;

export interface DispatchOptions {
  /** Chunk boundaries are rounded to multiples of this. */
  align?: number;
  /** Argument index that holds a scratch base; thread t receives base + t * scratchStride. */
  scratchSlot?: number;
  scratchStride?: number;
  /**
   * Chunks to cut the work into (default: CHUNKS_PER_PART per part). More chunks balance better when a
   * thread is descheduled; fewer suit kernels with a per-call setup cost (matmul packs B per call).
   */
  chunks?: number;
}

/** What the pool counts (for tests and profiling). */
export interface PoolStats {
  /** Dispatches posted to the workers (single-threaded kernels are not counted). */
  dispatches: number;
  chunks: number;
  /** Chunks the calling thread ran itself (all of them when no worker showed up in time). */
  callerChunks: number;
  /** Time the caller spent on its own chunks, and waiting for workers' chunks after that. */
  ownMs: number;
  waitMs: number;
  /** Dispatches whose wait for workers exceeded 1 ms. */
  longWaits: number;
  /**
   * Dispatches that waited far longer than a chunk takes (a worker descheduled mid-chunk: the cores are
   * busy with other work); STRIKES close together start a solo period (SOLO_MS, doubling while contention recurs).
   */
  contended: number;
  /** Kernels run on the calling thread alone because of a solo period. */
  soloRuns: number;
  /** Dispatches of which the workers ran no chunk at all. */
  absent: number;
}

/**
 * After a contended dispatch, kernels run on the calling thread alone for this long (ms). On a machine whose
 * cores are taken by other processes a second thread gains nothing and every preemption of it mid-chunk
 * stalls the caller for a time slice; on an idle machine contended dispatches do not happen.
 */
export const SOLO_MS = 100;
/** Longest solo period, reached by doubling while contention keeps recurring right after one ends. */
export const MAX_SOLO_MS = 1600;
/** STRIKES contended dispatches, each at most this far (ms, or dispatches) after the last, start a solo period. */
const STRIKES = 3;
const STRIKE_MS = 50;
const STRIKE_DISPATCHES = 32;
/**
 * Dispatches before contention is judged: a worker's first call of each kernel is slow (V8 compiles the
 * JS-to-wasm wrapper per isolate), which would look like a descheduled worker.
 */
const WARMUP_DISPATCHES = 200;
/** Consecutive dispatches without any worker's help that count as contended. */
const ABSENT_STREAK = 8;
/** Shortest wait for workers' chunks that can count as contended (ms). */
const CONTENDED_MS = 1.5;

/** Default chunks per requested part: enough that the calling thread can take over a late worker's share. */
export const CHUNKS_PER_PART = 4;

export class ThreadPool {
  readonly threads: number;
  private readonly control: Int32Array;
  private readonly claim: BigInt64Array;
  private readonly argSlots: Float64Array;
  private readonly canBlock: boolean;
  private destroyed = false;
  /** Tag of the last dispatch (strictly increasing, so a stale claim can never match a later dispatch). */
  private tag = 0n;
  readonly stats: PoolStats = { dispatches: 0, chunks: 0, callerChunks: 0, ownMs: 0, waitMs: 0, longWaits: 0, contended: 0, soloRuns: 0, absent: 0 };
  private soloUntil = 0;
  private absentStreak = 0;
  private soloMs = SOLO_MS;
  private soloEnded = -Infinity;
  private lastContended = -Infinity;
  private lastContendedAt = -Infinity;
  private strikes = 0;

  private constructor(
    memory: WebAssembly.Memory,
    private readonly ctrl: number,
    private readonly fns: KernelFn[],
    private readonly workers: PoolWorker[],
    private readonly adaptive: boolean,
  ) {
    this.threads = workers.length + 1;
    this.control = new Int32Array(memory.buffer, ctrl, CONTROL_BYTES / 4);
    this.claim = new BigInt64Array(memory.buffer, ctrl, 8);
    this.argSlots = new Float64Array(memory.buffer, ctrl + 64, ARG_SLOTS);
    this.canBlock = ThreadPool.probeBlocking(this.control);
    Atomics.store(this.claim, CLAIM64, BigInt(CLOSED));
  }
  /** Atomics.wait throws on a browser main thread; there we spin instead. */
  private static probeBlocking(control: Int32Array): boolean {
    if (!(control.buffer instanceof SharedArrayBuffer)) return false;
    try {
      Atomics.wait(control, PROBE, 1, 0);
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
    /** Run kernels on the calling thread alone while the workers are found descheduled (default true). */
    adaptive?: boolean;
  }): Promise<ThreadPool> {
    const n = Math.max(1, Math.min(MAX_THREADS, Math.floor(opts.threads)));
    const workers: PoolWorker[] = [];
    if (n > 1 && opts.factory) {
      const control = new Int32Array(opts.memory.buffer, opts.ctrl, CONTROL_BYTES / 4);
      control.fill(0);
      control[SCRATCH_SLOT] = -1;
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
    return new ThreadPool(opts.memory, opts.ctrl, opts.fns, workers, opts.adaptive ?? true);
  }

  /** Splits [0, work) into `parts` slices whose boundaries are multiples of `align`. */
  static split(work: number, parts: number, align: number): number[] {
    const bounds = [0];
    for (let t = 1; t < parts; t++) bounds.push(Math.min(work, Math.round((work * t) / parts / align) * align));
    bounds.push(work);
    for (let t = 1; t <= parts; t++) bounds[t] = Math.max(bounds[t], bounds[t - 1]);
    return bounds;
  }

  /**
   * True while a recent dispatch found the workers descheduled: the caller should run kernels itself
   * (counted as solo runs).
   */
  solo(): boolean {
    if (this.soloUntil === 0) return false;
    const now = performance.now();
    if (now < this.soloUntil) {
      this.stats.soloRuns++;
      return true;
    }
    this.soloUntil = 0;
    this.soloEnded = now;
    return false;
  }

  /**
   * Runs kernel `id` over [0, work), cut into aligned chunks that every thread (the calling one included)
   * claims until none is left, and returns when all are done. `parts` is how many threads the work is worth;
   * it sets the default chunk count. Throws (naming the kernel) if a chunk trapped.
   */
  run(kernel: string, id: number, args: number[], work: number, parts: number, opts: DispatchOptions = {}): void {
    if (this.destroyed) throw new Error('thread pool destroyed');
    if (args.length > ARG_SLOTS) throw new Error('too many kernel arguments');
    const control = this.control;
    const claim = this.claim;
    const argSlots = this.argSlots;
    const align = Math.max(1, opts.align ?? 1);
    const want = opts.chunks ?? Math.max(1, Math.min(parts, this.threads)) * CHUNKS_PER_PART;
    const nc = Math.max(1, Math.min(MAX_CHUNKS, want, Math.ceil(work / align)));
    const bounds = ThreadPool.split(work, nc, align);
    const slot = opts.scratchSlot ?? -1;
    for (let i = 0; i < args.length; i++) argSlots[i] = args[i];
    control[KERNEL] = id;
    control[NARGS] = args.length;
    control[SCRATCH_SLOT] = slot;
    control[SCRATCH_STRIDE] = opts.scratchStride ?? 0;
    control[NCHUNKS] = nc;
    for (let q = 0; q <= nc; q++) control[BOUNDS + q] = bounds[q];
    Atomics.store(control, ERROR, 0);
    Atomics.store(control, DONE, 0);
    const tag = ++this.tag;
    Atomics.store(claim, CLAIM64, tag << 16n);
    Atomics.add(control, SEQ, 1);
    Atomics.notify(control, SEQ, Math.min(this.workers.length, nc - 1));
    this.stats.dispatches++;
    this.stats.chunks += nc;

    // Claim chunks like a worker; a chunk that throws is recorded and the rest still run (each owns its outputs).
    const fn = this.fns[id];
    const callArgs = [...args, 0, 0];
    const n = args.length;
    let err: unknown = null;
    let mine = 0;
    const tStart = performance.now();
    for (;;) {
      const claimed = Atomics.load(claim, CLAIM64);
      const q = Number(claimed & 0xffffn);
      if (q >= nc) break;
      if (Atomics.compareExchange(claim, CLAIM64, claimed, claimed + 1n) !== claimed) continue;
      callArgs[n] = bounds[q];
      callArgs[n + 1] = bounds[q + 1];
      try {
        fn(...callArgs);
      } catch (e) {
        err ??= e;
      }
      mine++;
      Atomics.add(control, DONE, 1);
    }
    // Every chunk is claimed; wait for those still running on workers. Spin first (a chunk is short), then
    // sleep where allowed: a worker descheduled mid-chunk may take a time slice to come back.
    let spins = 0, t0 = 0;
    const tOwn = performance.now();
    this.stats.ownMs += tOwn - tStart;
    for (;;) {
      const done = Atomics.load(control, DONE);
      if (done >= nc) break;
      if ((++spins & 1023) === 0) {
        const now = performance.now();
        if (t0 === 0) t0 = now;
        else if (this.canBlock && now - t0 > 1) Atomics.wait(control, DONE, done, 1);
      }
    }
    Atomics.store(claim, CLAIM64, (tag << 16n) | BigInt(CLOSED));
    const tEnd = performance.now();
    const waited = tEnd - tOwn;
    const stats = this.stats;
    stats.callerChunks += mine;
    if (mine === nc) {
      stats.absent++;
      this.absentStreak++;
    } else this.absentStreak = 0;
    stats.waitMs += waited;
    if (waited > 1) stats.longWaits++;
    // A worker's chunk takes about as long as one of ours; waiting much longer means it lost its core.
    // So does a run of dispatches that no worker joined at all: the workers are not getting a core.
    if (this.adaptive && stats.dispatches > WARMUP_DISPATCHES && (waited > Math.max(CONTENDED_MS, 4 * (tOwn - tStart) / Math.max(1, mine)) || this.absentStreak >= ABSENT_STREAK)) {
      this.absentStreak = 0;
      stats.contended++;
      // One or two events can be a hiccup (V8's compiler or GC threads taking the other core for a moment);
      // a run of them means the cores are taken.
      const close = tEnd - this.lastContended < STRIKE_MS || stats.dispatches - this.lastContendedAt <= STRIKE_DISPATCHES;
      this.strikes = close ? this.strikes + 1 : 1;
      if (this.strikes >= STRIKES) {
        this.strikes = 0;
        // Contention again soon after a solo period: the load persists, so back off for longer.
        this.soloMs = tEnd - this.soloEnded < 4 * this.soloMs ? Math.min(MAX_SOLO_MS, 2 * this.soloMs) : SOLO_MS;
        this.soloUntil = tEnd + this.soloMs;
      }
      this.lastContended = tEnd;
      this.lastContendedAt = stats.dispatches;
    }
    const workerError = Atomics.load(control, ERROR);
    if (err) throw err;
    if (workerError) throw new Error(`kernel '${kernel}' trapped on worker ${workerError - 1}`);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    Atomics.store(this.control, SHUTDOWN, 1);
    Atomics.add(this.control, SEQ, 1);
    Atomics.notify(this.control, SEQ);
    for (const w of this.workers) w.terminate();
    this.workers.length = 0;
  }
}
