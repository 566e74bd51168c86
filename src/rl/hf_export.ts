// The files of a complete Hugging Face model directory (what transformers' from_pretrained loads and generates
// with): config.json with the special-token ids, generation_config.json, model.safetensors and the tokenizer files;
// and a LoRA run's PEFT adapter. Byte-level (no fs): run_dir_node.ts writes them into checkpoints and the run.
import type { TransformerLM } from '../nn/transformer.js';
import { encodeModel, toHfConfig } from '../io/checkpoint.js';
import { saveLoraAdapter } from '../io/peft.js';
import type { Tokenizer } from '../data/tokenizer.js';
import { configTokenIds, generationConfigTokenIds, tokenizerExportFiles } from '../data/tokenizer_export.js';

/** File name → contents of an exported directory. */
export type ExportFiles = Map<string, Uint8Array | string>;

/** What an exported directory needs besides the weights. */
export interface HfExportSource {
  tokenizer: Tokenizer;
  /** A pretrained base model's generation_config.json (kept, sampling defaults included); null: the token ids only. */
  baseGenerationConfig?: Record<string, unknown> | null;
  /** base_model_name_or_path of a PEFT adapter (the --model directory or Hub id). */
  baseModelNameOrPath?: string | null;
  /** dtype of an exported model's weights (merged/): the base model's, as merge_and_unload + save_pretrained keep
   *  it; default float32. Checkpoints always stay float32 (exact resume). */
  weightsDtype?: WeightsDtype;
}

export type WeightsDtype = 'float32' | 'bfloat16' | 'float16';

const SAFETENSORS_DTYPE = { float32: 'F32', bfloat16: 'BF16', float16: 'F16' } as const;

/** The weights dtype a Hugging Face config.json declares (`torch_dtype`, or `dtype` in current transformers). */
export function declaredWeightsDtype(hfConfig: Record<string, unknown>): WeightsDtype {
  const declared = hfConfig.torch_dtype ?? hfConfig.dtype;
  return declared === 'bfloat16' || declared === 'float16' ? declared : 'float32';
}

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

/**
 * config.json for a model and its tokenizer: the model's own ids (a pretrained config.json's) where it has them, the
 * tokenizer's otherwise. bos is written even when null: transformers' LlamaConfig would otherwise default it to 1.
 */
export function hfConfigWithTokenIds(model: TransformerLM, tokenizer: Tokenizer): Record<string, unknown> {
  const config = model.config;
  const ids = configTokenIds(tokenizer);
  return {
    ...toHfConfig(config),
    bos_token_id: config.bosTokenId ?? ids.bos_token_id,
    eos_token_id: config.eosTokenId ?? ids.eos_token_id,
    pad_token_id: config.padTokenId ?? ids.pad_token_id,
  };
}

/** generation_config.json: the base model's (ids filled in where it lacks them), or the tokenizer's stop ids. */
export function generationConfig(tokenizer: Tokenizer, base: Record<string, unknown> | null = null): Record<string, unknown> {
  const ids = generationConfigTokenIds(tokenizer);
  return base ? { ...ids, ...base } : { ...ids };
}

/** Everything of a Hugging Face directory except model.safetensors (checkpoints write the weights themselves). */
export function hfDirectoryMetadataFiles(model: TransformerLM, source: HfExportSource): ExportFiles {
  const files: ExportFiles = new Map();
  files.set('config.json', json(hfConfigWithTokenIds(model, source.tokenizer)));
  files.set('generation_config.json', json(generationConfig(source.tokenizer, source.baseGenerationConfig ?? null)));
  const tokenizerFiles = tokenizerExportFiles(source.tokenizer, { modelMaxLength: model.config.maxSeqLen });
  for (const [name, text] of Object.entries(tokenizerFiles)) files.set(name, text);
  return files;
}

/** A complete Hugging Face directory of the model as it is now, weights in source.weightsDtype (default F32). A LoRA
 *  model must be merged first. */
export async function hfDirectoryFiles(model: TransformerLM, source: HfExportSource, metadata: Record<string, string> = {}): Promise<ExportFiles> {
  const dtype = source.weightsDtype ?? 'float32';
  const files = hfDirectoryMetadataFiles(model, source);
  files.set('config.json', json({ ...hfConfigWithTokenIds(model, source.tokenizer), torch_dtype: dtype }));
  files.set('model.safetensors', await encodeModel(model, metadata, SAFETENSORS_DTYPE[dtype]));
  return files;
}

/** The PEFT adapter directory of a LoRA model: adapter_config.json and adapter_model.safetensors. */
export async function adapterDirectoryFiles(model: TransformerLM, source: Pick<HfExportSource, 'baseModelNameOrPath'>): Promise<ExportFiles> {
  const files = await saveLoraAdapter(model, { baseModelNameOrPath: source.baseModelNameOrPath ?? null });
  return new Map(Object.entries(files));
}
