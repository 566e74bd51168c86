// Hugging Face config.json ↔ ModelConfig for the Llama-shaped families (model_type llama, qwen2, mistral:
// SmolLM2, TinyLlama, Qwen2.5 …). Every field that changes the math is either implemented or refused with
// an error naming it; all problems are listed at once.
import { ConfigError, type ModelConfig, type RopeScaling, headDim, resolveModelConfig } from '../nn/config.js';

export const SUPPORTED_MODEL_TYPES = ['llama', 'qwen2', 'mistral'] as const;
export type SupportedModelType = (typeof SUPPORTED_MODEL_TYPES)[number];

export interface HfConfigOptions {
  /**
   * The context the model will run at (default: max_position_embeddings). Cap it to run a checkpoint with a
   * sliding window: the window must cover the whole context, since the attention here is full causal.
   */
  maxSeqLen?: number;
}

/** transformers' config-class defaults for the fields a config.json may leave out. */
const CLASS_DEFAULTS: Record<SupportedModelType, { maxPositions: number; kvHeads: number | null }> = {
  llama: { maxPositions: 2048, kvHeads: null }, // null: num_attention_heads
  qwen2: { maxPositions: 32768, kvHeads: 32 },
  mistral: { maxPositions: 4096 * 32, kvHeads: 8 },
};

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const show = (value: unknown) => JSON.stringify(value);

/**
 * Our config from a Hugging Face config.json object. Throws one ConfigError ("invalid config.json") listing
 * every unsupported or malformed field.
 */
export function fromHfConfig(hf: Json, opts: HfConfigOptions = {}): ModelConfig {
  const problems: string[] = [];
  const modelType = hf.model_type;
  if (!(SUPPORTED_MODEL_TYPES as readonly unknown[]).includes(modelType)) {
    throw new ConfigError([`model_type ${show(modelType)} is not supported (supported: ${SUPPORTED_MODEL_TYPES.join(', ')}; Llama-shaped families such as SmolLM2, TinyLlama and Qwen2.5 use these)`], 'config.json');
  }
  const type = modelType as SupportedModelType;

  const required = (key: string): number => {
    const value = hf[key];
    if (value === undefined || value === null) problems.push(`${key} is missing`);
    else if (!Number.isInteger(value) || (value as number) < 1) problems.push(`${key} must be a positive integer, got ${show(value)}`);
    return value as number;
  };
  const optional = <V>(key: string, fallback: V): V => (hf[key] === undefined || hf[key] === null ? fallback : (hf[key] as V));

  const vocabSize = required('vocab_size');
  const dModel = required('hidden_size');
  const ffnDim = required('intermediate_size');
  const nLayers = required('num_hidden_layers');
  const nHeads = required('num_attention_heads');
  const nKvHeads = optional('num_key_value_heads', CLASS_DEFAULTS[type].kvHeads ?? nHeads);
  const maxPositions = optional('max_position_embeddings', CLASS_DEFAULTS[type].maxPositions);
  const explicitHeadDim = optional<number | null>('head_dim', null);

  // The math of the block: SwiGLU with silu, no MLP bias, no dropout, the whole head rotated.
  const act = optional('hidden_act', 'silu');
  if (act !== 'silu') problems.push(`hidden_act ${show(act)} is not supported (only "silu", the SwiGLU MLP)`);
  if (optional('mlp_bias', false) !== false) problems.push(`mlp_bias ${show(hf.mlp_bias)} is not supported (MLP projections without biases only)`);
  if (optional('attention_dropout', 0) !== 0) problems.push(`attention_dropout ${show(hf.attention_dropout)} is not supported (training here uses no dropout; set it to 0.0)`);
  if (optional('partial_rotary_factor', 1) !== 1) problems.push(`partial_rotary_factor ${show(hf.partial_rotary_factor)} is not supported (RoPE over the whole head only)`);

  let attentionBias = false;
  let attentionOutBias = false;
  if (type === 'qwen2') attentionBias = true; // Qwen2 always has q/k/v biases and none on o_proj
  else if (type === 'llama') {
    const bias = optional('attention_bias', false);
    if (typeof bias !== 'boolean') problems.push(`attention_bias must be true or false, got ${show(bias)}`);
    else attentionBias = attentionOutBias = bias; // Llama's attention_bias covers q/k/v and o_proj
  }

  const { theta, scaling } = parseRope(hf, problems);

  const maxSeqLen = opts.maxSeqLen ?? maxPositions;
  if (opts.maxSeqLen !== undefined && (!Number.isInteger(opts.maxSeqLen) || opts.maxSeqLen < 1)) {
    problems.push(`the maxSeqLen option must be a positive integer, got ${show(opts.maxSeqLen)}`);
  }
  const window = slidingWindow(hf, type);
  if (window !== null && Number.isInteger(maxSeqLen) && maxSeqLen > window) {
    problems.push(`sliding_window ${window} is smaller than the context of ${maxSeqLen} positions${opts.maxSeqLen === undefined ? ' (max_position_embeddings)' : ''}; sliding-window attention is not implemented, so cap the context at the window (option maxSeqLen ≤ ${window})`);
  }

  const tie = optional('tie_word_embeddings', false);
  if (typeof tie !== 'boolean') problems.push(`tie_word_embeddings must be true or false, got ${show(tie)}`);

  if (problems.length) throw new ConfigError(problems, 'config.json');
  try {
    return resolveModelConfig({
      vocabSize, dModel, ffnDim, nLayers, nHeads, nKvHeads, maxSeqLen,
      ropeTheta: theta,
      ropeScaling: scaling,
      tieEmbeddings: tie as boolean,
      normEps: optional('rms_norm_eps', 1e-6),
      initStd: optional('initializer_range', 0.02),
      headDim: explicitHeadDim,
      attentionBias,
      attentionOutBias,
      bosTokenId: optional('bos_token_id', null),
      eosTokenId: optional('eos_token_id', null),
      padTokenId: optional('pad_token_id', null),
    });
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(err.problems, 'config.json (after conversion)');
    throw err;
  }
}

/**
 * rope_theta and the scaling, from current transformers' rope_parameters ({rope_type, rope_theta, …}) or
 * the older top-level rope_theta + rope_scaling ({type | rope_type, factor, …}).
 */
function parseRope(hf: Json, problems: string[]): { theta: number; scaling: RopeScaling | null } {
  const parameters = hf.rope_parameters;
  const legacy = hf.rope_scaling;
  let spec: Json | null = null;
  let where = 'rope_scaling';
  if (parameters !== undefined && parameters !== null) {
    if (!isObject(parameters)) problems.push(`rope_parameters must be an object, got ${show(parameters)}`);
    else {
      spec = parameters;
      where = 'rope_parameters';
    }
  } else if (legacy !== undefined && legacy !== null) {
    if (!isObject(legacy)) problems.push(`rope_scaling must be an object or null, got ${show(legacy)}`);
    else spec = legacy;
  }
  const theta = (spec?.rope_theta ?? hf.rope_theta ?? 10000) as number;
  if (typeof theta !== 'number' || !(theta > 0)) problems.push(`rope_theta must be a positive number, got ${show(theta)}`);
  if (!spec) return { theta, scaling: null };

  const kind = spec.rope_type ?? spec.type ?? 'default';
  const number = (key: string): number => {
    const value = spec![key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) problems.push(`${where}.${key} must be a positive number for rope type ${show(kind)}, got ${show(value)}`);
    return value as number;
  };
  if (kind === 'default') return { theta, scaling: null };
  if (kind === 'linear') return { theta, scaling: { type: 'linear', factor: number('factor') } };
  if (kind === 'llama3') {
    const context = (spec.original_max_position_embeddings ?? hf.original_max_position_embeddings) as number;
    if (typeof context !== 'number' || !(context > 0)) problems.push(`${where}.original_max_position_embeddings must be a positive number for rope type "llama3", got ${show(context)}`);
    const scaling: RopeScaling = {
      type: 'llama3', factor: number('factor'), lowFreqFactor: number('low_freq_factor'), highFreqFactor: number('high_freq_factor'), originalMaxPositionEmbeddings: context,
    };
    return { theta, scaling };
  }
  problems.push(`${where} rope type ${show(kind)} is not supported (supported: "default", "linear", "llama3")`);
  return { theta, scaling: null };
}

/** The sliding window the checkpoint attends with, or null when every layer attends to the full context. */
function slidingWindow(hf: Json, type: SupportedModelType): number | null {
  const window = hf.sliding_window;
  if (window === undefined || window === null) return null;
  if (type === 'llama') return null; // LlamaConfig has no sliding window
  if (type === 'qwen2') {
    // Qwen2 only slides when asked to (use_sliding_window, or sliding layers in layer_types).
    const layerTypes = Array.isArray(hf.layer_types) ? hf.layer_types : [];
    if (hf.use_sliding_window !== true && !layerTypes.includes('sliding_attention')) return null;
  }
  return typeof window === 'number' ? window : null;
}

export interface HfExportOptions {
  /** torch_dtype written to config.json (default 'float32'). */
  torchDtype?: string;
}

/**
 * Hugging Face config.json fields for our config: model_type llama, or qwen2 when q/k/v carry biases and o_proj
 * none (Llama cannot say that). head_dim, attention_bias, rope_scaling and the token ids only when set.
 */
export function toHfConfig(config: ModelConfig, opts: HfExportOptions = {}): Record<string, unknown> {
  const qwen2 = config.attentionBias && !config.attentionOutBias;
  const out: Record<string, unknown> = {
    architectures: [qwen2 ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'],
    model_type: qwen2 ? 'qwen2' : 'llama',
    vocab_size: config.vocabSize,
    hidden_size: config.dModel,
    intermediate_size: config.ffnDim,
    num_hidden_layers: config.nLayers,
    num_attention_heads: config.nHeads,
    num_key_value_heads: config.nKvHeads,
    max_position_embeddings: config.maxSeqLen,
    rope_theta: config.ropeTheta,
    rms_norm_eps: config.normEps,
    tie_word_embeddings: config.tieEmbeddings,
    hidden_act: 'silu',
    torch_dtype: opts.torchDtype ?? 'float32',
    initializer_range: config.initStd,
  };
  if (config.headDim !== null) out.head_dim = headDim(config);
  if (config.attentionOutBias) out.attention_bias = true;
  if (qwen2) out.use_sliding_window = false;
  const scaling = config.ropeScaling;
  if (scaling?.type === 'linear') out.rope_scaling = { rope_type: 'linear', factor: scaling.factor };
  else if (scaling?.type === 'llama3') {
    out.rope_scaling = {
      rope_type: 'llama3', factor: scaling.factor, low_freq_factor: scaling.lowFreqFactor, high_freq_factor: scaling.highFreqFactor,
      original_max_position_embeddings: scaling.originalMaxPositionEmbeddings,
    };
  }
  if (config.bosTokenId !== null) out.bos_token_id = config.bosTokenId;
  if (config.eosTokenId !== null) out.eos_token_id = config.eosTokenId;
  if (config.padTokenId !== null) out.pad_token_id = config.padTokenId;
  return out;
}
