// Dataset files as Hugging Face / TRL / verl users keep them: JSONL (one object a line), a JSON array, or Parquet
// (verl's layout: `prompt` as chat messages, `reward_model.ground_truth`); records read from bytes or text, so the
// same code serves Node (datasets_node.ts reads the file) and a page (a File's bytes). Fields are addressed by dotted
// paths; every problem names the file, the line or row and the field.
import type { ChatMessage } from './chat_template.js';
import { parquetReadObjects } from 'hyparquet';
import { hashUnit } from './random.js';

export type DatasetRecord = Record<string, unknown>;

export interface DatasetRow {
  record: DatasetRecord;
  /** Where the record came from, for messages: `file:LINE` (JSONL, 1-based) or `file row N` (JSON / Parquet, 0-based
   *  as `dataset[N]` counts). */
  where: string;
}

export const DATASET_FORMATS = ['jsonl', 'json', 'parquet'] as const;
export type DatasetFormat = (typeof DATASET_FORMATS)[number];

/** One message of a chat-format prompt (TRL's conversational datasets, verl's `prompt` column). */
/** A chat message as datasets hold it (text content only), ready for the tokenizer's chat template. */
export type DatasetMessage = ChatMessage & { content: string };

/** Problems with one dataset, listed together (at most MAX_LISTED, then a count). */
export class DatasetError extends Error {
  constructor(readonly source: string, readonly problems: readonly string[]) {
    const shown = problems.slice(0, MAX_LISTED);
    const more = problems.length > MAX_LISTED ? `\n  ... and ${problems.length - MAX_LISTED} more` : '';
    super(`dataset ${source}: ${problems.length === 1 ? shown[0] : `${problems.length} problems:\n  ${shown.join('\n  ')}${more}`}`);
    this.name = 'DatasetError';
  }
}

const MAX_LISTED = 20;

/** The format a file name implies (`.jsonl`/`.ndjson`, `.json`, `.parquet`), or the one given explicitly. */
export function datasetFormat(name: string, format: DatasetFormat | 'auto' = 'auto'): DatasetFormat {
  if (format !== 'auto') {
    if (!(DATASET_FORMATS as readonly string[]).includes(format)) throw new DatasetError(name, [`unknown format ${JSON.stringify(format)} (allowed: auto, ${DATASET_FORMATS.join(', ')})`]);
    return format;
  }
  const lower = name.toLowerCase();
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson')) return 'jsonl';
  if (lower.endsWith('.json')) return 'json';
  if (lower.endsWith('.parquet')) return 'parquet';
  throw new DatasetError(name, ['cannot tell the format from the file name (expected .jsonl, .json or .parquet); set the format explicitly']);
}

function isRecord(value: unknown): value is DatasetRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : JSON.stringify(value);
}

/** One non-blank line of a JSONL text: its 1-based number and either its parsed value or its JSON error. */
export type JsonlLine = { line: number; value: unknown; error?: undefined } | { line: number; value?: undefined; error: string };

/** The non-blank lines of a JSONL text (a leading BOM dropped), each parsed on its own so every bad line is seen. */
export function jsonlLines(text: string): JsonlLine[] {
  const lines: JsonlLine[] = [];
  text.replace(/^\uFEFF/, '').split(/\r?\n/).forEach((content, i) => {
    if (content.trim() === '') return;
    try {
      lines.push({ line: i + 1, value: JSON.parse(content) });
    } catch (err) {
      lines.push({ line: i + 1, error: (err as Error).message });
    }
  });
  return lines;
}

/** JSONL records; blank lines are skipped, every bad line is reported at once. */
export function parseJsonlRecords(text: string, source = '<input>'): DatasetRow[] {
  const rows: DatasetRow[] = [];
  const problems: string[] = [];
  for (const { line, value, error } of jsonlLines(text)) {
    if (error !== undefined) problems.push(`line ${line}: invalid JSON (${error})`);
    else if (!isRecord(value)) problems.push(`line ${line}: expected a JSON object, got ${describe(value)}`);
    else rows.push({ record: value, where: `${source}:${line}` });
  }
  if (problems.length) throw new DatasetError(source, problems);
  if (rows.length === 0) throw new DatasetError(source, ['no records (the file is empty)']);
  return rows;
}

/** A JSON array of records (`Dataset.to_json(lines=False)`). */
export function parseJsonRecords(text: string, source = '<input>'): DatasetRow[] {
  let value: unknown;
  try {
    value = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new DatasetError(source, [`invalid JSON (${(err as Error).message}); JSON Lines files should end in .jsonl`]);
  }
  if (!Array.isArray(value)) throw new DatasetError(source, [`expected a JSON array of records, got ${describe(value)}`]);
  const problems = value.flatMap((item, i) => (isRecord(item) ? [] : [`row ${i}: expected an object, got ${describe(item)}`]));
  if (problems.length) throw new DatasetError(source, problems);
  if (value.length === 0) throw new DatasetError(source, ['no records (the array is empty)']);
  return value.map((record, i) => ({ record: record as DatasetRecord, where: `${source} row ${i}` }));
}

/** Parquet INT64 columns arrive as bigint: a safe integer becomes a number, a larger one its decimal string (JSON-safe). */
function plainValue(value: unknown): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (Array.isArray(value)) return value.map(plainValue);
  if (isRecord(value) && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, plainValue(item)]));
  }
  return value;
}

/** Parquet records (uncompressed or Snappy, as Hugging Face datasets write them); nested columns (lists, structs)
 *  become arrays and objects. */
export async function parseParquetRecords(bytes: Uint8Array | ArrayBuffer, source = '<input>'): Promise<DatasetRow[]> {
  const buffer = bytes instanceof ArrayBuffer ? bytes : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let rows: Record<string, unknown>[];
  try {
    rows = await parquetReadObjects({ file: buffer });
  } catch (err) {
    throw new DatasetError(source, [`cannot read Parquet (${(err as Error).message})`]);
  }
  if (rows.length === 0) throw new DatasetError(source, ['no records (the table has no rows)']);
  return rows.map((record, i) => ({ record: plainValue(record) as DatasetRecord, where: `${source} row ${i}` }));
}

/** The records of a file's bytes in the given format. */
export async function parseDataset(bytes: Uint8Array, source: string, format: DatasetFormat): Promise<DatasetRow[]> {
  if (format === 'parquet') return parseParquetRecords(bytes, source);
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  return format === 'jsonl' ? parseJsonlRecords(text, source) : parseJsonRecords(text, source);
}

/** The value at a dotted path (`reward_model.ground_truth`; a numeric part indexes an array: `prompt.0.content`);
 *  undefined when any step is missing. */
export function fieldAt(record: DatasetRecord, path: string): unknown {
  let value: unknown = record;
  for (const part of path.split('.')) {
    if (Array.isArray(value) && /^\d+$/.test(part)) value = value[Number(part)];
    else if (isRecord(value) && Object.hasOwn(value, part)) value = value[part];
    else return undefined;
  }
  return value;
}

/** Why a field is missing: the deepest existing object along the path and the keys it has. */
function missingFieldProblem(row: DatasetRow, path: string, role: string, setting: string): string {
  const parts = path.split('.');
  let value: unknown = row.record;
  let reached = 0;
  while (reached < parts.length && isRecord(value) && Object.hasOwn(value, parts[reached])) value = value[parts[reached++]];
  const at = reached === 0 ? 'the record' : `'${parts.slice(0, reached).join('.')}'`;
  const has = isRecord(value) ? `${at} has ${Object.keys(value).map((key) => `'${key}'`).join(', ') || 'no keys'}` : `${at} is ${describe(value)}`;
  return `${row.where}: no ${role} field '${path}' (${has}); set ${setting} to the field that holds it`;
}

/** A non-empty string field (with `numbers`, a finite number too, as its decimal text: a numeric answer column), or
 *  a problem naming the row, the field and the setting that chooses it. */
export function stringField(row: DatasetRow, path: string, role: string, setting: string, problems: string[], numbers = false): string | undefined {
  const value = fieldAt(row.record, path);
  if (value === undefined || value === null) {
    problems.push(missingFieldProblem(row, path, role, setting));
    return undefined;
  }
  if (numbers && typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value !== 'string' || value.trim() === '') {
    problems.push(`${row.where}: the ${role} field '${path}' must be a non-empty string, got ${describe(value)}`);
    return undefined;
  }
  return value;
}

/** A prompt field: a string, or chat messages ([{role, content}, …]) as TRL and verl store them. */
export function promptField(row: DatasetRow, path: string, setting: string, problems: string[]): string | DatasetMessage[] | undefined {
  const value = fieldAt(row.record, path);
  if (!Array.isArray(value)) return stringField(row, path, 'prompt', setting, problems);
  const bad = value.findIndex((message) => !isRecord(message) || typeof message.role !== 'string' || typeof message.content !== 'string');
  if (value.length === 0 || bad >= 0) {
    problems.push(`${row.where}: the prompt field '${path}' must be a string or a non-empty array of {role, content} messages` +
      (bad >= 0 ? ` (message ${bad} is ${describe(value[bad])})` : ' (it is empty)'));
    return undefined;
  }
  return value.map((message) => ({ role: message.role as string, content: message.content as string }));
}

/** A deterministic train/test split: an item goes to test when the seeded hash of its key falls below testFraction,
 *  so duplicates share a side and the split does not depend on the file's order. */
export function splitByHash<T>(items: readonly T[], key: (item: T) => string, seed: number, testFraction: number): { train: T[]; test: T[] } {
  const train: T[] = [];
  const test: T[] = [];
  for (const item of items) (hashUnit('dataset-split', seed, key(item)) < testFraction ? test : train).push(item);
  return { train, test };
}
