// Held-out evaluation: greedy accuracy and unbiased pass@k (Chen et al. 2021) on the task's test split.
import type { Task } from '../data/tasks.js';
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

/** pass@k = 1 − C(n−c, k)/C(n, k) for n samples of which c are correct. */
export function passAtK(n: number, c: number, k: number): number {
  if (n - c < k) return 1;
  let prod = 1;
  for (let i = n - c + 1; i <= n; i++) prod *= 1 - k / i;
  return 1 - prod;
}

export async function evaluate(model: TransformerLM, task: Task, o: EvalOptions): Promise<EvalResult> {
  const tok = task.tokenizer;
  const n = Math.min(o.problems, task.testSize);
  const problems = Array.from({ length: n }, (_, i) => task.problem('test', i));
  const prompts = problems.map((p) => tok.encode(p.prompt));
  const chunk = o.chunk ?? 256;
  const gen = { maxNewTokens: o.maxNewTokens, stopTokens: [tok.eosId], padId: tok.padId };
  const verdict = (i: number, ids: number[], truncated: boolean) =>
    !truncated && task.score(problems[i], tok.decode(ids.filter((t) => t !== tok.eosId))).correct;

  const greedy = await generateChunked(model, prompts, { ...gen, temperature: 0, seed: o.seed }, chunk);
  let correct = 0;
  let length = 0;
  let truncated = 0;
  greedy.tokens.forEach((ids, i) => {
    if (verdict(i, ids, greedy.truncated[i])) correct++;
    length += ids.length;
    if (greedy.truncated[i]) truncated++;
  });

  let passSum: number | null = null;
  if (o.samplesPerProblem > 0 && o.passK > 0) {
    const m = Math.max(o.samplesPerProblem, o.passK);
    const flat = prompts.flatMap((p) => Array.from({ length: m }, () => p));
    const sampled = await generateChunked(model, flat, { ...gen, temperature: o.temperature, seed: o.seed + 1 }, chunk);
    passSum = 0;
    for (let i = 0; i < n; i++) {
      let c = 0;
      for (let j = 0; j < m; j++) if (verdict(i, sampled.tokens[i * m + j], sampled.truncated[i * m + j])) c++;
      passSum += passAtK(m, c, o.passK);
    }
  }
  return {
    accuracy: n ? correct / n : 0,
    pass_at_k: passSum === null ? null : passSum / Math.max(n, 1),
    k: o.passK, n,
    response_length_mean: n ? length / n : 0,
    truncation_rate: n ? truncated / n : 0,
  };
}
