// Held-out evaluation: greedy accuracy and unbiased pass@k (Chen et al. 2021) on the task's test split.
import type { Task } from '../data/tasks.js';
import { responseText } from '../data/tokenizer.js';
import type { TransformerLM } from '../nn/transformer.js';
import { generateChunked } from './rollout.js';

export interface EvalOptions {
  problems: number;
  passK: number;
  /** Samples per problem for pass@k (≥ k); 0 skips pass@k. */
  samplesPerProblem: number;
  temperature: number;
  maxNewTokens: number;
  seed: number;
  chunk?: number;
}

export interface EvalResult {
  accuracy: number;
  pass_at_k: number | null;
  k: number;
  n: number;
  response_length_mean: number;
  truncation_rate: number;
}

/** An accuracy (0–1) as a percentage with one decimal: 0.415 → '41.5%'. */
export function formatAccuracy(accuracy: number): string {
  return `${(100 * accuracy).toFixed(1)}%`;
}

/** The change between two accuracies (0–1) in percentage points, signed: 0.41, 0.72 → '+31.0 pts'. */
export function formatAccuracyGain(before: number, after: number): string {
  const points = 100 * (after - before);
  // Rounded first, so a change under 0.05 points reads '±0.0 pts', not '-0.0 pts'.
  const rounded = Number(points.toFixed(1));
  return `${rounded > 0 ? '+' : rounded < 0 ? '-' : '±'}${Math.abs(rounded).toFixed(1)} pts`;
}

/** pass@k = 1 − C(n−c, k)/C(n, k) for n samples of which c are correct. */
export function passAtK(n: number, c: number, k: number): number {
  if (n - c < k) return 1;
  let prod = 1;
  for (let i = n - c + 1; i <= n; i++) prod *= 1 - k / i;
  return 1 - prod;
}

export async function evaluate(model: TransformerLM, task: Task, options: EvalOptions): Promise<EvalResult> {
  const tokenizer = task.tokenizer;
  const n = Math.min(options.problems, task.testSize);
  const problems = Array.from({ length: n }, (_, i) => task.problem('test', i));
  const prompts = problems.map((problem) => tokenizer.encode(problem.prompt));
  const chunk = options.chunk ?? 256;
  const generation = { maxNewTokens: options.maxNewTokens, stopTokens: tokenizer.stopTokenIds, padId: tokenizer.padId };
  const verdict = (i: number, ids: number[], truncated: boolean) =>
    !truncated && task.score(problems[i], responseText(tokenizer, ids)).correct;

  const greedy = await generateChunked(model, prompts, { ...generation, temperature: 0, seed: options.seed }, chunk);
  let correct = 0;
  let length = 0;
  let truncated = 0;
  greedy.tokens.forEach((ids, i) => {
    if (verdict(i, ids, greedy.truncated[i])) correct++;
    length += ids.length;
    if (greedy.truncated[i]) truncated++;
  });

  let passSum: number | null = null;
  if (options.samplesPerProblem > 0 && options.passK > 0) {
    const samples = Math.max(options.samplesPerProblem, options.passK);
    const flat = prompts.flatMap((prompt) => Array.from({ length: samples }, () => prompt));
    const sampled = await generateChunked(model, flat, { ...generation, temperature: options.temperature, seed: options.seed + 1 }, chunk);
    passSum = 0;
    for (let i = 0; i < n; i++) {
      let correctSamples = 0;
      for (let j = 0; j < samples; j++) if (verdict(i, sampled.tokens[i * samples + j], sampled.truncated[i * samples + j])) correctSamples++;
      passSum += passAtK(samples, correctSamples, options.passK);
    }
  }
  return {
    accuracy: n ? correct / n : 0,
    pass_at_k: passSum === null ? null : passSum / Math.max(n, 1),
    k: options.passK, n,
    response_length_mean: n ? length / n : 0,
    truncation_rate: n ? truncated / n : 0,
  };
}
