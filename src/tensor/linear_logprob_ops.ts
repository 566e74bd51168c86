// The output head and the token log-prob in one differentiable op that never holds [tokens, vocabulary]
// logits (what Liger's fused linear cross-entropy does). Rows are processed in chunks of at most chunkRows:
//   forward   z_c = h_c·Wᵀ (+ bias) [chunk, V] → logSoftmaxGather → logp_c, entropy_c, lse_c; z_c is dropped.
//   backward  z_c is recomputed, gz_c = logSoftmaxGatherBackward(z_c, gLogp_c, gEntropy_c) [chunk, V], then
//             gh_c = gz_c·W, gW += gz_cᵀ·h_c, gBias += Σ_rows gz_c (each only when that input needs it).
// So at most two [chunk, V] buffers are live at a time (logits and their gradient); when every row fits in one
// chunk, the backward reuses the forward's logits instead of recomputing them. Built from the existing
// matmul, logSoftmaxGather(+Backward), copy, reduce and scatterAdd kernels, so it runs on every backend.
import type { MatmulArgs, Storage } from '../backend/backend.js';
import { getBackend, tidy } from './engine.js';
import { checkInputs, checkWeightInput, empty, record } from './record.js';
import { shapeStr } from './shape.js';
import type { Tensor } from './tensor.js';
import { reshape, slice } from './layout.js';
import { div, ge, maximum, neg } from './elementwise.js';
import { sum } from './reduce.js';
import { cast } from './creation.js';

/**
 * The default element budget of one chunk of logits: 16 Mi float32 values (64 MiB), e.g. 341 rows at a
 * 49 152-token vocabulary, 110 rows at 151 936. The backward holds two such buffers (logits and gradient).
 * Smaller chunks cost time: each chunk's weight-gradient product rewrites a whole [V, D] buffer.
 */
export const LOGIT_CHUNK_ELEMENTS = 16 * 1024 * 1024;

export interface LinearLogSoftmaxGatherOptions {
  /** [V], added to every row of logits. */
  bias?: Tensor | null;
  /** Rows per chunk (default: defaultChunkRows, within LOGIT_CHUNK_ELEMENTS logits, at least 1). */
  chunkRows?: number;
}

function fail(message: string): never {
  throw new RangeError(`linearLogSoftmaxGather: ${message}`);
}

/**
 * Rows per chunk for `rows` rows of a `vocab`-entry vocabulary under the default logit budget, evened out over
 * the chunks that budget needs (1024 rows at 49 152: 4 chunks of 256 rather than 3 of 341 and one of 1).
 */
export function defaultChunkRows(rows: number, vocab: number): number {
  const most = Math.max(1, Math.floor(LOGIT_CHUNK_ELEMENTS / Math.max(1, vocab)));
  const chunks = Math.max(1, Math.ceil(rows / most));
  return Math.max(1, Math.ceil(rows / chunks));
}

function product(a: Storage, b: Storage, out: Storage, m: number, n: number, k: number, transA: boolean, transB: boolean): void {
  const args: MatmulArgs = { batch: 1, m, n, k, transA, transB, strideA: 0, strideB: 0 };
  getBackend().matmul(a, b, out, args);
}

/** Rows [start, start + count) of a contiguous [rows, cols] tensor as a new [count, cols] tensor (x itself when whole). */
function rowsOf(x: Tensor, start: number, count: number, cols: number): Tensor {
  if (start === 0 && count * cols === x.size) return x;
  const out = empty([count, cols], x.dtype);
  getBackend().copy(x.storage, { strides: [1], offset: start * cols }, out.storage, 0, [count * cols]);
  return out;
}

/** dst += src elementwise, in place, over the same number of elements (scatterAdd of one row at id 0). */
function addInto(dst: Tensor, src: Tensor, zeroId: Tensor): void {
  getBackend().scatterAdd(src.storage, zeroId.storage, dst.storage, 1, dst.size);
}

/**
 * Log-probs and entropies of targets under logits = hidden·weightᵀ (+ bias), without materialising the
 * [N, V] logits: hidden [N, D], weight [V, D] (nn.Linear layout), targets int32 [N] → logp [N], entropy [N].
 * Targets outside [0, V) give logp 0 and no logp gradient (ignored positions), as logSoftmaxGather.
 * Gradients flow to hidden, weight and bias when they track them; a frozen weight gets no gradient work.
 */
export function linearLogSoftmaxGather(
  hidden: Tensor, weight: Tensor, targets: Tensor, opts: LinearLogSoftmaxGatherOptions = {},
): { logp: Tensor; entropy: Tensor } {
  const bias = opts.bias ?? null;
  // The weight may be a frozen 16-bit table (LoRA's base, tied embeddings): matmul widens it; it gets no gradient.
  checkInputs('linearLogSoftmaxGather', bias ? [hidden, bias] : [hidden]);
  checkWeightInput('linearLogSoftmaxGather', weight);
  checkInputs('linearLogSoftmaxGather', [targets], 'int32');
  if (hidden.rank !== 2 || weight.rank !== 2) fail(`hidden must be [N, D] and weight [V, D], got ${shapeStr(hidden.shape)} and ${shapeStr(weight.shape)}`);
  const [rows, dim] = hidden.shape;
  const [vocab, weightDim] = weight.shape;
  if (weightDim !== dim) fail(`weight ${shapeStr(weight.shape)} must be [V, ${dim}] to match hidden ${shapeStr(hidden.shape)}`);
  if (vocab < 1) fail(`weight ${shapeStr(weight.shape)} has no vocabulary rows`);
  if (targets.size !== rows) fail(`targets ${shapeStr(targets.shape)} do not match the ${rows} rows of hidden ${shapeStr(hidden.shape)}`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== vocab)) fail(`bias ${shapeStr(bias.shape)} must be [${vocab}]`);
  const chunkRows = opts.chunkRows ?? defaultChunkRows(rows, vocab);
  if (!Number.isInteger(chunkRows) || chunkRows < 1) fail(`chunkRows must be a positive integer, got ${chunkRows}`);

  const backend = getBackend();
  const chunks: { start: number; count: number }[] = [];
  for (let start = 0; start < rows; start += chunkRows) chunks.push({ start, count: Math.min(chunkRows, rows - start) });

  /** Logits of one chunk of rows, [count, V] (hiddenRows: that chunk of hidden). */
  const logitsOf = (hiddenRows: Tensor, count: number, w: Tensor, b: Tensor | null): Tensor => {
    const z = empty([count, vocab]);
    product(hiddenRows.storage, w.storage, z.storage, count, vocab, dim, false, true);
    if (!b) return z;
    const biased = empty([count, vocab]);
    backend.binary('add', z.storage, { strides: [vocab, 1], offset: 0 }, b.storage, { strides: [0, 1], offset: 0 }, biased.storage, [count, vocab]);
    z.dispose();
    return biased;
  };

  // Both outputs live in one [2, N] tensor so one autograd node serves them; the caller gets row slices.
  const both = empty([2, rows]);
  const lse = empty([rows]);
  // With one chunk the backward reuses its logits instead of recomputing them (the budget already allows them).
  let keptLogits: Tensor | null = null;
  for (const { start, count } of chunks) {
    const h = rowsOf(hidden, start, count, dim);
    const t = rowsOf(targets, start, count, 1);
    const z = logitsOf(h, count, weight, bias);
    const logp = empty([count]);
    const entropy = empty([count]);
    const chunkLse = empty([count]);
    backend.kernels.logSoftmaxGather(z.storage, t.storage, logp.storage, entropy.storage, chunkLse.storage, count, vocab);
    const whole = { strides: [1], offset: 0 };
    backend.copy(logp.storage, whole, both.storage, start, [count]);
    backend.copy(entropy.storage, whole, both.storage, rows + start, [count]);
    backend.copy(chunkLse.storage, whole, lse.storage, start, [count]);
    if (chunks.length === 1) keptLogits = z;
    else z.dispose();
    for (const x of [logp, entropy, chunkLse]) x.dispose();
    if (h !== hidden) h.dispose();
    if (t !== targets) t.dispose();
  }

  const inputs = bias ? [hidden, weight, targets, bias] : [hidden, weight, targets];
  // Saved: the inputs, lse and both outputs (entropy is read back), then the bias and the kept logits if any.
  const saved = [hidden, weight, targets, lse, both, ...(bias ? [bias] : []), ...(keptLogits ? [keptLogits] : [])];
  const tracked = record('linearLogSoftmaxGather', inputs, both, saved, (g, [sh, sw, st, sl, sBoth, ...optional], needs) => {
    const sBias = bias ? optional[0] : null;
    const sz = keptLogits ? optional[bias ? 1 : 0] : null;
    const [needHidden, needWeight] = needs;
    const needBias = bias ? needs[3] : false;
    const gHidden = needHidden ? empty([rows, dim]) : null;
    let gWeight: Tensor | null = null;
    let gBias: Tensor | null = null;
    // One int32 id 0: scatterAdd of a single full-length row is an in-place dst += src on every backend.
    const zeroId = needWeight || needBias ? empty([1], 'int32') : null;
    if (zeroId) backend.fill(zeroId.storage, 0);
    for (const { start, count } of chunks) {
      const h = rowsOf(sh, start, count, dim);
      const t = rowsOf(st, start, count, 1);
      const part = (x: Tensor, offset: number): Tensor => {
        const out = empty([count]);
        backend.copy(x.storage, { strides: [1], offset: offset + start }, out.storage, 0, [count]);
        return out;
      };
      const [gLogp, gEntropy, chunkLse, chunkEntropy] = [part(g, 0), part(g, rows), part(sl, 0), part(sBoth, rows)];
      const z = sz ?? logitsOf(h, count, sw, sBias);
      const gz = empty([count, vocab]);
      backend.kernels.logSoftmaxGatherBackward(z.storage, t.storage, chunkLse.storage, chunkEntropy.storage,
        gLogp.storage, gEntropy.storage, gz.storage, count, vocab);
      if (z !== sz) z.dispose();
      for (const x of [gLogp, gEntropy, chunkLse, chunkEntropy]) x.dispose();
      if (gHidden) {
        // gh_c = gz_c·W, written straight into gHidden when there is one chunk.
        const gh = chunks.length === 1 ? gHidden : empty([count, dim]);
        product(gz.storage, sw.storage, gh.storage, count, dim, vocab, false, false);
        if (gh !== gHidden) {
          backend.copy(gh.storage, { strides: [1], offset: 0 }, gHidden.storage, start * dim, [count * dim]);
          gh.dispose();
        }
      }
      if (needWeight) {
        // gW_c = gz_cᵀ·h_c [V, D]: the first chunk writes gWeight, later ones add into it.
        const gw = empty([vocab, dim]);
        product(gz.storage, h.storage, gw.storage, vocab, dim, count, true, false);
        if (gWeight) {
          addInto(gWeight, gw, zeroId!);
          gw.dispose();
        } else {
          gWeight = gw;
        }
      }
      if (needBias) {
        const gb = empty([vocab]);
        backend.reduce('sum', gz.storage, gb.storage, 1, count, vocab);
        if (gBias) {
          addInto(gBias, gb, zeroId!);
          gb.dispose();
        } else {
          gBias = gb;
        }
      }
      gz.dispose();
      if (h !== sh) h.dispose();
      if (t !== st) t.dispose();
    }
    zeroId?.dispose();
    return bias ? [gHidden, gWeight, null, gBias] : [gHidden, gWeight, null];
  });
  lse.dispose();
  keptLogits?.dispose(); // the node, when one was recorded, keeps its own alias
  const out = tidy(() => ({
    logp: reshape(slice(tracked, [0, 0], [1, rows]), [rows]),
    entropy: reshape(slice(tracked, [1, 0], [1, rows]), [rows]),
  }));
  tracked.dispose();
  return out;
}

/**
 * Mean token cross-entropy −log p(target) of logits = hidden·weightᵀ (+ bias) over the rows whose target is
 * not ignored (targets < 0), without materialising the logits (see linearLogSoftmaxGather).
 */
export function linearCrossEntropy(hidden: Tensor, weight: Tensor, targets: Tensor, opts: LinearLogSoftmaxGatherOptions = {}): Tensor {
  return tidy(() => {
    const { logp } = linearLogSoftmaxGather(hidden, weight, targets, opts);
    return meanTokenNll(logp, targets);
  });
}

/** −Σ logp / max(1, number of targets ≥ 0): the mean cross-entropy over the rows that have a target. */
export function meanTokenNll(logp: Tensor, targets: Tensor): Tensor {
  return tidy(() => {
    const valid = ge(cast(targets, 'float32'), 0);
    return div(neg(sum(logp)), maximum(sum(valid), 1));
  });
}
