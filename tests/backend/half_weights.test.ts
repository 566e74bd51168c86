// 16-bit frozen weights (bfloat16 / float16): the host formats (src/backend/half.ts), the kernels' widening
// (bit-exact on all 65 536 patterns), matmul with a 16-bit B and gather from a 16-bit table on every backend
// against the float64 reference of the widened values, and the clear error every other kernel gives.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Backend, type HalfDType, KernelError, type Storage } from '../../src/backend/backend.js';
import {
  bfloat16ToFloat32Bits, float16ToFloat32Bits, float32BitsToBfloat16, float32BitsToFloat16, roundToHalf,
} from '../../src/backend/half.js';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import { createWasmBackend } from '../../src/backend/wasm/wasm_backend.js';
import { requestNodeAdapter } from '../../src/backend/webgpu/node_gpu.js';
import { createWebGPUBackend } from '../../src/backend/webgpu/webgpu_backend.js';
import * as T from '../../src/tensor/index.js';
import { type NamedBackend, productBackends } from '../support/backends.js';
import { assertClose } from '../support/close.js';
import { matmulVariants } from '../support/matmul_cases.js';
import { hostRandom } from '../support/random.js';

const HALF: readonly HalfDType[] = ['bfloat16', 'float16'];
const ref = new ReferenceBackend();
const f32Bits = (v: number) => new Uint32Array(new Float32Array([v]).buffer)[0];
const bitsF32 = (b: number) => new Float32Array(new Uint32Array([b]).buffer)[0];

/** float16 bits → value from the format's definition (independent of half.ts's bit manipulation). */
function float16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  return sign * (e === 0 ? m * 2 ** -24 : 2 ** (e - 15) * (1 + m / 1024));
}

describe('host 16-bit formats', () => {
  it('float16 widening matches the format definition for every pattern, NaN payloads kept', () => {
    for (let h = 0; h < 65536; h++) {
      const bits = float16ToFloat32Bits(h);
      const want = float16Value(h);
      if (Number.isNaN(want)) {
        expect((bits & 0x7f800000) >>> 0).toBe(0x7f800000);
        expect((bits >>> 13) & 0x3ff).toBe(h & 0x3ff);
        expect(bits >>> 31).toBe(h >> 15);
      } else {
        expect(Object.is(bitsF32(bits), want), `pattern ${h.toString(16)}`).toBe(true);
      }
      if (!Number.isNaN(want)) expect(float32BitsToFloat16(bits)).toBe(h); // exact round trip
      expect(float32BitsToBfloat16(bfloat16ToFloat32Bits(h))).toBe(Number.isNaN(bitsF32(bfloat16ToFloat32Bits(h))) ? h | 0x40 : h);
    }
  });

  it('rounds float32 to nearest even, overflowing to Inf and underflowing through subnormals', () => {
    const f16 = (v: number) => float32BitsToFloat16(f32Bits(v));
    const bf16 = (v: number) => float32BitsToBfloat16(f32Bits(v));
    expect(f16(1 + 2 ** -11)).toBe(0x3c00); // tie → even (down)
    expect(f16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even (up)
    expect(f16(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // above the tie
    expect(f16(65504)).toBe(0x7bff);
    expect(f16(65519)).toBe(0x7bff);
    expect(f16(65520)).toBe(0x7c00); // rounds past the largest finite
    expect(f16(-1e10)).toBe(0xfc00);
    expect(f16(2 ** -24)).toBe(0x0001);
    expect(f16(2 ** -25)).toBe(0x0000); // tie → even (zero)
    expect(f16(2 ** -25 * 1.5)).toBe(0x0001);
    expect(f16(3 * 2 ** -25)).toBe(0x0002); // 1.5 units: tie → even (2)
    expect(f16(-0)).toBe(0x8000);
    expect(f16(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up into the smallest normal
    expect(bf16(1 + 2 ** -8)).toBe(0x3f80); // tie → even
    expect(bf16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(bf16(3.4e38)).toBe(0x7f80); // rounds past the largest finite bfloat16
    expect(bf16(NaN) & 0x7fc0).toBe(0x7fc0);
  });
});

/** Uploads on a backend; runs fn; returns the float32 results of `outSize` elements; frees everything. */
async function runOn(b: Backend, make: (b: Backend) => { inputs: Storage[]; out: Storage; run: () => void }): Promise<Float64Array> {
  const { inputs, out, run } = make(b);
  try {
    run();
    return Float64Array.from(await b.read(out));
  } finally {
    for (const s of [...inputs, out]) b.free(s);
  }
}

interface Target { name: string; backend: Backend }

const targets: Target[] = [{ name: 'reference', backend: ref }];
let products: NamedBackend[] = [];

beforeAll(async () => {
  products = (await productBackends()).available;
  targets.push(...products);
  targets.push({ name: 'wasm(1 thread)', backend: await createWasmBackend({ threads: 1 }) });
  // The workgroup-memory tiled matmul (what GPUs run) besides the adapter's default (direct kernels on lavapipe).
  try {
    const a = await requestNodeAdapter({ backend: 'vulkan' });
    targets.push({ name: 'webgpu tiled matmul', backend: await createWebGPUBackend(a.gpu, { adapter: a.adapter, featureLevel: a.featureLevel, matmul: { kind: 'tiled', WX: 8, WY: 8, TM: 4, BK: 8 } }) });
  } catch (e) {
    if (products.some((p) => p.name.startsWith('webgpu'))) throw e;
  }
}, 120_000);

afterAll(() => {
  for (const t of targets) if (t.backend !== ref) t.backend.destroy();
});

describe('16-bit kernels on every backend', () => {
  it('cast widens every float16 and bfloat16 pattern bit-exactly', async () => {
    const patterns = Uint16Array.from({ length: 65536 }, (_, i) => i);
    for (const { name, backend } of targets) {
      if (backend === ref) continue; // float64 storage: no float32 bits to compare
      for (const dtype of HALF) {
        const src = backend.upload(dtype, patterns);
        const out = backend.alloc('float32', patterns.length);
        backend.cast(src, out);
        const got = new Uint32Array((await backend.read(out) as Float32Array).slice().buffer);
        backend.free(src);
        backend.free(out);
        const widen = dtype === 'float16' ? float16ToFloat32Bits : bfloat16ToFloat32Bits;
        let bad = -1;
        for (let h = 0; h < 65536 && bad < 0; h++) if (got[h] !== widen(h)) bad = h;
        expect(bad, `${name} ${dtype}: pattern 0x${bad.toString(16)} widened to 0x${got[Math.max(bad, 0)]?.toString(16)}`).toBe(-1);
      }
    }
  }, 120_000);

  // Odd m, n, k (k odd: rows of B end mid-word; batches of B start mid-word), several KC panels (k > 256), both
  // thread splits of the packed path (rows ≥ 128; columns), decode-sized m (one and two threads), and a batch
  // sharing either operand.
  const shapes: [number, number, number, number][] = [
    [1, 1, 13, 7], [1, 37, 29, 33], [1, 9, 21, 301], [1, 70, 45, 131], [1, 150, 37, 67], [3, 7, 11, 5], [1, 2, 2051, 3], [1, 9, 700, 91],
  ];
  it('matmul with a 16-bit B equals the float64 product of the widened values (every transpose, odd shapes)', async () => {
    for (const dtype of HALF) {
      for (const [batch, m, n, k] of shapes) {
        for (const { args, sizeA, sizeB, label } of matmulVariants(batch, m, n, k)) {
          const a = hostRandom(sizeA, 11 + m + k);
          const bValues = hostRandom(sizeB, 23 + n + k, -2, 2);
          const want = await runOn(ref, (b) => {
            const inputs = [b.upload('float32', a), b.upload('float32', roundToHalf(dtype, bValues))];
            const out = b.alloc('float32', batch * m * n);
            return { inputs, out, run: () => b.matmul(inputs[0], inputs[1], out, args) };
          });
          const wasmResults: Float64Array[] = [];
          for (const { name, backend } of targets) {
            const got = await runOn(backend, (b) => {
              const inputs = [b.upload('float32', a), b.upload(dtype, bValues)];
              const out = b.alloc('float32', batch * m * n);
              return { inputs, out, run: () => b.matmul(inputs[0], inputs[1], out, args) };
            });
            assertClose(got, want, `${name} ${dtype} ${label}`, 2e-5 * Math.sqrt(k), 1e-5);
            if (name.startsWith('wasm')) wasmResults.push(got);
          }
          // the WASM thread splits never change a result: 1 and 2 threads agree bit for bit
          if (wasmResults.length === 2) expect(Array.from(wasmResults[1]), `wasm 1 vs 2 threads ${dtype} ${label}`).toEqual(Array.from(wasmResults[0]));
        }
      }
    }
  }, 600_000);

  it('gather from a 16-bit table equals the widened rows', async () => {
    for (const dtype of HALF) {
      for (const rowLen of [1, 7, 8, 19]) {
        const rows = 13;
        const table = hostRandom(rows * rowLen, rowLen, -3, 3);
        const ids = [12, 0, 5, 5, 3, 11, 0];
        const widened = roundToHalf(dtype, table);
        const want = ids.flatMap((id) => Array.from(widened.subarray(id * rowLen, (id + 1) * rowLen)));
        for (const { name, backend } of targets) {
          const got = await runOn(backend, (b) => {
            const inputs = [b.upload(dtype, table), b.upload('int32', ids)];
            const out = b.alloc('float32', ids.length * rowLen);
            return { inputs, out, run: () => b.gather(inputs[0], inputs[1], out, ids.length, rowLen) };
          });
          expect(Array.from(got), `${name} ${dtype} rowLen ${rowLen}`).toEqual(want);
        }
      }
    }
  });

  it('every other kernel rejects a 16-bit storage naming the dtype; read and memory count 2 bytes an element', async () => {
    for (const { name, backend } of targets) {
      const before = backend.memory().liveBytes;
      const w = backend.upload('bfloat16', [1.5, -2, 3.25]);
      expect(backend.memory().liveBytes - before, name).toBe(8); // 3 elements → 2 words
      expect(Array.from(await backend.read(w)), name).toEqual([1.5, -2, 3.25]);
      const out = backend.alloc('float32', 3);
      const view = { strides: [1], offset: 0 };
      expect(() => backend.unary('neg', w, view, out, [3], 0)).toThrow(/bfloat16 storage is only accepted/);
      expect(() => backend.copy(w, view, out, 0, [3])).toThrow(KernelError);
      expect(() => backend.fill(w, 0)).toThrow(/bfloat16/);
      expect(() => backend.matmul(w, out, out, { batch: 1, m: 1, n: 1, k: 3, transA: false, transB: false, strideA: 0, strideB: 0 })).toThrow(/bfloat16/);
      backend.free(out);
      backend.free(w);
      expect(backend.memory().liveBytes, name).toBe(before);
    }
  });
});

describe('16-bit weights through the tensor layer', () => {
  it('T.matmul with a bfloat16 B: forward and dA equal float32 weights holding the rounded values', async () => {
    for (const { name, backend } of targets) {
      const previous = T.hasBackend() ? T.getBackend() : null;
      T.setBackend(backend);
      try {
        const x = T.tensor(hostRandom(5 * 6, 3), [5, 6]).requireGrad();
        const wValues = hostRandom(7 * 6, 4);
        const wHalf = T.tensor(wValues, [7, 6], 'bfloat16');
        const wRounded = T.tensor(roundToHalf('bfloat16', wValues), [7, 6]);
        for (const transB of [true, false]) {
          const wh = transB ? wHalf : T.reshape(wHalf, [6, 7]);
          const wr = transB ? wRounded : T.reshape(wRounded, [6, 7]);
          const y = T.matmul(x, wh, { transB });
          const yRef = T.matmul(x, wr, { transB });
          assertClose(await y.toArray(), await yRef.toArray(), `${name} forward transB=${transB}`, 1e-5, 1e-5);
          T.backward(T.sum(T.mul(y, y)));
          const gh = await x.grad!.toArray();
          x.grad!.dispose();
          x.grad = null;
          T.backward(T.sum(T.mul(yRef, yRef)));
          const gr = await x.grad!.toArray();
          x.grad!.dispose();
          x.grad = null;
          assertClose(gh, gr, `${name} dA transB=${transB}`, 1e-5, 1e-5);
        }
        expect(() => T.add(wHalf, wHalf)).toThrow(/bfloat16/);
        expect(() => wHalf.requireGrad()).toThrow(/float32/);
        expect(() => T.cast(wRounded, 'bfloat16')).toThrow(/frozen weights/);
        expect(await T.cast(wHalf, 'float32').toArray()).toEqual(Array.from(roundToHalf('bfloat16', wValues)));
      } finally {
        if (previous) T.setBackend(previous);
      }
    }
  });
});
