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
import { type TrainSequence, logprobBatch, responseLogprobs, scatterRows } from './sequences.js';

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
  const order = Array.from({ length: n }, (_, i) => i);
  const key = mix32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(uniformAt(key, i) * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** The sequences of each mini-batch of `epoch`, in training order (a seeded shuffle per epoch). */
function miniBatchesOf<S>(sequences: readonly S[], options: Pick<UpdateOptions, 'miniBatches' | 'seed'>, epoch: number): S[][] {
  const order = permutation(sequences.length, mix32(options.seed + epoch));
  const perMini = Math.ceil(sequences.length / options.miniBatches);
  return Array.from({ length: options.miniBatches }, (_, miniIndex) => order.slice(miniIndex * perMini, (miniIndex + 1) * perMini).map((i) => sequences[i]));
}

/**
 * Which sequences need their old log-probs computed before the update (a forward pass without a tape). π_old is the
 * policy that sampled them, which the model still is until the update's first optimizer step: with one epoch, the
 * first mini-batch trains before any step, so its current log-probs, detached, are exactly the old ones (ratio 1, as
 * TRL and verl do on-policy) and its extra forward pass is skipped. One mini-batch and one epoch (the on-policy
 * setting) skips the pass altogether; later mini-batches and further epochs run after a step and need the record.
 */
export function oldLogprobsNeeded(count: number, options: Pick<UpdateOptions, 'epochs' | 'miniBatches' | 'seed'>): boolean[] {
  const needed = new Array<boolean>(count).fill(true);
  if (options.epochs !== 1) return needed;
  for (const i of miniBatchesOf(Array.from({ length: count }, (_, j) => j), options, 0)[0]) needed[i] = false;
  return needed;
}

/**
 * Sets each sequence's oldLogp before the update: a no-tape forward pass (responseLogprobs, in micro-batches) for the
 * sequences oldLogprobsNeeded marks, null for the rest (they use their own detached log-probs).
 */
export async function recordOldLogprobs(model: TransformerLM, sequences: readonly TrainSequence[], options: UpdateOptions): Promise<void> {
  const needed = oldLogprobsNeeded(sequences.length, options);
  const scored = sequences.filter((_, i) => needed[i]);
  const old = await responseLogprobs(model, scored, options.padId, options.microBatchSize);
  sequences.forEach((sequence) => { sequence.oldLogp = null; });
  scored.forEach((sequence, i) => { sequence.oldLogp = old[i]; });
}

/** Loss and detached statistics of one micro-batch; the loss carries the tape. */
function microBatchLoss(model: TransformerLM, sequences: readonly TrainSequence[], options: UpdateOptions, firstStep: boolean): { loss: Tensor; stats: Tensor } {
  // A shared prompt runs once, unless activation checkpointing is on (the shared forward keeps every block's tape).
  const packed = logprobBatch(model, sequences, options.padId, !model.checkpointActivations);
  const rows = packed.rows;
  const recorded = sequences.filter((sequence) => sequence.oldLogp !== null).length;
  if (recorded < sequences.length && !(firstStep && recorded === 0)) {
    throw new Error(`updatePolicy: ${sequences.length - recorded} of ${sequences.length} sequences have no old log-probs, but they train ${firstStep ? 'beside recorded ones' : 'after an optimizer step'} (compute them for every sequence oldLogprobsNeeded marks)`);
  }
  const host = {
    oldLogp: recorded > 0 ? scatterRows(packed, sequences, (b, j) => sequences[b].oldLogp![j]) : null,
    advantage: scatterRows(packed, sequences, (b) => sequences[b].advantage),
    weight: scatterRows(packed, sequences, (b, j) => sequences[b].weights[j]),
    mask: scatterRows(packed, sequences, (b, j) => sequences[b].mask[j]),
    refLogp: options.klBeta > 0 ? scatterRows(packed, sequences, (b, j) => sequences[b].refLogp![j]) : null,
  };
  return T.tidy(() => {
    const advantage = T.tensor(host.advantage, [rows]);
    const weight = T.tensor(host.weight, [rows]);
    const mask = T.tensor(host.mask, [rows]);
    const { logp, entropy } = packed.logprobs();
    // Not recorded: the policy has not stepped yet, so the old log-probs are these, detached.
    const oldLogp = host.oldLogp ? T.tensor(host.oldLogp, [rows]) : T.noGrad(() => T.mulScalar(logp, 1));
    const clipped = T.clippedTokenLoss(logp, oldLogp, advantage, weight, { epsLow: options.epsLow, epsHigh: options.epsHigh, dualClip: options.dualClip });
    let loss = clipped.loss;
    let refKl = T.zeros([1]);
    if (host.refLogp) {
      // k3 estimator of KL(π ‖ π_ref) per token: exp(ref − logp) − (ref − logp) − 1, aggregated like the loss.
      const logRatio = T.sub(T.tensor(host.refLogp, [rows]), logp);
      const k3 = T.sub(T.sub(T.exp(logRatio), logRatio), 1);
      loss = T.add(loss, T.mulScalar(T.sum(T.mul(k3, weight)), options.klBeta));
      refKl = T.noGrad(() => T.reshape(T.sum(T.mul(k3, mask)), [1]));
    }
    // In STAT_NAMES order.
    const stats = T.noGrad(() => T.concat([
      T.reshape(loss, [1]), T.reshape(clipped.clipLow, [1]), T.reshape(clipped.clipHigh, [1]), T.reshape(clipped.approxKl, [1]),
      T.reshape(T.sum(T.mul(entropy, weight)), [1]), T.reshape(T.sum(T.mul(entropy, mask)), [1]), refKl,
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

/** Runs the update: epochs × mini-batches optimizer steps over `sequences` (weights are set on the sequences). */
export async function updatePolicy(
  model: TransformerLM, optimizer: AdamW, sequences: readonly TrainSequence[], options: UpdateOptions, hooks: UpdateHooks,
): Promise<UpdateStats> {
  const totals: UpdateStats = {
    optimizerSteps: 0, skippedSteps: 0, loss: 0, entropyLoss: 0, tokens: 0, clipLow: 0, clipHigh: 0, approxKl: 0,
    entropy: 0, refKl: 0, gradNorm: 0, trainedTokens: 0, badValues: [],
  };
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    const minis = miniBatchesOf(sequences, options, epoch);
    for (let miniIndex = 0; miniIndex < minis.length; miniIndex++) {
      const mini = minis[miniIndex];
      if (mini.length === 0) continue;
      const firstStep = epoch === 0 && miniIndex === 0;
      // Aggregation weights for the whole optimizer step, before any split into micro-batches.
      const weights = tokenWeights(options.lossAggregation, mini.map((sequence) => sequence.mask), options.maxLen);
      mini.forEach((sequence, i) => { sequence.weights = weights[i]; });
      let statsSum: Tensor | null = null;
      for (let start = 0; start < mini.length; start += options.microBatchSize) {
        const micro = mini.slice(start, start + options.microBatchSize);
        const { loss, stats } = microBatchLoss(model, micro, options, firstStep);
        T.backward(loss);
        loss.dispose();
        const next: Tensor = statsSum ? T.noGrad(() => T.add(statsSum!, stats)) : stats;
        if (statsSum) { statsSum.dispose(); stats.dispose(); }
        statsSum = next;
      }
      const gradNorm = T.noGrad(() => optimizer.gradNorm());
      const statsAndNorm = T.noGrad(() => T.concat([statsSum!, gradNorm]));
      statsSum!.dispose();
      const values = await statsAndNorm.read();
      statsAndNorm.dispose();
      const tokens = mini.reduce((sum, sequence) => sum + sequence.mask.reduce((count, bit) => count + bit, 0), 0);
      const norm = values[STAT_NAMES.length];
      if (!Number.isFinite(values[0]) || !Number.isFinite(norm)) {
        gradNorm.dispose();
        optimizer.zeroGrad();
        totals.skippedSteps++;
        const what = `loss ${values[0]}, grad norm ${norm}`;
        totals.badValues.push(what);
        hooks.onSkip(what);
        continue;
      }
      hooks.onApplied();
      optimizer.step(options.lr, gradNorm).gradNorm.dispose();
      totals.optimizerSteps++;
      totals.loss += values[0];
      totals.entropyLoss += values[4];
      totals.clipLow += values[1];
      totals.clipHigh += values[2];
      totals.approxKl += values[3];
      totals.entropy += values[5];
      totals.refKl += values[6];
      totals.gradNorm += norm;
      totals.tokens += tokens;
      totals.trainedTokens += mini.reduce((sum, sequence) => sum + sequence.promptIds.length + sequence.responseIds.length, 0);
    }
  }
  return totals;
}
