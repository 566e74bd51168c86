// Model weights ↔ safetensors bytes and config ↔ Hugging Face config.json (Llama / Qwen2 layout).
// Byte-level only; the Node adapter (node_checkpoint.ts) does the atomic file writes.
import * as T from '../tensor/index.js';
import { type ModelConfig, resolveModelConfig } from '../nn/config.js';
import { TransformerLM } from '../nn/transformer.js';
import { type NamedArray, SafetensorsError, decodeSafetensors, encodeSafetensors } from './safetensors.js';

/** Hugging Face config.json fields for our config (model_type llama). */
export function toHfConfig(config: ModelConfig): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
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
    torch_dtype: 'float32',
    initializer_range: config.initStd,
  };
}

/** Our config from a Hugging Face config.json (llama / qwen2 / mistral field names). */
export function fromHfConfig(hfConfig: Record<string, unknown>): ModelConfig {
  const num = (key: string) => hfConfig[key] as number;
  const heads = num('num_attention_heads');
  return resolveModelConfig({
    vocabSize: num('vocab_size'),
    dModel: num('hidden_size'),
    ffnDim: num('intermediate_size'),
    nLayers: num('num_hidden_layers'),
    nHeads: heads,
    nKvHeads: (hfConfig.num_key_value_heads as number | undefined) ?? heads,
    maxSeqLen: num('max_position_embeddings'),
    ropeTheta: (hfConfig.rope_theta as number | undefined) ?? 10000,
    normEps: (hfConfig.rms_norm_eps as number | undefined) ?? 1e-6,
    tieEmbeddings: (hfConfig.tie_word_embeddings as boolean | undefined) ?? false,
    initStd: (hfConfig.initializer_range as number | undefined) ?? 0.02,
  });
}

/** Named float32 tensors as safetensors bytes (F32), in map order (weights, optimizer moments). */
export async function encodeTensors(tensors: ReadonlyMap<string, T.Tensor>, metadata: Record<string, string> = {}): Promise<Uint8Array> {
  const arrays = new Map<string, NamedArray>();
  for (const [name, tensor] of tensors) {
    const data = await tensor.read();
    arrays.set(name, { shape: tensor.shape, data: data instanceof Float32Array ? data : Float32Array.from(data) });
  }
  return encodeSafetensors(arrays, metadata);
}

/** The model's weights as safetensors bytes (F32), in parameter order. */
export async function encodeModel(model: TransformerLM, metadata: Record<string, string> = {}): Promise<Uint8Array> {
  return encodeTensors(model.params, { format: 'pt', ...metadata });
}

/**
 * Replaces the model's weights with those in `bytes`. Every parameter must be present with its exact shape;
 * unknown tensors are rejected (both name the tensor). Nothing changes unless all checks pass.
 */
export function loadModelWeights(model: TransformerLM, bytes: Uint8Array): Record<string, string> {
  const { tensors, metadata } = decodeSafetensors(bytes);
  const expected = model.parameterShapes();
  const problems: string[] = [];
  for (const [name, shape] of expected) {
    const stored = tensors.get(name);
    if (!stored) problems.push(`missing tensor '${name}' [${shape.join(', ')}]`);
    else if (stored.shape.length !== shape.length || stored.shape.some((size, i) => size !== shape[i])) {
      problems.push(`tensor '${name}' has shape [${stored.shape.join(', ')}], the model expects [${shape.join(', ')}]`);
    } else if (stored.data instanceof Int32Array) problems.push(`tensor '${name}' is integer, expected floating point`);
    else if (stored.data.some((value) => !Number.isFinite(value))) problems.push(`tensor '${name}' contains NaN or Inf`);
  }
  for (const name of tensors.keys()) {
    if (!expected.has(name) && !name.endsWith('rotary_emb.inv_freq')) problems.push(`unexpected tensor '${name}' (not a parameter of this model)`);
  }
  if (problems.length) throw new SafetensorsError(`checkpoint does not fit the model:\n  - ${problems.join('\n  - ')}`);
  for (const [name, old] of model.params) {
    const stored = tensors.get(name)!;
    const fresh = T.keep(T.tensor(stored.data, stored.shape).requireGrad());
    fresh.name = name;
    model.params.set(name, fresh);
    old.dispose();
  }
  return metadata;
}

/** A model built from a Hugging Face config.json object and safetensors bytes. */
export function modelFromCheckpoint(config: Record<string, unknown>, weights: Uint8Array): TransformerLM {
  const model = new TransformerLM(fromHfConfig(config));
  try {
    loadModelWeights(model, weights);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}
