// Node-only file adapter: atomic writes (temp file + fsync + rename) and checkpoint directories
// (config.json + model.safetensors). The browser bundle never imports this module.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { TransformerLM } from '../nn/transformer.js';
import { encodeModel, modelFromCheckpoint, toHfConfig } from './checkpoint.js';

/** Writes `data` to `path` so that readers see either the old file or the complete new one. */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fd = openSync(tmp, 'w');
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, path);
}

/** The files of a checkpoint directory: model.safetensors and config.json, as written by saveCheckpoint. */
export async function checkpointFiles(model: TransformerLM, metadata: Record<string, string> = {}): Promise<[string, Uint8Array | string][]> {
  return [['model.safetensors', await encodeModel(model, metadata)], ['config.json', `${JSON.stringify(toHfConfig(model.config), null, 2)}\n`]];
}

/** Saves config.json and model.safetensors into `dir` (each written atomically). */
export async function saveCheckpoint(dir: string, model: TransformerLM, metadata: Record<string, string> = {}): Promise<void> {
  for (const [file, contents] of await checkpointFiles(model, metadata)) writeFileAtomic(join(dir, file), contents);
}

/** Loads a checkpoint directory written by saveCheckpoint (or a Hugging Face Llama/Qwen2 export in F32/F16/BF16). */
export function loadCheckpoint(dir: string): TransformerLM {
  const configPath = join(dir, 'config.json');
  const weightsPath = join(dir, 'model.safetensors');
  for (const path of [configPath, weightsPath]) {
    if (!existsSync(path)) throw new Error(`checkpoint ${dir}: missing ${path}`);
  }
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(readFileSync(configPath, 'utf8'));
  } catch (err) {
    throw new Error(`checkpoint ${dir}: config.json is not valid JSON (${(err as Error).message})`);
  }
  try {
    return modelFromCheckpoint(config, new Uint8Array(readFileSync(weightsPath)));
  } catch (err) {
    throw new Error(`checkpoint ${dir}: ${(err as Error).message}`);
  }
}
