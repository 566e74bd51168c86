// Tensor + autograd on the float64 reference backend: gradcheck of every differentiable op, scopes, errors.
import { beforeAll, describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import * as T from '../../src/tensor/index.js';
import type { Tensor } from '../../src/tensor/index.js';
import { BINARY_OP_CASES, unaryOpCases } from '../support/op_cases.js';

const backend = new ReferenceBackend();
beforeAll(() => T.setBackend(backend));

const rnd = (shape: number[], seed: number, lo = -1, hi = 1) => T.randUniform(shape, seed, lo, hi);
const pos = (shape: number[], seed: number) => T.randUniform(shape, seed, 0.5, 2);

async function check(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: Parameters<typeof T.gradcheck>[2] = {}) {
  const r = await T.gradcheck(fn, inputs, opts);
  inputs.forEach((t) => t.dispose());
  expect(r.ok, `worst ${JSON.stringify(r.worst)}`).toBe(true);
}

describe('gradcheck (float64 finite differences)', () => {
  for (const { name, fn, positiveOnly } of unaryOpCases({ pow: 3, mul: -2.5, add: 4 })) {
    it(name, async () => check(fn, [positiveOnly ? pos([3, 5], 1) : rnd([3, 5], 1)]));
  }
  for (const { name, fn } of BINARY_OP_CASES) {
    it(`${name} with broadcasting`, async () => check(fn, [pos([2, 3, 4], 2), pos([3, 1], 3)]));
  }
  it('where', async () => {
    const c = rnd([4, 5], 9);
    const cond = T.gt(c, 0);
    await check((a, b) => T.where(cond, a, b), [rnd([4, 5], 4), rnd([5], 5)]);
    cond.dispose();
    c.dispose();
  });
  it('sum / mean / max / min over axes', async () => {
    await check((x) => T.sum(x, { axis: 1 }), [rnd([3, 4, 5], 6)]);
    await check((x) => T.mean(x, { axis: [0, 2], keepDims: true }), [rnd([3, 4, 5], 7)]);
    await check((x) => T.max(x, { axis: -1 }), [rnd([3, 7], 8)]);
    await check((x) => T.min(x), [rnd([3, 7], 10)]);
    await check((x) => T.sum(x), [rnd([2, 3], 11)]);
  });
  it('matmul with transposes and broadcast batches', async () => {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const a = transA ? rnd([2, 5, 3], 12) : rnd([2, 3, 5], 12);
        const b = transB ? rnd([4, 5], 13) : rnd([5, 4], 13);
        await check((x, y) => T.matmul(x, y, { transA, transB }), [a, b]);
      }
    }
    await check((x, y) => T.matmul(x, y), [rnd([3, 1, 2, 4], 14), rnd([5, 4, 3], 15)]);
  });
  it('reshape / permute / transpose / slice / concat / broadcastTo', async () => {
    await check((x) => T.reshape(x, [6, -1]), [rnd([2, 3, 4], 16)]);
    await check((x) => T.permute(x, [2, 0, 1]), [rnd([2, 3, 4], 17)]);
    await check((x) => T.transpose(x), [rnd([2, 3, 4], 18)]);
    await check((x) => T.slice(x, [1, 0, 2], [1, -1, 2]), [rnd([3, 3, 5], 19)]);
    await check((a, b) => T.concat([a, b], 1), [rnd([2, 3, 2], 20), rnd([2, 1, 2], 21)]);
    await check((a, b) => T.concat([a, b], 0), [rnd([2, 3], 22), rnd([1, 3], 23)]);
    await check((x) => T.broadcastTo(x, [4, 2, 3]), [rnd([2, 1], 24)]);
  });
  it('softmax / logSoftmax', async () => {
    await check((x) => T.softmax(x), [rnd([3, 7], 25, -3, 3)]);
    await check((x) => T.logSoftmax(x), [rnd([3, 7], 26, -3, 3)]);
  });
  it('gather (embedding) with duplicate ids', async () => {
    const ids = T.tensor([3, 0, 3, 1, 3], [5], 'int32');
    await check((t) => T.gather(t, ids), [rnd([4, 6], 27)]);
    ids.dispose();
  });
  it('a composed expression reusing inputs', async () => {
    await check((a, b) => T.sum(T.mul(T.tanh(T.matmul(a, b)), T.sigmoid(T.matmul(a, b))), { axis: 0 }), [rnd([3, 4], 28), rnd([4, 2], 29)]);
  });
});

describe('autograd semantics', () => {
  it('accumulates into .grad across backward calls and frees the graph', async () => {
    const before = backend.memory().liveBuffers;
    const x = T.tensor([1, 2, 3]).requireGrad();
    for (let i = 0; i < 2; i++) {
      const y = T.tidy(() => T.sum(T.mul(x, x)));
      T.backward(y);
      y.dispose();
    }
    expect(await x.grad!.toArray()).toEqual([4, 8, 12]);
    x.dispose();
    expect(backend.memory().liveBuffers).toBe(before);
  });
  it('noGrad records nothing', () => {
    const x = T.tensor([1, 2]).requireGrad();
    const y = T.noGrad(() => T.exp(x));
    expect(y.gradFn).toBeNull();
    T.tidy(() => expect(() => T.backward(T.sum(y))).toThrow(/does not require grad/));
    x.dispose();
    y.dispose();
  });
  it('a second backward without retainGraph fails clearly', () => {
    const x = T.tensor([1, 2]).requireGrad();
    const y = T.sum(T.exp(x));
    T.backward(y, { retainGraph: false });
    expect(() => T.backward(y)).toThrow(/second time/);
    x.dispose();
    y.dispose();
  });
});

describe('scopes and memory', () => {
  it('tidy frees everything but the result; no buffer leaks', () => {
    const before = backend.memory().liveBuffers;
    const r = T.tidy(() => {
      const a = T.ones([4, 4]);
      const b = T.add(a, 1);
      return T.matmul(a, b);
    });
    expect(backend.memory().liveBuffers).toBe(before + 1);
    r.dispose();
    expect(backend.memory().liveBuffers).toBe(before);
  });
  it('a training-style step leaks nothing', async () => {
    const before = backend.memory().liveBuffers;
    const w = T.randNormal([5, 3], 1).requireGrad();
    for (let step = 0; step < 3; step++) {
      const loss = T.tidy(() => T.mean(T.square(T.matmul(T.ones([2, 5]), w))));
      T.backward(loss);
      loss.dispose();
    }
    w.dispose();
    expect(backend.memory().liveBuffers).toBe(before);
  });
  it('peak bytes track the high-water mark', () => {
    const t = T.zeros([1000]);
    expect(backend.memory().peakBytes).toBeGreaterThanOrEqual(4000);
    t.dispose();
  });
});

describe('clear errors', () => {
  it('shape mismatch names the op and both shapes', () => {
    const a = T.zeros([2, 3]);
    const b = T.zeros([4, 3]);
    expect(() => T.add(a, b)).toThrow(/add: shapes \[2, 3\] and \[4, 3\]/);
    expect(() => T.matmul(a, b)).toThrow(/matmul: inner dimensions differ: \[2, 3\] @ \[4, 3\]/);
    a.dispose();
    b.dispose();
  });
  it('use of a disposed tensor', () => {
    const a = T.zeros([2]);
    a.dispose();
    expect(() => T.exp(a)).toThrow(/exp: tensor #\d+ \[2\] was disposed/);
  });
  it('unsupported dtype', () => {
    expect(() => T.zeros([2], 'float64')).toThrow(/unsupported dtype 'float64'/);
    expect(() => T.zeros([2], 'float16')).toThrow(/full: float16 tensors hold frozen weights and are made from host values/);
    const ids = T.tensor([1, 2], [2], 'int32');
    expect(() => T.exp(ids)).toThrow(/exp: expected float32 input, got int32/);
    ids.dispose();
  });
  it('bad reshape and slice', () => {
    const a = T.zeros([2, 3]);
    expect(() => T.reshape(a, [4, 2])).toThrow(/cannot reshape \[2, 3\]/);
    expect(() => T.slice(a, [1, 2], [2, 1])).toThrow(/out of bounds/);
    a.dispose();
  });
});
