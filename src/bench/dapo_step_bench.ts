// One whole DAPO step at fixed shapes, through the trainer's own code paths: sample G responses per prompt
// with the KV-cache sampler (generate), score them with a fixed synthetic reward pattern, group advantages,
// old log-probs where the trainer needs them (none in one on-policy step: oldLogprobsNeeded), then one optimizer step of the fused clipped token loss,
// backward and AdamW (updatePolicy). Only the task and its verifier are replaced, so the figures are the
// engine's, not a tokenizer's.
import type { Backend } from '../backend/backend.js';
import { mix32 } from '../backend/rng.js';
import { setBackend } from '../tensor/engine.js';
import { DEFAULT_MODEL_CONFIG, type ModelConfig } from '../nn/config.js';
import { TransformerLM } from '../nn/transformer.js';
import { generate } from '../nn/generate.js';
import { AdamW } from '../optim/adamw.js';
import { DAPO_DEFAULTS } from '../rl/config.js';
import { groupAdvantages } from '../rl/advantages.js';
import type { TrainSequence } from '../rl/sequences.js';
import { type UpdateOptions, type UpdateStats, recordOldLogprobs, updatePolicy } from '../rl/policy_update.js';
import { type BenchRecord, type TimingOptions, median, randomInts, repeatAsync, tokensPerSOf } from './common.js';
import { profileRun } from './profile.js';

export interface DapoStepShape {
  prompts: number;
  /** Responses per prompt (G). */
  groupSize: number;
  promptLen: number;
  /** Exactly this many new tokens per response: no stop tokens. */
  newTokens: number;
  /** Sequences per forward/backward of the update (and of the old log-probs). */
  microBatchSize: number;
}

/** 16 prompts × G 8 = 128 sequences of 12 + 24 tokens, the whole batch in one micro-batch. */
export const DAPO_STEP_SHAPE: DapoStepShape = { prompts: 16, groupSize: 8, promptLen: 12, newTokens: 24, microBatchSize: 128 };
/** --quick: 4 prompts × G 4 = 16 sequences, 12 new tokens. */
export const DAPO_STEP_SHAPE_QUICK: DapoStepShape = { prompts: 4, groupSize: 4, promptLen: 12, newTokens: 12, microBatchSize: 16 };

/**
 * The figure the issue states for a well-known eager framework doing this step at DAPO_STEP_SHAPE on this
 * 2-core CPU: about 5.3k generated and 5.6k trained tokens/s, 1.4 s a step. Quoted, never measured here;
 * `dapo bench` prints it next to the wasm record as backend STATED_PEER_LABEL.
 */
export const STATED_PEER_LABEL = 'stated-eager-cpu';
export const STATED_DAPO_STEP: BenchRecord = {
  op: 'dapo_step', backend: STATED_PEER_LABEL, shape: shapeOf(DAPO_STEP_SHAPE), ms: 1400, tokensPerS: 5600,
  extra: { gen_tokens_per_s: 5300, train_tokens_per_s: 5600 }, runs: 0,
};

/** The stated peer record for our record `r`, when it is a CPU (wasm) record at the stated shape. */
export function statedPeerFor(r: BenchRecord): BenchRecord | undefined {
  const same = r.op === STATED_DAPO_STEP.op && r.shape.length === STATED_DAPO_STEP.shape.length
    && r.shape.every((d, i) => d === STATED_DAPO_STEP.shape[i]);
  return same && r.backend.startsWith('wasm') ? STATED_DAPO_STEP : undefined;
}

function shapeOf(s: DapoStepShape): number[] {
  return [s.prompts, s.groupSize, s.promptLen, s.newTokens];
}

/** Throws naming every bad field at once. */
export function checkDapoStepShape(s: DapoStepShape, maxSeqLen: number): void {
  const problems: string[] = [];
  const positive = (k: keyof DapoStepShape) => {
    if (!(Number.isInteger(s[k]) && s[k] >= 1)) problems.push(`${k} must be a positive integer, got ${s[k]}`);
  };
  (['prompts', 'promptLen', 'newTokens', 'microBatchSize'] as const).forEach(positive);
  // One response per group gives zero advantages: no gradient, nothing measured.
  if (!(Number.isInteger(s.groupSize) && s.groupSize >= 2)) problems.push(`groupSize must be an integer ≥ 2, got ${s.groupSize}`);
  if (s.promptLen + s.newTokens > maxSeqLen) problems.push(`promptLen ${s.promptLen} + newTokens ${s.newTokens} exceed the model's maxSeqLen ${maxSeqLen}`);
  if (problems.length) throw new RangeError(`dapo_step shape: ${problems.join('; ')}`);
}

/** Reward of response g of prompt i: alternating ±1 within every group, so each group is mixed. */
export function syntheticReward(prompt: number, g: number): number {
  return (prompt + g) % 2 === 0 ? 1 : -1;
}

export interface DapoStepTiming {
  genMs: number;
  /** Old log-probs + the policy update (forward, loss, backward, AdamW). */
  trainMs: number;
  totalMs: number;
  generatedTokens: number;
  update: UpdateStats;
}

/**
 * One DAPO step on `model`/`opt` with the given prompts (each repeated G times); `seed` seeds the sampling
 * and the update's shuffle. Token-mean aggregation, one epoch, one mini-batch, the DAPO clip defaults.
 */
export async function runDapoStep(
  model: TransformerLM, opt: AdamW, prompts: readonly (readonly number[])[], shape: DapoStepShape, seed: number,
): Promise<DapoStepTiming> {
  const { groupSize: G, newTokens: N, microBatchSize } = shape;
  const flat = prompts.flatMap((p) => Array.from({ length: G }, () => p));
  const t0 = performance.now();
  const sampled = await generate(model, flat, { maxNewTokens: N, temperature: 1, seed, padId: 0 });
  const t1 = performance.now();

  const seqs: TrainSequence[] = [];
  prompts.forEach((p, i) => {
    const adv = groupAdvantages(Array.from({ length: G }, (_, g) => syntheticReward(i, g)));
    for (let g = 0; g < G; g++) {
      const ids = sampled.tokens[i * G + g];
      seqs.push({ promptIds: p, responseIds: ids, advantage: adv[g], mask: ids.map(() => 1), weights: [], oldLogp: [], refLogp: null });
    }
  });
  const t2 = performance.now();
  const d = DAPO_DEFAULTS;
  const options: UpdateOptions = {
    epochs: 1, miniBatches: 1, microBatchSize, lossAggregation: 'token-mean', maxLen: N,
    epsLow: d.epsLow, epsHigh: d.epsHigh, dualClip: d.dualClip, klBeta: 0, padId: 0, seed: mix32(seed), lr: d.lr,
  };
  // As the trainer: old log-probs only for sequences that train after an optimizer step (none here: one step).
  await recordOldLogprobs(model, seqs, options);
  const update = await updatePolicy(model, opt, seqs, options, {
    onSkip: (what) => { throw new Error(`dapo_step: the optimizer step was skipped (${what})`); },
    onApplied: () => {},
  });
  const t3 = performance.now();
  return {
    genMs: t1 - t0, trainMs: t3 - t2, totalMs: t3 - t0,
    generatedTokens: sampled.tokens.reduce((a, t) => a + t.length, 0), update,
  };
}

/**
 * Record dapo_step, shape [prompts, G, promptLen, newTokens]: ms = median whole step; tokens_per_s = the
 * training figure, prompts·G·(promptLen + newTokens) / train_ms; extras gen_tokens_per_s =
 * prompts·G·newTokens / gen_ms, train_tokens_per_s, gen_ms, train_ms (each a median over the runs) and
 * peak_bytes (the backend's peak above what was live when the case started, as in train_step); profile: one more
 * step's time by category (profile.ts).
 */
export async function benchDapoStep(
  backend: Backend, label: string, shape: DapoStepShape, opts: TimingOptions = {}, config: Partial<ModelConfig> = DEFAULT_MODEL_CONFIG,
): Promise<BenchRecord> {
  setBackend(backend);
  const liveBefore = backend.memory().liveBytes;
  const { prompts: B, groupSize: G, promptLen: P, newTokens: N } = shape;
  const model = new TransformerLM({ ...config, maxSeqLen: Math.max(config.maxSeqLen ?? DEFAULT_MODEL_CONFIG.maxSeqLen, P + N) }, 1);
  const d = DAPO_DEFAULTS;
  const opt = new AdamW(model.params, { lr: d.lr, weightDecay: d.weightDecay, beta1: d.beta1, beta2: d.beta2, maxGradNorm: d.maxGradNorm });
  try {
    checkDapoStepShape(shape, model.config.maxSeqLen);
    const ids = randomInts(B * P, model.config.vocabSize, 71);
    const prompts = Array.from({ length: B }, (_, b) => ids.slice(b * P, (b + 1) * P));
    // A step takes seconds: few repetitions, like the generation cases. Each run is the next training step.
    const repeat = { ...opts, warmup: Math.min(opts.warmup ?? 1, 1), runs: Math.min(opts.runs ?? 3, 3) };
    let step = 0;
    const runs = await repeatAsync(() => runDapoStep(model, opt, prompts, shape, mix32(0xda90 + step++)), repeat);
    const peakBytes = backend.memory().peakBytes - liveBefore;
    // One more step, outside the timed ones, for where the time goes.
    const { profile } = await profileRun(backend, () => runDapoStep(model, opt, prompts, shape, mix32(0xda90 + step++)));
    const genMs = median(runs.map((r) => r.genMs));
    const trainMs = median(runs.map((r) => r.trainMs));
    const trainTokensPerS = tokensPerSOf(B * G * (P + N), trainMs);
    return {
      op: 'dapo_step', backend: label, shape: shapeOf(shape), ms: median(runs.map((r) => r.totalMs)), tokensPerS: trainTokensPerS,
      extra: {
        gen_tokens_per_s: tokensPerSOf(B * G * N, genMs), train_tokens_per_s: trainTokensPerS,
        gen_ms: genMs, train_ms: trainMs, peak_bytes: peakBytes,
      },
      profile,
      runs: runs.length,
    };
  } finally {
    opt.dispose();
    model.dispose();
  }
}
