// nn modules on the float64 reference: each module against a plain-array float64 composition, gradchecks,
// Hugging Face parameter names, the live parameter map, option validation, and the module-built
// TransformerLM pinned to weights and logits recorded from the pre-module implementation.
import { beforeAll, describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import * as T from '../../src/tensor/index.js';
import type { Tensor } from '../../src/tensor/index.js';
import { ConfigError } from '../../src/nn/config.js';
import { KVCache } from '../../src/nn/kv_cache.js';
import { DecoderBlock, Embedding, Linear, RMSNorm, RotaryEmbedding, SelfAttention, SwiGLUMLP } from '../../src/nn/layers.js';
import { Module, ModuleList, paramSeed } from '../../src/nn/module.js';
import { TransformerLM } from '../../src/nn/transformer.js';
import { assertClose } from '../support/close.js';

beforeAll(() => T.setBackend(new ReferenceBackend()));

// ---- float64 host reference: row-major number arrays, written for obviousness ----

type A = number[];
const host = async (t: Tensor): Promise<A> => Array.from(await t.read());

/** y[r, o] = Σ_i x[r, i] · w[o, i] (+ b[o]). */
function refLinear(x: A, inF: number, w: A, outF: number, b?: A): A {
  const rows = x.length / inF;
  const y: A = [];
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outF; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < inF; i++) s += x[r * inF + i] * w[o * inF + i];
      y.push(s);
    }
  }
  return y;
}

function refRmsNorm(x: A, cols: number, w: A, eps: number): A {
  const y: A = [];
  for (let r = 0; r < x.length / cols; r++) {
    const row = x.slice(r * cols, (r + 1) * cols);
    const rs = 1 / Math.sqrt(row.reduce((s, v) => s + v * v, 0) / cols + eps);
    row.forEach((v, c) => y.push(v * rs * w[c]));
  }
  return y;
}

/** x [B, T, H, D] rotated by position: pairs (j, j + D/2) at angle pos · theta^(−2j/D). */
function refRope(x: A, B: number, Tn: number, H: number, D: number, pos: A, theta: number): A {
  const y = x.slice();
  const half = D / 2;
  for (let b = 0; b < B; b++) for (let t = 0; t < Tn; t++) for (let h = 0; h < H; h++) {
    const base = ((b * Tn + t) * H + h) * D;
    for (let j = 0; j < half; j++) {
      const ang = pos[b * Tn + t] * theta ** (-2 * j / D);
      const [x1, x2] = [x[base + j], x[base + j + half]];
      y[base + j] = x1 * Math.cos(ang) - x2 * Math.sin(ang);
      y[base + j + half] = x2 * Math.cos(ang) + x1 * Math.sin(ang);
    }
  }
  return y;
}

interface AttnWeights { q: A; k: A; v: A; o: A }
interface AttnShape { dModel: number; nHeads: number; nKvHeads: number; theta: number }

/** Causal GQA self-attention of x [B, T, dModel]: query i of sequence b sees keys keyStart[b] ≤ j ≤ i. */
function refAttention(x: A, B: number, Tn: number, s: AttnShape, w: AttnWeights, pos: A, keyStart?: A): A {
  const D = s.dModel / s.nHeads;
  const q = refRope(refLinear(x, s.dModel, w.q, s.nHeads * D), B, Tn, s.nHeads, D, pos, s.theta);
  const k = refRope(refLinear(x, s.dModel, w.k, s.nKvHeads * D), B, Tn, s.nKvHeads, D, pos, s.theta);
  const v = refLinear(x, s.dModel, w.v, s.nKvHeads * D);
  const merged = new Array<number>(B * Tn * s.nHeads * D).fill(0);
  const group = s.nHeads / s.nKvHeads;
  for (let b = 0; b < B; b++) for (let h = 0; h < s.nHeads; h++) for (let i = 0; i < Tn; i++) {
    const kh = Math.floor(h / group);
    const at = (arr: A, t: number, head: number, heads: number) => ((b * Tn + t) * heads + head) * D;
    const js = [...Array(Tn).keys()].filter((j) => j <= i && j >= (keyStart?.[b] ?? 0));
    const scores = js.map((j) => {
      let dot = 0;
      for (let d = 0; d < D; d++) dot += q[at(q, i, h, s.nHeads) + d] * k[at(k, j, kh, s.nKvHeads) + d];
      return dot / Math.sqrt(D);
    });
    const mx = Math.max(...scores);
    const e = scores.map((sc) => Math.exp(sc - mx));
    const z = e.reduce((acc, v2) => acc + v2, 0);
    for (let d = 0; d < D; d++) {
      merged[at(merged, i, h, s.nHeads) + d] = js.reduce((acc, j, n) => acc + (e[n] / z) * v[at(v, j, kh, s.nKvHeads) + d], 0);
    }
  }
  return refLinear(merged, s.nHeads * D, w.o, s.dModel);
}

const silu = (g: number) => g / (1 + Math.exp(-g));
function refMlp(x: A, dModel: number, ffn: number, gate: A, up: A, down: A): A {
  const g = refLinear(x, dModel, gate, ffn);
  const u = refLinear(x, dModel, up, ffn);
  return refLinear(g.map((gv, i) => silu(gv) * u[i]), ffn, down, dModel);
}

const addA = (a: A, b: A): A => a.map((v, i) => v + b[i]);

async function attnWeights(m: SelfAttention): Promise<AttnWeights> {
  return { q: await host(m.qProj.weight), k: await host(m.kProj.weight), v: await host(m.vProj.weight), o: await host(m.oProj.weight) };
}

async function refBlock(blk: DecoderBlock, x: A, B: number, Tn: number, s: AttnShape, ffn: number, eps: number, pos: A, keyStart?: A): Promise<A> {
  const h = addA(x, refAttention(refRmsNorm(x, s.dModel, await host(blk.inputLayernorm.weight), eps), B, Tn, s, await attnWeights(blk.selfAttn), pos, keyStart));
  const n = refRmsNorm(h, s.dModel, await host(blk.postAttentionLayernorm.weight), eps);
  return addA(h, refMlp(n, s.dModel, ffn, await host(blk.mlp.gateProj.weight), await host(blk.mlp.upProj.weight), await host(blk.mlp.downProj.weight)));
}

/** Float64 modules against a float64 composition: equal up to summation order, |got − want| ≤ 1e-9·(1 + |want|). */
const FLOAT64_TOL = 1e-9;

/** Runs fn without autograd, reads and frees the result. */
async function run(fn: () => Tensor): Promise<A> {
  const t = T.noGrad(fn);
  const a = await host(t);
  t.dispose();
  return a;
}

/** FNV-1a over the exact float64 bits (the reference backend's storage). */
function hash64(values: ArrayLike<number>): string {
  const f = new Float64Array(1);
  const u = new Uint32Array(f.buffer);
  let h = 0x811c9dc5;
  for (let i = 0; i < values.length; i++) {
    f[0] = values[i];
    h = Math.imul(h ^ u[0], 0x01000193) >>> 0;
    h = Math.imul(h ^ u[1], 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

const ints = (data: number[], shape: number[]) => T.tensor(data, shape, 'int32');

// ---- tests ----

describe('modules vs a float64 composition', () => {
  it('Embedding gathers rows of its table', async () => {
    const emb = new Embedding(5, 3, { seed: 4, std: 0.7 });
    const table = await host(emb.weight);
    const got = await run(() => emb.forward(ints([4, 0, 2, 2], [2, 2])));
    expect(got).toEqual([4, 0, 2, 2].flatMap((r) => table.slice(r * 3, r * 3 + 3)));
    expect(emb.weight.shape).toEqual([5, 3]);
    emb.dispose();
  });

  it('Linear: hand-computed weights and bias, then random shapes', async () => {
    const lin = new Linear(2, 3, { bias: true });
    expect(await host(lin.bias!)).toEqual([0, 0, 0]);
    lin.setParameter('weight', T.keep(T.tensor([1, 2, 0, -1, 3, 0.5], [3, 2])));
    lin.setParameter('bias', T.keep(T.tensor([0.5, 0, -1], [3])));
    // x = [2, −1]: [1·2 + 2·(−1) + 0.5, 0·2 − 1·(−1), 3·2 + 0.5·(−1) − 1] = [0.5, 1, 4.5]
    expect(await run(() => lin.forward(T.tensor([2, -1], [1, 2])))).toEqual([0.5, 1, 4.5]);
    lin.dispose();

    const big = new Linear(5, 4, { seed: 2 });
    expect(big.bias).toBeNull();
    const x = T.randNormal([2, 3, 5], 11);
    const got = await run(() => big.forward(x));
    assertClose(got, refLinear(await host(x), 5, await host(big.weight), 4), 'Linear random shapes', FLOAT64_TOL, FLOAT64_TOL);
    expect(() => big.forward(T.randNormal([2, 4], 1))).toThrow(/Linear.forward: input \[2, 4\] must end with an axis of 5/);
    x.dispose();
    big.dispose();
  });

  it('RMSNorm: [3, 4] → [3, 4]/sqrt(12.5 + eps), then random rows with a random weight', async () => {
    const norm = new RMSNorm(2);
    const got = await run(() => norm.forward(T.tensor([3, 4], [1, 2])));
    const r = Math.sqrt(12.5 + 1e-6); // default eps
    assertClose(got, [3 / r, 4 / r], 'RMSNorm [3, 4]', 1e-12, 1e-12);
    norm.dispose();

    const n2 = new RMSNorm(6, { eps: 1e-5 });
    n2.setParameter('weight', T.keep(T.randNormal([6], 3)));
    const x = T.randNormal([4, 6], 5);
    assertClose(await run(() => n2.forward(x)), refRmsNorm(await host(x), 6, await host(n2.weight), 1e-5), 'RMSNorm random rows', FLOAT64_TOL, FLOAT64_TOL);
    x.dispose();
    n2.dispose();
  });

  it('RotaryEmbedding rotates pairs (j, j + D/2) by pos · theta^(−2j/D); theta is configurable', async () => {
    const rot = new RotaryEmbedding(4, 100);
    // Position 1, pair 0 at angle 1 rad, pair 1 at 100^(−1/2) = 0.1 rad; x = e_0 + e_1.
    const got = await run(() => rot.forward(T.tensor([1, 1, 0, 0], [1, 1, 1, 4]), ints([1], [1, 1])));
    assertClose(got, [Math.cos(1), Math.cos(0.1), Math.sin(1), Math.sin(0.1)], 'RoPE unit vectors', 1e-12, 1e-12);
    const x = T.randNormal([2, 3, 2, 4], 8);
    const pos = ints([0, 5, 9, 3, 3, 1], [2, 3]);
    assertClose(await run(() => rot.forward(x, pos)), refRope(await host(x), 2, 3, 2, 4, [0, 5, 9, 3, 3, 1], 100), 'RoPE theta 100', FLOAT64_TOL, FLOAT64_TOL);
    expect(rot.parameters()).toEqual([]);
    x.dispose();
    pos.dispose();
  });

  const shape: AttnShape = { dModel: 8, nHeads: 4, nKvHeads: 2, theta: 1000 };

  it('SelfAttention (GQA): causal, shifted positions and left padding', async () => {
    const attn = new SelfAttention({ dModel: 8, nHeads: 4, nKvHeads: 2, ropeTheta: 1000, seed: 6, std: 0.6 });
    const x = T.randNormal([2, 4, 8], 21);
    const hx = await host(x);
    const w = await attnWeights(attn);
    assertClose(await run(() => attn.forward(x)), refAttention(hx, 2, 4, shape, w, [0, 1, 2, 3, 0, 1, 2, 3]), 'SelfAttention causal', FLOAT64_TOL, FLOAT64_TOL);
    const posA = [0, 0, 0, 1, 7, 8, 9, 10];
    const pos = ints(posA, [2, 4]);
    const ks = ints([2, 0], [2]);
    assertClose(await run(() => attn.forward(x, { positions: pos, keyStart: ks })), refAttention(hx, 2, 4, shape, w, posA, [2, 0]), 'SelfAttention shifted positions, left padding', FLOAT64_TOL, FLOAT64_TOL);
    for (const t of [x, pos, ks]) t.dispose();
    attn.dispose();
  });

  it('SelfAttention with a KVCache: prefill then decode equals the full pass', async () => {
    const attn = new SelfAttention({ dModel: 8, nHeads: 4, nKvHeads: 2, ropeTheta: 1000, seed: 9, layerIndex: 1, std: 0.6 });
    const x = T.randNormal([1, 5, 8], 22);
    const full = await run(() => attn.forward(x));
    const cache = new KVCache(2, 1, 2, 8, 2);
    const got = await run(() => attn.forward(T.slice(x, [0, 0, 0], [1, 3, 8]), { cache }));
    cache.advance(3);
    for (let t = 3; t < 5; t++) {
      got.push(...(await run(() => attn.forward(T.slice(x, [0, t, 0], [1, 1, 8]), { cache }))));
      cache.advance(1);
    }
    assertClose(got, full, 'SelfAttention prefill + decode', FLOAT64_TOL, FLOAT64_TOL);
    // Layer 1 was written, layer 0 untouched.
    expect((await host(cache.layer(0).k)).every((v) => v === 0)).toBe(true);
    expect((await host(cache.layer(1).k)).some((v) => v !== 0)).toBe(true);
    const small = new KVCache(1, 1, 2, 8, 2);
    expect(() => T.noGrad(() => attn.forward(x, { cache: small }))).toThrow(/the cache has no layer 1/);
    for (const t of [x]) t.dispose();
    cache.dispose();
    small.dispose();
    attn.dispose();
  });

  it('SwiGLUMLP = down(silu(gate x) · up x)', async () => {
    const mlp = new SwiGLUMLP(6, 10, { seed: 3, std: 0.5 });
    const x = T.randNormal([3, 6], 30);
    const want = refMlp(await host(x), 6, 10, await host(mlp.gateProj.weight), await host(mlp.upProj.weight), await host(mlp.downProj.weight));
    assertClose(await run(() => mlp.forward(x)), want, 'SwiGLUMLP', FLOAT64_TOL, FLOAT64_TOL);
    x.dispose();
    mlp.dispose();
  });

  it('DecoderBlock = x + attn(norm x), then + mlp(norm h)', async () => {
    const blk = new DecoderBlock({ dModel: 8, nHeads: 4, nKvHeads: 2, ffnDim: 12, ropeTheta: 1000, normEps: 1e-5, seed: 12, std: 0.5 });
    blk.inputLayernorm.weight.dispose();
    blk.setParameter('input_layernorm.weight', T.keep(T.randNormal([8], 40)));
    const x = T.randNormal([2, 3, 8], 31);
    const want = await refBlock(blk, await host(x), 2, 3, shape, 12, 1e-5, [0, 1, 2, 0, 1, 2]);
    assertClose(await run(() => blk.forward(x)), want, 'DecoderBlock', FLOAT64_TOL, FLOAT64_TOL);
    x.dispose();
    blk.dispose();
  });

  it('TransformerLM = embed → blocks → norm → lm_head (and tied: → embedᵀ)', async () => {
    for (const tie of [false, true]) {
      const cfg = { vocabSize: 9, dModel: 8, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 12, maxSeqLen: 8, ropeTheta: 1000, normEps: 1e-5, initStd: 0.5, tieEmbeddings: tie };
      const m = new TransformerLM(cfg, 13);
      const idsA = [3, 1, 8, 0, 5, 5];
      const table = await host(m.model.embedTokens.weight);
      let x = idsA.flatMap((r) => table.slice(r * 8, r * 8 + 8));
      for (const blk of m.model.layers) x = await refBlock(blk, x, 2, 3, shape, 12, 1e-5, [0, 1, 2, 0, 1, 2]);
      x = refRmsNorm(x, 8, await host(m.model.norm.weight), 1e-5);
      const want = refLinear(x, 8, tie ? table : await host(m.lmHead!.weight), 9);
      expect(m.lmHead === null).toBe(tie);
      const ids = ints(idsA, [2, 3]);
      assertClose(await run(() => m.forward(ids)), want, `TransformerLM tied=${tie}`, FLOAT64_TOL, FLOAT64_TOL);
      ids.dispose();
      m.dispose();
    }
  });
});

describe('gradcheck', () => {
  it('Linear with bias (input, weight, bias)', async () => {
    const lin = new Linear(3, 2, { bias: true, seed: 1 });
    const saved = lin.parameters();
    const r = await T.gradcheck((x, w, b) => {
      lin.setParameter('weight', w);
      lin.setParameter('bias', b);
      return lin.forward(x);
    }, [T.randNormal([2, 3], 50), saved[0], T.randNormal([2], 51)]);
    expect(r.ok, JSON.stringify(r.worst)).toBe(true);
  });

  it('RMSNorm (input, weight)', async () => {
    const norm = new RMSNorm(5, { eps: 1e-5 });
    const r = await T.gradcheck((x, w) => {
      norm.setParameter('weight', w);
      return norm.forward(x);
    }, [T.randNormal([3, 5], 52), T.randNormal([5], 53)]);
    expect(r.ok, JSON.stringify(r.worst)).toBe(true);
  });

  it('SelfAttention (input and q/k/v/o weights, GQA, left padding)', async () => {
    const attn = new SelfAttention({ dModel: 4, nHeads: 2, nKvHeads: 1, seed: 7, std: 0.8 });
    const names = attn.namedParameters().map(([n]) => n);
    expect(names).toEqual(['q_proj.weight', 'k_proj.weight', 'v_proj.weight', 'o_proj.weight']);
    const ks = ints([1, 0], [2]);
    const r = await T.gradcheck((x, ...ws) => {
      ws.forEach((w, i) => attn.setParameter(names[i], w));
      return attn.forward(x, { keyStart: ks });
    }, [T.randNormal([2, 3, 4], 54), ...attn.parameters()], { rtol: 1e-4, atol: 1e-7 });
    expect(r.ok, JSON.stringify(r.worst)).toBe(true);
    ks.dispose();
  });
});

describe('module tree', () => {
  it('a 2-layer model has the Hugging Face names in creation order', () => {
    const m = new TransformerLM({ vocabSize: 5, dModel: 8, nLayers: 2, nHeads: 2, nKvHeads: 1, ffnDim: 8, maxSeqLen: 8 }, 1);
    const layer = (i: number) => [
      'input_layernorm.weight', 'self_attn.q_proj.weight', 'self_attn.k_proj.weight', 'self_attn.v_proj.weight', 'self_attn.o_proj.weight',
      'post_attention_layernorm.weight', 'mlp.gate_proj.weight', 'mlp.up_proj.weight', 'mlp.down_proj.weight',
    ].map((n) => `model.layers.${i}.${n}`);
    const want = ['model.embed_tokens.weight', ...layer(0), ...layer(1), 'model.norm.weight', 'lm_head.weight'];
    expect(m.namedParameters().map(([n]) => n)).toEqual(want);
    expect([...m.params.keys()]).toEqual(want);
    // Each tensor is named by its path, and the params map holds the module's own tensors.
    for (const [n, t] of m.namedParameters()) {
      expect(t.name).toBe(n);
      expect(m.params.get(n)).toBe(t);
    }
    expect(m.namedModules().map(([n]) => n).slice(0, 6)).toEqual(['', 'model', 'model.embed_tokens', 'model.layers', 'model.layers.0', 'model.layers.0.input_layernorm']);
    m.dispose();
  });

  it('params.set replaces the weight the next forward uses; names and shapes are fixed', async () => {
    const m = new TransformerLM({ vocabSize: 5, dModel: 8, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 8, maxSeqLen: 8 }, 1);
    const old = m.p('lm_head.weight');
    m.params.set('lm_head.weight', T.keep(T.zeros([5, 8])));
    expect(m.lmHead!.weight).toBe(m.p('lm_head.weight'));
    const ids = ints([1, 2], [1, 2]);
    expect(await run(() => m.forward(ids))).toEqual(new Array(10).fill(0));
    expect(() => m.params.set('lm_head.bias', old)).toThrow(/no parameter 'lm_head.bias'/);
    expect(() => m.params.set('model.norm.weight', old)).toThrow(/'model.norm.weight' must be float32 \[8\], got float32 \[5, 8\]/);
    expect(() => m.params.delete('model.norm.weight')).toThrow(/cannot remove 'model.norm.weight'/);
    expect(() => m.p('nope')).toThrow(/TransformerLM: no parameter 'nope'/);
    old.dispose();
    ids.dispose();
    m.dispose();
  });

  it('seeds come from (tree seed, full name): same place → same weights, other name or seed → different', async () => {
    const weightOf = async (seed: number, prefix: string) => {
      const lin = new Linear(3, 2, { seed, prefix });
      const w = await host(lin.weight);
      lin.dispose();
      return w;
    };
    const [a, b, c, d] = [await weightOf(5, 'x.'), await weightOf(5, 'x.'), await weightOf(5, 'y.'), await weightOf(6, 'x.')];
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a).not.toEqual(d);
    const direct = await host(T.randNormal([2, 3], paramSeed(5, 'x.weight'), 0, 1 / Math.sqrt(3)));
    expect(a).toEqual(direct);
  });

  it('ModuleList names children 0, 1, … and a custom Module composes like the built-ins', async () => {
    class Pair extends Module {
      readonly items: ModuleList<Linear>;
      constructor() {
        super({ seed: 2 });
        this.items = this.addModule('items', (at) => new ModuleList(2, (li, i) => new Linear(2, 2, { ...li, bias: i === 1 }), at));
      }
    }
    const p = new Pair();
    expect(p.namedParameters().map(([n]) => n)).toEqual(['items.0.weight', 'items.1.weight', 'items.1.bias']);
    expect(p.items.length).toBe(2);
    expect(p.items.at(1).hasBias).toBe(true);
    expect(() => p.items.at(2)).toThrow(/index 2 outside \[0, 2\)/);
    expect(p.getParameter('items.1.weight').name).toBe('items.1.weight');
    expect(() => p.getParameter('items.3.weight')).toThrow(/Pair: no parameter 'items.3.weight'/);
    p.dispose();
  });

  it('bad module options list every problem at once', () => {
    let err: unknown;
    try {
      new SelfAttention({ dModel: 10, nHeads: 4, nKvHeads: 3, ropeTheta: -1, layerIndex: -2 });
    } catch (e) { err = e; }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/invalid SelfAttention options/);
    expect(msg).toMatch(/dModel 10 must be divisible by nHeads 4/);
    expect(msg).toMatch(/nHeads 4 must be a multiple of nKvHeads 3/);
    expect(msg).toMatch(/ropeTheta must be a positive number, got -1/);
    expect(msg).toMatch(/layerIndex must be a non-negative integer, got -2/);
    expect(() => new Linear(0, 2.5)).toThrow(/inFeatures must be a positive integer, got 0[\s\S]*outFeatures must be a positive integer, got 2.5/);
    expect(() => new RotaryEmbedding(3)).toThrow(/headDim 3 must be even/);
    expect(() => new RMSNorm(4, { eps: 0 - 1 })).toThrow(/eps must be a positive number/);
  });
});

describe('TransformerLM matches the pre-module implementation', () => {
  // Recorded from the functional TransformerLM (commit 6da3f9c) on the reference backend: FNV-1a over the
  // float64 bits of every weight, of the logits of a full forward, of a left-padded forward and of a cached
  // prefill + decode. Any change to names, seeds, init or op order changes these.
  const weightHashes = {
    'model.embed_tokens.weight': '6656c39f',
    'model.layers.0.self_attn.q_proj.weight': '7d8f547a',
    'model.layers.0.self_attn.k_proj.weight': 'bfdb4b32',
    'model.layers.0.self_attn.v_proj.weight': 'fe88c451',
    'model.layers.0.self_attn.o_proj.weight': '92f23a4d',
    'model.layers.0.mlp.gate_proj.weight': '80a9716e',
    'model.layers.0.mlp.up_proj.weight': 'a4f0979a',
    'model.layers.0.mlp.down_proj.weight': '3a414558',
    'model.layers.1.self_attn.q_proj.weight': '1e634fe9',
    'model.layers.1.self_attn.k_proj.weight': 'bfd71d4f',
    'model.layers.1.self_attn.v_proj.weight': 'cf60bb41',
    'model.layers.1.self_attn.o_proj.weight': '83dd8e5c',
    'model.layers.1.mlp.gate_proj.weight': '65e5a145',
    'model.layers.1.mlp.up_proj.weight': 'cc83068d',
    'model.layers.1.mlp.down_proj.weight': 'c9d8fc40',
  };
  const ones8 = '22e91905';
  const expected = {
    untied: { lmHead: 'eaeb8b60', logits: 'ed798a5c', first: [-1.122623850519176, 1.8483439737959717, -0.401261174542879, 3.239890239582657], padded: 'ace970e5', cached: '99da6461' },
    tied: { lmHead: null, logits: '9c261171', first: [-1.9126525697889463, 1.518562837816692, 0.7596002637107109, -0.13963904337310395], padded: '627cb6a8', cached: '728ccb89' },
  };

  for (const tie of [false, true]) {
    it(`identical weights and logits (tieEmbeddings ${tie})`, async () => {
      const want = tie ? expected.tied : expected.untied;
      const cfg = { vocabSize: 11, dModel: 8, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 12, maxSeqLen: 16, initStd: 0.5, tieEmbeddings: tie, ropeTheta: 500 };
      const m = new TransformerLM(cfg, 42);
      const got: Record<string, string> = {};
      for (const [n, t] of m.params) got[n] = hash64(await t.read());
      const wantW: Record<string, string> = { ...weightHashes };
      for (const i of [0, 1]) {
        wantW[`model.layers.${i}.input_layernorm.weight`] = ones8;
        wantW[`model.layers.${i}.post_attention_layernorm.weight`] = ones8;
      }
      wantW['model.norm.weight'] = ones8;
      if (want.lmHead) wantW['lm_head.weight'] = want.lmHead;
      expect(got).toEqual(wantW);

      const ids = ints([1, 4, 2, 9, 0, 3, 10, 5, 7, 6], [2, 5]);
      const logits = await run(() => m.forward(ids));
      expect(logits.slice(0, 4)).toEqual(want.first);
      expect(hash64(logits)).toBe(want.logits);

      const pos = ints([0, 0, 0, 1, 2, 0, 1, 2, 3, 4], [2, 5]);
      const ks = ints([2, 0], [2]);
      expect(hash64(await run(() => m.forward(ids, { positions: pos, keyStart: ks })))).toBe(want.padded);

      const cache = m.newCache(2, 8);
      const pre = ints([1, 4, 2, 9, 0, 3], [2, 3]);
      const step = ints([6, 8], [2, 1]);
      const cached = [...(await run(() => m.forward(pre, { cache, lastOnly: true }))), ...(await run(() => m.forward(step, { cache, lastOnly: true })))];
      expect(cached.length).toBe(44);
      expect(hash64(cached)).toBe(want.cached);
      for (const t of [ids, pos, ks, pre, step]) t.dispose();
      cache.dispose();
      m.dispose();
    });
  }
});
