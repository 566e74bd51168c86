// Fused transformer ops on the float64 reference: forwards against compositions of basic ops, backwards by
// finite differences. The product backends are checked against this reference in their own kernel tests.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import * as T from '../../src/tensor/index.js';
import type { Tensor } from '../../src/tensor/index.js';

const backend = new ReferenceBackend();
beforeAll(() => T.setBackend(backend));
afterEach(() => expect(backend.memory().liveBuffers, 'buffers leaked').toBe(0));

const rnd = (shape: number[], seed: number, lo = -1, hi = 1) => T.randUniform(shape, seed, lo, hi);
const ints = (data: number[], shape = [data.length]) => T.tensor(data, shape, 'int32');

async function check(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], constant: number[] = []) {
  const r = await T.gradcheck(fn, inputs, { constant });
  inputs.forEach((t) => t.dispose());
  expect(r.ok, `worst ${JSON.stringify(r.worst)}`).toBe(true);
}

async function expectSame(a: Tensor, b: Tensor, tol = 1e-12) {
  expect(a.shape).toEqual(b.shape);
  const [x, y] = [await a.toArray(), await b.toArray()];
  x.forEach((v, i) => expect(Math.abs(v - y[i]), `element ${i}: ${v} vs ${y[i]}`).toBeLessThanOrEqual(tol * (1 + Math.abs(y[i]))));
  a.dispose();
  b.dispose();
}

/** softmax(q kᵀ · scale + mask) v with the mask built on the host: the unfused definition. */
function naiveAttention(q: Tensor, k: Tensor, v: Tensor, o: { causal: boolean; qOffset: number; keyStart: number[] | null; kvLength: number }): Tensor {
  const [B, H, Tq, D] = q.shape;
  const Hkv = k.shape[1];
  const tk = o.kvLength;
  return T.tidy(() => {
    const rep = H / Hkv;
    // Expand kv heads to query heads: [B, Hkv, 1, tk, D] → [B, Hkv, rep, tk, D] → [B, H, tk, D].
    const expand = (x: Tensor) => T.reshape(T.broadcastTo(T.unsqueeze(T.slice(x, [0, 0, 0, 0], [B, Hkv, tk, D]), 2), [B, Hkv, rep, tk, D]), [B, H, tk, D]);
    const s = T.mulScalar(T.matmul(q, expand(k), { transB: true }), 1 / Math.sqrt(D));
    const mask: number[] = [];
    for (let b = 0; b < B; b++) for (let i = 0; i < Tq; i++) for (let j = 0; j < tk; j++) {
      const ok = (!o.causal || j <= o.qOffset + i) && (!o.keyStart || j >= o.keyStart[b]);
      mask.push(ok ? 0 : -1e30);
    }
    const m = T.reshape(T.tensor(mask, [B, 1, Tq, tk]), [B, 1, Tq, tk]);
    return T.matmul(T.softmax(T.add(s, m)), expand(v));
  });
}

describe('fused ops vs their definitions (reference backend)', () => {
  it('attention = softmax(q kᵀ/√d + mask) v, with GQA, causal offset, KV-cache rows and left padding', async () => {
    for (const o of [
      { causal: true, qOffset: 0, keyStart: null, kvLength: 5, tq: 5, stride: 5 },
      { causal: true, qOffset: 3, keyStart: [0, 2], kvLength: 7, tq: 4, stride: 9 },
      { causal: false, qOffset: 0, keyStart: [1, 0], kvLength: 6, tq: 3, stride: 6 },
    ]) {
      const q = rnd([2, 4, o.tq, 6], 1);
      const k = rnd([2, 2, o.stride, 6], 2);
      const v = rnd([2, 2, o.stride, 6], 3);
      const ks = o.keyStart ? ints(o.keyStart) : null;
      const fused = T.attention(q, k, v, { causal: o.causal, qOffset: o.qOffset, kvLength: o.kvLength, keyStart: ks });
      await expectSame(fused, naiveAttention(q, k, v, o), 1e-10);
      for (const t of [q, k, v, ks]) t?.dispose();
    }
  });

  it('attention rows that see no key give 0', async () => {
    const q = rnd([1, 1, 3, 4], 4);
    const k = rnd([1, 1, 3, 4], 5);
    const ks = ints([2]);
    const out = T.attention(q, k, k, { causal: true, keyStart: ks });
    const a = await out.toArray();
    expect(a.slice(0, 8)).toEqual(new Array(8).fill(0)); // rows 0, 1 precede the first visible key
    expect(a.slice(8).some((x) => x !== 0)).toBe(true);
    for (const t of [q, k, ks, out]) t.dispose();
  });

  it('logSoftmaxGather = log-softmax picked at the target, entropy = −Σ p log p; ignored targets give 0', async () => {
    const x = rnd([4, 7], 6, -3, 3);
    const t = ints([3, 0, -1, 6]);
    const { logp, entropy } = T.logSoftmaxGather(x, t);
    const lsT = T.logSoftmax(x);
    const ls = await lsT.toArray();
    lsT.dispose();
    const lp = await logp.toArray();
    const en = await entropy.toArray();
    [3, 0, -1, 6].forEach((target, r) => {
      expect(lp[r]).toBeCloseTo(target < 0 ? 0 : ls[r * 7 + target], 12);
      let h = 0;
      for (let c = 0; c < 7; c++) h -= Math.exp(ls[r * 7 + c]) * ls[r * 7 + c];
      expect(en[r]).toBeCloseTo(h, 12);
    });
    for (const a of [x, t, logp, entropy]) a.dispose();
  });

  it('rmsNorm = x / sqrt(mean x² + eps) · w', async () => {
    const x = rnd([3, 5], 7);
    const w = rnd([5], 8);
    const want = T.tidy(() => T.mul(T.mul(x, T.rsqrt(T.addScalar(T.mean(T.square(x), { axis: -1, keepDims: true }), 1e-5))), w));
    await expectSame(T.rmsNorm(x, w, 1e-5), want);
    x.dispose();
    w.dispose();
  });

  it('rope rotates pairs (j, j + d/2) by pos·θ^(−2j/d) and its inverse undoes it', async () => {
    const x = rnd([2, 3, 2, 4], 9);
    const p = ints([0, 1, 2, 5, 6, 7], [2, 3]);
    const y = T.rope(x, p, 100);
    const a = await y.toArray();
    const xs = await x.toArray();
    // b=1, t=2 (pos 7), head 1, pair j=1: frequency 100^(-1/2).
    const base = ((1 * 3 + 2) * 2 + 1) * 4;
    const ang = 7 * Math.pow(100, -0.5);
    expect(a[base + 1]).toBeCloseTo(xs[base + 1] * Math.cos(ang) - xs[base + 3] * Math.sin(ang), 12);
    expect(a[base + 3]).toBeCloseTo(xs[base + 3] * Math.cos(ang) + xs[base + 1] * Math.sin(ang), 12);
    const back = T.zeros(x.shape);
    backend.kernels.rope(y.storage, p.storage, back.storage, { batch: 2, t: 3, heads: 2, headDim: 4, theta: 100, inverse: true });
    await expectSame(back, x);
    for (const t of [p, y]) t.dispose();
  });

  it('rope with an inverse-frequency table rotates pair j by pos·table[j]', async () => {
    const x = rnd([1, 2, 1, 4], 10);
    const p = ints([3, 11], [1, 2]);
    const table = Float64Array.from([0.3, 0.0125]);
    const y = T.rope(x, p, 10000, table);
    const a = await y.toArray();
    const xs = await x.toArray();
    const ang = 11 * 0.0125; // t=1, pair j=1
    expect(a[4 + 1]).toBeCloseTo(xs[4 + 1] * Math.cos(ang) - xs[4 + 3] * Math.sin(ang), 12);
    expect(a[4 + 3]).toBeCloseTo(xs[4 + 3] * Math.cos(ang) + xs[4 + 1] * Math.sin(ang), 12);
    expect(() => T.rope(x, p, 10000, new Float64Array(3))).toThrow(/inverseFrequencies has 3 entries, headDim 4 needs 2/);
    for (const t of [x, p, y]) t.dispose();
  });

  it('swiglu = silu(gate) · up', async () => {
    const g = rnd([4, 3], 10);
    const u = rnd([4, 3], 11);
    await expectSame(T.swiglu(g, u), T.tidy(() => T.mul(T.silu(g), u)));
    g.dispose();
    u.dispose();
  });

  it('lowRankLinear = x Wᵀ + bias + scale · (xa Aᵀ) Bᵀ', async () => {
    const [x, w, a, b, bias, xa] = [rnd([2, 3, 5], 40), rnd([7, 5], 41), rnd([3, 5], 42), rnd([7, 3], 43), rnd([7], 44), rnd([2, 3, 5], 45)];
    const composed = (low: Tensor) => T.tidy(() => T.add(T.add(T.matmul(x, w, { transB: true }), bias),
      T.mulScalar(T.matmul(T.matmul(low, a, { transB: true }), b, { transB: true }), -0.75)));
    await expectSame(T.lowRankLinear(x, w, a, b, -0.75, { bias }), composed(x));
    await expectSame(T.lowRankLinear(x, w, a, b, -0.75, { bias, xa }), composed(xa));
    for (const t of [x, w, a, b, bias, xa]) t.dispose();
  });
});

describe('gradcheck of the fused ops (float64 finite differences)', () => {
  it('attention: causal GQA', async () => {
    await check((q, k, v) => T.attention(q, k, v, { causal: true }), [rnd([1, 4, 3, 4], 12), rnd([1, 2, 3, 4], 13), rnd([1, 2, 3, 4], 14)]);
  });
  it('attention: qOffset, left padding (a row with no visible key), one kv head', async () => {
    const ks = ints([2, 0]);
    await check((q, k, v) => T.attention(q, k, v, { causal: true, qOffset: 2, keyStart: ks }),
      [rnd([2, 2, 3, 4], 15), rnd([2, 1, 5, 4], 16), rnd([2, 1, 5, 4], 17)]);
    const ks2 = ints([3]);
    await check((q, k, v) => T.attention(q, k, v, { causal: true, keyStart: ks2 }), [rnd([1, 1, 4, 2], 18), rnd([1, 1, 4, 2], 19), rnd([1, 1, 4, 2], 20)]);
    ks.dispose();
    ks2.dispose();
  });
  it('attention: not causal, custom scale', async () => {
    await check((q, k, v) => T.attention(q, k, v, { scale: 0.7 }), [rnd([1, 2, 2, 3], 21), rnd([1, 2, 4, 3], 22), rnd([1, 2, 4, 3], 23)]);
  });
  it('logSoftmaxGather: logp and entropy both carry gradient', async () => {
    const t = ints([2, -1, 0, 4]);
    await check((x) => T.tidy(() => {
      const { logp, entropy } = T.logSoftmaxGather(x, t);
      return T.add(T.mulScalar(logp, 1.3), T.mulScalar(entropy, -0.6));
    }), [rnd([4, 5], 24, -2, 2)]);
    t.dispose();
  });
  it('rmsNorm', async () => check((x, w) => T.rmsNorm(x, w, 1e-5), [rnd([3, 6], 25), rnd([6], 26)]));
  it('rope', async () => {
    const p = ints([3, 0, 9, 1], [2, 2]);
    await check((x) => T.rope(x, p, 10), [rnd([2, 2, 3, 6], 27)]);
    await check((x) => T.rope(x, p, 10, Float64Array.from([0.9, 0.07, 0.004])), [rnd([2, 2, 3, 6], 28)]);
    p.dispose();
  });
  it('swiglu', async () => check((g, u) => T.swiglu(g, u), [rnd([2, 5], 28, -3, 3), rnd([2, 5], 29)]));
  it('lowRankLinear wrt x, W, A, B and bias', async () =>
    check((x, w, a, b, bias) => T.lowRankLinear(x, w, a, b, 1.5, { bias }), [rnd([2, 2, 5], 50), rnd([4, 5], 51), rnd([3, 5], 52), rnd([4, 3], 53), rnd([4], 54)]));
  it('lowRankLinear with a separate low-rank input (dropout) wrt x, A, B and xa; W constant', async () =>
    check((x, w, a, b, xa) => T.lowRankLinear(x, w, a, b, -2, { xa }), [rnd([3, 5], 55), rnd([4, 5], 56), rnd([2, 5], 57), rnd([4, 2], 58), rnd([3, 5], 59)], [1]));
});

describe('fused op errors name the problem', () => {
  it('shape mismatches', () => {
    const q = rnd([1, 3, 2, 4], 30);
    const k = rnd([1, 2, 2, 4], 31);
    expect(() => T.attention(q, k, k)).toThrow(/query heads 3 must be a multiple of kv heads 2/);
    const x = rnd([2, 5], 32);
    const t = ints([1, 2, 3]);
    expect(() => T.logSoftmaxGather(x, t)).toThrow(/targets \[3\] do not match 2 rows/);
    const w = rnd([4], 33);
    expect(() => T.rmsNorm(x, w)).toThrow(/weight \[4\] must match the last axis of x \[2, 5\]/);
    const lw = rnd([3, 5], 34), la = rnd([2, 4], 35), lb = rnd([3, 2], 36);
    expect(() => T.lowRankLinear(x, lw, la, lb, 1)).toThrow(/lowRankLinear: A \[2, 4\] must be \[r, 5\]/);
    for (const t of [lw, la, lb]) t.dispose();
    const odd = rnd([1, 1, 1, 3], 34);
    const p = ints([0]);
    expect(() => T.rope(odd, p)).toThrow(/headDim 3 must be even/);
    for (const a of [q, k, x, t, w, odd, p]) a.dispose();
  });
});
