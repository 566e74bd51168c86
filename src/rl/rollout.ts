// Rollout: sample G responses per prompt with the KV-cache sampler, decode and verify them, and turn the
// verdicts into rewards (+1 / −1, plus DAPO's soft overlong punishment when on). Plain JSON data out, so
// groups can be carried between steps and saved in checkpoints.
import { mix32 } from '../backend/rng.js';
import type { Problem, Task } from '../data/tasks.js';
import { generate } from '../nn/generate.js';
import type { TransformerLM } from '../nn/transformer.js';
import { overlongPenalty } from './overlong.js';

export interface Response {
  /** Response token ids (the EOS token included when the model emitted it). */
  ids: number[];
  /** Log-probability of each token under the sampling policy (temperature applied). */
  logprobs: number[];
  text: string;
  /** No EOS within maxNewTokens. */
  truncated: boolean;
  correct: boolean;
  reward: number;
}

export interface RolloutGroup {
  /** Position of the prompt in the training stream. */
  promptIndex: number;
  problem: Problem;
  promptIds: number[];
  responses: Response[];
}

export interface RolloutOptions {
  groupSize: number;
  maxNewTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  /** Seed of this generation call (derive one per call). */
  seed: number;
  /** Soft overlong punishment added to the reward: null = off. */
  overlong: { maxLen: number; cacheLen: number } | null;
  /** Sequences per generate() call (memory bound); default all at once. */
  chunk?: number;
}

export interface RolloutStats {
  generatedTokens: number;
  seconds: number;
}

/** Which responses of a group are correct (dynamic sampling and the group kinds go by correctness, not reward). */
export function correctnessOf(group: RolloutGroup): boolean[] {
  return group.responses.map((response) => response.correct);
}

/** Deterministic seed for the n-th call of a kind ('rollout', 'eval', …) under the run seed. */
export function callSeed(runSeed: number, kind: number, n: number): number {
  return mix32(mix32(runSeed ^ Math.imul(kind, 0x9e3779b1)) ^ mix32(n + 1));
}

/** Samples and scores G responses for each problem. */
export async function rollout(
  model: TransformerLM, task: Task, items: readonly { index: number; problem: Problem }[], opts: RolloutOptions,
): Promise<{ groups: RolloutGroup[]; stats: RolloutStats }> {
  const tok = task.tokenizer;
  const prompts = items.map((it) => tok.encode(it.problem.prompt));
  const flat: number[][] = [];
  prompts.forEach((p) => { for (let g = 0; g < opts.groupSize; g++) flat.push(p); });
  const t0 = performance.now();
  const sampled = await generateChunked(model, flat, {
    maxNewTokens: opts.maxNewTokens, temperature: opts.temperature, topP: opts.topP, topK: opts.topK,
    stopTokens: [tok.eosId], padId: tok.padId, seed: opts.seed,
  }, opts.chunk ?? flat.length);
  const seconds = (performance.now() - t0) / 1000;
  let generatedTokens = 0;
  const groups = items.map((it, i) => {
    const responses: Response[] = [];
    for (let g = 0; g < opts.groupSize; g++) {
      const s = i * opts.groupSize + g;
      const ids = sampled.tokens[s];
      generatedTokens += ids.length;
      const truncated = sampled.truncated[s];
      const text = tok.decode(ids.filter((t) => t !== tok.eosId));
      // A truncated response never reached its answer's end: wrong, whatever its prefix says.
      const correct = !truncated && task.score(it.problem, text).correct;
      let reward = correct ? 1 : -1;
      if (opts.overlong) reward += overlongPenalty(ids.length, opts.overlong.maxLen, opts.overlong.cacheLen);
      responses.push({ ids, logprobs: sampled.logprobs[s], text, truncated, correct, reward });
    }
    return { promptIndex: it.index, problem: it.problem, promptIds: prompts[i], responses };
  });
  return { groups, stats: { generatedTokens, seconds } };
}

/** generate() over chunks of at most `chunk` sequences, each chunk with its own derived seed. */
export async function generateChunked(
  model: TransformerLM, prompts: readonly (readonly number[])[], opts: Parameters<typeof generate>[2], chunk: number,
): Promise<{ tokens: number[][]; logprobs: number[][]; truncated: boolean[] }> {
  const out = { tokens: [] as number[][], logprobs: [] as number[][], truncated: [] as boolean[] };
  for (let s = 0, c = 0; s < prompts.length; s += chunk, c++) {
    const g = await generate(model, prompts.slice(s, s + chunk), { ...opts, seed: c === 0 ? opts.seed : mix32((opts.seed ?? 0) + c) });
    out.tokens.push(...g.tokens);
    out.logprobs.push(...g.logprobs);
    out.truncated.push(...g.truncated);
  }
  return out;
}
