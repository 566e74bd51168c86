// Old log-probs on-policy: sequences that train before the update's first optimizer step use their own current
// log-probs, detached, instead of a separate forward pass (oldLogprobsNeeded); the update is the same.
import { describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import * as T from '../../src/tensor/index.js';
import { TransformerLM } from '../../src/nn/transformer.js';
import { AdamW } from '../../src/optim/adamw.js';
import { type TrainSequence, responseLogprobs } from '../../src/rl/sequences.js';
import { type UpdateOptions, oldLogprobsNeeded, updatePolicy } from '../../src/rl/policy_update.js';

const CFG = { vocabSize: 16, dModel: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 32, maxSeqLen: 24 };
const LENS = [3, 7, 1, 5, 6, 2, 4, 8];
const sequences = (): TrainSequence[] => LENS.map((L, i) => ({
  promptIds: [1 + (i % 3), 2, 3], responseIds: Array.from({ length: L }, (_, j) => 2 + ((i + j) % 13)),
  advantage: (i % 2 ? 1 : -1) * (0.5 + i / 10), mask: Array.from({ length: L }, () => 1), weights: [], oldLogp: null, refLogp: null,
}));
const options = (over: Partial<UpdateOptions> = {}): UpdateOptions => ({
  epochs: 1, miniBatches: 1, microBatchSize: 4, lossAggregation: 'token-mean', maxLen: 8, epsLow: 0.2, epsHigh: 0.28,
  dualClip: 0, klBeta: 0, padId: 0, seed: 7, lr: 0, ...over,
});
const hooks = { onSkip: () => { throw new Error('unexpected skip'); }, onApplied: () => {} };

/** Gradients of the first optimizer step (lr 0) and the update's statistics. */
async function firstStep(seqs: TrainSequence[], opts: UpdateOptions, model: TransformerLM) {
  const opt = new AdamW(model.params, { lr: 0, weightDecay: 0 });
  const step = opt.step.bind(opt);
  const grads: Promise<Float32Array | Float64Array | Int32Array>[] = [];
  opt.step = (lr?: number) => {
    if (grads.length === 0) for (const p of model.parameters()) grads.push(p.grad!.read());
    return step(lr);
  };
  const stats = await updatePolicy(model, opt, seqs, opts, hooks);
  opt.dispose();
  return { grads: await Promise.all(grads), stats };
}

describe('old log-probs on-policy', () => {
  it('only sequences that train after an optimizer step need a recorded pass', () => {
    expect(oldLogprobsNeeded(8, options())).toEqual(new Array(8).fill(false));
    const halves = oldLogprobsNeeded(8, options({ miniBatches: 2 }));
    expect(halves.filter(Boolean)).toHaveLength(4);
    // The same shuffle as the update's epoch 0: another seed picks another half.
    const other = oldLogprobsNeeded(8, options({ miniBatches: 2, seed: 8 }));
    expect(other).not.toEqual(halves);
    expect(oldLogprobsNeeded(8, options({ epochs: 2 }))).toEqual(new Array(8).fill(true));
  });

  it('the first step with detached current log-probs equals the step with a recorded old pass: ratio 1, nothing clipped', async () => {
    T.setBackend(new ReferenceBackend());
    const model = new TransformerLM(CFG, 5);
    const recorded = sequences();
    const old = await responseLogprobs(model, recorded, 0, 8);
    recorded.forEach((s, i) => { s.oldLogp = old[i]; });
    const a = await firstStep(recorded, options(), model);
    const b = await firstStep(sequences(), options(), model);
    expect(b.stats.clipLow + b.stats.clipHigh).toBe(0);
    expect(b.stats.approxKl).toBe(0);
    expect(b.stats.loss).toBeCloseTo(a.stats.loss, 6);
    a.grads.forEach((g, i) => g.forEach((v, j) => expect(b.grads[i][j], `grad ${i}[${j}]`).toBeCloseTo(v, 6)));
    model.dispose();
  });

  it('responseLogprobs runs a shared prompt once and gives what one sequence at a time gives (float64)', async () => {
    T.setBackend(new ReferenceBackend());
    const model = new TransformerLM(CFG, 5);
    const seqs = sequences(); // prompts repeat every 3 sequences: micro-batches of 8 share them
    const together = await responseLogprobs(model, seqs, 0, 8);
    const alone = await responseLogprobs(model, seqs, 0, 1);
    together.forEach((row, i) => {
      expect(row).toHaveLength(LENS[i]);
      row.forEach((v, j) => expect(v, `seq ${i} token ${j}`).toBeCloseTo(alone[i][j], 10));
    });
    model.dispose();
  });

  it('two mini-batches: the second one trains on the recorded values, and a missing record is a clear error', async () => {
    T.setBackend(new ReferenceBackend());
    const model = new TransformerLM(CFG, 5);
    const opts = options({ miniBatches: 2, lr: 1e-2 });
    const seqs = sequences();
    const needed = oldLogprobsNeeded(seqs.length, opts);
    const scored = seqs.filter((_, i) => needed[i]);
    const old = await responseLogprobs(model, scored, 0, 8);
    scored.forEach((s, i) => { s.oldLogp = old[i]; });
    const opt = new AdamW(model.params, { lr: 1e-2, weightDecay: 0 });
    const stats = await updatePolicy(model, opt, seqs, opts, hooks);
    expect(stats.optimizerSteps).toBe(2);
    // After the first step the policy moved: the second mini-batch's ratios leave 1.
    expect(stats.approxKl).toBeGreaterThan(0);
    await expect(updatePolicy(model, opt, sequences(), opts, hooks)).rejects.toThrow(/have no old log-probs, but they train after an optimizer step/);
    opt.dispose();
    model.dispose();
  });
});
