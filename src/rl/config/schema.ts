// The rule of every config key, section by section: what resolveTrainConfig accepts.
import { BACKEND_CHOICES } from '../../backend/select.js';
import { LOSS_AGGREGATIONS } from '../aggregation.js';
import { DYNAMIC_SAMPLING_MODES } from '../dynamic_sampling.js';
import { LR_SCHEDULES } from '../schedule.js';
import { type Rule, above, atLeast, bool, count, int, oneOf, range } from './rules.js';
import { ALGOS, type CheckpointConfig, type EvalConfig, type LoraTrainConfig, type RLConfig, type SFTConfig } from './types.js';

export const RL_RULES: Record<keyof RLConfig, Rule> = {
  algo: oneOf(ALGOS),
  steps: count(0, '0 = supervised warm-up only'),
  promptsPerStep: count(1),
  groupSize: count(1),
  generationBatchPrompts: count(1),
  generationChunk: count(0, '0 = a generation batch at once'),
  maxNewTokens: count(1),
  temperature: above(0),
  topP: range(0, 1, true, false),
  topK: count(0, '0 = off'),
  epsLow: range(0, 1, false, true),
  epsHigh: atLeast(0),
  dualClip: atLeast(0, '0 = off'),
  lossAggregation: oneOf(LOSS_AGGREGATIONS),
  dynamicSampling: oneOf(DYNAMIC_SAMPLING_MODES),
  maxGenerationBatches: count(1),
  maxResampleRounds: count(0),
  onSamplingCap: oneOf(['train', 'stop']),
  overlongFilter: bool,
  overlongPenalty: bool,
  overlongCache: count(0),
  klBeta: atLeast(0, '0 = off'),
  ppoEpochs: count(1),
  miniBatches: count(1),
  microBatchSize: count(1),
  lr: above(0),
  warmupSteps: count(0),
  schedule: oneOf(LR_SCHEDULES),
  minLrRatio: range(0, 1),
  weightDecay: atLeast(0),
  beta1: range(0, 1, false, true),
  beta2: range(0, 1, false, true),
  maxGradNorm: atLeast(0, '0 = off'),
  maxBadSteps: count(1),
  sampleBudget: count(0, '0 = no budget'),
};
export const SFT_RULES: Record<keyof SFTConfig, Rule> = {
  steps: count(0, '0 = skip SFT'),
  batchSize: count(1),
  lr: above(0),
  warmupSteps: count(0),
  weightDecay: atLeast(0),
  maxGradNorm: atLeast(0, '0 = off'),
};
export const EVAL_RULES: Record<keyof EvalConfig, Rule> = {
  every: count(0, '0 = off'),
  problems: count(1),
  passK: count(1),
  samplesPerProblem: count(1),
  temperature: atLeast(0, '0 = greedy'),
};
export const CHECKPOINT_RULES: Record<keyof CheckpointConfig, Rule> = { every: count(0, '0 = off'), keep: count(1) };
/** targetModules has no scalar rule: resolve.ts checks it (a list of names or one string). */
export const LORA_RULES: Record<Exclude<keyof LoraTrainConfig, 'targetModules'>, Rule> = {
  r: count(0, '0 = off; --lora sets 16'),
  alpha: above(0),
  dropout: range(0, 1, false, true),
  frozenDtype: oneOf(['auto', 'float32', 'bfloat16', 'float16']),
};
export const TOP_RULES = { seed: int(0, undefined, 0xffffffff), backend: oneOf(BACKEND_CHOICES) } satisfies Record<string, Rule>;
export const TOP_KEYS = ['seed', 'backend', 'gradientCheckpointing', 'task', 'model', 'sft', 'rl', 'eval', 'checkpoint', 'lora', 'init', 'reward'] as const;
