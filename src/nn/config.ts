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
}

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
  for (const key of positiveInts) {
    const value = cfg[key];
    if (!Number.isInteger(value) || value < 1) problems.push(`${key} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  for (const key of ['ropeTheta', 'normEps', 'initStd'] as const) {
    const value = cfg[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) problems.push(`${key} must be a positive number, got ${JSON.stringify(value)}`);
  }
  if (typeof cfg.tieEmbeddings !== 'boolean') problems.push(`tieEmbeddings must be true or false, got ${JSON.stringify(cfg.tieEmbeddings)}`);
  if (Number.isInteger(cfg.dModel) && Number.isInteger(cfg.nHeads) && cfg.nHeads > 0) {
    if (cfg.dModel % cfg.nHeads !== 0) problems.push(`dModel ${cfg.dModel} must be divisible by nHeads ${cfg.nHeads}`);
    else if ((cfg.dModel / cfg.nHeads) % 2 !== 0) problems.push(`head size dModel/nHeads = ${cfg.dModel / cfg.nHeads} must be even (RoPE rotates pairs)`);
  }
  if (Number.isInteger(cfg.nKvHeads) && cfg.nKvHeads > 0 && Number.isInteger(cfg.nHeads) && cfg.nHeads % cfg.nKvHeads !== 0) {
    problems.push(`nHeads ${cfg.nHeads} must be a multiple of nKvHeads ${cfg.nKvHeads}`);
  }
  if (problems.length) throw new ConfigError(problems);
  return cfg;
}

export function headDim(cfg: ModelConfig): number {
  return cfg.dModel / cfg.nHeads;
}

/** Parameter count (the embedding counted once when tied). */
export function parameterCount(cfg: ModelConfig): number {
  const hd = headDim(cfg);
  const attn = cfg.dModel * hd * (cfg.nHeads * 2 + cfg.nKvHeads * 2);
  const mlp = 3 * cfg.dModel * cfg.ffnDim;
  const norms = 2 * cfg.dModel;
  const emb = cfg.vocabSize * cfg.dModel;
  return cfg.nLayers * (attn + mlp + norms) + cfg.dModel + emb * (cfg.tieEmbeddings ? 1 : 2);
}
