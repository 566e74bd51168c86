// AdamW.loadState refuses moments that do not belong to its parameters (unknown name, wrong shape, half a pair, a
// bad step count), naming each, and changes nothing; a state() round trip restores the update exactly.
import { beforeAll, describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import * as T from '../../src/tensor/index.js';
import { AdamW } from '../../src/optim/adamw.js';

beforeAll(() => T.setBackend(new ReferenceBackend()));

function params(): Map<string, T.Tensor> {
  const w = T.keep(T.tensor([0.5, -1, 2, 0.25, 1.5, -0.75], [2, 3]).requireGrad());
  const b = T.keep(T.tensor([0.1, -0.2, 0.3], [3]).requireGrad());
  return new Map([['w', w], ['b', b]]);
}

async function stepWith(optimizer: AdamW, ps: Map<string, T.Tensor>, grads: number[][]): Promise<void> {
  [...ps.values()].forEach((p, i) => { p.grad = T.keep(T.tensor(grads[i], p.shape)); });
  optimizer.step(0.1).gradNorm.dispose();
}

describe('AdamW state', () => {
  it('a state() round trip continues the update exactly', async () => {
    const grads = [[0.3, -0.1, 0.2, 0.5, -0.4, 0.05], [1, -2, 0.5]];
    const a = params();
    const first = new AdamW(a, { lr: 0.1 });
    await stepWith(first, a, grads);
    const copy = new Map([...a].map(([name, p]) => [name, T.keep(T.noGrad(() => T.mulScalar(p, 1)).requireGrad())]));
    const second = new AdamW(copy, { lr: 0.1 });
    const saved = new Map([...first.state()].map(([key, m]) => [key, T.keep(T.noGrad(() => T.mulScalar(m, 1)))]));
    second.loadState(saved, first.stepCount);
    await stepWith(first, a, grads);
    await stepWith(second, copy, grads);
    for (const name of a.keys()) expect(Array.from(await copy.get(name)!.read())).toEqual(Array.from(await a.get(name)!.read()));
  });

  it('refuses moments that do not fit, naming each, and keeps its own state', async () => {
    const ps = params();
    const optimizer = new AdamW(ps, { lr: 0.1 });
    await stepWith(optimizer, ps, [[1, 1, 1, 1, 1, 1], [1, 1, 1]]);
    const before = await optimizer.state().get('w.exp_avg')!.read();
    const bad = new Map<string, T.Tensor>([
      ['w.exp_avg', T.zeros([3, 2])], ['w.exp_avg_sq', T.zeros([3, 2])],
      ['b.exp_avg', T.zeros([3])],
      ['ghost.exp_avg', T.zeros([1])], ['ghost.exp_avg_sq', T.zeros([1])],
    ]);
    expect(() => optimizer.loadState(bad, -1)).toThrow(/step count must be a non-negative integer, got -1/);
    let message = '';
    try { optimizer.loadState(bad, 1); } catch (err) { message = (err as Error).message; }
    expect(message).toContain("'w.exp_avg' has shape [3, 2], the parameter has [2, 3]");
    expect(message).toContain("'b.exp_avg' has no exp_avg_sq partner");
    expect(message).toContain("'ghost.exp_avg' is not a moment of a parameter of this optimizer");
    expect(Array.from(await optimizer.state().get('w.exp_avg')!.read())).toEqual(Array.from(before));
    expect(optimizer.stepCount).toBe(1);
    bad.forEach((moment) => moment.dispose());
  });
});
