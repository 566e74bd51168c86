// The Llama building blocks as modules: Embedding, Linear, RMSNorm, RotaryEmbedding, grouped-query
// self-attention with a KV cache, the SwiGLU MLP and the pre-norm decoder block. Weights use the Hugging
// Face layout and names (Linear.weight is [out, in]; q_proj / k_proj / v_proj / o_proj, gate_proj …).
import * as T from '../tensor/index.js';
import type { Tensor } from '../tensor/index.js';
import { ConfigError, type RopeScaling } from './config.js';
import type { KVCache } from './kv_cache.js';
import { pickRows } from './prompt_rows.js';
import { Module, type ModuleInit } from './module.js';
import { ropeInverseFrequencies } from './rope.js';

/** x [..., in] @ Wᵀ with W [out, in] (Hugging Face layout), plus an optional bias [out]. */
export function linear(x: Tensor, w: Tensor, bias?: Tensor | null): Tensor {
  const y = T.matmul(x, w, { transB: true });
  return bias ? T.add(y, bias) : y;
}

/** Throws one ConfigError listing every field that is not a positive integer, plus `extra` problems. */
function checkDims(what: string, dims: Record<string, number>, extra: string[] = []): void {
  const problems = Object.entries(dims)
    .filter(([, v]) => !Number.isInteger(v) || v < 1)
    .map(([k, v]) => `${k} must be a positive integer, got ${JSON.stringify(v)}`);
  problems.push(...extra);
  if (problems.length) throw new ConfigError(problems, what);
}

function checkPositive(name: string, v: number | undefined): string[] {
  return v === undefined || (Number.isFinite(v) && v > 0) ? [] : [`${name} must be a positive number, got ${JSON.stringify(v)}`];
}

function checkLastAxis(op: string, x: Tensor, size: number): void {
  if (x.rank < 1 || x.shape[x.rank - 1] !== size) {
    throw new RangeError(`${op}: input [${x.shape.join(', ')}] must end with an axis of ${size}`);
  }
}

export interface EmbeddingOptions extends ModuleInit {
  /** Std of the normal init (default 1, as PyTorch's nn.Embedding). */
  std?: number;
}

/** Token table weight [numEmbeddings, dim]: int32 ids [...] → [..., dim]. */
export class Embedding extends Module {
  constructor(readonly numEmbeddings: number, readonly dim: number, opts: EmbeddingOptions = {}) {
    super(opts);
    checkDims('Embedding options', { numEmbeddings, dim }, checkPositive('std', opts.std));
    this.addParameter('weight', [numEmbeddings, dim], { std: opts.std ?? 1 });
  }

  get weight(): Tensor {
    return this.param('weight');
  }

  forward(ids: Tensor): Tensor {
    return T.gather(this.weight, ids);
  }
}

export interface LinearOptions extends ModuleInit {
  /** Adds a bias [out] initialised to zeros (default false: Llama projections have none). */
  bias?: boolean;
  /** Std of the weight's normal init (default 1/sqrt(inFeatures)). */
  std?: number;
}

/** Replaces a Linear's forward while attached (LoRA): computes the output from the input and the base layer. */
export interface LinearAdapter {
  forward(x: Tensor, base: Linear): Tensor;
}

/** y = x Wᵀ (+ b) with weight [outFeatures, inFeatures]. */
export class Linear extends Module {
  readonly hasBias: boolean;
  /** When set (LoRA), forward delegates to it; the base weight and bias stay this module's parameters. */
  adapter: LinearAdapter | null = null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: LinearOptions = {}) {
    super(opts);
    checkDims('Linear options', { inFeatures, outFeatures }, checkPositive('std', opts.std));
    this.hasBias = opts.bias ?? false;
    this.addParameter('weight', [outFeatures, inFeatures], { std: opts.std ?? 1 / Math.sqrt(inFeatures) });
    if (this.hasBias) this.addParameter('bias', [outFeatures], 'zeros');
  }

  get weight(): Tensor {
    return this.param('weight');
  }

  get bias(): Tensor | null {
    return this.hasBias ? this.param('bias') : null;
  }

  forward(x: Tensor): Tensor {
    checkLastAxis('Linear.forward', x, this.inFeatures);
    return this.adapter ? this.adapter.forward(x, this) : linear(x, this.weight, this.bias);
  }
}

export interface RMSNormOptions extends ModuleInit {
  /** Added to mean(x²) before the square root (default 1e-6, as Hugging Face's LlamaRMSNorm). */
  eps?: number;
}

/** x · rsqrt(mean(x²) + eps) · weight over the last axis; weight [dim] starts at ones. */
export class RMSNorm extends Module {
  readonly eps: number;

  constructor(readonly dim: number, opts: RMSNormOptions = {}) {
    super(opts);
    checkDims('RMSNorm options', { dim }, checkPositive('eps', opts.eps));
    this.eps = opts.eps ?? 1e-6;
    this.addParameter('weight', [dim], 'ones');
  }

  get weight(): Tensor {
    return this.param('weight');
  }

  forward(x: Tensor): Tensor {
    checkLastAxis('RMSNorm.forward', x, this.dim);
    return T.rmsNorm(x, this.weight, this.eps);
  }
}

/**
 * Rotary position embedding (Llama rotate_half convention); no parameters. Frequencies theta^(−2i/headDim),
 * or those of Hugging Face's rope scaling when `scaling` is given.
 */
export class RotaryEmbedding extends Module {
  /** The scaled inverse frequencies [headDim/2] (float64); null when unscaled (the kernels derive them from theta). */
  readonly inverseFrequencies: Float64Array | null;

  constructor(readonly headDim: number, readonly theta = 10000, readonly scaling: RopeScaling | null = null) {
    super();
    checkDims('RotaryEmbedding options', { headDim }, [
      ...(Number.isInteger(headDim) && headDim % 2 !== 0 ? [`headDim ${headDim} must be even (RoPE rotates pairs)`] : []),
      ...checkPositive('theta', theta),
    ]);
    this.inverseFrequencies = scaling ? ropeInverseFrequencies(headDim, theta, scaling) : null;
  }

  /** x [B, T, heads, headDim] at int32 positions [B, T] → rotated x. */
  forward(x: Tensor, positions: Tensor): Tensor {
    checkLastAxis('RotaryEmbedding.forward', x, this.headDim);
    return T.rope(x, positions, this.theta, this.inverseFrequencies);
  }

  /** Positions start … start+length−1 for every one of `batch` sequences, int32 [batch, length]. */
  static positions(batch: number, length: number, start = 0): Tensor {
    return T.broadcastTo(T.arange(start, start + length, 1, 'int32'), [batch, length]);
  }
}

export interface SelfAttentionOptions extends ModuleInit {
  dModel: number;
  nHeads: number;
  /** Key/value heads (grouped-query attention; divides nHeads; default nHeads). */
  nKvHeads?: number;
  /** RoPE base (default 10000). */
  ropeTheta?: number;
  /** RoPE frequency scaling (default none). */
  ropeScaling?: RopeScaling | null;
  /** Width of one head (default dModel / nHeads). */
  headDim?: number;
  /** Biases on q/k/v_proj (default false; Qwen2). */
  bias?: boolean;
  /** A bias on o_proj (default false; Llama's attention_bias sets both). */
  outBias?: boolean;
  /** Which layer of a KVCache this attention reads and appends to (default 0). */
  layerIndex?: number;
  /** Std of q/k/v_proj's init (default 1/sqrt(dModel)). */
  std?: number;
  /** Std of o_proj's init (default: std). */
  outStd?: number;
}

export interface AttentionCallOptions {
  /** int32 [B, T] positions for RoPE (default: cache length + 0 … T−1 for every sequence). */
  positions?: Tensor;
  /** int32 [B]: first real token of each left-padded sequence (earlier keys are masked). */
  keyStart?: Tensor | null;
  /**
   * Appends this call's keys/values at cache.length in layer `layerIndex` and attends over the whole cache.
   * The caller advances the cache once every layer has appended.
   */
  cache?: KVCache;
  /**
   * Shared prompts, differentiable (the training forward of a group's responses): `collect` receives this layer's
   * keys/values [B, Hkv, T, hd] (after RoPE) at index layerIndex (the prompts' pass); `prefix` prepends row
   * prefix.rows[b] of its layer's collected keys/values to sequence b's own, and the queries sit after them
   * (the responses' pass; keyStart then masks the prompts' left padding).
   */
  collect?: { k: Tensor; v: Tensor }[];
  prefix?: { kv: readonly { k: Tensor; v: Tensor }[]; rows: Tensor };
}

/** Causal multi-head self-attention with grouped-query heads, RoPE on queries and keys, and a KV cache. */
export class SelfAttention extends Module {
  readonly dModel: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
  readonly layerIndex: number;
  readonly qProj: Linear;
  readonly kProj: Linear;
  readonly vProj: Linear;
  readonly oProj: Linear;
  readonly rotary: RotaryEmbedding;

  constructor(opts: SelfAttentionOptions) {
    super(opts);
    const { dModel, nHeads } = opts;
    const nKvHeads = opts.nKvHeads ?? nHeads;
    const layerIndex = opts.layerIndex ?? 0;
    const extra: string[] = [...checkPositive('std', opts.std), ...checkPositive('outStd', opts.outStd)];
    if (!Number.isInteger(layerIndex) || layerIndex < 0) extra.push(`layerIndex must be a non-negative integer, got ${JSON.stringify(layerIndex)}`);
    if (opts.headDim !== undefined) {
      if (!Number.isInteger(opts.headDim) || opts.headDim < 1) extra.push(`headDim must be a positive integer, got ${JSON.stringify(opts.headDim)}`);
      else if (opts.headDim % 2 !== 0) extra.push(`headDim ${opts.headDim} must be even (RoPE rotates pairs)`);
    } else if (Number.isInteger(dModel) && Number.isInteger(nHeads) && nHeads > 0 && dModel % nHeads !== 0) extra.push(`dModel ${dModel} must be divisible by nHeads ${nHeads} (or pass headDim)`);
    else if (Number.isInteger(dModel / nHeads) && (dModel / nHeads) % 2 !== 0) extra.push(`head size dModel/nHeads = ${dModel / nHeads} must be even (RoPE rotates pairs)`);
    if (Number.isInteger(nKvHeads) && nKvHeads > 0 && Number.isInteger(nHeads) && nHeads % nKvHeads !== 0) extra.push(`nHeads ${nHeads} must be a multiple of nKvHeads ${nKvHeads}`);
    checkDims('SelfAttention options', { dModel, nHeads, nKvHeads }, [...extra, ...checkPositive('ropeTheta', opts.ropeTheta)]);
    this.dModel = dModel;
    this.nHeads = nHeads;
    this.nKvHeads = nKvHeads;
    this.headDim = opts.headDim ?? dModel / nHeads;
    this.layerIndex = layerIndex;
    const hd = this.headDim;
    const std = opts.std ?? 1 / Math.sqrt(dModel);
    const outStd = opts.outStd ?? std;
    const bias = opts.bias ?? false;
    this.qProj = this.addModule('q_proj', (at) => new Linear(dModel, nHeads * hd, { ...at, std, bias }));
    this.kProj = this.addModule('k_proj', (at) => new Linear(dModel, nKvHeads * hd, { ...at, std, bias }));
    this.vProj = this.addModule('v_proj', (at) => new Linear(dModel, nKvHeads * hd, { ...at, std, bias }));
    this.oProj = this.addModule('o_proj', (at) => new Linear(nHeads * hd, dModel, { ...at, std: outStd, bias: opts.outBias ?? false }));
    // No parameters: not a named child (Hugging Face has none).
    this.rotary = new RotaryEmbedding(hd, opts.ropeTheta ?? 10000, opts.ropeScaling ?? null);
  }

  /** x [B, T, dModel] → [B, T, dModel]. */
  forward(x: Tensor, opts: AttentionCallOptions = {}): Tensor {
    if (x.rank !== 3 || x.shape[2] !== this.dModel) {
      throw new RangeError(`SelfAttention.forward: x must be [batch, time, ${this.dModel}], got [${x.shape.join(', ')}]`);
    }
    const [B, Tn] = x.shape;
    const hd = this.headDim;
    const qOffset = opts.cache?.length ?? 0;
    const positions = opts.positions ?? RotaryEmbedding.positions(B, Tn, qOffset);
    // Projections are [B, T, heads·hd]; RoPE works on [B, T, heads, hd]; attention wants [B, heads, T, hd].
    const heads = (proj: Linear, n: number, rotate: boolean) => {
      let t = T.reshape(proj.forward(x), [B, Tn, n, hd]);
      if (rotate) t = this.rotary.forward(t, positions);
      return T.permute(t, [0, 2, 1, 3]);
    };
    const q = heads(this.qProj, this.nHeads, true);
    let k = heads(this.kProj, this.nKvHeads, true);
    let v = heads(this.vProj, this.nKvHeads, false);
    let kvLength: number | undefined;
    if (opts.collect) opts.collect[this.layerIndex] = { k, v };
    if (opts.prefix) {
      const shared = opts.prefix.kv[this.layerIndex];
      if (!shared) throw new RangeError(`SelfAttention.forward: no prefix keys/values for layer ${this.layerIndex}`);
      const prefixLength = shared.k.shape[2];
      k = T.concat([pickRows(shared.k, opts.prefix.rows), k], 2);
      v = T.concat([pickRows(shared.v, opts.prefix.rows), v], 2);
      const attendedAfter = T.attention(q, k, v, { causal: true, qOffset: prefixLength, keyStart: opts.keyStart ?? null });
      return this.oProj.forward(T.reshape(T.permute(attendedAfter, [0, 2, 1, 3]), [B, Tn, this.nHeads * hd]));
    }
    if (opts.cache) {
      const layer = opts.cache.layer(this.layerIndex);
      if (!layer) throw new RangeError(`SelfAttention.forward: the cache has no layer ${this.layerIndex}`);
      T.writeSlice(layer.k, k, [0, 0, qOffset, 0]);
      T.writeSlice(layer.v, v, [0, 0, qOffset, 0]);
      k = layer.k;
      v = layer.v;
      kvLength = qOffset + Tn;
    }
    const attended = T.attention(q, k, v, { causal: true, qOffset, kvLength, keyStart: opts.keyStart ?? null });
    return this.oProj.forward(T.reshape(T.permute(attended, [0, 2, 1, 3]), [B, Tn, this.nHeads * hd]));
  }
}

export interface SwiGLUMLPOptions extends ModuleInit {
  /** Std of gate_proj / up_proj's init (default 1/sqrt(dModel)). */
  std?: number;
  /** Std of down_proj's init (default: std). */
  outStd?: number;
}

/** down_proj(silu(gate_proj(x)) · up_proj(x)). */
export class SwiGLUMLP extends Module {
  readonly gateProj: Linear;
  readonly upProj: Linear;
  readonly downProj: Linear;

  constructor(readonly dModel: number, readonly ffnDim: number, opts: SwiGLUMLPOptions = {}) {
    super(opts);
    checkDims('SwiGLUMLP options', { dModel, ffnDim }, [...checkPositive('std', opts.std), ...checkPositive('outStd', opts.outStd)]);
    const std = opts.std ?? 1 / Math.sqrt(dModel);
    this.gateProj = this.addModule('gate_proj', (at) => new Linear(dModel, ffnDim, { ...at, std }));
    this.upProj = this.addModule('up_proj', (at) => new Linear(dModel, ffnDim, { ...at, std }));
    this.downProj = this.addModule('down_proj', (at) => new Linear(ffnDim, dModel, { ...at, std: opts.outStd ?? std }));
  }

  forward(x: Tensor): Tensor {
    return this.downProj.forward(T.swiglu(this.gateProj.forward(x), this.upProj.forward(x)));
  }
}

export interface DecoderBlockOptions extends ModuleInit {
  dModel: number;
  nHeads: number;
  nKvHeads?: number;
  ffnDim: number;
  ropeTheta?: number;
  ropeScaling?: RopeScaling | null;
  headDim?: number;
  /** Biases on q/k/v_proj (Qwen2). */
  attentionBias?: boolean;
  /** A bias on o_proj (Llama's attention_bias). */
  attentionOutBias?: boolean;
  /** RMSNorm eps (default 1e-6). */
  normEps?: number;
  layerIndex?: number;
  /** Std of the input-side projections (q/k/v, gate/up) (default 1/sqrt(dModel)). */
  std?: number;
  /** Std of the residual-side projections (o_proj, down_proj) (default: std). */
  outStd?: number;
}

/** Pre-norm block: h = x + attn(norm(x)); out = h + mlp(norm(h)). */
export class DecoderBlock extends Module {
  readonly inputLayernorm: RMSNorm;
  readonly selfAttn: SelfAttention;
  readonly postAttentionLayernorm: RMSNorm;
  readonly mlp: SwiGLUMLP;

  constructor(opts: DecoderBlockOptions) {
    super(opts);
    const { dModel, normEps: eps, std, outStd } = opts;
    this.inputLayernorm = this.addModule('input_layernorm', (at) => new RMSNorm(dModel, { ...at, eps }));
    this.selfAttn = this.addModule('self_attn', (at) => new SelfAttention({
      ...at, dModel, nHeads: opts.nHeads, nKvHeads: opts.nKvHeads, headDim: opts.headDim, ropeTheta: opts.ropeTheta, ropeScaling: opts.ropeScaling,
      bias: opts.attentionBias, outBias: opts.attentionOutBias, layerIndex: opts.layerIndex, std, outStd,
    }));
    this.postAttentionLayernorm = this.addModule('post_attention_layernorm', (at) => new RMSNorm(dModel, { ...at, eps }));
    this.mlp = this.addModule('mlp', (at) => new SwiGLUMLP(dModel, opts.ffnDim, { ...at, std, outStd }));
  }

  /** x [B, T, dModel] → [B, T, dModel]. */
  forward(x: Tensor, opts: AttentionCallOptions = {}): Tensor {
    const residual = T.add(x, this.selfAttn.forward(this.inputLayernorm.forward(x), opts));
    return T.add(residual, this.mlp.forward(this.postAttentionLayernorm.forward(residual)));
  }
}
