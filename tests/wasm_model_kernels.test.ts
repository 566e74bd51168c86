// The WASM backend's fused model kernels (attention, log-softmax gather, RMSNorm, RoPE, SwiGLU, AdamW, sum of
// squares, writeView) and its small-m matmul path against the float64 reference, on awkward shapes, with 1
// and 2 threads; plus bitwise equality of 1- and 2-thread results.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AttentionArgs, type Backend, type DType, type Storage, type View, contiguousStrides } from '../src/backend/backend.js';
import { ReferenceBackend } from '../src/backend/reference/reference_backend.js';
import { nodeWorkerFactory } from '../src/backend/wasm/node_workers.js';
import { type WasmBackend, createWasmBackend } from '../src/backend/wasm/wasm_backend.js';

let seed = 987654;
function rnd(): number {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 4294967296;
}
function data(n: number, lo = -1, hi = 1): Float32Array {
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = lo + (hi - lo) * rnd();
  return d;
}
const ints = (n: number, lo: number, hi: number): number[] => Array.from({ length: n }, () => lo + Math.floor(rnd() * (hi - lo)));

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number, what: string): void {
  expect(actual.length, `${what} length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    if (!Number.isFinite(e) || !Number.isFinite(a)) {
      if (!Object.is(a, e) && !(Number.isNaN(a) && Number.isNaN(e))) expect.fail(`${what}[${i}]: got ${a}, expected ${e}`);
      continue;
    }
    if (Math.abs(a - e) > atol + rtol * Math.abs(e)) expect.fail(`${what}[${i}]: got ${a}, expected ${e} (|diff| ${Math.abs(a - e)})`);
  }
}

const ref = new ReferenceBackend();
const F = (d: ArrayLike<number>): Input => ({ dtype: 'float32', data: d });
const I = (d: ArrayLike<number>): Input => ({ dtype: 'int32', data: d });
interface Input { dtype: DType; data: ArrayLike<number> }
interface Output { size: number; dtype?: DType; prefill?: ArrayLike<number> }

/** Runs fn on a backend with uploaded inputs and fresh (or prefilled) outputs; returns every output's contents. */
async function run(b: Backend, inputs: Input[], outputs: Output[], fn: (xs: Storage[], os: Storage[]) => void): Promise<number[][]> {
  const xs = inputs.map((x) => b.upload(x.dtype, x.data));
  const os = outputs.map((o) => (o.prefill ? b.upload(o.dtype ?? 'float32', o.prefill) : b.alloc(o.dtype ?? 'float32', o.size)));
  fn(xs, os);
  const res: number[][] = [];
  for (const o of os) res.push(Array.from(await b.read(o)));
  for (const s of [...xs, ...os]) b.free(s);
  return res;
}

/** Runs fn on the wasm backend and the reference with identical inputs. */
async function both(w: Backend, inputs: Input[], outputs: Output[], fn: (b: Backend, xs: Storage[], os: Storage[]) => void) {
  return { got: await run(w, inputs, outputs, (x, o) => fn(w, x, o)), want: await run(ref, inputs, outputs, (x, o) => fn(ref, x, o)) };
}

interface AttnCase extends AttentionArgs { keyStart?: number[]; range?: number }
const attn = (c: Partial<AttnCase> & Pick<AttentionArgs, 'batch' | 'heads' | 'kvHeads' | 'tq' | 'tk' | 'headDim'>): AttnCase => ({
  kvStride: c.tk, scale: 1 / Math.sqrt(c.headDim), causal: false, qOffset: 0, ...c,
});

const FORWARD_CASES: AttnCase[] = [
  attn({ batch: 1, heads: 1, kvHeads: 1, tq: 1, tk: 1, headDim: 8 }),
  attn({ batch: 2, heads: 4, kvHeads: 2, tq: 37, tk: 37, headDim: 16, causal: true }),
  attn({ batch: 2, heads: 4, kvHeads: 1, tq: 5, tk: 133, kvStride: 150, headDim: 64, causal: true, qOffset: 128 }),
  attn({ batch: 3, heads: 4, kvHeads: 4, tq: 70, tk: 70, headDim: 64, keyStart: [0, 5, 69] }),
  attn({ batch: 2, heads: 2, kvHeads: 2, tq: 20, tk: 20, headDim: 8, causal: true, keyStart: [0, 12] }),
  attn({ batch: 2, heads: 4, kvHeads: 2, tq: 3, tk: 10, kvStride: 17, headDim: 16, causal: true, qOffset: 7, keyStart: [9, 0] }),
  attn({ batch: 1, heads: 4, kvHeads: 2, tq: 1, tk: 257, kvStride: 300, headDim: 64, causal: true, qOffset: 256, keyStart: [3] }),
  attn({ batch: 2, heads: 2, kvHeads: 1, tq: 9, tk: 9, headDim: 16, keyStart: [9, 2] }),
  attn({ batch: 1, heads: 2, kvHeads: 2, tq: 67, tk: 131, headDim: 6, causal: true, qOffset: 64, scale: 1.5, range: 2 }),
  attn({ batch: 1, heads: 3, kvHeads: 1, tq: 130, tk: 130, headDim: 20, causal: true, range: 3, scale: 1 }),
];

// kvStride == tk in the backward
const BACKWARD_CASES: AttnCase[] = [
  attn({ batch: 1, heads: 1, kvHeads: 1, tq: 1, tk: 1, headDim: 8 }),
  attn({ batch: 2, heads: 4, kvHeads: 2, tq: 37, tk: 37, headDim: 16, causal: true }),
  attn({ batch: 2, heads: 4, kvHeads: 1, tq: 5, tk: 133, headDim: 64, causal: true, qOffset: 128 }),
  attn({ batch: 3, heads: 4, kvHeads: 4, tq: 70, tk: 70, headDim: 64, keyStart: [0, 5, 69] }),
  attn({ batch: 2, heads: 2, kvHeads: 2, tq: 20, tk: 20, headDim: 8, causal: true, keyStart: [0, 12] }),
  attn({ batch: 2, heads: 4, kvHeads: 2, tq: 3, tk: 10, headDim: 16, causal: true, qOffset: 7, keyStart: [9, 0] }),
  attn({ batch: 2, heads: 2, kvHeads: 1, tq: 9, tk: 9, headDim: 16, keyStart: [9, 2] }),
  attn({ batch: 1, heads: 2, kvHeads: 2, tq: 67, tk: 131, headDim: 6, causal: true, qOffset: 64, scale: 1.5, range: 2 }),
  attn({ batch: 1, heads: 4, kvHeads: 2, tq: 150, tk: 150, headDim: 64, causal: true, keyStart: [17] }),
];

function attnInputs(c: AttnCase) {
  const r = c.range ?? 1;
  const qn = c.batch * c.heads * c.tq * c.headDim;
  const kn = c.batch * c.kvHeads * c.kvStride * c.headDim;
  return { q: data(qn, -r, r), k: data(kn, -r, r), v: data(kn), qn, kn, rows: c.batch * c.heads * c.tq };
}
const label = (c: AttnCase) => JSON.stringify(c);

describe.each([1, 2])('wasm model kernels, %i thread(s)', (threads) => {
  let w: WasmBackend;
  beforeAll(async () => {
    w = await createWasmBackend({ threads, workerFactory: nodeWorkerFactory() });
  });
  afterAll(() => w.destroy());

  it('writeView: KV-cache rows at a position, permuted source, int32 words; other elements untouched', async () => {
    // x [2, 3, 4, 5] contiguous into a cache [2, 3, 11, 5] at position 6
    const shape = [2, 3, 4, 5];
    const xView: View = { strides: contiguousStrides(shape), offset: 0 };
    const cache = [2, 3, 11, 5];
    const cs = contiguousStrides(cache);
    const outView: View = { strides: cs, offset: 6 * 5 };
    let r = await both(w, [F(data(120))], [{ size: 330, prefill: data(330) }], (b, [x], [o]) => b.kernels.writeView(x, xView, o, outView, shape));
    close(r.got[0], r.want[0], 0, 0, 'writeView cache');
    // a transposed source written into the middle of a larger buffer with a reversed inner order
    const tShape = [7, 13];
    r = await both(w, [F(data(100))], [{ size: 200, prefill: data(200) }], (b, [x], [o]) =>
      b.kernels.writeView(x, { strides: [1, 7], offset: 3 }, o, { strides: [13, 1], offset: 50 }, tShape));
    close(r.got[0], r.want[0], 0, 0, 'writeView transpose');
    // int32 words, strided destination (every other element), 40000 elements (threaded)
    const n = 40000;
    const words = ints(n, -2e9, 2e9);
    r = await both(w, [I(words)], [{ size: 2 * n + 1, dtype: 'int32', prefill: ints(2 * n + 1, 0, 9) }], (b, [x], [o]) =>
      b.kernels.writeView(x, { strides: [1], offset: 0 }, o, { strides: [2], offset: 1 }, [n]));
    expect(r.got[0]).toEqual(r.want[0]);
  });

  it('attention forward: GQA, causal, qOffset, kvStride > tk, left padding, rows with no visible key', async () => {
    for (const c of FORWARD_CASES) {
      const { q, k, v, qn, kn, rows } = attnInputs(c);
      const ks = c.keyStart ? [I(c.keyStart)] : [];
      const r = await both(w, [F(q), F(k), F(v), ...ks], [{ size: qn, prefill: data(qn) }, { size: rows, prefill: data(rows) }],
        (b, [sq, sk, sv, sks], [o, l]) => b.kernels.attention(sq, sk, sv, sks ?? null, o, l, c));
      void kn;
      close(r.got[0], r.want[0], 2e-6, 2e-5, `attention out ${label(c)}`);
      close(r.got[1], r.want[1], 2e-6, 2e-6, `attention lse ${label(c)}`);
    }
  });

  it('attention backward: gq, gk, gv with GQA, causal, qOffset, padding', async () => {
    for (const c of BACKWARD_CASES) {
      const { q, k, v, qn, kn, rows } = attnInputs(c);
      const ksIn = c.keyStart ? [I(c.keyStart)] : [];
      // out and lse from the float64 forward, rounded to float32, feed both backwards
      const [out, lse] = await run(ref, [F(q), F(k), F(v), ...ksIn], [{ size: qn }, { size: rows }],
        ([sq, sk, sv, sks], [o, l]) => ref.kernels.attention(sq, sk, sv, sks ?? null, o, l, c));
      const gOut = data(qn);
      const r = await both(w, [F(q), F(k), F(v), F(out), F(lse), F(gOut), ...ksIn],
        [{ size: qn, prefill: data(qn) }, { size: kn, prefill: data(kn) }, { size: kn, prefill: data(kn) }],
        (b, [sq, sk, sv, so, sl, sg, sks], [gq, gk, gv]) => b.kernels.attentionBackward(sq, sk, sv, sks ?? null, so, sl, sg, gq, gk, gv, c));
      close(r.got[0], r.want[0], 1e-5, 1e-4, `attention gq ${label(c)}`);
      close(r.got[1], r.want[1], 1e-5, 1e-4, `attention gk ${label(c)}`);
      close(r.got[2], r.want[2], 1e-5, 1e-4, `attention gv ${label(c)}`);
    }
  });

  it('attention rejects bad shapes', () => {
    const s = w.alloc('float32', 64);
    const c = attn({ batch: 1, heads: 3, kvHeads: 2, tq: 1, tk: 1, headDim: 8 });
    expect(() => w.kernels.attention(s, s, s, null, s, s, c)).toThrow(/kvHeads/);
    const d = attn({ batch: 1, heads: 1, kvHeads: 1, tq: 1, tk: 2, kvStride: 4, headDim: 8 });
    expect(() => w.kernels.attentionBackward(s, s, s, null, s, s, s, s, s, s, d)).toThrow(/kvStride == tk/);
    expect(() => w.kernels.attention(s, s, s, null, s, s, attn({ batch: 1, heads: 1, kvHeads: 1, tq: 9, tk: 9, headDim: 8 }))).toThrow(/needs/);
    w.free(s);
  });

  it('logSoftmaxGather forward and backward: small and large vocabularies, ignored targets', async () => {
    const cases: [number, number, number][] = [[1, 5, 4], [7, 37, 8], [13, 1000, 8], [9, 2500, 30], [64, 1031, 6], [3, 1, 1]];
    for (const [rows, cols, range] of cases) {
      const x = data(rows * cols, -range, range);
      if (cols > 2048) for (let c = 0; c < cols; c++) x[cols + c] = c / 40; // a row whose max grows block after block
      const t = ints(rows, 0, cols);
      t[0] = -1;
      if (rows > 2) t[2] = cols; // out of range: ignored
      const r = await both(w, [F(x), I(t)], [{ size: rows }, { size: rows }, { size: rows }],
        (b, [sx, st], [lp, en, ls]) => b.kernels.logSoftmaxGather(sx, st, lp, en, ls, rows, cols));
      close(r.got[0], r.want[0], 2e-6, 2e-6, `logp ${rows}x${cols}`);
      close(r.got[1], r.want[1], 1e-5, 1e-5, `entropy ${rows}x${cols}`);
      close(r.got[2], r.want[2], 2e-6, 2e-6, `lse ${rows}x${cols}`);
      const [lse, ent] = [r.want[2], r.want[1]];
      const gl = data(rows), ge = data(rows);
      const g = await both(w, [F(x), I(t), F(lse), F(ent), F(gl), F(ge)], [{ size: rows * cols, prefill: data(rows * cols) }],
        (b, [sx, st, sl, se, sgl, sge], [gx]) => b.kernels.logSoftmaxGatherBackward(sx, st, sl, se, sgl, sge, gx, rows, cols));
      close(g.got[0], g.want[0], 2e-6, 2e-5, `gLogits ${rows}x${cols}`);
    }
  });

  it('rmsNorm forward and backward', async () => {
    for (const [rows, cols] of [[1, 1], [3, 7], [17, 64], [100, 257], [600, 384], [33, 1000]]) {
      const x = data(rows * cols, -2, 2), wt = data(cols, 0.5, 1.5);
      const eps = 1e-5;
      const r = await both(w, [F(x), F(wt)], [{ size: rows * cols }, { size: rows }], (b, [sx, sw], [o, rs]) => b.kernels.rmsNorm(sx, sw, o, rs, rows, cols, eps));
      close(r.got[0], r.want[0], 1e-6, 1e-5, `rmsNorm out ${rows}x${cols}`);
      close(r.got[1], r.want[1], 0, 1e-5, `rmsNorm rstd ${rows}x${cols}`);
      const g = data(rows * cols);
      const rstd = r.want[1];
      const bw = await both(w, [F(x), F(wt), F(rstd), F(g)], [{ size: rows * cols, prefill: data(rows * cols) }, { size: cols, prefill: data(cols) }],
        (b, [sx, sw, sr, sg], [gx, gw]) => b.kernels.rmsNormBackward(sx, sw, sr, sg, gx, gw, rows, cols));
      close(bw.got[0], bw.want[0], 1e-5, 1e-4, `rmsNorm gx ${rows}x${cols}`);
      close(bw.got[1], bw.want[1], 1e-5 * Math.sqrt(rows), 1e-5, `rmsNorm gWeight ${rows}x${cols}`);
    }
  });

  it('rope forward and inverse over large positions', async () => {
    for (const [batch, t, heads, headDim, theta] of [[1, 1, 1, 2, 10000], [2, 7, 3, 8, 10000], [2, 33, 4, 64, 500000], [3, 5, 2, 6, 10000], [1, 300, 2, 16, 10000]]) {
      const n = batch * t * heads * headDim;
      const x = data(n);
      const pos = ints(batch * t, 0, 40000);
      pos[0] = 0;
      for (const inverse of [false, true]) {
        const a = { batch, t, heads, headDim, theta, inverse };
        const r = await both(w, [F(x), I(pos)], [{ size: n }], (b, [sx, sp], [o]) => b.kernels.rope(sx, sp, o, a));
        close(r.got[0], r.want[0], 2e-6, 1e-5, `rope ${JSON.stringify(a)}`);
      }
    }
  });

  it('swiglu forward and backward, including saturated gates', async () => {
    for (const n of [1, 7, 1029, 40001]) {
      const gate = data(n, -12, 12), up = data(n, -2, 2), gOut = data(n);
      gate[0] = -95; // exp(−g) overflows
      if (n > 2) gate[1] = 95;
      const r = await both(w, [F(gate), F(up)], [{ size: n }], (b, [g, u], [o]) => b.kernels.swiglu(g, u, o, n));
      close(r.got[0], r.want[0], 1e-6, 1e-5, `swiglu n=${n}`);
      const bw = await both(w, [F(gate), F(up), F(gOut)], [{ size: n }, { size: n }], (b, [g, u, go], [gg, gu]) => b.kernels.swigluBackward(g, u, go, gg, gu, n));
      close(bw.got[0], bw.want[0], 1e-6, 1e-5, `swiglu gGate n=${n}`);
      close(bw.got[1], bw.want[1], 1e-6, 1e-5, `swiglu gUp n=${n}`);
    }
  });

  it('adamw: several steps with weight decay and a gradient scale', async () => {
    for (const n of [1, 6, 40003]) {
      const results: number[][][] = [];
      const init = data(n);
      const grads = Array.from({ length: 5 }, () => data(n, -3, 3));
      for (const b of [w, ref] as Backend[]) {
        const p = b.upload('float32', init), m = b.alloc('float32', n), v = b.alloc('float32', n), sc = b.upload('float32', [0.37]);
        for (let step = 1; step <= 5; step++) {
          const g = b.upload('float32', grads[step - 1]);
          b.kernels.adamw(p, g, m, v, sc, { lr: 0.01, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step }, n);
          b.free(g);
        }
        results.push([Array.from(await b.read(p)), Array.from(await b.read(m)), Array.from(await b.read(v))]);
        for (const s of [p, m, v, sc]) b.free(s);
      }
      close(results[0][0], results[1][0], 1e-6, 1e-5, `adamw param n=${n}`);
      close(results[0][1], results[1][1], 1e-7, 1e-5, `adamw m n=${n}`);
      close(results[0][2], results[1][2], 1e-8, 1e-5, `adamw v n=${n}`);
    }
  });

  it('sumSquares with and without accumulate', async () => {
    for (const n of [0, 1, 7, 16384, 16385, 100003]) {
      const x = data(Math.max(1, n), -2, 2);
      for (const accumulate of [false, true]) {
        const r = await both(w, [F(x)], [{ size: 1, prefill: [2.5] }], (b, [sx], [o]) => b.kernels.sumSquares(sx, o, n, accumulate));
        close(r.got[0], r.want[0], 1e-6, 1e-6, `sumSquares n=${n} acc=${accumulate}`);
      }
    }
  });

  it('matmul small m (skinny path): m = 1, 2, 7, 16 with odd n, k, transposes and batches', async () => {
    const shapes: [number, number, number, number][] = [
      [1, 1, 1023, 257], [1, 2, 37, 1025], [1, 7, 1023, 257], [1, 16, 301, 129], [1, 16, 3, 5], [1, 7, 9, 1],
      [3, 2, 65, 33], [2, 16, 130, 70], [1, 5, 17, 0], [4, 1, 64, 63], [1, 16, 67, 600], [1, 8, 129, 2051], [2, 3, 1024, 300],
    ];
    for (const [batch, m, n, k] of shapes) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          for (const bcast of batch > 1 ? [0, 1, 2] : [0]) {
            const sA = bcast === 1 ? 0 : m * k, sB = bcast === 2 ? 0 : k * n;
            const a = data(Math.max(1, (batch - 1) * sA + m * k)), bm = data(Math.max(1, (batch - 1) * sB + k * n));
            const r = await both(w, [F(a), F(bm)], [{ size: batch * m * n, prefill: data(batch * m * n) }], (b, [x, y], [o]) =>
              b.matmul(x, y, o, { batch, m, n, k, transA, transB, strideA: sA, strideB: sB }));
            close(r.got[0], r.want[0], 1e-6 * (k + 1), 1e-5, `matmul b${batch} ${m}x${n}x${k} tA=${transA} tB=${transB} bc=${bcast}`);
          }
        }
      }
    }
  });
});

describe('wasm model kernels: thread-count independence', () => {
  it('1-thread and 2-thread results are bitwise identical', async () => {
    const w1 = await createWasmBackend({ threads: 1 });
    const w2 = await createWasmBackend({ threads: 2, workerFactory: nodeWorkerFactory() });
    try {
      const c = attn({ batch: 2, heads: 4, kvHeads: 2, tq: 90, tk: 90, headDim: 64, causal: true, keyStart: [0, 7] });
      const { q, k, v, qn, kn, rows } = attnInputs(c);
      const gOut = data(qn);
      const lr = 300, lc = 1000;
      const logits = data(lr * lc, -5, 5), targets = ints(lr, 0, lc), g1 = data(lr), g2 = data(lr);
      const nx = 70001, sq = data(nx);
      const nr = 200, nc = 96, xn = data(nr * nc), wn = data(nc), gn = data(nr * nc);
      const ma = data(16 * 1024), mb = data(1024 * 777);
      const outs: number[][][] = [];
      for (const w of [w1, w2]) {
        const r: number[][] = [];
        r.push(...await run(w, [F(q), F(k), F(v), I(c.keyStart!), F(gOut)],
          [{ size: qn }, { size: rows }, { size: qn }, { size: kn }, { size: kn }], ([sq2, sk, sv, sks, sg], [o, l, gq, gk, gv]) => {
            w.kernels.attention(sq2, sk, sv, sks, o, l, c);
            w.kernels.attentionBackward(sq2, sk, sv, sks, o, l, sg, gq, gk, gv, c);
          }));
        r.push(...await run(w, [F(logits), I(targets), F(g1), F(g2)], [{ size: lr }, { size: lr }, { size: lr }, { size: lr * lc }],
          ([x, t, a, b2], [lp, en, ls, gx]) => {
            w.kernels.logSoftmaxGather(x, t, lp, en, ls, lr, lc);
            w.kernels.logSoftmaxGatherBackward(x, t, ls, en, a, b2, gx, lr, lc);
          }));
        r.push(...await run(w, [F(sq)], [{ size: 1 }], ([x], [o]) => w.kernels.sumSquares(x, o, nx, false)));
        r.push(...await run(w, [F(xn), F(wn), F(gn)], [{ size: nr * nc }, { size: nr }, { size: nr * nc }, { size: nc }],
          ([x, wt, g], [o, rs, gx, gw]) => {
            w.kernels.rmsNorm(x, wt, o, rs, nr, nc, 1e-6);
            w.kernels.rmsNormBackward(x, wt, rs, g, gx, gw, nr, nc);
          }));
        r.push(...await run(w, [F(ma), F(mb)], [{ size: 16 * 777 }], ([a, b2], [o]) =>
          w.matmul(a, b2, o, { batch: 1, m: 16, n: 777, k: 1024, transA: false, transB: true, strideA: 0, strideB: 0 })));
        // small m without transB: k split in chunks fixed by the shape, partials added in order
        r.push(...await run(w, [F(ma), F(mb)], [{ size: 5 * 777 }], ([a, b2], [o]) =>
          w.matmul(a, b2, o, { batch: 1, m: 5, n: 777, k: 1024, transA: false, transB: false, strideA: 0, strideB: 0 })));
        outs.push(r);
      }
      for (let i = 0; i < outs[0].length; i++) expect(outs[1][i], `output ${i}`).toEqual(outs[0][i]);
    } finally {
      w1.destroy();
      w2.destroy();
    }
  });
});
