// Fused kernels of the transformer policy and its optimizer, part of the Backend contract.
// Every tensor argument is a contiguous float32 Storage unless marked int32; shapes are given in the args.
// Each method's math is stated exactly here: the float64 reference implements it literally, the product
// backends must match it to float32 tolerance.

import { KernelError, type Storage, type View } from './backend.js';

/**
 * Scaled dot-product attention over a batch of sequences, with grouped-query heads.
 * Layouts: q, out [batch, heads, tq, headDim]; k, v [batch, kvHeads, kvStride, headDim] of which rows
 * [0, tk) are used (a KV cache allocates kvStride = maxSeqLen rows); lse [batch, heads, tq].
 * Query head h reads kv head floor(h / (heads / kvHeads)).
 * Query row i sits at absolute position qOffset + i. Key j of sequence b is visible to it when
 *   j < tk, j ≥ keyStart[b] (left padding; keyStart absent = 0), and, if causal, j ≤ qOffset + i.
 * s_j = scale · q_i · k_j; lse_i = log Σ_visible exp(s_j); out_i = Σ_visible exp(s_j − lse_i) · v_j.
 * A row with no visible key gets out_i = 0 and lse_i = +Infinity (so exp(s − lse) = 0 in the backward).
 */
export interface AttentionArgs {
  batch: number;
  heads: number;
  kvHeads: number;
  tq: number;
  tk: number;
  kvStride: number;
  headDim: number;
  scale: number;
  causal: boolean;
  qOffset: number;
}

/**
 * Rotary position embedding (Llama / Hugging Face "rotate_half" convention) over x [batch, t, heads, headDim]
 * with positions int32 [batch, t]. For j < headDim/2, with f_j = theta^(−2j/headDim) and a = pos·f_j
 * (−a when inverse, which is the backward):
 *   out[j] = x[j]·cos a − x[j + headDim/2]·sin a;  out[j + headDim/2] = x[j + headDim/2]·cos a + x[j]·sin a.
 */
export interface RopeArgs {
  batch: number;
  t: number;
  heads: number;
  headDim: number;
  theta: number;
  inverse: boolean;
}

/**
 * Decoupled AdamW (PyTorch semantics), in place over n elements, with the gradient multiplied by scale[0]
 * (a 1-element float32 storage, so clipping needs no readback):
 *   g = grad·scale[0]; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
 *   param = param·(1 − lr·weightDecay) − lr · (m / (1 − β1^step)) / (sqrt(v / (1 − β2^step)) + eps).
 */
export interface AdamWArgs {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step count for bias correction. */
  step: number;
}

/**
 * The clipped policy-gradient token loss of PPO / GRPO / DAPO. Per token i < n, with C = logRatioClamp:
 *   d = clamp(logp − oldLogp, −C, C); r = exp(d); A = adv;
 *   l1 = −A·r; l2 = −A·clamp(r, 1 − epsLow, 1 + epsHigh); l = max(l1, l2);
 *   if dualClip > 0 and A < 0: l = min(l, −A·dualClip);
 *   loss[i] = weight[i]·l.
 * epsLow ≠ epsHigh is DAPO's Clip-Higher; dualClip c > 1 bounds the loss of negative-advantage tokens.
 */
export interface TokenLossArgs {
  epsLow: number;
  epsHigh: number;
  /** c > 1 enables dual-clip for A < 0; 0 = off. */
  dualClip: number;
  /** The log-ratio is clamped to ±this before exp (e.g. 20). */
  logRatioClamp: number;
}

/** Largest log-ratio clamp whose exp stays finite, with room for the advantage factor, in float32. */
export const MAX_LOG_RATIO_CLAMP = 80;

/** Throws a KernelError listing every invalid TokenLossArgs field (and n), for all backends alike. */
export function checkTokenLossArgs(kernel: string, n: number, a: TokenLossArgs): void {
  const bad: string[] = [];
  if (!Number.isInteger(n) || n < 0) bad.push(`n must be a non-negative integer, got ${n}`);
  if (!(a.epsLow >= 0 && a.epsLow < 1)) bad.push(`epsLow must be in [0, 1), got ${a.epsLow}`);
  if (!(a.epsHigh >= 0 && Number.isFinite(a.epsHigh))) bad.push(`epsHigh must be a finite number ≥ 0, got ${a.epsHigh}`);
  if (!(a.dualClip === 0 || (a.dualClip > 1 && Number.isFinite(a.dualClip)))) bad.push(`dualClip must be 0 (off) or a finite number > 1, got ${a.dualClip}`);
  if (!(a.logRatioClamp > 0 && a.logRatioClamp <= MAX_LOG_RATIO_CLAMP)) {
    bad.push(`logRatioClamp must be in (0, ${MAX_LOG_RATIO_CLAMP}], got ${a.logRatioClamp}`);
  }
  if (bad.length) throw new KernelError(kernel, bad.join('; '));
}

export interface ModelKernels {
  /**
   * out[outView(i)] = x[xView(i)] over `shape` (raw 32-bit words, either dtype): a strided write, e.g. new
   * keys into a KV cache [batch, kvHeads, maxSeqLen, headDim] at a position. Output elements outside the
   * view are untouched; the out view must not map two indices to one element.
   */
  writeView(x: Storage, xView: View, out: Storage, outView: View, shape: readonly number[]): void;

  /** See AttentionArgs. keyStart: int32 [batch] or null. */
  attention(q: Storage, k: Storage, v: Storage, keyStart: Storage | null, out: Storage, lse: Storage, args: AttentionArgs): void;
  /**
   * Gradients of attention, recomputing probabilities from lse: p_ij = exp(s_ij − lse_i) over visible keys,
   * D_i = Σ_d gOut_i·out_i, dS_ij = p_ij·(gOut_i·v_j − D_i);
   * gq_i = scale·Σ_j dS_ij k_j; gk_j = scale·Σ_{heads sharing the kv head, i} dS_ij q_i; gv_j = Σ p_ij gOut_i.
   * Requires kvStride == tk. gq [batch, heads, tq, headDim]; gk, gv [batch, kvHeads, tk, headDim], all
   * overwritten (key rows nobody sees get 0).
   */
  attentionBackward(
    q: Storage, k: Storage, v: Storage, keyStart: Storage | null, out: Storage, lse: Storage, gOut: Storage,
    gq: Storage, gk: Storage, gv: Storage, args: AttentionArgs,
  ): void;

  /**
   * Per row r of logits [rows, cols] with target id t = targets[r] (int32):
   *   lse_r = log Σ_c exp(x_c); logp_r = x_t − lse_r (0 when t is outside [0, cols): ignored rows);
   *   entropy_r = lse_r − Σ_c softmax(x)_c · x_c.
   * One pass over the row (online log-sum-exp); never writes [rows, cols].
   */
  logSoftmaxGather(logits: Storage, targets: Storage, logp: Storage, entropy: Storage, lse: Storage, rows: number, cols: number): void;
  /**
   * gLogits[r, c] = gLogp_r·([c == t] − p_c) − gEntropy_r·p_c·(x_c − lse_r + entropy_r), with p_c = exp(x_c − lse_r)
   * (the gLogp term is 0 for ignored rows). Overwrites gLogits [rows, cols].
   */
  logSoftmaxGatherBackward(
    logits: Storage, targets: Storage, lse: Storage, entropy: Storage, gLogp: Storage, gEntropy: Storage,
    gLogits: Storage, rows: number, cols: number,
  ): void;

  /** out[r, c] = x[r, c]·rstd_r·weight[c], rstd_r = 1 / sqrt(mean_c x[r, c]² + eps); writes out and rstd [rows]. */
  rmsNorm(x: Storage, weight: Storage, out: Storage, rstd: Storage, rows: number, cols: number, eps: number): void;
  /**
   * gx[r, c] = rstd_r·weight[c]·g[r, c] − x[r, c]·rstd_r³·(1/cols)·Σ_k g[r, k]·weight[k]·x[r, k];
   * gWeight[c] = Σ_r g[r, c]·x[r, c]·rstd_r. Overwrites gx and gWeight.
   */
  rmsNormBackward(x: Storage, weight: Storage, rstd: Storage, gOut: Storage, gx: Storage, gWeight: Storage, rows: number, cols: number): void;

  /** See RopeArgs. positions: int32 [batch, t]. out may not alias x. */
  rope(x: Storage, positions: Storage, out: Storage, args: RopeArgs): void;

  /** out = silu(gate)·up over n elements (silu(g) = g·sigmoid(g)). */
  swiglu(gate: Storage, up: Storage, out: Storage, n: number): void;
  /** gGate = gOut·up·sigmoid(g)·(1 + g·(1 − sigmoid(g))); gUp = gOut·silu(g). */
  swigluBackward(gate: Storage, up: Storage, gOut: Storage, gGate: Storage, gUp: Storage, n: number): void;

  /**
   * See TokenLossArgs. logp, oldLogp, adv, weight, loss: float32 [n]; stats: float32 [3, n] with
   * valid_i = (weight[i] ≠ 0 ? 1 : 0):
   *   stats[0, i] = valid_i·(r < 1 − epsLow and A < 0)   (low clip active, TRL's definition)
   *   stats[1, i] = valid_i·(r > 1 + epsHigh and A > 0)  (high clip active)
   *   stats[2, i] = valid_i·((r − 1) − d)                (k3 estimate of KL(old ‖ new) per token)
   */
  tokenLoss(logp: Storage, oldLogp: Storage, adv: Storage, weight: Storage, loss: Storage, stats: Storage, n: number, args: TokenLossArgs): void;
  /**
   * gLogp[i] = gLoss[i]·weight[i]·∂l/∂logp, with ∂l/∂logp = −A·r when l1 is the active branch (l1 ≥ l2, ties
   * → l1) and, for dual-clip, not replaced by the constant −A·c (replaced only when −A·c < l); 0 when the
   * clipped branch or the dual-clip constant is active, and 0 when |logp − oldLogp| > C (clamped).
   * The branch is chosen exactly as in the forward. Overwrites gLogp [n].
   */
  tokenLossBackward(
    logp: Storage, oldLogp: Storage, adv: Storage, weight: Storage, gLoss: Storage, gLogp: Storage, n: number, args: TokenLossArgs,
  ): void;

  /** See AdamWArgs: updates param, m and v in place. */
  adamw(param: Storage, grad: Storage, m: Storage, v: Storage, scale: Storage, args: AdamWArgs, n: number): void;
  /** out[0] = (accumulate ? out[0] : 0) + Σ_{i<n} x[i]² (global grad norm without readback). */
  sumSquares(x: Storage, out: Storage, n: number, accumulate: boolean): void;
}
