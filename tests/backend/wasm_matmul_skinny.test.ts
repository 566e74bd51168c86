// The WASM matmul's decode path (engine mode 2: m ≤ 16 rows against a weight stored [n, k], transB): from 8 rows
// the engine packs A once per k block and one 8-wide panel of B at a time (skinnyPacked), below that it dots rows in
// place. Checked against float64 loops over the exact operands (16-bit weights widened) for odd m, n and k, k split
// into several blocks, transposed A, batches with strides, one and two threads, and the LoRA epilogue.
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { DType, HalfDType } from '../../src/backend/backend.js';
import { roundToHalf } from '../../src/backend/half.js';
import { nodeWorkerFactory } from '../../src/backend/wasm/node_workers.js';
import { type WasmBackend, createWasmBackend } from '../../src/backend/wasm/wasm_backend.js';
import { assertCloseToScale } from '../support/close.js';
import { hostRandom } from '../support/random.js';

let seed = 4_200_000;
const data = (n: number): Float32Array => hostRandom(n, seed++, -1, 1);

/** The values a storage of `dtype` holds for `x` (16-bit: rounded, then widened exactly). */
const held = (dtype: DType, x: Float32Array): Float64Array => (dtype === 'float32' ? Float64Array.from(x) : roundToHalf(dtype as HalfDType, x));

interface Case { batch: number; m: number; n: number; k: number; transA: boolean; strideA: number; strideB: number }

/** out[bt][i][j] = Σ_p opA(a)[bt][i][p] · b[bt][j][p] in float64. */
function reference(a: Float64Array, b: Float64Array, c: Case): Float64Array {
  const { batch, m, n, k, transA, strideA, strideB } = c;
  const out = new Float64Array(batch * m * n);
  for (let bt = 0; bt < batch; bt++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a[bt * strideA + (transA ? p * m + i : i * k + p)] * b[bt * strideB + j * k + p];
        out[(bt * m + i) * n + j] = s;
      }
    }
  }
  return out;
}

const DTYPES: readonly DType[] = ['float32', 'bfloat16', 'float16'];
const ROWS = [1, 2, 3, 5, 8, 13, 16];
/** [n, k]: n not a multiple of 8 (nor 4), k not a multiple of 4; 2051 splits k into two blocks of the engine. */
const SIZES: readonly [number, number][] = [[37, 43], [13, 7], [61, 2051], [200, 131]];

describe('wasm matmul, decode shapes (m ≤ 16, transB)', () => {
  const backends: [string, WasmBackend][] = [];
  beforeAll(async () => {
    backends.push(['1 thread', await createWasmBackend({ threads: 1 })]);
    backends.push(['2 threads', await createWasmBackend({ threads: 2, workerFactory: nodeWorkerFactory(), adaptiveThreads: false })]);
  });
  afterAll(() => { for (const [, b] of backends) b.destroy(); });

  async function check(b: WasmBackend, what: string, dtype: DType, c: Case): Promise<void> {
    const aLen = (c.batch - 1) * c.strideA + c.m * c.k, bLen = (c.batch - 1) * c.strideB + c.n * c.k;
    const ax = data(aLen), bx = data(bLen);
    const sa = b.upload('float32', ax), sb = b.upload(dtype, bx), so = b.alloc('float32', c.batch * c.m * c.n);
    b.matmul(sa, sb, so, { ...c, transB: true });
    const got = await b.read(so);
    for (const s of [sa, sb, so]) b.free(s);
    assertCloseToScale(got, reference(held('float32', ax), held(dtype, bx), c), `${what} ${dtype} ${JSON.stringify(c)}`, 1e-4, Math.sqrt(c.k));
  }

  it('single products: every m, odd n and k, f32 and 16-bit weights', async () => {
    for (const [what, b] of backends) {
      for (const dtype of DTYPES) {
        for (const m of ROWS) {
          for (const [n, k] of SIZES) await check(b, what, dtype, { batch: 1, m, n, k, transA: false, strideA: 0, strideB: 0 });
        }
      }
    }
  });

  it('transposed A (f32) and batches with strides, including a weight shared over the batch', async () => {
    for (const [what, b] of backends) {
      for (const m of [3, 8, 13, 16]) {
        await check(b, what, 'float32', { batch: 1, m, n: 45, k: 67, transA: true, strideA: 0, strideB: 0 });
        await check(b, what, 'float32', { batch: 3, m, n: 29, k: 1035, transA: true, strideA: m * 1035 + 5, strideB: 29 * 1035 });
        for (const dtype of DTYPES) {
          await check(b, what, dtype, { batch: 3, m, n: 27, k: 19, transA: false, strideA: m * 19 + 3, strideB: 27 * 19 + 8 });
          await check(b, what, dtype, { batch: 2, m, n: 33, k: 21, transA: false, strideA: m * 21, strideB: 0 });
        }
      }
    }
  });

  it('LoRA epilogue (matmulLowRank) on the decode path: odd shapes, both layouts of l, f32 and 16-bit weights', async () => {
    for (const [what, b] of backends) {
      for (const dtype of DTYPES) {
        for (const m of [1, 5, 8, 13, 16]) {
          for (const [cols, inner] of [[37, 43], [70, 1029]] as const) {
            for (const transL of [false, true]) {
              const rank = 3, scale = 0.75;
              const x = data(m * inner), w = data(cols * inner), u = data(m * rank), l = data(cols * rank), prefill = data(m * cols);
              const [sx, sw, su, sl] = [b.upload('float32', x), b.upload(dtype, w), b.upload('float32', u), b.upload('float32', l)];
              const so = b.upload('float32', prefill);
              b.kernels.matmulLowRank(sx, sw, su, sl, so, { rows: m, cols, inner, rank, scale, transL, transB: true });
              const got = await b.read(so);
              for (const s of [sx, sw, su, sl, so]) b.free(s);
              const want = reference(held('float32', x), held(dtype, w), { batch: 1, m, n: cols, k: inner, transA: false, strideA: 0, strideB: 0 });
              for (let i = 0; i < m; i++) {
                for (let c = 0; c < cols; c++) {
                  let s = 0;
                  for (let j = 0; j < rank; j++) s += u[i * rank + j] * (transL ? l[j * cols + c] : l[c * rank + j]);
                  want[i * cols + c] += scale * s;
                }
              }
              assertCloseToScale(got, want, `${what} matmulLowRank ${dtype} m ${m} cols ${cols} inner ${inner} transL ${transL}`, 1e-4, Math.sqrt(inner));
            }
          }
        }
      }
    }
  });
});
