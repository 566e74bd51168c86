// Batched autoregressive generation with a KV cache: one prefill over the left-padded prompts, then one
// decode step per new token. Seeded and reproducible; no autograd tape.
import { mix32, uniformAt } from '../backend/rng.js';
import * as T from '../tensor/index.js';
import { type SamplingOptions, checkSamplingOptions, sampleToken } from './sampling.js';
import type { TransformerLM } from './transformer.js';
import { distinctPrompts, pickRows } from './prompt_rows.js';

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  /** Generation of a sequence ends after it emits one of these (the stop token is kept in its output). */
  stopTokens?: readonly number[];
  seed?: number;
  /** Token used for left padding and after a sequence stopped (never attended to). */
  padId?: number;
  /**
   * Where tokens are drawn without top-k/top-p: 'device' (default) samples on the backend (sampleRows) and reads
   * back 2 floats per sequence; 'host' reads the logits and runs sampleToken. Both draw with the same uniform per
   * token by the same rule; float32 on the device vs float64 on the host can differ only when a draw falls within
   * rounding of a token boundary. Top-k/top-p always sample on the host.
   */
  sampleOn?: 'device' | 'host';
  /**
   * Sequences with the same prompt (the G responses of a group) prefill it once and then decode from copies of its
   * KV cache (default true; vLLM's prefix caching for the common case of whole identical prompts). The same
   * tokens as prefilling every copy, up to float rounding where fewer prefill rows change the matmul path.
   */
  sharePrompts?: boolean;
}

/** The largest float32 below 1: a uniform rounded to float32 must stay < 1 (u = 1 would pick past the last token). */
const BELOW_ONE_F32 = 1 - 2 ** -24;

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

  const onDevice = (opts.sampleOn ?? 'device') === 'device' && (opts.topK ?? 0) === 0 && (opts.topP ?? 1) >= 1;

  const start = prompts.map((p) => P - p.length);
  // Prefill runs over the distinct prompts only; `rows[b]` is sequence b's prompt among them.
  const { distinct, rows } = (opts.sharePrompts ?? true) ? distinctPrompts(prompts) : { distinct: prompts, rows: prompts.map((_, b) => b) };
  const shared = distinct.length < B;
  const ids: number[] = [];
  const pos: number[] = [];
  distinct.forEach((p) => {
    for (let t = 0; t < P; t++) {
      const s = P - p.length;
      ids.push(t < s ? pad : p[t - s]);
      pos.push(Math.max(0, t - s));
    }
  });

  const out: Generation = { tokens: prompts.map(() => []), logprobs: prompts.map(() => []), truncated: prompts.map(() => true), promptLength: P };
  const done = prompts.map(() => false);
  let cache = model.newCache(distinct.length, total);
  const keyStart = T.tensor(start, [B], 'int32');
  const prefillKeyStart = shared ? T.tensor(distinct.map((p) => P - p.length), [distinct.length], 'int32') : keyStart;
  let idsT = T.tensor(ids, [distinct.length, P], 'int32');
  let posT = T.tensor(pos, [distinct.length, P], 'int32');
  try {
    for (let step = 0; step < opts.maxNewTokens; step++) {
      let logits = T.noGrad(() => model.forward(idsT, { positions: posT, keyStart: step === 0 ? prefillKeyStart : keyStart, cache, lastOnly: true }));
      idsT.dispose();
      posT.dispose();
      if (step === 0 && shared) {
        // every sequence continues from its own copy of its prompt's cache and last-position logits
        const prefilled = cache;
        cache = prefilled.selectRows(rows);
        prefilled.dispose();
        const perPrompt = logits;
        const index = T.tensor(rows, [B], 'int32');
        logits = T.noGrad(() => T.tidy(() => pickRows(perPrompt, index)));
        index.dispose();
        perPrompt.dispose();
      }
      const uniforms = Array.from({ length: B }, (_, b) => uniformAt(key, step * B + b));
      const picks = await drawTokens(logits, uniforms, opts, onDevice, done);
      const next: number[] = [];
      for (let b = 0; b < B; b++) {
        if (done[b]) { next.push(pad); continue; }
        const { token, logprob } = picks[b];
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
    if (shared) prefillKeyStart.dispose();
    cache.dispose();
  }
  return out;
}

/**
 * The token and log-prob of each row of logits [B, 1, V], drawn with uniforms[b]: on the backend (sampleRows, 2 floats
 * a row read back) or from the read-back rows with sampleToken (rows of finished sequences skipped). Frees logits.
 */
async function drawTokens(
  logits: T.Tensor, uniforms: readonly number[], opts: GenerateOptions, onDevice: boolean, done: readonly boolean[],
): Promise<{ token: number; logprob: number }[]> {
  const [B, , V] = logits.shape;
  if (!onDevice) {
    const rows = await logits.read();
    logits.dispose();
    return uniforms.map((u, b) => (done[b] ? { token: 0, logprob: 0 } : sampleToken(rows.subarray(b * V, (b + 1) * V), opts, u)));
  }
  const u = T.tensor(uniforms.map((x) => Math.min(Math.fround(x), BELOW_ONE_F32)), [B]);
  const picked = T.noGrad(() => T.tidy(() => T.sampleRows(T.reshape(logits, [B, V]), u, opts.temperature ?? 1)));
  logits.dispose();
  u.dispose();
  try {
    const values = await picked.read();
    return uniforms.map((_, b) => ({ token: values[2 * b], logprob: values[2 * b + 1] }));
  } finally {
    picked.dispose();
  }
}
