// Batched autoregressive generation with a KV cache: one prefill over the left-padded prompts, then one
// decode step per new token. Seeded and reproducible; no autograd tape.
import { mix32, uniformAt } from '../backend/rng.js';
import * as T from '../tensor/index.js';
import { type SamplingOptions, checkSamplingOptions, sampleToken } from './sampling.js';
import type { TransformerLM } from './transformer.js';

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  /** Generation of a sequence ends after it emits one of these (the stop token is kept in its output). */
  stopTokens?: readonly number[];
  seed?: number;
  /** Token used for left padding and after a sequence stopped (never attended to). */
  padId?: number;
}

export interface Generation {
  /** New tokens per sequence (up to and including a stop token). */
  tokens: number[][];
  /** Log-probability of each new token under softmax(logits / temperature). */
  logprobs: number[][];
  /** True when the sequence hit maxNewTokens without a stop token. */
  truncated: boolean[];
  /** Length of the padded prompt block (prefill positions). */
  promptLength: number;
}

export async function generate(model: TransformerLM, prompts: readonly (readonly number[])[], opts: GenerateOptions): Promise<Generation> {
  checkSamplingOptions(opts);
  const B = prompts.length;
  const V = model.config.vocabSize;
  if (B === 0) return { tokens: [], logprobs: [], truncated: [], promptLength: 0 };
  if (!(Number.isInteger(opts.maxNewTokens) && opts.maxNewTokens >= 1)) throw new RangeError(`generate: maxNewTokens must be a positive integer, got ${opts.maxNewTokens}`);
  // A loop, not Math.max(...): a spread of a large batch (≈100k prompts) overflows the call stack.
  const P = prompts.reduce((longest, p) => Math.max(longest, p.length), 0);
  if (P === 0) throw new RangeError('generate: every prompt is empty');
  const total = P + opts.maxNewTokens;
  if (total > model.config.maxSeqLen) throw new RangeError(`generate: prompt ${P} + ${opts.maxNewTokens} new tokens exceed maxSeqLen ${model.config.maxSeqLen}`);
  for (const p of prompts) for (const id of p) if (!(Number.isInteger(id) && id >= 0 && id < V)) throw new RangeError(`generate: token id ${id} outside the vocabulary [0, ${V})`);
  const pad = opts.padId ?? 0;
  const stops = new Set(opts.stopTokens ?? []);
  const key = mix32(opts.seed ?? 0);

  const start = prompts.map((p) => P - p.length);
  const ids: number[] = [];
  const pos: number[] = [];
  prompts.forEach((p, b) => {
    for (let t = 0; t < P; t++) {
      ids.push(t < start[b] ? pad : p[t - start[b]]);
      pos.push(Math.max(0, t - start[b]));
    }
  });

  const out: Generation = { tokens: prompts.map(() => []), logprobs: prompts.map(() => []), truncated: prompts.map(() => true), promptLength: P };
  const done = prompts.map(() => false);
  const cache = model.newCache(B, total);
  const keyStart = T.tensor(start, [B], 'int32');
  let idsT = T.tensor(ids, [B, P], 'int32');
  let posT = T.tensor(pos, [B, P], 'int32');
  try {
    for (let step = 0; step < opts.maxNewTokens; step++) {
      const logits = T.noGrad(() => model.forward(idsT, { positions: posT, keyStart, cache, lastOnly: true }));
      idsT.dispose();
      posT.dispose();
      const rows = await logits.read();
      logits.dispose();
      const next: number[] = [];
      for (let b = 0; b < B; b++) {
        if (done[b]) { next.push(pad); continue; }
        const { token, logprob } = sampleToken(rows.subarray(b * V, (b + 1) * V), opts, uniformAt(key, step * B + b));
        out.tokens[b].push(token);
        out.logprobs[b].push(logprob);
        next.push(token);
        if (stops.has(token)) { done[b] = true; out.truncated[b] = false; }
      }
      if (done.every(Boolean) || step === opts.maxNewTokens - 1) break;
      idsT = T.tensor(next, [B, 1], 'int32');
      posT = T.tensor(start.map((s) => P + step - s), [B, 1], 'int32');
    }
  } finally {
    idsT.dispose(); // no-ops unless a step threw
    posT.dispose();
    keyStart.dispose();
    cache.dispose();
  }
  return out;
}
