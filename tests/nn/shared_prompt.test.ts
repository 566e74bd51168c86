// Responses that share a prompt run its positions once (sharedPromptLogprobs over packSharedPrompts): the same
// log-probs, entropies and parameter gradients as every sequence packed whole (pack + tokenLogprobs).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/backend/backend.js';
import { type NamedBackend, productBackends } from '../support/backends.js';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import * as T from '../../src/tensor/index.js';
import { TransformerLM } from '../../src/nn/transformer.js';
import { pack, packSharedPrompts, sharedPromptTokenLogprobs, tokenLogprobs } from '../../src/rl/sequences.js';

const CONFIG = { vocabSize: 29, dModel: 16, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 24, maxSeqLen: 32 };
const SEQUENCES = [
  { promptIds: [1, 2, 3], responseIds: [4, 5, 6, 7] },
  { promptIds: [8, 9], responseIds: [10] },
  { promptIds: [1, 2, 3], responseIds: [11, 12] },
  { promptIds: [8, 9], responseIds: [13, 14, 15, 16, 17] },
  { promptIds: [1, 2, 3], responseIds: [18, 19, 20] },
  { promptIds: [21, 22, 23, 24], responseIds: [25, 26] },
];

async function lossAndGrads(model: TransformerLM, run: () => { logp: T.Tensor; entropy: T.Tensor }, rows: number) {
  const a = T.tensor(Array.from({ length: rows }, (_, i) => Math.sin(i + 1)), [rows]);
  const b = T.tensor(Array.from({ length: rows }, (_, i) => Math.cos(2 * i)), [rows]);
  const out = T.tidy(run);
  const loss = T.tidy(() => T.add(T.sum(T.mul(out.logp, a)), T.sum(T.mul(out.entropy, b))));
  T.backward(loss);
  const result = {
    logp: Array.from(await out.logp.read()), entropy: Array.from(await out.entropy.read()),
    grads: new Map(await Promise.all([...model.params].map(async ([n, p]) => [n, Array.from(await p.grad!.read())] as const))),
  };
  for (const p of model.params.values()) { p.grad?.dispose(); p.grad = null; }
  for (const t of [a, b, out.logp, out.entropy, loss]) t.dispose();
  return result;
}

async function compare(backend: Backend, name: string, digits: number, gradTolerance: number): Promise<void> {
  T.setBackend(backend);
  const model = new TransformerLM(CONFIG, 4);
  const whole = pack(SEQUENCES, 0);
  const want = await lossAndGrads(model, () => tokenLogprobs(model, whole), whole.rows);
  const s = packSharedPrompts(SEQUENCES, 0)!;
  expect(s.prompts).toBe(3);
  expect(s.rows).toBe(whole.rows);
  const got = await lossAndGrads(model, () => sharedPromptTokenLogprobs(model, s, SEQUENCES.length), s.rows);
  SEQUENCES.forEach((seq, b) => seq.responseIds.forEach((_, j) => {
    expect(got.logp[s.row(b, j)], `${name} logp ${b}/${j}`).toBeCloseTo(want.logp[whole.row(b, j)], digits);
    expect(got.entropy[s.row(b, j)], `${name} entropy ${b}/${j}`).toBeCloseTo(want.entropy[whole.row(b, j)], digits);
  }));
  for (const [gname, g] of want.grads) {
    const h = got.grads.get(gname)!;
    const scale = g.reduce((m, x) => Math.max(m, Math.abs(x)), 1e-30);
    const worst = g.reduce((m, x, i) => Math.max(m, Math.abs(x - h[i])), 0);
    expect(worst / scale, `${name}: gradient of ${gname}`).toBeLessThan(gradTolerance);
  }
  model.dispose();
}

describe('shared prompts in the training forward', () => {
  let backends: NamedBackend[] = [];
  beforeAll(async () => { backends = (await productBackends()).available; });
  afterAll(() => backends.forEach((b) => b.backend.destroy()));

  it('float64: the same log-probs, entropies and gradients as packing every sequence whole', async () => {
    await compare(new ReferenceBackend(), 'reference', 10, 1e-10);
  });

  it('every product backend: the same within float32', async () => {
    for (const { name, backend } of backends) await compare(backend, name, 4, 1e-4);
  });

  it('no layout when nothing is shared', () => {
    expect(packSharedPrompts(SEQUENCES.filter((_, b) => b === 0 || b === 1 || b === 5), 0)).toBeNull();
  });
});
