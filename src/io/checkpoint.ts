// Model weights ↔ safetensors bytes (Llama / Qwen2 tensor names); config.json lives in hf_config.ts.
// Byte-level only; the Node adapter (node_files.ts) does the atomic file writes.
import * as T from '../tensor/index.js';
import { TransformerLM } from '../nn/transformer.js';
import { fromHfConfig } from './hf_config.js';
import { type NamedArray, SafetensorsError, decodeSafetensors, encodeSafetensors } from './safetensors.js';

export { fromHfConfig, toHfConfig } from './hf_config.js';

/** Named float32 tensors as safetensors bytes (F32 unless `floatDType` says F16/BF16), in map order (weights, optimizer moments). */
export async function encodeTensors(
  tensors: ReadonlyMap<string, T.Tensor>, metadata: Record<string, string> = {}, floatDType: 'F32' | 'F16' | 'BF16' = 'F32',
): Promise<Uint8Array> {
  const arrays = new Map<string, NamedArray>();
  for (const [name, tensor] of tensors) {
    const data = await tensor.read();
    arrays.set(name, { shape: tensor.shape, data: data instanceof Float32Array ? data : Float32Array.from(data) });
  }
  return encodeSafetensors(arrays, metadata, { floatDType });
}

/** The model's weights as safetensors bytes (F32 unless `floatDType` says F16/BF16), in parameter order. */
export async function encodeModel(
  model: TransformerLM, metadata: Record<string, string> = {}, floatDType: 'F32' | 'F16' | 'BF16' = 'F32',
): Promise<Uint8Array> {
  return encodeTensors(model.params, { format: 'pt', ...metadata }, floatDType);
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
