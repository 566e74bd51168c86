// The WASM backend's model kernels (writeView, attention, log-softmax gather, RMSNorm, RoPE, SwiGLU, token loss,
// LoRA's low-rank update, AdamW, sum of squares): parameter blocks and the choice of thread split. Arguments arrive validated against
// the signature table (../model_kernels.ts); only the scratch-area limit is checked here. The
// kernels live in engine/{attention,attention_backward,softmax_gather,norm,rope,swiglu,token_loss,low_rank,adamw}.ts.
//
// Every split is deterministic: work items own their outputs (rows, query blocks, key blocks), and the two
// reductions across items (RMSNorm's weight gradient, the sum of squares) use chunks fixed by the shape alone
// and add them in order, so results are bit-identical for any thread count.
import { ATTENTION_PARAM_BLOCK, ATTENTION_PARAM_WORDS } from '../kernel_layouts.js';
import type { ModelKernels } from '../model_kernels.js';
import { type AttentionArgs, KernelError, type MatmulArgs, type Storage, type TokenLossArgs, type View } from '../types.js';

/** The LoRA epilogue of WasmKernelHost.matmulLowRank: byte addresses of u [m, rank] and lT [rank, n], rank, scale. */
export interface LowRankEpilogue {
  u: number;
  lT: number;
  rank: number;
  scale: number;
}

/** The part of the WASM backend the launchers need (closures over its private state). */
export interface WasmKernelHost {
  threads(): number;
  /** Byte address of a live storage of this backend (throws a KernelError naming `kernel` otherwise). */
  ptr(x: Storage, kernel: string): number;
  /** The backend's matmul (b may be 16-bit). */
  matmul(a: Storage, b: Storage, out: Storage, args: MatmulArgs): void;
  /** matmul with the LoRA epilogue in the engine's store phase; false (nothing done) where that path has none. */
  matmulLowRank(a: Storage, b: Storage, out: Storage, args: MatmulArgs, epilogue: LowRankEpilogue): boolean;
  /** Runs the engine export `engineFn` over [0, work) on `parts` threads (see WasmBackend.exec). */
  exec(kernel: string, engineFn: string, args: number[], work: number, parts: number,
    opts?: { align?: number; scratchSlot?: number }): void;
  /** Threads worth using for `elems` units of elementwise-like work split into at most `units` pieces. */
  partsFor(elems: number, units: number): number;
  /** Coalesces `shape` and `views` into the strided parameter block; returns the block's address. */
  stridedParams(kernel: string, shape: readonly number[], views: readonly View[]): number;
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

type AttentionParam = keyof typeof ATTENTION_PARAM_BLOCK;

/** Work (flops, elements) below which a kernel stays on the calling thread. */
const MIN_PAR_FLOPS = 1 << 18;

/** Flops of one attention matmul pass (q·kᵀ or p·v), halved for causal masks. */
function passFlops(args: AttentionArgs): number {
  return 2 * args.batch * args.heads * args.tq * args.tk * args.headDim * (args.causal ? 0.5 : 1);
}

/** The scalar tail of the engine's token-loss kernels: 1 − epsLow, 1 + epsHigh, dualClip, clamp. */
function tokenLossScalars(args: TokenLossArgs): number[] {
  return [1 - args.epsLow, 1 + args.epsHigh, args.dualClip, args.logRatioClamp];
}

export function wasmModelKernels(host: WasmKernelHost) {
  /** Runs `use` with l as lT [rank, cols]: l itself with transL, else a transposed copy (rank·cols values, tiny). */
  const withTransposedL = (kernel: string, pl: number, args: { cols: number; rank: number; transL: boolean }, use: (lT: number) => void): void => {
    if (args.transL) {
      use(pl);
      return;
    }
    const { rank, cols } = args;
    const lT = host.temp(Math.max(16, 4 * rank * cols));
    try {
      const block = host.stridedParams(kernel, [rank, cols], [{ strides: [1, rank], offset: 0 }, { strides: [cols, 1], offset: 0 }]);
      host.exec(kernel, 'write_view32', [pl, lT.ptr, block], rank * cols, host.partsFor(rank * cols, rank * cols), { align: 16 });
      use(lT.ptr);
    } finally {
      lT.release();
    }
  };

  const parts = (work: number, items: number): number => {
    const threads = host.threads();
    if (threads <= 1 || work < MIN_PAR_FLOPS) return 1;
    return Math.max(1, Math.min(threads, items));
  };

  /** Throws when one work item's tiles do not fit the per-thread scratch area. */
  const checkScratch = (kernel: string, args: AttentionArgs, backward: boolean): void => {
    const { ch, bq, bkv } = host.blocks;
    const need = backward ? 2 * bkv * ch : bq * ch + bq * args.headDim + 2 * bq;
    if (need * 4 > host.scratch().stride) throw new KernelError(kernel, `headDim ${args.headDim} is too large for the scratch area`);
  };

  /** Writes the attention parameter block (storage addresses `ptrs`, then the shape of `args`); returns its address. */
  const attentionParams = (ptrs: Partial<Record<AttentionParam, number>>, args: AttentionArgs): number => {
    const block = host.paramBlock;
    const words = host.i32();
    const base = block >> 2;
    words.fill(0, base, base + ATTENTION_PARAM_WORDS);
    const fields: Partial<Record<AttentionParam, number>> = {
      ...ptrs, batch: args.batch, heads: args.heads, kvHeads: args.kvHeads, tq: args.tq, tk: args.tk, kvStride: args.kvStride,
      headDim: args.headDim, causal: args.causal ? 1 : 0, qOffset: args.qOffset,
    };
    for (const [field, value] of Object.entries(fields)) words[base + ATTENTION_PARAM_BLOCK[field as AttentionParam]] = value;
    host.f32()[base + ATTENTION_PARAM_BLOCK.scale] = args.scale;
    return block;
  };

  return {
    writeView(x, xView, out, outView, shape) {
      const kernel = 'writeView';
      const from = host.ptr(x, kernel);
      const to = host.ptr(out, kernel);
      const n = shape.reduce((a, d) => a * d, 1);
      const block = host.stridedParams(kernel, shape, [xView, outView]);
      host.exec(kernel, 'write_view32', [from + 4 * xView.offset, to + 4 * outView.offset, block], n, host.partsFor(n, n), { align: 16 });
    },

    attention(q, k, v, keyStart, out, lse, args) {
      const kernel = 'attention';
      checkScratch(kernel, args, false);
      const ptrs = {
        q: host.ptr(q, kernel), k: host.ptr(k, kernel), v: host.ptr(v, kernel), keyStart: keyStart ? host.ptr(keyStart, kernel) : 0,
        out: host.ptr(out, kernel), lse: host.ptr(lse, kernel),
      };
      const items = args.batch * args.heads * Math.ceil(args.tq / host.blocks.bq);
      if (items === 0) return;
      const block = attentionParams(ptrs, args);
      const { base } = host.scratch();
      host.exec(kernel, 'attention_fwd', [block, base], items, parts(2 * passFlops(args), items), { scratchSlot: 1 });
    },

    attentionBackward(q, k, v, keyStart, out, lse, gOut, gq, gk, gv, args) {
      const kernel = 'attentionBackward';
      checkScratch(kernel, args, true);
      const rows = args.batch * args.heads * args.tq;
      const ptrs = {
        q: host.ptr(q, kernel), k: host.ptr(k, kernel), v: host.ptr(v, kernel), keyStart: keyStart ? host.ptr(keyStart, kernel) : 0,
        out: host.ptr(out, kernel), lse: host.ptr(lse, kernel), gOut: host.ptr(gOut, kernel),
        gq: host.ptr(gq, kernel), gk: host.ptr(gk, kernel), gv: host.ptr(gv, kernel),
      };
      // One item per (sequence, kv head): it owns gk, gv of the kv head and gq, D of the query heads sharing it.
      const items = args.batch * args.kvHeads;
      if (items === 0) return;
      const { base } = host.scratch();
      const dRow = host.temp(Math.max(16, rows * 4));
      try {
        const block = attentionParams({ ...ptrs, dRow: dRow.ptr }, args);
        host.exec(kernel, 'attention_bwd', [block, base], items, parts(5 * passFlops(args), items), { scratchSlot: 1 });
      } finally {
        dRow.release();
      }
    },

    logSoftmaxGather(logits, targets, logp, entropy, lse, rows, cols) {
      const kernel = 'logSoftmaxGather';
      const ptrs = [logits, targets, logp, entropy, lse].map((x) => host.ptr(x, kernel));
      host.exec(kernel, 'log_softmax_gather', [...ptrs, cols], rows, parts(8 * rows * cols, rows));
    },

    sampleRows(logits, uniforms, out, rows, cols, temperature) {
      const kernel = 'sampleRows';
      const ptrs = [logits, uniforms, out].map((x) => host.ptr(x, kernel));
      host.exec(kernel, 'sample_rows', [...ptrs, cols, temperature], rows, parts(12 * rows * cols, rows));
    },

    logSoftmaxGatherBackward(logits, targets, lse, entropy, gLogp, gEntropy, gLogits, rows, cols) {
      const kernel = 'logSoftmaxGatherBackward';
      const ptrs = [logits, targets, lse, entropy, gLogp, gEntropy, gLogits].map((x) => host.ptr(x, kernel));
      host.exec(kernel, 'log_softmax_gather_bwd', [...ptrs, cols], rows, parts(8 * rows * cols, rows));
    },

    rmsNorm(x, weight, out, rstd, rows, cols, eps) {
      const kernel = 'rmsNorm';
      const ptrs = [x, weight, out, rstd].map((s) => host.ptr(s, kernel));
      host.exec(kernel, 'rms_norm', [...ptrs, cols, eps], rows, parts(2 * rows * cols, rows));
    },

    rmsNormBackward(x, weight, rstd, gOut, gx, gWeight, rows, cols) {
      const kernel = 'rmsNormBackward';
      const [px, pWeight, pRstd, pGOut, pGx, pGWeight] = [x, weight, rstd, gOut, gx, gWeight].map((s) => host.ptr(s, kernel));
      if (cols === 0) return;
      // Weight-gradient chunks depend on the shape only (≤ 32 chunks of ≥ 16 rows): thread-count independent.
      const chunkRows = Math.max(16, Math.ceil(rows / 32));
      const chunks = Math.max(1, Math.ceil(rows / chunkRows));
      const partial = host.temp(chunks * cols * 4);
      try {
        host.exec(kernel, 'rms_norm_bwd_rows', [px, pWeight, pRstd, pGOut, pGx, partial.ptr, rows, cols, chunkRows], chunks,
          parts(4 * rows * cols, chunks));
        host.exec(kernel, 'rms_norm_bwd_weight', [partial.ptr, pGWeight, chunks, cols], cols, parts(chunks * cols, Math.floor(cols / 4)), { align: 4 });
      } finally {
        partial.release();
      }
    },

    rope(x, positions, out, args) {
      const kernel = 'rope';
      const rows = args.batch * args.t;
      const n = rows * args.heads * args.headDim;
      if (rows === 0 || args.headDim === 0) return;
      // Scaled RoPE: the float64 frequency table goes to the engine in a temporary block (0: derive from theta).
      const table = args.inverseFrequencies ? host.temp(8 * args.inverseFrequencies.length) : null;
      try {
        if (table) new Float64Array(host.f32().buffer, table.ptr, args.inverseFrequencies!.length).set(args.inverseFrequencies!);
        const engineArgs = [
          host.ptr(x, kernel), host.ptr(positions, kernel), host.ptr(out, kernel),
          args.heads, args.headDim, args.theta, args.inverse ? 1 : 0, table ? table.ptr : 0, host.scratch().base,
        ];
        host.exec(kernel, 'rope', engineArgs, rows, parts(4 * n, rows), { scratchSlot: 8 });
      } finally {
        table?.release();
      }
    },

    swiglu(gate, up, out, n) {
      const kernel = 'swiglu';
      const ptrs = [gate, up, out].map((s) => host.ptr(s, kernel));
      host.exec(kernel, 'swiglu', ptrs, n, parts(8 * n, n >> 2), { align: 4 });
    },

    swigluBackward(gate, up, gOut, gGate, gUp, n) {
      const kernel = 'swigluBackward';
      const ptrs = [gate, up, gOut, gGate, gUp].map((s) => host.ptr(s, kernel));
      host.exec(kernel, 'swiglu_bwd', ptrs, n, parts(8 * n, n >> 2), { align: 4 });
    },

    tokenLoss(logp, oldLogp, adv, weight, loss, stats, n, args) {
      const kernel = 'tokenLoss';
      const ptrs = [logp, oldLogp, adv, weight, loss, stats].map((s) => host.ptr(s, kernel));
      // ~40 flops a token (the exp dominates): typical batches of a few thousand tokens stay on one thread
      host.exec(kernel, 'token_loss', [...ptrs, n, ...tokenLossScalars(args)], n, parts(40 * n, n >> 2), { align: 4 });
    },

    tokenLossBackward(logp, oldLogp, adv, weight, gLoss, gLogp, n, args) {
      const kernel = 'tokenLossBackward';
      const ptrs = [logp, oldLogp, adv, weight, gLoss, gLogp].map((s) => host.ptr(s, kernel));
      host.exec(kernel, 'token_loss_bwd', [...ptrs, ...tokenLossScalars(args)], n, parts(40 * n, n >> 2), { align: 4 });
    },

    lowRankAdd(u, l, out, args) {
      const kernel = 'lowRankAdd';
      const [pu, pl, pOut] = [u, l, out].map((s) => host.ptr(s, kernel));
      const { rows, cols, rank } = args;
      if (rows * cols === 0 || rank === 0) return;
      withTransposedL(kernel, pl, args, (lT) =>
        // Rows own their outputs: any split gives the same bits.
        host.exec(kernel, 'low_rank_add', [pu, lT, pOut, cols, rank, args.scale], rows, parts(2 * rows * cols * rank, rows)));
    },

    matmulLowRank(x, w, u, l, out, args) {
      const kernel = 'matmulLowRank';
      const [pu, pl, pOut] = [u, l, out].map((s) => host.ptr(s, kernel));
      const { rows, cols, inner, rank, scale } = args;
      const product: MatmulArgs = { batch: 1, m: rows, n: cols, k: inner, transA: false, transB: args.transB, strideA: 0, strideB: 0 };
      if (rows * cols === 0) return;
      if (rank === 0) {
        host.matmul(x, w, out, product);
        return;
      }
      withTransposedL(kernel, pl, args, (lT) => {
        if (host.matmulLowRank(x, w, out, product, { u: pu, lT, rank, scale })) return;
        // split-k (few rows, no transB) has no epilogue: the product, then the low-rank pass
        host.matmul(x, w, out, product);
        host.exec(kernel, 'low_rank_add', [pu, lT, pOut, cols, rank, scale], rows, parts(2 * rows * cols * rank, rows));
      });
    },

    adamw(param, grad, m, v, scale, args, n) {
      const kernel = 'adamw';
      const ptrs = [param, grad, m, v, scale].map((s) => host.ptr(s, kernel));
      const engineArgs = [
        ...ptrs, args.beta1, args.beta2, args.eps, 1 - args.lr * args.weightDecay,
        args.lr / (1 - args.beta1 ** args.step), 1 / Math.sqrt(1 - args.beta2 ** args.step),
      ];
      host.exec(kernel, 'adamw', engineArgs, n, parts(4 * n, n >> 2), { align: 4 });
    },

    sumSquares(x, out, n, accumulate) {
      const kernel = 'sumSquares';
      const px = host.ptr(x, kernel);
      const pOut = host.ptr(out, kernel);
      const chunks = Math.ceil(n / host.blocks.sqChunk);
      const partials = host.temp(Math.max(16, chunks * 8));
      try {
        if (chunks > 0) host.exec(kernel, 'sum_squares_partial', [px, partials.ptr, n], chunks, parts(n, chunks));
        host.exec(kernel, 'sum_squares_finish', [partials.ptr, chunks, pOut, accumulate ? 1 : 0], 1, 1);
      } finally {
        partials.release();
      }
    },
  } satisfies ModelKernels;
}
