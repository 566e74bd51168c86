// The policy model's configuration: one object, validated with every problem listed at once.

export interface ModelConfig {
  vocabSize: number;
  dModel: number;
  nLayers: number;
  nHeads: number;
  /** Key/value heads for grouped-query attention (divides nHeads). */
  nKvHeads: number;
  /** Hidden width of the SwiGLU MLP. */
  ffnDim: number;
  maxSeqLen: number;
  ropeTheta: number;
  /** Share the embedding matrix with the output projection (no lm_head.weight). */
  tieEmbeddings: boolean;
  normEps: number;
  /** Std of the normal init of every matrix (output projections are scaled by 1/sqrt(2·nLayers)). */
  initStd: number;
  /** Width of one attention head; null means dModel / nHeads (Qwen / Gemma-style checkpoints set it apart). */
  headDim: number | null;
  /** Biases on q_proj, k_proj and v_proj (Qwen2; Llama's attention_bias also sets attentionOutBias). */
  attentionBias: boolean;
  /** A bias on o_proj (Llama's attention_bias); needs attentionBias. */
  attentionOutBias: boolean;
  /** RoPE frequency scaling (Hugging Face rope_scaling / rope_parameters); null: plain theta^(−2j/headDim). */
  ropeScaling: RopeScaling | null;
  /** Special token ids of the checkpoint's tokenizer (config.json bos/eos/pad_token_id); null when unknown. */
  bosTokenId: number | null;
  /** One id or several (Llama 3 lists more than one end-of-sequence token). */
  eosTokenId: number | number[] | null;
  padTokenId: number | null;
}

/** Hugging Face's `linear` RoPE scaling: every inverse frequency divided by `factor`. */
export interface LinearRopeScaling {
  type: 'linear';
  factor: number;
}

/**
 * Hugging Face's `llama3` RoPE scaling (transformers' _compute_llama3_parameters): wavelengths longer than
 * originalMaxPositionEmbeddings / lowFreqFactor are divided by `factor`, those shorter than
 * originalMaxPositionEmbeddings / highFreqFactor are kept, and the band between is interpolated.
 */
export interface Llama3RopeScaling {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

export type RopeScaling = LinearRopeScaling | Llama3RopeScaling;

/** The default policy of the built-in tasks (and of the benchmarks). */
export const DEFAULT_MODEL_CONFIG: ModelConfig = {
  vocabSize: 32,
  dModel: 128,
  nLayers: 4,
  nHeads: 4,
  nKvHeads: 2,
  ffnDim: 344,
  maxSeqLen: 64,
  ropeTheta: 10000,
  tieEmbeddings: false,
  normEps: 1e-5,
  initStd: 0.02,
  headDim: null,
  attentionBias: false,
  attentionOutBias: false,
  ropeScaling: null,
  bosTokenId: null,
  eosTokenId: null,
  padTokenId: null,
};

export class ConfigError extends Error {
  constructor(readonly problems: string[], what = 'model config') {
    super(`invalid ${what}:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

const positiveInts = ['vocabSize', 'dModel', 'nLayers', 'nHeads', 'nKvHeads', 'ffnDim', 'maxSeqLen'] as const;

/** Fills defaults, checks every field, and throws one ConfigError listing all problems. */
export function resolveModelConfig(partial: Partial<ModelConfig> & Record<string, unknown> = {}): ModelConfig {
  const problems: string[] = [];
  const known = new Set(Object.keys(DEFAULT_MODEL_CONFIG));
  for (const key of Object.keys(partial)) {
    if (!known.has(key)) problems.push(`unknown key '${key}' (allowed: ${[...known].join(', ')})`);
  }
  const cfg = { ...DEFAULT_MODEL_CONFIG, ...partial } as ModelConfig;
  // An absent optional field (undefined) means its default, as if the key were not given.
  for (const key of Object.keys(DEFAULT_MODEL_CONFIG) as (keyof ModelConfig)[]) {
    if (cfg[key] === undefined) (cfg as unknown as Record<string, unknown>)[key] = DEFAULT_MODEL_CONFIG[key];
  }
  for (const key of positiveInts) {
    const value = cfg[key];
    if (!Number.isInteger(value) || value < 1) problems.push(`${key} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  for (const key of ['ropeTheta', 'normEps', 'initStd'] as const) {
    const value = cfg[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) problems.push(`${key} must be a positive number, got ${JSON.stringify(value)}`);
  }
  for (const key of ['tieEmbeddings', 'attentionBias', 'attentionOutBias'] as const) {
    if (typeof cfg[key] !== 'boolean') problems.push(`${key} must be true or false, got ${JSON.stringify(cfg[key])}`);
  }
  if (cfg.attentionOutBias === true && cfg.attentionBias === false) {
    problems.push('attentionOutBias needs attentionBias (no Hugging Face architecture has an o_proj bias without q/k/v biases)');
  }
  const explicitHeadDim = cfg.headDim !== null && cfg.headDim !== undefined;
  if (explicitHeadDim) {
    if (!Number.isInteger(cfg.headDim) || cfg.headDim! < 1) problems.push(`headDim must be a positive integer or null, got ${JSON.stringify(cfg.headDim)}`);
    else if (cfg.headDim! % 2 !== 0) problems.push(`headDim ${cfg.headDim} must be even (RoPE rotates pairs)`);
  } else if (Number.isInteger(cfg.dModel) && Number.isInteger(cfg.nHeads) && cfg.nHeads > 0) {
    if (cfg.dModel % cfg.nHeads !== 0) problems.push(`dModel ${cfg.dModel} must be divisible by nHeads ${cfg.nHeads} (or set headDim)`);
    else if ((cfg.dModel / cfg.nHeads) % 2 !== 0) problems.push(`head size dModel/nHeads = ${cfg.dModel / cfg.nHeads} must be even (RoPE rotates pairs)`);
  }
  if (Number.isInteger(cfg.nKvHeads) && cfg.nKvHeads > 0 && Number.isInteger(cfg.nHeads) && cfg.nHeads % cfg.nKvHeads !== 0) {
    problems.push(`nHeads ${cfg.nHeads} must be a multiple of nKvHeads ${cfg.nKvHeads}`);
  }
  problems.push(...ropeScalingProblems(cfg.ropeScaling));
  for (const key of ['bosTokenId', 'padTokenId'] as const) {
    if (cfg[key] !== null && !isTokenId(cfg[key])) problems.push(`${key} must be a non-negative integer or null, got ${JSON.stringify(cfg[key])}`);
  }
  const eos = cfg.eosTokenId;
  if (eos !== null && !isTokenId(eos) && !(Array.isArray(eos) && eos.length > 0 && eos.every(isTokenId))) {
    problems.push(`eosTokenId must be a non-negative integer, a non-empty list of them, or null, got ${JSON.stringify(eos)}`);
  }
  if (problems.length) throw new ConfigError(problems);
  return cfg;
}

function isTokenId(value: unknown): boolean {
  return Number.isInteger(value) && (value as number) >= 0;
}

function ropeScalingProblems(scaling: RopeScaling | null): string[] {
  if (scaling === null) return [];
  if (typeof scaling !== 'object') return [`ropeScaling must be an object or null, got ${JSON.stringify(scaling)}`];
  const positive = (key: string, value: unknown) => (typeof value === 'number' && Number.isFinite(value) && value > 0 ? [] : [`ropeScaling.${key} must be a positive number, got ${JSON.stringify(value)}`]);
  if (scaling.type === 'linear') return positive('factor', scaling.factor);
  if (scaling.type === 'llama3') {
    const problems = [
      ...positive('factor', scaling.factor), ...positive('lowFreqFactor', scaling.lowFreqFactor),
      ...positive('highFreqFactor', scaling.highFreqFactor), ...positive('originalMaxPositionEmbeddings', scaling.originalMaxPositionEmbeddings),
    ];
    if (!problems.length && scaling.highFreqFactor <= scaling.lowFreqFactor) {
      problems.push(`ropeScaling.highFreqFactor (${scaling.highFreqFactor}) must exceed lowFreqFactor (${scaling.lowFreqFactor})`);
    }
    return problems;
  }
  return [`ropeScaling.type must be 'linear' or 'llama3', got ${JSON.stringify((scaling as { type?: unknown }).type)}`];
}

/** The width of one attention head: headDim when set, else dModel / nHeads. */
export function headDim(cfg: ModelConfig): number {
  return cfg.headDim ?? cfg.dModel / cfg.nHeads;
}

/** Parameter count (the embedding counted once when tied). */
export function parameterCount(cfg: ModelConfig): number {
  const hd = headDim(cfg);
  const attn = cfg.dModel * hd * (cfg.nHeads * 2 + cfg.nKvHeads * 2);
  const attnBiases = (cfg.attentionBias ? hd * (cfg.nHeads + 2 * cfg.nKvHeads) : 0) + (cfg.attentionOutBias ? cfg.dModel : 0);
  const mlp = 3 * cfg.dModel * cfg.ffnDim;
  const norms = 2 * cfg.dModel;
  const emb = cfg.vocabSize * cfg.dModel;
  return cfg.nLayers * (attn + attnBiases + mlp + norms) + cfg.dModel + emb * (cfg.tieEmbeddings ? 1 : 2);
}
