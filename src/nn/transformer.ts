// Llama-style decoder-only transformer: token embedding → nLayers × (RMSNorm → GQA attention with RoPE →
// residual → RMSNorm → SwiGLU MLP → residual) → RMSNorm → lm_head. Parameters carry Hugging Face
// Llama/Qwen2 names so checkpoints map one to one.
import * as T from '../tensor/index.js';
import type { Tensor } from '../tensor/index.js';
import { type ModelConfig, headDim, resolveModelConfig } from './config.js';
import { KVCache } from './kv_cache.js';

/** Name → trainable tensor, in a fixed order (the order of construction). */
export type ParameterMap = Map<string, Tensor>;

export interface ForwardOptions {
  /** int32 [B, T] positions for RoPE (default: cache length + 0 … T−1 for every sequence). */
  positions?: Tensor;
  /** int32 [B]: first real token of each left-padded sequence (earlier keys are masked). */
  keyStart?: Tensor | null;
  /** Appends this call's keys/values and attends over the whole cache (generation). */
  cache?: KVCache;
  /** Only compute logits of the last position (generation): returns [B, 1, V]. */
  lastOnly?: boolean;
}

/** Deterministic per-parameter seed from the model seed and the parameter's name. */
function paramSeed(seed: number, name: string): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export class TransformerLM {
  readonly config: ModelConfig;
  readonly params: ParameterMap = new Map();
  private disposed = false;

  /** A freshly initialised model (seeded: the same seed gives the same weights on every backend). */
  constructor(config: Partial<ModelConfig> = {}, seed = 0) {
    this.config = resolveModelConfig(config);
    const c = this.config;
    const hd = headDim(c);
    const residualStd = c.initStd / Math.sqrt(2 * c.nLayers);
    const normal = (name: string, shape: number[], std = c.initStd) =>
      this.add(name, T.randNormal(shape, paramSeed(seed, name), 0, std));
    const ones = (name: string, n: number) => this.add(name, T.ones([n]));
    normal('model.embed_tokens.weight', [c.vocabSize, c.dModel]);
    for (let i = 0; i < c.nLayers; i++) {
      const p = `model.layers.${i}`;
      ones(`${p}.input_layernorm.weight`, c.dModel);
      normal(`${p}.self_attn.q_proj.weight`, [c.nHeads * hd, c.dModel]);
      normal(`${p}.self_attn.k_proj.weight`, [c.nKvHeads * hd, c.dModel]);
      normal(`${p}.self_attn.v_proj.weight`, [c.nKvHeads * hd, c.dModel]);
      normal(`${p}.self_attn.o_proj.weight`, [c.dModel, c.nHeads * hd], residualStd);
      ones(`${p}.post_attention_layernorm.weight`, c.dModel);
      normal(`${p}.mlp.gate_proj.weight`, [c.ffnDim, c.dModel]);
      normal(`${p}.mlp.up_proj.weight`, [c.ffnDim, c.dModel]);
      normal(`${p}.mlp.down_proj.weight`, [c.dModel, c.ffnDim], residualStd);
    }
    ones('model.norm.weight', c.dModel);
    if (!c.tieEmbeddings) normal('lm_head.weight', [c.vocabSize, c.dModel]);
  }

  private add(name: string, t: Tensor): void {
    t.name = name;
    this.params.set(name, T.keep(t.requireGrad()));
  }

  /** The parameter `name`; throws naming it when absent. */
  p(name: string): Tensor {
    const t = this.params.get(name);
    if (!t) throw new Error(`TransformerLM: no parameter '${name}'`);
    return t;
  }

  parameters(): Tensor[] {
    return [...this.params.values()];
  }

  /** The expected shape of every parameter, by name (checkpoint validation). */
  parameterShapes(): Map<string, readonly number[]> {
    return new Map([...this.params].map(([n, t]) => [n, t.shape]));
  }

  /** A KV cache for `batch` sequences of up to `maxLen` tokens (default maxSeqLen). */
  newCache(batch: number, maxLen = this.config.maxSeqLen): KVCache {
    const c = this.config;
    return new KVCache(c.nLayers, batch, c.nKvHeads, maxLen, headDim(c));
  }

  /** ids int32 [B, T] → logits [B, T, V] (or [B, 1, V] with lastOnly). */
  forward(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    this.assertAlive();
    const c = this.config;
    if (ids.rank !== 2 || ids.dtype !== 'int32') {
      throw new RangeError(`TransformerLM.forward: ids must be int32 [batch, time], got ${ids.dtype} [${ids.shape.join(', ')}]`);
    }
    const [B, Tn] = ids.shape;
    const past = opts.cache?.length ?? 0;
    if (past + Tn > (opts.cache?.maxLen ?? c.maxSeqLen)) {
      throw new RangeError(`TransformerLM.forward: ${past + Tn} positions exceed the limit of ${opts.cache?.maxLen ?? c.maxSeqLen} (maxSeqLen / cache size)`);
    }
    if (opts.cache && opts.cache.batch !== B) throw new RangeError(`TransformerLM.forward: cache for batch ${opts.cache.batch}, ids batch ${B}`);
    return T.tidy(() => {
      const positions = opts.positions ?? T.broadcastTo(T.arange(past, past + Tn, 1, 'int32'), [B, Tn]);
      let x = T.gather(this.p('model.embed_tokens.weight'), ids);
      for (let i = 0; i < c.nLayers; i++) x = this.block(i, x, positions, opts);
      if (opts.lastOnly && Tn > 1) x = T.slice(x, [0, Tn - 1, 0], [B, 1, c.dModel]);
      x = T.rmsNorm(x, this.p('model.norm.weight'), c.normEps);
      const head = c.tieEmbeddings ? this.p('model.embed_tokens.weight') : this.p('lm_head.weight');
      const logits = T.matmul(x, head, { transB: true });
      opts.cache?.advance(Tn);
      return logits;
    }, 'TransformerLM.forward');
  }

  private block(i: number, x: Tensor, positions: Tensor, opts: ForwardOptions): Tensor {
    const c = this.config;
    const p = `model.layers.${i}`;
    const h = T.add(x, this.attention(i, T.rmsNorm(x, this.p(`${p}.input_layernorm.weight`), c.normEps), positions, opts));
    const n = T.rmsNorm(h, this.p(`${p}.post_attention_layernorm.weight`), c.normEps);
    const gate = linear(n, this.p(`${p}.mlp.gate_proj.weight`));
    const up = linear(n, this.p(`${p}.mlp.up_proj.weight`));
    return T.add(h, linear(T.swiglu(gate, up), this.p(`${p}.mlp.down_proj.weight`)));
  }

  private attention(i: number, x: Tensor, positions: Tensor, opts: ForwardOptions): Tensor {
    const c = this.config;
    const hd = headDim(c);
    const [B, Tn] = x.shape;
    const p = `model.layers.${i}.self_attn`;
    // Projections are [B, T, heads·hd]; RoPE works on [B, T, heads, hd]; attention wants [B, heads, T, hd].
    const heads = (w: string, n: number, rotate: boolean) => {
      let t = T.reshape(linear(x, this.p(`${p}.${w}.weight`)), [B, Tn, n, hd]);
      if (rotate) t = T.rope(t, positions, c.ropeTheta);
      return T.permute(t, [0, 2, 1, 3]);
    };
    const q = heads('q_proj', c.nHeads, true);
    let k = heads('k_proj', c.nKvHeads, true);
    let v = heads('v_proj', c.nKvHeads, false);
    let kvLength: number | undefined;
    const qOffset = opts.cache?.length ?? 0;
    if (opts.cache) {
      const layer = opts.cache.layer(i);
      T.writeSlice(layer.k, k, [0, 0, qOffset, 0]);
      T.writeSlice(layer.v, v, [0, 0, qOffset, 0]);
      k = layer.k;
      v = layer.v;
      kvLength = qOffset + Tn;
    }
    const o = T.attention(q, k, v, { causal: true, qOffset, kvLength, keyStart: opts.keyStart ?? null });
    const merged = T.reshape(T.permute(o, [0, 2, 1, 3]), [B, Tn, c.nHeads * hd]);
    return linear(merged, this.p(`${p}.o_proj.weight`));
  }

  /** Frees every parameter (and its gradient). */
  dispose(): void {
    for (const t of this.params.values()) t.dispose();
    this.disposed = true;
  }

  private assertAlive(): void {
    if (this.disposed) throw new Error('TransformerLM: the model was disposed');
  }
}

/** x [..., in] @ Wᵀ with W [out, in] (Hugging Face layout), no bias. */
export function linear(x: Tensor, w: Tensor): Tensor {
  return T.matmul(x, w, { transB: true });
}
