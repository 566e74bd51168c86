// WebGPU backend: every kernel against the float64 ReferenceBackend on awkward shapes, on the Vulkan (core)
// adapter and on the OpenGL ES compatibility adapter with default limits (128 invocations per workgroup),
// plus pool/batching/limits/error behaviour.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Backend, type DType, type MatmulArgs, type Storage, type View,
  BINARY_OPS, KernelError, UNARY_OPS, contiguousStrides, contiguousView, sizeOf,
} from '../../src/backend/backend.js';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import { createWebGPUBackend, expandTemplate, isSoftwareAdapter } from '../../src/backend/webgpu/webgpu_backend.js';
import { requestNodeAdapter } from '../../src/backend/webgpu/node_gpu.js';
import { assertCloseToScale, maxAbs } from '../support/close.js';
import { type Pair, readBoth, up } from '../support/gpu_pair.js';
import { hostRandom } from '../support/random.js';
import { WEBGPU_TEST_ADAPTERS } from '../support/webgpu_adapters.js';

function permutedView(shape: number[], perm: number[]): { stored: number[]; view: View } {
  // Data stored contiguously as `stored` = shape permuted; the view reads it back in `shape` order.
  const stored = perm.map((d) => shape[d]);
  const storedStrides = contiguousStrides(stored);
  const strides = new Array<number>(shape.length);
  perm.forEach((d, i) => { strides[d] = storedStrides[i]; });
  return { stored, view: { strides, offset: 0 } };
}

for (const adapter of WEBGPU_TEST_ADAPTERS) {
  describe(`WebGPU backend: ${adapter.name}`, () => {
    let p: Pair;
    beforeAll(async () => {
      p = { gpu: await adapter.open(), ref: new ReferenceBackend() };
    });
    afterAll(() => {
      p?.gpu.destroy();
    });

    it('describes the adapter', () => {
      const d = p.gpu.describe();
      expect(d.featureLevel).toBe(adapter.name.startsWith('vulkan') ? 'core' : 'compatibility');
      expect(d.software).toBe(true); // llvmpipe on this machine
      expect(typeof (d.limits as Record<string, number>).maxComputeInvocationsPerWorkgroup).toBe('number');
      expect(Array.isArray(d.features)).toBe(true);
      if (adapter.name.startsWith('opengles')) expect(p.gpu.wg).toBeLessThanOrEqual(128);
    });

    it('uploads and reads float32 / int32', async () => {
      const f = hostRandom(1000, 1);
      const gs = p.gpu.upload('float32', f);
      expect(Array.from(await p.gpu.read(gs))).toEqual(Array.from(f));
      const ints = [0, -1, 7, 2147483647, -2147483648, 3.9, -3.9];
      const gi = p.gpu.upload('int32', ints);
      const ri = await p.gpu.read(gi);
      expect(ri).toBeInstanceOf(Int32Array);
      expect(Array.from(ri)).toEqual(Array.from(Int32Array.from(ints)));
      expect((await p.gpu.read(p.gpu.alloc('float32', 0))).length).toBe(0);
      p.gpu.free(gs);
      p.gpu.free(gi);
    });

    it('fill, arange, cast on both dtypes', async () => {
      for (const dtype of ['float32', 'int32'] as DType[]) {
        for (const n of [1, 7, 127, 1531]) {
          const g = p.gpu.alloc(dtype, n);
          const r = p.ref.alloc(dtype, n);
          p.gpu.fill(g, -2.75); p.ref.fill(r, -2.75);
          let [a, b] = await readBoth(p, g, r);
          assertCloseToScale(a, b, `fill ${dtype} ${n}`);
          for (const [start, step] of [[3, 2], [-5, 0.25], [1.5, -1]]) {
            p.gpu.arange(g, start, step); p.ref.arange(r, start, step);
            [a, b] = await readBoth(p, g, r);
            assertCloseToScale(a, b, `arange ${dtype} ${n} ${start} ${step}`, 1e-6);
          }
        }
      }
      const data = [-3.7, -0.5, 0, 0.5, 2.9, 1e6 + 0.5, -123456.7];
      const [gf, rf] = up(p, 'float32', data);
      const gi = p.gpu.alloc('int32', data.length);
      const ri = p.ref.alloc('int32', data.length);
      p.gpu.cast(gf, gi); p.ref.cast(rf, ri);
      const [ai, bi] = await readBoth(p, gi, ri);
      expect(ai).toBeInstanceOf(Int32Array);
      expect(Array.from(ai)).toEqual(Array.from(bi));
      const gf2 = p.gpu.alloc('float32', data.length);
      const rf2 = p.ref.alloc('float32', data.length);
      p.gpu.cast(gi, gf2); p.ref.cast(ri, rf2);
      const [af, bf] = await readBoth(p, gf2, rf2);
      expect(Array.from(af)).toEqual(Array.from(bf));
    });

    it('random: uniform bit-exact, normal close', async () => {
      const n = 4099;
      const g = p.gpu.alloc('float32', n);
      const r = p.ref.alloc('float32', n);
      p.gpu.random(g, { kind: 'uniform', seed: 1234, a: 0, b: 1 });
      p.ref.random(r, { kind: 'uniform', seed: 1234, a: 0, b: 1 });
      let [a, b] = await readBoth(p, g, r);
      for (let i = 0; i < n; i++) if (a[i] !== b[i]) throw new Error(`uniform[${i}] ${a[i]} != ${b[i]}`);
      p.gpu.random(g, { kind: 'uniform', seed: 0xdeadbeef, a: -3, b: 5 });
      p.ref.random(r, { kind: 'uniform', seed: 0xdeadbeef, a: -3, b: 5 });
      [a, b] = await readBoth(p, g, r);
      assertCloseToScale(a, b, 'uniform [-3,5)', 1e-5);
      p.gpu.random(g, { kind: 'normal', seed: 77, a: 0.5, b: 2 });
      p.ref.random(r, { kind: 'normal', seed: 77, a: 0.5, b: 2 });
      [a, b] = await readBoth(p, g, r);
      assertCloseToScale(a, b, 'normal', 1e-4, 1);
    });

    it('unary: every op over strided views', async () => {
      const shape = [7, 13];
      const { stored, view } = permutedView(shape, [1, 0]);
      for (const op of UNARY_OPS) {
        const positive = ['log', 'sqrt', 'rsqrt', 'powScalar'].includes(op);
        const data = positive ? hostRandom(sizeOf(stored), 3, 0.05, 4) : hostRandom(sizeOf(stored), 3, -6, 6);
        const [gx, rx] = up(p, 'float32', data);
        const g = p.gpu.alloc('float32', 91);
        const r = p.ref.alloc('float32', 91);
        const s = op === 'powScalar' ? 1.7 : op === 'mulScalar' ? -2.5 : 0.75;
        p.gpu.unary(op, gx, view, g, shape, s); p.ref.unary(op, rx, view, r, shape, s);
        const [a, b] = await readBoth(p, g, r);
        assertCloseToScale(a, b, `unary.${op}`);
        // Contiguous, broadcast (stride 0) and offset views.
        const n = 83; // offset 5 + 83 < 91 stored elements
        const g2 = p.gpu.alloc('float32', n);
        const r2 = p.ref.alloc('float32', n);
        p.gpu.unary(op, gx, { strides: [0, 1], offset: 5 }, g2, [1, n], s);
        p.ref.unary(op, rx, { strides: [0, 1], offset: 5 }, r2, [1, n], s);
        const [c, d] = await readBoth(p, g2, r2);
        assertCloseToScale(c, d, `unary.${op} offset`);
        for (const x of [gx, g, g2]) p.gpu.free(x);
      }
      // pow with negative bases and integral exponents follows Math.pow.
      const [gx, rx] = up(p, 'float32', [-2, -3, 0, 4, -0.5]);
      const g = p.gpu.alloc('float32', 5);
      const r = p.ref.alloc('float32', 5);
      for (const e of [2, 3, 0, -1]) {
        p.gpu.unary('powScalar', gx, contiguousView([5]), g, [5], e);
        p.ref.unary('powScalar', rx, contiguousView([5]), r, [5], e);
        const [a, b] = await readBoth(p, g, r);
        assertCloseToScale(a, b, `pow ^${e}`);
      }
    });

    it('binary: every op with broadcasting and permuted rank-6 views', async () => {
      const shape = [2, 3, 1, 5, 2, 7];
      const n = sizeOf(shape);
      const pa = permutedView(shape, [5, 3, 0, 2, 1, 4]);
      const bShape = [1, 3, 1, 5, 1, 7]; // broadcast over dims 0 and 4
      const bStrides = contiguousStrides(bShape).map((s, d) => (bShape[d] === 1 ? 0 : s));
      const aData = hostRandom(sizeOf(pa.stored), 10, 0.1, 3);
      const bData = hostRandom(sizeOf(bShape), 11, -2, 2);
      // Some equal values so eq/le/ge see ties.
      for (let i = 0; i < bData.length; i += 3) bData[i] = aData[i];
      const [ga, ra] = up(p, 'float32', aData);
      const [gb, rb] = up(p, 'float32', bData);
      for (const op of BINARY_OPS) {
        const g = p.gpu.alloc('float32', n);
        const r = p.ref.alloc('float32', n);
        p.gpu.binary(op, ga, pa.view, gb, { strides: bStrides, offset: 0 }, g, shape);
        p.ref.binary(op, ra, pa.view, rb, { strides: bStrides, offset: 0 }, r, shape);
        const [a, b] = await readBoth(p, g, r);
        assertCloseToScale(a, b, `binary.${op}`);
        p.gpu.free(g);
      }
      // Scalar broadcast over a long contiguous vector.
      const m = 100003;
      const [gc, rc] = up(p, 'float32', hostRandom(m, 12));
      const g = p.gpu.alloc('float32', m);
      const r = p.ref.alloc('float32', m);
      p.gpu.binary('mul', gc, contiguousView([m]), gb, { strides: [0], offset: 4 }, g, [m]);
      p.ref.binary('mul', rc, contiguousView([m]), rb, { strides: [0], offset: 4 }, r, [m]);
      const [a, b] = await readBoth(p, g, r);
      assertCloseToScale(a, b, 'binary.mul scalar');
    });

    it('where and copy (raw words, slices, permutes, offsets)', async () => {
      const shape = [13, 7];
      const n = sizeOf(shape);
      const cond = Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 0 : i % 3 === 1 ? 1 : -0.5));
      const [gc, rc] = up(p, 'float32', cond);
      const [ga, ra] = up(p, 'float32', hostRandom(n, 20));
      const [gb, rb] = up(p, 'float32', hostRandom(7, 21));
      const g = p.gpu.alloc('float32', n);
      const r = p.ref.alloc('float32', n);
      const tv = permutedView(shape, [1, 0]).view;
      p.gpu.where(gc, contiguousView(shape), ga, tv, gb, { strides: [0, 1], offset: 0 }, g, shape);
      p.ref.where(rc, contiguousView(shape), ra, tv, rb, { strides: [0, 1], offset: 0 }, r, shape);
      let [a, b] = await readBoth(p, g, r);
      assertCloseToScale(a, b, 'where');
      // int32 condition
      const [gci, rci] = up(p, 'int32', cond.map((c) => (c === 0 ? 0 : c > 0 ? 1 : -2147483648)));
      p.gpu.where(gci, contiguousView(shape), ga, tv, gb, { strides: [0, 1], offset: 0 }, g, shape);
      p.ref.where(rci, contiguousView(shape), ra, tv, rb, { strides: [0, 1], offset: 0 }, r, shape);
      [a, b] = await readBoth(p, g, r);
      assertCloseToScale(a, b, 'where int cond');

      for (const dtype of ['float32', 'int32'] as DType[]) {
        const data = dtype === 'int32' ? Array.from({ length: 210 }, (_, i) => i * 7919 - 50000) : Array.from(hostRandom(210, 22));
        const [gx, rx] = up(p, dtype, data);
        const go = p.gpu.alloc(dtype, 300);
        const ro = p.ref.alloc(dtype, 300);
        p.gpu.fill(go, 9); p.ref.fill(ro, 9);
        // x as [5, 6, 7] permuted to [7, 5, 6] sliced to [7, 5, 3] with offset, placed at out offset 11.
        const view = { strides: [1, 42, 7 * 2], offset: 3 };
        p.gpu.copy(gx, view, go, 11, [7, 5, 3]);
        p.ref.copy(rx, view, ro, 11, [7, 5, 3]);
        const [c, d] = await readBoth(p, go, ro);
        expect(Array.from(c), `copy ${dtype}`).toEqual(Array.from(d));
      }
    });

    it('reduce sum/max/min over [outer, len, inner]', async () => {
      const cases: [number, number, number][] = [
        [1, 1, 1], [7, 13, 1], [3, 1531, 1], [1, 1531, 1], [13, 127, 7], [2, 1531, 3], [127, 5, 13], [1, 4099, 1], [5, 0, 2],
      ];
      for (const [outer, len, inner] of cases) {
        const [gx, rx] = up(p, 'float32', hostRandom(outer * len * inner, outer * 1000 + len + inner));
        for (const op of ['sum', 'max', 'min'] as const) {
          const g = p.gpu.alloc('float32', outer * inner);
          const r = p.ref.alloc('float32', outer * inner);
          p.gpu.reduce(op, gx, g, outer, len, inner);
          p.ref.reduce(op, rx, r, outer, len, inner);
          const [a, b] = await readBoth(p, g, r);
          assertCloseToScale(a, b, `reduce.${op} [${outer},${len},${inner}]`, 1e-4, Math.sqrt(Math.max(len, 1)));
          p.gpu.free(g);
        }
        p.gpu.free(gx);
      }
    });

    it('matmul: transposes, batch strides, broadcast, odd and large-K shapes (every kernel variant)', async () => {
      // The default kernel for this adapter (on llvmpipe 'subgroups' or 'direct', each with its scalar
      // fallback for unaligned shapes, and the small-output kernel for few rows or columns), plus every
      // other variant.
      // The forced variants keep few-row / few-column products too (small: false); the default backend
      // sends those to the small-output kernel.
      const variants = await Promise.all([
        adapter.open({ matmul: { kind: 'tiled', small: false } }),
        adapter.open({ matmul: { kind: 'direct', TM: 4, WX: 8, small: false } }),
        adapter.open({ matmul: { kind: 'subgroups', TM: 24, WX: 8, small: false } }),
      ]);
      try {
        for (const gpu of [p.gpu, ...variants]) await checkMatmul({ gpu, ref: p.ref });
      } finally {
        for (const v of variants) v.destroy();
      }
    });

    async function checkMatmul(p: Pair): Promise<void> {
      const cases: (Partial<MatmulArgs> & { m: number; n: number; k: number })[] = [
        { m: 1, n: 1, k: 1 },
        { m: 7, n: 13, k: 127 },
        { m: 13, n: 7, k: 1531 },
        { m: 67, n: 129, k: 33 },
        { m: 1, n: 131, k: 64 },
        { m: 130, n: 1, k: 17 },
        { m: 64, n: 64, k: 64 },
        { m: 67, n: 132, k: 36 },
        { m: 9, n: 13, k: 20 },
        { m: 5, n: 8, k: 1532 },
        { m: 41, n: 36, k: 52 }, // vec4-aligned k and n, rows past one 16- and 24-row block
        // Small-output path (matmul_small.wgsl): GEMV / decode rows, split-K, tiny n as the swapped problem.
        { m: 1, n: 257, k: 1024 },
        { m: 3, n: 64, k: 4096 },
        { m: 1, n: 1, k: 5000 },
        { m: 2, n: 1000, k: 64 },
        { m: 8, n: 33, k: 40 },
        { m: 1, n: 45, k: 128 },
        { m: 300, n: 1, k: 515 },
        { m: 37, n: 3, k: 1024 },
        { m: 50, n: 2, k: 64 },
        { m: 16, n: 12, k: 999 },
      ];
      for (const c of cases) {
        for (const transA of [false, true]) {
          for (const transB of [false, true]) {
            for (const batchMode of ['single', 'batched', 'broadcastB'] as const) {
              if (batchMode !== 'single' && c.k > 200) continue;
              const batch = batchMode === 'single' ? 1 : 3;
              const strideA = c.m * c.k;
              const strideB = batchMode === 'broadcastB' ? 0 : c.k * c.n;
              const args: MatmulArgs = { batch, m: c.m, n: c.n, k: c.k, transA, transB, strideA, strideB };
              const [ga, ra] = up(p, 'float32', hostRandom(strideA * batch, c.m + c.k));
              const [gb, rb] = up(p, 'float32', hostRandom(Math.max(strideB * batch, c.k * c.n), c.n + 7 * c.k));
              const g = p.gpu.alloc('float32', batch * c.m * c.n);
              const r = p.ref.alloc('float32', batch * c.m * c.n);
              p.gpu.matmul(ga, gb, g, args);
              p.ref.matmul(ra, rb, r, args);
              const [a, b] = await readBoth(p, g, r);
              const tile = (p.gpu.describe().matmulTile as { kind: string }).kind;
              assertCloseToScale(a, b, `matmul[${tile}] ${JSON.stringify(args)}`, 1e-4, Math.sqrt(c.k));
              for (const x of [ga, gb, g]) p.gpu.free(x);
            }
          }
        }
      }
    }

    it('softmax and log-softmax along rows', async () => {
      for (const [rows, cols] of [[1, 1], [7, 13], [3, 1531], [127, 5], [2, 4099]]) {
        const [gx, rx] = up(p, 'float32', hostRandom(rows * cols, rows + cols, -8, 8));
        for (const log of [false, true]) {
          const g = p.gpu.alloc('float32', rows * cols);
          const r = p.ref.alloc('float32', rows * cols);
          p.gpu.softmax(gx, g, rows, cols, log);
          p.ref.softmax(rx, r, rows, cols, log);
          const [a, b] = await readBoth(p, g, r);
          assertCloseToScale(a, b, `softmax log=${log} [${rows},${cols}]`, 1e-4, log ? Math.max(1, maxAbs(b)) : 1e-2);
          p.gpu.free(g);
        }
      }
    });

    it('gather and scatterAdd (duplicates accumulate in order)', async () => {
      for (const [rows, rowLen, nIds] of [[7, 13, 11], [1, 1, 5], [127, 3, 300], [13, 259, 17]]) {
        const ids = Array.from({ length: nIds }, (_, i) => (i * 5 + 3) % rows);
        ids[nIds - 1] = ids[0]; // duplicate
        const [gt, rt] = up(p, 'float32', hostRandom(rows * rowLen, rows));
        const [gi, ri] = up(p, 'int32', ids);
        const g = p.gpu.alloc('float32', nIds * rowLen);
        const r = p.ref.alloc('float32', nIds * rowLen);
        p.gpu.gather(gt, gi, g, nIds, rowLen);
        p.ref.gather(rt, ri, r, nIds, rowLen);
        let [a, b] = await readBoth(p, g, r);
        expect(Array.from(a), 'gather').toEqual(Array.from(b).map(Math.fround));
        const [gs, rs] = up(p, 'float32', hostRandom(nIds * rowLen, nIds));
        const go = p.gpu.alloc('float32', rows * rowLen);
        const ro = p.ref.alloc('float32', rows * rowLen);
        p.gpu.fill(go, 0.5); p.ref.fill(ro, 0.5);
        p.gpu.scatterAdd(gs, gi, go, nIds, rowLen);
        p.ref.scatterAdd(rs, ri, ro, nIds, rowLen);
        [a, b] = await readBoth(p, go, ro);
        assertCloseToScale(a, b, `scatterAdd [${rows},${rowLen}] x${nIds}`, 1e-5, Math.sqrt(nIds));
      }
    });

    it('element counts beyond 65535 workgroups use a 2-D grid', async () => {
      const n = 65535 * p.gpu.wg + 4099;
      const x = p.gpu.alloc('float32', n);
      p.gpu.arange(x, 0, 1);
      const y = p.gpu.alloc('float32', n);
      p.gpu.unary('addScalar', x, contiguousView([n]), y, [n], 0.5);
      const out = await p.gpu.read(y);
      for (const i of [0, 1, 65535 * p.gpu.wg - 1, 65535 * p.gpu.wg, n - 1]) expect(out[i]).toBe(Math.fround(Math.fround(i) + 0.5));
      p.gpu.free(x);
      p.gpu.free(y);
    });

    it('out aliasing an input is handled', async () => {
      const [g, r] = up(p, 'float32', hostRandom(37, 40));
      p.gpu.unary('exp', g, contiguousView([37]), g, [37], 0);
      p.ref.unary('exp', r, contiguousView([37]), r, [37], 0);
      p.gpu.binary('mul', g, contiguousView([37]), g, contiguousView([37]), g, [37]);
      p.ref.binary('mul', r, contiguousView([37]), r, contiguousView([37]), r, [37]);
      const [a, b] = await readBoth(p, g, r);
      assertCloseToScale(a, b, 'aliased');
    });

    it('pools buffers with deferred frees and tracks memory', async () => {
      await p.gpu.sync();
      const before = p.gpu.memory();
      const s = p.gpu.alloc('float32', 1000);
      expect(p.gpu.memory().liveBytes).toBe(before.liveBytes + 4000);
      expect(p.gpu.memory().liveBuffers).toBe(before.liveBuffers + 1);
      expect(p.gpu.memory().peakBytes).toBeGreaterThanOrEqual(before.liveBytes + 4000);
      p.gpu.fill(s, 1);
      p.gpu.free(s);
      expect(p.gpu.memory().liveBytes).toBe(before.liveBytes);
      await p.gpu.sync();
      const created = p.gpu.stats().buffersCreated;
      const t = p.gpu.alloc('float32', 1001); // same size class
      expect(p.gpu.stats().buffersCreated).toBe(created);
      // Many dispatches between reads: batches submit periodically and the result is still right.
      p.gpu.fill(t, 0);
      for (let i = 0; i < 100; i++) p.gpu.unary('addScalar', t, contiguousView([1001]), t, [1001], 1);
      const v = await p.gpu.read(t);
      expect(v[0]).toBe(100);
      expect(v[1000]).toBe(100);
      p.gpu.free(t);
      await expect(() => p.gpu.read(t)).rejects.toThrow(/freed/);
    });

    it('alloc zeroes a dirty pooled buffer on the GPU, in order with pending work, without a queue write', async () => {
      // Zeroing through queue.writeBuffer streams every byte through a browser's GPU process (about 0.5 s for a
      // 40 MiB logits buffer on Chromium's GLES adapter): alloc records a fill dispatch instead.
      for (const dtype of ['float32', 'int32', 'bfloat16', 'float16'] as DType[]) {
        for (const n of [1, 7, 1531, 300_001]) {
          const dirty = p.gpu.upload(dtype, Array.from({ length: n }, (_, i) => (i % 13) - 6.5));
          p.gpu.free(dirty);
          await p.gpu.sync();
          const created = p.gpu.stats().buffersCreated;
          const queue = p.gpu.device.queue;
          const writeBuffer = queue.writeBuffer;
          let queueWrites = 0;
          queue.writeBuffer = ((...args: Parameters<GPUQueue['writeBuffer']>) => { queueWrites++; return writeBuffer.apply(queue, args); }) as GPUQueue['writeBuffer'];
          let fresh: Storage;
          try {
            fresh = p.gpu.alloc(dtype, n);
          } finally {
            queue.writeBuffer = writeBuffer;
          }
          expect(p.gpu.stats().buffersCreated, `${dtype} ${n}: the dirty buffer is reused`).toBe(created);
          expect(queueWrites, `${dtype} ${n}: no queue write`).toBe(0);
          const values = await p.gpu.read(fresh);
          expect(values.length).toBe(n);
          expect(values.every((v) => Object.is(v, 0)), `${dtype} ${n}: every element +0`).toBe(true);
          p.gpu.free(fresh);
        }
      }
      // A pending dispatch that wrote the buffer before its free does not overtake the zeroing.
      const a = p.gpu.alloc('float32', 4096);
      p.gpu.fill(a, 3);
      p.gpu.free(a);
      const b = p.gpu.alloc('float32', 4096);
      p.gpu.unary('addScalar', b, contiguousView([4096]), b, [4096], 1);
      expect(new Set(await p.gpu.read(b))).toEqual(new Set([1]));
      p.gpu.free(b);
    });

    it('rejects storages beyond maxBufferSize (past one binding they are bound in windows: webgpu_windows.test.ts)', () => {
      const lim = p.gpu.limits.maxBufferSize;
      expect(() => p.gpu.alloc('float32', Math.floor(lim / 4) + 1)).toThrow(/exceeds the adapter's maxBufferSize/);
    });
  });
}

describe('WGSL templating', () => {
  it('substitutes tokens and unrolls blocks', () => {
    const src = 'const W = __WG__u;\n//#unroll i N\nvar a_{i} = {i};\n//#end\nlet z = __MISSING__;\n';
    expect(expandTemplate(src, { WG: 64, N: 3 })).toBe('const W = 64u;\nvar a_0 = 0;\nvar a_1 = 1;\nvar a_2 = 2;\nlet z = 0;\n');
  });
});

describe('WebGPU errors name kernels', () => {
  it('a shader compile error makes the next call throw a KernelError naming the kernel', async () => {
    const a = await requestNodeAdapter();
    const gpu = await createWebGPUBackend(a.gpu, { adapter: a.adapter });
    try {
      const s = gpu.alloc('float32', 4);
      gpu.debugDispatch('brokenKernel', '@compute @workgroup_size(1) fn main() { let x: f32 = undefinedThing; }', [s], [1, 1, 1]);
      await expect(gpu.sync()).rejects.toThrow(/brokenKernel/);
      // Reported once; the backend keeps working afterwards.
      gpu.fill(s, 2);
      expect(Array.from(await gpu.read(s))).toEqual([2, 2, 2, 2]);
    } finally {
      gpu.destroy();
    }
  });

  it('device loss: every later call throws "WebGPU device lost (...): <kernel>"', async () => {
    const a = await requestNodeAdapter();
    const gpu = await createWebGPUBackend(a.gpu, { adapter: a.adapter });
    try {
      const s = gpu.alloc('float32', 16);
      gpu.fill(s, 1);
      await gpu.sync();
      gpu.device.destroy();
      await expect(gpu.sync()).rejects.toThrow(/WebGPU device lost/);
      let err: unknown;
      try { gpu.fill(s, 3); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(KernelError);
      expect((err as Error).message).toMatch(/WebGPU device lost \(.*\): fill/);
      expect(() => gpu.matmul(s, s, s, { batch: 1, m: 2, n: 2, k: 2, transA: false, transB: false, strideA: 0, strideB: 0 }))
        .toThrow(/WebGPU device lost \(.*\): matmul/);
      await expect(gpu.read(s)).rejects.toThrow(/device lost/);
    } finally {
      gpu.destroy();
    }
  });

  it('a read or sync in flight when the device is lost ends with a device-lost error', async () => {
    for (const backend of ['vulkan', 'opengles'] as const) {
      const a = await requestNodeAdapter({ backend });
      const gpu = await createWebGPUBackend(a.gpu, { adapter: a.adapter });
      try {
        const s = gpu.alloc('float32', 1 << 20);
        for (let i = 0; i < 20; i++) gpu.unary('addScalar', s, contiguousView([1 << 20]), s, [1 << 20], 1);
        const reading = gpu.read(s);
        const syncing = gpu.sync();
        gpu.device.destroy();
        await expect(reading, backend).rejects.toThrow(/WebGPU device lost \(destroyed.*\): read/);
        await expect(syncing, backend).rejects.toThrow(/WebGPU device lost \(destroyed.*\): sync/);
      } finally {
        gpu.destroy();
      }
    }
  });

  it('operations after destroy() throw', async () => {
    const a = await requestNodeAdapter();
    const gpu = await createWebGPUBackend(a.gpu, { adapter: a.adapter });
    gpu.destroy();
    expect(() => gpu.alloc('float32', 1)).toThrow(/destroyed/);
  });

  it('isSoftwareAdapter matches CPU rasterisers', () => {
    expect(isSoftwareAdapter({ vendor: 'mesa', device: 'llvmpipe (LLVM 15)' })).toBe(true);
    expect(isSoftwareAdapter({ description: 'SwiftShader Device (Subzero)' })).toBe(true);
    expect(isSoftwareAdapter({ vendor: 'nvidia', architecture: 'ampere', isFallbackAdapter: false })).toBe(false);
    expect(isSoftwareAdapter({ vendor: 'x', isFallbackAdapter: true })).toBe(true);
  });
});

// Silence unused-import lint for types only used in signatures.
export type { Backend };
