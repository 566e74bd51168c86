// RMSNorm backward's 'tree' variant (GPUs; forced here): gx and the weight gradient in one dispatch
// (rms_norm_bwd_tree), plus one reduce when the rows span several blocks. Checked against the float64 reference
// on odd shapes, with the dispatch counts (deterministic) that the fusion gives: 1 or 2 instead of 2 or 3.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/backend/backend.js';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import type { WebGPUBackend } from '../../src/backend/webgpu/webgpu_backend.js';
import { assertClose } from '../support/close.js';
import { hostRandom } from '../support/random.js';
import { WEBGPU_TEST_ADAPTERS } from '../support/webgpu_adapters.js';

const ref = new ReferenceBackend();
let seed = 88_000;
const data = (n: number, lo = -1, hi = 1): Float32Array => hostRandom(n, seed++, lo, hi);

/** gx and gWeight of rmsNormBackward on `b` (outputs prefilled with garbage). */
async function backward(b: Backend, x: Float32Array, w: Float32Array, rstd: Float32Array, g: Float32Array, rows: number, cols: number) {
  const [sx, sw, sr, sg] = [x, w, rstd, g].map((d) => b.upload('float32', d));
  const gx = b.upload('float32', data(rows * cols)), gw = b.upload('float32', data(cols));
  b.kernels.rmsNormBackward(sx, sw, sr, sg, gx, gw, rows, cols);
  const out = [Array.from(await b.read(gx)), Array.from(await b.read(gw))];
  for (const s of [sx, sw, sr, sg, gx, gw]) b.free(s);
  return out;
}

for (const adapter of WEBGPU_TEST_ADAPTERS) {
  describe(`fused RMSNorm backward: ${adapter.name}`, () => {
    let gpu: WebGPUBackend;
    beforeAll(async () => {
      gpu = await adapter.open({ variants: { rowReduce: 'tree' } });
    });
    afterAll(() => {
      gpu?.destroy();
    });

    it('matches the reference on odd shapes in 1 dispatch (one row block) or 2 (several)', async () => {
      for (const [rows, cols] of [[1, 1], [3, 7], [64, 37], [65, 37], [600, 37], [33, 1000], [300, 257]]) {
        const x = data(rows * cols, -3, 3), w = data(cols, 0.5, 1.5), g = data(rows * cols);
        const rstd = data(rows, 0.2, 2);
        await gpu.sync();
        const before = gpu.stats().dispatches;
        const got = await backward(gpu, x, w, rstd, g, rows, cols);
        const dispatches = gpu.stats().dispatches - before;
        const want = await backward(ref, x, w, rstd, g, rows, cols);
        const scale = Math.max(1, ...want[0].map(Math.abs));
        assertClose(got[0], want[0], `gx ${rows}x${cols}`, 2e-6 * scale, 1e-4);
        assertClose(got[1], want[1], `gWeight ${rows}x${cols}`, 2e-6 * Math.sqrt(rows) * Math.max(1, ...want[1].map(Math.abs)), 1e-4);
        // blocks = min(⌈256 / column groups⌉, ⌈rows / 64⌉): one block up to 64 rows; the uploads dispatch nothing
        expect(dispatches, `${rows}x${cols}`).toBe(rows <= 64 ? 1 : 2);
      }
    });
  });
}
