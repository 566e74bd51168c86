// Node-only file adapter: atomic writes (temp file + fsync + rename), checkpoint directories
// (config.json + model.safetensors) and their SHA-256 manifests. The browser bundle never imports this module.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import type { TransformerLM } from '../nn/transformer.js';
import { encodeModel, modelFromCheckpoint, toHfConfig } from './checkpoint.js';

/** A checkpoint file whose bytes are not what its manifest says (or a manifest that cannot be read). */
export class ChecksumError extends Error {}

/** Every checkpoint directory carries this manifest: one `sha256sum` line per file ("<hex>  <name>"), written last,
 *  so `sha256sum -c checksums.sha256` inside the directory checks it by hand too. */
export const CHECKSUM_FILE = 'checksums.sha256';

/** SHA-256 of a file's contents as lowercase hex (a string is hashed as its UTF-8 bytes, as writeFileAtomic writes it). */
export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Checks a checkpoint directory's files (those in `only`, when given) against its checksum manifest; 'no checksum'
 *  for a checkpoint written before manifests were kept. Throws naming the file that does not match. */
export function verifyChecksums(dir: string, only?: readonly string[]): 'verified' | 'no checksum' {
  const manifest = join(dir, CHECKSUM_FILE);
  if (!existsSync(manifest)) return 'no checksum';
  const lines = readFileSync(manifest, 'utf8').split('\n').filter((line) => line.trim() !== '');
  if (!lines.length) throw new ChecksumError(`${CHECKSUM_FILE} is empty`);
  lines.forEach((line, i) => {
    const match = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (!match || match[2].includes('/') || match[2].includes('\\')) throw new ChecksumError(`${CHECKSUM_FILE} line ${i + 1} is not "<sha256>  <file>": ${JSON.stringify(line.slice(0, 120))}`);
    if (only && !only.includes(match[2])) return;
    const path = join(dir, match[2]);
    if (!existsSync(path)) throw new ChecksumError(`${match[2]} is missing (${CHECKSUM_FILE} lists it)`);
    if (sha256Hex(readFileSync(path)) !== match[1]) {
      throw new ChecksumError(`${match[2]} does not match its SHA-256 checksum in ${CHECKSUM_FILE} (the file changed after it was written: damaged or edited)`);
    }
  });
  return 'verified';
}

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

/** Loads a checkpoint directory written by saveCheckpoint (or a Hugging Face Llama/Qwen2 export in F32/F16/BF16),
 *  checking its files against the directory's checksums.sha256 when it has one. */
export function loadCheckpoint(dir: string): TransformerLM {
  const configPath = join(dir, 'config.json');
  const weightsPath = join(dir, 'model.safetensors');
  for (const path of [configPath, weightsPath]) {
    if (!existsSync(path)) throw new Error(`checkpoint ${dir}: missing ${path}`);
  }
  try {
    verifyChecksums(dir, ['config.json', 'model.safetensors']);
  } catch (err) {
    throw new Error(`checkpoint ${dir}: ${(err as Error).message}`);
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
