// The Task contract shared by the trainer and every data source, and the machinery that turns a seeded
// problem generator into a task with a held-out test split disjoint from train.
import { Rng, hashKey, hashUnit } from './random.js';
import { TASK_TOKENIZER, type Tokenizer, tokenBound } from './tokenizer.js';

export interface Problem {
  id: string;
  /** Model input; it ends where the response starts. */
  prompt: string;
  /** The reference final answer. */
  answer: string;
  /** Full SFT target response (scratchpad + final answer), without EOS. */
  solution: string;
  /** The dataset record a dataset task's problem came from (handed to user reward functions); absent for built-in tasks. */
  record?: Readonly<Record<string, unknown>>;
}

export interface ScoreResult {
  correct: boolean;
  /** The answer the checker read from the response; null when it found none. */
  extracted: string | null;
}

export type Split = 'train' | 'test';

export interface Task {
  readonly name: string;
  readonly description: string;
  readonly tokenizer: Tokenizer;
  /** Tokens. */
  readonly maxPromptLength: number;
  /** Suggested L_max (tokens, incl. EOS) for the default config. */
  readonly maxResponseLength: number;
  /** Size of the held-out split. */
  readonly testSize: number;
  /** Problem `index` of a split, deterministic from (task config, seed, split, index). train is unbounded (any index ≥ 0). */
  problem(split: Split, index: number): Problem;
  /** Verifies a decoded response (text before EOS). Only the final answer counts; a malformed response is wrong. */
  score(problem: Problem, response: string): ScoreResult;
  /** A reward that replaces the +1/−1 of `score` in training (a user reward function; float values allowed, validated
   *  finite by whoever supplies it). Absent: the reward is +1 when `score` says correct, −1 otherwise. */
  reward?(problem: Problem, response: string): number | Promise<number>;
}

export interface TaskConfig {
  name: string;
  seed?: number;
  [knob: string]: unknown;
}

/** Separates a built-in task's scratchpad from its final answer: `scratchpad>answer`. */
export const ANSWER_MARKER = '>';

/** The text after the one answer marker, or null when the response has none or several (malformed). */
export function markedAnswer(response: string): string | null {
  const at = response.indexOf(ANSWER_MARKER);
  if (at < 0 || response.indexOf(ANSWER_MARKER, at + 1) >= 0) return null;
  return response.slice(at + 1);
}

/** Scores `scratchpad>answer` responses whose answer must equal the reference string exactly. */
export function scoreExactAnswer(problem: Problem, response: string): ScoreResult {
  const extracted = markedAnswer(response);
  return { correct: extracted !== null && extracted === problem.answer, extracted };
}

/** One generated problem before it is placed in a split. */
/**
 * The held-out problem `index` of a task's test split, or null for a valid train index; throws for a bad index or
 * split. Every task shares these rules: indices are integers ≥ 0, test indices stay below the test size.
 */
export function heldOutProblem<P>(task: string, split: Split, index: number, testProblems: readonly P[]): P | null {
  if (!Number.isInteger(index) || index < 0) throw new RangeError(`${task}: problem index must be an integer ≥ 0, got ${index}`);
  if (split === 'test') {
    if (index >= testProblems.length) throw new RangeError(`${task}: test index ${index} is out of range (testSize ${testProblems.length})`);
    return testProblems[index];
  }
  if (split !== 'train') throw new Error(`${task}: unknown split '${String(split)}' (allowed: train, test)`);
  return null;
}

export interface Candidate {
  prompt: string;
  answer: string;
  solution: string;
}

/** What a built-in task supplies: a seeded sampler, a canonical form (for the split) and a checker. */
export interface ProblemGenerator {
  readonly description: string;
  /** Upper bounds over every problem the generator can produce, in characters (the task counts them in tokens). */
  readonly maxPromptChars: number;
  readonly maxSolutionChars: number;
  /** Every character its problems can contain; default the built-in tasks' alphabet (TASK_TOKENIZER's). */
  readonly alphabet?: string;
  sample(rng: Rng): Candidate;
  /** Problems with equal canonical forms (e.g. a+b and b+a) always land in the same split. */
  canonical(prompt: string): string;
  score(problem: Problem, response: string): ScoreResult;
}

export interface GeneratedTaskOptions {
  name: string;
  seed: number;
  testSize: number;
  /** Fraction of canonical forms (by hash) reserved for the test split. */
  holdoutFraction: number;
  /** Identifies the difficulty knobs, so different settings draw different train/test streams. */
  knobsKey: string;
  /** Response budget beyond the longest solution + EOS, so a looping response runs into L_max. */
  responseSlack: number;
  tokenizer: Tokenizer;
}

const MAX_TRAIN_ATTEMPTS = 10_000;

export class GeneratedTask implements Task {
  readonly name: string;
  readonly description: string;
  readonly tokenizer: Tokenizer;
  readonly maxPromptLength: number;
  readonly maxResponseLength: number;
  readonly testSize: number;
  private readonly testProblems: readonly Problem[];

  constructor(private readonly generator: ProblemGenerator, private readonly opts: GeneratedTaskOptions) {
    this.name = opts.name;
    this.description = generator.description;
    this.tokenizer = opts.tokenizer;
    // Character bounds become token bounds through the tokenizer (the same numbers for a character tokenizer).
    const alphabet = generator.alphabet ?? TASK_TOKENIZER.alphabet;
    this.maxPromptLength = tokenBound(this.tokenizer, generator.maxPromptChars, alphabet);
    this.maxResponseLength = tokenBound(this.tokenizer, generator.maxSolutionChars, alphabet) + 1 + opts.responseSlack;
    this.testSize = opts.testSize;
    this.testProblems = this.buildTestSplit();
  }

  /** The split-deciding form of a problem (exposed for tests and dataset tools). */
  canonical(problem: Problem): string {
    return this.generator.canonical(problem.prompt);
  }

  isHeldOut(canonical: string): boolean {
    return hashUnit('holdout', this.opts.name, this.opts.seed, canonical) < this.opts.holdoutFraction;
  }

  problem(split: Split, index: number): Problem {
    const heldOut = heldOutProblem(this.name, split, index, this.testProblems);
    if (heldOut) return heldOut;
    // Each train index has its own stream; candidates from the held-out set are skipped by redrawing.
    const rng = new Rng(hashKey('train', this.opts.name, this.opts.seed, this.opts.knobsKey, index));
    for (let attempt = 0; attempt < MAX_TRAIN_ATTEMPTS; attempt++) {
      const candidate = this.generator.sample(rng);
      if (!this.isHeldOut(this.generator.canonical(candidate.prompt))) return this.finish(candidate, 'train', index);
    }
    throw new Error(`${this.name}: no train problem outside the held-out set after ${MAX_TRAIN_ATTEMPTS} draws; lower holdoutFraction`);
  }

  score(problem: Problem, response: string): ScoreResult {
    return this.generator.score(problem, response);
  }

  private finish(candidate: Candidate, split: Split, index: number): Problem {
    return Object.freeze({ id: `${this.name}:${split}:${index}`, prompt: candidate.prompt, answer: candidate.answer, solution: candidate.solution });
  }

  /** testSize distinct held-out problems, drawn in order from one stream. */
  private buildTestSplit(): Problem[] {
    const { testSize, holdoutFraction } = this.opts;
    const rng = new Rng(hashKey('test', this.opts.name, this.opts.seed, this.opts.knobsKey));
    const seen = new Set<string>();
    const problems: Problem[] = [];
    const maxDraws = Math.max(10_000, Math.ceil((50 * testSize) / holdoutFraction));
    for (let draw = 0; problems.length < testSize; draw++) {
      if (draw >= maxDraws) {
        throw new Error(`${this.name}: found only ${problems.length} distinct held-out problems of testSize ${testSize} in ${maxDraws} draws ` +
          '(the problem space is too small): widen the difficulty ranges, lower testSize or raise holdoutFraction');
      }
      const candidate = this.generator.sample(rng);
      const key = this.generator.canonical(candidate.prompt);
      if (seen.has(key) || !this.isHeldOut(key)) continue;
      seen.add(key);
      problems.push(this.finish(candidate, 'test', problems.length));
    }
    return problems;
  }
}
