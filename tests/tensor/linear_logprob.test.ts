// linearLogSoftmaxGather (the output head fused with log-softmax-gather over row chunks) against its
// definition logSoftmaxGather(hidden·Wᵀ + bias) and a host float64 computation, with finite-difference
// gradchecks on the reference backend, then on every product backend against the reference.
import { afterAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/backend/backend.js';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import * as T from '../../src/tensor/index.js';
import type { Tensor } from '../../src/tensor/index.js';
import { roundToHalf } from '../../src/backend/half.js';
import { productBackends } from '../support/backends.js';
import { assertClose } from '../support/close.js';
import { hostRandom } from '../support/random.js';

interface Problem {
  rows: number;
  dim: number;
  vocab: number;
  bias: boolean;
  seed: number;
}

/** Host inputs: hidden [N, D], weight [V, D], bias [V], targets with ignored rows (−1 and V). */
function problemData(p: Problem) {
  const hidden = hostRandom(p.rows * p.dim, p.seed, -2, 2);
  const weight = hostRandom(p.vocab * p.dim, p.seed + 1, -1, 1);
  const bias = hostRandom(p.vocab, p.seed + 2, -0.5, 0.5);
  const targets = Array.from(hostRandom(p.rows, p.seed + 3, 0, p.vocab), (v) => Math.min(p.vocab - 1, Math.floor(v)));
  if (p.rows > 2) targets[1] = -1;
  if (p.rows > 4) targets[p.rows - 2] = p.vocab;
  return { hidden, weight, bias, targets };
}

/** logp, entropy computed on the host in float64 straight from the definition. */
function hostExpected(p: Problem): { logp: number[]; entropy: number[] } {
  const d = problemData(p);
  const logp: number[] = [];
  const entropy: number[] = [];
  for (let r = 0; r < p.rows; r++) {
    const z = Array.from({ length: p.vocab }, (_, v) => {
      let acc = p.bias ? d.bias[v] : 0;
      for (let k = 0; k < p.dim; k++) acc += d.hidden[r * p.dim + k] * d.weight[v * p.dim + k];
      return acc;
    });
    const max = Math.max(...z);
    const lse = max + Math.log(z.reduce((s, x) => s + Math.exp(x - max), 0));
    const t = d.targets[r];
    logp.push(t >= 0 && t < p.vocab ? z[t] - lse : 0);
    entropy.push(-z.reduce((s, x) => s + Math.exp(x - lse) * (x - lse), 0));
  }
  return { logp, entropy };
}

interface Outcome {
  logp: number[];
  entropy: number[];
  /** Gradients of Σ logp·a + Σ entropy·b w.r.t. hidden, weight, bias. */
  grads: (number[] | null)[];
}

/** Runs the fused op (or the unfused definition) on `backend`, with a backward through both outputs. */
async function run(backend: Backend, p: Problem, mode: { fused: boolean; chunkRows?: number; frozenWeight?: boolean }): Promise<Outcome> {
  T.setBackend(backend);
  const before = backend.memory().liveBuffers;
  const d = problemData(p);
  const hidden = T.tensor(d.hidden, [p.rows, p.dim]).requireGrad();
  const weight = T.tensor(d.weight, [p.vocab, p.dim]).requireGrad(!mode.frozenWeight);
  const bias = p.bias ? T.tensor(d.bias, [p.vocab]).requireGrad() : null;
  const targets = T.tensor(d.targets, [p.rows], 'int32');
  const a = T.tensor(hostRandom(p.rows, p.seed + 10), [p.rows]);
  const b = T.tensor(hostRandom(p.rows, p.seed + 11), [p.rows]);
  const { logp, entropy, loss } = T.tidy(() => {
    const out = mode.fused
      ? T.linearLogSoftmaxGather(hidden, weight, targets, { bias, chunkRows: mode.chunkRows })
      : T.logSoftmaxGather(bias ? T.add(T.matmul(hidden, weight, { transB: true }), bias) : T.matmul(hidden, weight, { transB: true }), targets);
    return { ...out, loss: T.add(T.sum(T.mul(out.logp, a)), T.sum(T.mul(out.entropy, b))) };
  });
  T.backward(loss);
  const outcome: Outcome = {
    logp: await logp.toArray(),
    entropy: await entropy.toArray(),
    grads: await Promise.all([hidden, weight, bias].map((x) => (x?.grad ? x.grad.toArray() : null))),
  };
  for (const x of [hidden, weight, bias, targets, a, b, logp, entropy, loss]) x?.dispose();
  await backend.sync();
  expect(backend.memory().liveBuffers, 'buffers leaked').toBe(before);
  return outcome;
}

function expectOutcome(got: Outcome, want: Outcome, what: string, atol: number, rtol: number): void {
  assertClose(got.logp, want.logp, `${what}: logp`, atol, rtol);
  assertClose(got.entropy, want.entropy, `${what}: entropy`, atol, rtol);
  want.grads.forEach((g, i) => {
    if (!g) expect(got.grads[i], `${what}: input ${i} has no gradient`).toBeNull();
    else assertClose(got.grads[i]!, g, `${what}: gradient of input ${i}`, atol * 10, rtol * 10);
  });
}

const reference = new ReferenceBackend();
// Odd sizes; chunk sizes that divide N, do not, exceed it, and 1.
const problems: Problem[] = [
  { rows: 13, dim: 7, vocab: 11, bias: false, seed: 1 },
  { rows: 9, dim: 5, vocab: 17, bias: true, seed: 2 },
  { rows: 1, dim: 3, vocab: 2, bias: false, seed: 3 },
];
const chunkings = [undefined, 1, 4, 5, 13, 100];

describe('linearLogSoftmaxGather on the float64 reference', () => {
  it('equals logSoftmaxGather(hidden·Wᵀ + bias) and the host float64 definition, for every chunk size', async () => {
    for (const p of problems) {
      const host = hostExpected(p);
      const unfused = await run(reference, p, { fused: false });
      assertClose(unfused.logp, host.logp, 'unfused vs host: logp', 1e-12, 1e-10);
      for (const chunkRows of chunkings) {
        const fused = await run(reference, p, { fused: true, chunkRows });
        const what = `N ${p.rows} D ${p.dim} V ${p.vocab} bias ${p.bias} chunkRows ${chunkRows}`;
        assertClose(fused.logp, host.logp, `${what}: logp vs host`, 1e-12, 1e-10);
        assertClose(fused.entropy, host.entropy, `${what}: entropy vs host`, 1e-12, 1e-10);
        expectOutcome(fused, unfused, what, 1e-12, 1e-10);
      }
    }
  });

  it('passes finite-difference gradchecks w.r.t. hidden, weight and bias, for logp and for entropy', async () => {
    T.setBackend(reference);
    const p: Problem = { rows: 7, dim: 5, vocab: 9, bias: true, seed: 4 };
    const d = problemData(p);
    for (const output of ['logp', 'entropy'] as const) {
      for (const chunkRows of [3, 7]) {
        const inputs = [T.tensor(d.hidden, [p.rows, p.dim]), T.tensor(d.weight, [p.vocab, p.dim]), T.tensor(d.bias, [p.vocab]), T.tensor(d.targets, [p.rows], 'int32')];
        const r = await T.gradcheck((h, w, bias, t) => T.linearLogSoftmaxGather(h, w, t, { bias, chunkRows })[output], inputs, { constant: [3] });
        inputs.forEach((x) => x.dispose());
        expect(r.ok, `${output} chunkRows ${chunkRows}: worst ${JSON.stringify(r.worst)}`).toBe(true);
      }
    }
  });

  it('computes no weight gradient for a frozen weight (LoRA), and the same hidden gradient', async () => {
    const p = problems[0];
    const trainable = await run(reference, p, { fused: true, chunkRows: 4 });
    let products = 0;
    const matmul = reference.matmul.bind(reference);
    reference.matmul = (...args) => { products++; matmul(...args); };
    try {
      const frozen = await run(reference, p, { fused: true, chunkRows: 4, frozenWeight: true });
      expect(frozen.grads[1]).toBeNull();
      assertClose(frozen.grads[0]!, trainable.grads[0]!, 'hidden gradient', 0, 0);
      // 4 chunks: forward logits, then per chunk recomputed logits and the hidden gradient; no gz·h products.
      expect(products).toBe(4 + 4 * 2);
      // One chunk: its logits are kept for the backward, which only forms the hidden gradient.
      products = 0;
      const single = await run(reference, p, { fused: true, frozenWeight: true });
      assertClose(single.grads[0]!, trainable.grads[0]!, 'hidden gradient, one chunk', 1e-12, 1e-10);
      expect(products).toBe(1 + 1);
    } finally {
      reference.matmul = matmul;
    }
  });

  it('never holds [N, V] logits: peak memory stays near two chunks', async () => {
    const p: Problem = { rows: 64, dim: 4, vocab: 500, bias: false, seed: 5 };
    const peakOf = async (mode: { fused: boolean; chunkRows?: number }) => {
      const fresh = new ReferenceBackend();
      await run(fresh, p, mode);
      return fresh.memory().peakBytes;
    };
    const fused = await peakOf({ fused: true, chunkRows: 8 });
    const unfused = await peakOf({ fused: false });
    // The reference backend counts 4 bytes an element, as the float32 product backends store them.
    const logitBytes = p.rows * p.vocab * 4;
    // Unfused: the logits and their gradient at once.
    expect(unfused).toBeGreaterThan(2 * logitBytes);
    // Fused: inputs, the weight gradient and one chunk's contribution, and two [8, V] buffers (≈ 60 kB).
    expect(fused).toBeLessThan(logitBytes / 2);
  });

  it('sizes default chunks from the logit budget, evened out over the chunks', () => {
    const budget = T.LOGIT_CHUNK_ELEMENTS;
    for (const [rows, vocab] of [[1024, 49152], [1024, 151936], [5, 32], [3, budget * 2], [0, 7], [1000, 16411]]) {
      const chunkRows = T.defaultChunkRows(rows, vocab);
      const chunks = Math.ceil(rows / chunkRows);
      expect(chunkRows).toBeGreaterThanOrEqual(1);
      expect(chunkRows * vocab <= budget || chunkRows === 1, `${rows} × ${vocab}`).toBe(true);
      // No more chunks than the budget forces.
      expect(chunks).toBe(Math.ceil(rows / Math.max(1, Math.floor(budget / vocab))));
    }
    expect(T.defaultChunkRows(1024, 49152)).toBe(256);
    expect(T.defaultChunkRows(1024, 151936)).toBe(103);
  });

  it('rejects bad inputs with messages that name the problem', () => {
    T.setBackend(reference);
    T.tidy(() => {
      const h = T.zeros([3, 4]);
      const w = T.zeros([5, 4]);
      const t = T.tensor([0, 1, 2], [3], 'int32');
      expect(() => T.linearLogSoftmaxGather(h, T.zeros([5, 3]), t)).toThrow(/weight \[5, 3\] must be \[V, 4\]/);
      expect(() => T.linearLogSoftmaxGather(T.zeros([3]), w, t)).toThrow(/hidden must be \[N, D\]/);
      expect(() => T.linearLogSoftmaxGather(h, w, T.tensor([0, 1], [2], 'int32'))).toThrow(/targets \[2\] do not match the 3 rows/);
      expect(() => T.linearLogSoftmaxGather(h, w, t, { bias: T.zeros([4]) })).toThrow(/bias \[4\] must be \[5\]/);
      expect(() => T.linearLogSoftmaxGather(h, w, t, { chunkRows: 0 })).toThrow(/chunkRows must be a positive integer/);
      expect(() => T.linearLogSoftmaxGather(h, w, T.zeros([3]))).toThrow(/expected int32/);
    });
  });

  it('linearCrossEntropy is the mean −logp over rows with a target', async () => {
    T.setBackend(reference);
    const p = problems[0];
    const host = hostExpected(p);
    const d = problemData(p);
    const loss = T.tidy(() => T.linearCrossEntropy(T.tensor(d.hidden, [p.rows, p.dim]), T.tensor(d.weight, [p.vocab, p.dim]), T.tensor(d.targets, [p.rows], 'int32'), { chunkRows: 5 }));
    const valid = d.targets.filter((t) => t >= 0 && t < p.vocab).length;
    const ignoredHigh = d.targets.filter((t) => t >= p.vocab).length;
    // Targets ≥ V count as rows (logp 0) in the mean, as crossEntropy does.
    expect(await loss.item()).toBeCloseTo(-host.logp.reduce((s, x) => s + x, 0) / (valid + ignoredHigh), 12);
    loss.dispose();
  });
});

const { available } = await productBackends();
afterAll(() => { for (const b of available) b.backend.destroy(); });

// Product backends: a vocabulary past one workgroup's row and chunk sizes that leave a short last chunk.
const productProblems: Problem[] = [
  { rows: 13, dim: 7, vocab: 11, bias: false, seed: 6 },
  { rows: 37, dim: 19, vocab: 1031, bias: true, seed: 7 },
  { rows: 70, dim: 33, vocab: 517, bias: false, seed: 8 },
];
for (const { name, backend } of available) {
  describe(`linearLogSoftmaxGather on ${name}`, () => {
    it('matches the float64 reference and its own unfused path, for chunk sizes that do not divide N', async () => {
      for (const p of productProblems) {
        const want = await run(reference, p, { fused: false });
        const unfused = await run(backend, p, { fused: false });
        for (const chunkRows of [undefined, 8, 1 + Math.floor(p.rows / 3)]) {
          const what = `${name} N ${p.rows} D ${p.dim} V ${p.vocab} chunkRows ${chunkRows}`;
          const got = await run(backend, p, { fused: true, chunkRows });
          expectOutcome(got, want, `${what} vs reference`, 1e-4 * Math.sqrt(p.dim), 1e-4);
          expectOutcome(got, unfused, `${what} vs unfused`, 1e-5 * Math.sqrt(p.dim), 1e-5);
        }
      }
    });
    it('frozen weight: no weight gradient, same hidden gradient', async () => {
      const p = productProblems[1];
      const trainable = await run(backend, p, { fused: true, chunkRows: 10 });
      const frozen = await run(backend, p, { fused: true, chunkRows: 10, frozenWeight: true });
      expect(frozen.grads[1]).toBeNull();
      assertClose(frozen.grads[0]!, trainable.grads[0]!, `${name} hidden gradient`, 0, 0);
    });
  });
}

// LoRA keeps the frozen head / tied embedding 16-bit (lora.frozenDtype): the fused head widens it inside matmul.
describe('linearLogSoftmaxGather with a 16-bit frozen weight', () => {
  const backends = [{ name: 'reference', backend: reference as Backend }, ...available];
  it('equals a float32 weight holding the rounded values, on every backend (logp, entropy, hidden gradient)', async () => {
    const p: Problem = { rows: 21, dim: 9, vocab: 301, bias: false, seed: 9 };
    const d = problemData(p);
    for (const { name, backend } of backends) {
      T.setBackend(backend);
      for (const dtype of ['bfloat16', 'float16'] as const) {
        const outcome = async (weightDType: 'float32' | typeof dtype) => {
          const hidden = T.tensor(d.hidden, [p.rows, p.dim]).requireGrad();
          const weight = T.tensor(roundToHalf(dtype, d.weight), [p.vocab, p.dim], weightDType);
          const targets = T.tensor(d.targets, [p.rows], 'int32');
          const { logp, entropy } = T.linearLogSoftmaxGather(hidden, weight, targets, { chunkRows: 8 });
          const loss = T.tidy(() => T.add(T.sum(logp), T.mulScalar(T.sum(entropy), 0.5)));
          T.backward(loss);
          const result = { logp: await logp.read(), entropy: await entropy.read(), grad: await hidden.grad!.read() };
          for (const t of [hidden, weight, targets, logp, entropy, loss]) t.dispose();
          return result;
        };
        const want = await outcome('float32');
        const got = await outcome(dtype);
        assertClose(got.logp, want.logp, `${name} ${dtype}: logp`, 1e-6, 1e-5);
        assertClose(got.entropy, want.entropy, `${name} ${dtype}: entropy`, 1e-6, 1e-5);
        assertClose(got.grad, want.grad, `${name} ${dtype}: hidden gradient`, 1e-6, 1e-5);
      }
    }
  });
});
