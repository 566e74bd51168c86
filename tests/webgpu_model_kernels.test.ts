// WebGPU model kernels (src/backend/model_kernels.ts) against the float64 ReferenceBackend on awkward
// shapes, on the Vulkan (core) adapter and on the OpenGL ES compatibility adapter with default limits.
// On llvmpipe the Vulkan adapter runs the subgroup kernels and the compatibility adapter (no subgroups) the
// tiled ones; the Vulkan adapter also runs the tiled attention once, forced.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AttentionArgs, type DType, type Storage, KernelError, contiguousStrides,
} from '../src/backend/backend.js';
import { ReferenceBackend } from '../src/backend/reference/reference_backend.js';
import {
  type WebGPUBackend, type WebGPUBackendOptions, createWebGPUBackend, expandTemplate,
} from '../src/backend/webgpu/webgpu_backend.js';
import { requestNodeAdapter } from '../src/backend/webgpu/node_gpu.js';
import { type Pair, expectClose, rand, up } from './support/gpu_pair.js';


function allocBoth(p: Pair, n: number, dtype: DType = 'float32'): [Storage, Storage] {
  return [p.gpu.alloc(dtype, n), p.ref.alloc(dtype, n)];
}

async function expectSame(p: Pair, [g, r]: [Storage, Storage], what: string, rtol = 1e-4, atolScale?: number): Promise<void> {
  const a = await p.gpu.read(g);
  const b = await p.ref.read(r);
  expectClose(a, b, what, rtol, atolScale);
}

const configs: { name: string; open: (o?: WebGPUBackendOptions) => Promise<WebGPUBackend> }[] = [
  {
    name: 'vulkan core',
    open: async (o = {}) => {
      const a = await requestNodeAdapter({ backend: 'vulkan' });
      return createWebGPUBackend(a.gpu, { adapter: a.adapter, featureLevel: a.featureLevel, source: a.flags.join(' '), ...o });
    },
  },
  {
    name: 'opengles compat (default limits)',
    open: async (o = {}) => {
      const a = await requestNodeAdapter({ backend: 'opengles' });
      return createWebGPUBackend(a.gpu, { adapter: a.adapter, featureLevel: a.featureLevel, requestMaxLimits: false, ...o });
    },
  },
];

type AttnCase = Omit<AttentionArgs, 'scale' | 'kvStride'> & { kvStride?: number; keyStart?: number[] };

// GQA 4/2 and 4/1, tq ≠ tk with qOffset (decode and chunked prefill), kvStride > tk (KV cache), left
// padding with rows that see no key (keyStart beyond the causal limit or beyond tk), head dims 6 / 8 / 16 / 64,
// sizes that are not multiples of the 8-row / 32-key / 64-row tiles.
const attnCases: AttnCase[] = [
  { batch: 2, heads: 4, kvHeads: 2, tq: 13, tk: 13, headDim: 16, causal: true, qOffset: 0, keyStart: [0, 3] },
  { batch: 1, heads: 2, kvHeads: 1, tq: 5, tk: 41, kvStride: 50, headDim: 8, causal: true, qOffset: 36 },
  { batch: 2, heads: 2, kvHeads: 2, tq: 37, tk: 37, headDim: 64, causal: false, qOffset: 0, keyStart: [5, 40] },
  { batch: 1, heads: 4, kvHeads: 1, tq: 1, tk: 70, kvStride: 73, headDim: 64, causal: true, qOffset: 69 },
  { batch: 2, heads: 1, kvHeads: 1, tq: 67, tk: 67, headDim: 8, causal: true, qOffset: 0, keyStart: [66, 2] },
  { batch: 1, heads: 4, kvHeads: 2, tq: 7, tk: 19, headDim: 16, causal: true, qOffset: 12, keyStart: [15] },
  // A head dim that is not a multiple of 4: the tiled kernels on every adapter.
  { batch: 1, heads: 2, kvHeads: 2, tq: 3, tk: 5, headDim: 6, causal: false, qOffset: 0 },
];

function attnArgs(c: AttnCase): AttentionArgs {
  return { ...c, kvStride: c.kvStride ?? c.tk, scale: 1 / Math.sqrt(c.headDim) };
}

async function checkAttention(p: Pair, c: AttnCase, backward: boolean, label: string): Promise<void> {
  const a = attnArgs(c);
  if (backward) a.kvStride = a.tk;
  const rows = a.batch * a.heads * a.tq;
  const qn = rows * a.headDim;
  const kn = a.batch * a.kvHeads * a.kvStride * a.headDim;
  const seed = a.tq * 131 + a.tk * 7 + a.headDim;
  const q = up(p, 'float32', rand(qn, seed, -2, 2));
  const k = up(p, 'float32', rand(kn, seed + 1, -2, 2));
  const v = up(p, 'float32', rand(kn, seed + 2));
  const ks = c.keyStart ? up(p, 'int32', c.keyStart) : [null, null] as const;
  const out = allocBoth(p, qn);
  const lse = allocBoth(p, rows);
  p.gpu.kernels.attention(q[0], k[0], v[0], ks[0], out[0], lse[0], a);
  p.ref.kernels.attention(q[1], k[1], v[1], ks[1], out[1], lse[1], a);
  const what = `${label} ${JSON.stringify(c)}`;
  if (!backward) {
    await expectSame(p, out, `attention out ${what}`);
    await expectSame(p, lse, `attention lse ${what}`);
    return;
  }
  const gOut = up(p, 'float32', rand(qn, seed + 3));
  const gq = allocBoth(p, qn);
  const gk = allocBoth(p, kn);
  const gv = allocBoth(p, kn);
  // Garbage in the outputs: the backward must overwrite every element.
  p.gpu.fill(gk[0], 7);
  p.gpu.kernels.attentionBackward(q[0], k[0], v[0], ks[0], out[0], lse[0], gOut[0], gq[0], gk[0], gv[0], a);
  p.ref.kernels.attentionBackward(q[1], k[1], v[1], ks[1], out[1], lse[1], gOut[1], gq[1], gk[1], gv[1], a);
  await expectSame(p, gq, `attentionBackward gq ${what}`);
  await expectSame(p, gk, `attentionBackward gk ${what}`);
  await expectSame(p, gv, `attentionBackward gv ${what}`);
}

for (const cfg of configs) {
  describe(`WebGPU model kernels: ${cfg.name}`, () => {
    let p: Pair;
    beforeAll(async () => {
      p = { gpu: await cfg.open(), ref: new ReferenceBackend() };
    });
    afterAll(() => {
      p?.gpu.destroy();
    });

    it('writeView: KV-cache writes, permuted views, int32, source and target in one buffer', async () => {
      // New keys [batch 2, kvHeads 3, 1, headDim 8] into a cache [2, 3, maxSeq 10, 8] at position 4.
      const x = up(p, 'float32', rand(2 * 3 * 8, 1));
      const cache = up(p, 'float32', rand(2 * 3 * 10 * 8, 2));
      const shape = [2, 3, 1, 8];
      const cacheView = { strides: contiguousStrides([2, 3, 10, 8]), offset: 4 * 8 };
      p.gpu.kernels.writeView(x[0], { strides: contiguousStrides(shape), offset: 0 }, cache[0], cacheView, shape);
      p.ref.kernels.writeView(x[1], { strides: contiguousStrides(shape), offset: 0 }, cache[1], cacheView, shape);
      await expectSame(p, cache, 'writeView kv cache', 0);
      // A transposed int32 source [5, 7] read as [7, 5] into rows 1.. of a [9, 6] target with offset.
      const ints = Array.from({ length: 35 }, (_, i) => i * 7919 - 12345);
      const xi = up(p, 'int32', ints);
      const yi = up(p, 'int32', Array.from({ length: 54 }, (_, i) => -i));
      const tv = { strides: [1, 7], offset: 0 };
      const ov = { strides: [6, 1], offset: 6 + 1 };
      p.gpu.kernels.writeView(xi[0], tv, yi[0], ov, [7, 5]);
      p.ref.kernels.writeView(xi[1], tv, yi[1], ov, [7, 5]);
      expect(Array.from(await p.gpu.read(yi[0]))).toEqual(Array.from(await p.ref.read(yi[1])));
      // Source and target views in the same storage (disjoint ranges).
      const z = up(p, 'float32', rand(40, 3));
      p.gpu.kernels.writeView(z[0], { strides: [2, 1], offset: 1 }, z[0], { strides: [1, 4], offset: 20 }, [3, 5]);
      p.ref.kernels.writeView(z[1], { strides: [2, 1], offset: 1 }, z[1], { strides: [1, 4], offset: 20 }, [3, 5]);
      await expectSame(p, z, 'writeView aliased', 0);
      expect(() => p.gpu.kernels.writeView(x[0], { strides: [1], offset: 0 }, cache[0], { strides: [1], offset: 475 }, [8]))
        .toThrow(/writeView.*out view reaches/);
    });

    it('attention forward: GQA, causal / not, qOffset, kvStride, left padding, rows with no visible key', async () => {
      for (const c of attnCases) await checkAttention(p, c, false, 'default');
    });

    it('attention backward (dQ and dK/dV kernels, key rows nobody sees get 0)', async () => {
      for (const c of attnCases) await checkAttention(p, c, true, 'default');
    });

    if (cfg.name.startsWith('vulkan')) {
      it('attention forward and backward, tiled kernels forced', async () => {
        const gpu = await cfg.open({ variants: { attention: 'tiled' } });
        try {
          for (const c of [attnCases[0], attnCases[4]]) {
            await checkAttention({ gpu, ref: p.ref }, c, false, 'tiled');
            await checkAttention({ gpu, ref: p.ref }, c, true, 'tiled');
          }
        } finally {
          gpu.destroy();
        }
      });
    }

    it('attention validates its arguments', () => {
      const s = p.gpu.alloc('float32', 64);
      const a: AttentionArgs = { batch: 1, heads: 2, kvHeads: 1, tq: 4, tk: 4, kvStride: 4, headDim: 8, scale: 1, causal: true, qOffset: 0 };
      expect(() => p.gpu.kernels.attention(s, s, s, null, p.gpu.alloc('float32', 64), p.gpu.alloc('float32', 8), { ...a, kvHeads: 3 }))
        .toThrow(KernelError);
      expect(() => p.gpu.kernels.attention(p.gpu.alloc('float32', 63), s, s, null, p.gpu.alloc('float32', 64), p.gpu.alloc('float32', 8), a))
        .toThrow(/attention.*q has 63 elements, needs 64/);
      expect(() => p.gpu.kernels.attentionBackward(s, s, s, null, s, s, s, s, s, s, { ...a, kvStride: 5 })).toThrow(/kvStride/);
    });

    it('logSoftmaxGather and backward: vocab 5 / 37 / 1000+, ignored targets', async () => {
      // rows ≥ 16 run the row-per-invocation kernel on llvmpipe, fewer rows the workgroup tree; cols % 4 == 0
      // reads vec4.
      for (const [rows, cols] of [[1, 5], [19, 37], [33, 1000], [3, 1031], [4, 1024], [2, 4099]]) {
        const x = up(p, 'float32', rand(rows * cols, rows * 1000 + cols, -6, 6));
        const tg = Array.from({ length: rows }, (_, r) => (r % 5 === 3 ? -1 : r % 7 === 6 ? cols : (r * 31 + 2) % cols));
        const t = up(p, 'int32', tg);
        const logp = allocBoth(p, rows);
        const ent = allocBoth(p, rows);
        const lse = allocBoth(p, rows);
        p.gpu.kernels.logSoftmaxGather(x[0], t[0], logp[0], ent[0], lse[0], rows, cols);
        p.ref.kernels.logSoftmaxGather(x[1], t[1], logp[1], ent[1], lse[1], rows, cols);
        const what = `[${rows}, ${cols}]`;
        await expectSame(p, logp, `logSoftmaxGather logp ${what}`, 1e-4, 10);
        await expectSame(p, ent, `logSoftmaxGather entropy ${what}`, 1e-4, 10);
        await expectSame(p, lse, `logSoftmaxGather lse ${what}`, 1e-4, 10);
        const gl = up(p, 'float32', rand(rows, rows + 5));
        const ge = up(p, 'float32', rand(rows, rows + 6));
        const gx = allocBoth(p, rows * cols);
        p.gpu.kernels.logSoftmaxGatherBackward(x[0], t[0], lse[0], ent[0], gl[0], ge[0], gx[0], rows, cols);
        p.ref.kernels.logSoftmaxGatherBackward(x[1], t[1], lse[1], ent[1], gl[1], ge[1], gx[1], rows, cols);
        await expectSame(p, gx, `logSoftmaxGatherBackward ${what}`);
      }
    });

    it('rmsNorm and backward (row / tree kernels, scalar / vec4, multi-block weight gradient)', async () => {
      for (const [rows, cols] of [[1, 1], [7, 37], [19, 37], [40, 64], [3, 1000], [130, 24], [150, 7]]) {
        const x = up(p, 'float32', rand(rows * cols, rows + cols, -3, 3));
        const w = up(p, 'float32', rand(cols, cols, 0.5, 1.5));
        const out = allocBoth(p, rows * cols);
        const rstd = allocBoth(p, rows);
        p.gpu.kernels.rmsNorm(x[0], w[0], out[0], rstd[0], rows, cols, 1e-5);
        p.ref.kernels.rmsNorm(x[1], w[1], out[1], rstd[1], rows, cols, 1e-5);
        const what = `[${rows}, ${cols}]`;
        await expectSame(p, out, `rmsNorm out ${what}`);
        await expectSame(p, rstd, `rmsNorm rstd ${what}`);
        const g = up(p, 'float32', rand(rows * cols, rows * cols));
        const gx = allocBoth(p, rows * cols);
        const gw = allocBoth(p, cols);
        p.gpu.kernels.rmsNormBackward(x[0], w[0], rstd[0], g[0], gx[0], gw[0], rows, cols);
        p.ref.kernels.rmsNormBackward(x[1], w[1], rstd[1], g[1], gx[1], gw[1], rows, cols);
        await expectSame(p, gx, `rmsNormBackward gx ${what}`);
        await expectSame(p, gw, `rmsNormBackward gWeight ${what}`, 1e-4, Math.sqrt(rows));
      }
    });

    it('rope and its inverse, positions up to 10^5', async () => {
      for (const [batch, t, heads, headDim] of [[2, 5, 3, 8], [1, 3, 2, 64], [1, 1, 1, 2]]) {
        const n = batch * t * heads * headDim;
        const x = up(p, 'float32', rand(n, n));
        const pos = up(p, 'int32', Array.from({ length: batch * t }, (_, i) => [0, 1, 4095, 4096, 99991, 17, 5, 2047, 12345, 3][i % 10]));
        for (const inverse of [false, true]) {
          const args = { batch, t, heads, headDim, theta: 10000, inverse };
          const out = allocBoth(p, n);
          p.gpu.kernels.rope(x[0], pos[0], out[0], args);
          p.ref.kernels.rope(x[1], pos[1], out[1], args);
          await expectSame(p, out, `rope ${JSON.stringify(args)}`, 1e-4, 1);
          if (!inverse) {
            // The inverse rotation undoes the forward one.
            const back = p.gpu.alloc('float32', n);
            p.gpu.kernels.rope(out[0], pos[0], back, { ...args, inverse: true });
            expectClose(await p.gpu.read(back), await p.gpu.read(x[0]), 'rope inverse ∘ rope', 1e-4, 1);
          }
        }
      }
    });

    it('swiglu and backward, including large |gate| and in place', async () => {
      for (const n of [1, 37, 100003]) {
        const g = rand(n, n, -8, 8);
        if (n > 2) { g[0] = 40; g[1] = -40; }
        const gate = up(p, 'float32', g);
        const u = up(p, 'float32', rand(n, n + 1));
        const out = allocBoth(p, n);
        p.gpu.kernels.swiglu(gate[0], u[0], out[0], n);
        p.ref.kernels.swiglu(gate[1], u[1], out[1], n);
        await expectSame(p, out, `swiglu ${n}`);
        const go = up(p, 'float32', rand(n, n + 2));
        const gg = allocBoth(p, n);
        const gu = allocBoth(p, n);
        p.gpu.kernels.swigluBackward(gate[0], u[0], go[0], gg[0], gu[0], n);
        p.ref.kernels.swigluBackward(gate[1], u[1], go[1], gg[1], gu[1], n);
        await expectSame(p, gg, `swigluBackward gGate ${n}`);
        await expectSame(p, gu, `swigluBackward gUp ${n}`);
        // In place: the output is the gate storage (written through a temporary).
        p.gpu.kernels.swiglu(gate[0], u[0], gate[0], n);
        p.ref.kernels.swiglu(gate[1], u[1], gate[1], n);
        await expectSame(p, gate, `swiglu in place ${n}`);
      }
    });

    it('adamw over several steps with weight decay and a gradient scale', async () => {
      const n = 1031;
      const param = up(p, 'float32', rand(n, 1));
      const m = up(p, 'float32', new Float32Array(n));
      const v = up(p, 'float32', new Float32Array(n));
      const scale = up(p, 'float32', [0.37]);
      for (let step = 1; step <= 4; step++) {
        const grad = up(p, 'float32', rand(n, 10 + step, -2, 2));
        const args = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step };
        p.gpu.kernels.adamw(param[0], grad[0], m[0], v[0], scale[0], args, n);
        p.ref.kernels.adamw(param[1], grad[1], m[1], v[1], scale[1], args, n);
      }
      await expectSame(p, param, 'adamw param');
      await expectSame(p, m, 'adamw m');
      await expectSame(p, v, 'adamw v');
    });

    it('sumSquares, single and two-pass, with accumulate', async () => {
      for (const n of [1, 1000, 300007]) {
        const x = up(p, 'float32', rand(n, n));
        const out = up(p, 'float32', [2.5]);
        for (const accumulate of [true, false, true]) {
          p.gpu.kernels.sumSquares(x[0], out[0], n, accumulate);
          p.ref.kernels.sumSquares(x[1], out[1], n, accumulate);
          await expectSame(p, out, `sumSquares ${n} accumulate=${accumulate}`, 1e-5);
        }
      }
    });
  });
}

describe('WGSL templating used by the model kernels', () => {
  it('expands nested unroll blocks innermost first, with named divisors', () => {
    const src = '//#unroll r R\nrow {r}\n//#unroll c C\na_{r}_{c} {c/L} {c%L}\n//#end\n//#end\nk = __L__;\n';
    expect(expandTemplate(src, { R: 2, C: 3, L: 2 })).toBe(
      'row 0\na_0_0 0 0\na_0_1 0 1\na_0_2 1 0\nrow 1\na_1_0 0 0\na_1_1 0 1\na_1_2 1 0\nk = 2;\n');
  });
});
