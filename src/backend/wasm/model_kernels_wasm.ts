// Launchers of the fused model kernels (attention, log-softmax gather, RMSNorm, RoPE, SwiGLU, token loss, AdamW,
// sum of squares) on the WASM backend: argument checks, parameter blocks and the choice of thread split. The
// kernels live in engine/{attention,attention_backward,softmax_gather,norm,rope,swiglu,token_loss,adamw}.ts.
//
// Every split is deterministic: work items own their outputs (rows, query blocks, key blocks), and the two
// reductions across items (RMSNorm's weight gradient, the sum of squares) use chunks fixed by the shape alone
// and add them in order, so results are bit-identical for any thread count.
import { type AdamWArgs, type AttentionArgs, type DType, KernelError, type RopeArgs, type Storage } from '../backend.js';
import { type TokenLossArgs, checkTokenLossArgs } from '../model_kernels.js';

/** The part of the WASM backend the launchers need (closures over its private state). */
export interface WasmKernelHost {
  threads(): number;
  /** Byte address of a live storage of this backend, checked for dtype and a minimum element count. */
  addr(x: Storage, kernel: string, dtype: DType, minSize: number, what: string): number;
  /** Runs an engine kernel over [0, work) on `parts` threads (see WasmBackend.exec). */
  exec(kernel: string, name: ModelKernelName, args: number[], work: number, parts: number,
    opts?: { align?: number; scratchSlot?: number }): void;
  /** Base of the per-thread scratch areas (thread t gets base + t·stride) and the stride in bytes. */
  scratch(): { base: number; stride: number };
  /** Byte address of a small parameter block inside the control block. */
  readonly paramBlock: number;
  /** A temporary arena block of at least `bytes` (16-byte aligned, contents undefined); release it after use. */
  temp(bytes: number): { ptr: number; release(): void };
  i32(): Int32Array;
  f32(): Float32Array;
  /** Block sizes the engine was built with (engine/tiles.ts CH, attention BQ and BKV, sum-of-squares chunk). */
  readonly blocks: EngineBlocks;
}

export interface EngineBlocks {
  ch: number;
  bq: number;
  bkv: number;
  sqChunk: number;
}

/** Engine entry points of the model kernels (appended to the backend's kernel table). */
export const MODEL_KERNELS = [
  'attention_fwd', 'attention_bwd', 'log_softmax_gather', 'log_softmax_gather_bwd',
  'rms_norm', 'rms_norm_bwd_rows', 'rms_norm_bwd_weight', 'rope', 'swiglu', 'swiglu_bwd', 'adamw',
  'sum_squares_partial', 'sum_squares_finish', 'token_loss', 'token_loss_bwd',
] as const;
export type ModelKernelName = (typeof MODEL_KERNELS)[number];

/** The attention parameter block, i32 word indices (mirror of engine/attention.ts A_*; SCALE holds f32 bits). */
const ATTN = {
  q: 0, k: 1, v: 2, keyStart: 3, out: 4, lse: 5, gOut: 6, gq: 7, gk: 8, gv: 9, dRow: 10, batch: 11, heads: 12,
  kvHeads: 13, tq: 14, tk: 15, kvStride: 16, headDim: 17, causal: 18, qOffset: 19, scale: 20,
} as const;

/** Work (flops, elements) below which a kernel stays on the calling thread. */
const MIN_PAR_FLOPS = 1 << 18;

const intArg = (v: number) => Number.isInteger(v) && v >= 0;

export class WasmModelKernels {
  constructor(private readonly host: WasmKernelHost) {}

  private parts(work: number, items: number): number {
    const threads = this.host.threads();
    if (threads <= 1 || work < MIN_PAR_FLOPS) return 1;
    return Math.max(1, Math.min(threads, items));
  }

  // ---------------------------------------------------------------- attention

  private checkAttention(kernel: string, a: AttentionArgs, backward: boolean): void {
    for (const key of ['batch', 'heads', 'kvHeads', 'tq', 'tk', 'kvStride', 'headDim', 'qOffset'] as const) {
      if (!intArg(a[key])) throw new KernelError(kernel, `${key} must be a non-negative integer, got ${a[key]}`);
    }
    if (a.kvHeads < 1 || a.heads % a.kvHeads !== 0) throw new KernelError(kernel, `heads ${a.heads} is not a multiple of kvHeads ${a.kvHeads}`);
    if (a.tk > a.kvStride) throw new KernelError(kernel, `tk ${a.tk} exceeds kvStride ${a.kvStride}`);
    if (backward && a.kvStride !== a.tk) throw new KernelError(kernel, `requires kvStride == tk (got ${a.kvStride} and ${a.tk})`);
    if (!Number.isFinite(a.scale)) throw new KernelError(kernel, `invalid scale ${a.scale}`);
    const { ch, bq, bkv } = this.host.blocks;
    const need = backward ? 2 * bkv * ch : bq * ch + bq * a.headDim + 2 * bq;
    if (need * 4 > this.host.scratch().stride) throw new KernelError(kernel, `headDim ${a.headDim} is too large for the scratch area`);
  }

  /** Writes the attention parameter block; returns its address. */
  private attentionParams(ptrs: Partial<Record<keyof typeof ATTN, number>>, a: AttentionArgs): number {
    const p = this.host.paramBlock;
    const I = this.host.i32();
    const base = p >> 2;
    I.fill(0, base, base + 21);
    for (const [key, v] of Object.entries(ptrs)) I[base + ATTN[key as keyof typeof ATTN]] = v;
    I[base + ATTN.batch] = a.batch;
    I[base + ATTN.heads] = a.heads;
    I[base + ATTN.kvHeads] = a.kvHeads;
    I[base + ATTN.tq] = a.tq;
    I[base + ATTN.tk] = a.tk;
    I[base + ATTN.kvStride] = a.kvStride;
    I[base + ATTN.headDim] = a.headDim;
    I[base + ATTN.causal] = a.causal ? 1 : 0;
    I[base + ATTN.qOffset] = a.qOffset;
    this.host.f32()[base + ATTN.scale] = a.scale;
    return p;
  }

  /** Flops of one attention matmul pass (q·kᵀ or p·v), halved for causal masks. */
  private static passFlops(a: AttentionArgs): number {
    return 2 * a.batch * a.heads * a.tq * a.tk * a.headDim * (a.causal ? 0.5 : 1);
  }

  attention(q: Storage, k: Storage, v: Storage, keyStart: Storage | null, out: Storage, lse: Storage, a: AttentionArgs): void {
    const K = 'attention';
    this.checkAttention(K, a, false);
    const h = this.host;
    const qSize = a.batch * a.heads * a.tq * a.headDim;
    const kvSize = a.batch * a.kvHeads * a.kvStride * a.headDim;
    const ptrs = {
      q: h.addr(q, K, 'float32', qSize, 'q'), k: h.addr(k, K, 'float32', kvSize, 'k'), v: h.addr(v, K, 'float32', kvSize, 'v'),
      keyStart: keyStart ? h.addr(keyStart, K, 'int32', a.batch, 'keyStart') : 0,
      out: h.addr(out, K, 'float32', qSize, 'out'), lse: h.addr(lse, K, 'float32', a.batch * a.heads * a.tq, 'lse'),
    };
    const items = a.batch * a.heads * Math.ceil(a.tq / h.blocks.bq);
    if (items === 0) return;
    const p = this.attentionParams(ptrs, a);
    const { base } = h.scratch();
    h.exec(K, 'attention_fwd', [p, base], items, this.parts(2 * WasmModelKernels.passFlops(a), items), { scratchSlot: 1 });
  }

  attentionBackward(
    q: Storage, k: Storage, v: Storage, keyStart: Storage | null, out: Storage, lse: Storage, gOut: Storage,
    gq: Storage, gk: Storage, gv: Storage, a: AttentionArgs,
  ): void {
    const K = 'attentionBackward';
    this.checkAttention(K, a, true);
    const h = this.host;
    const qSize = a.batch * a.heads * a.tq * a.headDim;
    const kvSize = a.batch * a.kvHeads * a.tk * a.headDim;
    const rows = a.batch * a.heads * a.tq;
    const ptrs = {
      q: h.addr(q, K, 'float32', qSize, 'q'), k: h.addr(k, K, 'float32', kvSize, 'k'), v: h.addr(v, K, 'float32', kvSize, 'v'),
      keyStart: keyStart ? h.addr(keyStart, K, 'int32', a.batch, 'keyStart') : 0,
      out: h.addr(out, K, 'float32', qSize, 'out'), lse: h.addr(lse, K, 'float32', rows, 'lse'),
      gOut: h.addr(gOut, K, 'float32', qSize, 'gOut'), gq: h.addr(gq, K, 'float32', qSize, 'gq'),
      gk: h.addr(gk, K, 'float32', kvSize, 'gk'), gv: h.addr(gv, K, 'float32', kvSize, 'gv'),
    };
    // One item per (sequence, kv head): it owns gk, gv of the kv head and gq, D of the query heads sharing it.
    const items = a.batch * a.kvHeads;
    if (items === 0) return;
    const { base } = h.scratch();
    const dRow = h.temp(Math.max(16, rows * 4));
    try {
      const p = this.attentionParams({ ...ptrs, dRow: dRow.ptr }, a);
      h.exec(K, 'attention_bwd', [p, base], items, this.parts(5 * WasmModelKernels.passFlops(a), items), { scratchSlot: 1 });
    } finally {
      dRow.release();
    }
  }

  // ---------------------------------------------------------------- log-softmax gather

  logSoftmaxGather(logits: Storage, targets: Storage, logp: Storage, entropy: Storage, lse: Storage, rows: number, cols: number): void {
    const K = 'logSoftmaxGather';
    this.checkRowsCols(K, rows, cols);
    const h = this.host;
    const args = [
      h.addr(logits, K, 'float32', rows * cols, 'logits'), h.addr(targets, K, 'int32', rows, 'targets'),
      h.addr(logp, K, 'float32', rows, 'logp'), h.addr(entropy, K, 'float32', rows, 'entropy'), h.addr(lse, K, 'float32', rows, 'lse'), cols,
    ];
    h.exec(K, 'log_softmax_gather', args, rows, this.parts(8 * rows * cols, rows));
  }

  logSoftmaxGatherBackward(
    logits: Storage, targets: Storage, lse: Storage, entropy: Storage, gLogp: Storage, gEntropy: Storage,
    gLogits: Storage, rows: number, cols: number,
  ): void {
    const K = 'logSoftmaxGatherBackward';
    this.checkRowsCols(K, rows, cols);
    const h = this.host;
    const args = [
      h.addr(logits, K, 'float32', rows * cols, 'logits'), h.addr(targets, K, 'int32', rows, 'targets'),
      h.addr(lse, K, 'float32', rows, 'lse'), h.addr(entropy, K, 'float32', rows, 'entropy'),
      h.addr(gLogp, K, 'float32', rows, 'gLogp'), h.addr(gEntropy, K, 'float32', rows, 'gEntropy'),
      h.addr(gLogits, K, 'float32', rows * cols, 'gLogits'), cols,
    ];
    h.exec(K, 'log_softmax_gather_bwd', args, rows, this.parts(8 * rows * cols, rows));
  }

  // ---------------------------------------------------------------- RMSNorm

  rmsNorm(x: Storage, weight: Storage, out: Storage, rstd: Storage, rows: number, cols: number, eps: number): void {
    const K = 'rmsNorm';
    this.checkRowsCols(K, rows, cols);
    const h = this.host;
    const args = [
      h.addr(x, K, 'float32', rows * cols, 'x'), h.addr(weight, K, 'float32', cols, 'weight'),
      h.addr(out, K, 'float32', rows * cols, 'out'), h.addr(rstd, K, 'float32', rows, 'rstd'), cols, eps,
    ];
    h.exec(K, 'rms_norm', args, rows, this.parts(2 * rows * cols, rows));
  }

  rmsNormBackward(x: Storage, weight: Storage, rstd: Storage, gOut: Storage, gx: Storage, gWeight: Storage, rows: number, cols: number): void {
    const K = 'rmsNormBackward';
    this.checkRowsCols(K, rows, cols);
    const h = this.host;
    const px = h.addr(x, K, 'float32', rows * cols, 'x'), pw = h.addr(weight, K, 'float32', cols, 'weight');
    const pr = h.addr(rstd, K, 'float32', rows, 'rstd'), pg = h.addr(gOut, K, 'float32', rows * cols, 'gOut');
    const pgx = h.addr(gx, K, 'float32', rows * cols, 'gx'), pgw = h.addr(gWeight, K, 'float32', cols, 'gWeight');
    if (cols === 0) return;
    // Weight-gradient chunks depend on the shape only (≤ 32 chunks of ≥ 16 rows): thread-count independent.
    const chunkRows = Math.max(16, Math.ceil(rows / 32));
    const chunks = Math.max(1, Math.ceil(rows / chunkRows));
    const partial = h.temp(chunks * cols * 4);
    try {
      h.exec(K, 'rms_norm_bwd_rows', [px, pw, pr, pg, pgx, partial.ptr, rows, cols, chunkRows], chunks, this.parts(4 * rows * cols, chunks));
      h.exec(K, 'rms_norm_bwd_weight', [partial.ptr, pgw, chunks, cols], cols, this.parts(chunks * cols, Math.floor(cols / 4)), { align: 4 });
    } finally {
      partial.release();
    }
  }

  // ---------------------------------------------------------------- RoPE, SwiGLU

  rope(x: Storage, positions: Storage, out: Storage, a: RopeArgs): void {
    const K = 'rope';
    for (const key of ['batch', 't', 'heads', 'headDim'] as const) {
      if (!intArg(a[key])) throw new KernelError(K, `${key} must be a non-negative integer, got ${a[key]}`);
    }
    if (a.headDim % 2 !== 0) throw new KernelError(K, `headDim ${a.headDim} must be even`);
    if (x === out) throw new KernelError(K, 'out may not alias x');
    const h = this.host;
    const rows = a.batch * a.t;
    const n = rows * a.heads * a.headDim;
    const args = [
      h.addr(x, K, 'float32', n, 'x'), h.addr(positions, K, 'int32', rows, 'positions'), h.addr(out, K, 'float32', n, 'out'),
      a.heads, a.headDim, a.theta, a.inverse ? 1 : 0, h.scratch().base,
    ];
    if (rows === 0 || a.headDim === 0) return;
    h.exec(K, 'rope', args, rows, this.parts(4 * n, rows), { scratchSlot: 7 });
  }

  swiglu(gate: Storage, up: Storage, out: Storage, n: number): void {
    const K = 'swiglu';
    if (!intArg(n)) throw new KernelError(K, `invalid n ${n}`);
    const h = this.host;
    const args = [h.addr(gate, K, 'float32', n, 'gate'), h.addr(up, K, 'float32', n, 'up'), h.addr(out, K, 'float32', n, 'out')];
    h.exec(K, 'swiglu', args, n, this.parts(8 * n, n >> 2), { align: 4 });
  }

  swigluBackward(gate: Storage, up: Storage, gOut: Storage, gGate: Storage, gUp: Storage, n: number): void {
    const K = 'swigluBackward';
    if (!intArg(n)) throw new KernelError(K, `invalid n ${n}`);
    const h = this.host;
    const args = [
      h.addr(gate, K, 'float32', n, 'gate'), h.addr(up, K, 'float32', n, 'up'), h.addr(gOut, K, 'float32', n, 'gOut'),
      h.addr(gGate, K, 'float32', n, 'gGate'), h.addr(gUp, K, 'float32', n, 'gUp'),
    ];
    h.exec(K, 'swiglu_bwd', args, n, this.parts(8 * n, n >> 2), { align: 4 });
  }

  // ---------------------------------------------------------------- token loss

  /** The scalar tail of the engine's token-loss kernels: 1 − epsLow, 1 + epsHigh, dualClip, clamp. */
  private static tokenLossScalars(a: TokenLossArgs): number[] {
    return [1 - a.epsLow, 1 + a.epsHigh, a.dualClip, a.logRatioClamp];
  }

  tokenLoss(logp: Storage, oldLogp: Storage, adv: Storage, weight: Storage, loss: Storage, stats: Storage, n: number, a: TokenLossArgs): void {
    const K = 'tokenLoss';
    checkTokenLossArgs(K, n, a);
    const h = this.host;
    const args = [
      h.addr(logp, K, 'float32', n, 'logp'), h.addr(oldLogp, K, 'float32', n, 'oldLogp'), h.addr(adv, K, 'float32', n, 'adv'),
      h.addr(weight, K, 'float32', n, 'weight'), h.addr(loss, K, 'float32', n, 'loss'), h.addr(stats, K, 'float32', 3 * n, 'stats'),
      n, ...WasmModelKernels.tokenLossScalars(a),
    ];
    // ~40 flops a token (the exp dominates): typical batches of a few thousand tokens stay on one thread
    h.exec(K, 'token_loss', args, n, this.parts(40 * n, n >> 2), { align: 4 });
  }

  tokenLossBackward(
    logp: Storage, oldLogp: Storage, adv: Storage, weight: Storage, gLoss: Storage, gLogp: Storage, n: number, a: TokenLossArgs,
  ): void {
    const K = 'tokenLossBackward';
    checkTokenLossArgs(K, n, a);
    const h = this.host;
    const args = [
      h.addr(logp, K, 'float32', n, 'logp'), h.addr(oldLogp, K, 'float32', n, 'oldLogp'), h.addr(adv, K, 'float32', n, 'adv'),
      h.addr(weight, K, 'float32', n, 'weight'), h.addr(gLoss, K, 'float32', n, 'gLoss'), h.addr(gLogp, K, 'float32', n, 'gLogp'),
      ...WasmModelKernels.tokenLossScalars(a),
    ];
    h.exec(K, 'token_loss_bwd', args, n, this.parts(40 * n, n >> 2), { align: 4 });
  }

  // ---------------------------------------------------------------- optimizer

  adamw(param: Storage, grad: Storage, m: Storage, v: Storage, scale: Storage, a: AdamWArgs, n: number): void {
    const K = 'adamw';
    if (!intArg(n)) throw new KernelError(K, `invalid n ${n}`);
    if (!(a.step >= 1)) throw new KernelError(K, `step must be ≥ 1, got ${a.step}`);
    const h = this.host;
    const args = [
      h.addr(param, K, 'float32', n, 'param'), h.addr(grad, K, 'float32', n, 'grad'), h.addr(m, K, 'float32', n, 'm'),
      h.addr(v, K, 'float32', n, 'v'), h.addr(scale, K, 'float32', 1, 'scale'),
      a.beta1, a.beta2, a.eps, 1 - a.lr * a.weightDecay, a.lr / (1 - a.beta1 ** a.step), 1 / Math.sqrt(1 - a.beta2 ** a.step),
    ];
    h.exec(K, 'adamw', args, n, this.parts(4 * n, n >> 2), { align: 4 });
  }

  sumSquares(x: Storage, out: Storage, n: number, accumulate: boolean): void {
    const K = 'sumSquares';
    if (!intArg(n)) throw new KernelError(K, `invalid n ${n}`);
    const h = this.host;
    const px = h.addr(x, K, 'float32', n, 'x'), po = h.addr(out, K, 'float32', 1, 'out');
    const chunks = Math.ceil(n / h.blocks.sqChunk);
    const partials = h.temp(Math.max(16, chunks * 8));
    try {
      if (chunks > 0) h.exec(K, 'sum_squares_partial', [px, partials.ptr, n], chunks, this.parts(n, chunks));
      h.exec(K, 'sum_squares_finish', [partials.ptr, chunks, po, accumulate ? 1 : 0], 1, 1);
    } finally {
      partials.release();
    }
  }

  private checkRowsCols(kernel: string, rows: number, cols: number): void {
    if (!intArg(rows) || !intArg(cols)) throw new KernelError(kernel, `invalid shape ${rows}x${cols}`);
  }
}
