// WASM backend: the AssemblyScript engine (engine/*.ts, SIMD) on one shared WebAssembly.Memory, a
// size-class arena that owns every allocation, and an optional worker pool that splits each kernel's
// work range across threads. Platform-neutral: Node supplies workers through node_workers.ts, browsers
// through browser_workers.ts (cross-origin isolated pages only; otherwise one thread).
import { type Backend, type BinaryOp, type ReduceOp, type UnaryOp, BINARY_CODE, REDUCE_CODE, UNARY_CODE } from '../backend.js';
import { type ModelKernels, validatedKernels } from '../model_kernels.js';
import { mix32 } from '../rng.js';
import {
  type DType, KernelError, MAX_RANK, type MatmulArgs, type MemoryStats, type RandomArgs, type Storage, type View, coalesce, sizeOf,
} from '../types.js';
import { Arena } from './arena.js';
import { browserThreadsAvailable, browserWorkerFactory } from './browser_workers.js';
import { ENGINE_WASM_BASE64 } from './engine_wasm.gen.js';
import { wasmModelKernels } from './model_kernels_wasm.js';
import { CHUNKS_PER_PART, CONTROL_BYTES, type KernelFn, type PoolStats, ThreadPool, type WorkerFactory } from './thread_pool.js';
import { decodeBase64, unshareMemoryImport } from './wasm_binary.js';

export type { PoolStats, WorkerFactory } from './thread_pool.js';
export { unshareMemoryImport } from './wasm_binary.js';

export interface WasmBackendOptions {
  /** Threads including the calling one (default: navigator.hardwareConcurrency, else 1). */
  threads?: number;
  /** Starts workers; default: Web Workers in cross-origin-isolated browsers, none elsewhere. */
  workerFactory?: WorkerFactory;
  /** The engine is built with 128-bit SIMD; `false` is rejected (no scalar build exists). */
  simd?: boolean;
  /** Initial memory in bytes (default 16 MiB); it grows on demand. */
  initialMemoryBytes?: number;
  /** How long an idle worker spins before it sleeps, in ms (default: the pool's). */
  workerSpinMs?: number;
  /**
   * Run kernels on the calling thread alone for a while when workers keep losing their cores to other
   * processes (default true; see thread_pool.ts SOLO_MS). Results are the same either way.
   */
  adaptiveThreads?: boolean;
}

const PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB, the import's declared maximum

/** Elements per thread below which a kernel runs on the calling thread only. */
const MIN_PAR_ELEMS = 65536;
/** Flops below which matmul runs on the calling thread only. */
const MIN_PAR_FLOPS = 2 * 64 * 64 * 64;
/** Fewest output rows (columns) per chunk of the packed matmul path, which repacks B (A) per chunk. */
const MIN_GEBP_CHUNK = 64;
const PARAM_BYTE = 2560; // strided-view parameter block inside the control block
const MODEL_PARAM_BYTE = 3072; // model-kernel parameter block (engine/attention.ts) inside the control block

class WasmStorage implements Storage {
  readonly backend = 'wasm' as const;
  freed = false;
  constructor(readonly owner: WasmBackend, readonly dtype: DType, readonly size: number, public ptr: number, readonly cls: number) {}
}

interface EngineExports {
  heap_base(): number;
  matmul_scratch_bytes(): number;
  matmul_mr(): number;
  matmul_nr(): number;
  matmul_skinny_m(): number;
  matmul_skinny_nb(): number;
  tiles_ch(): number;
  attention_bq(): number;
  attention_bkv(): number;
  sum_squares_chunk(): number;
}

export class WasmBackend implements Backend {
  readonly name = 'wasm' as const;
  private f32!: Float32Array;
  private i32!: Int32Array;
  private u32!: Uint32Array;
  private readonly arena: Arena;
  private readonly ctrl: number;
  private live = 0;
  private peak = 0;
  private buffers = 0;
  private scratch = 0;
  private readonly scratchStride: number;
  private readonly mr: number;
  private readonly nr: number;
  private readonly skinnyM: number;
  private readonly skinnyNb: number;
  readonly kernels: ModelKernels;
  /** Index of each engine export in `fns` (and in the worker pool's table). */
  private readonly engineIndex: Map<string, number>;
  private destroyed = false;
  private readonly bits = new DataView(new ArrayBuffer(4));

  /** @internal use createWasmBackend */
  constructor(
    private readonly mem: WebAssembly.Memory,
    engineNames: readonly string[],
    private readonly fns: KernelFn[],
    exports: EngineExports,
    private pool: ThreadPool | null,
    private readonly info: { shared: boolean; workerKind: string | null; requestedThreads: number },
    ctrl: number,
  ) {
    this.refreshViews();
    this.engineIndex = new Map(engineNames.map((name, i) => [name, i]));
    this.ctrl = ctrl;
    this.arena = new Arena(ctrl + CONTROL_BYTES, (end) => this.ensureBytes(end));
    this.scratchStride = Math.ceil(exports.matmul_scratch_bytes() / 64) * 64;
    this.mr = exports.matmul_mr();
    this.nr = exports.matmul_nr();
    this.skinnyM = exports.matmul_skinny_m();
    this.skinnyNb = exports.matmul_skinny_nb();
    this.kernels = validatedKernels(wasmModelKernels({
      threads: () => this.threads,
      ptr: (x, kernel) => this.own(x, kernel).ptr,
      exec: (kernel, engineFn, args, work, parts, opts) => this.exec(kernel, engineFn, args, work, parts, opts),
      partsFor: (elems, units) => this.partsFor(elems, units),
      stridedParams: (kernel, shape, views) => this.writeStridedParams(kernel, shape, views),
      scratch: () => { this.ensureScratch(); return { base: this.scratch, stride: this.scratchStride }; },
      paramBlock: ctrl + MODEL_PARAM_BYTE,
      temp: (bytes) => this.temp(bytes),
      i32: () => this.i32,
      f32: () => this.f32,
      blocks: { ch: exports.tiles_ch(), bq: exports.attention_bq(), bkv: exports.attention_bkv(), sqChunk: exports.sum_squares_chunk() },
    }));
  }

  /** An internal arena block (contents undefined), e.g. per-call partial sums shared by the threads. */
  private temp(bytes: number): { ptr: number; release(): void } {
    const cls = Arena.classOf(Math.max(16, bytes));
    const ptr = this.arena.alloc(cls);
    this.arena.dirtyEnd(ptr, ptr + cls);
    let live = true;
    return { ptr, release: () => { if (live) { live = false; this.arena.release(ptr, cls); } } };
  }

  get threads(): number {
    return this.pool ? this.pool.threads : 1;
  }

  /** Counters of the worker pool (null when single-threaded): dispatches, chunks, and how the caller fared. */
  poolStats(): PoolStats | null {
    return this.pool ? { ...this.pool.stats } : null;
  }

  private refreshViews(): void {
    const buf = this.mem.buffer;
    this.f32 = new Float32Array(buf);
    this.i32 = new Int32Array(buf);
    this.u32 = new Uint32Array(buf);
  }

  private ensureBytes(end: number): void {
    const cur = this.mem.buffer.byteLength;
    if (end <= cur) return;
    const want = Math.max(end, cur + Math.floor(cur / 4));
    let pages = Math.ceil((want - cur) / PAGE);
    const maxPages = MAX_PAGES - cur / PAGE;
    if (Math.ceil((end - cur) / PAGE) > maxPages) throw new KernelError('alloc', `out of memory: need ${end} bytes`);
    pages = Math.min(pages, maxPages);
    try {
      this.mem.grow(pages);
    } catch (e) {
      throw new KernelError('alloc', `memory.grow(${pages} pages) failed: ${(e as Error).message}`);
    }
    this.refreshViews();
  }

  describe(): Record<string, unknown> {
    const g = globalThis as { crossOriginIsolated?: boolean };
    return {
      backend: 'wasm',
      simd: true,
      threads: this.threads,
      requestedThreads: this.info.requestedThreads,
      workers: this.info.workerKind,
      sharedMemory: this.info.shared,
      crossOriginIsolated: g.crossOriginIsolated,
      memoryBytes: this.mem.buffer.byteLength,
    };
  }

  // ------------------------------------------------------------------ storage

  /** The storage as this backend's own, live one (throws a KernelError naming `kernel` otherwise). */
  private own(x: Storage, kernel: string): WasmStorage {
    if (this.destroyed) throw new KernelError(kernel, 'backend was destroyed');
    if (!(x instanceof WasmStorage) || x.owner !== this) throw new KernelError(kernel, 'storage belongs to another backend');
    if (x.freed) throw new KernelError(kernel, 'storage was freed');
    return x;
  }

  /** Like own(), and float32. */
  private ownFloat(x: Storage, kernel: string): WasmStorage {
    const storage = this.own(x, kernel);
    if (storage.dtype !== 'float32') throw new KernelError(kernel, `expects float32 storage, got ${storage.dtype}`);
    return storage;
  }

  alloc(dtype: DType, size: number): Storage {
    return this.allocate(dtype, size, true);
  }

  /** A storage whose recycled bytes are left as they are (kernel outputs: every element gets written). */
  allocUninitialized(dtype: DType, size: number): Storage {
    return this.allocate(dtype, size, false);
  }

  private allocate(dtype: DType, size: number, zero: boolean): Storage {
    if (this.destroyed) throw new KernelError('alloc', 'backend was destroyed');
    if (!Number.isInteger(size) || size < 0) throw new KernelError('alloc', `invalid size ${size}`);
    const cls = size === 0 ? 0 : Arena.classOf(size * 4);
    const ptr = cls === 0 ? this.arena.top : this.arena.alloc(cls);
    if (size > 0) {
      // Storages start zeroed like the reference's; only recycled bytes need clearing.
      const stale = this.arena.dirtyEnd(ptr, ptr + size * 4);
      if (zero && stale > ptr) this.u32.fill(0, ptr >> 2, stale >> 2);
    }
    this.live += size * 4;
    this.buffers++;
    this.peak = Math.max(this.peak, this.live);
    return new WasmStorage(this, dtype, size, ptr, cls);
  }

  upload(dtype: DType, data: ArrayLike<number>): Storage {
    const storage = this.allocate(dtype, data.length, false) as WasmStorage;
    if (dtype === 'int32') this.i32.set(data, storage.ptr >> 2);
    else this.f32.set(data, storage.ptr >> 2);
    return storage;
  }

  async read(x: Storage): Promise<Float32Array | Int32Array> {
    return this.readSync(x, 'read');
  }

  /** Synchronous copy of a storage's contents (the WASM backend never needs to wait). */
  readSync(x: Storage, kernel = 'readSync'): Float32Array | Int32Array {
    const storage = this.own(x, kernel);
    const first = storage.ptr >> 2;
    return storage.dtype === 'int32' ? this.i32.slice(first, first + storage.size) : this.f32.slice(first, first + storage.size);
  }

  free(x: Storage): void {
    const storage = this.own(x, 'free');
    storage.freed = true;
    if (storage.cls > 0) this.arena.release(storage.ptr, storage.cls);
    storage.ptr = -1;
    this.live -= storage.size * 4;
    this.buffers--;
  }

  memory(): MemoryStats {
    return { liveBytes: this.live, peakBytes: this.peak, liveBuffers: this.buffers };
  }

  async sync(): Promise<void> {}

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.pool?.destroy();
    this.pool = null;
  }

  // ------------------------------------------------------------------ dispatch

  /** Runs the engine export `engineFn` over [0, work) on `parts` threads (1: calling thread only). */
  private exec(kernel: string, engineFn: string, args: number[], work: number, parts: number,
    opts: { align?: number; scratchSlot?: number; chunks?: number } = {}): void {
    if (work <= 0) return;
    const id = this.engineIndex.get(engineFn);
    if (id === undefined) throw new KernelError(kernel, `the wasm engine has no export '${engineFn}' (run node scripts/build.mjs engine)`);
    try {
      if (parts <= 1 || !this.pool || this.pool.solo()) this.fns[id](...args, 0, work);
      else this.pool.run(kernel, id, args, work, parts, { ...opts, scratchStride: this.scratchStride });
    } catch (e) {
      if (e instanceof KernelError) throw e;
      throw new KernelError(kernel, (e as Error).message ?? String(e));
    }
  }

  /** Threads worth using for `elems` units of elementwise-like work. */
  private partsFor(elems: number, units: number): number {
    if (!this.pool || elems < MIN_PAR_ELEMS) return 1;
    return Math.max(1, Math.min(this.pool.threads, Math.floor(elems / (MIN_PAR_ELEMS / 2)), units));
  }

  private checkView(kernel: string, storage: WasmStorage, view: View, shape: readonly number[], n: number): void {
    if (n === 0) return;
    if (view.strides.length !== shape.length) throw new KernelError(kernel, 'view rank does not match shape');
    let max = view.offset;
    for (let d = 0; d < shape.length; d++) {
      const stride = view.strides[d];
      if (!Number.isInteger(stride) || stride < 0) throw new KernelError(kernel, `invalid stride ${stride}`);
      max += (shape[d] - 1) * stride;
    }
    if (!Number.isInteger(view.offset) || view.offset < 0 || max >= storage.size) {
      throw new KernelError(kernel, `view reaches element ${max} of a storage of ${storage.size}`);
    }
  }

  /**
   * Checks the views, then coalesces and writes the strided parameter block; returns its address and the
   * element count. out: the contiguous output (checked to hold outOffset + n elements).
   */
  private params(kernel: string, shape: readonly number[], views: readonly View[], stores: WasmStorage[], out: WasmStorage, outOffset = 0): { block: number; n: number; offsets: number[] } {
    if (shape.length > MAX_RANK) throw new KernelError(kernel, `rank ${shape.length} exceeds ${MAX_RANK}`);
    const n = sizeOf(shape);
    for (let i = 0; i < views.length; i++) this.checkView(kernel, stores[i], views[i], shape, n);
    if (outOffset + n > out.size) throw new KernelError(kernel, `output of ${out.size} elements cannot hold ${outOffset + n}`);
    return { block: this.writeStridedParams(kernel, shape, views), n, offsets: views.map((v) => v.offset) };
  }

  /** Coalesces `shape` and `views` into the strided parameter block (engine/elementwise.ts); returns its address. */
  private writeStridedParams(kernel: string, shape: readonly number[], views: readonly View[]): number {
    if (shape.length > MAX_RANK) throw new KernelError(kernel, `rank ${shape.length} exceeds ${MAX_RANK}`);
    const merged = coalesce(shape, views);
    const block = this.ctrl + PARAM_BYTE;
    const words = this.i32;
    const base = block >> 2;
    words[base] = merged.shape.length;
    for (let d = 0; d < merged.shape.length; d++) words[base + 1 + d] = merged.shape[d];
    for (let v = 0; v < merged.views.length; v++) {
      for (let d = 0; d < merged.shape.length; d++) words[base + 8 + 8 * v + d] = merged.views[v].strides[d];
    }
    return block;
  }

  // ------------------------------------------------------------------ kernels

  fill(out: Storage, value: number): void {
    const o = this.own(out, 'fill');
    let bits: number;
    if (o.dtype === 'int32') bits = Math.trunc(value) | 0;
    else { this.bits.setFloat32(0, value, true); bits = this.bits.getInt32(0, true); }
    this.exec('fill', 'fill32', [o.ptr, bits], o.size, this.partsFor(o.size, o.size));
  }

  arange(out: Storage, start: number, step: number): void {
    const o = this.own(out, 'arange');
    this.exec('arange', o.dtype === 'int32' ? 'arange_i32' : 'arange_f32', [o.ptr, start, step], o.size, this.partsFor(o.size, o.size));
  }

  random(out: Storage, args: RandomArgs): void {
    const o = this.ownFloat(out, 'random');
    const key = mix32(args.seed);
    const kind = args.kind === 'uniform' ? 'random_uniform' : 'random_normal';
    this.exec(`random.${args.kind}`, kind, [o.ptr, key, args.a, args.b], o.size, this.partsFor(o.size * 8, o.size));
  }

  /** Raw random words bits(i) (testing aid: must equal rng.ts randomBits). */
  randomBits(out: Storage, seed: number): void {
    const o = this.own(out, 'randomBits');
    this.exec('randomBits', 'random_bits', [o.ptr, mix32(seed)], o.size, this.partsFor(o.size * 4, o.size));
  }

  cast(x: Storage, out: Storage): void {
    const a = this.own(x, 'cast');
    const o = this.own(out, 'cast');
    if (a.size < o.size) throw new KernelError('cast', `input of ${a.size} elements is shorter than output ${o.size}`);
    const parts = this.partsFor(o.size, o.size);
    if (a.dtype === o.dtype) {
      if (a !== o) this.u32.copyWithin(o.ptr >> 2, a.ptr >> 2, (a.ptr >> 2) + o.size);
    } else if (a.dtype === 'float32') this.exec('cast', 'cast_f32_i32', [a.ptr, o.ptr], o.size, parts);
    else this.exec('cast', 'cast_i32_f32', [a.ptr, o.ptr], o.size, parts);
  }

  unary(op: UnaryOp, x: Storage, xView: View, out: Storage, shape: readonly number[], scalar: number): void {
    const k = `unary.${op}`;
    const a = this.ownFloat(x, k);
    const o = this.ownFloat(out, k);
    const code = UNARY_CODE[op];
    if (code === undefined) throw new KernelError(k, 'unknown op');
    const { block, n, offsets } = this.params(k, shape, [xView], [a], o);
    const heavy = code === 1 || code === 2 || code === 6 || code === 7 || code === 8 || code === 12 || code === 16;
    this.exec(k, 'unary', [code, a.ptr + 4 * offsets[0], o.ptr, scalar, block], n, this.partsFor(heavy ? n * 4 : n, n), { align: 16 });
  }

  binary(op: BinaryOp, a: Storage, aView: View, b: Storage, bView: View, out: Storage, shape: readonly number[]): void {
    const k = `binary.${op}`;
    const sa = this.ownFloat(a, k);
    const sb = this.ownFloat(b, k);
    const o = this.ownFloat(out, k);
    const code = BINARY_CODE[op];
    if (code === undefined) throw new KernelError(k, 'unknown op');
    const { block, n, offsets } = this.params(k, shape, [aView, bView], [sa, sb], o);
    this.exec(k, 'binary', [code, sa.ptr + 4 * offsets[0], sb.ptr + 4 * offsets[1], o.ptr, block], n,
      this.partsFor(code === 6 ? n * 4 : n, n), { align: 16 });
  }

  where(cond: Storage, cView: View, a: Storage, aView: View, b: Storage, bView: View, out: Storage, shape: readonly number[]): void {
    const sc = this.own(cond, 'where');
    const sa = this.ownFloat(a, 'where');
    const sb = this.ownFloat(b, 'where');
    const o = this.ownFloat(out, 'where');
    const { block, n, offsets } = this.params('where', shape, [cView, aView, bView], [sc, sa, sb], o);
    this.exec('where', 'where', [sc.ptr + 4 * offsets[0], sa.ptr + 4 * offsets[1], sb.ptr + 4 * offsets[2], o.ptr, block], n,
      this.partsFor(n, n), { align: 16 });
  }

  copy(x: Storage, xView: View, out: Storage, outOffset: number, shape: readonly number[]): void {
    const a = this.own(x, 'copy');
    const o = this.own(out, 'copy');
    if (!Number.isInteger(outOffset) || outOffset < 0) throw new KernelError('copy', `invalid outOffset ${outOffset}`);
    const { block, n, offsets } = this.params('copy', shape, [xView], [a], o, outOffset);
    this.exec('copy', 'copy32', [a.ptr + 4 * offsets[0], o.ptr + 4 * outOffset, block], n, this.partsFor(n, n), { align: 16 });
  }

  reduce(op: ReduceOp, x: Storage, out: Storage, outer: number, len: number, inner: number): void {
    const k = `reduce.${op}`;
    const a = this.ownFloat(x, k);
    const o = this.ownFloat(out, k);
    if (outer * len * inner > a.size) throw new KernelError(k, `input of ${a.size} elements is shorter than ${outer}x${len}x${inner}`);
    if (outer * inner > o.size) throw new KernelError(k, `output of ${o.size} elements is shorter than ${outer}x${inner}`);
    const work = outer * inner;
    const total = outer * Math.max(len, 1) * inner;
    this.exec(k, 'reduce', [REDUCE_CODE[op], a.ptr, o.ptr, len, inner], work, this.partsFor(total, work), { align: inner > 1 ? 16 : 1 });
  }

  matmul(a: Storage, b: Storage, out: Storage, g: MatmulArgs): void {
    const sa = this.ownFloat(a, 'matmul');
    const sb = this.ownFloat(b, 'matmul');
    const o = this.ownFloat(out, 'matmul');
    const { batch, m, n, k } = g;
    if (batch <= 0 || m <= 0 || n <= 0) return;
    const needA = (batch - 1) * g.strideA + m * k;
    const needB = (batch - 1) * g.strideB + k * n;
    if (needA > sa.size) throw new KernelError('matmul', `a has ${sa.size} elements, needs ${needA}`);
    if (needB > sb.size) throw new KernelError('matmul', `b has ${sb.size} elements, needs ${needB}`);
    if (batch * m * n > o.size) throw new KernelError('matmul', `out has ${o.size} elements, needs ${batch * m * n}`);
    this.ensureScratch();
    const flops = 2 * batch * m * n * k;
    const t = this.pool && flops >= MIN_PAR_FLOPS ? this.pool.threads : 1;
    if (batch === 1 && !g.transB && m <= this.skinnyM && k > 0) {
      this.matmulSplitK(sa, sb, o, m, n, k, g.transA, t);
      return;
    }
    const rows = batch * m;
    let mode = 0, work = rows, align = this.mr, parts = 1;
    // Skinny (decode-style) products stream B in place and split batch × column blocks over threads. Batched
    // ones without transB from 8 rows on are left to the packed path (unpacked, power-of-two-wide B rows
    // collide in L1).
    if (m <= this.skinnyM && (g.transB || m < 8)) {
      mode = 2;
      work = batch * Math.ceil(n / this.skinnyNb);
      align = 1;
      parts = Math.min(t, work);
    } else if (t > 1) {
      if (rows >= t * this.mr * 2) parts = Math.min(t, Math.ceil(rows / this.mr));
      else if (n >= t * this.nr * 2) { mode = 1; work = n; align = this.nr; parts = Math.min(t, Math.ceil(n / this.nr)); }
    }
    // Every packed-path chunk packs its own copy of the other operand: keep chunks ≥ MIN_GEBP_CHUNK rows/columns.
    const chunks = mode === 2 ? undefined : Math.max(parts, Math.min(parts * CHUNKS_PER_PART, Math.floor(work / MIN_GEBP_CHUNK)));
    const args = [sa.ptr, sb.ptr, o.ptr, batch, m, n, k, g.transA ? 1 : 0, g.transB ? 1 : 0, g.strideA, g.strideB, mode, this.scratch];
    this.exec('matmul', 'matmul', args, work, parts, { align, scratchSlot: 12, chunks });
  }

  /**
   * Small-m product without transB (decode against a [k, n] weight): fixed k-chunks, chosen from the shape only,
   * each write a partial [m, n] while streaming whole rows of B; a second pass adds them in chunk order. Results
   * are the same for any thread count.
   */
  private matmulSplitK(a: WasmStorage, b: WasmStorage, o: WasmStorage, m: number, n: number, k: number, transA: boolean, t: number): void {
    const kch = Math.ceil(Math.max(256, k / 8) / 4) * 4;
    const chunks = Math.ceil(k / kch);
    const mn = m * n;
    if (chunks === 1) {
      this.exec('matmul', 'matmul_ksplit', [a.ptr, b.ptr, o.ptr, m, n, k, transA ? 1 : 0, kch], 1, 1);
      return;
    }
    const partials = this.temp(chunks * mn * 4);
    try {
      this.exec('matmul', 'matmul_ksplit', [a.ptr, b.ptr, partials.ptr, m, n, k, transA ? 1 : 0, kch], chunks, Math.min(t, chunks));
      this.exec('matmul', 'matmul_ksplit_sum', [partials.ptr, o.ptr, chunks, mn], mn, this.partsFor(chunks * mn, mn >> 2), { align: 4 });
    } finally {
      partials.release();
    }
  }

  private ensureScratch(): void {
    if (this.scratch) return;
    const bytes = this.scratchStride * this.threads + 64;
    const cls = Arena.classOf(bytes);
    const base = this.arena.alloc(cls);
    this.arena.dirtyEnd(base, base + cls);
    this.scratch = Math.ceil(base / 64) * 64;
  }

  softmax(x: Storage, out: Storage, rows: number, cols: number, log: boolean): void {
    const a = this.ownFloat(x, 'softmax');
    const o = this.ownFloat(out, 'softmax');
    if (rows * cols > a.size || rows * cols > o.size) throw new KernelError('softmax', `storages shorter than ${rows}x${cols}`);
    this.exec('softmax', 'softmax', [a.ptr, o.ptr, cols, log ? 1 : 0], rows, this.partsFor(rows * cols * 4, rows));
  }

  private checkIds(kernel: string, ids: WasmStorage, nIds: number, rows: number): void {
    if (ids.dtype !== 'int32') throw new KernelError(kernel, 'ids must be int32');
    if (nIds > ids.size) throw new KernelError(kernel, `ids has ${ids.size} elements, needs ${nIds}`);
    const base = ids.ptr >> 2;
    for (let r = 0; r < nIds; r++) {
      const row = this.i32[base + r];
      if (row < 0 || row >= rows) throw new KernelError(kernel, `index ${row} out of range [0, ${rows})`);
    }
  }

  gather(table: Storage, ids: Storage, out: Storage, nIds: number, rowLen: number): void {
    const t = this.ownFloat(table, 'gather');
    const id = this.own(ids, 'gather');
    const o = this.ownFloat(out, 'gather');
    if (nIds * rowLen > o.size) throw new KernelError('gather', `out has ${o.size} elements, needs ${nIds * rowLen}`);
    if (rowLen <= 0) return;
    this.checkIds('gather', id, nIds, Math.floor(t.size / rowLen));
    this.exec('gather', 'gather', [t.ptr, id.ptr, o.ptr, rowLen], nIds, this.partsFor(nIds * rowLen, nIds));
  }

  scatterAdd(src: Storage, ids: Storage, out: Storage, nIds: number, rowLen: number): void {
    const sr = this.ownFloat(src, 'scatterAdd');
    const id = this.own(ids, 'scatterAdd');
    const o = this.ownFloat(out, 'scatterAdd');
    if (nIds * rowLen > sr.size) throw new KernelError('scatterAdd', `src has ${sr.size} elements, needs ${nIds * rowLen}`);
    if (rowLen <= 0) return;
    this.checkIds('scatterAdd', id, nIds, Math.floor(o.size / rowLen));
    this.exec('scatterAdd', 'scatter_add', [sr.ptr, id.ptr, o.ptr, nIds, rowLen], rowLen,
      this.partsFor(nIds * rowLen, Math.floor(rowLen / 16)), { align: 16 });
  }
}

/** Instantiates the engine, the shared memory and (optionally) the worker pool. */
export async function createWasmBackend(opts: WasmBackendOptions = {}): Promise<WasmBackend> {
  if (opts.simd === false) throw new Error('wasm backend: the engine is built with 128-bit SIMD only');
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  const requested = Math.max(1, Math.floor(opts.threads ?? nav?.hardwareConcurrency ?? 1));
  let factory = opts.workerFactory;
  if (!factory && requested > 1 && browserThreadsAvailable()) factory = browserWorkerFactory();

  let bytes = decodeBase64(ENGINE_WASM_BASE64);
  const initial = Math.max(64, Math.ceil((opts.initialMemoryBytes ?? 16 << 20) / PAGE));
  let memory: WebAssembly.Memory;
  let shared = typeof SharedArrayBuffer !== 'undefined';
  try {
    if (!shared) throw new Error('no SharedArrayBuffer');
    memory = new WebAssembly.Memory({ initial, maximum: MAX_PAGES, shared: true });
  } catch {
    shared = false;
    bytes = unshareMemoryImport(bytes);
    memory = new WebAssembly.Memory({ initial, maximum: MAX_PAGES });
  }
  const module = await WebAssembly.compile(bytes as BufferSource);
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  const ex = instance.exports as unknown as EngineExports & Record<string, KernelFn>;
  // Every exported function is callable by name (the worker pool resolves the same list in its instances).
  const engineNames = WebAssembly.Module.exports(module).filter((e) => e.kind === 'function').map((e) => e.name);
  const fns = engineNames.map((name) => ex[name]);
  const ctrl = Math.ceil(ex.heap_base() / PAGE) * PAGE;
  if (ctrl + CONTROL_BYTES > memory.buffer.byteLength) memory.grow(1);
  let pool: ThreadPool | null = null;
  const threads = shared && factory ? requested : 1;
  if (threads > 1) {
    pool = await ThreadPool.create({ module, memory, ctrl, names: engineNames, fns, threads, factory, spinMs: opts.workerSpinMs, adaptive: opts.adaptiveThreads });
  }
  return new WasmBackend(memory, engineNames, fns, ex, pool, { shared, workerKind: pool ? factory!.kind : null, requestedThreads: requested }, ctrl);
}
