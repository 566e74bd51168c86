// Fast paths of the WASM step: the worker pool's chunk claiming (a worker that never shows up cannot stall a
// dispatch), uninitialised kernel outputs next to zeroed alloc, and the tensor-layer shortcuts the decode
// and training steps lean on (one flattened product for a batch against a shared weight, permutes of
// size-1 axes that share storage) checked against the general paths.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import { nodeWorkerFactory } from '../../src/backend/wasm/node_workers.js';
import type { WorkerFactory } from '../../src/backend/wasm/thread_pool.js';
import { type WasmBackend, createWasmBackend } from '../../src/backend/wasm/wasm_backend.js';
import { backward } from '../../src/autograd/backward.js';
import { setBackend } from '../../src/tensor/engine.js';
import * as T from '../../src/tensor/index.js';
import { assertClose } from '../support/close.js';
import { hostRandom } from '../support/random.js';

/** Inputs in [-0.5, 0.5) from a seed. */
const data = (n: number, seed: number): Float32Array => hostRandom(n, seed, -0.5, 0.5);

/** Workers that start and then never run a single instruction of the pool loop. */
const silentFactory: WorkerFactory = {
  kind: 'silent',
  start: async () => ({ terminate() {} }),
};

const [m, k, n, big] = [192, 160, 200, 1 << 17];
const inputs = [data(m * k, 1), data(k * n, 2), data(big, 3), data(big, 4)];

/** A few kernels big enough to be split over threads; returns every output. */
async function workload(b: WasmBackend): Promise<Float32Array[]> {
  const a = b.upload('float32', inputs[0]);
  const w = b.upload('float32', inputs[1]);
  const prod = b.alloc('float32', m * n);
  b.matmul(a, w, prod, { batch: 1, m, n, k, transA: false, transB: false, strideA: 0, strideB: 0 });
  const prodT = b.alloc('float32', m * k);
  b.matmul(prod, w, prodT, { batch: 1, m, n: k, k: n, transA: false, transB: true, strideA: 0, strideB: 0 });
  const x = b.upload('float32', inputs[2]);
  const y = b.upload('float32', inputs[3]);
  const sum = b.alloc('float32', big);
  const view = { strides: [1], offset: 0 };
  b.binary('mul', x, view, y, view, sum, [big]);
  const out = [await b.read(prod), await b.read(prodT), await b.read(sum)] as Float32Array[];
  for (const s of [a, w, prod, prodT, x, y, sum]) b.free(s);
  return out;
}

/** Bit-identical outputs (a plain loop: deep equality of 100k-element arrays is slow). */
function expectSame(got: Float32Array[], want: Float32Array[]): void {
  expect(got.length).toBe(want.length);
  got.forEach((g, i) => {
    expect(g.length).toBe(want[i].length);
    const a = new Uint32Array(g.buffer, g.byteOffset, g.length), b = new Uint32Array(want[i].buffer, want[i].byteOffset, want[i].length);
    let bad = -1;
    for (let j = 0; j < a.length && bad < 0; j++) if (a[j] !== b[j]) bad = j;
    expect(bad, `output ${i} differs at ${bad}: ${g[bad]} vs ${want[i][bad]}`).toBe(-1);
  });
}

describe('wasm worker pool', () => {
  let one: WasmBackend;
  beforeAll(async () => { one = await createWasmBackend({ threads: 1 }); });
  afterAll(() => one.destroy());

  it('finishes every dispatch on the calling thread when no worker ever claims a chunk', async () => {
    const lonely = await createWasmBackend({ threads: 2, workerFactory: silentFactory, adaptiveThreads: false });
    try {
      expect(lonely.threads).toBe(2);
      const got = await workload(lonely);
      const want = await workload(one);
      expectSame(got, want);
      const s = lonely.poolStats()!;
      expect(s.dispatches).toBeGreaterThanOrEqual(3);
      expect(s.chunks).toBeGreaterThan(s.dispatches); // each dispatch was cut into several chunks…
      expect(s.callerChunks).toBe(s.chunks); // …and the caller claimed all of them
    } finally {
      lonely.destroy();
    }
  });

  it('splits the same work over a real worker with bit-identical results', async () => {
    const two = await createWasmBackend({ threads: 2, workerFactory: nodeWorkerFactory(), adaptiveThreads: false });
    try {
      const want = await workload(one);
      for (let rep = 0; rep < 3; rep++) expectSame(await workload(two), want);
      const s = two.poolStats()!;
      expect(s.dispatches).toBeGreaterThanOrEqual(9);
      expect(s.callerChunks).toBeLessThanOrEqual(s.chunks);
    } finally {
      two.destroy();
    }
    expect(one.poolStats()).toBeNull();
  });

  it('goes solo (same results) when the workers keep missing dispatches, and only when adaptive', async () => {
    const want = await workload(one);
    for (const adaptive of [true, false]) {
      const lonely = await createWasmBackend({ threads: 2, workerFactory: silentFactory, adaptiveThreads: adaptive });
      try {
        for (let rep = 0; rep < 80; rep++) expectSame(await workload(lonely), want);
        const s = lonely.poolStats()!;
        // 240 kernels, each dispatched or run solo. After 200 warm-up dispatches, 8 worker-less ones in a row
        // are a contended event; a second one soon after starts a solo period in which nothing is dispatched.
        if (adaptive) {
          expect(s.contended).toBeGreaterThanOrEqual(2);
          expect(s.dispatches).toBeGreaterThan(200);
          expect(s.soloRuns).toBeGreaterThan(0);
          expect(s.dispatches + s.soloRuns).toBe(240);
        } else {
          expect(s.contended).toBe(0);
          expect(s.soloRuns).toBe(0);
          expect(s.dispatches).toBe(240);
        }
        expect(s.absent).toBe(s.dispatches);
      } finally {
        lonely.destroy();
      }
    }
  });

  it('zeroes recycled memory in alloc but not in allocUninitialized', async () => {
    const b = one;
    const s = b.upload('float32', [1, 2, 3, 4, 5, 6, 7, 8]);
    b.free(s);
    const z = b.alloc('float32', 8);
    expect(Array.from(await b.read(z))).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    b.free(z);
    const s2 = b.upload('float32', [9, 9, 9, 9, 9, 9, 9, 9]);
    b.free(s2);
    const u = b.allocUninitialized('float32', 8); // same size class, recycled: contents left as they were
    expect(Array.from(await b.read(u))).toEqual([9, 9, 9, 9, 9, 9, 9, 9]);
    b.free(u);
  });
});

describe.each([
  ['reference', async () => new ReferenceBackend(), 1e-12],
  ['wasm', async () => createWasmBackend({ threads: 2, workerFactory: nodeWorkerFactory() }), 2e-5],
] as const)('tensor shortcuts on %s', (_name, make, tol) => {
  let backend: Awaited<ReturnType<typeof make>>;
  beforeAll(async () => { backend = await make(); setBackend(backend); });
  afterAll(() => backend.destroy());

  it.each([false, true])('matmul of a batch against one shared B (transB %s) matches B broadcast explicitly, gradients too', async (transB) => {
    setBackend(backend);
    const [bt, m, k, n] = [3, 5, 7, 6];
    const bShape = transB ? [n, k] : [k, n];
    const run = async (explicit: boolean) => {
      const a = T.tensor(data(bt * m * k, 11), [bt, m, k]).requireGrad();
      const b = T.tensor(data(k * n, 12), bShape).requireGrad();
      const bb = explicit ? T.broadcastTo(b, [bt, ...bShape]) : b;
      const y = T.matmul(a, bb, { transB });
      const wts = T.tensor(data(bt * m * n, 13), [bt, m, n]);
      backward(T.sum(T.mul(y, wts)));
      const r = { y: Array.from(await y.read()), ga: Array.from(await a.grad!.read()), gb: Array.from(await b.grad!.read()) };
      for (const t of [a, b, bb, y, wts]) t.dispose();
      return r;
    };
    const fast = await run(false);
    const general = await run(true);
    assertClose(fast.y, general.y, 'product: shared B vs B broadcast', tol, tol);
    assertClose(fast.ga, general.ga, 'gradient of A: shared B vs B broadcast', tol, tol);
    assertClose(fast.gb, general.gb, 'gradient of B: shared B vs B broadcast', tol, tol);
    // and against a hand-rolled float64 product for the forward
    const av = data(bt * m * k, 11), bv = data(k * n, 12);
    const want: number[] = [];
    for (let t = 0; t < bt; t++) for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let p = 0; p < k; p++) acc += av[(t * m + i) * k + p] * (transB ? bv[j * k + p] : bv[p * n + j]);
      want.push(acc);
    }
    assertClose(fast.y, want, 'product: shared B vs float64 loops', tol, tol);
  });

  it('permute that only moves size-1 axes shares storage; others copy; both differentiate', async () => {
    setBackend(backend);
    const x = T.tensor(data(2 * 1 * 3 * 4, 21), [2, 1, 3, 4]).requireGrad();
    const p = T.permute(x, [0, 2, 1, 3]);
    expect(p.shape).toEqual([2, 3, 1, 4]);
    expect(p.data).toBe(x.data);
    expect(Array.from(await p.read())).toEqual(Array.from(await x.read()));
    const q = T.permute(x, [0, 3, 1, 2]); // [2, 4, 1, 3]: a real transpose
    expect(q.data).not.toBe(x.data);
    const xv = Array.from(await x.read());
    const qv = Array.from(await q.read());
    for (let b = 0; b < 2; b++) for (let d = 0; d < 4; d++) for (let h = 0; h < 3; h++) {
      expect(qv[(b * 4 + d) * 3 + h]).toBe(xv[(b * 3 + h) * 4 + d]);
    }
    const w = T.tensor(data(24, 22), [2, 3, 1, 4]);
    backward(T.sum(T.mul(p, w)));
    expect(Array.from(await x.grad!.read())).toEqual(Array.from(await w.read())); // same memory order
    for (const t of [x, p, q, w]) t.dispose();
  });
});
