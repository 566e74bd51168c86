// AdamW with global-norm clipping on the float64 reference, against the PyTorch update written out by hand.
import { beforeAll, describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import * as T from '../../src/tensor/index.js';
import { AdamW } from '../../src/optim/adamw.js';

const backend = new ReferenceBackend();
beforeAll(() => T.setBackend(backend));

/** PyTorch AdamW on host arrays (params: list of arrays; grads per step). */
function hostAdamW(ps: number[][], gradsPerStep: number[][][], o: { lr: number; b1: number; b2: number; eps: number; wd: number[]; clip: number }) {
  const m = ps.map((p) => p.map(() => 0));
  const v = ps.map((p) => p.map(() => 0));
  const norms: number[] = [];
  gradsPerStep.forEach((grads, s) => {
    const step = s + 1;
    const norm = Math.sqrt(grads.flat().reduce((a, g) => a + g * g, 0));
    norms.push(norm);
    const scale = o.clip > 0 ? Math.min(1, o.clip / (norm + 1e-6)) : 1;
    ps.forEach((p, j) => p.forEach((_, i) => {
      const g = grads[j][i] * scale;
      m[j][i] = o.b1 * m[j][i] + (1 - o.b1) * g;
      v[j][i] = o.b2 * v[j][i] + (1 - o.b2) * g * g;
      const mh = m[j][i] / (1 - o.b1 ** step);
      const vh = v[j][i] / (1 - o.b2 ** step);
      p[i] = p[i] * (1 - o.lr * o.wd[j]) - o.lr * mh / (Math.sqrt(vh) + o.eps);
    }));
  });
  return norms;
}

describe('AdamW', () => {
  for (const clip of [0, 0.5]) {
    it(`matches the PyTorch update over 3 steps (decay on matrices only, clip ${clip})`, async () => {
      const w = T.keep(T.tensor([0.5, -1, 2, 0.25], [2, 2]).requireGrad());
      const b = T.keep(T.tensor([1, -2, 3], [3]).requireGrad());
      const params = new Map([['w', w], ['norm.weight', b]]);
      const opt = new AdamW(params, { lr: 0.1, weightDecay: 0.1, maxGradNorm: clip });
      const host = [[0.5, -1, 2, 0.25], [1, -2, 3]];
      const grads = [[[1, 2, 3, 4], [0.5, -0.5, 1]], [[-1, 0, 1, 0], [2, 2, 2]], [[0.1, 0.2, 0.3, 0.4], [-3, 1, 0]]];
      const wantNorms = hostAdamW(host, grads, { lr: 0.1, b1: 0.9, b2: 0.999, eps: 1e-8, wd: [0.1, 0], clip });
      for (const [s, g] of grads.entries()) {
        w.grad = T.keep(T.tensor(g[0], [2, 2]));
        b.grad = T.keep(T.tensor(g[1], [3]));
        const { gradNorm } = opt.step();
        expect(await gradNorm.item()).toBeCloseTo(wantNorms[s], 12);
        gradNorm.dispose();
        expect(w.grad).toBeNull();
      }
      (await w.toArray()).forEach((x, i) => expect(x).toBeCloseTo(host[0][i], 12));
      (await b.toArray()).forEach((x, i) => expect(x).toBeCloseTo(host[1][i], 12));
      expect(opt.stepCount).toBe(3);
      opt.dispose();
      w.dispose();
      b.dispose();
    });
  }

  it('rejects bad hyperparameters, naming each', () => {
    expect(() => new AdamW(new Map(), { lr: -1, beta2: 1, eps: 0 })).toThrow(/lr must be ≥ 0, got -1; beta2 must be in \[0, 1\), got 1; eps must be > 0, got 0/);
  });
});
