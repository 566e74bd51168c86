// The policy model on the float64 reference: config validation, KV-cache consistency with the full
// forward, gradient check of a whole tiny model, generation, safetensors checkpoints.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import * as T from '../../src/tensor/index.js';
import type { Tensor } from '../../src/tensor/index.js';
import { ConfigError, resolveModelConfig } from '../../src/nn/config.js';
import { TransformerLM } from '../../src/nn/transformer.js';
import { generate } from '../../src/nn/generate.js';
import { applyLora } from '../../src/nn/lora.js';
import { sampleToken } from '../../src/nn/sampling.js';
import { decodeSafetensors, encodeSafetensors } from '../../src/io/safetensors.js';
import { encodeModel, fromHfConfig, loadModelWeights, toHfConfig } from '../../src/io/checkpoint.js';
import { assertClose } from '../support/close.js';

const backend = new ReferenceBackend();
beforeAll(() => T.setBackend(backend));

const tiny = { vocabSize: 7, dModel: 8, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 12, maxSeqLen: 16, initStd: 0.5 };
let model: TransformerLM;
beforeAll(() => { model = new TransformerLM(tiny, 3); });
afterAll(() => model.dispose());

/** Logits of two float64 paths that differ only in summation order (toBeCloseTo(…, 10)). */
const LOGIT_TOL = 5e-11;

const ids = (rows: number[][]) => T.tensor(rows.flat(), [rows.length, rows[0].length], 'int32');

async function rowsOf(t: Tensor): Promise<number[]> {
  const a = await t.toArray();
  t.dispose();
  return a;
}

describe('config', () => {
  it('lists every problem at once', () => {
    let err: unknown;
    try {
      resolveModelConfig({ dModel: 30, nHeads: 4, nKvHeads: 3, vocabSize: 0, bogus: 1 });
    } catch (e) { err = e; }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/unknown key 'bogus'/);
    expect(msg).toMatch(/vocabSize must be a positive integer, got 0/);
    expect(msg).toMatch(/dModel 30 must be divisible by nHeads 4/);
    expect(msg).toMatch(/nHeads 4 must be a multiple of nKvHeads 3/);
  });
  it('round-trips through the Hugging Face config.json fields', () => {
    expect(fromHfConfig(toHfConfig(model.config))).toEqual(model.config);
  });
});

describe('forward', () => {
  it('prefill + decode with the KV cache equals the full forward', async () => {
    const seq = [1, 4, 2, 6, 0, 3];
    const x = ids([seq]);
    const full = await rowsOf(T.noGrad(() => model.forward(x)));
    x.dispose();
    const V = tiny.vocabSize;
    const cache = model.newCache(1);
    const pre = ids([seq.slice(0, 3)]);
    const got = (await rowsOf(T.noGrad(() => model.forward(pre, { cache }))));
    pre.dispose();
    expect(got.length).toBe(3 * V);
    assertClose(got, full.slice(0, 3 * V), 'prefill with the cache', LOGIT_TOL, 0);
    for (let t = 3; t < seq.length; t++) {
      const step = ids([[seq[t]]]);
      const row = await rowsOf(T.noGrad(() => model.forward(step, { cache })));
      step.dispose();
      assertClose(row, full.slice(t * V, (t + 1) * V), `decode at position ${t}`, LOGIT_TOL, 0);
    }
    expect(cache.length).toBe(seq.length);
    cache.dispose();
  });

  it('left padding with keyStart and shifted positions leaves the real tokens unchanged', async () => {
    const alone = ids([[5, 1, 2]]);
    const want = await rowsOf(T.noGrad(() => model.forward(alone)));
    alone.dispose();
    const padded = ids([[0, 0, 5, 1, 2], [3, 3, 4, 1, 0]]);
    const pos = T.tensor([0, 0, 0, 1, 2, 0, 1, 2, 3, 4], [2, 5], 'int32');
    const ks = T.tensor([2, 0], [2], 'int32');
    const got = await rowsOf(T.noGrad(() => model.forward(padded, { positions: pos, keyStart: ks })));
    const V = tiny.vocabSize;
    assertClose(got.slice(2 * V, 5 * V), want, 'the real tokens after the padding', LOGIT_TOL, 0);
    for (const t of [padded, pos, ks]) t.dispose();
  });

  it('gradcheck of the token loss through the whole model (every parameter)', async () => {
    const names = [...model.params.keys()];
    const inputs = [...model.params.values()];
    const x = ids([[1, 2, 3, 4], [6, 5, 0, 1]]);
    const targets = T.tensor([2, 3, 4, -1, 5, 0, 1, 2], [8], 'int32');
    const r = await T.gradcheck((...ps) => {
      ps.forEach((p, i) => model.params.set(names[i], p));
      const logits = model.forward(x);
      const { logp, entropy } = T.logSoftmaxGather(T.reshape(logits, [8, tiny.vocabSize]), targets);
      return T.add(T.mean(logp), T.mulScalar(T.mean(entropy), 0.1));
    }, inputs, { rtol: 1e-4, atol: 1e-7 });
    names.forEach((n, i) => model.params.set(n, inputs[i]));
    x.dispose();
    targets.dispose();
    expect(r.ok, JSON.stringify(r.worst)).toBe(true);
  });
});

describe('token log-probs through the fused head (no [B·T, V] logits)', () => {
  const x = () => ids([[1, 2, 3, 4], [6, 5, 0, 1]]);
  const targets = () => T.tensor([2, 3, 4, -1, 5, 0, 1, 2], [8], 'int32');
  const weights = (seed: number) => T.randUniform([8], seed, -1, 1);

  /** Σ logp·a + Σ entropy·b and the gradient of every parameter, through `path`. */
  async function lossAndGrads(m: TransformerLM, path: (ids: Tensor, t: Tensor) => { logp: Tensor; entropy: Tensor }) {
    const [a, b] = [weights(1), weights(2)];
    const [ah, bh] = [await a.toArray(), await b.toArray()];
    a.dispose();
    b.dispose();
    return lossAndGradsWith(m, [2, 3, 4, -1, 5, 0, 1, 2], ah as number[], bh as number[], path);
  }
  const unfused = (m: TransformerLM) => (xi: Tensor, t: Tensor) => T.logSoftmaxGather(T.reshape(m.forward(xi), [8, m.config.vocabSize]), t);

  for (const tieEmbeddings of [false, true]) {
    it(`equals logSoftmaxGather(forward) with every parameter gradient (${tieEmbeddings ? 'tied' : 'untied'} head, chunks of 3 rows)`, async () => {
      const m = new TransformerLM({ ...tiny, tieEmbeddings }, 5);
      try {
        expect(m.headWeight()!.weight).toBe(tieEmbeddings ? m.p('model.embed_tokens.weight') : m.p('lm_head.weight'));
        const want = await lossAndGrads(m, unfused(m));
        for (const chunkRows of [undefined, 3]) {
          const got = await lossAndGrads(m, (xi, t) => m.tokenLogprobs(xi, t, { chunkRows }));
          assertClose(got.logp, want.logp, 'logp', 1e-12, 1e-10);
          assertClose(got.entropy, want.entropy, 'entropy', 1e-12, 1e-10);
          for (const [name, g] of want.grads) assertClose(got.grads.get(name)!, g!, `gradient of ${name}`, 1e-12, 1e-10);
        }
      } finally {
        m.dispose();
      }
    });
  }

  it('rows: only the picked positions go through the head, with the values and gradients of the full pass there', async () => {
    const picked = [0, 1, 2, 4, 6, 7];
    const fullTargets = [2, 3, 4, -1, 5, 0, 1, 2];
    for (const variant of ['untied', 'tied', 'lora-head'] as const) {
      const m = new TransformerLM({ ...tiny, tieEmbeddings: variant === 'tied' }, 9);
      if (variant === 'lora-head') applyLora(m, { r: 2, alpha: 4, targetModules: ['lm_head'] });
      try {
        const a = await weights(1).toArray();
        const b = await weights(2).toArray();
        // the full pass, weighted by zero off the picked rows
        const keep = (w: number[]) => w.map((v, i) => (picked.includes(i) ? v : 0));
        const full = await lossAndGradsWith(m, fullTargets, keep(a), keep(b), (xi, t) => m.tokenLogprobs(xi, t, { chunkRows: 3 }));
        const rows = T.tensor(picked, [picked.length], 'int32');
        const some = await lossAndGradsWith(m, picked.map((i) => fullTargets[i]), picked.map((i) => a[i]), picked.map((i) => b[i]),
          (xi, t) => m.tokenLogprobs(xi, t, { rows, chunkRows: 4 }));
        rows.dispose();
        assertClose(some.logp, picked.map((i) => full.logp[i]), `${variant}: logp`, 1e-12, 1e-10);
        assertClose(some.entropy, picked.map((i) => full.entropy[i]), `${variant}: entropy`, 1e-12, 1e-10);
        for (const [name, g] of full.grads) if (g) assertClose(some.grads.get(name)!, g, `${variant}: gradient of ${name}`, 1e-12, 1e-10);
      } finally {
        m.dispose();
      }
    }
    const m = new TransformerLM(tiny, 9);
    const [xi, t] = [x(), T.tensor([1, 2], [2], 'int32')];
    expect(() => m.tokenLogprobs(xi, t)).toThrow(/2 targets for 8 positions of ids/);
    for (const tensor of [xi, t]) tensor.dispose();
    m.dispose();
  });

  /** lossAndGrads with given targets and weights (host arrays). */
  async function lossAndGradsWith(m: TransformerLM, targetIds: number[], a: number[], b: number[], path: (ids: Tensor, t: Tensor) => { logp: Tensor; entropy: Tensor }) {
    const [xi, t, at, bt] = [x(), T.tensor(targetIds, [targetIds.length], 'int32'), T.tensor(a, [a.length]), T.tensor(b, [b.length])];
    const out = T.tidy(() => path(xi, t));
    const loss = T.tidy(() => T.add(T.sum(T.mul(out.logp, at)), T.sum(T.mul(out.entropy, bt))));
    T.backward(loss);
    const result = {
      logp: await out.logp.toArray(), entropy: await out.entropy.toArray(),
      grads: new Map(await Promise.all([...m.params].map(async ([n, p]) => [n, p.grad ? await p.grad.toArray() : null] as const))),
    };
    for (const p of m.params.values()) { p.grad?.dispose(); p.grad = null; }
    for (const tensor of [xi, t, at, bt, out.logp, out.entropy, loss]) tensor.dispose();
    return result;
  }

  it('gradcheck through forwardHidden and the fused head (tied embeddings: both uses of the table)', async () => {
    const m = new TransformerLM({ ...tiny, tieEmbeddings: true }, 6);
    const names = [...m.params.keys()];
    const inputs = [...m.params.values()];
    const [xi, t] = [x(), targets()];
    const r = await T.gradcheck((...ps) => {
      ps.forEach((p, i) => m.params.set(names[i], p));
      const { logp, entropy } = m.tokenLogprobs(xi, t, { chunkRows: 3 });
      return T.add(T.mean(logp), T.mulScalar(T.mean(entropy), 0.1));
    }, inputs, { rtol: 1e-4, atol: 1e-7 });
    names.forEach((n, i) => m.params.set(n, inputs[i]));
    xi.dispose();
    t.dispose();
    m.dispose();
    expect(r.ok, JSON.stringify(r.worst)).toBe(true);
  });

  it('LoRA: a frozen tied table gets no gradient; an adapter on lm_head falls back to full logits', async () => {
    const tied = new TransformerLM({ ...tiny, tieEmbeddings: true }, 7);
    applyLora(tied, { r: 2, alpha: 4, targetModules: ['q_proj'] });
    const got = await lossAndGrads(tied, (xi, t) => tied.tokenLogprobs(xi, t, { chunkRows: 3 }));
    const want = await lossAndGrads(tied, unfused(tied));
    expect(got.grads.get('model.embed_tokens.weight')).toBeNull();
    for (const [name, g] of want.grads) if (g) assertClose(got.grads.get(name)!, g, `gradient of ${name}`, 1e-12, 1e-10);
    tied.dispose();

    const headed = new TransformerLM(tiny, 8);
    applyLora(headed, { r: 2, alpha: 4, targetModules: ['lm_head'] });
    expect(headed.headWeight()).toBeNull();
    const viaHead = await lossAndGrads(headed, (xi, t) => headed.tokenLogprobs(xi, t));
    const viaForward = await lossAndGrads(headed, unfused(headed));
    assertClose(viaHead.logp, viaForward.logp, 'logp with a LoRA head', 0, 0);
    headed.dispose();
  });
});

describe('activation checkpointing per decoder block', () => {
  const config = { ...tiny, nLayers: 3 };
  async function gradsOf(m: TransformerLM, keyStart: number[] | null = null): Promise<{ loss: number; grads: Map<string, number[] | null> }> {
    const x = ids([[1, 2, 3, 4], [6, 5, 0, 1]]);
    const t = T.tensor([2, 3, 4, -1, 5, 0, 1, 2], [8], 'int32');
    const ks = keyStart ? T.tensor(keyStart, [2], 'int32') : null;
    const loss = T.tidy(() => {
      const hidden = T.reshape(m.forwardHidden(x, { keyStart: ks }), [8, config.dModel]);
      const { logp, entropy } = T.linearLogSoftmaxGather(hidden, m.headWeight()!.weight, t, { chunkRows: 3 });
      return T.add(T.mean(logp), T.mulScalar(T.mean(entropy), 0.1));
    });
    T.backward(loss);
    const grads = new Map(await Promise.all([...m.params].map(async ([n, p]) => [n, p.grad ? await p.grad.toArray() : null] as const)));
    for (const p of m.params.values()) { p.grad?.dispose(); p.grad = null; }
    const value = await loss.item();
    for (const tensor of [x, t, ks, loss]) tensor?.dispose();
    return { loss: value, grads };
  }

  it('gives the same loss and parameter gradients as the plain backward (with and without left padding), leaking nothing', async () => {
    for (const keyStart of [null, [0, 2]]) {
      const m = new TransformerLM(config, 9);
      const plain = await gradsOf(m, keyStart);
      m.checkpointActivations = true;
      const live = backend.memory().liveBytes;
      const checkpointed = await gradsOf(m, keyStart);
      expect(backend.memory().liveBytes).toBe(live);
      expect(checkpointed.loss).toBeCloseTo(plain.loss, 12);
      for (const [name, g] of plain.grads) assertClose(checkpointed.grads.get(name)!, g!, `gradient of ${name}`, 1e-12, 1e-10);
      m.dispose();
    }
  });

  it('holds less memory between forward and backward', async () => {
    const big = { ...tiny, nLayers: 4, dModel: 16, ffnDim: 48, maxSeqLen: 64 };
    const heldAfterForward = async (checkpointActivations: boolean) => {
      const m = new TransformerLM(big, 10);
      m.checkpointActivations = checkpointActivations;
      const x = T.tensor(Array.from({ length: 4 * 48 }, (_, i) => i % 7), [4, 48], 'int32');
      const before = backend.memory().liveBytes;
      const hidden = m.forwardHidden(x);
      const held = backend.memory().liveBytes - before;
      hidden.dispose();
      x.dispose();
      m.dispose();
      return held;
    };
    const plain = await heldAfterForward(false);
    const checkpointed = await heldAfterForward(true);
    // Only each block's input (plus positions) stays: far below every block's intermediates.
    expect(checkpointed).toBeLessThan(plain / 4);
  });

  it('trains LoRA adapters through checkpointed blocks and refuses LoRA dropout', async () => {
    const m = new TransformerLM({ ...config, tieEmbeddings: true }, 11);
    const adapters = applyLora(m, { r: 2, alpha: 4, targetModules: ['q_proj', 'down_proj'] });
    for (const a of adapters) {
      const zeros = a.loraB;
      a.loraB = T.keep(T.randUniform(zeros.shape, 3, -0.5, 0.5)).requireGrad();
      zeros.dispose();
    }
    const loraGrads = async () => {
      const x = ids([[1, 2, 3, 4]]);
      const t = T.tensor([2, 3, 4, 5], [4], 'int32');
      const loss = T.tidy(() => T.mean(m.tokenLogprobs(x, t, { chunkRows: 3 }).logp));
      T.backward(loss);
      const grads = await Promise.all(adapters.flatMap((a) => [a.loraA, a.loraB]).map(async (p) => {
        const g = await p.grad!.toArray();
        p.grad!.dispose();
        p.grad = null;
        return g;
      }));
      for (const tensor of [x, t, loss]) tensor.dispose();
      return grads;
    };
    const plain = await loraGrads();
    m.checkpointActivations = true;
    const checkpointed = await loraGrads();
    plain.forEach((g, i) => assertClose(checkpointed[i], g, `LoRA gradient ${i}`, 1e-12, 1e-10));
    for (const a of adapters) a.loraB.dispose();
    m.dispose();

    const dropped = new TransformerLM(config, 12);
    applyLora(dropped, { r: 2, alpha: 4, dropout: 0.1, targetModules: ['q_proj'] });
    dropped.checkpointActivations = true;
    const x = ids([[1, 2]]);
    expect(() => T.tidy(() => dropped.forwardHidden(x))).toThrow(/q_proj has LoRA dropout 0.1.*recomputed/);
    x.dispose();
    dropped.dispose();
  });
});

describe('generation', () => {
  const prompts = [[1, 2], [3, 4, 5, 6], [2]];
  it('is reproducible for a seed and returns per-token log-probs of the policy', async () => {
    const a = await generate(model, prompts, { maxNewTokens: 5, seed: 11 });
    const b = await generate(model, prompts, { maxNewTokens: 5, seed: 11 });
    expect(b).toEqual(a);
    const c = await generate(model, prompts, { maxNewTokens: 5, seed: 12 });
    expect(c.tokens).not.toEqual(a.tokens);
    // Log-probs agree with a full forward over prompt + generated tokens.
    const seq = [...prompts[1], ...a.tokens[1]];
    const x = ids([seq]);
    const lp = T.noGrad(() => T.logSoftmax(model.forward(x)));
    const rows = await rowsOf(lp);
    x.dispose();
    a.tokens[1].forEach((tok, j) => {
      const t = prompts[1].length - 1 + j;
      expect(a.logprobs[1][j]).toBeCloseTo(rows[t * tiny.vocabSize + tok], 9);
    });
    expect(a.truncated).toEqual([true, true, true]);
  });

  it('computes head logits only for the last position: prefill and decode never build [B, T, V]', async () => {
    const heads: number[] = [];
    const matmul = backend.matmul.bind(backend);
    backend.matmul = (a, b, out, args) => {
      if (args.n === tiny.vocabSize) heads.push(args.batch * args.m);
      matmul(a, b, out, args);
    };
    try {
      await generate(model, prompts, { maxNewTokens: 3, seed: 1, temperature: 0 });
    } finally {
      backend.matmul = matmul;
    }
    // One [B, V] head product per step (prefill of 4 positions included), never [B·4, V].
    expect(heads).toEqual([3, 3, 3]);
  });

  it('greedy decoding matches argmax of the full forward; stop tokens end a sequence', async () => {
    const g = await generate(model, [[1, 2, 3]], { maxNewTokens: 4, temperature: 0 });
    let seq = [1, 2, 3];
    for (const tok of g.tokens[0]) {
      const x = ids([seq]);
      const rows = await rowsOf(T.noGrad(() => model.forward(x)));
      x.dispose();
      const last = rows.slice(-tiny.vocabSize);
      expect(tok).toBe(last.indexOf(Math.max(...last)));
      seq = [...seq, tok];
    }
    const stop = g.tokens[0][1];
    const s = await generate(model, [[1, 2, 3]], { maxNewTokens: 4, temperature: 0, stopTokens: [stop] });
    expect(s.tokens[0]).toEqual(g.tokens[0].slice(0, g.tokens[0].indexOf(stop) + 1));
    expect(s.truncated).toEqual([false]);
  });

  it('top-k / top-p restrict the candidates; bad options are rejected', () => {
    const logits = [0, 3, 1, 2.9];
    for (let i = 0; i < 50; i++) {
      expect([1, 3]).toContain(sampleToken(logits, { topK: 2 }, i / 50).token);
      expect(sampleToken(logits, { topP: 0.01 }, i / 50).token).toBe(1);
    }
    expect(() => sampleToken(logits, {}, 0.5)).not.toThrow();
    return expect(generate(model, [[1]], { maxNewTokens: 2, topP: 0 })).rejects.toThrow(/topP must be in \(0, 1\]/);
  });

  it('rejects prompts that do not fit', async () => {
    await expect(generate(model, [[1, 2, 3]], { maxNewTokens: 14 })).rejects.toThrow(/exceed maxSeqLen 16/);
    await expect(generate(model, [[1, 9]], { maxNewTokens: 1 })).rejects.toThrow(/token id 9 outside the vocabulary/);
  });
});

describe('safetensors checkpoints', () => {
  it('round-trips a model into a fresh one', async () => {
    const bytes = await encodeModel(model);
    const other = new TransformerLM(tiny, 99);
    loadModelWeights(other, bytes);
    for (const [name, t] of model.params) {
      const a = await t.toArray();
      const b = await other.p(name).toArray();
      expect(b.map((v) => Math.fround(v))).toEqual(a.map((v) => Math.fround(v)));
    }
    other.dispose();
  });

  it('rejects truncated files, missing tensors and shape mismatches, naming the tensor', async () => {
    const bytes = await encodeModel(model);
    const other = new TransformerLM(tiny, 5);
    expect(() => loadModelWeights(other, bytes.subarray(0, bytes.length - 10))).toThrow(/lm_head.weight': data ends at byte \d+ but the file holds/);
    expect(() => loadModelWeights(other, bytes.subarray(0, 4))).toThrow(/too short/);
    const { tensors } = decodeSafetensors(bytes);
    tensors.delete('model.layers.1.mlp.up_proj.weight');
    const q = tensors.get('model.layers.0.self_attn.q_proj.weight')!;
    tensors.set('model.layers.0.self_attn.q_proj.weight', { shape: [4, 16], data: q.data });
    const bad = encodeSafetensors(tensors);
    expect(() => loadModelWeights(other, bad)).toThrow(/missing tensor 'model.layers.1.mlp.up_proj.weight'/);
    expect(() => loadModelWeights(other, bad)).toThrow(/'model.layers.0.self_attn.q_proj.weight' has shape \[4, 16\], the model expects \[8, 8\]/);
    other.dispose();
  });

  it('reads F16 and BF16 tensors as float32', () => {
    // 1.5 in F16 = 0x3e00; −2 in BF16 = 0xc000.
    const header = JSON.stringify({ h: { dtype: 'F16', shape: [1], data_offsets: [0, 2] }, b: { dtype: 'BF16', shape: [1], data_offsets: [2, 4] } });
    const bytes = new Uint8Array(8 + header.length + 4);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
    bytes.set(new TextEncoder().encode(header), 8);
    new DataView(bytes.buffer).setUint16(8 + header.length, 0x3e00, true);
    new DataView(bytes.buffer).setUint16(8 + header.length + 2, 0xc000, true);
    const { tensors } = decodeSafetensors(bytes);
    expect(Array.from(tensors.get('h')!.data)).toEqual([1.5]);
    expect(Array.from(tensors.get('b')!.data)).toEqual([-2]);
  });
});
