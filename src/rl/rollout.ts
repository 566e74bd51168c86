// Rollout: sample G responses per prompt with the KV-cache sampler, decode and verify them, and turn the
// verdicts into rewards (+1 / −1, plus DAPO's soft overlong punishment when on). Plain JSON data out, so
// groups can be carried between steps and saved in checkpoints.
import { mix32 } from '../backend/rng.js';
import type { Problem, Task } from '../data/tasks.js';
import { responseText } from '../data/tokenizer.js';
import { generate } from '../nn/generate.js';
import type { TransformerLM } from '../nn/transformer.js';
import { overlongPenalty } from './overlong.js';

export interface Response {
  /** Response token ids (the stop token included when the model emitted one). */
  ids: number[];
  /** Log-probability of each token under the sampling policy (temperature applied). */
  logprobs: number[];
  text: string;
  /** No stop token within maxNewTokens. */
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
  model: TransformerLM, task: Task, items: readonly { index: number; problem: Problem }[], options: RolloutOptions,
): Promise<{ groups: RolloutGroup[]; stats: RolloutStats }> {
  const tokenizer = task.tokenizer;
  const prompts = items.map((item) => tokenizer.encode(item.problem.prompt));
  // G copies of each prompt, in order: sequence i·G + k is response k of prompt i.
  const flat: number[][] = [];
  prompts.forEach((prompt) => { for (let k = 0; k < options.groupSize; k++) flat.push(prompt); });
  const startedAt = performance.now();
  const sampled = await generateChunked(model, flat, {
    maxNewTokens: options.maxNewTokens, temperature: options.temperature, topP: options.topP, topK: options.topK,
    stopTokens: tokenizer.stopTokenIds, padId: tokenizer.padId, seed: options.seed,
  }, options.chunk ?? flat.length);
  const seconds = (performance.now() - startedAt) / 1000;
  let generatedTokens = 0;
  const groups = items.map((item, i) => {
    const responses: Response[] = [];
    for (let k = 0; k < options.groupSize; k++) {
      const sequence = i * options.groupSize + k;
      const ids = sampled.tokens[sequence];
      generatedTokens += ids.length;
      const truncated = sampled.truncated[sequence];
      const text = responseText(tokenizer, ids);
      // A truncated response never reached its answer's end: wrong, whatever its prefix says.
      const correct = !truncated && task.score(item.problem, text).correct;
      let reward = correct ? 1 : -1;
      if (options.overlong) reward += overlongPenalty(ids.length, options.overlong.maxLen, options.overlong.cacheLen);
      responses.push({ ids, logprobs: sampled.logprobs[sequence], text, truncated, correct, reward });
    }
    return { promptIndex: item.index, problem: item.problem, promptIds: prompts[i], responses };
  });
  return { groups, stats: { generatedTokens, seconds } };
}

/** generate() over chunks of at most `chunk` sequences, each chunk with its own derived seed. */
export async function generateChunked(
  model: TransformerLM, prompts: readonly (readonly number[])[], options: Parameters<typeof generate>[2], chunk: number,
): Promise<{ tokens: number[][]; logprobs: number[][]; truncated: boolean[] }> {
  const out = { tokens: [] as number[][], logprobs: [] as number[][], truncated: [] as boolean[] };
  for (let start = 0, chunkIndex = 0; start < prompts.length; start += chunk, chunkIndex++) {
    const seed = chunkIndex === 0 ? options.seed : mix32((options.seed ?? 0) + chunkIndex);
    const generated = await generate(model, prompts.slice(start, start + chunk), { ...options, seed });
    out.tokens.push(...generated.tokens);
    out.logprobs.push(...generated.logprobs);
    out.truncated.push(...generated.truncated);
  }
  return out;
}
