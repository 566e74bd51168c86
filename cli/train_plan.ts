// `dapo train`'s memory plan: the model's shape (config.json for --model, without loading weights), the longest
// prompt of the task, the backend's limits → the table `--dry-run` prints, and the batch sizes a fresh run uses.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../src/backend/backend.js';
import { type ModelConfig, resolveModelConfig } from '../src/nn/config.js';
import { fromHfConfig } from '../src/io/hf_config.js';
import { makeTask } from '../src/data/tasks.js';
import type { Task } from '../src/data/task.js';
import type { TrainConfig } from '../src/rl/config.js';
import {
  type BatchPlan, type ExplicitBatchKeys, backendMemoryLimits, formatPlan, pickBatchSizes, plannedWeightDType,
} from '../src/rl/memory_plan.js';

/** The architecture a run trains: the built-in config, or config.json of the model directory (capped at model.maxSeqLen). */
export function plannedModelConfig(config: TrainConfig, modelDir: string | null): ModelConfig {
  if (!modelDir) return resolveModelConfig(config.model as Partial<ModelConfig>);
  const path = join(modelDir, 'config.json');
  if (!existsSync(path)) throw new Error(`memory plan: ${path} does not exist`);
  const maxSeqLen = config.model.maxSeqLen as number | undefined;
  return fromHfConfig(JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>, { maxSeqLen });
}

export interface RunPlan {
  plan: BatchPlan;
  /** The config with the planned rl.microBatchSize, rl.generationChunk and gradientCheckpointing ('auto' resolved). */
  config: TrainConfig;
  lines: string[];
}

/** Plans a fresh run on `backend`; `task` is the dataset/reward task when there is one (else the built-in one). */
export function planRun(config: TrainConfig, explicit: ExplicitBatchKeys, backend: Backend, modelDir: string | null, task: Task | undefined): RunPlan {
  const model = plannedModelConfig(config, modelDir);
  const limits = backendMemoryLimits(backend);
  const promptLength = (task ?? makeTask(config.task)).maxPromptLength;
  const torchDtype = modelDir ? (JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8')) as Record<string, unknown>).torch_dtype : undefined;
  const weightDtype = plannedWeightDType(config.lora.r > 0, config.lora.frozenDtype, torchDtype);
  const plan = pickBatchSizes({ config, model, promptLength, explicit, limits, weightDtype });
  const planned = { ...config, gradientCheckpointing: plan.checkpointing, rl: { ...config.rl, microBatchSize: plan.microBatchSize, generationChunk: plan.generationChunk === plan.generationSequences ? config.rl.generationChunk : plan.generationChunk } };
  return { plan, config: planned, lines: formatPlan(plan, model, limits) };
}

/** Thrown before a run starts when its plan does not fit. */
export class MemoryPlanError extends Error {
  constructor(lines: readonly string[]) {
    super(`the run does not fit in memory:\n${lines.join('\n')}`);
    this.name = 'MemoryPlanError';
  }
}
