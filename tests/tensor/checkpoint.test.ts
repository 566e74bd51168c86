// checkpoint(): a segment recomputed in backward gives the gradients of the plain graph (finite differences on
// the float64 reference), for its inputs and for the parameter leaves it reads.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import * as T from '../../src/tensor/index.js';
import type { Tensor } from '../../src/tensor/index.js';

const backend = new ReferenceBackend();
beforeAll(() => T.setBackend(backend));
afterEach(() => expect(backend.memory().liveBuffers, 'buffers leaked').toBe(0));

/** A two-layer segment: tanh(x·w1)·w2 + x. */
const segment = (w1: Tensor, w2: Tensor) => (x: Tensor) => T.add(T.matmul(T.tanh(T.matmul(x, w1)), w2), x);

describe('checkpoint', () => {
  it('passes gradcheck w.r.t. the input and the parameter leaves, stacked twice', async () => {
    const inputs = [T.randUniform([5, 3], 1, -1, 1), T.randUniform([3, 7], 2, -1, 1), T.randUniform([7, 3], 3, -1, 1)];
    const r = await T.gradcheck((x, w1, w2) => {
      const once = T.checkpoint(segment(w1, w2), [x], [w1, w2]);
      return T.checkpoint(segment(w1, w2), [T.mulScalar(once, 0.5)], [w1, w2]);
    }, inputs);
    inputs.forEach((t) => t.dispose());
    expect(r.ok, JSON.stringify(r.worst)).toBe(true);
  });

  it('records nothing and keeps no intermediates under noGrad; refuses non-leaf params', () => {
    T.tidy(() => {
      const w1 = T.randUniform([3, 7], 2).requireGrad();
      const w2 = T.randUniform([7, 3], 3).requireGrad();
      const x = T.randUniform([5, 3], 1);
      expect(T.noGrad(() => T.checkpoint(segment(w1, w2), [x], [w1, w2])).tracksGrad).toBe(false);
      const out = T.checkpoint(segment(w1, w2), [x], [w1, w2]);
      expect(out.gradFn?.op).toBe('checkpoint');
      expect(() => T.checkpoint(segment(w1, w2), [x], [T.mulScalar(w1, 2)])).toThrow(/params must be leaves/);
    });
  });
});
