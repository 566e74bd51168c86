// Sequences with the same prompt prefill it once and decode from copies of its KV cache (generate's sharePrompts):
// the same tokens and log-probs as prefilling every copy, on the float64 reference and on every product backend,
// with nothing left allocated.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/backend/backend.js';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import * as T from '../../src/tensor/index.js';
import { TransformerLM } from '../../src/nn/transformer.js';
import { generate } from '../../src/nn/generate.js';
import { type NamedBackend, productBackends } from '../support/backends.js';

const CONFIG = { vocabSize: 41, dModel: 16, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 24, maxSeqLen: 32 };
// groups of a DAPO batch (repeats, not adjacent) with different lengths, so left padding differs per prompt
const PROMPTS = [[1, 2, 3], [4], [1, 2, 3], [5, 6, 7, 8, 9], [4], [1, 2, 3], [5, 6, 7, 8, 9]];

async function compareSharing(backend: Backend, name: string, logprobDigits: number): Promise<void> {
  T.setBackend(backend);
  const model = new TransformerLM(CONFIG, 5);
  const liveBefore = backend.memory().liveBuffers;
  for (const temperature of [1, 0]) {
    const opts = { maxNewTokens: 9, temperature, seed: 3, stopTokens: [0] };
    const shared = await generate(model, PROMPTS, opts);
    const each = await generate(model, PROMPTS, { ...opts, sharePrompts: false });
    expect(shared.tokens, `${name} T=${temperature}`).toEqual(each.tokens);
    expect(shared.truncated).toEqual(each.truncated);
    expect(shared.promptLength).toBe(each.promptLength);
    shared.logprobs.forEach((row, b) => row.forEach((lp, j) => expect(lp, `${name} seq ${b} token ${j}`).toBeCloseTo(each.logprobs[b][j], logprobDigits)));
    // copies of one prompt still draw independently (different uniforms per sequence)
    expect(new Set([0, 2, 5].map((b) => shared.tokens[b].join())).size, `${name}: a group's responses differ`).toBeGreaterThan(temperature > 0 ? 1 : 0);
  }
  expect(backend.memory().liveBuffers, `${name}: buffers left`).toBe(liveBefore);
  model.dispose();
}

describe('generate: prompts shared within a batch prefill once', () => {
  let backends: NamedBackend[] = [];
  beforeAll(async () => { backends = (await productBackends()).available; });
  afterAll(() => backends.forEach((b) => b.backend.destroy()));

  it('float64 reference: the same tokens and log-probs as prefilling each sequence', async () => {
    await compareSharing(new ReferenceBackend(), 'reference', 12);
  });

  it('every product backend: the same tokens, log-probs within float32', async () => {
    for (const { name, backend } of backends) await compareSharing(backend, name, 4);
  });

  it('KVCache.selectRows copies rows and refuses a row outside the batch', async () => {
    T.setBackend(new ReferenceBackend());
    const model = new TransformerLM(CONFIG, 5);
    const cache = model.newCache(2, 8);
    const ids = T.tensor([1, 2, 3, 4, 5, 6], [2, 3], 'int32');
    T.noGrad(() => model.forward(ids, { cache })).dispose();
    const copy = cache.selectRows([1, 0, 1]);
    expect(copy.batch).toBe(3);
    expect(copy.length).toBe(3);
    for (let l = 0; l < CONFIG.nLayers; l++) {
      for (const part of ['k', 'v'] as const) {
        const from = await cache.layer(l)[part].read();
        const to = await copy.layer(l)[part].read();
        const row = from.length / 2;
        expect(Array.from(to)).toEqual([...from.slice(row), ...from.slice(0, row), ...from.slice(row)]);
      }
    }
    expect(() => cache.selectRows([2])).toThrow(/row 2 outside \[0, 2\)/);
    ids.dispose();
    copy.dispose();
    cache.dispose();
    model.dispose();
  });
});
