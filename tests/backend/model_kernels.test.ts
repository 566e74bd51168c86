// The fused model kernels (src/backend/model_kernels.ts) of every backend against the float64 reference:
// one table of cases run on each target, on awkward shapes (odd sizes, non-multiples of the tiles, vocabularies
// above a block, rows with no visible key), aliasing, and the argument errors of the signature table.
// Targets: the product backends (tests/support/backends.ts) plus kernel variants — WebGPU on the OpenGL ES
// compatibility adapter with default limits (tiled kernels, no subgroups), WebGPU with the tiled attention and
// the workgroup-tree row reductions forced, WASM on one thread. WASM's thread splits must also be bitwise
// independent of the thread count.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AttentionArgs, type Backend, type DType, KernelError, type Storage, contiguousStrides,
} from '../../src/backend/backend.js';
import { KERNEL_SIGNATURES } from '../../src/backend/model_kernels.js';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import { nodeWorkerFactory } from '../../src/backend/wasm/node_workers.js';
import { createWasmBackend } from '../../src/backend/wasm/wasm_backend.js';
import { requestNodeAdapter } from '../../src/backend/webgpu/node_gpu.js';
import { type WebGPUBackendOptions, createWebGPUBackend, expandTemplate } from '../../src/backend/webgpu/webgpu_backend.js';
import { type NamedBackend, productBackends } from '../support/backends.js';
import { assertClose } from '../support/close.js';
import { hostRandom } from '../support/random.js';

const ref = new ReferenceBackend();

/** |got − want| within rtol relative, plus 2e-2·rtol of the output's scale (max |want|, at least `minScale`). */
function expectNear(got: ArrayLike<number>, want: ArrayLike<number>, what: string, rtol = 1e-4, minScale = 1): void {
  let scale = minScale;
  for (let i = 0; i < want.length; i++) if (Number.isFinite(want[i])) scale = Math.max(scale, Math.abs(want[i]));
  assertClose(got, want, what, 2e-2 * rtol * scale, rtol);
}

interface Input { dtype: DType; data: ArrayLike<number> }
const F = (data: ArrayLike<number>): Input => ({ dtype: 'float32', data });
const I = (data: ArrayLike<number>): Input => ({ dtype: 'int32', data });
/** An output storage: fresh, or prefilled with garbage the kernel must overwrite (or leave, for writeView). */
interface Output { size: number; dtype?: DType; prefill?: ArrayLike<number> }

/** Runs fn on a backend with uploaded inputs and outputs; returns every output's contents and frees all. */
async function run(b: Backend, inputs: Input[], outputs: Output[], fn: (xs: Storage[], os: Storage[]) => void): Promise<number[][]> {
  const xs = inputs.map((x) => b.upload(x.dtype, x.data));
  const os = outputs.map((o) => (o.prefill ? b.upload(o.dtype ?? 'float32', o.prefill) : b.alloc(o.dtype ?? 'float32', o.size)));
  fn(xs, os);
  const result: number[][] = [];
  for (const o of os) result.push(Array.from(await b.read(o)));
  for (const s of [...xs, ...os]) b.free(s);
  return result;
}

/** Runs fn on the target and on the reference with identical inputs. */
async function both(b: Backend, inputs: Input[], outputs: Output[], fn: (b: Backend, xs: Storage[], os: Storage[]) => void) {
  return { got: await run(b, inputs, outputs, (x, o) => fn(b, x, o)), want: await run(ref, inputs, outputs, (x, o) => fn(ref, x, o)) };
}

let seedCounter = 1000;
const data = (n: number, lo = -1, hi = 1): Float32Array => hostRandom(n, seedCounter++, lo, hi);
/** Random data of the matmulLowRank tests, from their own seeds, so that adding them changed no other test's inputs. */
let lowRankSeed = 900_000;
const lowRankData = (n: number, lo = -1, hi = 1): Float32Array => hostRandom(n, lowRankSeed++, lo, hi);
const ints = (n: number, lo: number, hi: number): number[] => Array.from(hostRandom(n, seedCounter++, 0, 1), (u) => lo + Math.floor(u * (hi - lo)));

// ------------------------------------------------------------------------------------------ attention cases

interface AttnCase extends AttentionArgs { keyStart?: number[]; range?: number }
const attn = (c: Partial<AttnCase> & Pick<AttentionArgs, 'batch' | 'heads' | 'kvHeads' | 'tq' | 'tk' | 'headDim'>): AttnCase => ({
  kvStride: c.tk, scale: 1 / Math.sqrt(c.headDim), causal: false, qOffset: 0, ...c,
});

// GQA 4/2 and 4/1, tq ≠ tk with qOffset (decode and chunked prefill), kvStride > tk (KV cache), left padding
// with rows that see no key, head dims 6 / 8 / 16 / 20 / 64 (6 and 20: not a multiple of 4 lanes / 8 lanes),
// sizes that are not multiples of the 8-row / 32-key / 64-row tiles or of the engine's query / key blocks.
const FORWARD_CASES: AttnCase[] = [
  attn({ batch: 1, heads: 1, kvHeads: 1, tq: 1, tk: 1, headDim: 8 }),
  attn({ batch: 2, heads: 4, kvHeads: 2, tq: 13, tk: 13, headDim: 16, causal: true, keyStart: [0, 3] }),
  attn({ batch: 1, heads: 2, kvHeads: 1, tq: 5, tk: 41, kvStride: 50, headDim: 8, causal: true, qOffset: 36 }),
  attn({ batch: 2, heads: 2, kvHeads: 2, tq: 37, tk: 37, headDim: 64, keyStart: [5, 40], range: 2 }),
  attn({ batch: 2, heads: 4, kvHeads: 1, tq: 5, tk: 133, kvStride: 150, headDim: 64, causal: true, qOffset: 128 }),
  attn({ batch: 1, heads: 4, kvHeads: 1, tq: 1, tk: 70, kvStride: 73, headDim: 64, causal: true, qOffset: 69 }),
  attn({ batch: 3, heads: 4, kvHeads: 4, tq: 70, tk: 70, headDim: 64, keyStart: [0, 5, 69] }),
  attn({ batch: 2, heads: 1, kvHeads: 1, tq: 67, tk: 67, headDim: 8, causal: true, keyStart: [66, 2] }),
  attn({ batch: 2, heads: 4, kvHeads: 2, tq: 3, tk: 10, kvStride: 17, headDim: 16, causal: true, qOffset: 7, keyStart: [9, 0] }),
  attn({ batch: 1, heads: 4, kvHeads: 2, tq: 7, tk: 19, headDim: 16, causal: true, qOffset: 12, keyStart: [15] }),
  attn({ batch: 1, heads: 4, kvHeads: 2, tq: 1, tk: 257, kvStride: 300, headDim: 64, causal: true, qOffset: 256, keyStart: [3] }),
  attn({ batch: 2, heads: 2, kvHeads: 1, tq: 9, tk: 9, headDim: 16, keyStart: [9, 2] }),
  attn({ batch: 1, heads: 2, kvHeads: 2, tq: 3, tk: 5, headDim: 6 }),
  attn({ batch: 1, heads: 2, kvHeads: 2, tq: 67, tk: 131, headDim: 6, causal: true, qOffset: 64, scale: 1.5, range: 2 }),
  attn({ batch: 1, heads: 3, kvHeads: 1, tq: 130, tk: 130, headDim: 20, causal: true, range: 3, scale: 1 }),
];
/** The backward requires kvStride == tk. */
const BACKWARD_CASES: AttnCase[] = [
  ...FORWARD_CASES.filter((c) => c.kvStride === c.tk && c.tq * c.tk * c.heads * c.batch < 60000),
  attn({ batch: 1, heads: 4, kvHeads: 2, tq: 150, tk: 150, headDim: 64, causal: true, keyStart: [17] }),
];

function attnInputs(c: AttnCase) {
  const range = c.range ?? 1;
  const qn = c.batch * c.heads * c.tq * c.headDim;
  const kn = c.batch * c.kvHeads * c.kvStride * c.headDim;
  return { q: data(qn, -range, range), k: data(kn, -range, range), v: data(kn), qn, kn, rows: c.batch * c.heads * c.tq };
}

// ------------------------------------------------------------------------------------------ targets

interface Target { name: string; open(): Promise<Backend | null>; shared?: boolean; wasm?: boolean }

async function webgpuVariant(backend: 'vulkan' | 'opengles', opts: WebGPUBackendOptions): Promise<Backend | null> {
  try {
    const a = await requestNodeAdapter({ backend });
    return await createWebGPUBackend(a.gpu, { adapter: a.adapter, featureLevel: a.featureLevel, ...opts });
  } catch (e) {
    console.warn(`[skip] webgpu ${backend}: ${(e as Error).message}`);
    return null;
  }
}

const product = await productBackends();
const TARGETS: Target[] = [
  ...product.available.map((nb: NamedBackend): Target => ({ name: nb.name, open: async () => nb.backend, shared: true, wasm: nb.name.startsWith('wasm') })),
  { name: 'webgpu opengles compat (default limits)', open: () => webgpuVariant('opengles', { requestMaxLimits: false }) },
  { name: 'webgpu tiled attention, tree row reductions', open: () => webgpuVariant('vulkan', { variants: { attention: 'tiled', rowReduce: 'tree' } }) },
  { name: 'wasm(1 thread)', open: () => createWasmBackend({ threads: 1 }), wasm: true },
];

afterAll(() => {
  for (const nb of product.available) nb.backend.destroy();
});

describe.each(TARGETS)('model kernels: $name', (target) => {
  let b: Backend;
  let skip = false;
  beforeAll(async () => {
    const opened = await target.open();
    if (opened) b = opened;
    else skip = true;
  });
  afterAll(() => {
    if (!target.shared) b?.destroy();
  });

  it('writeView: KV-cache rows at a position, transposed source, int32 words, source and target in one storage', async ({ skip: skipTest }) => {
    if (skip) skipTest();
    // x [2, 3, 4, 5] contiguous into a cache [2, 3, 11, 5] at position 6
    const shape = [2, 3, 4, 5];
    let r = await both(b, [F(data(120))], [{ size: 330, prefill: data(330) }], (k, [x], [o]) =>
      k.kernels.writeView(x, { strides: contiguousStrides(shape), offset: 0 }, o, { strides: contiguousStrides([2, 3, 11, 5]), offset: 30 }, shape));
    assertClose(r.got[0], r.want[0], 'writeView cache', 0, 0);
    // a transposed source written into the middle of a larger buffer
    r = await both(b, [F(data(100))], [{ size: 200, prefill: data(200) }], (k, [x], [o]) =>
      k.kernels.writeView(x, { strides: [1, 7], offset: 3 }, o, { strides: [13, 1], offset: 50 }, [7, 13]));
    assertClose(r.got[0], r.want[0], 'writeView transpose', 0, 0);
    // int32 words, strided destination (every other element), 40000 elements (threaded on WASM)
    const n = 40000;
    r = await both(b, [I(ints(n, -2e9, 2e9))], [{ size: 2 * n + 1, dtype: 'int32', prefill: ints(2 * n + 1, 0, 9) }], (k, [x], [o]) =>
      k.kernels.writeView(x, { strides: [1], offset: 0 }, o, { strides: [2], offset: 1 }, [n]));
    expect(r.got[0]).toEqual(r.want[0]);
    // source and target views in the same storage (disjoint ranges)
    r = await both(b, [], [{ size: 40, prefill: data(40) }], (k, [], [z]) =>
      k.kernels.writeView(z, { strides: [2, 1], offset: 1 }, z, { strides: [1, 4], offset: 20 }, [3, 5]));
    assertClose(r.got[0], r.want[0], 'writeView aliased', 0, 0);
  });

  it('attention forward: GQA, causal, qOffset, kvStride > tk, left padding, rows with no visible key', async ({ skip: skipTest }) => {
    if (skip) skipTest();
    for (const c of FORWARD_CASES) {
      const { q, k, v, qn, rows } = attnInputs(c);
      const keyStart = c.keyStart ? [I(c.keyStart)] : [];
      const r = await both(b, [F(q), F(k), F(v), ...keyStart], [{ size: qn, prefill: data(qn) }, { size: rows, prefill: data(rows) }],
        (kb, [sq, sk, sv, sks], [o, l]) => kb.kernels.attention(sq, sk, sv, sks ?? null, o, l, c));
      // Wide score ranges (range > 1) cancel more in float32 sums of exp.
      const rtol = (c.range ?? 1) > 1 ? 3e-4 : 1e-4;
      expectNear(r.got[0], r.want[0], `attention out ${JSON.stringify(c)}`, rtol);
      expectNear(r.got[1], r.want[1], `attention lse ${JSON.stringify(c)}`, rtol);
    }
  });

  it('attention backward: gq, gk, gv (every element overwritten; key rows nobody sees get 0)', async ({ skip: skipTest }) => {
    if (skip) skipTest();
    for (const c of BACKWARD_CASES) {
      const { q, k, v, qn, kn, rows } = attnInputs(c);
      const keyStart = c.keyStart ? [I(c.keyStart)] : [];
      // out and lse from the float64 forward, rounded to float32, feed both backwards
      const [out, lse] = await run(ref, [F(q), F(k), F(v), ...keyStart], [{ size: qn }, { size: rows }],
        ([sq, sk, sv, sks], [o, l]) => ref.kernels.attention(sq, sk, sv, sks ?? null, o, l, c));
      const r = await both(b, [F(q), F(k), F(v), F(out), F(lse), F(data(qn)), ...keyStart],
        [{ size: qn, prefill: data(qn) }, { size: kn, prefill: data(kn) }, { size: kn, prefill: data(kn) }],
        (kb, [sq, sk, sv, so, sl, sg, sks], [gq, gk, gv]) => kb.kernels.attentionBackward(sq, sk, sv, sks ?? null, so, sl, sg, gq, gk, gv, c));
      const rtol = (c.range ?? 1) > 1 ? 3e-4 : 1e-4;
      for (const [i, name] of ['gq', 'gk', 'gv'].entries()) expectNear(r.got[i], r.want[i], `attention ${name} ${JSON.stringify(c)}`, rtol);
    }
  });

  it('logSoftmaxGather and backward: vocabularies 1 to 4099, ignored targets, a row whose max grows block after block', async ({ skip: skipTest }) => {
    if (skip) skipTest();
    const cases: [number, number, number][] = [[1, 5, 4], [7, 37, 8], [19, 37, 6], [13, 1000, 8], [33, 1000, 6], [3, 1031, 6], [4, 1024, 6],
      [9, 2500, 30], [2, 4099, 6], [64, 1031, 6], [3, 1, 1]];
    for (const [rows, cols, range] of cases) {
      const x = data(rows * cols, -range, range);
      if (cols > 2048) for (let c = 0; c < cols; c++) x[cols + c] = c / 40;
      const t = ints(rows, 0, cols);
      t[0] = -1;
      if (rows > 2) t[2] = cols; // out of range: ignored
      const r = await both(b, [F(x), I(t)], [{ size: rows }, { size: rows }, { size: rows }],
        (kb, [sx, st], [lp, en, ls]) => kb.kernels.logSoftmaxGather(sx, st, lp, en, ls, rows, cols));
      for (const [i, name] of ['logp', 'entropy', 'lse'].entries()) expectNear(r.got[i], r.want[i], `${name} ${rows}x${cols}`, 1e-4, 10);
      const g = await both(b, [F(x), I(t), F(r.want[2]), F(r.want[1]), F(data(rows)), F(data(rows))], [{ size: rows * cols, prefill: data(rows * cols) }],
        (kb, [sx, st, sl, se, sgl, sge], [gx]) => kb.kernels.logSoftmaxGatherBackward(sx, st, sl, se, sgl, sge, gx, rows, cols));
      expectNear(g.got[0], g.want[0], `gLogits ${rows}x${cols}`);
    }
  });

  it('sampleRows: the token whose cumulative interval holds u·z, greedy first maximum, log-probs; vocabularies 1 to 49 157', async ({ skip: skipTest }) => {
    if (skip) skipTest();
    // Own seeds (not data()), so adding this test changed no other test's inputs.
    let seed = 700_000;
    for (const [rows, cols, range] of [[3, 1, 1], [5, 3, 2], [7, 37, 4], [4, 1031, 6], [3, 4099, 8], [2, 49157, 5]] as const) {
      const x = hostRandom(rows * cols, seed++, -range, range);
      if (rows > 2) x[2 * cols + cols - 1] = x[2 * cols]; // a tie for the greedy rows: the first index wins
      for (const temperature of [1, 0.6, 0]) {
        // Uniforms aimed at the middle of a token's interval (float64 here), so float32 rounding cannot move the draw:
        // the token a random draw lands on when it holds ≥ 0.1 % of the mass, else the most likely one.
        const scale = temperature === 0 ? 1 : 1 / temperature;
        const chosen: number[] = [];
        const u = Array.from(hostRandom(rows, seed++, 0, 1), (draw, r) => {
          const row = Array.from(x.subarray(r * cols, (r + 1) * cols), (v) => v * scale);
          const m = row.reduce((a, v) => Math.max(a, v), -Infinity);
          const z = row.reduce((a, v) => a + Math.exp(v - m), 0);
          const p = row.map((v) => Math.exp(v - m) / z);
          let c = 0;
          for (let acc = p[0]; acc <= draw && c < cols - 1; acc += p[++c]);
          if (p[c] < 1e-3) c = p.indexOf(p.reduce((a, v) => Math.max(a, v), 0));
          chosen.push(c);
          return p.slice(0, c).reduce((a, v) => a + v, 0) + p[c] / 2;
        });
        if (rows > 1) u[0] = 0; // the first token with any mass
        const r = await both(b, [F(x), F(u)], [{ size: 2 * rows, prefill: new Float32Array(2 * rows).fill(-7) }],
          (kb, [sx, su], [o]) => kb.kernels.sampleRows(sx, su, o, rows, cols, temperature));
        const tokens = (o: number[]) => o.filter((_, i) => i % 2 === 0);
        const logps = (o: number[]) => o.filter((_, i) => i % 2 === 1);
        expect(tokens(r.got[0]), `tokens ${rows}x${cols} T=${temperature}`).toEqual(tokens(r.want[0]));
        if (temperature !== 0) expect(tokens(r.want[0]).slice(rows > 1 ? 1 : 0)).toEqual(chosen.slice(rows > 1 ? 1 : 0));
        expectNear(logps(r.got[0]), logps(r.want[0]), `log-probs ${rows}x${cols} T=${temperature}`, 1e-4, 10);
      }
    }
  });

  it('rmsNorm and backward (row / tree kernels, scalar / vec4, multi-block weight gradient)', async ({ skip: skipTest }) => {
    if (skip) skipTest();
    for (const [rows, cols] of [[1, 1], [3, 7], [7, 37], [19, 37], [17, 64], [40, 64], [3, 1000], [130, 24], [150, 7], [100, 257], [600, 384], [33, 1000]]) {
      const x = data(rows * cols, -3, 3);
      const weight = data(cols, 0.5, 1.5);
      const r = await both(b, [F(x), F(weight)], [{ size: rows * cols }, { size: rows }], (kb, [sx, sw], [o, rs]) => kb.kernels.rmsNorm(sx, sw, o, rs, rows, cols, 1e-5));
      expectNear(r.got[0], r.want[0], `rmsNorm out ${rows}x${cols}`);
      expectNear(r.got[1], r.want[1], `rmsNorm rstd ${rows}x${cols}`);
      const bw = await both(b, [F(x), F(weight), F(r.want[1]), F(data(rows * cols))],
        [{ size: rows * cols, prefill: data(rows * cols) }, { size: cols, prefill: data(cols) }],
        (kb, [sx, sw, sr, sg], [gx, gw]) => kb.kernels.rmsNormBackward(sx, sw, sr, sg, gx, gw, rows, cols));
      expectNear(bw.got[0], bw.want[0], `rmsNorm gx ${rows}x${cols}`);
      expectNear(bw.got[1], bw.want[1], `rmsNorm gWeight ${rows}x${cols}`, 1e-4, Math.sqrt(rows));
    }
  });

  it('rope forward and inverse over positions up to 10^5; inverse ∘ rope = identity', async ({ skip: skipTest }) => {
    if (skip) skipTest();
    for (const [batch, t, heads, headDim, theta] of [[1, 1, 1, 2, 10000], [2, 5, 3, 8, 10000], [1, 3, 2, 64, 10000], [2, 7, 3, 8, 10000],
      [2, 33, 4, 64, 500000], [3, 5, 2, 6, 10000], [1, 300, 2, 16, 10000]]) {
      const n = batch * t * heads * headDim;
      const x = data(n);
      const pos = ints(batch * t, 0, 40000);
      pos[0] = 0;
      if (pos.length > 3) pos.splice(1, 3, 4095, 4096, 99991);
      for (const inverse of [false, true]) {
        const args = { batch, t, heads, headDim, theta, inverse };
        const r = await both(b, [F(x), I(pos)], [{ size: n }], (kb, [sx, sp], [o]) => kb.kernels.rope(sx, sp, o, args));
        expectNear(r.got[0], r.want[0], `rope ${JSON.stringify(args)}`);
      }
      const [roundTrip] = await run(b, [F(x), I(pos)], [{ size: n }, { size: n }], ([sx, sp], [o, back]) => {
        b.kernels.rope(sx, sp, o, { batch, t, heads, headDim, theta, inverse: false });
        b.kernels.rope(o, sp, back, { batch, t, heads, headDim, theta, inverse: true });
      }).then((outs) => [outs[1]]);
      expectNear(roundTrip, x, 'rope inverse ∘ rope');
    }
  });

  it('rope with an inverse-frequency table (scaled RoPE), odd shapes, positions up to 10^5', async ({ skip: skipTest }) => {
    if (skip) skipTest();
    for (const [batch, t, heads, headDim] of [[1, 1, 1, 2], [2, 5, 3, 6], [1, 33, 2, 64], [3, 7, 1, 10]]) {
      const n = batch * t * heads * headDim;
      const x = data(n);
      const pos = ints(batch * t, 0, 100000);
      pos[0] = 0;
      // Frequencies spanning the llama3 bands: some divided by 8, some interpolated, some kept.
      const inverseFrequencies = Float64Array.from({ length: headDim / 2 }, (_, j) => Math.pow(500000, (-2 * j) / headDim) / (j % 3 === 0 ? 8 : j % 3 === 1 ? 2.5 : 1));
      for (const inverse of [false, true]) {
        const args = { batch, t, heads, headDim, theta: 10000, inverse, inverseFrequencies };
        const r = await both(b, [F(x), I(pos)], [{ size: n }], (kb, [sx, sp], [o]) => kb.kernels.rope(sx, sp, o, args));
        expectNear(r.got[0], r.want[0], `rope table ${JSON.stringify({ batch, t, heads, headDim, inverse })}`);
      }
    }
    const [s, ids] = [b.alloc('float32', 8), b.alloc('int32', 2)];
    const out = b.alloc('float32', 8);
    expect(() => b.kernels.rope(s, ids, out, { batch: 1, t: 2, heads: 1, headDim: 4, theta: 1e4, inverse: false, inverseFrequencies: new Float64Array(3) }))
      .toThrow(/inverseFrequencies has 3 entries, headDim 4 needs 2/);
    for (const storage of [s, ids, out]) b.free(storage);
  });

  it('swiglu and backward, saturated gates, in place', async ({ skip: skipTest }) => {
    if (skip) skipTest();
    for (const n of [1, 7, 37, 1029, 40001, 100003]) {
      const gate = data(n, -12, 12), up = data(n, -2, 2);
      gate[0] = -95; // exp(−g) overflows
      if (n > 2) gate[1] = 95;
      const r = await both(b, [F(gate), F(up)], [{ size: n }], (kb, [g, u], [o]) => kb.kernels.swiglu(g, u, o, n));
      expectNear(r.got[0], r.want[0], `swiglu n=${n}`);
      const bw = await both(b, [F(gate), F(up), F(data(n))], [{ size: n }, { size: n }], (kb, [g, u, go], [gg, gu]) => kb.kernels.swigluBackward(g, u, go, gg, gu, n));
      expectNear(bw.got[0], bw.want[0], `swiglu gGate n=${n}`);
      expectNear(bw.got[1], bw.want[1], `swiglu gUp n=${n}`);
      // in place: the output is the gate storage (WebGPU writes through a temporary)
      const inPlace = await both(b, [F(up)], [{ size: n, prefill: gate }], (kb, [u], [g]) => kb.kernels.swiglu(g, u, g, n));
      expectNear(inPlace.got[0], inPlace.want[0], `swiglu in place n=${n}`);
    }
  });

  it('lowRankAdd: out += scale·u·op(l), both layouts of l, odd sizes, rank 0, threaded rows', async ({ skip: skipTest }) => {
    if (skip) skipTest();
    const shapes: [number, number, number][] = [[1, 1, 1], [7, 37, 3], [13, 64, 8], [3, 5, 0], [2, 12, 17], [300, 1031, 16], [129, 256, 64]];
    for (const [rows, cols, rank] of shapes) {
      for (const transL of [false, true]) {
        const args = { rows, cols, rank, scale: -1.75, transL };
        const r = await both(b, [F(data(Math.max(1, rows * rank))), F(data(Math.max(1, cols * rank)))], [{ size: rows * cols, prefill: data(rows * cols, -3, 3) }],
          (kb, [u, l], [o]) => kb.kernels.lowRankAdd(u, l, o, args));
        expectNear(r.got[0], r.want[0], `lowRankAdd ${JSON.stringify(args)}`);
      }
    }
  });

  it('matmulLowRank: x·op(w) + scale·u·op(l) over every matmul path, odd shapes, ranks 1/3/16, f32 and bf16 w, both layouts', async ({ skip: skipTest }) => {
    if (skip) skipTest();
    // rows: 1 (gemv), 5 and 16 (skinny / split-k fallback), 37 and 67 (packed tiles with edge rows); cols and inner
    // not multiples of the tiles; inner 300 > the engine's k block (the epilogue rides on the last block only).
    const shapes: [number, number, number][] = [[1, 13, 9], [5, 37, 29], [16, 70, 33], [37, 45, 300], [67, 129, 31], [9, 13, 0]];
    for (const [rows, cols, inner] of shapes) {
      for (const rank of [1, 3, 16]) {
        for (const dtype of ['float32', 'bfloat16'] as const) {
          // forward layout (w = W [cols, inner] with transB, l = B [cols, rank]) and input-gradient layout
          // (w = W [inner, cols], l = A [rank, cols] with transL)
          for (const [transB, transL] of [[true, false], [false, true]] as const) {
            const args = { rows, cols, inner, rank, scale: -1.75, transL, transB };
            const inputs: Input[] = [F(lowRankData(Math.max(1, rows * inner))), { dtype, data: lowRankData(Math.max(2, inner * cols)) }, F(lowRankData(rows * rank)), F(lowRankData(cols * rank))];
            const r = await both(b, inputs, [{ size: rows * cols, prefill: lowRankData(rows * cols, -3, 3) }],
              (kb, [x, w, u, l], [o]) => kb.kernels.matmulLowRank(x, w, u, l, o, args));
            expectNear(r.got[0], r.want[0], `matmulLowRank ${dtype} ${JSON.stringify(args)}`, 1e-4, Math.max(1, inner / 4));
          }
        }
      }
    }
  });

  it('matmulLowRank equals matmul then lowRankAdd (fused vs two-pass)', async ({ skip: skipTest }) => {
    if (skip) skipTest();
    const [rows, cols, inner, rank] = [67, 129, 300, 3];
    for (const [transB, transL] of [[true, false], [false, true]] as const) {
      const inputs = [F(lowRankData(rows * inner)), F(lowRankData(inner * cols)), F(lowRankData(rows * rank)), F(lowRankData(cols * rank))];
      const [fused, twoPass] = await run(b, inputs, [{ size: rows * cols }, { size: rows * cols }], ([x, w, u, l], [o1, o2]) => {
        b.kernels.matmulLowRank(x, w, u, l, o1, { rows, cols, inner, rank, scale: 0.625, transL, transB });
        b.matmul(x, w, o2, { batch: 1, m: rows, n: cols, k: inner, transA: false, transB, strideA: 0, strideB: 0 });
        b.kernels.lowRankAdd(u, l, o2, { rows, cols, rank, scale: 0.625, transL });
      });
      // WASM: the same float32 operations in the same order, so the same bits; WebGPU runs exactly these two passes
      expect(fused, `transB=${transB}`).toEqual(twoPass);
    }
  });

  it('adamw over several steps with weight decay and a gradient scale', async ({ skip: skipTest }) => {
    if (skip) skipTest();
    for (const n of [1, 6, 1031, 40003]) {
      const init = data(n);
      const grads = Array.from({ length: 5 }, () => data(n, -3, 3));
      const results: number[][][] = [];
      for (const kb of [b, ref]) {
        // moments uploaded as zeros: a recycled WebGPU buffer from alloc() is not cleared
        const p = kb.upload('float32', init), m = kb.upload('float32', new Float32Array(n)), v = kb.upload('float32', new Float32Array(n));
        const scale = kb.upload('float32', [0.37]);
        for (let step = 1; step <= 5; step++) {
          const g = kb.upload('float32', grads[step - 1]);
          kb.kernels.adamw(p, g, m, v, scale, { lr: 0.01, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step }, n);
          kb.free(g);
        }
        results.push([Array.from(await kb.read(p)), Array.from(await kb.read(m)), Array.from(await kb.read(v))]);
        for (const s of [p, m, v, scale]) kb.free(s);
      }
      for (const [i, name] of ['param', 'm', 'v'].entries()) expectNear(results[0][i], results[1][i], `adamw ${name} n=${n}`);
    }
  });

  it('sumSquares, single and two-pass, with and without accumulate', async ({ skip: skipTest }) => {
    if (skip) skipTest();
    for (const n of [0, 1, 7, 1000, 16384, 16385, 100003, 300007]) {
      const x = data(Math.max(1, n), -2, 2);
      for (const accumulate of [false, true]) {
        const r = await both(b, [F(x)], [{ size: 1, prefill: [2.5] }], (kb, [sx], [o]) => kb.kernels.sumSquares(sx, o, n, accumulate));
        expectNear(r.got[0], r.want[0], `sumSquares n=${n} accumulate=${accumulate}`, 1e-5);
      }
    }
  });

  it('rejects invalid arguments with a KernelError naming the kernel and every bad argument', ({ skip: skipTest }) => {
    if (skip) skipTest();
    const s = b.alloc('float32', 64);
    const a: AttentionArgs = { batch: 1, heads: 2, kvHeads: 1, tq: 4, tk: 4, kvStride: 4, headDim: 8, scale: 1, causal: true, qOffset: 0 };
    const lse = b.alloc('float32', 8);
    const short = b.alloc('float32', 63);
    const ids = b.alloc('int32', 4);
    try {
      expect(() => b.kernels.attention(s, s, s, null, s, lse, { ...a, kvHeads: 3 })).toThrow(/kernel 'attention': heads \(2\) must be a multiple of kvHeads \(3\)/);
      expect(() => b.kernels.attention(short, s, s, null, s, lse, a)).toThrow(/attention.*q has 63 elements, needs 64/);
      expect(() => b.kernels.attentionBackward(s, s, s, null, s, s, s, s, s, s, { ...a, kvStride: 5 })).toThrow(/kvStride == tk/);
      expect(() => b.kernels.attention(s, s, s, null, s, s, { ...a, tq: 9, tk: 9, kvStride: 9, heads: 1 })).toThrow(/needs/);
      // every bad argument in one message: dtype, size and count
      expect(() => b.kernels.logSoftmaxGather(s, s, short, s, s, 16, 4)).toThrow(KernelError);
      expect(() => b.kernels.logSoftmaxGather(s, s, lse, s, s, 16, 4)).toThrow(/targets must be int32, got float32; logp has 8 elements, needs 16/);
      expect(() => b.kernels.swiglu(s, s, s, -1)).toThrow(/swiglu.*n must be a non-negative integer/);
      expect(() => b.kernels.rope(s, ids, s, { batch: 1, t: 2, heads: 2, headDim: 3, theta: 1e4, inverse: false })).toThrow(/headDim 3 must be even/);
      expect(() => b.kernels.rope(s, ids, s, { batch: 1, t: 2, heads: 2, headDim: 4, theta: 1e4, inverse: false })).toThrow(/out may not alias x/);
      expect(() => b.kernels.adamw(s, s, lse, lse, s, { lr: 0.1, beta1: 0.9, beta2: 0.9, eps: 1e-8, weightDecay: 0, step: 0 }, 4))
        .toThrow(/adamw.*step must be a positive integer/);
      expect(() => b.kernels.writeView(s, { strides: [1], offset: 0 }, s, { strides: [1], offset: 60 }, [8])).toThrow(/writeView.*out view reaches/);
      expect(() => b.kernels.lowRankAdd(s, lse, s, { rows: 8, cols: 8, rank: 1, scale: 1, transL: false })).toThrow(/lowRankAdd.*out may not alias u or l/);
      expect(() => b.kernels.lowRankAdd(short, lse, s, { rows: 8, cols: 8, rank: 8, scale: NaN, transL: false })).toThrow(/lowRankAdd.*scale must be finite/);
      const lowRank = { rows: 4, cols: 4, inner: 4, rank: 2, scale: 1, transL: false, transB: true };
      expect(() => b.kernels.matmulLowRank(s, s, s, s, s, lowRank)).toThrow(/matmulLowRank.*out may not alias x, w, u or l/);
      expect(() => b.kernels.matmulLowRank(s, ids, s, s, lse, { ...lowRank, inner: 40 })).toThrow(/matmulLowRank.*w has 4 elements, needs 160/);
      expect(() => b.kernels.matmulLowRank(s, s, s, s, lse, { ...lowRank, transB: 1 as unknown as boolean })).toThrow(/matmulLowRank.*transB must be true or false/);
    } finally {
      for (const x of [s, lse, short, ids]) b.free(x);
    }
  });

  if (target.wasm) {
    it('matmul small m (skinny and split-K paths): m = 1, 2, 7, 16 with odd n, k, transposes and batches', async ({ skip: skipTest }) => {
      if (skip) skipTest();
      const shapes: [number, number, number, number][] = [
        [1, 1, 1023, 257], [1, 2, 37, 1025], [1, 7, 1023, 257], [1, 16, 301, 129], [1, 16, 3, 5], [1, 7, 9, 1],
        [3, 2, 65, 33], [2, 16, 130, 70], [1, 5, 17, 0], [4, 1, 64, 63], [1, 16, 67, 600], [1, 8, 129, 2051], [2, 3, 1024, 300],
      ];
      for (const [batch, m, n, k] of shapes) {
        for (const transA of [false, true]) {
          for (const transB of [false, true]) {
            for (const broadcast of batch > 1 ? [0, 1, 2] : [0]) {
              const strideA = broadcast === 1 ? 0 : m * k, strideB = broadcast === 2 ? 0 : k * n;
              const left = data(Math.max(1, (batch - 1) * strideA + m * k)), right = data(Math.max(1, (batch - 1) * strideB + k * n));
              const r = await both(b, [F(left), F(right)], [{ size: batch * m * n, prefill: data(batch * m * n) }], (kb, [x, y], [o]) =>
                kb.matmul(x, y, o, { batch, m, n, k, transA, transB, strideA, strideB }));
              assertClose(r.got[0], r.want[0], `matmul b${batch} ${m}x${n}x${k} tA=${transA} tB=${transB} bc=${broadcast}`, 1e-6 * (k + 1), 1e-5);
            }
          }
        }
      }
    });
  }
});

describe('matmulLowRank on the WebGPU matmul variants the adapter default does not pick here', () => {
  // lavapipe picks the subgroup / direct kernels; GPUs the tiled one: each gets the epilogue in its store.
  const variants = [
    { name: 'tiled (GPUs)', matmul: { kind: 'tiled', WX: 16, WY: 8, TM: 4, BK: 16 } },
    { name: 'direct without subgroups', matmul: { kind: 'direct', WX: 16, WY: 1, TM: 8, BK: 4 } },
  ] as const;
  for (const variant of variants) {
    it(variant.name, async ({ skip: skipTest }) => {
      const b = await webgpuVariant('vulkan', { matmul: variant.matmul });
      if (!b) skipTest();
      try {
        for (const [rows, cols, inner] of [[37, 45, 300], [67, 130, 32]] as const) {
          for (const dtype of ['float32', 'bfloat16'] as const) {
            for (const [transB, transL] of [[true, false], [false, true]] as const) {
              const args = { rows, cols, inner, rank: 3, scale: 0.75, transL, transB };
              const inputs: Input[] = [F(lowRankData(rows * inner)), { dtype, data: lowRankData(inner * cols) }, F(lowRankData(rows * 3)), F(lowRankData(cols * 3))];
              const r = await both(b!, inputs, [{ size: rows * cols, prefill: lowRankData(rows * cols) }],
                (kb, [x, w, u, l], [o]) => kb.kernels.matmulLowRank(x, w, u, l, o, args));
              expectNear(r.got[0], r.want[0], `${variant.name} ${dtype} ${JSON.stringify(args)}`, 1e-4, inner / 4);
            }
          }
        }
      } finally {
        b?.destroy();
      }
    });
  }
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
      const la = lowRankData(40 * 1024), lu = lowRankData(40 * 8), ll = lowRankData(777 * 8);
      const lowRows = 3001, lowU = data(lowRows * 8), lowL = data(nc * 8), lowOut = data(lowRows * nc);
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
        // LoRA's low-rank update: rows split over threads, both layouts of l
        r.push(...await run(w, [F(lowU), F(lowL)], [{ size: lowRows * nc, prefill: lowOut }, { size: lowRows * nc, prefill: lowOut }],
          ([u, l], [o, ot]) => {
            w.kernels.lowRankAdd(u, l, o, { rows: lowRows, cols: nc, rank: 8, scale: 0.5, transL: false });
            w.kernels.lowRankAdd(u, l, ot, { rows: lowRows, cols: nc, rank: 8, scale: 0.5, transL: true });
          }));
        // the LoRA matmul epilogue: rows split (f32 w), columns split (bf16 w, 40 rows), skinny column blocks (16 rows, transB)
        r.push(...await run(w, [F(la), F(ma), F(mb), { dtype: 'bfloat16', data: mb }, F(lu), F(ll)],
          [{ size: 40 * 777 }, { size: 40 * 777 }, { size: 16 * 777 }], ([a40, a16, wf, wh, u, l], [o1, o2, o3]) => {
            w.kernels.matmulLowRank(a40, wf, u, l, o1, { rows: 40, cols: 777, inner: 1024, rank: 8, scale: 0.5, transL: false, transB: false });
            w.kernels.matmulLowRank(a40, wh, u, l, o2, { rows: 40, cols: 777, inner: 1024, rank: 8, scale: 0.5, transL: true, transB: false });
            w.kernels.matmulLowRank(a16, wf, u, l, o3, { rows: 16, cols: 777, inner: 1024, rank: 5, scale: -2, transL: false, transB: true });
          }));
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

describe('the signature table', () => {
  it('has one entry per kernel, each naming its parameters', () => {
    for (const [kernel, signature] of Object.entries(KERNEL_SIGNATURES)) {
      expect(signature.params.length, kernel).toBeGreaterThan(0);
      expect(new Set(signature.params.map((p) => p.name)).size, `${kernel}: parameter names`).toBe(signature.params.length);
      expect(typeof (ref.kernels as unknown as Record<string, unknown>)[kernel], kernel).toBe('function');
    }
  });
});

describe('WGSL templating used by the model kernels', () => {
  it('expands nested unroll blocks innermost first, with named divisors', () => {
    const src = '//#unroll r R\nrow {r}\n//#unroll c C\na_{r}_{c} {c/L} {c%L}\n//#end\n//#end\nk = __L__;\n';
    expect(expandTemplate(src, { R: 2, C: 3, L: 2 })).toBe(
      'row 0\na_0_0 0 0\na_0_1 0 1\na_0_2 1 0\nrow 1\na_1_0 0 0\na_1_1 0 1\na_1_2 1 0\nk = 2;\n');
  });
});
