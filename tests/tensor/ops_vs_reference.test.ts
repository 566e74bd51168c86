// Every op on every product backend against the float64 reference: forward values and the gradients that
// flow back through the backend's own kernels, on random inputs with awkward shapes (1, primes, non-tile sizes).
import { afterAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/backend/backend.js';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import * as T from '../../src/tensor/index.js';
import type { Tensor } from '../../src/tensor/index.js';
import { productBackends } from '../support/backends.js';
import { assertClose } from '../support/close.js';
import { BINARY_OP_CASES, unaryOpCases } from '../support/op_cases.js';
import { hostRandom, quantize } from '../support/random.js';

interface InputSpec {
  shape: number[];
  lo?: number;
  hi?: number;
  /** int32 ids in [0, ints). */
  ints?: number;
  /** Round to this many steps per unit, to create ties (comparisons, max). */
  quantize?: number;
}

interface Case {
  name: string;
  inputs: InputSpec[];
  fn: (...xs: Tensor[]) => Tensor;
  atol?: number;
  rtol?: number;
  /** Also compare gradients of Σ out·w w.r.t. the float inputs. */
  grad?: boolean;
}

/** Uniform inputs in [lo, hi), and positive ones for the ops defined only there. */
const uniform = (shape: number[], lo = -1, hi = 1): InputSpec => ({ shape, lo, hi });
const positive = (shape: number[]): InputSpec => ({ shape, lo: 0.25, hi: 2 });

const cases: Case[] = [];
for (const { name, fn, positiveOnly } of unaryOpCases({ pow: 2.5, mul: -3, add: 0.5 })) {
  cases.push({ name: `unary ${name} [7, 13]`, inputs: [positiveOnly ? positive([7, 13]) : uniform([7, 13], -4, 4)], fn, grad: true });
}
cases.push({ name: 'unary exp on 70001 elements (multi-workgroup)', inputs: [uniform([70001])], fn: T.exp });
for (const { name, fn } of BINARY_OP_CASES) {
  cases.push({ name: `binary ${name} broadcast [5,1,7]×[3,7]`, inputs: [positive([5, 1, 7]), positive([3, 7])], fn, grad: true });
}
for (const [name, fn] of [['eq', T.eq], ['ne', T.ne], ['lt', T.lt], ['le', T.le], ['gt', T.gt], ['ge', T.ge]] as const) {
  cases.push({ name: `compare ${name} with ties`, inputs: [{ shape: [11, 6], quantize: 2 }, { shape: [6], quantize: 2 }], fn });
}
cases.push({ name: 'binary add rank-6 broadcast', inputs: [uniform([2, 1, 3, 1, 5, 2]), uniform([3, 4, 1, 2])], fn: T.add, grad: true });
cases.push({ name: 'where broadcast', inputs: [{ shape: [9, 1], quantize: 1 }, uniform([9, 10]), uniform([10])], fn: (c, a, b) => T.where(c, a, b), grad: true });
for (const axis of [0, 1, 2]) {
  cases.push({ name: `sum axis ${axis} of [7, 13, 5]`, inputs: [uniform([7, 13, 5])], fn: (x) => T.sum(x, { axis }), grad: true });
  cases.push({ name: `max axis ${axis} of [7, 13, 5]`, inputs: [uniform([7, 13, 5])], fn: (x) => T.max(x, { axis }), grad: true });
}
cases.push({ name: 'sum whole [1031]', inputs: [uniform([1031])], fn: (x) => T.sum(x), atol: 1e-4 });
cases.push({ name: 'sum long rows [3, 40099]', inputs: [uniform([3, 40099])], fn: (x) => T.sum(x, { axis: 1 }), atol: 1e-3 });
cases.push({ name: 'min whole [257, 3]', inputs: [uniform([257, 3])], fn: (x) => T.min(x) });
cases.push({ name: 'mean axes [0, 2] of [4, 6, 9]', inputs: [uniform([4, 6, 9])], fn: (x) => T.mean(x, { axis: [0, 2] }), grad: true });
const mm: [number, number, number][] = [[1, 1, 1], [1, 64, 37], [7, 13, 5], [33, 17, 65], [64, 64, 64], [130, 129, 257], [5, 3, 1531]];
for (const [m, n, k] of mm) {
  cases.push({ name: `matmul ${m}×${k} @ ${k}×${n}`, inputs: [uniform([m, k]), uniform([k, n])], fn: (a, b) => T.matmul(a, b), atol: 2e-5 * Math.sqrt(k), grad: m * n * k < 1e6 });
}
for (const transA of [false, true]) {
  for (const transB of [false, true]) {
    cases.push({
      name: `matmul transA=${transA} transB=${transB} (31×29 @ 29×17)`,
      inputs: [uniform(transA ? [29, 31] : [31, 29]), uniform(transB ? [17, 29] : [29, 17])],
      fn: (a, b) => T.matmul(a, b, { transA, transB }), atol: 2e-4, grad: true,
    });
  }
}
cases.push({ name: 'matmul batched [3,7,5] @ broadcast [5,11]', inputs: [uniform([3, 7, 5]), uniform([5, 11])], fn: (a, b) => T.matmul(a, b), atol: 1e-4, grad: true });
cases.push({ name: 'matmul batched [2,3,4,5] @ [2,3,5,6] transB', inputs: [uniform([2, 3, 4, 5]), uniform([2, 3, 6, 5])], fn: (a, b) => T.matmul(a, b, { transB: true }), atol: 1e-4, grad: true });
for (const shape of [[7, 1], [5, 1000], [3, 4097]]) {
  cases.push({ name: `softmax ${JSON.stringify(shape)}`, inputs: [uniform(shape, -8, 8)], fn: (x) => T.softmax(x), grad: shape[1] < 2000 });
  cases.push({ name: `logSoftmax ${JSON.stringify(shape)}`, inputs: [uniform(shape, -8, 8)], fn: (x) => T.logSoftmax(x), grad: shape[1] < 2000 });
}
cases.push({ name: 'gather / scatterAdd with duplicate ids', inputs: [uniform([37, 19]), { shape: [5, 11], ints: 37 }], fn: (t, ids) => T.gather(t, ids), grad: true });
cases.push({ name: 'gather ids all equal (scatter accumulation)', inputs: [uniform([4, 130]), { shape: [300], ints: 1 }], fn: (t, ids) => T.gather(t, ids), grad: true, atol: 1e-4 });
cases.push({ name: 'permute [3,5,7] → [2,0,1]', inputs: [uniform([3, 5, 7])], fn: (x) => T.permute(x, [2, 0, 1]), grad: true });
cases.push({ name: 'slice [9,8,7] interior', inputs: [uniform([9, 8, 7])], fn: (x) => T.slice(x, [2, 1, 3], [5, 6, 1]), grad: true });
cases.push({ name: 'concat axis 1', inputs: [uniform([3, 2, 5]), uniform([3, 7, 5]), uniform([3, 1, 5])], fn: (a, b, c) => T.concat([a, b, c], 1), grad: true });
cases.push({ name: 'broadcastTo [1,5] → [4,3,5]', inputs: [uniform([1, 5])], fn: (x) => T.broadcastTo(x, [4, 3, 5]), grad: true });
cases.push({ name: 'cast float → int32 → float', inputs: [uniform([50], -20, 20)], fn: (x) => T.cast(T.cast(x, 'int32'), 'float32') });
cases.push({ name: 'arange int32 and float', inputs: [], fn: () => T.add(T.cast(T.arange(3, 1000, 7, 'int32'), 'float32'), T.arange(3, 1000, 7)) });
cases.push({ name: 'fill', inputs: [], fn: () => T.full([3, 333], -2.5) });
cases.push({ name: 'random uniform (counter-based, identical on every backend)', inputs: [], fn: () => T.randUniform([1000, 3], 42, -2, 3) });
cases.push({ name: 'random normal', inputs: [], fn: () => T.randNormal([4097], 7, 1, 2), atol: 1e-4 });
cases.push({
  name: 'a two-layer MLP loss and its gradients',
  inputs: [uniform([8, 13]), uniform([13, 32]), uniform([32]), uniform([32, 5])],
  fn: (x, w1, b1, w2) => T.mean(T.logSoftmax(T.matmul(T.silu(T.add(T.matmul(x, w1), b1)), w2))),
  grad: true, atol: 1e-4,
});

function inputData(spec: InputSpec, seed: number): Float32Array | Int32Array {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  if (spec.ints) return Int32Array.from(hostRandom(n, seed, 0, spec.ints), (v) => Math.min(spec.ints! - 1, Math.floor(v)));
  const values = hostRandom(n, seed, spec.lo ?? -1, spec.hi ?? 1);
  return spec.quantize ? quantize(values, spec.quantize) : values;
}

interface Result {
  out: number[];
  grads: (number[] | null)[];
}

async function run(backend: Backend, c: Case, caseIndex: number): Promise<Result> {
  T.setBackend(backend);
  const before = backend.memory().liveBuffers;
  const xs = c.inputs.map((spec, i) => {
    const t = T.tensor(inputData(spec, 1000 * caseIndex + i), spec.shape, spec.ints ? 'int32' : 'float32');
    if (c.grad && !spec.ints && !spec.quantize) t.requireGrad();
    return t;
  });
  const out = T.tidy(() => c.fn(...xs));
  const result: Result = { out: await out.toArray(), grads: [] };
  if (c.grad) {
    const w = T.tensor(hostRandom(out.size, 99), out.shape);
    const loss = T.tidy(() => T.sum(T.mul(out, w)));
    T.backward(loss);
    loss.dispose();
    w.dispose();
    for (const x of xs) result.grads.push(x.grad ? await x.grad.toArray() : null);
  }
  out.dispose();
  xs.forEach((x) => x.dispose());
  await backend.sync();
  expect(backend.memory().liveBuffers, 'buffers leaked by the case').toBe(before);
  return result;
}

const reference = new ReferenceBackend();
const { available } = await productBackends();
const expected = new Map<number, Promise<Result>>();
const want = (i: number) => {
  if (!expected.has(i)) expected.set(i, run(reference, cases[i], i));
  return expected.get(i)!;
};

afterAll(() => {
  for (const b of available) b.backend.destroy();
});

for (const { name, backend } of available) {
  describe(`${name} vs float64 reference`, () => {
    cases.forEach((c, i) => {
      it(c.name, async () => {
        const ref = await want(i);
        const got = await run(backend, c, i);
        const atol = c.atol ?? 1e-5;
        const rtol = c.rtol ?? 1e-4;
        assertClose(got.out, ref.out, `${name} ${c.name}: forward`, atol, rtol);
        ref.grads.forEach((g, j) => {
          if (g) assertClose(got.grads[j]!, g, `${name} ${c.name}: grad of input ${j}`, atol * 10, rtol * 10);
        });
      });
    });
  });
}

describe('backend availability', () => {
  it('has at least one product backend to test', () => {
    expect(available.length).toBeGreaterThan(0);
  });
});
