// Multi-tensor optimizer dispatches on WebGPU: consecutive adamw calls of one step and consecutive sumSquares
// calls into one output are coalesced into a few dispatches (optimizer_multi.wgsl). They must match the float64
// reference on odd sizes, keep program order (a tensor updated twice, one update's gradient being another's
// parameter, a restart of the sum), and a small train step's dispatch and submit counts must stay within the
// bounds below (counts are deterministic).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdamWArgs, Backend, Storage } from '../../src/backend/backend.js';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import type { WebGPUBackend } from '../../src/backend/webgpu/webgpu_backend.js';
import * as T from '../../src/tensor/index.js';
import { TransformerLM } from '../../src/nn/transformer.js';
import { AdamW } from '../../src/optim/adamw.js';
import { assertClose } from '../support/close.js';
import { hostRandom } from '../support/random.js';
import { WEBGPU_TEST_ADAPTERS } from '../support/webgpu_adapters.js';

const ref = new ReferenceBackend();
let seed = 77_000;
const data = (n: number, lo = -1, hi = 1): Float32Array => hostRandom(n, seed++, lo, hi);

/** |got − want| ≤ rtol·|want| + 2e-2·rtol·max|want|. */
function expectNear(got: ArrayLike<number>, want: ArrayLike<number>, what: string, rtol = 1e-4): void {
  let scale = 1;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  assertClose(got, want, what, 2e-2 * rtol * scale, rtol);
}

/**
 * Odd sizes, multi-workgroup ones, and runs of multiples of 4: three to a dispatch, the chunks are [1, 6, 1031]
 * (scalar), [40004, 12, 16] (vec4), [257, 5, 70001] (scalar), [8, 4096] (vec4, closed by the repeat of 4096), then
 * [4096, 12] (vec4) from the two extra updates below.
 */
const SIZES = [1, 6, 1031, 40004, 12, 16, 257, 5, 70001, 8, 4096];
const LAST = SIZES.length - 1;

interface Tensors { params: Storage[]; m: Storage[]; v: Storage[] }

/**
 * Runs `steps` optimizer steps over SIZES on `b`: per step one adamw call per tensor (decay on every other one),
 * plus a second update of the last tensor and an update of tensor 4 whose gradient is tensor 2's parameter (both
 * must see the earlier updates of the same step). Returns params, m and v.
 */
async function adamwRun(b: Backend, inits: Float32Array[], grads: Float32Array[][], steps: number): Promise<number[][]> {
  const t: Tensors = { params: inits.map((x) => b.upload('float32', x)), m: [], v: [] };
  t.m = SIZES.map((n) => b.upload('float32', new Float32Array(n)));
  t.v = SIZES.map((n) => b.upload('float32', new Float32Array(n)));
  const scale = b.upload('float32', [0.61]);
  for (let step = 1; step <= steps; step++) {
    const args = (i: number): AdamWArgs => ({ lr: 0.01, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: i % 2 ? 0 : 0.1, step });
    const g = grads[step - 1].map((x) => b.upload('float32', x));
    for (const [i, n] of SIZES.entries()) b.kernels.adamw(t.params[i], g[i], t.m[i], t.v[i], scale, args(i), n);
    b.kernels.adamw(t.params[LAST], g[LAST], t.m[LAST], t.v[LAST], scale, args(LAST), SIZES[LAST]);
    // tensor 4 (12 elements) updated with the first 12 elements of tensor 2's (just updated) parameter as gradient
    b.kernels.adamw(t.params[4], t.params[2], t.m[4], t.v[4], scale, args(4), SIZES[4]);
    for (const s of g) b.free(s);
  }
  const out: number[][] = [];
  for (const s of [...t.params, ...t.m, ...t.v]) out.push(Array.from(await b.read(s)));
  for (const s of [...t.params, ...t.m, ...t.v, scale]) b.free(s);
  return out;
}

/** Σ x² of SIZES' tensors into one output: accumulate, a restart at tensor 4, an empty tensor, accumulate on. */
async function sumSquaresRun(b: Backend, xs: Float32Array[]): Promise<number> {
  const inputs = xs.map((x) => b.upload('float32', x));
  const out = b.upload('float32', [2.5]);
  const empty = b.upload('float32', [9]);
  for (const [i, x] of inputs.entries()) {
    b.kernels.sumSquares(x, out, SIZES[i], i !== 0 && i !== 4);
    if (i === 6) b.kernels.sumSquares(empty, out, 0, true);
  }
  const value = (await b.read(out))[0];
  for (const s of [...inputs, out, empty]) b.free(s);
  return value;
}

for (const adapter of WEBGPU_TEST_ADAPTERS) {
  describe(`multi-tensor optimizer kernels: ${adapter.name}`, () => {
    let gpu: WebGPUBackend;
    beforeAll(async () => {
      // Forced on: the default leaves it off on CPU rasterisers (this machine's adapters), on on GPUs.
      gpu = await adapter.open({ variants: { multiTensor: true } });
    });
    afterAll(() => {
      gpu?.destroy();
    });

    it('adamw over many tensors of odd sizes matches the reference, in program order', async () => {
      const steps = 3;
      const inits = SIZES.map((n) => data(n));
      const grads = Array.from({ length: steps }, () => SIZES.map((n) => data(n, -3, 3)));
      const before = gpu.stats().dispatches;
      const got = await adamwRun(gpu, inits, grads, steps);
      const dispatches = gpu.stats().dispatches - before;
      const want = await adamwRun(ref, inits, grads, steps);
      for (const [i, values] of got.entries()) expectNear(values, want[i], `adamw ${['param', 'm', 'v'][Math.floor(i / SIZES.length)]} ${i % SIZES.length}`);
      // 13 calls a step in 5 chunks where 13 storage bindings are allowed (see SIZES); one call a dispatch (vec4 +
      // tail: two) without coalescing.
      const perDispatch = Math.min(3, Math.floor((gpu.limits.maxStorageBuffersPerShaderStage - 1) / 4));
      if (perDispatch === 3) expect(dispatches).toBe(steps * 5);
    });

    it('is off by default on a CPU rasteriser: one launch per call', async () => {
      const plain = await adapter.open();
      try {
        expect((plain.describe().modelKernels as { multiTensor: boolean }).multiTensor).toBe(false);
        const x = plain.upload('float32', data(40)), out = plain.alloc('float32', 1);
        await plain.sync();
        const before = plain.stats().dispatches;
        for (let i = 0; i < 5; i++) plain.kernels.sumSquares(x, out, 40, i > 0);
        expect(plain.stats().dispatches - before).toBe(5);
        plain.free(x);
        plain.free(out);
      } finally {
        plain.destroy();
      }
    });

    it('sumSquares runs into one output match the reference, restarts and empty inputs included', async () => {
      for (const scaleTo of [1, 3]) {
        const xs = SIZES.map((n) => data(n * scaleTo, -2, 2).subarray(0, n));
        const got = await sumSquaresRun(gpu, xs);
        const want = await sumSquaresRun(ref, xs);
        expectNear([got], [want], `sumSquares run (scale ${scaleTo})`, 1e-5);
      }
    });

    it('a small train step stays within its dispatch bound, with the optimizer in a few dispatches', async () => {
      T.setBackend(gpu);
      const model = new TransformerLM({ vocabSize: 13, dModel: 16, nLayers: 2, nHeads: 2, nKvHeads: 1, ffnDim: 24, maxSeqLen: 8 }, 1);
      const optimizer = new AdamW(model.params, { lr: 1e-3, maxGradNorm: 1 });
      const ids = T.tensor([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [2, 6], 'int32');
      const targets = T.tensor([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0], [12], 'int32');
      try {
        const counts = async (fn: () => void) => {
          await gpu.sync();
          const before = gpu.dispatchCounts();
          fn();
          await gpu.sync();
          const after = gpu.dispatchCounts();
          return Object.fromEntries(Object.entries(after).map(([k, n]) => [k, n - (before[k] ?? 0)]).filter(([, n]) => (n as number) > 0)) as Record<string, number>;
        };
        const total = (c: Record<string, number>) => Object.values(c).reduce((a, b) => a + b, 0);
        let loss: T.Tensor | null = null;
        const forward = () => {
          loss = T.tidy(() => T.crossEntropy(T.reshape(model.forward(ids), [12, 13]), targets));
          T.backward(loss);
        };
        // The first step also zero-fills the moments; the steady state is the second.
        forward();
        optimizer.step().gradNorm.dispose();
        loss!.dispose();
        const forwardBackward = await counts(forward);
        const step = await counts(() => optimizer.step().gradNorm.dispose());
        loss!.dispose();
        const params = model.params.size;
        console.log(`train step (${adapter.name}): forward+backward ${total(forwardBackward)} dispatches, optimizer ${total(step)}`, JSON.stringify(step));
        // The optimizer: adamw three tensors a dispatch (the leftover tensor: vec4 + tail), the gradient norm seven
        // tensors a dispatch plus one final pass, and ≤ 8 elementwise kernels of the clip factor (zeros, sqrt, add,
        // div, min). One dispatch per tensor for each of adamw and the norm (the previous scheme) would be ≥ 2·params.
        const perDispatch = Math.min(3, Math.floor((gpu.limits.maxStorageBuffersPerShaderStage - 1) / 4));
        const adamwBound = perDispatch >= 2 ? Math.ceil(params / perDispatch) + 1 : 2 * params;
        expect(step.adamw).toBeLessThanOrEqual(adamwBound);
        expect(step.sumSquares).toBeLessThanOrEqual(Math.ceil(params / 7) + 1);
        expect(total(step)).toBeLessThanOrEqual(adamwBound + Math.ceil(params / 7) + 1 + 8);
        expect(total(forwardBackward)).toBeGreaterThan(0);
        // Submits of a whole step recorded without a pause: batches of 24, 48, 96, … (doubling up to 256), so
        // k submits cover 24·(2^k − 1) dispatches; fixed batches of 24 would take ⌈dispatches / 24⌉.
        await gpu.sync();
        const before = gpu.stats();
        forward();
        optimizer.step().gradNorm.dispose();
        loss!.dispose();
        await gpu.sync();
        const after = gpu.stats();
        const dispatches = after.dispatches - before.dispatches;
        expect(dispatches).toBe(total(forwardBackward) + total(step));
        expect(after.submits - before.submits).toBeLessThanOrEqual(Math.ceil(Math.log2(dispatches / 24 + 1)));
        expect(after.submits - before.submits).toBeLessThan(Math.ceil(dispatches / 24));
      } finally {
        ids.dispose();
        targets.dispose();
        optimizer.dispose();
        model.dispose();
      }
    });
  });
}
