// The policy update of one RL step: PPO epochs × mini-batches of optimizer steps over the rollout's sequences.
// Each optimizer step aggregates its loss with weights computed once for all of its sequences (so splitting
// into micro-batches changes nothing), accumulates gradients micro-batch by micro-batch, reads the step's
// scalars in one readback, and skips the update when the loss or the gradient norm is not finite.
import { mix32, uniformAt } from '../backend/rng.js';
import * as T from '../tensor/index.js';
import type { Tensor } from '../tensor/index.js';
import type { TransformerLM } from '../nn/transformer.js';
import type { AdamW } from '../optim/adamw.js';
import { type LossAggregation, tokenWeights } from './aggregation.js';
import { type PackedBatch, type TrainSequence, pack, scatterRows, tokenLogprobs } from './sequences.js';

export interface UpdateOptions {
  epochs: number;
  miniBatches: number;
  microBatchSize: number;
  lossAggregation: LossAggregation;
  /** Response length cap (seq-mean-token-sum-norm divides by it). */
  maxLen: number;
  epsLow: number;
  epsHigh: number;
  dualClip: number;
  klBeta: number;
  padId: number;
  /** Seed of this update's mini-batch shuffles. */
  seed: number;
  lr: number;
}

/** Sums over the optimizer steps of one update (divide by tokens / steps for means). */
export interface UpdateStats {
  optimizerSteps: number;
  skippedSteps: number;
  /** Σ over optimizer steps of the aggregated policy loss (incl. the KL term when on). */
  loss: number;
  /** Σ over steps of the entropy aggregated like the loss (the "entropy loss" curve). */
  entropyLoss: number;
  /** Token sums over every epoch (valid tokens only). */
  tokens: number;
  clipLow: number;
  clipHigh: number;
  approxKl: number;
  entropy: number;
  refKl: number;
  gradNorm: number;
  trainedTokens: number;
  /** Non-finite values met (loss, grad norm), for the log. */
  badValues: string[];
}

const STAT_NAMES = ['loss', 'clipLow', 'clipHigh', 'approxKl', 'entropyLoss', 'entropy', 'refKl'] as const;

/** Deterministic Fisher–Yates permutation of [0, n). */
function permutation(n: number, seed: number): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  const key = mix32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(uniformAt(key, i) * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/** Loss and detached statistics of one micro-batch; the loss carries the tape. */
function microBatchLoss(model: TransformerLM, seqs: readonly TrainSequence[], o: UpdateOptions): { loss: Tensor; stats: Tensor } {
  const p: PackedBatch = pack(seqs, o.padId);
  const n = p.batch * p.length;
  const host = {
    old: scatterRows(p, seqs, (b, j) => seqs[b].oldLogp[j]),
    adv: scatterRows(p, seqs, (b) => seqs[b].advantage),
    w: scatterRows(p, seqs, (b, j) => seqs[b].weights[j]),
    mask: scatterRows(p, seqs, (b, j) => seqs[b].mask[j]),
    ref: o.klBeta > 0 ? scatterRows(p, seqs, (b, j) => seqs[b].refLogp![j]) : null,
  };
  return T.tidy(() => {
    const old = T.tensor(host.old, [n]);
    const adv = T.tensor(host.adv, [n]);
    const w = T.tensor(host.w, [n]);
    const mask = T.tensor(host.mask, [n]);
    const { logp, entropy } = tokenLogprobs(model, p);
    const pg = T.clippedTokenLoss(logp, old, adv, w, { epsLow: o.epsLow, epsHigh: o.epsHigh, dualClip: o.dualClip });
    let loss = pg.loss;
    let refKl = T.zeros([1]);
    if (host.ref) {
      // k3 estimator of KL(π ‖ π_ref) per token: exp(ref − logp) − (ref − logp) − 1, aggregated like the loss.
      const d = T.sub(T.tensor(host.ref, [n]), logp);
      const k3 = T.sub(T.sub(T.exp(d), d), 1);
      loss = T.add(loss, T.mulScalar(T.sum(T.mul(k3, w)), o.klBeta));
      refKl = T.noGrad(() => T.reshape(T.sum(T.mul(k3, mask)), [1]));
    }
    const stats = T.noGrad(() => T.concat([
      T.reshape(loss, [1]), T.reshape(pg.clipLow, [1]), T.reshape(pg.clipHigh, [1]), T.reshape(pg.approxKl, [1]),
      T.reshape(T.sum(T.mul(entropy, w)), [1]), T.reshape(T.sum(T.mul(entropy, mask)), [1]), refKl,
    ]));
    return { loss, stats };
  }, 'microBatchLoss');
}

export interface UpdateHooks {
  /** A non-finite loss or gradient norm skipped an optimizer step; may throw to stop the run (NaN policy). */
  onSkip(what: string): void;
  /** An optimizer step was applied. */
  onApplied(): void;
}

/** Runs the update: epochs × mini-batches optimizer steps over `seqs` (weights are set on the sequences). */
export async function updatePolicy(
  model: TransformerLM, opt: AdamW, seqs: readonly TrainSequence[], o: UpdateOptions, hooks: UpdateHooks,
): Promise<UpdateStats> {
  const s: UpdateStats = {
    optimizerSteps: 0, skippedSteps: 0, loss: 0, entropyLoss: 0, tokens: 0, clipLow: 0, clipHigh: 0, approxKl: 0,
    entropy: 0, refKl: 0, gradNorm: 0, trainedTokens: 0, badValues: [],
  };
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    const order = permutation(seqs.length, mix32(o.seed + epoch));
    const perMini = Math.ceil(seqs.length / o.miniBatches);
    for (let m = 0; m < o.miniBatches; m++) {
      const mini = order.slice(m * perMini, (m + 1) * perMini).map((i) => seqs[i]);
      if (mini.length === 0) continue;
      // Aggregation weights for the whole optimizer step, before any split into micro-batches.
      const weights = tokenWeights(o.lossAggregation, mini.map((q) => q.mask), o.maxLen);
      mini.forEach((q, i) => { q.weights = weights[i]; });
      let acc: Tensor | null = null;
      for (let u = 0; u < mini.length; u += o.microBatchSize) {
        const part = mini.slice(u, u + o.microBatchSize);
        const { loss, stats } = microBatchLoss(model, part, o);
        T.backward(loss);
        loss.dispose();
        const next: Tensor = acc ? T.noGrad(() => T.add(acc!, stats)) : stats;
        if (acc) { acc.dispose(); stats.dispose(); }
        acc = next;
      }
      const gradNorm = T.noGrad(() => opt.gradNorm());
      const both = T.noGrad(() => T.concat([acc!, gradNorm]));
      acc!.dispose();
      const v = await both.read();
      both.dispose();
      const tokens = mini.reduce((a, q) => a + q.mask.reduce((x, y) => x + y, 0), 0);
      const norm = v[STAT_NAMES.length];
      if (!Number.isFinite(v[0]) || !Number.isFinite(norm)) {
        gradNorm.dispose();
        opt.zeroGrad();
        s.skippedSteps++;
        const what = `loss ${v[0]}, grad norm ${norm}`;
        s.badValues.push(what);
        hooks.onSkip(what);
        continue;
      }
      hooks.onApplied();
      opt.step(o.lr, gradNorm).gradNorm.dispose();
      s.optimizerSteps++;
      s.loss += v[0];
      s.entropyLoss += v[4];
      s.clipLow += v[1];
      s.clipHigh += v[2];
      s.approxKl += v[3];
      s.entropy += v[5];
      s.refKl += v[6];
      s.gradNorm += norm;
      s.tokens += tokens;
      s.trainedTokens += mini.reduce((a, q) => a + q.promptIds.length + q.responseIds.length, 0);
    }
  }
  return s;
}
