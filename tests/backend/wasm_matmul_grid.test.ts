// The WASM packed matmul split into a grid of row × column tiles (engine mode 3, WasmBackend.packedGrid): each
// tile packs only its own columns of B and rows of A. Checked on 2 threads against the float64 reference on odd
// shapes (edge rows and columns in every tile), against the row-only split bit for bit (tiling changes no
// element's operations), and with the LoRA epilogue (fused equals matmul then lowRankAdd, bit for bit). Also the
// small-m products without transB (split-k), whose rows of B are taken in L2-sized blocks: several per k chunk.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend, Storage } from '../../src/backend/backend.js';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import { nodeWorkerFactory } from '../../src/backend/wasm/node_workers.js';
import { type WasmBackend, createWasmBackend } from '../../src/backend/wasm/wasm_backend.js';
import { assertClose } from '../support/close.js';
import { SeededRandom } from '../support/random.js';

const random = new SeededRandom(97531);
const data = (n: number): Float32Array => random.floats(n, -1, 1);
type Case = { m: number; n: number; k: number; transA: boolean; transB: boolean; dtype: 'float32' | 'bfloat16' };

async function product(b: Backend, c: Case, a: Float32Array, w: Float32Array): Promise<Float32Array> {
  const sa = b.upload('float32', a), sw = b.upload(c.dtype, w), out = b.alloc('float32', c.m * c.n);
  b.matmul(sa, sw, out, { batch: 1, m: c.m, n: c.n, k: c.k, transA: c.transA, transB: c.transB, strideA: 0, strideB: 0 });
  const res = Float32Array.from(await b.read(out));
  for (const s of [sa, sw, out] as Storage[]) b.free(s);
  return res;
}

/** The tiles per thread of the packed split (0: rows only, the split before the grid). */
const setGrid = (w: WasmBackend, perThread: number): void => { (w as unknown as { gridTilesPerThread: number }).gridTilesPerThread = perThread; };

describe('wasm packed matmul grid, 2 threads', () => {
  const ref = new ReferenceBackend();
  let w: WasmBackend;
  beforeAll(async () => {
    w = await createWasmBackend({ threads: 2, workerFactory: nodeWorkerFactory(), adaptiveThreads: false });
  });
  afterAll(() => w.destroy());

  // 257 × 259: a 2 × 2 grid (cost 2·259 + 2·257 beats 1 × 4 and 4 × 1); 130 × 700: 1 × 4 (columns only); 600 × 70:
  // rows only (70 columns hold one 64-wide tile); k 300 and 517 span two k blocks, the second not a multiple of 4.
  const shapes = [[257, 259, 300], [130, 700, 517], [600, 70, 300]];
  const cases: Case[] = [];
  for (const [m, n, k] of shapes) {
    for (const [transA, transB] of [[false, true], [false, false], [true, false]]) cases.push({ m, n, k, transA, transB, dtype: 'float32' });
    cases.push({ m, n, k, transA: false, transB: true, dtype: 'bfloat16' });
  }

  it.each(cases)('$m×$k·$k×$n transA=$transA transB=$transB $dtype: close to float64, equal to the row split', async (c) => {
    const a = data(c.m * c.k), b = data(c.k * c.n);
    const before = w.poolStats()!.chunks;
    setGrid(w, 2);
    const grid = await product(w, c, a, b);
    const gridChunks = w.poolStats()!.chunks - before;
    setGrid(w, 0);
    const rowSplit = await product(w, c, a, b);
    setGrid(w, 2);
    // the reference widens the 16-bit weights as the engine does: same input values
    assertClose(grid, await product(ref, c, a, b), `grid ${JSON.stringify(c)}`, 1e-4, 1e-4);
    expect(Array.from(grid)).toEqual(Array.from(rowSplit));
    // the grid runs 4 tiles (2 a thread) where both dimensions allow; the row split cut 8 chunks
    if (c.n >= 128) expect(gridChunks).toBe(4);
  });

  it('matmulLowRank on a 2 × 2 grid equals matmul then lowRankAdd, bit for bit', async () => {
    const [rows, cols, inner, rank] = [257, 259, 300, 3];
    const x = w.upload('float32', data(rows * inner)), wt = w.upload('float32', data(inner * cols));
    const u = w.upload('float32', data(rows * rank)), l = w.upload('float32', data(cols * rank));
    for (const transB of [true, false]) {
      const fused = w.alloc('float32', rows * cols), twoPass = w.alloc('float32', rows * cols);
      w.kernels.matmulLowRank(x, wt, u, l, fused, { rows, cols, inner, rank, scale: 0.625, transL: !transB, transB });
      w.matmul(x, wt, twoPass, { batch: 1, m: rows, n: cols, k: inner, transA: false, transB, strideA: 0, strideB: 0 });
      w.kernels.lowRankAdd(u, l, twoPass, { rows, cols, rank, scale: 0.625, transL: !transB });
      expect(Array.from(await w.read(fused)), `transB=${transB}`).toEqual(Array.from(await w.read(twoPass)));
      w.free(fused);
      w.free(twoPass);
    }
    for (const s of [x, wt, u, l]) w.free(s);
  });

  it.each([[5, 3001, 600, false], [16, 3001, 600, true], [7, 2000, 9000, false], [3, 1030, 70, false]])(
    'small m without transB, m %i k %i n %i transA %s: B rows in L2-sized blocks, close to float64', async (m, k, n, transA) => {
      const c: Case = { m: m as number, n: n as number, k: k as number, transA: transA as boolean, transB: false, dtype: 'float32' };
      const a = data(c.m * c.k), b = data(c.k * c.n);
      assertClose(await product(w, c, a, b), await product(ref, c, a, b), `split-k ${JSON.stringify(c)}`, 1e-4, 1e-4);
    });
});
