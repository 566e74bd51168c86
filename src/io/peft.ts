// LoRA adapters in PEFT's on-disk format, byte-level (no fs): adapter_config.json (LoraConfig's fields) and
// adapter_model.safetensors with tensors base_model.model.<module path>.lora_A.weight [r, in] and
// …lora_B.weight [out, r], the names `PeftModel.from_pretrained` loads. Module paths are the model's Hugging
// Face names (model.layers.N.self_attn.q_proj), so the same files fit the transformers model.
import * as T from '../tensor/index.js';
import { type LoraOptions, LoraError, applyLora, loraAdapters, removeLora, resolveLoraOptions, selectLoraTargets } from '../nn/lora.js';
import type { Module } from '../nn/module.js';
import { encodeSafetensors, decodeSafetensors, type NamedArray } from './safetensors.js';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
/** Prefix PEFT's PeftModelForCausalLM gives every saved tensor name. */
export const PEFT_KEY_PREFIX = 'base_model.model.';

/** The two files of a PEFT adapter directory: the config as JSON text, the weights as safetensors bytes. */
export interface PeftAdapterFiles {
  [ADAPTER_CONFIG_FILE]: string;
  [ADAPTER_WEIGHTS_FILE]: Uint8Array;
}

/** What loadLoraAdapter accepts: the config as text, bytes or a parsed object. */
export interface PeftAdapterInput {
  [ADAPTER_CONFIG_FILE]: string | Uint8Array | Record<string, unknown>;
  [ADAPTER_WEIGHTS_FILE]: Uint8Array;
}

export interface SaveLoraOptions {
  /** `base_model_name_or_path` in the config: the Hub id or directory of the base model (default null). */
  baseModelNameOrPath?: string | null;
}

/** The adapter's LoraConfig fields, keys sorted as PEFT's save_pretrained writes them. */
export function loraAdapterConfig(model: Module, opts: SaveLoraOptions = {}): Record<string, unknown> {
  const adapters = loraAdapters(model);
  if (!adapters.length) throw new LoraError('saveLoraAdapter: the model has no LoRA adapters');
  const first = adapters[0];
  const differing = adapters.find((a) => a.r !== first.r || a.alpha !== first.alpha || a.dropout !== first.dropout || a.useRslora !== first.useRslora);
  if (differing) throw new LoraError(`saveLoraAdapter: '${differing.path}' has different settings (r/alpha/dropout) from '${first.path}'; one config needs uniform adapters`);
  // PEFT expands 'all-linear' to the matched modules; their last names select the same set by suffix.
  const targetModules = [...new Set(adapters.map((a) => a.path.split('.').pop()!))].sort();
  const config: Record<string, unknown> = {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: opts.baseModelNameOrPath ?? null,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: first.alpha,
    lora_dropout: first.dropout,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    peft_type: 'LORA',
    r: first.r,
    rank_pattern: {},
    revision: null,
    target_modules: targetModules,
    task_type: 'CAUSAL_LM',
    use_dora: false,
    use_rslora: first.useRslora,
  };
  return config;
}

/** The adapter as PEFT's two files. */
export async function saveLoraAdapter(model: Module, opts: SaveLoraOptions = {}): Promise<PeftAdapterFiles> {
  const config = loraAdapterConfig(model, opts);
  const arrays = new Map<string, NamedArray>();
  for (const adapter of loraAdapters(model)) {
    for (const [kind, t] of [['lora_A', adapter.loraA], ['lora_B', adapter.loraB]] as const) {
      const data = await t.read();
      arrays.set(`${PEFT_KEY_PREFIX}${adapter.path}.${kind}.weight`, { shape: t.shape, data: data instanceof Float32Array ? data : Float32Array.from(data) });
    }
  }
  return {
    [ADAPTER_CONFIG_FILE]: `${JSON.stringify(config, null, 2)}\n`,
    [ADAPTER_WEIGHTS_FILE]: encodeSafetensors(arrays, { format: 'pt' }),
  };
}

/** Config fields that would change the math if ignored, and the value this implementation supports. */
const UNSUPPORTED: [field: string, isDefault: (v: unknown) => boolean, what: string][] = [
  ['use_dora', (v) => !v, 'DoRA'],
  ['fan_in_fan_out', (v) => !v, 'fan_in_fan_out (GPT-2 Conv1D layout)'],
  ['bias', (v) => v === undefined || v === 'none', 'trained biases (bias other than "none")'],
  ['lora_bias', (v) => !v, 'lora_bias'],
  ['rank_pattern', (v) => !v || Object.keys(v as object).length === 0, 'per-module ranks (rank_pattern)'],
  ['alpha_pattern', (v) => !v || Object.keys(v as object).length === 0, 'per-module alphas (alpha_pattern)'],
  ['layers_to_transform', (v) => v === null || v === undefined || (Array.isArray(v) && v.length === 0), 'layers_to_transform'],
  ['modules_to_save', (v) => v === null || v === undefined || (Array.isArray(v) && v.length === 0), 'modules_to_save (fully trained extra modules)'],
  ['exclude_modules', (v) => v === null || v === undefined || (Array.isArray(v) && v.length === 0), 'exclude_modules'],
  ['layer_replication', (v) => v === null || v === undefined, 'layer_replication'],
  ['target_parameters', (v) => v === null || v === undefined || (Array.isArray(v) && v.length === 0), 'target_parameters'],
  ['trainable_token_indices', (v) => v === null || v === undefined, 'trainable_token_indices'],
  ['use_qalora', (v) => !v, 'QALoRA'],
  ['alora_invocation_tokens', (v) => v === null || v === undefined, 'aLoRA'],
];

function parseConfig(input: PeftAdapterInput[typeof ADAPTER_CONFIG_FILE]): Record<string, unknown> {
  if (typeof input === 'object' && !(input instanceof Uint8Array)) return input;
  const text = typeof input === 'string' ? input : new TextDecoder().decode(input);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new LoraError(`${ADAPTER_CONFIG_FILE} is not valid JSON: ${(err as Error).message}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new LoraError(`${ADAPTER_CONFIG_FILE} must hold a JSON object`);
  return parsed as Record<string, unknown>;
}

/** LoRA options from a PEFT adapter_config.json; refuses every setting that would change the math unsupported. */
export function loraOptionsFromPeftConfig(config: Record<string, unknown>): LoraOptions {
  const problems: string[] = [];
  if (config.peft_type !== 'LORA') problems.push(`peft_type is ${JSON.stringify(config.peft_type)}, only "LORA" is supported`);
  if (config.task_type !== undefined && config.task_type !== null && config.task_type !== 'CAUSAL_LM') problems.push(`task_type is ${JSON.stringify(config.task_type)}, expected "CAUSAL_LM"`);
  for (const [field, isDefault, what] of UNSUPPORTED) {
    if (!isDefault(config[field])) problems.push(`${what} is not supported (${field}: ${JSON.stringify(config[field])})`);
  }
  const target = config.target_modules;
  if (!(typeof target === 'string' || (Array.isArray(target) && target.every((t) => typeof t === 'string')))) {
    problems.push(`target_modules must be a string or a list of names, got ${JSON.stringify(target)}`);
  }
  if (problems.length) throw new LoraError(`${ADAPTER_CONFIG_FILE}: ${problems.join('; ')}`);
  return {
    r: config.r as number,
    alpha: (config.lora_alpha as number | undefined) ?? 8,
    dropout: (config.lora_dropout as number | undefined) ?? 0,
    targetModules: target as string[] | string,
    useRslora: Boolean(config.use_rslora),
  };
}

/**
 * Applies a PEFT LoRA adapter to `model` (which must have none): every tensor must be present with the shape
 * the config and the model imply, and unknown tensors are refused; nothing changes unless all checks pass.
 * Returns the parsed config.
 */
export function loadLoraAdapter(model: Module, files: PeftAdapterInput, opts: Omit<LoraOptions, 'r' | 'alpha' | 'targetModules' | 'useRslora'> = {}): Record<string, unknown> {
  const config = parseConfig(files[ADAPTER_CONFIG_FILE]);
  const weights = files[ADAPTER_WEIGHTS_FILE];
  if (!(weights instanceof Uint8Array)) throw new LoraError(`${ADAPTER_WEIGHTS_FILE} must be given as bytes`);
  const options = { ...loraOptionsFromPeftConfig(config), ...opts };
  const settings = resolveLoraOptions(options);
  if (loraAdapters(model).length) throw new LoraError('loadLoraAdapter: the model already has LoRA adapters (mergeLora or removeLora first)');
  const targets = selectLoraTargets(model, settings.targetModules);
  const { tensors } = decodeSafetensors(weights);

  const problems: string[] = [];
  const expected = new Map<string, readonly number[]>();
  for (const [path, layer] of targets) {
    expected.set(`${PEFT_KEY_PREFIX}${path}.lora_A.weight`, [settings.r, layer.inFeatures]);
    expected.set(`${PEFT_KEY_PREFIX}${path}.lora_B.weight`, [layer.outFeatures, settings.r]);
  }
  for (const [name, shape] of expected) {
    const stored = tensors.get(name);
    if (!stored) {
      problems.push(`missing tensor '${name}' [${shape.join(', ')}] (target_modules ${JSON.stringify(config.target_modules)} selects it)`);
      continue;
    }
    const rankAxis = name.endsWith('lora_A.weight') ? 0 : 1;
    if (stored.shape.length === 2 && stored.shape[rankAxis] !== settings.r && stored.shape[1 - rankAxis] === shape[1 - rankAxis]) {
      problems.push(`tensor '${name}' has rank ${stored.shape[rankAxis]}, ${ADAPTER_CONFIG_FILE} says r = ${settings.r}`);
    } else if (stored.shape.length !== shape.length || stored.shape.some((size, i) => size !== shape[i])) {
      problems.push(`tensor '${name}' has shape [${stored.shape.join(', ')}], the model expects [${shape.join(', ')}]`);
    } else if (stored.data instanceof Int32Array) problems.push(`tensor '${name}' is integer, expected floating point`);
    else if (stored.data.some((v) => !Number.isFinite(v))) problems.push(`tensor '${name}' contains NaN or Inf`);
  }
  for (const name of tensors.keys()) {
    if (!expected.has(name)) problems.push(`unexpected tensor '${name}' (not a LoRA weight of a targeted module of this model)`);
  }
  if (problems.length) throw new LoraError(`adapter does not fit the model:\n  - ${problems.join('\n  - ')}`);

  const adapters = applyLora(model, options);
  try {
    for (const adapter of adapters) {
      for (const kind of ['lora_A', 'lora_B'] as const) {
        const stored = tensors.get(`${PEFT_KEY_PREFIX}${adapter.path}.${kind}.weight`)!;
        const fresh = T.keep(T.tensor(stored.data, stored.shape).requireGrad());
        const old = kind === 'lora_A' ? adapter.loraA : adapter.loraB;
        fresh.name = old.name;
        if (kind === 'lora_A') adapter.loraA = fresh;
        else adapter.loraB = fresh;
        old.dispose();
      }
    }
  } catch (err) {
    removeLora(model);
    throw err;
  }
  return config;
}
