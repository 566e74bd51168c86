// Llama-style decoder-only transformer: token embedding → nLayers × (RMSNorm → GQA attention with RoPE →
// residual → RMSNorm → SwiGLU MLP → residual) → RMSNorm → lm_head, composed from the modules in layers.ts.
// Parameters carry Hugging Face Llama/Qwen2 names so checkpoints map one to one.
import * as T from '../tensor/index.js';
import type { Tensor } from '../tensor/index.js';
import { type ModelConfig, headDim, resolveModelConfig } from './config.js';
import { KVCache } from './kv_cache.js';
import { DecoderBlock, Embedding, Linear, RMSNorm, RotaryEmbedding } from './layers.js';
import { Module, type ModuleInit, ModuleList, ParameterDict } from './module.js';

export { linear } from './layers.js';

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
  /** Shared prompts in training (AttentionCallOptions.collect / prefix): no activation checkpointing then. */
  collect?: { k: Tensor; v: Tensor }[];
  prefix?: { kv: readonly { k: Tensor; v: Tensor }[]; rows: Tensor };
}

/** Hugging Face's `model`: embed_tokens → layers → norm (hidden states, no head). */
export class DecoderStack extends Module {
  readonly embedTokens: Embedding;
  readonly layers: ModuleList<DecoderBlock>;
  readonly norm: RMSNorm;

  constructor(readonly config: ModelConfig, init: ModuleInit = {}) {
    super(init);
    // Output projections (o_proj, down_proj) start smaller: each adds into the residual stream 2·nLayers times.
    const outStd = config.initStd / Math.sqrt(2 * config.nLayers);
    this.embedTokens = this.addModule('embed_tokens', (at) => new Embedding(config.vocabSize, config.dModel, { ...at, std: config.initStd }));
    this.layers = this.addModule('layers', (at) => new ModuleList(config.nLayers, (blockAt, i) => new DecoderBlock({
      ...blockAt, dModel: config.dModel, nHeads: config.nHeads, nKvHeads: config.nKvHeads, ffnDim: config.ffnDim, headDim: headDim(config),
      ropeTheta: config.ropeTheta, ropeScaling: config.ropeScaling, attentionBias: config.attentionBias, attentionOutBias: config.attentionOutBias,
      normEps: config.normEps, layerIndex: i, std: config.initStd, outStd,
    }), at));
    this.norm = this.addModule('norm', (at) => new RMSNorm(config.dModel, { ...at, eps: config.normEps }));
  }

  /**
   * Activation checkpointing per decoder block: when training (grad recording on, no KV cache), the forward
   * keeps only each block's input and the backward recomputes the block. Off by default.
   */
  checkpointActivations = false;

  /** ids int32 [B, T] → normalised hidden states [B, T, dModel] (or [B, 1, dModel] with lastOnly). */
  forward(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    const [B, Tn] = ids.shape;
    const positions = opts.positions ?? RotaryEmbedding.positions(B, Tn, opts.cache?.length ?? 0);
    let x = this.embedTokens.forward(ids);
    const checkpointed = this.checkpointActivations && !opts.cache && !opts.collect && !opts.prefix && T.isGradEnabled();
    // Without a tape or a cache (the log-prob passes under noGrad) a block's intermediates are garbage once it returns:
    // freeing them block by block keeps one block's working set live instead of every layer's.
    const blockwise = !opts.cache && !opts.collect && !T.isGradEnabled();
    for (const block of this.layers) {
      if (!checkpointed) {
        const input = x;
        x = blockwise ? T.tidy(() => block.forward(input, { positions, keyStart: opts.keyStart, prefix: opts.prefix }))
          : block.forward(x, { positions, keyStart: opts.keyStart, cache: opts.cache, collect: opts.collect, prefix: opts.prefix });
        continue;
      }
      checkRecomputable(block);
      const keyStart = opts.keyStart ?? null;
      x = T.checkpoint((input, pos, start) => block.forward(input, { positions: pos, keyStart: start ?? null }),
        keyStart ? [x, positions, keyStart] : [x, positions], trainableLeaves(block));
    }
    if (opts.lastOnly && Tn > 1) x = T.slice(x, [0, Tn - 1, 0], [B, 1, this.config.dModel]);
    return this.norm.forward(x);
  }
}

/** A checkpointed block must give the same values when recomputed: LoRA dropout draws a fresh mask per call. */
function checkRecomputable(block: DecoderBlock): void {
  for (const [path, module] of block.namedModules()) {
    const adapter = module instanceof Linear ? module.adapter as { dropout?: number; training?: boolean } | null : null;
    if (adapter && (adapter.dropout ?? 0) > 0 && adapter.training !== false) {
      throw new Error(`checkpointActivations: ${path} has LoRA dropout ${adapter.dropout}, whose fresh random mask would differ when the block is recomputed; set lora dropout 0 or turn checkpointing off`);
    }
  }
}

/** The grad-requiring leaves a block reads: its parameters and its adapters' tensors (LoRA A and B). */
function trainableLeaves(block: DecoderBlock): Tensor[] {
  const leaves = [...block.parameters()];
  for (const [, module] of block.namedModules()) {
    if (module instanceof Linear && module.adapter) leaves.push(...Object.values(module.adapter).filter(T.isTensor));
  }
  return leaves.filter((t) => t.requiresGrad);
}

export class TransformerLM extends Module {
  readonly config: ModelConfig;
  readonly model: DecoderStack;
  /** The untied output projection; null when tieEmbeddings reuses model.embed_tokens.weight. */
  readonly lmHead: Linear | null;
  /** Live name → parameter view: `params.set(name, t)` replaces the weight the next forward uses. */
  readonly params: ParameterMap;
  private disposed = false;

  /** A freshly initialised model (seeded: the same seed gives the same weights on every backend). */
  constructor(config: Partial<ModelConfig> = {}, seed = 0) {
    super({ seed });
    const resolved = resolveModelConfig(config);
    this.config = resolved;
    this.model = this.addModule('model', (at) => new DecoderStack(resolved, at));
    this.lmHead = resolved.tieEmbeddings ? null : this.addModule('lm_head', (at) => new Linear(resolved.dModel, resolved.vocabSize, { ...at, std: resolved.initStd }));
    this.params = new ParameterDict(this);
  }

  /** The parameter `name`; throws naming it when absent. */
  p(name: string): Tensor {
    const param = this.params.get(name);
    if (!param) throw new Error(`TransformerLM: no parameter '${name}'`);
    return param;
  }

  override parameters(): Tensor[] {
    return [...this.params.values()];
  }

  /** The expected shape of every parameter, by name (checkpoint validation). */
  parameterShapes(): Map<string, readonly number[]> {
    return new Map([...this.params].map(([name, param]) => [name, param.shape]));
  }

  /** A KV cache for `batch` sequences of up to `maxLen` tokens (default maxSeqLen). */
  newCache(batch: number, maxLen = this.config.maxSeqLen): KVCache {
    const config = this.config;
    return new KVCache(config.nLayers, batch, config.nKvHeads, maxLen, headDim(config));
  }

  /** ids int32 [B, T] → logits [B, T, V] (or [B, 1, V] with lastOnly). */
  forward(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    return T.tidy(() => {
      const x = this.forwardHidden(ids, opts);
      return this.lmHead ? this.lmHead.forward(x) : T.matmul(x, this.model.embedTokens.weight, { transB: true });
    }, 'TransformerLM.forward');
  }

  /**
   * ids int32 [B, T] → final hidden states after the last norm, [B, T, dModel] (or [B, 1, dModel] with
   * lastOnly): forward() without the output head. Advances the cache like forward().
   */
  forwardHidden(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    this.assertAlive();
    const maxSeqLen = this.config.maxSeqLen;
    if (ids.rank !== 2 || ids.dtype !== 'int32') {
      throw new RangeError(`TransformerLM.forward: ids must be int32 [batch, time], got ${ids.dtype} [${ids.shape.join(', ')}]`);
    }
    const [B, Tn] = ids.shape;
    const past = opts.cache?.length ?? 0;
    if (past + Tn > (opts.cache?.maxLen ?? maxSeqLen)) {
      throw new RangeError(`TransformerLM.forward: ${past + Tn} positions exceed the limit of ${opts.cache?.maxLen ?? maxSeqLen} (maxSeqLen / cache size)`);
    }
    if (opts.cache && opts.cache.batch !== B) throw new RangeError(`TransformerLM.forward: cache for batch ${opts.cache.batch}, ids batch ${B}`);
    return T.tidy(() => {
      const x = this.model.forward(ids, opts);
      opts.cache?.advance(Tn);
      return x;
    }, 'TransformerLM.forwardHidden');
  }

  /**
   * The output head as a plain weight [V, dModel] (nn.Linear layout) and optional bias: lm_head, or the
   * embedding table when tied (its gradient then accumulates into that same parameter). Null when lm_head
   * carries an adapter (LoRA on the head), which only forward() applies.
   */
  headWeight(): { weight: Tensor; bias: Tensor | null } | null {
    this.assertAlive();
    if (!this.lmHead) return { weight: this.model.embedTokens.weight, bias: null };
    if (this.lmHead.adapter) return null;
    return { weight: this.lmHead.weight, bias: this.lmHead.bias };
  }

  /**
   * Log-probs and entropies of int32 targets [B·T] (−1: ignored) after ids [B, T], flattened to [B·T], from
   * the hidden states and the head in row chunks (linearLogSoftmaxGather): no [B·T, V] logits exist, in the
   * forward or the backward. Falls back to full logits only when lm_head has an adapter.
   * With `rows` (int32 [R], positions in [0, B·T)), only those positions go through the head: targets are then
   * theirs, [R], and so are the outputs (an RL batch's response tokens: the prompt positions cost no head work).
   */
  tokenLogprobs(ids: Tensor, targets: Tensor, opts: { chunkRows?: number; rows?: Tensor } = {}): { logp: Tensor; entropy: Tensor } {
    return T.tidy(() => {
      const all = ids.size;
      const picked = opts.rows ?? null;
      const rows = picked ? picked.size : all;
      if (targets.size !== rows) {
        throw new RangeError(`TransformerLM.tokenLogprobs: ${targets.size} targets for ${rows} ${picked ? 'picked rows' : 'positions of ids'}`);
      }
      const { vocabSize, dModel } = this.config;
      const head = this.headWeight();
      if (!head) {
        const logits = T.reshape(this.forward(ids), [all, vocabSize]);
        return T.logSoftmaxGather(picked ? T.gather(logits, picked) : logits, targets);
      }
      const hidden = T.reshape(this.forwardHidden(ids), [all, dModel]);
      return T.linearLogSoftmaxGather(picked ? T.gather(hidden, picked) : hidden, head.weight, targets, { bias: head.bias, chunkRows: opts.chunkRows });
    }, 'TransformerLM.tokenLogprobs');
  }

  /**
   * tokenLogprobs for responses that share prompts (a DAPO group's G responses): each prompt's positions run once.
   * Prompts [U, P] left-padded (promptKeyStart [U]: first real token; promptPositions from 0 at it); responses [B, R]
   * continue prompt rows[b] (responsePositions from that prompt's length; responseKeyStart[b] = its prompt's
   * keyStart) and attend over its keys/values, with gradients flowing back into the prompt from every response.
   * `pick` (int32 [N]) indexes the concatenated positions [U·P prompt, B·R response] whose next token is targets[i].
   */
  sharedPromptLogprobs(p: {
    promptIds: Tensor; promptPositions: Tensor; promptKeyStart: Tensor;
    responseIds: Tensor; responsePositions: Tensor; responseKeyStart: Tensor; rows: Tensor; pick: Tensor; targets: Tensor;
  }, opts: { chunkRows?: number } = {}): { logp: Tensor; entropy: Tensor } {
    return T.tidy(() => {
      const { dModel } = this.config;
      const head = this.headWeight();
      if (!head) throw new RangeError('TransformerLM.sharedPromptLogprobs: needs a plain output head (no adapter on lm_head)');
      const kv: { k: Tensor; v: Tensor }[] = [];
      // DecoderStack.forward directly: forwardHidden's own scope would free the collected keys/values on return
      this.assertAlive();
      const promptHidden = this.model.forward(p.promptIds, { positions: p.promptPositions, keyStart: p.promptKeyStart, collect: kv });
      const responseHidden = this.model.forward(p.responseIds, { positions: p.responsePositions, keyStart: p.responseKeyStart, prefix: { kv, rows: p.rows } });
      const hidden = T.concat([T.reshape(promptHidden, [p.promptIds.size, dModel]), T.reshape(responseHidden, [p.responseIds.size, dModel])], 0);
      return T.linearLogSoftmaxGather(T.gather(hidden, p.pick), head.weight, p.targets, { bias: head.bias, chunkRows: opts.chunkRows });
    }, 'TransformerLM.sharedPromptLogprobs');
  }

  /** Activation checkpointing per decoder block in training passes (DecoderStack.checkpointActivations). */
  get checkpointActivations(): boolean {
    return this.model.checkpointActivations;
  }

  set checkpointActivations(on: boolean) {
    this.model.checkpointActivations = on;
  }

  /** Frees every parameter (and its gradient). */
  override dispose(): void {
    for (const param of this.params.values()) param.dispose();
    this.disposed = true;
  }

  private assertAlive(): void {
    if (this.disposed) throw new Error('TransformerLM: the model was disposed');
  }
}
