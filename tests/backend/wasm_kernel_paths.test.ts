// Rare paths of the WASM log-softmax gather and attention backward that random inputs never reach: a block of
// logits far above the reference the kernel sums against (the block is summed again against its own max), a
// row that starts with -Infinity, and the attention backward with one work item holding several query heads.
// Each is checked against the float64 reference backend.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AttentionArgs, Backend, Storage } from '../../src/backend/backend.js';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import { nodeWorkerFactory } from '../../src/backend/wasm/node_workers.js';
import { type WasmBackend, createWasmBackend } from '../../src/backend/wasm/wasm_backend.js';
import { assertClose } from '../support/close.js';
import { SeededRandom } from '../support/random.js';

const random = new SeededRandom(24681);
const data = (n: number, lo = -1, hi = 1): Float32Array => random.floats(n, lo, hi);

async function softmaxGather(b: Backend, x: Float32Array, t: number[], rows: number, cols: number): Promise<number[][]> {
  const sx = b.upload('float32', x), st = b.upload('int32', t);
  const outs = [b.alloc('float32', rows), b.alloc('float32', rows), b.alloc('float32', rows)];
  b.kernels.logSoftmaxGather(sx, st, outs[0], outs[1], outs[2], rows, cols);
  const res = await Promise.all(outs.map(async (o) => Array.from(await b.read(o))));
  for (const s of [sx, st, ...outs]) b.free(s);
  return res;
}

async function attentionGrads(b: Backend, a: AttentionArgs, q: Float32Array, k: Float32Array, v: Float32Array, gOut: Float32Array): Promise<number[][]> {
  const rows = a.batch * a.heads * a.tq;
  const [sq, sk, sv, sg] = [q, k, v, gOut].map((d) => b.upload('float32', d));
  const out = b.alloc('float32', q.length), lse = b.alloc('float32', rows);
  const grads = [b.alloc('float32', q.length), b.alloc('float32', k.length), b.alloc('float32', v.length)];
  b.kernels.attention(sq, sk, sv, null, out, lse, a);
  b.kernels.attentionBackward(sq, sk, sv, null, out, lse, sg, grads[0], grads[1], grads[2], a);
  const res = await Promise.all(grads.map(async (g) => Array.from(await b.read(g))));
  for (const s of [sq, sk, sv, sg, out, lse, ...grads] as Storage[]) b.free(s);
  return res;
}

describe.each([1, 2])('wasm kernel paths, %i thread(s)', (threads) => {
  const ref = new ReferenceBackend();
  let w: WasmBackend;
  beforeAll(async () => {
    w = await createWasmBackend({ threads, workerFactory: nodeWorkerFactory() });
  });
  afterAll(() => w.destroy());

  it('logSoftmaxGather: blocks far above the running reference, rows starting far below or at -Infinity', async () => {
    const rows = 5, cols = 5000;
    const x = data(rows * cols, -3, 3);
    x[100] = 90; // row 0: 90 nats above the max of the first 64 logits (inside the first block)
    for (let c = 2048; c < cols; c++) x[cols + c] += 200; // row 1: the second block jumps 200 nats
    for (let c = 0; c < 64; c++) x[2 * cols + c] = -1e30; // row 2: the head is far below the rest
    for (let c = 4096; c < cols; c++) x[3 * cols + c] += 40; // row 3: a jump inside the margin, reference rebased
    for (let c = 0; c < 64; c++) x[4 * cols + c] = -Infinity; // row 4: the head is -Infinity
    const t = [100, 3000, 70, 4500, 700];
    const [got, want] = [await softmaxGather(w, x, t, rows, cols), await softmaxGather(ref, x, t, rows, cols)];
    assertClose(got[0], want[0], 'logp', 2e-6, 2e-6);
    // entropy of row 4 is NaN in the reference (0·-Infinity); the kernel's is not checked there
    assertClose(got[1].slice(0, 4), want[1].slice(0, 4), 'entropy', 1e-5, 1e-5);
    assertClose(got[2], want[2], 'lse', 2e-6, 2e-6);
    expect(got[2][1]).toBeGreaterThan(190);
  });

  it('attention backward: one kv head shared by four query heads, several key blocks and query blocks', async () => {
    const a: AttentionArgs = { batch: 1, heads: 4, kvHeads: 1, tq: 150, tk: 150, kvStride: 150, headDim: 24, causal: true, qOffset: 0, scale: 0.3 };
    const qn = a.batch * a.heads * a.tq * a.headDim, kn = a.batch * a.kvHeads * a.tk * a.headDim;
    const [q, k, v, g] = [data(qn, -2, 2), data(kn, -2, 2), data(kn), data(qn)];
    const [got, want] = [await attentionGrads(w, a, q, k, v, g), await attentionGrads(ref, a, q, k, v, g)];
    assertClose(got[0], want[0], 'gq', 1e-5, 1e-4);
    assertClose(got[1], want[1], 'gk', 1e-5, 1e-4);
    assertClose(got[2], want[2], 'gv', 1e-5, 1e-4);
  });
});
