// The WASM backend (AssemblyScript SIMD kernels, shared memory, worker pool) against the float64
// reference on awkward shapes, single-threaded and with 2 threads; plus memory, lifetime and RNG checks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Backend, BINARY_OPS, type BinaryOp, KernelError, REDUCE_OPS, type Storage, UNARY_OPS, type UnaryOp, type View,
  contiguousStrides, sizeOf,
} from '../../src/backend/backend.js';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import { mix32, randomBits } from '../../src/backend/rng.js';
import { nodeWorkerFactory } from '../../src/backend/wasm/node_workers.js';
import { ENGINE_WASM_BASE64 } from '../../src/backend/wasm/engine_wasm.gen.js';
import { type WasmBackend, createWasmBackend, unshareMemoryImport } from '../../src/backend/wasm/wasm_backend.js';
import { assertClose } from '../support/close.js';
import { matmulVariants } from '../support/matmul_cases.js';
import { SeededRandom, quantize } from '../support/random.js';

const random = new SeededRandom(12345);
/** The next n values of this file's data stream; stepsPerUnit > 0 rounds them to create ties. */
function data(n: number, lo = -1, hi = 1, stepsPerUnit = 0): Float32Array {
  const values = random.floats(n, lo, hi);
  return stepsPerUnit ? quantize(values, stepsPerUnit) : values;
}

const ref = new ReferenceBackend();
const cview = (shape: number[], offset = 0): View => ({ strides: contiguousStrides(shape), offset });

/** Runs the same kernel on the wasm backend and the reference with identical inputs. */
async function both(w: Backend, inputs: { dtype?: 'float32' | 'int32'; data: ArrayLike<number> }[], outSize: number,
  fn: (b: Backend, xs: Storage[], out: Storage) => void, outDtype: 'float32' | 'int32' = 'float32', prefill?: ArrayLike<number>) {
  const run = async (b: Backend) => {
    const xs = inputs.map((x) => b.upload(x.dtype ?? 'float32', x.data));
    const out = prefill ? b.upload(outDtype, prefill) : b.alloc(outDtype, outSize);
    fn(b, xs, out);
    const r = await b.read(out);
    for (const x of xs) b.free(x);
    b.free(out);
    return Array.from(r);
  };
  return { got: await run(w), want: await run(ref) };
}

const POSITIVE: UnaryOp[] = ['log', 'sqrt', 'rsqrt', 'powScalar', 'reciprocal'];
const SCALAR: Partial<Record<UnaryOp, number>> = { powScalar: 2.5, mulScalar: -3, addScalar: 0.75 };

describe.each([1, 2])('wasm backend, %i thread(s)', (threads) => {
  let w: WasmBackend;
  beforeAll(async () => {
    w = await createWasmBackend({ threads, workerFactory: nodeWorkerFactory() });
  });
  afterAll(() => w.destroy());

  it('describes itself', () => {
    const d = w.describe();
    expect(d.simd).toBe(true);
    expect(d.threads).toBe(threads);
    expect(d.sharedMemory).toBe(true);
  });

  it('fill, arange, cast on both dtypes', async () => {
    for (const n of [1, 7, 127, 40001]) {
      for (const dt of ['float32', 'int32'] as const) {
        let r = await both(w, [], n, (b, _, o) => b.fill(o, -2.75), dt);
        expect(r.got).toEqual(r.want);
        r = await both(w, [], n, (b, _, o) => b.arange(o, -3.5, 0.25), dt);
        assertClose(r.got, r.want, `arange ${dt}`, 0, 1e-7);
      }
      const x = data(n, -50, 50);
      let r = await both(w, [{ data: x }], n, (b, [a], o) => b.cast(a, o), 'int32');
      expect(r.got).toEqual(r.want);
      const ints = Array.from(x, (v) => Math.trunc(v));
      r = await both(w, [{ dtype: 'int32', data: ints }], n, (b, [a], o) => b.cast(a, o), 'float32');
      expect(r.got).toEqual(r.want);
    }
  });

  it('unary: every op, contiguous / permuted / broadcast / sliced views', async () => {
    for (const op of UNARY_OPS) {
      const lo = POSITIVE.includes(op) ? 0.1 : -4, hi = POSITIVE.includes(op) ? 3 : 4;
      const s = SCALAR[op] ?? 0;
      const cases: { size: number; shape: number[]; view: View }[] = [
        { size: 1, shape: [1], view: cview([1]) },
        { size: 7 * 13, shape: [7, 13], view: cview([7, 13]) },
        { size: 127 * 259, shape: [127 * 259], view: cview([127 * 259]) },
        { size: 13 * 127, shape: [127, 13], view: { strides: [1, 127], offset: 0 } },
        { size: 131, shape: [129, 7], view: { strides: [1, 0], offset: 2 } },
        { size: 200 * 150, shape: [3, 97, 5, 31], view: { strides: [9000, 62, 1, 5], offset: 17 } },
      ];
      for (const c of cases) {
        const x = data(c.size, lo, hi);
        const n = sizeOf(c.shape);
        const r = await both(w, [{ data: x }], n, (b, [a], o) => b.unary(op, a, c.view, o, c.shape, s));
        assertClose(r.got, r.want, `unary.${op} ${JSON.stringify(c.shape)}`, 2e-6, 2e-5);
      }
    }
  });

  it('binary: every op with broadcasts, scalars, permutes and rank 6', async () => {
    for (const op of BINARY_OPS) {
      const cmp = ['eq', 'ne', 'lt', 'le', 'gt', 'ge'].includes(op);
      const lo = op === 'pow' ? 0.2 : -2, hi = 2;
      const q = cmp ? 2 : 0;
      const bLo = op === 'div' ? 0.5 : lo;
      const cases: { na: number; nb: number; shape: number[]; va: View; vb: View }[] = [
        { na: 1, nb: 1, shape: [1], va: cview([1]), vb: cview([1]) },
        { na: 91, nb: 91, shape: [7, 13], va: cview([7, 13]), vb: cview([7, 13]) },
        { na: 40009, nb: 40009, shape: [40009], va: cview([40009]), vb: cview([40009]) },
        { na: 127 * 13, nb: 13, shape: [127, 13], va: cview([127, 13]), vb: { strides: [0, 1], offset: 0 } },
        { na: 30011, nb: 3, shape: [30011], va: cview([30011]), vb: { strides: [0], offset: 2 } },
        { na: 1, nb: 30011, shape: [30011], va: { strides: [0], offset: 0 }, vb: cview([30011]) },
        { na: 13 * 127, nb: 13 * 127, shape: [13, 127], va: { strides: [1, 13], offset: 0 }, vb: cview([13, 127]) },
        { na: 2 * 3 * 5 * 2, nb: 3 * 4 * 2, shape: [2, 3, 4, 1, 5, 2], va: { strides: [30, 10, 0, 0, 2, 1], offset: 0 }, vb: { strides: [0, 8, 2, 0, 0, 1], offset: 0 } },
      ];
      for (const c of cases) {
        const a = data(c.na, lo, hi, q), bb = data(c.nb, bLo, hi, q);
        const r = await both(w, [{ data: a }, { data: bb }], sizeOf(c.shape), (b, [x, y], o) => b.binary(op as BinaryOp, x, c.va, y, c.vb, o, c.shape));
        assertClose(r.got, r.want, `binary.${op} ${JSON.stringify(c.shape)}`, 2e-6, 2e-5);
      }
    }
  });

  it('where with broadcast condition and strided operands', async () => {
    for (const [shape, vc, va, vb, nc, na, nb] of [
      [[9, 10], { strides: [1, 0], offset: 0 }, cview([9, 10]), { strides: [0, 1], offset: 0 }, 9, 90, 10],
      [[200, 131], cview([200, 131]), cview([200, 131]), cview([200, 131]), 26200, 26200, 26200],
      [[131, 200], { strides: [1, 131], offset: 0 }, { strides: [0, 0], offset: 3 }, cview([131, 200]), 26200, 5, 26200],
    ] as [number[], View, View, View, number, number, number][]) {
      const r = await both(w, [{ data: data(nc, -1, 1, 1) }, { data: data(na) }, { data: data(nb) }], sizeOf(shape),
        (b, [c, x, y], o) => b.where(c, vc, x, va, y, vb, o, shape));
      assertClose(r.got, r.want, `where ${JSON.stringify(shape)}`, 0, 0);
    }
  });

  it('copy: permute, slice, broadcast into an offset; int32 words', async () => {
    const shape = [3, 5, 7, 11];
    const perm: View = { strides: [1, 3, 15, 105], offset: 0 }; // x stored [11, 7, 5, 3] read transposed
    let r = await both(w, [{ data: data(1155) }], 1200, (b, [x], o) => b.copy(x, perm, o, 45, shape), 'float32', new Float32Array(1200).fill(9));
    assertClose(r.got, r.want, 'copy permute', 0, 0);
    const ints = Array.from({ length: 60000 }, (_, i) => (i * 2654435761) | 0);
    r = await both(w, [{ dtype: 'int32', data: ints }], 50000, (b, [x], o) => b.copy(x, { strides: [300, 2], offset: 1 }, o, 0, [200, 150]), 'int32');
    expect(r.got).toEqual(r.want);
    r = await both(w, [{ data: data(13) }], 13 * 1000, (b, [x], o) => b.copy(x, { strides: [0, 1], offset: 0 }, o, 0, [1000, 13]));
    assertClose(r.got, r.want, 'copy broadcast', 0, 0);
  });

  it('reduce sum/max/min over [outer, len, inner]', async () => {
    const shapes: [number, number, number][] = [[1, 1, 1], [3, 7, 1], [5, 1531, 1], [2, 13, 127], [7, 127, 13], [1, 40000, 1], [64, 301, 1], [4, 50, 200], [3, 0, 5]];
    for (const op of REDUCE_OPS) {
      for (const [o, l, i] of shapes) {
        const x = data(Math.max(1, o * l * i));
        const r = await both(w, [{ data: x }], o * i, (b, [a], out) => b.reduce(op, a, out, o, l, i));
        assertClose(r.got, r.want, `reduce.${op} [${o},${l},${i}]`, op === 'sum' ? 2e-6 * Math.sqrt(l) * 4 : 0, 1e-5);
      }
    }
  });

  it('matmul: awkward shapes, all transposes, batches with broadcast strides', async () => {
    const shapes: [number, number, number, number][] = [
      [1, 1, 1, 1], [1, 7, 13, 127], [1, 13, 7, 1531], [1, 127, 129, 65], [1, 64, 64, 64], [1, 1, 300, 257],
      [1, 200, 1, 33], [1, 130, 70, 100], [3, 17, 9, 23], [1, 5, 11, 0], [2, 3, 200, 150], [1, 1, 1000, 600], [5, 20, 60, 90],
      [3, 1, 77, 129], [1, 2, 1100, 300],
    ];
    for (const [batch, m, n, k] of shapes) {
      for (const { args, sizeA, sizeB, label } of matmulVariants(batch, m, n, k)) {
        const a = data(sizeA), bm = data(sizeB);
        const r = await both(w, [{ data: a }, { data: bm }], batch * m * n, (b, [x, y], o) => b.matmul(x, y, o, args));
        assertClose(r.got, r.want, `matmul ${label}`, 1e-6 * (k + 1), 1e-5);
      }
    }
  });

  it('softmax and log-softmax', async () => {
    for (const [rows, cols] of [[1, 1], [7, 13], [13, 1531], [64, 1000], [3, 5]]) {
      for (const log of [false, true]) {
        const r = await both(w, [{ data: data(rows * cols, -8, 8) }], rows * cols, (b, [x], o) => b.softmax(x, o, rows, cols, log));
        assertClose(r.got, r.want, `softmax ${rows}x${cols} log=${log}`, 1e-6, 1e-5);
      }
    }
  });

  it('gather and scatterAdd with duplicate ids', async () => {
    for (const [vocab, dim, nIds] of [[37, 13, 100], [50, 256, 300], [5, 1, 9], [1000, 127, 64]]) {
      const table = data(vocab * dim);
      const ids = random.ints(nIds, 0, vocab);
      ids[0] = ids[nIds - 1] = vocab - 1;
      let r = await both(w, [{ data: table }, { dtype: 'int32', data: ids }], nIds * dim, (b, [t, i], o) => b.gather(t, i, o, nIds, dim));
      assertClose(r.got, r.want, 'gather', 0, 0);
      const src = data(nIds * dim);
      r = await both(w, [{ data: src }, { dtype: 'int32', data: ids }], vocab * dim, (b, [s, i], o) => b.scatterAdd(s, i, o, nIds, dim), 'float32', data(vocab * dim));
      assertClose(r.got, r.want, 'scatterAdd', 1e-6, 1e-5);
    }
    const t = w.upload('float32', [1, 2, 3, 4]);
    const bad = w.upload('int32', [0, 2]);
    const o = w.alloc('float32', 4);
    expect(() => w.gather(t, bad, o, 2, 2)).toThrow(/gather.*out of range/);
    expect(() => w.scatterAdd(o, bad, t, 2, 2)).toThrow(KernelError);
    for (const s of [t, bad, o]) w.free(s);
  });

  it('random: bits identical to rng.ts, uniform exact, normal close', async () => {
    const n = 40013;
    const bitsOut = w.alloc('int32', n);
    w.randomBits(bitsOut, 987654321);
    const bits = await w.read(bitsOut);
    const key = mix32(987654321);
    for (let i = 0; i < n; i++) if ((bits[i] >>> 0) !== randomBits(key, i)) expect.fail(`bits[${i}]`);
    w.free(bitsOut);
    let r = await both(w, [], n, (b, _, o) => b.random(o, { kind: 'uniform', seed: 42, a: -0.5, b: 2 }));
    expect(r.got).toEqual(r.want.map(Math.fround));
    r = await both(w, [], n, (b, _, o) => b.random(o, { kind: 'normal', seed: 7, a: 1, b: 0.02 }));
    assertClose(r.got, r.want, 'normal', 1e-7, 1e-6);
  });

  it('fails clearly on use after free and double free', async () => {
    const x = w.upload('float32', [1, 2, 3]);
    const o = w.alloc('float32', 3);
    w.free(x);
    expect(() => w.unary('exp', x, cview([3]), o, [3], 0)).toThrow(/kernel 'unary.exp': storage was freed/);
    expect(() => w.matmul(x, o, o, { batch: 1, m: 1, n: 1, k: 1, transA: false, transB: false, strideA: 0, strideB: 0 })).toThrow(KernelError);
    await expect(w.read(x)).rejects.toThrow(/read/);
    expect(() => w.free(x)).toThrow(/free/);
    expect(() => w.unary('exp', ref.alloc('float32', 3), cview([3]), o, [3], 0)).toThrow(/another backend/);
    w.free(o);
  });

  it('grows memory, keeps contents, reports logical memory', async () => {
    const before = w.memory();
    const small = w.upload('float32', [1, 2, 3, 4, 5]);
    const bytes0 = w.describe().memoryBytes as number;
    const big = w.alloc('float32', 24 << 20); // 96 MiB
    expect(w.describe().memoryBytes as number).toBeGreaterThan(bytes0);
    w.fill(big, 1.5);
    const r = await w.read(big);
    expect(r[0]).toBe(1.5);
    expect(r[r.length - 1]).toBe(1.5);
    expect(Array.from(await w.read(small))).toEqual([1, 2, 3, 4, 5]);
    const m = w.memory();
    expect(m.liveBytes - before.liveBytes).toBe(20 + (24 << 22));
    expect(m.liveBuffers - before.liveBuffers).toBe(2);
    w.free(big);
    w.free(small);
    expect(w.memory().liveBytes).toBe(before.liveBytes);
    expect(w.memory().peakBytes).toBeGreaterThanOrEqual(24 << 22);
    // freed blocks are reused
    const again = w.alloc('float32', 24 << 20);
    const bytes1 = w.describe().memoryBytes;
    w.free(again);
    expect(w.describe().memoryBytes).toBe(bytes1);
  });
});

describe('wasm backend threading', () => {
  it('threaded and single-threaded results are bitwise identical', async () => {
    const w1 = await createWasmBackend({ threads: 1 });
    const w2 = await createWasmBackend({ threads: 2, workerFactory: nodeWorkerFactory() });
    try {
      expect(w2.threads).toBe(2);
      const a = data(300 * 257), b = data(257 * 190), x = data(64 * 1000, -5, 5);
      const outs = [];
      for (const w of [w1, w2]) {
        const sa = w.upload('float32', a), sb = w.upload('float32', b), sx = w.upload('float32', x);
        const o1 = w.alloc('float32', 300 * 190), o2 = w.alloc('float32', 64 * 1000), o3 = w.alloc('float32', 64);
        w.matmul(sa, sb, o1, { batch: 1, m: 300, n: 190, k: 257, transA: false, transB: false, strideA: 0, strideB: 0 });
        w.softmax(sx, o2, 64, 1000, true);
        w.reduce('sum', sx, o3, 64, 1000, 1);
        outs.push([await w.read(o1), await w.read(o2), await w.read(o3)]);
      }
      for (let i = 0; i < 3; i++) expect(Array.from(outs[1][i])).toEqual(Array.from(outs[0][i]));
    } finally {
      w1.destroy();
      w2.destroy();
    }
  });

  it('the engine also instantiates on unshared memory (no SharedArrayBuffer)', async () => {
    const bytes = unshareMemoryImport(Uint8Array.from(atob(ENGINE_WASM_BASE64), (c) => c.charCodeAt(0)));
    const memory = new WebAssembly.Memory({ initial: 64, maximum: 65536 });
    const inst = await WebAssembly.instantiate(await WebAssembly.compile(bytes as BufferSource), { env: { memory } });
    const fill = inst.exports.fill32 as (p: number, bits: number, s: number, e: number) => void;
    fill(1 << 20, 7, 0, 5);
    expect(Array.from(new Int32Array(memory.buffer, 1 << 20, 6))).toEqual([7, 7, 7, 7, 7, 0]);
  });

  it('destroyed backends reject further work', async () => {
    const w = await createWasmBackend({ threads: 2, workerFactory: nodeWorkerFactory() });
    const x = w.alloc('float32', 4);
    w.destroy();
    expect(() => w.fill(x, 1)).toThrow(/destroyed/);
  });
});
