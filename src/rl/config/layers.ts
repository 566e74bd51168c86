// The config layers of a run's flags, one mapping for `dapo train` (cli/train.ts) and the training page
// (web/train.ts): algo ← quick preset ← config file ← direct flags ← key=value overrides, later wins.
// Platform-neutral: the caller reads a --config file and hands over its parsed JSON.
import { parseOverrides } from './cli_overrides.js';
import { LORA_FLAG_RANK } from './defaults.js';
import { TrainConfigError } from './types.js';

/** `dapo train --quick`: a smoke configuration that finishes in well under a minute on 2 CPU cores (2-digit addition,
 *  short warm-up). */
export const QUICK_PRESET = {
  task: { name: 'addition', maxDigits: 2 },
  sft: { steps: 250 },
  rl: { steps: 8, promptsPerStep: 8, maxGenerationBatches: 2, warmupSteps: 1 },
  eval: { every: 0, problems: 50, passK: 2, samplesPerProblem: 2 },
  checkpoint: { every: 4 },
};

/** The training page's ?quick=1, smaller than QUICK_PRESET because a page test must finish in seconds on WASM (about
 *  half a minute on a software WebGPU adapter): a tiny policy on 1–2-digit addition. A smoke run of the pipeline, not
 *  of learning: its short warm-up leaves the policy rarely right, just often enough that groups of 8 are mixed and
 *  the DAPO steps have something to train on. */
export const PAGE_QUICK_PRESET = {
  model: { dModel: 64, nLayers: 1, nHeads: 4, nKvHeads: 2, ffnDim: 128, maxSeqLen: 32 },
  task: { name: 'addition', maxDigits: 2 },
  sft: { steps: 50, batchSize: 64, lr: 1e-2, warmupSteps: 5 },
  rl: { steps: 4, promptsPerStep: 4, groupSize: 8, maxGenerationBatches: 2, maxNewTokens: 12, microBatchSize: 32, warmupSteps: 1 },
  eval: { every: 2, problems: 16, passK: 2, samplesPerProblem: 2 },
  checkpoint: { every: 2 },
};

/** What a run was asked for, whatever asked (command-line flags, query parameters). */
export interface ConfigFlags {
  algo?: string;
  quick?: boolean;
  /** The parsed JSON of a --config file. */
  configFile?: unknown;
  seed?: number;
  backend?: string;
  steps?: number;
  task?: string;
  init?: string;
  /** A pretrained model directory or Hub id (`--model`): sets model.path. */
  model?: string;
  /** `--lora`: LoRA with rank 16 (lora.r; the other lora.* keys keep their defaults). */
  lora?: boolean;
  /** A reward module path (`--reward`). */
  reward?: string;
  /** key=value overrides (`--set`, `?set=`). */
  set?: readonly string[];
}

export interface ConfigLayerOptions {
  /** The preset `quick` stands for (default QUICK_PRESET). */
  quickPreset?: object;
  /** When given, a malformed override is listed here (and its layer left out) instead of thrown, so a caller can
   *  report it together with the config's own problems. */
  problems?: string[];
}

/** The layers for resolveTrainConfig, in order (later wins). */
export function configLayersFrom(flags: ConfigFlags, options: ConfigLayerOptions = {}): unknown[] {
  const layers: unknown[] = [];
  if (flags.algo !== undefined) layers.push({ rl: { algo: flags.algo } });
  if (flags.quick) layers.push(options.quickPreset ?? QUICK_PRESET);
  if (flags.configFile !== undefined) layers.push(flags.configFile);
  const direct: Record<string, unknown> = {};
  if (flags.seed !== undefined) direct.seed = flags.seed;
  if (flags.backend !== undefined) direct.backend = flags.backend;
  if (flags.steps !== undefined) direct.rl = { steps: flags.steps };
  if (flags.task !== undefined) direct.task = { name: flags.task };
  if (flags.init !== undefined) direct.init = flags.init;
  if (flags.reward !== undefined) direct.reward = flags.reward;
  if (flags.model !== undefined) direct.model = { path: flags.model };
  if (flags.lora) direct.lora = { r: LORA_FLAG_RANK };
  layers.push(direct);
  if (flags.set?.length) {
    try {
      layers.push(parseOverrides(flags.set));
    } catch (err) {
      if (!(err instanceof TrainConfigError) || !options.problems) throw err;
      options.problems.push(...err.problems);
    }
  }
  return layers;
}
