// Batched generation with the KV cache on the default policy model: prefill and decode throughput, and
// decoding with the cache against recomputing the whole prefix at every step (what the cache saves).
// Each step reads the last position's logits back and picks the next tokens on the host (greedy), as
// generate() does; the end-to-end generate() call is measured too.
import type { Backend } from '../backend/backend.js';
import { noGrad, setBackend } from '../tensor/engine.js';
import { tensor } from '../tensor/creation.js';
import type { Tensor } from '../tensor/tensor.js';
import { DEFAULT_MODEL_CONFIG, type ModelConfig } from '../nn/config.js';
import { TransformerLM } from '../nn/transformer.js';
import type { KVCache } from '../nn/kv_cache.js';
import { generate } from '../nn/generate.js';
import { type BenchRecord, type TimingOptions, median, randomInts, repeatAsync, tokensPerSOf } from './common.js';

export interface GenerateShape {
  prompts: number;
  promptLen: number;
  newTokens: number;
}

export const GENERATE_SHAPE: GenerateShape = { prompts: 16, promptLen: 12, newTokens: 24 };
/** --quick: 4 prompts and 8 new tokens. */
export const GENERATE_SHAPE_QUICK: GenerateShape = { prompts: 4, promptLen: 12, newTokens: 8 };

/** One forward of `ids` [B, T], reading back the last position's logits → the greedy next token per row. */
async function nextTokens(model: TransformerLM, ids: number[][], cache?: KVCache): Promise<number[]> {
  const B = ids.length;
  const V = model.config.vocabSize;
  const idsT = tensor(ids.flat(), [B, ids[0].length], 'int32');
  let logits: Tensor | null = null;
  try {
    logits = noGrad(() => model.forward(idsT, { cache, lastOnly: true }));
    const rows = await logits.read();
    return Array.from({ length: B }, (_, b) => argmax(rows, b * V, V));
  } finally {
    idsT.dispose();
    logits?.dispose();
  }
}

function argmax(xs: ArrayLike<number>, offset: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (xs[offset + i] > xs[offset + best]) best = i;
  return best;
}

/** Per-step times of one generation: the prefill, then each decode step with the cache or recomputing. */
async function timeGeneration(model: TransformerLM, prompts: number[][], newTokens: number, useCache: boolean): Promise<{ prefillMs: number; stepMs: number }> {
  const seqs = prompts.map((p) => [...p]);
  const cache = useCache ? model.newCache(prompts.length, prompts[0].length + newTokens) : undefined;
  try {
    let t0 = performance.now();
    let next = await nextTokens(model, seqs, cache);
    const prefillMs = performance.now() - t0;
    let stepsMs = 0;
    for (let step = 1; step < newTokens; step++) {
      seqs.forEach((s, b) => s.push(next[b]));
      t0 = performance.now();
      next = await nextTokens(model, useCache ? next.map((t) => [t]) : seqs, cache);
      stepsMs += performance.now() - t0;
    }
    return { prefillMs, stepMs: stepsMs / Math.max(1, newTokens - 1) };
  } finally {
    cache?.dispose();
  }
}

/**
 * Records generate_prefill (tokens/s over prompts·promptLen), generate_decode (ms per decode step, tokens/s
 * = prompts per step), decode_vs_recompute (ms per step with the cache, recompute_ms without it, speedup =
 * recompute_ms / ms) and generate (the whole generate() call, tokens/s over the new tokens).
 */
export async function benchGenerate(
  backend: Backend, label: string, shape: GenerateShape, opts: TimingOptions = {}, config: Partial<ModelConfig> = DEFAULT_MODEL_CONFIG,
  options: { skipRecompute?: boolean } = {},
): Promise<BenchRecord[]> {
  setBackend(backend);
  const { prompts: B, promptLen: P, newTokens: N } = shape;
  const model = new TransformerLM({ ...config, maxSeqLen: Math.max(config.maxSeqLen ?? DEFAULT_MODEL_CONFIG.maxSeqLen, P + N) }, 1);
  const ids = randomInts(B * P, model.config.vocabSize, 61);
  const prompts = Array.from({ length: B }, (_, b) => ids.slice(b * P, (b + 1) * P));
  // Whole generations are long: fewer repetitions than the kernel cases.
  const repeat = { ...opts, warmup: Math.min(opts.warmup ?? 1, 1), runs: Math.min(opts.runs ?? 3, 3) };
  try {
    const cached = await repeatAsync(() => timeGeneration(model, prompts, N, true), repeat);
    // Recomputing every prefix is quadratic: real-model shapes skip it (skipRecompute).
    const recomputed = options.skipRecompute ? [] : await repeatAsync(() => timeGeneration(model, prompts, N, false), repeat);
    const whole = await repeatAsync(async () => {
      const t0 = performance.now();
      await generate(model, prompts, { maxNewTokens: N, temperature: 1, seed: 7 });
      return performance.now() - t0;
    }, repeat);
    const prefillMs = median(cached.map((r) => r.prefillMs));
    const stepMs = median(cached.map((r) => r.stepMs));
    const wholeMs = median(whole);
    const full = [B, P, N];
    const records: BenchRecord[] = [
      { op: 'generate_prefill', backend: label, shape: [B, P], ms: prefillMs, tokensPerS: tokensPerSOf(B * P, prefillMs), runs: cached.length },
      { op: 'generate_decode', backend: label, shape: full, ms: stepMs, tokensPerS: tokensPerSOf(B, stepMs), runs: cached.length },
    ];
    if (recomputed.length) {
      const recomputeMs = median(recomputed.map((r) => r.stepMs));
      records.push({
        op: 'decode_vs_recompute', backend: label, shape: full, ms: stepMs, tokensPerS: tokensPerSOf(B, stepMs),
        extra: { recompute_ms: recomputeMs, speedup: recomputeMs / stepMs }, runs: recomputed.length,
      });
    }
    records.push({ op: 'generate', backend: label, shape: full, ms: wholeMs, tokensPerS: tokensPerSOf(B * N, wholeMs), runs: whole.length });
    return records;
  } finally {
    model.dispose();
  }
}
