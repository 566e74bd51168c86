// sampleToken computes each probability once and orders candidates by packed numeric keys: it must pick the same
// token with the same log-prob as the direct formulas (the implementation before that change, kept here as reference).
import { describe, expect, it } from 'vitest';
import { type SamplingOptions, sampleToken } from '../../src/nn/sampling.js';

function directSample(logits: ArrayLike<number>, opts: SamplingOptions, u: number): { token: number; logprob: number } {
  const V = logits.length;
  const temperature = opts.temperature ?? 1;
  const t = temperature > 0 ? temperature : 1;
  let mx = -Infinity;
  for (let i = 0; i < V; i++) mx = Math.max(mx, logits[i] / t);
  let z = 0;
  for (let i = 0; i < V; i++) z += Math.exp(logits[i] / t - mx);
  const logZ = mx + Math.log(z);
  const logprobOf = (i: number) => logits[i] / t - logZ;
  if (temperature === 0) {
    let best = 0;
    for (let i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
    return { token: best, logprob: logprobOf(best) };
  }
  let order = Array.from({ length: V }, (_, i) => i);
  const topK = opts.topK ?? 0;
  const topP = opts.topP ?? 1;
  if (topK > 0 || topP < 1) {
    order.sort((a, b) => logits[b] - logits[a] || a - b);
    if (topK > 0) order = order.slice(0, topK);
    if (topP < 1) {
      let mass = 0;
      let keep = 0;
      while (keep < order.length && mass < topP) mass += Math.exp(logprobOf(order[keep++]));
      order = order.slice(0, Math.max(1, keep));
    }
  }
  let total = 0;
  for (const i of order) total += Math.exp(logprobOf(i));
  let acc = 0;
  const target = u * total;
  for (const i of order) {
    acc += Math.exp(logprobOf(i));
    if (target < acc) return { token: i, logprob: logprobOf(i) };
  }
  const last = order[order.length - 1];
  return { token: last, logprob: logprobOf(last) };
}

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32; };
}

describe('sampleToken', () => {
  it('picks exactly what the direct formulas pick, for float32 and float64 logits, ties, ±0 and every option', () => {
    const rand = lcg(3);
    const optionSets: SamplingOptions[] = [{}, { temperature: 0.7 }, { temperature: 0 }, { topK: 5 }, { topP: 0.9 }, { topK: 50, topP: 0.5, temperature: 1.3 }, { topP: 0.01 }];
    for (const V of [1, 2, 7, 300, 5000]) {
      for (let trial = 0; trial < 6; trial++) {
        const values = Array.from({ length: V }, () => (trial % 3 === 0 ? Math.round(rand() * 6) - 3 : (rand() - 0.5) * 12));
        if (V > 2) { values[1] = -0; values[2] = 0; }
        for (const logits of [Float32Array.from(values), Float64Array.from(values.map((v, i) => v + (trial % 2 ? i * 1e-12 : 0)))]) {
          for (const opts of optionSets) {
            for (const u of [0, rand(), rand(), 0.999999]) {
              expect(sampleToken(logits, opts, u), `V ${V} trial ${trial} ${JSON.stringify(opts)} u ${u}`).toEqual(directSample(logits, opts, u));
            }
          }
        }
      }
    }
  });
});

describe('generate: sampling on the device', () => {
  it('draws the same tokens as the host sampler with the same seed (temperature 1, 0.7, greedy), log-probs within float32', async () => {
    const { ReferenceBackend } = await import('../../src/backend/reference/reference_backend.js');
    const T = await import('../../src/tensor/index.js');
    const { TransformerLM } = await import('../../src/nn/transformer.js');
    const { generate } = await import('../../src/nn/generate.js');
    T.setBackend(new ReferenceBackend());
    const model = new TransformerLM({ vocabSize: 37, dModel: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 32, maxSeqLen: 32 }, 3);
    const prompts = [[1, 2, 3], [4], [5, 6, 7, 8, 9]];
    for (const temperature of [1, 0.7, 0]) {
      const opts = { maxNewTokens: 12, temperature, seed: 11, stopTokens: [0] };
      const device = await generate(model, prompts, opts);
      const host = await generate(model, prompts, { ...opts, sampleOn: 'host' });
      expect(device.tokens, `T=${temperature}`).toEqual(host.tokens);
      expect(device.truncated).toEqual(host.truncated);
      device.logprobs.forEach((row, b) => row.forEach((lp, j) => expect(lp).toBeCloseTo(host.logprobs[b][j], 5)));
    }
    model.dispose();
  });
});
