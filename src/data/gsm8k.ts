// GSM8K-style word problems from JSONL ({"question": "...", "answer": "... #### 42"}), as a Task whose checker
// compares the response's final number with the reference within a relative tolerance (gsm8kTask, for the library and
// character-level experiments), or as math records for MathTask (gsm8kMathRecords: the `--task gsm8k` path, answers
// checked as the DAPO reward does).
import { jsonlLines } from './datasets.js';
import type { MathRecord } from './math_task.js';
import { Rng, hashKey, hashUnit } from './random.js';
import type { Problem, ScoreResult, Split, Task } from './task.js';
import { CharTokenizer, type Tokenizer } from './tokenizer.js';

export interface Gsm8kRecord {
  question: string;
  /** The worked solution, ending in '#### <final>'. */
  answer: string;
  /** The number after the last '####', commas and '$' removed. */
  final: string;
}

const PLAIN_NUMBER = /^-?\d+(?:\.\d+)?$/;
/** Thousands groups must be exact (so a list "1,2,3" reads as three numbers); an optional '$' after the sign. */
const NUMBER_IN_TEXT = /(-?)\$?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?/g;
const MAX_LISTED_PROBLEMS = 20;

/** Parses JSONL; every bad line is reported at once as `source:line: problem`. Blank lines are skipped. */
export function parseGsm8kJsonl(text: string, source = '<input>'): Gsm8kRecord[] {
  const records: Gsm8kRecord[] = [];
  const problems: string[] = [];
  for (const { line, value, error } of jsonlLines(text)) {
    const where = `${source}:${line}`;
    if (error !== undefined) {
      problems.push(`${where}: invalid JSON (${error})`);
      continue;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      problems.push(`${where}: expected an object with "question" and "answer", got ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}`);
      continue;
    }
    const { question, answer } = value as Record<string, unknown>;
    const missing = [['question', question], ['answer', answer]].filter(([, v]) => typeof v !== 'string' || v.trim() === '').map(([k]) => k);
    if (missing.length) {
      problems.push(`${where}: ${missing.map((k) => `"${k}"`).join(' and ')} must be a non-empty string`);
      continue;
    }
    const marker = (answer as string).lastIndexOf('####');
    if (marker < 0) {
      problems.push(`${where}: the answer has no '#### <number>' final answer`);
      continue;
    }
    const raw = (answer as string).slice(marker + 4).trim();
    const final = raw.replace(/[,$]/g, '');
    if (!PLAIN_NUMBER.test(final)) {
      problems.push(`${where}: the final answer after '####' is not a number: ${JSON.stringify(raw)}`);
      continue;
    }
    records.push({ question: question as string, answer: answer as string, final });
  }
  if (problems.length) {
    const more = problems.length > MAX_LISTED_PROBLEMS ? `\n  ... and ${problems.length - MAX_LISTED_PROBLEMS} more` : '';
    throw new Error(`invalid GSM8K JSONL (${problems.length} bad line${problems.length > 1 ? 's' : ''}):\n  ${problems.slice(0, MAX_LISTED_PROBLEMS).join('\n  ')}${more}`);
  }
  return records;
}

function numbersIn(text: string): string[] {
  return [...text.matchAll(NUMBER_IN_TEXT)].map((m) => `${m[1]}${m[2].replace(/,/g, '')}${m[3] ?? ''}`);
}

/** The number after the last '####' if there is one, else the last number in the response; commas and '$' stripped. */
export function extractFinalNumber(response: string): string | null {
  const marker = response.lastIndexOf('####');
  if (marker >= 0) {
    const afterMarker = numbersIn(response.slice(marker + 4));
    if (afterMarker.length) return afterMarker[0];
  }
  const all = numbersIn(response);
  return all.length ? all[all.length - 1] : null;
}

function toNumber(text: string): number | null {
  const cleaned = text.trim().replace(/[,$]/g, '');
  if (cleaned === '') return null;
  const value = Number(cleaned);
  return Number.isFinite(value) ? value : null;
}

/** Numeric equality within a relative tolerance of 1e-6 ('3.0' equals '3', '1,000' equals '1000'). */
export function numericEqual(a: string, b: string): boolean {
  const x = toNumber(a);
  const y = toNumber(b);
  if (x === null || y === null) return false;
  return Math.abs(x - y) <= 1e-6 * Math.max(Math.abs(x), Math.abs(y));
}

export interface Gsm8kTaskOptions {
  /** Fraction of records (by a hash of the question, so duplicates share a side) held out for test; default 0.1. */
  testFraction?: number;
  /** Chooses the split and the train order; default 0. */
  seed?: number;
  /** Turns a question into the prompt; the solution follows it directly. */
  promptTemplate?: (question: string) => string;
}

export const DEFAULT_GSM8K_TEMPLATE = (question: string): string => `Question: ${question}\nAnswer: `;

/** A char tokenizer covering every character of the records' prompts and solutions. */
export function gsm8kTokenizer(records: readonly Gsm8kRecord[], promptTemplate = DEFAULT_GSM8K_TEMPLATE): CharTokenizer {
  return CharTokenizer.fromTexts(records.flatMap((r) => [promptTemplate(r.question), r.answer]));
}

class Gsm8kTask implements Task {
  readonly name = 'gsm8k';
  readonly description: string;
  readonly maxPromptLength: number;
  readonly maxResponseLength: number;
  readonly testSize: number;
  private readonly train: number[] = [];
  private readonly test: number[] = [];
  private cachedEpoch = -1;
  private epochOrder: number[] = [];

  constructor(private readonly records: readonly Gsm8kRecord[], readonly tokenizer: Tokenizer, private readonly seed: number,
    testFraction: number, private readonly template: (q: string) => string) {
    records.forEach((r, i) => (hashUnit('gsm8k-split', seed, r.question) < testFraction ? this.test : this.train).push(i));
    if (this.train.length === 0) throw new Error(`gsm8kTask: every one of ${records.length} records went to test; lower testFraction`);
    this.testSize = this.test.length;
    let maxPrompt = 0;
    let maxSolution = 0;
    records.forEach((r, i) => {
      try {
        maxPrompt = Math.max(maxPrompt, tokenizer.encode(template(r.question)).length);
        maxSolution = Math.max(maxSolution, tokenizer.encode(r.answer).length);
      } catch (e) {
        throw new Error(`gsm8kTask: record ${i} cannot be tokenized: ${(e as Error).message}`);
      }
    });
    this.maxPromptLength = maxPrompt;
    this.maxResponseLength = maxSolution + 1;
    this.description = `GSM8K-style word problems: ${this.train.length} train, ${this.testSize} test; the final number is checked`;
  }

  problem(split: Split, index: number): Problem {
    if (!Number.isInteger(index) || index < 0) throw new RangeError(`gsm8k: problem index must be an integer ≥ 0, got ${index}`);
    if (split === 'test') {
      if (index >= this.testSize) throw new RangeError(`gsm8k: test index ${index} is out of range (testSize ${this.testSize})`);
      return this.make(this.test[index]);
    }
    if (split !== 'train') throw new Error(`gsm8k: unknown split '${String(split)}' (allowed: train, test)`);
    // Train is unbounded: epoch after epoch over the train records, each epoch in its own seeded order.
    const epoch = Math.floor(index / this.train.length);
    if (epoch !== this.cachedEpoch) {
      this.epochOrder = shuffled(this.train, new Rng(hashKey('gsm8k-epoch', this.seed, epoch)));
      this.cachedEpoch = epoch;
    }
    return this.make(this.epochOrder[index % this.train.length]);
  }

  score(problem: Problem, response: string): ScoreResult {
    const extracted = extractFinalNumber(response);
    return { correct: extracted !== null && numericEqual(extracted, problem.answer), extracted };
  }

  private make(recordIndex: number): Problem {
    const record = this.records[recordIndex];
    return { id: `gsm8k:${recordIndex}`, prompt: this.template(record.question), answer: record.final, solution: record.answer };
  }
}

function shuffled<T>(items: readonly T[], rng: Rng): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

export function gsm8kTask(records: Gsm8kRecord[], tokenizer: Tokenizer, opts: Gsm8kTaskOptions = {}): Task {
  const { testFraction = 0.1, seed = 0, promptTemplate = DEFAULT_GSM8K_TEMPLATE } = opts;
  const problems: string[] = [];
  if (!Array.isArray(records) || records.length === 0) problems.push('records must be a non-empty array');
  if (typeof testFraction !== 'number' || !(testFraction >= 0 && testFraction < 1)) problems.push(`testFraction must be in [0, 1), got ${JSON.stringify(testFraction)}`);
  if (!Number.isInteger(seed) || seed < 0) problems.push(`seed must be an integer ≥ 0, got ${JSON.stringify(seed)}`);
  if (typeof promptTemplate !== 'function') problems.push('promptTemplate must be a function');
  if (problems.length) throw new Error(`gsm8kTask: ${problems.join('; ')}`);
  return new Gsm8kTask(records, tokenizer, seed, testFraction, promptTemplate);
}

/** Parsed GSM8K records as MathTask records: the question as prompt, the final number as reference, the worked
 *  solution ('… #### 72') as SFT target; `record` keeps the original question/answer for user rewards. */
export function gsm8kMathRecords(records: readonly Gsm8kRecord[], source = '<gsm8k>'): MathRecord[] {
  return records.map((r, i) => ({
    prompt: r.question, answer: r.final, solution: r.answer, record: { question: r.question, answer: r.answer }, where: `${source} record ${i}`,
  }));
}
