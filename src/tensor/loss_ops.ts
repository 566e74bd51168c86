// Differentiable policy-gradient losses over fused backend kernels. Contract of the token loss:
// ../backend/model_kernels.ts (tokenLoss / tokenLossBackward).
import { type TokenLossArgs, tokenLossArgsProblems } from '../backend/model_kernels.js';
import { getBackend, tidy } from './engine.js';
import { checkInputs, empty, record } from './record.js';
import { shapeStr } from './shape.js';
import type { Tensor } from './tensor.js';
import { reshape, slice } from './layout.js';
import { sum } from './reduce.js';

export interface ClippedTokenLossOptions {
  /** Lower clip: ratios below 1 − epsLow stop pushing down negative-advantage tokens (default 0.2). */
  epsLow?: number;
  /** Upper clip (DAPO's Clip-Higher; default 0.28, GRPO uses 0.2). */
  epsHigh?: number;
  /** c > 1 caps the loss of negative-advantage tokens at −A·c (dual-clip PPO); 0 = off (default). */
  dualClip?: number;
  /** The log-ratio is clamped to ±this before exp (default 20). */
  logRatioClamp?: number;
}

export interface ClippedTokenLoss {
  /** Scalar Σ_i weight_i·l_i, differentiable w.r.t. logp only. */
  loss: Tensor;
  /** Scalar count of weighted tokens whose low clip is active (r < 1 − epsLow, A < 0). */
  clipLow: Tensor;
  /** Scalar count of weighted tokens whose high clip is active (r > 1 + epsHigh, A > 0). */
  clipHigh: Tensor;
  /** Scalar Σ over weighted tokens of the k3 estimate (r − 1) − log r of KL(old ‖ new). */
  approxKl: Tensor;
}

const DEFAULTS: TokenLossArgs = { epsLow: 0.2, epsHigh: 0.28, dualClip: 0, logRatioClamp: 20 };

/** Merges the options over the defaults, listing every unknown or invalid key in one error. */
function tokenLossArgs(op: string, opts: ClippedTokenLossOptions): TokenLossArgs {
  const bad: string[] = [];
  for (const key of Object.keys(opts)) {
    if (!(key in DEFAULTS)) bad.push(`unknown option '${key}' (expected ${Object.keys(DEFAULTS).join(', ')})`);
  }
  const a: TokenLossArgs = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS) as (keyof TokenLossArgs)[]) {
    const v = opts[key];
    if (v !== undefined) a[key] = v;
  }
  bad.push(...tokenLossArgsProblems(a));
  if (bad.length) throw new RangeError(`${op}: ${bad.join('; ')}`);
  return a;
}

/**
 * The clipped policy-gradient token loss of PPO / GRPO / DAPO, fused: per token ℓ = max(−A·r, −A·clip(r,
 * 1 − epsLow, 1 + epsHigh)) (optionally capped at −A·c for A < 0), r = exp(clamp(logp − oldLogp)).
 * logp may have any shape; oldLogp, advantages (per token) and weights (0 masks a token out; the token-level
 * normaliser can be folded in) must have as many elements. Returns sums, not means: the caller divides by
 * its global valid-token count, so gradient accumulation over micro-batches stays exact.
 */
export function clippedTokenLoss(
  logp: Tensor, oldLogp: Tensor, advantages: Tensor, weights: Tensor, opts: ClippedTokenLossOptions = {},
): ClippedTokenLoss {
  const op = 'clippedTokenLoss';
  checkInputs(op, [logp, oldLogp, advantages, weights]);
  const n = logp.size;
  const mismatched = ([['oldLogp', oldLogp], ['advantages', advantages], ['weights', weights]] as const).filter(([, t]) => t.size !== n);
  if (mismatched.length) {
    throw new RangeError(`${op}: ${mismatched.map(([name, t]) => `${name} ${shapeStr(t.shape)}`).join(', ')} must have as many elements as logp ${shapeStr(logp.shape)} (${n})`);
  }
  const args = tokenLossArgs(op, opts);
  const backend = getBackend();
  return tidy(() => {
    const perToken = empty(logp.shape);
    const stats = empty([3, n]);
    backend.kernels.tokenLoss(logp.storage, oldLogp.storage, advantages.storage, weights.storage, perToken.storage, stats.storage, n, args);
    const tracked = record(op, [logp], perToken, [logp, oldLogp, advantages, weights], (g, [lp, old, adv, w]) => {
      const gLogp = empty(lp.shape);
      getBackend().kernels.tokenLossBackward(lp.storage, old.storage, adv.storage, w.storage, g.storage, gLogp.storage, n, args);
      return [gLogp];
    });
    const totals = sum(stats, { axis: 1 });
    const total = (i: number) => reshape(slice(totals, [i], [1]), []);
    return { loss: sum(tracked), clipLow: total(0), clipHigh: total(1), approxKl: total(2) };
  }, op);
}
