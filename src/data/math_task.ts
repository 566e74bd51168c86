// Math word problems from a dataset file as a Task (`--task math`, `--task gsm8k`): a field mapping turns records
// into question / reference answer / worked solution; prompts exist as plain text and as chat messages (which a
// tokenizer's chat template renders); responses are checked as the DAPO paper's rule-based reward does (the final
// answer — last \boxed{…}, '#### n' or "the answer is n" — equal to the reference after normalisation: +1, else −1).
import { type DatasetMessage, type DatasetFormat, DATASET_FORMATS, DatasetError, type DatasetRow, promptField, splitByHash, stringField } from './datasets.js';
import { answersMatch, extractAnswer, referenceAnswer } from './math_answer.js';
import { Rng, hashKey } from './random.js';
import { type Problem, type ScoreResult, type Split, type Task, heldOutProblem } from './task.js';
import type { Tokenizer } from './tokenizer.js';

/** The tasks that read their problems from a dataset file (task.path). */
export const DATASET_TASK_NAMES = ['gsm8k', 'math'] as const;
export type DatasetTaskName = (typeof DATASET_TASK_NAMES)[number];

export function isDatasetTask(name: unknown): name is DatasetTaskName {
  return (DATASET_TASK_NAMES as readonly unknown[]).includes(name);
}

/** The `task` section of a dataset task (every key, as `dapo train --print-config` shows it). */
export interface MathTaskConfig {
  name: DatasetTaskName;
  /** The training records: .jsonl, .json or .parquet. */
  path: string | null;
  /** Held-out records; null: hold out testFraction of `path` (by a seeded hash of the prompt). */
  testPath: string | null;
  format: 'auto' | DatasetFormat;
  /** Dotted path of the question: a string, or chat messages [{role, content}] used as they are. */
  promptField: string;
  /** Dotted path of the reference answer: a bare answer, a GSM8K answer ('… #### 72') or a solution with \boxed{…}. */
  answerField: string;
  /** Dotted path of a worked solution (the SFT target); null: the target is "The answer is \boxed{answer}." */
  solutionField: string | null;
  /** Turns a string question into the user message; must contain {question}. Not applied to chat-message prompts. */
  template: string;
  /** A system message put before the user message (null: none). */
  systemPrompt: string | null;
  testFraction: number;
  /** Chooses the split (without testPath) and the order of training records. */
  seed: number;
}

/** The instruction Qwen2.5(-Math) instruct models follow for math: reason, then the answer in \boxed{}. */
export const DEFAULT_MATH_TEMPLATE = '{question}\nPlease reason step by step, and put your final answer within \\boxed{}.';

function datasetTaskDefaults(name: DatasetTaskName, fields: Pick<MathTaskConfig, 'promptField' | 'answerField' | 'solutionField'>): MathTaskConfig {
  return { name, path: null, testPath: null, format: 'auto', ...fields, template: DEFAULT_MATH_TEMPLATE, systemPrompt: null, testFraction: 0.1, seed: 0 };
}

/** Field defaults: GSM8K's JSONL/Parquet columns, and verl's math layout (DAPO-Math-17k) for `math`. */
export const MATH_TASK_DEFAULTS: Record<DatasetTaskName, MathTaskConfig> = {
  gsm8k: datasetTaskDefaults('gsm8k', { promptField: 'question', answerField: 'answer', solutionField: 'answer' }),
  math: datasetTaskDefaults('math', { promptField: 'prompt', answerField: 'reward_model.ground_truth', solutionField: null }),
};

const FIELD_PATH = /^[^.\s]+(\.[^.\s]+)*$/;

/** The problem with each value of a dataset task's config (keys already known), as `task.key: …` lines. */
export function mathTaskConfigProblems(config: MathTaskConfig): string[] {
  const problems: string[] = [];
  const text = (value: unknown) => typeof value === 'string' && value.trim() !== '';
  const quoted = (value: unknown) => JSON.stringify(value) ?? String(value);
  if (!text(config.path)) problems.push(`task.path: the ${config.name} task reads its problems from a dataset file (.jsonl, .json or .parquet); set it, e.g. --set task.path=train.jsonl (got ${quoted(config.path)})`);
  if (config.testPath !== null && !text(config.testPath)) problems.push(`task.testPath: must be a dataset file path or null, got ${quoted(config.testPath)}`);
  if (!['auto', ...DATASET_FORMATS].includes(config.format as string)) problems.push(`task.format: must be one of 'auto', ${DATASET_FORMATS.map((f) => `'${f}'`).join(', ')}, got ${quoted(config.format)}`);
  for (const key of ['promptField', 'answerField'] as const) {
    if (typeof config[key] !== 'string' || !FIELD_PATH.test(config[key])) problems.push(`task.${key}: must be a field name or dotted path (e.g. reward_model.ground_truth), got ${quoted(config[key])}`);
  }
  if (config.solutionField !== null && (typeof config.solutionField !== 'string' || !FIELD_PATH.test(config.solutionField))) {
    problems.push(`task.solutionField: must be a field name, a dotted path or null, got ${quoted(config.solutionField)}`);
  }
  if (typeof config.template !== 'string' || !config.template.includes('{question}')) problems.push(`task.template: must be a string containing {question}, got ${quoted(config.template)}`);
  if (config.systemPrompt !== null && typeof config.systemPrompt !== 'string') problems.push(`task.systemPrompt: must be a string or null, got ${quoted(config.systemPrompt)}`);
  if (typeof config.testFraction !== 'number' || !(config.testFraction >= 0 && config.testFraction < 1)) problems.push(`task.testFraction: must be a number in [0, 1), got ${quoted(config.testFraction)}`);
  if (!Number.isInteger(config.seed) || config.seed < 0 || config.seed > 0xffffffff) problems.push(`task.seed: must be an integer ≥ 0 and ≤ 4294967295, got ${quoted(config.seed)}`);
  return problems;
}

/** One math problem of a dataset. */
export interface MathRecord {
  /** The question, or chat messages that already hold the instruction. */
  prompt: string | readonly DatasetMessage[];
  /** The reference final answer. */
  answer: string;
  /** The SFT target. */
  solution: string;
  /** The dataset row (handed to user rewards). */
  record: Readonly<Record<string, unknown>>;
  /** file:line or file row N. */
  where: string;
}

export interface MathFields {
  promptField: string;
  answerField: string;
  solutionField?: string | null;
}

/** Records through the field mapping; every bad row is listed at once (file, line/row, field, the keys it has). */
export function mathRecordsFromRows(rows: readonly DatasetRow[], fields: MathFields, source: string): MathRecord[] {
  const problems: string[] = [];
  const records: MathRecord[] = [];
  for (const row of rows) {
    const before = problems.length;
    const prompt = promptField(row, fields.promptField, 'task.promptField', problems);
    const answerText = stringField(row, fields.answerField, 'answer', 'task.answerField', problems, true);
    const solution = fields.solutionField ? stringField(row, fields.solutionField, 'solution', 'task.solutionField', problems) : undefined;
    if (problems.length > before || prompt === undefined || answerText === undefined) continue;
    const answer = referenceAnswer(answerText);
    if (answer === '') {
      problems.push(`${row.where}: the answer field '${fields.answerField}' has no final answer (${JSON.stringify(answerText.slice(-60))})`);
      continue;
    }
    records.push({ prompt, answer, solution: solution ?? `The answer is \\boxed{${answer}}.`, record: row.record, where: row.where });
  }
  if (problems.length) throw new DatasetError(source, problems);
  return records;
}

/** A problem of a math task: its chat messages (for the model's chat template) come with it. */
export interface MathProblem extends Problem {
  messages: DatasetMessage[];
  record: Readonly<Record<string, unknown>>;
}

export interface MathTaskOptions {
  /** The policy's tokenizer (a pretrained model's: the character tokenizer cannot spell word problems). */
  tokenizer: Tokenizer;
  name?: string;
  /** Held-out records; absent: testFraction of `records` is held out by a seeded hash of the prompt. */
  testRecords?: readonly MathRecord[];
  testFraction?: number;
  seed?: number;
  template?: string;
  systemPrompt?: string | null;
  /** Renders a problem's chat messages into the prompt text (a tokenizer's chat template with the generation prompt);
   *  absent: the plain-text form (message contents separated by blank lines, then a newline). */
  renderChat?: (messages: readonly DatasetMessage[]) => string;
}

/** The chat messages of a record: a string question goes through the template (after the system prompt, if any);
 *  chat-message prompts are used as they are (a system prompt is added only when they have none). */
export function mathMessages(prompt: MathRecord['prompt'], template = DEFAULT_MATH_TEMPLATE, systemPrompt: string | null = null): DatasetMessage[] {
  const system: DatasetMessage[] = systemPrompt ? [{ role: 'system', content: systemPrompt }] : [];
  if (typeof prompt === 'string') return [...system, { role: 'user', content: template.split('{question}').join(prompt) }];
  const messages = prompt.map((message) => ({ ...message }));
  return messages.some((message) => message.role === 'system') ? messages : [...system, ...messages];
}

/** The plain-text prompt of chat messages, for a model without a chat template. */
export function plainPrompt(messages: readonly DatasetMessage[]): string {
  return `${messages.map((message) => message.content).join('\n\n')}\n`;
}

/** The error when a real-text task meets a policy without its own tokenizer (the built-in character model). */
export function needsTokenizerError(taskName: string): Error {
  return new Error(`task '${taskName}' is natural-language text, which the built-in character-level policy cannot read ` +
    '(its tokenizer knows only digits and arithmetic symbols): train a pretrained model that brings its tokenizer ' +
    '(dapo train --model DIR), or, in the library, give mathTask() the tokenizer of your model');
}

export class MathTask implements Task {
  readonly name: string;
  readonly description: string;
  readonly tokenizer: Tokenizer;
  readonly maxPromptLength: number;
  readonly maxResponseLength: number;
  readonly testSize: number;
  private readonly trainProblems: MathProblem[];
  private readonly testProblems: MathProblem[];
  private cachedEpoch = -1;
  private epochOrder: number[] = [];

  constructor(train: readonly MathRecord[], test: readonly MathRecord[], private readonly options: MathTaskOptions & { seed: number }) {
    this.name = options.name ?? 'math';
    this.tokenizer = options.tokenizer;
    if (train.length === 0) throw new Error(`${this.name}: no training records (every record went to the test split; lower testFraction)`);
    this.trainProblems = train.map((record, i) => this.problemOf(record, `${this.name}:train:${i}`));
    this.testProblems = test.map((record, i) => this.problemOf(record, `${this.name}:test:${i}`));
    this.testSize = test.length;
    let maxPrompt = 0;
    let maxSolution = 0;
    [...train, ...test].forEach((record, i) => {
      const problem = i < train.length ? this.trainProblems[i] : this.testProblems[i - train.length];
      try {
        maxPrompt = Math.max(maxPrompt, this.tokenizer.encode(problem.prompt).length);
        maxSolution = Math.max(maxSolution, this.tokenizer.encode(problem.solution).length);
      } catch (err) {
        throw new Error(`${this.name}: ${record.where} cannot be tokenized (${(err as Error).message}); word problems need the tokenizer of a pretrained model`);
      }
    });
    this.maxPromptLength = maxPrompt;
    this.maxResponseLength = maxSolution + 1;
    this.description = `${this.name} problems from a dataset: ${train.length} train, ${test.length} test; the final answer (\\boxed{…}, '####' or "the answer is") is checked`;
  }

  problem(split: Split, index: number): MathProblem {
    const heldOut = heldOutProblem(this.name, split, index, this.testProblems);
    if (heldOut) return heldOut;
    // Train is unbounded: epoch after epoch, each in its own seeded order.
    const epoch = Math.floor(index / this.trainProblems.length);
    if (epoch !== this.cachedEpoch) {
      this.epochOrder = shuffledIndices(this.trainProblems.length, new Rng(hashKey('math-epoch', this.name, this.options.seed, epoch)));
      this.cachedEpoch = epoch;
    }
    return this.trainProblems[this.epochOrder[index % this.trainProblems.length]];
  }

  score(problem: Problem, response: string): ScoreResult {
    const extracted = extractAnswer(response);
    return { correct: extracted !== null && answersMatch(extracted.text, problem.answer), extracted: extracted?.text ?? null };
  }

  private problemOf(record: MathRecord, id: string): MathProblem {
    const messages = mathMessages(record.prompt, this.options.template, this.options.systemPrompt ?? null);
    const prompt = this.options.renderChat ? this.options.renderChat(messages) : plainPrompt(messages);
    return { id, prompt, answer: record.answer, solution: record.solution, messages, record: record.record };
  }
}

function shuffledIndices(n: number, rng: Rng): number[] {
  const out = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** A math task over records; without testRecords, testFraction of them (by a seeded hash of the prompt) is held out. */
export function mathTask(records: readonly MathRecord[], options: MathTaskOptions): MathTask {
  const { testFraction = 0.1, seed = 0, template = DEFAULT_MATH_TEMPLATE } = options;
  const problems: string[] = [];
  if (!options.tokenizer) throw needsTokenizerError(options.name ?? 'math');
  if (!Array.isArray(records) || records.length === 0) problems.push('records must be a non-empty array');
  if (typeof testFraction !== 'number' || !(testFraction >= 0 && testFraction < 1)) problems.push(`testFraction must be in [0, 1), got ${JSON.stringify(testFraction)}`);
  if (!Number.isInteger(seed) || seed < 0) problems.push(`seed must be an integer ≥ 0, got ${JSON.stringify(seed)}`);
  if (typeof template !== 'string' || !template.includes('{question}')) problems.push(`template must contain {question}, got ${JSON.stringify(template)}`);
  if (problems.length) throw new Error(`mathTask: ${problems.join('; ')}`);
  const opts = { ...options, seed, template };
  if (options.testRecords) return new MathTask(records, options.testRecords, opts);
  const key = (record: MathRecord) => (typeof record.prompt === 'string' ? record.prompt : JSON.stringify(record.prompt));
  const { train, test } = splitByHash(records, key, seed, testFraction);
  return new MathTask(train, test, opts);
}

/** A dataset task from its resolved config and the rows of its files (read by the caller: datasets_node.ts in Node). */
export function mathTaskFromRows(config: MathTaskConfig, rows: readonly DatasetRow[], testRows: readonly DatasetRow[] | null,
  options: Pick<MathTaskOptions, 'renderChat'> & { tokenizer?: Tokenizer }): MathTask {
  if (!options.tokenizer) throw needsTokenizerError(config.name);
  const fields = { promptField: config.promptField, answerField: config.answerField, solutionField: config.solutionField };
  const records = mathRecordsFromRows(rows, fields, config.path ?? '<records>');
  const testRecords = testRows ? mathRecordsFromRows(testRows, fields, config.testPath ?? '<test records>') : undefined;
  return mathTask(records, {
    tokenizer: options.tokenizer, name: config.name, testRecords, testFraction: config.testFraction, seed: config.seed,
    template: config.template, systemPrompt: config.systemPrompt, renderChat: options.renderChat,
  });
}
