// WASM backend: the AssemblyScript engine (engine/*.ts, SIMD) on one shared WebAssembly.Memory, a
// coalescing arena that owns every allocation, and an optional worker pool that splits each kernel's
// work range across threads. Platform-neutral: Node supplies workers through node_workers.ts, browsers
// through browser_workers.ts (cross-origin isolated pages only; otherwise one thread).
import { type Backend, type BinaryOp, type ReduceOp, type UnaryOp, BINARY_CODE, REDUCE_CODE, UNARY_CODE } from '../backend.js';
import { STRIDED_PARAM_BLOCK, stridedParamStride } from '../kernel_layouts.js';
import { type ModelKernels, validatedKernels } from '../model_kernels.js';
import { isHeavyBinary, isHeavyUnary } from '../ops.js';
import { mix32 } from '../rng.js';
import { packHalf, unpackHalf } from '../half.js';
import {
  type DType, type HalfDType, KernelError, MAX_RANK, type MatmulArgs, type MemoryStats, type RandomArgs, type Storage, type View, coalesce,
  halfStorageMessage, isHalfDType, sizeOf, storageBytes,
} from '../types.js';
import { Arena } from './arena.js';
import { browserThreadsAvailable, browserWorkerFactory } from './browser_workers.js';
import { hasRelaxedSimd } from './features.js';
import { type LowRankEpilogue, wasmModelKernels } from './model_kernels_wasm.js';
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
  /**
   * Run the relaxed-SIMD engine build (f32x4.relaxed_madd in the matmul micro-kernel). Default: where the runtime
   * has relaxed SIMD, unless the DAPO_WASM_RELAXED environment variable is 0 (or false/off/no); `false` forces the
   * plain build; `true` requires the relaxed one (an error where the runtime lacks it).
   */
  relaxedSimd?: boolean;
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
/** Packed-path column panel width of the engine (engine/matmul.ts NC). */
const MATMUL_NC = 2048;
const PARAM_BYTE = 2560; // strided-view parameter block inside the control block
const MODEL_PARAM_BYTE = 3072; // model-kernel parameter block (engine/attention.ts) inside the control block
/** The engine's codes of the 16-bit formats (engine/half.ts). */
const HALF_KIND: Record<HalfDType, number> = { bfloat16: 1, float16: 2 };

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

function epilogueArgs(e: LowRankEpilogue): number[] {
  return [e.u, e.lT, e.rank, e.scale];
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
  /** Packed-path tiles per thread of one product (packedGrid); 0 splits rows (or columns) only, as before the grid. */
  private gridTilesPerThread = 2;
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
    private readonly info: { shared: boolean; workerKind: string | null; requestedThreads: number; relaxedSimd: boolean },
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
      matmul: (a, b, out, args) => this.matmul(a, b, out, args),
      matmulLowRank: (a, b, out, args, epilogue) => this.matmulLowRank(a, b, out, args, epilogue),
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
    const current = this.mem.buffer.byteLength;
    if (end <= current) return;
    // Grow by at least a quarter so that a run of small allocations does not grow page by page.
    const wanted = Math.max(end, current + Math.floor(current / 4));
    let pages = Math.ceil((wanted - current) / PAGE);
    const maxPages = MAX_PAGES - current / PAGE;
    if (Math.ceil((end - current) / PAGE) > maxPages) throw new KernelError('alloc', this.outOfMemoryMessage(end));
    pages = Math.min(pages, maxPages);
    try {
      this.mem.grow(pages);
    } catch (e) {
      throw new KernelError('alloc', `memory.grow(${pages} pages) failed: ${(e as Error).message}`);
    }
    this.refreshViews();
  }

  /** What was asked, what is live and what to change, for an allocation past the 4 GiB address space. */
  private outOfMemoryMessage(end: number): string {
    const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;
    return `out of memory: this allocation would end at ${gib(end)}, past the 4 GiB a WebAssembly instance can address `
      + `(live: ${gib(this.live)} in ${this.buffers} storages, peak ${gib(this.peak)}). Lower the batch sizes `
      + '(rl.microBatchSize, rl.generationBatchPrompts), train with LoRA (--lora), shorten sequences, or use a GPU '
      + '(--backend webgpu)';
  }

  describe(): Record<string, unknown> {
    const scope = globalThis as { crossOriginIsolated?: boolean };
    return {
      backend: 'wasm',
      simd: true,
      // Which engine build runs: with relaxed SIMD (fused multiply-add where the CPU has it) or the plain one.
      relaxedSimd: this.info.relaxedSimd,
      threads: this.threads,
      requestedThreads: this.info.requestedThreads,
      workers: this.info.workerKind,
      sharedMemory: this.info.shared,
      crossOriginIsolated: scope.crossOriginIsolated,
      memoryBytes: this.mem.buffer.byteLength,
      // The highest address the arena has handed out (linear memory grows ahead of it by up to a quarter).
      arenaHighWaterBytes: this.arena.highWater,
    };
  }

  // ------------------------------------------------------------------ storage

  /**
   * The storage as this backend's own, live one (throws a KernelError naming `kernel` otherwise); a 16-bit one
   * only where `acceptHalf` says the kernel takes it (matmul's B, gather's table, cast, read, free).
   */
  private own(x: Storage, kernel: string, acceptHalf = false): WasmStorage {
    if (this.destroyed) throw new KernelError(kernel, 'backend was destroyed');
    if (!(x instanceof WasmStorage) || x.owner !== this) throw new KernelError(kernel, 'storage belongs to another backend');
    if (x.freed) throw new KernelError(kernel, 'storage was freed');
    if (!acceptHalf && isHalfDType(x.dtype)) throw new KernelError(kernel, halfStorageMessage(x.dtype));
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
    const bytes = storageBytes(dtype, size);
    const cls = size === 0 ? 0 : Arena.classOf(bytes);
    const ptr = cls === 0 ? this.arena.top : this.arena.alloc(cls);
    if (size > 0) {
      // Storages start zeroed like the reference's; only recycled bytes need clearing.
      const stale = this.arena.dirtyEnd(ptr, ptr + bytes);
      if (zero && stale > ptr) this.u32.fill(0, ptr >>> 2, stale >>> 2);
    }
    this.live += bytes;
    this.buffers++;
    this.peak = Math.max(this.peak, this.live);
    return new WasmStorage(this, dtype, size, ptr, cls);
  }

  upload(dtype: DType, data: ArrayLike<number>): Storage {
    const storage = this.allocate(dtype, data.length, false) as WasmStorage;
    if (dtype === 'int32') this.i32.set(data, storage.ptr >>> 2);
    else if (isHalfDType(dtype)) this.u32.set(packHalf(dtype, data), storage.ptr >>> 2);
    else this.f32.set(data, storage.ptr >>> 2);
    return storage;
  }

  async read(x: Storage): Promise<Float32Array | Int32Array> {
    return this.readSync(x, 'read');
  }

  /** Synchronous copy of a storage's contents (the WASM backend never needs to wait). */
  readSync(x: Storage, kernel = 'readSync'): Float32Array | Int32Array {
    const storage = this.own(x, kernel, true);
    const first = storage.ptr >>> 2;
    if (isHalfDType(storage.dtype)) return unpackHalf(storage.dtype, this.u32.subarray(first, first + Math.ceil(storage.size / 2)), storage.size);
    return storage.dtype === 'int32' ? this.i32.slice(first, first + storage.size) : this.f32.slice(first, first + storage.size);
  }

  free(x: Storage): void {
    const storage = this.own(x, 'free', true);
    storage.freed = true;
    if (storage.cls > 0) this.arena.release(storage.ptr, storage.cls);
    storage.ptr = -1;
    this.live -= storageBytes(storage.dtype, storage.size);
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
    const fnIndex = this.engineIndex.get(engineFn);
    if (fnIndex === undefined) throw new KernelError(kernel, `the wasm engine has no export '${engineFn}' (run node scripts/build.mjs engine)`);
    try {
      if (parts <= 1 || !this.pool || this.pool.solo()) this.fns[fnIndex](...args, 0, work);
      else this.pool.run(kernel, fnIndex, args, work, parts, { ...opts, scratchStride: this.scratchStride });
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
    words[base + STRIDED_PARAM_BLOCK.rank] = merged.shape.length;
    for (let d = 0; d < merged.shape.length; d++) words[base + STRIDED_PARAM_BLOCK.shape + d] = merged.shape[d];
    for (let v = 0; v < merged.views.length; v++) {
      for (let d = 0; d < merged.shape.length; d++) words[base + stridedParamStride(v, d)] = merged.views[v].strides[d];
    }
    return block;
  }

  // ------------------------------------------------------------------ kernels

  fill(out: Storage, value: number): void {
    const target = this.own(out, 'fill');
    let bits: number;
    if (target.dtype === 'int32') bits = Math.trunc(value) | 0;
    else { this.bits.setFloat32(0, value, true); bits = this.bits.getInt32(0, true); }
    this.exec('fill', 'fill32', [target.ptr, bits], target.size, this.partsFor(target.size, target.size));
  }

  arange(out: Storage, start: number, step: number): void {
    const target = this.own(out, 'arange');
    const engineFn = target.dtype === 'int32' ? 'arange_i32' : 'arange_f32';
    this.exec('arange', engineFn, [target.ptr, start, step], target.size, this.partsFor(target.size, target.size));
  }

  random(out: Storage, args: RandomArgs): void {
    const target = this.ownFloat(out, 'random');
    const key = mix32(args.seed);
    const engineFn = args.kind === 'uniform' ? 'random_uniform' : 'random_normal';
    this.exec(`random.${args.kind}`, engineFn, [target.ptr, key, args.a, args.b], target.size, this.partsFor(target.size * 8, target.size));
  }

  /** Raw random words bits(i) (testing aid: must equal rng.ts randomBits). */
  randomBits(out: Storage, seed: number): void {
    const target = this.own(out, 'randomBits');
    this.exec('randomBits', 'random_bits', [target.ptr, mix32(seed)], target.size, this.partsFor(target.size * 4, target.size));
  }

  cast(x: Storage, out: Storage): void {
    const source = this.own(x, 'cast', true);
    const target = this.own(out, 'cast');
    if (source.size < target.size) throw new KernelError('cast', `input of ${source.size} elements is shorter than output ${target.size}`);
    const parts = this.partsFor(target.size, target.size);
    if (isHalfDType(source.dtype)) {
      if (target.dtype !== 'float32') throw new KernelError('cast', `${source.dtype} casts to float32 only, not ${target.dtype}`);
      this.exec('cast', 'widen_half', [source.ptr, target.ptr, HALF_KIND[source.dtype]], target.size, parts);
    } else if (source.dtype === target.dtype) {
      if (source !== target) this.u32.copyWithin(target.ptr >>> 2, source.ptr >>> 2, (source.ptr >>> 2) + target.size);
    } else if (source.dtype === 'float32') this.exec('cast', 'cast_f32_i32', [source.ptr, target.ptr], target.size, parts);
    else this.exec('cast', 'cast_i32_f32', [source.ptr, target.ptr], target.size, parts);
  }

  unary(op: UnaryOp, x: Storage, xView: View, out: Storage, shape: readonly number[], scalar: number): void {
    const kernel = `unary.${op}`;
    const source = this.ownFloat(x, kernel);
    const target = this.ownFloat(out, kernel);
    const code = UNARY_CODE[op];
    if (code === undefined) throw new KernelError(kernel, 'unknown op');
    const { block, n, offsets } = this.params(kernel, shape, [xView], [source], target);
    // Transcendental ops cost several adds per element: split them over threads from fewer elements.
    const work = isHeavyUnary(op) ? n * 4 : n;
    this.exec(kernel, 'unary', [code, source.ptr + 4 * offsets[0], target.ptr, scalar, block], n, this.partsFor(work, n), { align: 16 });
  }

  binary(op: BinaryOp, a: Storage, aView: View, b: Storage, bView: View, out: Storage, shape: readonly number[]): void {
    const kernel = `binary.${op}`;
    const left = this.ownFloat(a, kernel);
    const right = this.ownFloat(b, kernel);
    const target = this.ownFloat(out, kernel);
    const code = BINARY_CODE[op];
    if (code === undefined) throw new KernelError(kernel, 'unknown op');
    const { block, n, offsets } = this.params(kernel, shape, [aView, bView], [left, right], target);
    const work = isHeavyBinary(op) ? n * 4 : n;
    this.exec(kernel, 'binary', [code, left.ptr + 4 * offsets[0], right.ptr + 4 * offsets[1], target.ptr, block], n,
      this.partsFor(work, n), { align: 16 });
  }

  where(cond: Storage, cView: View, a: Storage, aView: View, b: Storage, bView: View, out: Storage, shape: readonly number[]): void {
    const condition = this.own(cond, 'where');
    const ifTrue = this.ownFloat(a, 'where');
    const ifFalse = this.ownFloat(b, 'where');
    const target = this.ownFloat(out, 'where');
    const { block, n, offsets } = this.params('where', shape, [cView, aView, bView], [condition, ifTrue, ifFalse], target);
    const engineArgs = [condition.ptr + 4 * offsets[0], ifTrue.ptr + 4 * offsets[1], ifFalse.ptr + 4 * offsets[2], target.ptr, block];
    this.exec('where', 'where', engineArgs, n, this.partsFor(n, n), { align: 16 });
  }

  copy(x: Storage, xView: View, out: Storage, outOffset: number, shape: readonly number[]): void {
    const source = this.own(x, 'copy');
    const target = this.own(out, 'copy');
    if (!Number.isInteger(outOffset) || outOffset < 0) throw new KernelError('copy', `invalid outOffset ${outOffset}`);
    const { block, n, offsets } = this.params('copy', shape, [xView], [source], target, outOffset);
    this.exec('copy', 'copy32', [source.ptr + 4 * offsets[0], target.ptr + 4 * outOffset, block], n, this.partsFor(n, n), { align: 16 });
  }

  reduce(op: ReduceOp, x: Storage, out: Storage, outer: number, len: number, inner: number): void {
    const kernel = `reduce.${op}`;
    const source = this.ownFloat(x, kernel);
    const target = this.ownFloat(out, kernel);
    if (outer * len * inner > source.size) throw new KernelError(kernel, `input of ${source.size} elements is shorter than ${outer}x${len}x${inner}`);
    if (outer * inner > target.size) throw new KernelError(kernel, `output of ${target.size} elements is shorter than ${outer}x${inner}`);
    const work = outer * inner;
    const total = outer * Math.max(len, 1) * inner;
    this.exec(kernel, 'reduce', [REDUCE_CODE[op], source.ptr, target.ptr, len, inner], work, this.partsFor(total, work), { align: inner > 1 ? 16 : 1 });
  }

  matmul(a: Storage, b: Storage, out: Storage, args: MatmulArgs): void {
    this.matmulWith(a, b, out, args, null);
  }

  /**
   * A 2-D product (batch 1, A not transposed) with the LoRA epilogue out += scale · u·lT (byte addresses; u [m, rank],
   * lT [rank, n]) applied in the engine's store phase. False, with nothing computed, for the one path without the
   * epilogue (float32 B, no transB, m ≤ SKINNY_M: split-k); the caller then adds the low-rank term separately.
   */
  matmulLowRank(a: Storage, b: Storage, out: Storage, args: MatmulArgs, epilogue: LowRankEpilogue): boolean {
    return this.matmulWith(a, b, out, args, epilogue);
  }

  private matmulWith(a: Storage, b: Storage, out: Storage, args: MatmulArgs, epilogue: LowRankEpilogue | null): boolean {
    const left = this.ownFloat(a, 'matmul');
    const right = this.own(b, 'matmul', true);
    if (right.dtype === 'int32') throw new KernelError('matmul', 'expects float32 storage, got int32');
    const target = this.ownFloat(out, 'matmul');
    const { batch, m, n, k } = args;
    if (epilogue && (batch !== 1 || args.transA)) throw new KernelError('matmul', 'the low-rank epilogue takes one product with A not transposed');
    if (batch <= 0 || m <= 0 || n <= 0) return true;
    const needA = (batch - 1) * args.strideA + m * k;
    const needB = (batch - 1) * args.strideB + k * n;
    if (needA > left.size) throw new KernelError('matmul', `a has ${left.size} elements, needs ${needA}`);
    if (needB > right.size) throw new KernelError('matmul', `b has ${right.size} elements, needs ${needB}`);
    if (batch * m * n > target.size) throw new KernelError('matmul', `out has ${target.size} elements, needs ${batch * m * n}`);
    this.ensureScratch();
    const flops = 2 * batch * m * n * k;
    const threads = this.pool && flops >= MIN_PAR_FLOPS ? this.pool.threads : 1;
    if (isHalfDType(right.dtype)) {
      this.matmulHalf(left, right, target, args, threads, epilogue);
      return true;
    }
    if (batch === 1 && !args.transB && m <= this.skinnyM && k > 0) {
      if (epilogue) return false;
      this.matmulSplitK(left, right, target, m, n, k, args.transA, threads);
      return true;
    }
    const rows = batch * m;
    let mode = 0, work = rows, align = this.mr, parts = 1;
    // Skinny (decode-style) products stream B in place and split batch × column blocks over threads. Batched
    // ones without transB from 8 rows on are left to the packed path (unpacked, power-of-two-wide B rows
    // collide in L1).
    if (m <= this.skinnyM && (args.transB || m < 8)) {
      mode = 2;
      work = batch * Math.ceil(n / this.skinnyNb);
      align = 1;
      parts = Math.min(threads, work);
    } else if (threads > 1) {
      if (rows >= threads * this.mr * 2) parts = Math.min(threads, Math.ceil(rows / this.mr));
      else if (n >= threads * this.nr * 2) { mode = 1; work = n; align = this.nr; parts = Math.min(threads, Math.ceil(n / this.nr)); }
    }
    // Every packed-path chunk packs its own copy of the other operand: keep chunks ≥ MIN_GEBP_CHUNK rows/columns.
    let chunks = mode === 2 ? undefined : Math.max(parts, Math.min(parts * CHUNKS_PER_PART, Math.floor(work / MIN_GEBP_CHUNK)));
    const grid = mode !== 2 && batch === 1 ? this.packedGrid(m, n, threads) : null;
    if (grid) ({ mode, work, align, parts, chunks } = grid);
    if (epilogue) {
      const engineArgs = [left.ptr, right.ptr, target.ptr, m, n, k, args.transB ? 1 : 0, mode, this.scratch, ...epilogueArgs(epilogue)];
      this.exec('matmul', 'matmul_low_rank', engineArgs, work, parts, { align, scratchSlot: 8, chunks });
      return true;
    }
    const engineArgs = [
      left.ptr, right.ptr, target.ptr, batch, m, n, k, args.transA ? 1 : 0, args.transB ? 1 : 0, args.strideA, args.strideB, mode, this.scratch,
    ];
    this.exec('matmul', 'matmul', engineArgs, work, parts, { align, scratchSlot: 12, chunks });
    return true;
  }

  /**
   * The packed path's split of one product (batch 1) over `threads`: a grid of gridRows × gridCols tiles (engine mode
   * 3), gridTilesPerThread tiles a thread (fewer where the shape has no room), chosen to pack the least. A tile packs its own columns of B (every
   * row block packs all of B once: gridRows · n) and its rows of A once per NC-wide column panel (gridCols · m ·
   * ⌈n / gridCols / NC⌉). Splitting rows only (old mode 0) re-packed all of B per chunk: 8 times at m = 512.
   * Null (keep the row or column split) when one thread does it all or no grid fits: a tile spans ≥ MIN_GEBP_CHUNK rows
   * (columns) unless it spans all of them.
   */
  private packedGrid(m: number, n: number, threads: number):
    { mode: number; work: number; align: number; parts: number; chunks: number } | null {
    const perThread = this.gridTilesPerThread;
    if (threads <= 1 || perThread <= 0) return null;
    // one block of all the rows (columns) is always allowed: m = 40 against n = 1536 splits the columns only
    const maxR = Math.max(1, Math.min(255, Math.floor(m / MIN_GEBP_CHUNK))), maxC = Math.max(1, Math.min(255, Math.floor(n / MIN_GEBP_CHUNK)));
    for (let tiles = threads * perThread; tiles >= threads; tiles -= threads) {
      let best: { r: number; c: number; cost: number } | null = null;
      for (let r = 1; r <= Math.min(tiles, maxR); r++) {
        if (tiles % r !== 0) continue;
        const c = tiles / r;
        if (c > maxC) continue;
        const cost = r * n + c * m * Math.ceil(n / c / MATMUL_NC);
        if (!best || cost < best.cost) best = { r, c, cost };
      }
      if (best) return { mode: 3 + 16 * best.r + 4096 * best.c, work: tiles, align: 1, parts: threads, chunks: tiles };
    }
    return null;
  }

  /**
   * Product with a 16-bit B (engine matmul_half): decode-sized products (few rows against [n, k] weights) widen
   * blocks of weight rows into the scratch and dot them with the rows of A; the rest take the packed path, B widened
   * as it is packed, threads splitting the output rows when there are enough of them, else the columns.
   */
  private matmulHalf(left: WasmStorage, right: WasmStorage, target: WasmStorage, args: MatmulArgs, threads: number,
    epilogue: LowRankEpilogue | null): void {
    const { batch, m, n, k } = args;
    const rows = batch * m;
    let mode = 0, work = rows, align = this.mr, parts = 1;
    if (m <= this.skinnyM && args.transB && !args.transA && this.skinnyNb * k * 4 <= this.scratchStride) {
      // decode-sized: blocks of weight rows widened once into the scratch and dotted with the few A rows
      mode = 2;
      work = batch * Math.ceil(n / this.skinnyNb);
      align = 1;
      parts = Math.min(threads, work);
    } else if (threads > 1) {
      if (rows >= threads * MIN_GEBP_CHUNK) parts = Math.min(threads, Math.ceil(rows / this.mr));
      else if (n >= threads * this.nr * 2) { mode = 1; work = n; align = this.nr; parts = Math.min(threads, Math.ceil(n / this.nr)); }
      else if (rows >= threads * this.mr * 2) parts = Math.min(threads, Math.ceil(rows / this.mr));
    }
    let chunks = mode === 2 ? undefined : Math.max(parts, Math.min(parts * CHUNKS_PER_PART, Math.floor(work / MIN_GEBP_CHUNK)));
    const grid = mode !== 2 && batch === 1 ? this.packedGrid(m, n, threads) : null;
    if (grid) ({ mode, work, align, parts, chunks } = grid);
    const modeKind = HALF_KIND[right.dtype as HalfDType] + 256 * mode;
    if (epilogue) {
      const engineArgs = [left.ptr, right.ptr, target.ptr, m, n, k, args.transB ? 1 : 0, modeKind, this.scratch, ...epilogueArgs(epilogue)];
      this.exec('matmul', 'matmul_half_low_rank', engineArgs, work, parts, { align, scratchSlot: 8, chunks });
      return;
    }
    const engineArgs = [
      left.ptr, right.ptr, target.ptr, batch, m, n, k, args.transA ? 1 : 0, args.transB ? 1 : 0, args.strideA, args.strideB, modeKind, this.scratch,
    ];
    this.exec('matmul', 'matmul_half', engineArgs, work, parts, { align, scratchSlot: 12, chunks });
  }

  /**
   * Small-m product without transB (decode against a [k, n] weight): fixed k-chunks, chosen from the shape only,
   * each write a partial [m, n] while streaming whole rows of B; a second pass adds them in chunk order. Results
   * are the same for any thread count.
   */
  private matmulSplitK(
    left: WasmStorage, right: WasmStorage, target: WasmStorage, m: number, n: number, k: number, transA: boolean, threads: number,
  ): void {
    const kChunk = Math.ceil(Math.max(256, k / 8) / 4) * 4;
    const chunks = Math.ceil(k / kChunk);
    const outSize = m * n;
    if (chunks === 1) {
      this.exec('matmul', 'matmul_ksplit', [left.ptr, right.ptr, target.ptr, m, n, k, transA ? 1 : 0, kChunk], 1, 1);
      return;
    }
    const partials = this.temp(chunks * outSize * 4);
    try {
      this.exec('matmul', 'matmul_ksplit', [left.ptr, right.ptr, partials.ptr, m, n, k, transA ? 1 : 0, kChunk], chunks, Math.min(threads, chunks));
      this.exec('matmul', 'matmul_ksplit_sum', [partials.ptr, target.ptr, chunks, outSize], outSize,
        this.partsFor(chunks * outSize, outSize >> 2), { align: 4 });
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
    const source = this.ownFloat(x, 'softmax');
    const target = this.ownFloat(out, 'softmax');
    if (rows * cols > source.size || rows * cols > target.size) throw new KernelError('softmax', `storages shorter than ${rows}x${cols}`);
    this.exec('softmax', 'softmax', [source.ptr, target.ptr, cols, log ? 1 : 0], rows, this.partsFor(rows * cols * 4, rows));
  }

  private checkIds(kernel: string, ids: WasmStorage, nIds: number, rows: number): void {
    if (ids.dtype !== 'int32') throw new KernelError(kernel, 'ids must be int32');
    if (nIds > ids.size) throw new KernelError(kernel, `ids has ${ids.size} elements, needs ${nIds}`);
    const base = ids.ptr >>> 2;
    for (let r = 0; r < nIds; r++) {
      const row = this.i32[base + r];
      if (row < 0 || row >= rows) throw new KernelError(kernel, `index ${row} out of range [0, ${rows})`);
    }
  }

  gather(table: Storage, ids: Storage, out: Storage, nIds: number, rowLen: number): void {
    const rowsOf = this.own(table, 'gather', true);
    if (rowsOf.dtype === 'int32') throw new KernelError('gather', 'expects a float32 or 16-bit table, got int32');
    const idList = this.own(ids, 'gather');
    const target = this.ownFloat(out, 'gather');
    if (nIds * rowLen > target.size) throw new KernelError('gather', `out has ${target.size} elements, needs ${nIds * rowLen}`);
    if (rowLen <= 0) return;
    this.checkIds('gather', idList, nIds, Math.floor(rowsOf.size / rowLen));
    if (isHalfDType(rowsOf.dtype)) {
      this.exec('gather', 'gather_half', [rowsOf.ptr, idList.ptr, target.ptr, rowLen, HALF_KIND[rowsOf.dtype]], nIds, this.partsFor(nIds * rowLen, nIds));
      return;
    }
    this.exec('gather', 'gather', [rowsOf.ptr, idList.ptr, target.ptr, rowLen], nIds, this.partsFor(nIds * rowLen, nIds));
  }

  scatterAdd(src: Storage, ids: Storage, out: Storage, nIds: number, rowLen: number): void {
    const source = this.ownFloat(src, 'scatterAdd');
    const idList = this.own(ids, 'scatterAdd');
    const target = this.ownFloat(out, 'scatterAdd');
    if (nIds * rowLen > source.size) throw new KernelError('scatterAdd', `src has ${source.size} elements, needs ${nIds * rowLen}`);
    if (rowLen <= 0) return;
    this.checkIds('scatterAdd', idList, nIds, Math.floor(target.size / rowLen));
    this.exec('scatterAdd', 'scatter_add', [source.ptr, idList.ptr, target.ptr, nIds, rowLen], rowLen,
      this.partsFor(nIds * rowLen, Math.floor(rowLen / 16)), { align: 16 });
  }
}

/** DAPO_WASM_RELAXED from the environment where there is one (Node), without importing Node modules. */
function relaxedSimdEnv(): string | undefined {
  return (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.DAPO_WASM_RELAXED;
}

/**
 * Whether the relaxed-SIMD engine build runs: the option when given (`true` where the runtime lacks relaxed SIMD
 * is an error), else off when `env` (DAPO_WASM_RELAXED) is 0/false/off/no, else whether the runtime has it.
 */
export function useRelaxedSimd(option: boolean | undefined, env: string | undefined, available: boolean): boolean {
  if (option === true && !available) {
    throw new Error('wasm backend: relaxedSimd: true, but this runtime has no relaxed SIMD (Node 20: run node with --experimental-wasm-relaxed-simd)');
  }
  if (option !== undefined) return option;
  if (env !== undefined && ['0', 'false', 'off', 'no'].includes(env.trim().toLowerCase())) return false;
  return available;
}

/** Instantiates the engine, the shared memory and (optionally) the worker pool. */
export async function createWasmBackend(opts: WasmBackendOptions = {}): Promise<WasmBackend> {
  if (opts.simd === false) throw new Error('wasm backend: the engine is built with 128-bit SIMD only');
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  const requested = Math.max(1, Math.floor(opts.threads ?? nav?.hardwareConcurrency ?? 1));
  let factory = opts.workerFactory;
  if (!factory && requested > 1 && browserThreadsAvailable()) factory = browserWorkerFactory();

  // Each build is a module of its own, imported when it is the one that runs: a browser page fetches only that one.
  const relaxedSimd = useRelaxedSimd(opts.relaxedSimd, relaxedSimdEnv(), hasRelaxedSimd());
  let bytes = decodeBase64(relaxedSimd
    ? (await import('./engine_wasm_relaxed.gen.js')).ENGINE_WASM_RELAXED_BASE64
    : (await import('./engine_wasm.gen.js')).ENGINE_WASM_BASE64);
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
  const engine = instance.exports as unknown as EngineExports & Record<string, KernelFn>;
  // Every exported function is callable by name (the worker pool resolves the same list in its instances).
  const engineNames = WebAssembly.Module.exports(module).filter((e) => e.kind === 'function').map((e) => e.name);
  const fns = engineNames.map((name) => engine[name]);
  const ctrl = Math.ceil(engine.heap_base() / PAGE) * PAGE;
  if (ctrl + CONTROL_BYTES > memory.buffer.byteLength) memory.grow(1);
  let pool: ThreadPool | null = null;
  const threads = shared && factory ? requested : 1;
  if (threads > 1) {
    pool = await ThreadPool.create({ module, memory, ctrl, names: engineNames, fns, threads, factory, spinMs: opts.workerSpinMs, adaptive: opts.adaptiveThreads });
  }
  return new WasmBackend(memory, engineNames, fns, engine, pool, { shared, workerKind: pool ? factory!.kind : null, requestedThreads: requested, relaxedSimd }, ctrl);
}
