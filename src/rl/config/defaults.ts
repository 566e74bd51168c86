// The built-in configuration: DAPO's settings (the DAPO paper, arXiv 2503.14476; the table under the README's
// "Configuration"), with numbers sized for the small character-level policy, and the GRPO preset that
// `rl.algo: 'grpo'` selects. All tunable numbers live here.
import { DEFAULT_MODEL_CONFIG } from '../../nn/config.js';
import type { LoraTrainConfig, RLConfig, TrainConfig } from './types.js';

/** LoRA settings of common TRL recipes (`--lora` sets r to LORA_FLAG_RANK): every attention and MLP projection. */
export const LORA_DEFAULTS: LoraTrainConfig = {
  r: 0,
  alpha: 32,
  dropout: 0.05,
  targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  frozenDtype: 'auto',
};
export const LORA_FLAG_RANK = 16;

export const DAPO_DEFAULTS: RLConfig = {
  algo: 'dapo',
  steps: 200,
  promptsPerStep: 16,
  groupSize: 8,
  generationBatchPrompts: 16,
  generationChunk: 0,
  maxNewTokens: 20,
  temperature: 1,
  topP: 1,
  topK: 0,
  epsLow: 0.2,
  epsHigh: 0.28,
  dualClip: 0,
  lossAggregation: 'token-mean',
  dynamicSampling: 'filter',
  maxGenerationBatches: 4,
  maxResampleRounds: 3,
  onSamplingCap: 'train',
  overlongFilter: true,
  overlongPenalty: true,
  overlongCache: 4,
  klBeta: 0,
  ppoEpochs: 1,
  miniBatches: 2, // more than one update per rollout, so the ratio leaves 1 and the clip acts
  microBatchSize: 64,
  lr: 3e-4,
  warmupSteps: 10,
  schedule: 'constant',
  minLrRatio: 0.1,
  weightDecay: 0.01,
  beta1: 0.9,
  beta2: 0.999,
  maxGradNorm: 1,
  maxBadSteps: 3,
  sampleBudget: 0,
};

/** The GRPO baseline: symmetric clip, per-sequence mean, a small KL to the reference, no DAPO extras. */
export const GRPO_PRESET: Partial<RLConfig> = {
  epsHigh: 0.2,
  lossAggregation: 'seq-mean-token-mean',
  klBeta: 0.001,
  dynamicSampling: 'off',
  overlongFilter: false,
  overlongPenalty: false,
};

export const DEFAULT_TRAIN_CONFIG: TrainConfig = {
  seed: 0,
  backend: 'auto',
  gradientCheckpointing: false,
  task: { name: 'addition' },
  model: { ...DEFAULT_MODEL_CONFIG },
  sft: { steps: 1500, batchSize: 32, lr: 3e-3, warmupSteps: 20, weightDecay: 0.01, maxGradNorm: 1 },
  rl: DAPO_DEFAULTS,
  eval: { every: 25, problems: 200, passK: 8, samplesPerProblem: 8, temperature: 1 },
  checkpoint: { every: 25, keep: 2 },
  lora: LORA_DEFAULTS,
  init: null,
  reward: null,
};
