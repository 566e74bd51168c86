// A Hugging Face model directory (config.json + model.safetensors, or model.safetensors.index.json and its
// shards; F32 / F16 / BF16) → TransformerLM, from files a caller supplies: a map of bytes (a page holding
// uploaded files) or an async reader (fetch, the Node adapter pretrained_node.ts). Every tensor's name, dtype
// and shape is checked against the config before any weight is decoded, and all problems are listed at once.
import * as T from '../tensor/index.js';
import type { ModelConfig } from '../nn/config.js';
import { TransformerLM } from '../nn/transformer.js';
import { buildWithFrozenPlaceholders } from '../nn/module.js';
import { type FrozenDType, resolveFrozenDType } from '../nn/lora.js';
import { isHalfDType } from '../backend/types.js';
import { type HfConfigOptions, fromHfConfig } from './hf_config.js';
import { type SafetensorsHeader, type TensorEntry, SafetensorsError, decodeTensor, readSafetensorsHeader, safetensorsHeaderLength } from './safetensors.js';

/** Files by name (as in the model directory), or an async reader of one file's bytes. */
export type ModelFiles = ReadonlyMap<string, Uint8Array> | ((name: string) => Promise<Uint8Array>);

/** How the loader reads files: whole, and, where the source can, just a file's first bytes (headers). */
export interface ModelFileReader {
  /** Names the source can tell exist (null when it can only try reading). */
  has?(name: string): Promise<boolean>;
  read(name: string): Promise<Uint8Array>;
  /** The first `length` bytes (or fewer at the end of the file) and the file's size. */
  readPrefix?(name: string, length: number): Promise<{ bytes: Uint8Array; size: number }>;
  /** Where the files are, for messages (a directory path, "the given files"). */
  where: string;
}

export interface PretrainedOptions extends HfConfigOptions {
  /**
   * The model is a LoRA base with this frozen storage (lora.frozenDtype; 'auto' = the checkpoint's dtype): Linear and
   * Embedding weights load straight into 16 bits, tensor by tensor, never as a float32 copy of the whole model.
   * Unset or 'float32': every weight loads float32 and trainable (full fine-tuning).
   */
  frozenDtype?: FrozenDType;
}

export interface PretrainedModel {
  model: TransformerLM;
  config: ModelConfig;
  /** config.json as read (model_type, token ids, fields this loader does not use). */
  hfConfig: Record<string, unknown>;
  /** The safetensors files the weights came from, in load order. */
  weightFiles: string[];
}

export class PretrainedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PretrainedError';
  }
}

const INDEX_FILE = 'model.safetensors.index.json';
const SINGLE_FILE = 'model.safetensors';
const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16']);
const CHECKPOINT_DTYPE = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' } as const;
const checkpointDTypes = new WeakMap<TransformerLM, 'float32' | 'float16' | 'bfloat16'>();

/**
 * The dtype every weight of a model loaded by loadPretrainedFromFiles was stored in (safetensors F32 / F16 / BF16);
 * null when they differ or the model was not loaded from a checkpoint. What lora.frozenDtype 'auto' keeps.
 */
export function checkpointWeightDType(model: TransformerLM): 'float32' | 'float16' | 'bfloat16' | null {
  return checkpointDTypes.get(model) ?? null;
}

/** A reader over a map of bytes or an async function; `where` names the source in messages. */
export function modelFileReader(files: ModelFiles, where = 'the given files'): ModelFileReader {
  if (typeof files === 'function') {
    return {
      where,
      async read(name) {
        try {
          return await files(name);
        } catch (err) {
          throw new PretrainedError(`${where}: cannot read ${name} (${(err as Error).message})`);
        }
      },
    };
  }
  return {
    where,
    has: async (name) => files.has(name),
    async read(name) {
      const bytes = files.get(name);
      if (!bytes) throw new PretrainedError(`${where}: no file ${name} (have: ${[...files.keys()].join(', ') || 'none'})`);
      return bytes;
    },
  };
}

/**
 * Loads a pretrained model from its files (config.json and safetensors weights), platform-neutral: pass the
 * files a page holds as a Map, or an async reader such as `(name) => fetch(base + name).then(…)`.
 */
export async function loadPretrainedFromFiles(files: ModelFiles | ModelFileReader, opts: PretrainedOptions = {}): Promise<PretrainedModel> {
  const reader = 'read' in files && typeof files.read === 'function' && 'where' in files ? files as ModelFileReader : modelFileReader(files as ModelFiles);
  const hfConfig = parseJson(await reader.read('config.json'), 'config.json', reader.where);
  let config: ModelConfig;
  try {
    config = fromHfConfig(hfConfig, opts);
  } catch (err) {
    throw new PretrainedError(`${reader.where}: ${(err as Error).message}`);
  }
  const shards = await weightShards(reader);
  const headers = new Map<string, SafetensorsHeader>();
  for (const shard of shards.files) headers.set(shard, await readHeader(reader, shard));

  const frozen = opts.frozenDtype ? resolveFrozenDType(opts.frozenDtype, { lora: true, checkpointDType: uniformDType(headers) }) : 'float32';
  const model = frozen === 'float32' ? new TransformerLM(config) : buildWithFrozenPlaceholders(frozen, () => new TransformerLM(config));
  try {
    const problems = fitProblems(model, headers, shards.weightMap);
    if (problems.length) throw new PretrainedError(`${reader.where}: the weights do not fit config.json:\n  - ${problems.join('\n  - ')}`);
    await loadShards(model, reader, headers);
  } catch (err) {
    model.dispose();
    throw err;
  }
  const stored = new Set<string>();
  for (const header of headers.values()) for (const [name, entry] of header.tensors) if (model.params.has(name)) stored.add(entry.dtype);
  if (stored.size === 1) checkpointDTypes.set(model, CHECKPOINT_DTYPE[[...stored][0] as 'F32' | 'F16' | 'BF16']);
  return { model, config, hfConfig, weightFiles: shards.files };
}

/** The dtype all float tensors of the checkpoint share (the buffers a loader ignores aside), or null. */
function uniformDType(headers: ReadonlyMap<string, SafetensorsHeader>): 'float32' | 'float16' | 'bfloat16' | null {
  const stored = new Set<string>();
  for (const header of headers.values()) for (const [name, entry] of header.tensors) if (!ignorable(name)) stored.add(entry.dtype);
  const only = stored.size === 1 ? [...stored][0] : null;
  return only && only in CHECKPOINT_DTYPE ? CHECKPOINT_DTYPE[only as 'F32' | 'F16' | 'BF16'] : null;
}

function parseJson(bytes: Uint8Array, name: string, where: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new PretrainedError(`${where}: ${name} is not valid JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new PretrainedError(`${where}: ${name} is not a JSON object`);
  return value as Record<string, unknown>;
}

/** The weight files: the index's shards (with its tensor → file map) or the single model.safetensors. */
async function weightShards(reader: ModelFileReader): Promise<{ files: string[]; weightMap: Map<string, string> | null }> {
  let indexBytes: Uint8Array | null = null;
  if (reader.has) {
    if (await reader.has(INDEX_FILE)) indexBytes = await reader.read(INDEX_FILE);
    else if (!(await reader.has(SINGLE_FILE))) {
      throw new PretrainedError(`${reader.where}: no weights: expected ${SINGLE_FILE} or ${INDEX_FILE} (PyTorch .bin and other formats are not read; save the model with safetensors)`);
    }
  } else {
    try {
      indexBytes = await reader.read(INDEX_FILE);
    } catch {
      // A plain reader can only try: without an index the weights are the single file.
    }
  }
  if (!indexBytes) return { files: [SINGLE_FILE], weightMap: null };
  const index = parseJson(indexBytes, INDEX_FILE, reader.where);
  const map = index.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new PretrainedError(`${reader.where}: ${INDEX_FILE} has no weight_map object`);
  const weightMap = new Map<string, string>();
  for (const [tensor, file] of Object.entries(map)) {
    if (typeof file !== 'string' || file.includes('/') || file.includes('\\') || file.startsWith('.')) {
      throw new PretrainedError(`${reader.where}: ${INDEX_FILE} maps '${tensor}' to ${JSON.stringify(file)}, not a file name in the model directory`);
    }
    weightMap.set(tensor, file);
  }
  return { files: [...new Set(weightMap.values())], weightMap };
}

async function readHeader(reader: ModelFileReader, file: string): Promise<SafetensorsHeader> {
  try {
    if (!reader.readPrefix) {
      const bytes = await reader.read(file);
      return readSafetensorsHeader(bytes);
    }
    const head = await reader.readPrefix(file, 8);
    const length = safetensorsHeaderLength(head.bytes, head.size);
    const prefix = await reader.readPrefix(file, 8 + length);
    return readSafetensorsHeader(prefix.bytes, prefix.size);
  } catch (err) {
    if (err instanceof SafetensorsError) throw new PretrainedError(`${reader.where}: ${file}: ${err.message}`);
    throw err;
  }
}

const ignorable = (name: string) => name.endsWith('.rotary_emb.inv_freq'); // a buffer older Llama exports saved

/** Every mismatch between the model's parameters and the tensors the shards hold (and the index claims). */
function fitProblems(model: TransformerLM, headers: ReadonlyMap<string, SafetensorsHeader>, weightMap: ReadonlyMap<string, string> | null): string[] {
  const problems: string[] = [];
  const expected = model.parameterShapes();
  const stored = new Map<string, { file: string; entry: TensorEntry }>();
  for (const [file, header] of headers) {
    for (const [name, entry] of header.tensors) {
      const other = stored.get(name);
      if (other) problems.push(`tensor '${name}' is in both ${other.file} and ${file}`);
      else stored.set(name, { file, entry });
    }
  }
  if (weightMap) {
    for (const [name, file] of weightMap) {
      const at = stored.get(name);
      if (!at) problems.push(`${INDEX_FILE} lists '${name}' in ${file}, which does not hold it`);
      else if (at.file !== file) problems.push(`${INDEX_FILE} lists '${name}' in ${file}, but it is in ${at.file}`);
    }
  }
  for (const [name, shape] of expected) {
    const at = stored.get(name);
    if (!at) {
      problems.push(`missing tensor '${name}' [${shape.join(', ')}]`);
      continue;
    }
    const { entry, file } = at;
    if (!FLOAT_DTYPES.has(entry.dtype)) problems.push(`tensor '${name}' (${file}) is ${entry.dtype}, expected a float type (F32, F16 or BF16)`);
    if (entry.shape.length !== shape.length || entry.shape.some((size, i) => size !== shape[i])) {
      problems.push(`tensor '${name}' (${file}) has shape [${entry.shape.join(', ')}], config.json implies [${shape.join(', ')}]`);
    }
  }
  const tied = model.config.tieEmbeddings;
  for (const [name, { file, entry }] of stored) {
    if (expected.has(name) || ignorable(name)) continue;
    // Some tied checkpoints also store the head; it must then be the embedding itself (checked when decoded).
    if (tied && name === 'lm_head.weight') {
      const embedding = expected.get('model.embed_tokens.weight')!;
      if (entry.shape.length !== 2 || entry.shape[0] !== embedding[0] || entry.shape[1] !== embedding[1]) {
        problems.push(`tensor 'lm_head.weight' (${file}) has shape [${entry.shape.join(', ')}], but tie_word_embeddings shares model.embed_tokens.weight [${embedding.join(', ')}]`);
      }
      continue;
    }
    const biasHint = name.endsWith('_proj.bias') ? ' (projection biases: qwen2 has them on q/k/v; llama on q/k/v/o with attention_bias true)' : '';
    problems.push(`unexpected tensor '${name}' (${file}) [${entry.shape.join(', ')}]: config.json describes no such parameter${biasHint}`);
  }
  return problems;
}

/** Decodes shard by shard (one file's bytes in memory at a time), replacing each parameter as it goes. */
async function loadShards(model: TransformerLM, reader: ModelFileReader, headers: ReadonlyMap<string, SafetensorsHeader>): Promise<void> {
  const problems: string[] = [];
  let storedHead: { file: string; data: Float32Array } | null = null;
  for (const [file, header] of headers) {
    const bytes = await reader.read(file);
    if (bytes.length !== header.fileSize) throw new PretrainedError(`${reader.where}: ${file} changed while loading (${header.fileSize} bytes, then ${bytes.length})`);
    for (const [name, entry] of header.tensors) {
      const isStoredHead = model.config.tieEmbeddings && name === 'lm_head.weight';
      if (!model.params.has(name) && !isStoredHead) continue;
      const { data, shape } = decodeTensor(bytes, entry);
      const values = data as Float32Array;
      if (values.some((value) => !Number.isFinite(value))) {
        problems.push(`tensor '${name}' (${file}) contains NaN or Inf`);
        continue;
      }
      if (isStoredHead) {
        storedHead = { file, data: values };
        continue;
      }
      const old = model.params.get(name)!;
      // A 16-bit placeholder (buildWithFrozenPlaceholders) takes the values in its own dtype, frozen.
      const fresh = T.keep(isHalfDType(old.dtype) ? T.tensor(values, shape, old.dtype) : T.tensor(values, shape).requireGrad());
      fresh.name = name;
      model.params.set(name, fresh);
      old.dispose();
    }
  }
  if (storedHead) {
    const table = model.p('model.embed_tokens.weight');
    const embedding = await table.read();
    // A 16-bit embedding holds its values rounded: compare the head rounded the same way.
    let head: ArrayLike<number> = storedHead.data;
    if (isHalfDType(table.dtype)) {
      const rounded = T.tensor(storedHead.data, [storedHead.data.length], table.dtype);
      head = await rounded.read();
      rounded.dispose();
    }
    if (Array.prototype.some.call(head, (value: number, i: number) => value !== Math.fround(embedding[i]))) {
      problems.push(`tensor 'lm_head.weight' (${storedHead.file}) differs from model.embed_tokens.weight, but tie_word_embeddings is true (set it to false to use a separate head)`);
    }
  }
  if (problems.length) throw new PretrainedError(`${reader.where}: bad weights:\n  - ${problems.join('\n  - ')}`);
}
