// Storages larger than one binding (windows_webgpu.ts): with maxBindingBytes capped small, a table or weight bigger
// than the cap is bound in windows by matmul (B), gather (table), random, fill and cast, and matches the float64
// reference (random: bit-identical to the unwindowed kernel) on odd shapes, on both test adapters (Vulkan's 16-byte
// and GLES's 256-byte offset alignment); every other kernel refuses such a storage with an error naming the limit.
// End to end, a tied-embedding LoRA model gives the same log-probs, LoRA gradients and greedy tokens as unwindowed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Backend, KernelError, type MatmulArgs } from '../../src/backend/backend.js';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import type { WebGPUBackend } from '../../src/backend/webgpu/webgpu_backend.js';
import * as T from '../../src/tensor/index.js';
import { TransformerLM } from '../../src/nn/transformer.js';
import { generate } from '../../src/nn/generate.js';
import { applyLora, storeFrozenWeights, trainableParameters } from '../../src/nn/lora.js';
import { WEBGPU_TEST_ADAPTERS } from '../support/webgpu_adapters.js';
import { hostRandom } from '../support/random.js';

const CAP = 16384;
const ref = new ReferenceBackend();

async function readAll(backend: Backend, s: ReturnType<Backend['upload']>): Promise<number[]> {
  return Array.from(await backend.read(s));
}

function expectClose(got: number[], want: number[], tol: number, what: string): void {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (Number.isNaN(want[i])) { expect(got[i], `${what} [${i}]`).toBeNaN(); continue; }
    const err = Math.abs(got[i] - want[i]);
    if (err > tol * (1 + Math.abs(want[i]))) expect.fail(`${what} [${i}]: ${got[i]} vs ${want[i]}`);
  }
}

describe.each(WEBGPU_TEST_ADAPTERS.map((a) => [a.name, a] as const))('WebGPU storages past one binding (%s)', (_name, adapter) => {
  let gpu: WebGPUBackend;
  let whole: WebGPUBackend;
  beforeAll(async () => {
    gpu = await adapter.open({ maxBindingBytes: CAP });
    whole = await adapter.open();
  });
  afterAll(() => { gpu?.destroy(); whole?.destroy(); });

  it('allocates past the cap, zero-filled; fill, random (bit-identical) and cast work in windows', async () => {
    const n = 5001; // 20 004 bytes: 2 windows
    expect(gpu.limits.maxStorageBufferBindingSize).toBe(CAP);
    const zeros = gpu.alloc('float32', n);
    expect((await readAll(gpu, zeros)).every((v) => v === 0)).toBe(true);
    gpu.fill(zeros, -2.5);
    expect((await readAll(gpu, zeros)).every((v) => v === -2.5)).toBe(true);
    for (const kind of ['normal', 'uniform'] as const) {
      const args = { kind, seed: 77, a: 0.5, b: 2 };
      const windowed = gpu.alloc('float32', n);
      gpu.random(windowed, args);
      const plain = whole.alloc('float32', n);
      whole.random(plain, args);
      expect(await readAll(gpu, windowed), kind).toEqual(await readAll(whole, plain));
      const asInt = gpu.alloc('int32', n);
      gpu.cast(windowed, asInt);
      expect(await readAll(gpu, asInt)).toEqual((await readAll(whole, plain)).map((v) => Math.trunc(v) | 0));
      for (const s of [windowed, asInt]) gpu.free(s);
      whole.free(plain);
    }
    const values = hostRandom(2 * n + 1, 3);
    const half = gpu.upload('bfloat16', values); // 10 003 elements in 20 008 bytes
    const widened = gpu.alloc('float32', values.length);
    gpu.cast(half, widened);
    const refWide = ref.alloc('float32', values.length);
    ref.cast(ref.upload('bfloat16', values), refWide);
    expect(await readAll(gpu, widened)).toEqual(await readAll(ref, refWide));
    for (const s of [zeros, half, widened]) gpu.free(s);
  });

  it('gather from a float32 or bfloat16 table past the cap: odd row length, duplicates, out-of-range ids → NaN', async () => {
    const rows = 301, rowLen = 29; // float32 34 916 bytes, bfloat16 17 458
    const ids = [0, 300, 17, 17, -1, 150, 301, 64, 63, 299, 2];
    for (const dtype of ['float32', 'bfloat16'] as const) {
      const values = hostRandom(rows * rowLen, 11);
      const table = gpu.upload(dtype, values);
      const idStorage = gpu.upload('int32', ids);
      const out = gpu.alloc('float32', ids.length * rowLen);
      gpu.gather(table, idStorage, out, ids.length, rowLen);
      // the reference refuses out-of-range ids: gather valid ones there, expect NaN rows for the others
      const valid = ids.map((id) => (id >= 0 && id < rows ? id : 0));
      const refOut = ref.alloc('float32', ids.length * rowLen);
      ref.gather(ref.upload(dtype, values), ref.upload('int32', valid), refOut, ids.length, rowLen);
      const want = (await readAll(ref, refOut)).map((v, i) => (valid[Math.floor(i / rowLen)] === ids[Math.floor(i / rowLen)] ? v : NaN));
      expectClose(await readAll(gpu, out), want, 0, `gather ${dtype}`);
      for (const s of [table, idStorage, out]) gpu.free(s);
    }
  });

  const matmulCases: { name: string; args: Omit<MatmulArgs, 'strideA' | 'strideB'> & { strideA?: number } }[] = [
    // B [301, 40]: float32 48 160 bytes (3+ windows), bfloat16 24 080 (2); A, out and the temporaries stay under the cap
    { name: 'head logits, m 1', args: { batch: 1, m: 1, n: 301, k: 40, transA: false, transB: true } },
    { name: 'head logits, m 13', args: { batch: 1, m: 13, n: 301, k: 41, transA: false, transB: true } },
    { name: 'head logits, A transposed', args: { batch: 1, m: 5, n: 301, k: 40, transA: true, transB: true } },
    { name: 'head logits, batch of rows folded', args: { batch: 3, m: 2, n: 301, k: 40, transA: false, transB: true, strideA: 80 } },
    { name: 'input gradient, k windows, m 13', args: { batch: 1, m: 13, n: 41, k: 301, transA: false, transB: false } },
    { name: 'input gradient, A transposed', args: { batch: 1, m: 6, n: 40, k: 301, transA: true, transB: false } },
    { name: 'input gradient, m 1', args: { batch: 1, m: 1, n: 40, k: 257, transA: false, transB: false } },
  ];
  it.each(matmulCases)('matmul with B past the cap matches the float64 reference: $name', async ({ args: partial }) => {
    const { batch, m, n, k } = partial;
    const args: MatmulArgs = { ...partial, strideA: partial.strideA ?? 0, strideB: 0 };
    for (const dtype of ['float32', 'bfloat16'] as const) {
      const aValues = hostRandom(batch * m * k, 5);
      const bValues = hostRandom(n * k, 6);
      const a = gpu.upload('float32', aValues);
      const b = gpu.upload(dtype, bValues);
      const out = gpu.alloc('float32', batch * m * n);
      const liveBefore = gpu.memory().liveBuffers;
      gpu.matmul(a, b, out, args);
      expect(gpu.memory().liveBuffers, 'temporaries freed').toBe(liveBefore);
      const refOut = ref.alloc('float32', batch * m * n);
      ref.matmul(ref.upload('float32', aValues), ref.upload(dtype, bValues), refOut, args);
      expectClose(await readAll(gpu, out), await readAll(ref, refOut), 2e-5, `matmul ${dtype}`);
      for (const s of [a, b, out]) gpu.free(s);
    }
  });

  it('other kernels refuse a storage past the cap, naming the limit', () => {
    const big = gpu.alloc('float32', 5000);
    const out = gpu.alloc('float32', 5000);
    expect(() => gpu.unary('neg', big, { strides: [1], offset: 0 }, out, [5000], 0)).toThrow(KernelError);
    expect(() => gpu.unary('neg', big, { strides: [1], offset: 0 }, out, [5000], 0)).toThrow(/maxStorageBufferBindingSize \(16384 bytes\)/);
    expect(() => gpu.matmul(big, big, out, { batch: 1, m: 50, n: 50, k: 100, transA: false, transB: true, strideA: 0, strideB: 0 })).toThrow(/binds its operands whole/);
    gpu.free(big);
    gpu.free(out);
  });
});

describe('a tied-embedding LoRA model with its embedding past one binding (WebGPU)', () => {
  // The embedding [301, 64] takes 77 KiB in float32 (38.5 KiB in bfloat16), over the 32 KiB cap; every other tensor
  // of this model and batch fits under it.
  const CONFIG = { vocabSize: 301, dModel: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 96, maxSeqLen: 32, tieEmbeddings: true };
  let backends: WebGPUBackend[] = [];
  beforeAll(async () => {
    backends = [await WEBGPU_TEST_ADAPTERS[0].open({ maxBindingBytes: 32768 }), await WEBGPU_TEST_ADAPTERS[0].open()];
  });
  afterAll(() => backends.forEach((b) => b.destroy()));

  async function run(backend: Backend, frozen: 'float32' | 'bfloat16') {
    T.setBackend(backend);
    const model = new TransformerLM(CONFIG, 3);
    for (const [i, adapter] of applyLora(model, { r: 4, alpha: 8, dropout: 0, seed: 2 }).entries()) {
      // a nonzero B, so the gradients of A are not trivially zero
      const fresh = T.keep(T.tensor(hostRandom(adapter.loraB.size, 40 + i, -0.3, 0.3), adapter.loraB.shape).requireGrad());
      adapter.loraB.dispose();
      adapter.loraB = fresh;
    }
    if (frozen === 'bfloat16') await storeFrozenWeights(model, 'bfloat16');
    const ids = T.tensor([5, 17, 200, 300, 0, 42, 150, 7, 64, 63, 128, 255], [2, 6], 'int32');
    const targets = T.tensor([17, 200, 300, 0, 42, -1, 7, 64, 63, 128, 255, 1], [12], 'int32');
    const { logp, entropy } = model.tokenLogprobs(ids, targets);
    const loss = T.tidy(() => T.add(T.sum(logp), T.mul(T.sum(entropy), T.full([], 0.1))));
    T.backward(loss);
    const gradValues = await Promise.all([...trainableParameters(model).values()].map(async (p) => Array.from(await p.grad!.read())));
    const logps = Array.from(await logp.read());
    const tokens = (await generate(model, [[1, 2, 3], [299, 300]], { maxNewTokens: 6, temperature: 0, seed: 1 })).tokens;
    for (const t of [ids, targets, logp, entropy, loss]) t.dispose();
    model.dispose();
    return { logps, gradValues, tokens };
  }

  it.each(['float32', 'bfloat16'] as const)('windowed equals unwindowed: log-probs, LoRA gradients, greedy tokens (frozen %s)', async (frozen) => {
    const [windowed, plain] = [await run(backends[0], frozen), await run(backends[1], frozen)];
    expectClose(windowed.logps, plain.logps, 1e-5, 'logp');
    windowed.gradValues.forEach((g, i) => expectClose(g, plain.gradValues[i], 1e-4, `grad ${i}`));
    expect(windowed.tokens).toEqual(plain.tokens);
  });
});
