// The whole run's configuration: DAPO defaults, a GRPO preset, layered merging and validation that lists every
// problem at once with its dotted path. The pieces live in config/: types, defaults, rules and the per-key schema,
// merging, resolution, CLI overrides and the flag → layer mapping shared by the CLI and the training page.
export { ALGOS, type Algo, type CheckpointConfig, GRADIENT_CHECKPOINTING_CHOICES, type GradientCheckpointing, type EvalConfig, type RLConfig, type SFTConfig, type TrainConfig, TrainConfigError } from './config/types.js';
export { DAPO_DEFAULTS, DEFAULT_TRAIN_CONFIG, GRPO_PRESET } from './config/defaults.js';
export { closestKey } from './config/edit_distance.js';
export { modelConfigOf, resolveTrainConfig } from './config/resolve.js';
export { parseOverrides } from './config/cli_overrides.js';
export { type ConfigFlags, type ConfigLayerOptions, PAGE_QUICK_PRESET, QUICK_PRESET, configLayersFrom } from './config/layers.js';
