// Rollout: sample G responses per prompt with the KV-cache sampler, decode and verify them, and turn the
// verdicts into rewards (+1 / −1, or the task's reward function, plus DAPO's soft overlong punishment when on).
// Plain JSON data out, so groups can be carried between steps and saved in checkpoints.
import { mix32 } from '../backend/rng.js';
import type { Problem, Task } from '../data/tasks.js';
import { responseText } from '../data/tokenizer.js';
import { generate } from '../nn/generate.js';
import type { TransformerLM } from '../nn/transformer.js';
import { FLAT_STD_TOLERANCE, type GroupKind, groupKind, groupStd } from './advantages.js';
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
  /** The task's reward function's value before the overlong penalty; absent under the +1/−1 rule. */
  rawReward?: number;
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

/** Which responses of a group are correct. */
export function correctnessOf(group: RolloutGroup): boolean[] {
  return group.responses.map((response) => response.correct);
}

/**
 * How dynamic sampling and the step metrics classify a group. Under the +1/−1 rule: by correctness (not by the
 * length-shaped reward, which the overlong penalty makes vary). With a reward function (float rewards): by the spread
 * of the raw rewards, as DAPO's per-prompt filter does — 'mixed' (kept) when their std ≥ FLAT_STD_TOLERANCE, else flat:
 * 'all-correct' when the common reward is > 0, 'all-wrong' otherwise.
 */
export function groupKindOf(group: RolloutGroup): GroupKind {
  const raw = group.responses.map((response) => response.rawReward);
  if (raw.some((value) => value === undefined)) return groupKind(correctnessOf(group));
  const rewards = raw as number[];
  if (groupStd(rewards) >= FLAT_STD_TOLERANCE) return 'mixed';
  return rewards[0] > 0 ? 'all-correct' : 'all-wrong';
}

/** The rewards whose spread decides whether a group is flat ('resample' mode): raw rewards, else ±1 by correctness. */
export function flatnessRewards(group: RolloutGroup): number[] {
  return group.responses.map((response) => response.rawReward ?? (response.correct ? 1 : -1));
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
  const groups: RolloutGroup[] = [];
  for (const [i, item] of items.entries()) {
    const responses: Response[] = [];
    for (let k = 0; k < options.groupSize; k++) {
      const sequence = i * options.groupSize + k;
      const ids = sampled.tokens[sequence];
      generatedTokens += ids.length;
      const truncated = sampled.truncated[sequence];
      const text = responseText(tokenizer, ids);
      // A truncated response never reached its answer's end: wrong, whatever its prefix says.
      const correct = !truncated && task.score(item.problem, text).correct;
      // A reward function sees every response, truncated ones too (the user's function decides what they are worth).
      const rawReward = task.reward ? await task.reward(item.problem, text) : undefined;
      let reward = rawReward ?? (correct ? 1 : -1);
      if (options.overlong) reward += overlongPenalty(ids.length, options.overlong.maxLen, options.overlong.cacheLen);
      responses.push({ ids, logprobs: sampled.logprobs[sequence], text, truncated, correct, reward, ...(rawReward !== undefined ? { rawReward } : {}) });
    }
    groups.push({ promptIndex: item.index, problem: item.problem, promptIds: prompts[i], responses });
  }
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
