// The training config's shape: one section per phase (sft, rl, eval, checkpoint) under the run-wide keys.
import type { BackendChoice } from '../../backend/select.js';
import type { LossAggregation } from '../aggregation.js';
import type { DynamicSamplingMode } from '../dynamic_sampling.js';
import type { LrSchedule } from '../schedule.js';

export const ALGOS = ['dapo', 'grpo'] as const;
export type Algo = (typeof ALGOS)[number];

export interface RLConfig {
  algo: Algo;
  /** RL steps (rollout + updates). */
  steps: number;
  /** Groups (prompts) in the training batch. */
  promptsPerStep: number;
  /** Responses per prompt (G). */
  groupSize: number;
  /** Prompts per generation batch (defaults to promptsPerStep). */
  generationBatchPrompts: number;
  /** Sequences per generate() call (memory bound); 0 = a generation batch at once. `dapo train` lowers an unset 0
   *  to what fits (src/rl/memory_plan.ts). */
  generationChunk: number;
  /** L_max: response tokens including EOS. */
  maxNewTokens: number;
  temperature: number;
  topP: number;
  /** 0 = off. */
  topK: number;
  epsLow: number;
  epsHigh: number;
  /** Dual-clip constant c for A < 0; 0 = off (3 is the usual value when on). */
  dualClip: number;
  lossAggregation: LossAggregation;
  dynamicSampling: DynamicSamplingMode;
  /** Cap on generation batches per step ('filter'). */
  maxGenerationBatches: number;
  /** Cap on resampling rounds per step ('resample'). */
  maxResampleRounds: number;
  /** What the trainer does when the generation cap leaves the batch short. */
  onSamplingCap: 'train' | 'stop';
  /** Mask truncated responses (no EOS within maxNewTokens) out of the loss. */
  overlongFilter: boolean;
  /** Add the soft overlong punishment to the reward. */
  overlongPenalty: boolean;
  /** L_cache: the length of the punishment buffer before maxNewTokens. */
  overlongCache: number;
  /** KL-to-reference coefficient; 0 = off (no reference model). */
  klBeta: number;
  /** Updates per rollout: ppoEpochs × miniBatches optimizer steps. */
  ppoEpochs: number;
  miniBatches: number;
  /** Sequences per forward/backward: divides the mini-batch, or ≥ it (one pass per mini-batch). */
  microBatchSize: number;
  lr: number;
  warmupSteps: number;
  schedule: LrSchedule;
  minLrRatio: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  /** Global gradient-norm clip; 0 = off. */
  maxGradNorm: number;
  /** Stop after this many NaN/Inf steps in a row. */
  maxBadSteps: number;
  /** Stop RL once this many responses were generated (0 = no budget): equal-budget comparisons. */
  sampleBudget: number;
}

export interface SFTConfig { steps: number; batchSize: number; lr: number; warmupSteps: number; weightDecay: number; maxGradNorm: number }
export interface EvalConfig { every: number; problems: number; passK: number; samplesPerProblem: number; temperature: number }
export interface CheckpointConfig { every: number; keep: number }
/** LoRA on a pretrained model (PEFT's LoraConfig fields); r 0 = full fine-tuning. */
export interface LoraTrainConfig {
  /** Rank (PEFT `r`); 0 = off. */
  r: number;
  /** PEFT `lora_alpha`: the update is scaled by alpha / r. */
  alpha: number;
  /** PEFT `lora_dropout` on the adapter input while training. */
  dropout: number;
  /** PEFT `target_modules`: module names (matched as a suffix), 'all-linear', or a regular expression. */
  targetModules: string[] | string;
  /**
   * Storage of the frozen base weights (Linear weights, embedding table): 'auto' keeps a BF16 / F16 checkpoint's
   * dtype (2 bytes a weight, widened inside the matmul), 'float32' widens at load, or an explicit 16-bit dtype.
   */
  frozenDtype: 'auto' | 'float32' | 'bfloat16' | 'float16';
}

/** `gradientCheckpointing`: on, off, or 'auto' (on only when the memory plan finds the run does not fit without it). */
export const GRADIENT_CHECKPOINTING_CHOICES = [false, true, 'auto'] as const;
export type GradientCheckpointing = (typeof GRADIENT_CHECKPOINTING_CHOICES)[number];

export interface TrainConfig {
  seed: number;
  backend: BackendChoice;
  /**
   * Activation checkpointing per decoder block in the training passes (SFT warm-up and the RL update; never in
   * generation or the no-grad log-prob passes), HF TrainingArguments' `gradient_checkpointing`: the forward keeps only
   * each block's input and the backward recomputes the block (one extra forward, far fewer live activations). 'auto':
   * `dapo train` turns it on only when its memory plan finds the micro-batch would not fit otherwise. Not with LoRA
   * dropout > 0 (a fresh mask on recomputation would differ).
   */
  gradientCheckpointing: GradientCheckpointing;
  /** A built-in task's knobs are validated by the data layer (makeTask); a dataset task's keys (gsm8k, math:
   *  MathTaskConfig) are filled and validated here. */
  task: { name: string; [knob: string]: unknown };
  /** Partial<ModelConfig> in layers; after resolveTrainConfig, the full resolved ModelConfig — or, with `path` (a
   *  pretrained model directory or Hub id), just { path, maxSeqLen? }: the architecture comes from its config.json. */
  model: Record<string, unknown>;
  lora: LoraTrainConfig;
  sft: SFTConfig;
  rl: RLConfig;
  eval: EvalConfig;
  checkpoint: CheckpointConfig;
  /** Start from the weights of this checkpoint directory instead of a seeded init (e.g. a shared SFT policy); null = fresh. */
  init: string | null;
  /** A reward module (an ES module exporting `(prompt, completion, record) => number` as default or `reward`) that
   *  replaces the task's +1/−1 reward in training; null = the task's rule. */
  reward: string | null;
}

export class TrainConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid training config:\n  - ${problems.join('\n  - ')}`);
    this.name = 'TrainConfigError';
  }
}
