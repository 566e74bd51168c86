// Node adapter: reads a Hugging Face model directory's tokenizer files from disk into an HfTokenizer.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HF_TOKENIZER_FILE_NAMES, HfTokenizer, type HfTokenizerFiles, TokenizerFileError } from './tokenizer_hf.js';

async function readOptional(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** The tokenizer files of `dir` (tokenizer.json required; the others when present). */
export async function readHfTokenizerFiles(dir: string): Promise<HfTokenizerFiles> {
  const entries = await Promise.all(Object.entries(HF_TOKENIZER_FILE_NAMES).map(async ([field, name]) => [field, await readOptional(join(dir, name))] as const));
  const files = Object.fromEntries(entries) as Record<keyof HfTokenizerFiles, string | null>;
  if (files.tokenizer === null) {
    throw new TokenizerFileError(`${join(dir, 'tokenizer.json')} is missing: the model directory needs the tokenizer.json of the model ` +
      '(a repository with only a slow tokenizer, e.g. tokenizer.model or vocab.json + merges.txt, must be converted with transformers first)');
  }
  return { ...files, tokenizer: files.tokenizer };
}

/** Loads the tokenizer of a Hugging Face model directory. */
export async function loadHfTokenizer(dir: string): Promise<HfTokenizer> {
  return new HfTokenizer(await readHfTokenizerFiles(dir));
}
