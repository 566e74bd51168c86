// LoRA with PEFT's semantics: the adapted Linear against a float64 host formula, gradchecks wrt A, B and x with
// the base frozen (no gradient, no optimizer state), init, target selection, dropout, merging, generation with
// the KV cache, and the same computation on the product backends.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/backend/backend.js';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import * as T from '../../src/tensor/index.js';
import type { Tensor } from '../../src/tensor/index.js';
import { Embedding, Linear } from '../../src/nn/layers.js';
import type { HalfDType, MatmulLowRankArgs, Storage } from '../../src/backend/types.js';
import { roundToHalf } from '../../src/backend/half.js';
import {
  LoraError, LoraLinear, applyLora, formatTrainableParameters, hasLora, loraAdapters, mergeLora, parameterCounts, removeLora, resolveFrozenDType,
  setLoraTraining, storeFrozenWeights, trainableParameters,
} from '../../src/nn/lora.js';
import { Module } from '../../src/nn/module.js';
import { TransformerLM } from '../../src/nn/transformer.js';
import { AdamW } from '../../src/optim/adamw.js';
import { type NamedBackend, productBackends } from '../support/backends.js';
import { assertClose } from '../support/close.js';
import { hostRandom } from '../support/random.js';

const reference = new ReferenceBackend();
beforeAll(() => T.setBackend(reference));

const tiny = { vocabSize: 13, dModel: 16, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 24, maxSeqLen: 16 };
const ALL = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
const IDS = [1, 5, 2, 9, 12, 0, 3, 7, 4, 4, 11, 6];

/** A model holding one Linear (gradchecks address it as 'proj'). */
class OneLinear extends Module {
  readonly proj: Linear;
  constructor(inF: number, outF: number, bias: boolean) {
    super({ seed: 3 });
    this.proj = this.addModule('proj', (at) => new Linear(inF, outF, { ...at, bias }));
  }
}

/** Replaces every adapter's B (zero at init) with seeded random values, so the adapters change the output. */
function randomizeB(model: Module, seed = 99): void {
  for (const [i, adapter] of loraAdapters(model).entries()) {
    const fresh = T.keep(T.tensor(hostRandom(adapter.loraB.size, seed + i, -0.5, 0.5), adapter.loraB.shape).requireGrad());
    adapter.loraB.dispose();
    adapter.loraB = fresh;
  }
}

async function logitsOf(model: TransformerLM, ids = IDS, batch = 2): Promise<number[]> {
  const input = T.tensor(ids, [batch, ids.length / batch], 'int32');
  const logits = T.noGrad(() => model.forward(input));
  const out = await logits.toArray();
  logits.dispose();
  input.dispose();
  return out;
}

const host = async (t: Tensor): Promise<number[]> => Array.from(await t.read());

/** Gradchecks m.proj wrt x [3, 5], A [2, 5] and B [4, 2] (the adapter's tensors swapped in, then restored); returns the inputs. */
async function gradcheckAdapter(m: OneLinear, adapter: LoraLinear): Promise<Tensor[]> {
  const saved = [adapter.loraA, adapter.loraB];
  const fn = (x: Tensor, a: Tensor, b: Tensor) => {
    adapter.loraA = a;
    adapter.loraB = b;
    return m.proj.forward(x);
  };
  const inputs = [T.tensor(hostRandom(15, 6), [3, 5]), T.tensor(hostRandom(10, 7), [2, 5]), T.tensor(hostRandom(8, 8), [4, 2])];
  const result = await T.gradcheck(fn, inputs);
  expect(result.ok, JSON.stringify(result.worst)).toBe(true);
  [adapter.loraA, adapter.loraB] = saved;
  return inputs;
}

describe('the adapted Linear', () => {
  it('computes x Wᵀ + b + (alpha/r) · x Aᵀ Bᵀ (float64 host formula, 3-D input, odd sizes)', async () => {
    const m = new OneLinear(5, 7, true);
    T.noGrad(() => m.setParameter('proj.bias', T.keep(T.tensor(hostRandom(7, 4), [7]))));
    const [adapter] = applyLora(m, { r: 3, alpha: 6, targetModules: ['proj'] });
    randomizeB(m);
    const x = T.tensor(hostRandom(2 * 3 * 5, 5), [2, 3, 5]);
    const y = T.noGrad(() => m.proj.forward(x));
    expect(y.shape).toEqual([2, 3, 7]);
    const [xs, w, b, a, bb] = await Promise.all([x, m.proj.weight, m.proj.bias!, adapter.loraA, adapter.loraB].map(host));
    const want: number[] = [];
    for (let row = 0; row < 6; row++) {
      const u = Array.from({ length: 3 }, (_, k) => xs.slice(row * 5, row * 5 + 5).reduce((s, v, i) => s + v * a[k * 5 + i], 0));
      for (let o = 0; o < 7; o++) {
        let s = b[o];
        for (let i = 0; i < 5; i++) s += xs[row * 5 + i] * w[o * 5 + i];
        for (let k = 0; k < 3; k++) s += 2 * u[k] * bb[o * 3 + k];
        want.push(s);
      }
    }
    assertClose(await host(y), want, 'adapted linear', 1e-12, 1e-12);
    for (const t of [x, y]) t.dispose();
    removeLora(m);
    m.dispose();
  });

  it('gradchecks wrt A, B and x; the frozen W and bias get no gradient', async () => {
    const m = new OneLinear(5, 4, true);
    const [adapter] = applyLora(m, { r: 2, alpha: 3, targetModules: ['proj'] });
    (await gradcheckAdapter(m, adapter)).forEach((t) => t.dispose());

    expect(m.proj.weight.requiresGrad).toBe(false);
    expect(m.proj.bias!.requiresGrad).toBe(false);
    const x = T.tensor(hostRandom(15, 6), [3, 5]);
    const loss = T.tidy(() => T.sum(T.square(m.proj.forward(x))));
    T.backward(loss);
    expect(m.proj.weight.grad).toBeNull();
    expect(m.proj.bias!.grad).toBeNull();
    expect(adapter.loraA.grad).not.toBeNull();
    expect(adapter.loraB.grad).not.toBeNull();
    for (const t of [x, loss]) t.dispose();
    removeLora(m);
    expect(m.proj.weight.requiresGrad, 'removeLora makes the base trainable again').toBe(true);
    m.dispose();
  });

  it('the fused op matches the composition of plain ops, values and gradients, with dropout', async () => {
    const run = async (composed: boolean) => {
      const m = new OneLinear(6, 9, true);
      const [adapter] = applyLora(m, { r: 3, alpha: 4, dropout: 0.3, targetModules: ['proj'], seed: 8 });
      randomizeB(m);
      if (composed) adapter.forward = (x, base) => adapter.composedForward(x, base);
      const x = T.tensor(hostRandom(4 * 6, 9), [2, 2, 6]).requireGrad();
      const y = m.proj.forward(x);
      const loss = T.tidy(() => T.sum(T.square(y)));
      T.backward(loss);
      const out = await Promise.all([y, x.grad!, adapter.loraA.grad!, adapter.loraB.grad!].map(host));
      for (const t of [x, y, loss]) t.dispose();
      removeLora(m);
      m.dispose();
      return out;
    };
    const [fused, composed] = [await run(false), await run(true)];
    for (const [i, what] of ['y', 'gx', 'gA', 'gB'].entries()) assertClose(fused[i], composed[i], `fused vs composed ${what}`, 1e-12, 1e-10);
  });

  it('initialises A like kaiming_uniform_(a=√5) (uniform ±1/√in), seeded, and B to zeros', async () => {
    const make = (seed: number) => {
      const m = new OneLinear(64, 8, false);
      const [adapter] = applyLora(m, { r: 16, targetModules: ['proj'], seed });
      return { m, adapter };
    };
    const one = make(1);
    const again = make(1);
    const other = make(2);
    const a = await host(one.adapter.loraA);
    const bound = 1 / Math.sqrt(64);
    expect(Math.max(...a.map(Math.abs))).toBeLessThanOrEqual(bound);
    const variance = a.reduce((s, v) => s + v * v, 0) / a.length;
    expect(variance).toBeGreaterThan(0.8 * (bound * bound) / 3);
    expect(variance).toBeLessThan(1.2 * (bound * bound) / 3);
    expect(await host(again.adapter.loraA)).toEqual(a);
    expect(await host(other.adapter.loraA)).not.toEqual(a);
    expect((await host(one.adapter.loraB)).every((v) => v === 0)).toBe(true);
    expect(one.adapter.loraA.shape).toEqual([16, 64]);
    expect(one.adapter.loraB.shape).toEqual([8, 16]);
    expect(one.adapter.scaling).toBe(0.5);
    for (const { m } of [one, again, other]) {
      removeLora(m);
      m.dispose();
    }
  });
});

describe('applyLora on a TransformerLM', () => {
  it('starts at the base model (B = 0) and targets PEFT-matched modules only', async () => {
    const model = new TransformerLM(tiny, 1);
    const base = await logitsOf(model);
    const adapters = applyLora(model, { r: 4, alpha: 8 });
    expect(adapters.map((a) => a.path)).toEqual([
      'model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.v_proj', 'model.layers.1.self_attn.q_proj', 'model.layers.1.self_attn.v_proj',
    ]);
    expect(await logitsOf(model)).toEqual(base);
    removeLora(model);

    const all = applyLora(model, { r: 2, targetModules: 'all-linear' });
    expect(all.length).toBe(2 * 7);
    expect(all.some((a) => a.path === 'lm_head')).toBe(false);
    removeLora(model);
    const regex = applyLora(model, { r: 2, targetModules: String.raw`model\.layers\.1\.mlp\.(up|down)_proj` });
    expect(regex.map((a) => a.path)).toEqual(['model.layers.1.mlp.up_proj', 'model.layers.1.mlp.down_proj']);
    removeLora(model);
    model.dispose();
  });

  it('refuses bad options, unknown targets and a second application with clear errors', () => {
    const model = new TransformerLM(tiny, 1);
    expect(() => applyLora(model, { r: 0 })).toThrow(/r must be a positive integer/);
    expect(() => applyLora(model, { r: 4, dropout: 1 })).toThrow(/dropout must be in \[0, 1\)/);
    expect(() => applyLora(model, { targetModules: ['q_proj', 'qkv_proj'] })).toThrow(/'qkv_proj' not found.*q_proj, k_proj/);
    expect(() => applyLora(model, { targetModules: 'nothing.*here' })).toThrow(LoraError);
    expect(() => applyLora(model, { targetModules: [] })).toThrow(/non-empty list/);
    expect(hasLora(model)).toBe(false);
    applyLora(model, {});
    expect(() => applyLora(model, {})).toThrow(/already has LoRA adapters/);
    removeLora(model);
    model.dispose();
  });

  it('freezes the base: trainableParameters lists A and B only, the optimizer keeps moments for them only', async () => {
    const model = new TransformerLM(tiny, 1);
    applyLora(model, { r: 4, alpha: 16, targetModules: ALL });
    const trainable = trainableParameters(model);
    expect([...trainable.keys()].slice(0, 2)).toEqual(['model.layers.0.self_attn.q_proj.lora_A.weight', 'model.layers.0.self_attn.q_proj.lora_B.weight']);
    expect([...trainable.keys()].every((name) => /\.lora_[AB]\.weight$/.test(name))).toBe(true);
    expect(trainable.size).toBe(2 * 7 * 2);
    // Counts: A [4, in] + B [out, 4] per module, as PEFT prints them.
    const perLayer = 4 * ((16 + 16) + (16 + 8) + (16 + 8) + (16 + 16) + (16 + 24) + (16 + 24) + (24 + 16));
    const { trainable: count, total } = parameterCounts(model);
    expect(count).toBe(2 * perLayer);
    const base = model.parameters().reduce((s, p) => s + p.size, 0);
    expect(total).toBe(base + count);
    expect(formatTrainableParameters(model)).toBe(
      `trainable params: ${(2 * perLayer).toLocaleString('en-US')} || all params: ${total.toLocaleString('en-US')} || trainable%: ${((100 * count) / total).toFixed(4)}`,
    );

    const before = await Promise.all(model.parameters().map(host));
    const optimizer = new AdamW(trainable, { lr: 1e-2 });
    const everything = new AdamW(model.params, { lr: 1e-2 });
    const ids = T.tensor(IDS, [2, 6], 'int32');
    const targets = T.tensor([...IDS.slice(1), 0], [12], 'int32');
    const loss = T.tidy(() => T.crossEntropy(T.reshape(model.forward(ids), [12, tiny.vocabSize]), targets));
    T.backward(loss);
    expect(model.parameters().every((p) => p.grad === null), 'no base parameter gets a gradient').toBe(true);
    everything.step().gradNorm.dispose();
    expect(everything.state().size, 'an optimizer over all base parameters keeps no state for frozen ones').toBe(0);
    optimizer.step().gradNorm.dispose();
    expect([...optimizer.state().keys()].every((k) => /\.lora_[AB]\.weight\.exp_avg(_sq)?$/.test(k))).toBe(true);
    expect(optimizer.state().size).toBe(2 * trainable.size);
    expect(await Promise.all(model.parameters().map(host)), 'base weights unchanged by the step').toEqual(before);
    expect(await host(loraAdapters(model)[0].loraB), 'B moved').not.toEqual(new Array(16 * 4).fill(0));
    for (const t of [ids, targets, loss]) t.dispose();
    optimizer.dispose();
    everything.dispose();
    removeLora(model);
    model.dispose();
  });

  it('applies seeded dropout only while training with gradients on', async () => {
    const run = async (dropout: number, grad: boolean, training = true) => {
      const model = new TransformerLM(tiny, 1);
      applyLora(model, { r: 4, dropout, targetModules: ALL, seed: 5 });
      randomizeB(model);
      setLoraTraining(model, training);
      const ids = T.tensor(IDS, [2, 6], 'int32');
      const logits = grad ? model.forward(ids) : T.noGrad(() => model.forward(ids));
      const out = await logits.toArray();
      for (const t of [ids, logits]) t.dispose();
      removeLora(model);
      model.dispose();
      return out;
    };
    const plain = await run(0, true);
    const dropped = await run(0.5, true);
    expect(dropped).not.toEqual(plain);
    expect(await run(0.5, true), 'the same seed gives the same masks').toEqual(dropped);
    expect(await run(0.5, false), 'no dropout under noGrad (evaluation, generation)').toEqual(plain);
    expect(await run(0.5, true, false), 'no dropout after setLoraTraining(false)').toEqual(plain);
  });

  it('mergeLora folds W += (alpha/r)·B·A: the merged model gives the adapted logits', async () => {
    const model = new TransformerLM({ ...tiny, tieEmbeddings: true }, 2);
    applyLora(model, { r: 3, alpha: 5, targetModules: 'all-linear' });
    randomizeB(model);
    const baseValues = await host(model.p('model.layers.0.mlp.down_proj.weight'));
    const adapted = await logitsOf(model);
    mergeLora(model);
    expect(hasLora(model)).toBe(false);
    expect(await host(model.p('model.layers.0.mlp.down_proj.weight'))).not.toEqual(baseValues);
    assertClose(await logitsOf(model), adapted, 'merged vs adapted logits', 1e-12, 1e-10);
    expect(model.parameters().every((p) => p.requiresGrad), 'merged weights are trainable like the base before LoRA').toBe(true);
    expect(() => mergeLora(model)).toThrow(/no LoRA adapters/);
    model.dispose();
  });

  it('generation with the KV cache runs the adapted projections', async () => {
    const model = new TransformerLM(tiny, 1);
    const baseLogits = await logitsOf(model, IDS.slice(0, 6), 1);
    applyLora(model, { r: 4, alpha: 8, targetModules: ALL });
    randomizeB(model);
    const full = await logitsOf(model, IDS.slice(0, 6), 1);
    expect(full).not.toEqual(baseLogits);
    const cache = model.newCache(1, 8);
    const stepwise: number[] = [];
    for (const id of IDS.slice(0, 6)) {
      const input = T.tensor([id], [1, 1], 'int32');
      const logits = T.noGrad(() => model.forward(input, { cache }));
      stepwise.push(...(await logits.toArray()));
      for (const t of [input, logits]) t.dispose();
    }
    cache.dispose();
    assertClose(stepwise, full, 'cached decode vs full forward', 1e-12, 1e-10);
    removeLora(model);
    model.dispose();
  });

  it('LoraLinear is what Linear.adapter holds', () => {
    const m = new OneLinear(3, 3, false);
    applyLora(m, { targetModules: ['proj'] });
    expect(m.proj.adapter).toBeInstanceOf(LoraLinear);
    removeLora(m);
    expect(m.proj.adapter).toBeNull();
    m.dispose();
  });
});

describe('LoRA on the product backends', () => {
  let backends: NamedBackend[] = [];
  beforeAll(async () => { backends = (await productBackends()).available; });
  afterAll(() => {
    T.setBackend(reference);
    backends.forEach((b) => b.backend.destroy());
  });

  /** Loss, A/B gradients and merged logits of one adapted forward/backward on `backend`. */
  async function adaptedStep(backend: Backend): Promise<{ logits: number[]; grads: number[][]; merged: number[] }> {
    T.setBackend(backend);
    const model = new TransformerLM(tiny, 4);
    applyLora(model, { r: 3, alpha: 6, targetModules: ALL, seed: 2 });
    randomizeB(model);
    const ids = T.tensor(IDS, [2, 6], 'int32');
    const targets = T.tensor([...IDS.slice(1), 0], [12], 'int32');
    const logits = model.forward(ids);
    const loss = T.tidy(() => T.crossEntropy(T.reshape(logits, [12, tiny.vocabSize]), targets));
    T.backward(loss);
    const trainable = [...trainableParameters(model).values()];
    const grads = await Promise.all(trainable.map((p) => host(p.grad!)));
    expect(model.parameters().every((p) => p.grad === null)).toBe(true);
    const adapted = await logits.toArray();
    mergeLora(model);
    const merged = await logitsOf(model);
    for (const t of [ids, targets, logits, loss]) t.dispose();
    model.dispose();
    return { logits: adapted, grads, merged };
  }

  it('forward, A/B gradients and merged logits match the float64 reference', async () => {
    const want = await adaptedStep(reference);
    for (const { name, backend } of backends) {
      const got = await adaptedStep(backend);
      assertClose(got.logits, want.logits, `${name}: adapted logits`, 1e-4, 1e-3);
      got.grads.forEach((g, i) => assertClose(g, want.grads[i], `${name}: gradient ${i}`, 1e-4, 1e-2));
      assertClose(got.merged, got.logits, `${name}: merged vs adapted logits`, 1e-4, 1e-3);
      expect(backend.memory().liveBuffers, `${name}: buffers left`).toBe(0);
    }
  });

  it('the matmul epilogue changes no bit: logits and gradients equal the two-pass matmul + lowRankAdd run', async () => {
    for (const { name, backend } of backends) {
      // the same backend with matmulLowRank replaced by the kernels lowRankLinear used before the fusion
      const kernels = {
        ...backend.kernels,
        matmulLowRank: (x: Storage, w: Storage, u: Storage, l: Storage, out: Storage, args: MatmulLowRankArgs) => {
          backend.matmul(x, w, out, { batch: 1, m: args.rows, n: args.cols, k: args.inner, transA: false, transB: args.transB, strideA: 0, strideB: 0 });
          backend.kernels.lowRankAdd(u, l, out, args);
        },
      };
      const twoPass = new Proxy(backend, {
        get: (target, key) => {
          if (key === 'kernels') return kernels;
          const value = Reflect.get(target, key, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      const want = await adaptedStep(twoPass);
      const got = await adaptedStep(backend);
      expect(got.logits, `${name}: logits`).toEqual(want.logits);
      got.grads.forEach((g, i) => expect(g, `${name}: gradient ${i}`).toEqual(want.grads[i]));
      expect(backend.memory().liveBuffers, `${name}: buffers left`).toBe(0);
    }
  });

  it('16-bit frozen weights: logits and LoRA gradients equal float32 weights holding the rounded values', async () => {
    for (const { name, backend } of backends) {
      T.setBackend(backend);
      for (const dtype of ['bfloat16', 'float16'] as const) {
        const want = await loraStep(false, dtype, false);
        const got = await loraStep(false, dtype, true);
        assertClose(got.logits, want.logits, `${name} ${dtype}: logits`, 1e-5, 1e-4);
        got.grads.forEach((g, i) => assertClose(g, want.grads[i], `${name} ${dtype}: gradient ${i}`, 1e-5, 1e-3));
        assertClose(got.merged, want.merged, `${name} ${dtype}: merged logits`, 1e-5, 1e-4);
      }
      expect(backend.memory().liveBuffers, `${name}: buffers left`).toBe(0);
    }
  });
});

/** Rounds every frozen Linear / Embedding weight of a float32 model to `dtype`'s values, kept in float32. */
async function roundFrozenInPlace(model: Module, dtype: HalfDType): Promise<void> {
  for (const [path, module] of model.namedModules()) {
    if (!(module instanceof Linear) && !(module instanceof Embedding)) continue;
    const old = module.weight;
    const rounded = T.keep(T.tensor(roundToHalf(dtype, await old.read()), old.shape));
    if (model instanceof TransformerLM) model.params.set(`${path}.weight`, rounded);
    else model.setParameter(`${path}.weight`, rounded);
    old.dispose();
  }
}

/** Logits and the LoRA gradients of one cross-entropy step; `half` stores the frozen weights 16-bit first. */
async function loraStep(tied: boolean, dtype: HalfDType, half: boolean): Promise<{ logits: number[]; grads: number[][]; merged: number[]; dtypes: string[] }> {
  const model = new TransformerLM({ ...tiny, tieEmbeddings: tied }, 4);
  applyLora(model, { r: 3, alpha: 6, targetModules: ALL, seed: 2 });
  randomizeB(model);
  if (half) {
    const stored = await storeFrozenWeights(model, dtype);
    expect(stored.weights).toBe(2 * 7 + 1 + (tied ? 0 : 1));
  } else await roundFrozenInPlace(model, dtype);
  const dtypes = [...new Set(model.parameters().map((p) => p.dtype))].sort();
  const ids = T.tensor(IDS, [2, 6], 'int32');
  const targets = T.tensor([...IDS.slice(1), 0], [12], 'int32');
  const logits = model.forward(ids);
  const loss = T.tidy(() => T.crossEntropy(T.reshape(logits, [12, tiny.vocabSize]), targets));
  T.backward(loss);
  const grads = await Promise.all([...trainableParameters(model).values()].map((p) => host(p.grad!)));
  const adapted = await logits.toArray();
  mergeLora(model);
  expect(model.namedParameters().filter(([, p]) => p.dtype !== 'float32' || !p.requiresGrad).map(([n, p]) => `${n} ${p.dtype} ${p.requiresGrad}`), 'after mergeLora: float32 and trainable').toEqual([]);
  const merged = await logitsOf(model);
  for (const t of [ids, targets, logits, loss]) t.dispose();
  model.dispose();
  return { logits: adapted, grads, merged, dtypes };
}

describe('frozen base weights stored in 16 bits', () => {
  it('a LoRA model with 16-bit frozen weights gives the logits and LoRA gradients of float32 weights holding the rounded values', async () => {
    for (const dtype of ['bfloat16', 'float16'] as const) {
      for (const tied of [true, false]) {
        const want = await loraStep(tied, dtype, false);
        const got = await loraStep(tied, dtype, true);
        expect(got.dtypes).toEqual([dtype, 'float32']);
        assertClose(got.logits, want.logits, `${dtype} tied=${tied} logits`, 1e-12, 1e-12);
        got.grads.forEach((g, i) => assertClose(g, want.grads[i], `${dtype} tied=${tied} gradient ${i}`, 1e-12, 1e-12));
        assertClose(got.merged, got.logits, `${dtype} tied=${tied} merged vs adapted`, 1e-12, 1e-10);
        assertClose(got.merged, want.merged, `${dtype} tied=${tied} merged`, 1e-12, 1e-10);
      }
    }
  });

  it('gradchecks the LoRA parameters and the input through a bfloat16 base weight', async () => {
    const m = new OneLinear(5, 4, true);
    const [adapter] = applyLora(m, { r: 2, alpha: 3, targetModules: ['proj'] });
    await storeFrozenWeights(m, 'bfloat16');
    expect(m.proj.weight.dtype).toBe('bfloat16');
    (await gradcheckAdapter(m, adapter)).forEach((t) => t.dispose());
    removeLora(m);
    expect(m.proj.weight.dtype, 'removeLora widens the base back to trainable float32').toBe('float32');
    expect(m.proj.weight.requiresGrad).toBe(true);
    m.dispose();
  });

  it('halves the frozen weights\' memory; frozenDtype resolves auto to the checkpoint dtype under LoRA only', async () => {
    const model = new TransformerLM({ ...tiny, tieEmbeddings: true }, 4);
    applyLora(model, { r: 2, targetModules: ALL });
    const before = reference.memory().liveBytes;
    const stored = await storeFrozenWeights(model, 'float16');
    expect(stored.bytesAfter).toBe(stored.bytesBefore / 2); // every frozen weight here has an even size
    expect(before - reference.memory().liveBytes).toBe(stored.bytesBefore - stored.bytesAfter);
    expect((await storeFrozenWeights(model, 'float16')).weights, 'already 16-bit: nothing to do').toBe(0);
    removeLora(model);
    model.dispose();

    expect(resolveFrozenDType('auto', { lora: true, checkpointDType: 'bfloat16' })).toBe('bfloat16');
    expect(resolveFrozenDType('auto', { lora: false, checkpointDType: 'bfloat16' })).toBe('float32');
    expect(resolveFrozenDType('auto', { lora: true, checkpointDType: null })).toBe('float32');
    expect(resolveFrozenDType('float16', { lora: true, checkpointDType: 'bfloat16' })).toBe('float16');
    expect(() => resolveFrozenDType('bfloat16', { lora: false, checkpointDType: 'bfloat16' })).toThrow(/needs LoRA/);
    expect(() => resolveFrozenDType('half' as 'auto', { lora: true, checkpointDType: null })).toThrow(/frozenDtype must be one of/);
  });
});
