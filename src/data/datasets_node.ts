// Node adapter: reads dataset files for the platform-neutral loaders (datasets.ts) and builds a dataset task from
// its resolved config (`dapo train --task gsm8k --set task.path=train.jsonl`).
import { existsSync, readFileSync } from 'node:fs';
import { type DatasetFormat, type DatasetRow, DatasetError, datasetFormat, parseDataset } from './datasets.js';
import { type MathTask, type MathTaskConfig, type MathTaskOptions, mathTaskFromRows, needsTokenizerError } from './math_task.js';
import type { Tokenizer } from './tokenizer.js';

/** The records of a .jsonl, .json or .parquet file. */
export async function readDatasetFile(path: string, format: DatasetFormat | 'auto' = 'auto'): Promise<DatasetRow[]> {
  const resolvedFormat = datasetFormat(path, format);
  if (!existsSync(path)) throw new DatasetError(path, ['the file does not exist']);
  return parseDataset(new Uint8Array(readFileSync(path)), path, resolvedFormat);
}

/** A dataset task (gsm8k, math) from its resolved `task` config: reads task.path (and task.testPath). Without a
 *  tokenizer (the built-in character policy) it fails before reading anything, saying what is needed. */
export async function loadDatasetTask(config: MathTaskConfig, options: Pick<MathTaskOptions, 'renderChat'> & { tokenizer?: Tokenizer }): Promise<MathTask> {
  if (!options.tokenizer) throw needsTokenizerError(config.name);
  if (!config.path) throw new Error(`task.path: the ${config.name} task needs a dataset file`);
  const rows = await readDatasetFile(config.path, config.format);
  const testRows = config.testPath ? await readDatasetFile(config.testPath, config.format) : null;
  return mathTaskFromRows(config, rows, testRows, options);
}
