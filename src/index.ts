// Platform-neutral public API (safe to bundle for browsers).
export * from './tensor/index.js';
export type { Backend, BackendName, DType, MemoryStats, Storage } from './backend/backend.js';
export { ReferenceBackend } from './backend/reference/reference_backend.js';
export { type BackendChoice, type Platform, type Selection, BACKEND_CHOICES, createBackend, decide, parseBackendChoice } from './backend/select.js';
export type { AdamWArgs, AttentionArgs, ModelKernels, RopeArgs } from './backend/model_kernels.js';
export {
  type Llama3RopeScaling, type LinearRopeScaling, type ModelConfig, type RopeScaling, ConfigError, DEFAULT_MODEL_CONFIG, headDim, parameterCount, resolveModelConfig,
} from './nn/config.js';
export { baseInverseFrequency, ropeInverseFrequencies } from './nn/rope.js';
export { type ForwardOptions, TransformerLM, linear } from './nn/transformer.js';
export { type ModuleInit, type ParameterInit, Module, ModuleList, ParameterDict, paramSeed } from './nn/module.js';
export {
  type AttentionCallOptions, type DecoderBlockOptions, type EmbeddingOptions, type LinearAdapter, type LinearOptions, type RMSNormOptions,
  type SelfAttentionOptions, type SwiGLUMLPOptions, DecoderBlock, Embedding, Linear, RMSNorm, RotaryEmbedding, SelfAttention, SwiGLUMLP,
} from './nn/layers.js';
export { type ParameterMap, DecoderStack } from './nn/transformer.js';
export { KVCache } from './nn/kv_cache.js';
export {
  type LoraOptions, type LoraSettings, type ParameterCounts, ALL_LINEAR, DEFAULT_LORA_TARGETS, LORA_TARGET_MODULES, LoraError, LoraLinear, applyLora,
  formatTrainableParameters, hasLora, loraAdapters, mergeLora, parameterCounts, removeLora, resolveLoraOptions, selectLoraTargets, setLoraTraining,
  trainableParameters,
} from './nn/lora.js';
export { type GenerateOptions, type Generation, generate } from './nn/generate.js';
export { type SamplingOptions, sampleToken } from './nn/sampling.js';
export { type AdamWOptions, AdamW } from './optim/adamw.js';
export {
  type EncodeOptions, type NamedArray, type SafetensorsHeader, type TensorEntry, SafetensorsError, decodeSafetensors, decodeTensor, encodeSafetensors,
  readSafetensorsHeader, safetensorsHeaderLength,
} from './io/safetensors.js';
export { type HfConfigOptions, type HfExportOptions, type SupportedModelType, SUPPORTED_MODEL_TYPES } from './io/hf_config.js';
export {
  type ModelFileReader, type ModelFiles, type PretrainedModel, type PretrainedOptions, PretrainedError, loadPretrainedFromFiles, modelFileReader,
} from './io/pretrained.js';
export { encodeModel, fromHfConfig, loadModelWeights, modelFromCheckpoint, toHfConfig } from './io/checkpoint.js';
export {
  type DecodeOptions, type EncodeOptions as TokenizerEncodeOptions, type Tokenizer, CHAR_EOS_TOKEN, CHAR_PAD_TOKEN, CharTokenizer, TASK_TOKENIZER, responseText, tokenBound,
} from './data/tokenizer.js';
export { type ChatMessage, type ChatTemplateOptions, type TemplateSpecialTokens, ChatTemplate, ChatTemplateError } from './data/chat_template.js';
export { type HfTokenizerFiles, type JsonFile, HF_TOKENIZER_FILE_NAMES, HfTokenizer, TokenizerFileError } from './data/tokenizer_hf.js';
export {
  type TokenizerExportFiles, configTokenIds, generationConfigTokenIds, tokenizerConfigForCharVocabulary, tokenizerExportFiles,
  tokenizerJsonForCharVocabulary,
} from './data/tokenizer_export.js';
export {
  type PeftAdapterFiles, type PeftAdapterInput, type SaveLoraOptions, ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, PEFT_KEY_PREFIX, loadLoraAdapter,
  loraAdapterConfig, loraOptionsFromPeftConfig, saveLoraAdapter,
} from './io/peft.js';
export { type Problem, type ScoreResult, type Split, type Task, type TaskConfig, GeneratedTask, TASK_DEFAULTS, TASK_NAMES, makeTask } from './data/tasks.js';
export { ANSWER_MARKER, markedAnswer } from './data/task.js';
export { type CountdownCheck, checkCountdown } from './data/countdown.js';
export {
  type Gsm8kRecord, type Gsm8kTaskOptions, DEFAULT_GSM8K_TEMPLATE, extractFinalNumber, gsm8kTask, gsm8kTokenizer, numericEqual, parseGsm8kJsonl,
} from './data/gsm8k.js';
export {
  type DatasetMessage, type DatasetFormat, type DatasetRecord, type DatasetRow, DATASET_FORMATS, DatasetError, datasetFormat, fieldAt, parseDataset,
  parseJsonRecords, parseJsonlRecords, parseParquetRecords, splitByHash,
} from './data/datasets.js';
export { type AnswerSource, type ExtractedAnswer, answersMatch, extractAnswer, lastBoxed, mathReward, normalizeAnswer, referenceAnswer } from './data/math_answer.js';
export {
  type DatasetTaskName, type MathFields, type MathProblem, type MathRecord, type MathTaskConfig, type MathTaskOptions, DATASET_TASK_NAMES,
  DEFAULT_MATH_TEMPLATE, MATH_TASK_DEFAULTS, MathTask, isDatasetTask, mathMessages, mathRecordsFromRows, mathTask, mathTaskConfigProblems,
  mathTaskFromRows, plainPrompt,
} from './data/math_task.js';
export { gsm8kMathRecords } from './data/gsm8k.js';
export { type RewardFunction, checkedReward, rewardFromModule, withReward } from './data/reward_module.js';
export { type GroupKind, FLAT_STD_TOLERANCE, groupAdvantages, groupKind, groupStd } from './rl/advantages.js';
export { overlongPenalty } from './rl/overlong.js';
export { type LossAggregation, LOSS_AGGREGATIONS, tokenWeights } from './rl/aggregation.js';
export { type LrSchedule, type LrScheduleOptions, LR_SCHEDULES, learningRate } from './rl/schedule.js';
export {
  type DynamicSamplingMode, type FillReport, type GroupFilterOptions, DYNAMIC_SAMPLING_MODES, GroupFilter, resampleFlatGroups,
} from './rl/dynamic_sampling.js';
export {
  type Algo, type CheckpointConfig, type EvalConfig, type RLConfig, type SFTConfig, type TrainConfig, ALGOS, DAPO_DEFAULTS,
  DEFAULT_TRAIN_CONFIG, GRPO_PRESET, TrainConfigError, closestKey, modelConfigOf, parseOverrides, resolveTrainConfig,
} from './rl/config.js';
export { type MetricsRecord, type PanelSeries, type PanelSpec, DAPO_PANELS, EXTRA_PANELS, panelSvg, runPlots } from './plot/panels.js';
export { type CompareRun, type RunSummary, COMPARE_PANELS, REACH_FRACTION, comparePlots, compareTable, stepsToReach, summarizeRun } from './plot/compare.js';
export { EMA_WEIGHT, aggregateSeries, ema, meanStd, parseJsonl } from './plot/series.js';
export { renderVegaLite } from './plot/vega_svg.js';
export { type RunStore, type TrainerCheckpoint, type TrainerState, TrainingStopped, initialState } from './rl/run_store.js';
export { type TrainerParts, Trainer, buildTaskAndModel, checkTaskFitsModel, freshParts, optimizerForResume } from './rl/trainer.js';
export {
  type ExportFiles, type HfExportSource, adapterDirectoryFiles, generationConfig, hfConfigWithTokenIds, hfDirectoryFiles, hfDirectoryMetadataFiles,
} from './rl/hf_export.js';
export { type Response, type RolloutGroup, type RolloutOptions, callSeed, flatnessRewards, generateChunked, groupKindOf, rollout } from './rl/rollout.js';
export { type EvalOptions, type EvalResult, evaluate, formatAccuracy, formatAccuracyGain, passAtK } from './rl/evaluate.js';
export { type TrainSequence, pack, responseLogprobs, tokenLogprobs } from './rl/sequences.js';
export { type UpdateHooks, type UpdateOptions, type UpdateStats, updatePolicy } from './rl/policy_update.js';
export { sftBatch, sftStep } from './rl/sft.js';
export { type MemoryCheckpoint, MemoryRunStore } from './rl/memory_store.js';
