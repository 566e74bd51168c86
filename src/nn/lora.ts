// LoRA (Hu et al. 2021) with PEFT's semantics: each targeted Linear computes
//   y = x Wᵀ (+ b) + scaling · dropout(x) Aᵀ Bᵀ,   scaling = alpha / r (alpha / √r with rsLoRA),
// A [r, in] drawn like PEFT's kaiming_uniform_(a=√5) (uniform ±1/√in), B [out, r] zeros, so training starts
// at the base model. Every base parameter is frozen (requiresGrad false): backward computes no gradient for it
// and an optimizer over trainableParameters() keeps moments for A and B only. The adapters live on the Linear
// modules (Linear.adapter), so every caller of the model — training, evaluation, generation with the KV cache —
// runs the adapted projections. The forward is one fused op (T.lowRankLinear: the rank-r product is the epilogue
// of the matmul kernel — matmulLowRank — forward and in the input gradient).
import { type HalfDType, HALF_DTYPES, isHalfDType } from '../backend/types.js';
import * as T from '../tensor/index.js';
import type { Tensor } from '../tensor/index.js';
import { Embedding, Linear, type LinearAdapter, linear } from './layers.js';
import { type Module, ParameterDict, paramSeed } from './module.js';

/** The projections of the Llama family PEFT users target. */
export const LORA_TARGET_MODULES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
/** PEFT's shorthand: every Linear except the output head (lm_head). */
export const ALL_LINEAR = 'all-linear';
/** PEFT's default targets for llama / qwen2 / mistral when none are given. */
export const DEFAULT_LORA_TARGETS: readonly string[] = ['q_proj', 'v_proj'];

export interface LoraOptions {
  /** Rank of the update (PEFT `r`, default 8). */
  r?: number;
  /** Scale numerator (PEFT `lora_alpha`, default 8): the update is multiplied by alpha / r. */
  alpha?: number;
  /** Dropout probability on the adapter's input while training (PEFT `lora_dropout`, default 0). */
  dropout?: number;
  /**
   * Which Linear modules get an adapter, as PEFT matches them: a list of names, each matching a module whose
   * dotted path equals it or ends with '.' + it (e.g. 'q_proj'); 'all-linear' (every Linear but lm_head);
   * or any other string, a regular expression the whole path must match. Default: q_proj and v_proj.
   */
  targetModules?: readonly string[] | string;
  /** rsLoRA scaling alpha / √r instead of alpha / r (PEFT `use_rslora`, default false). */
  useRslora?: boolean;
  /** Seed of A's init and of the dropout masks (default 0). */
  seed?: number;
}

/** The options with defaults filled in, as applied. */
export type LoraSettings = Required<Omit<LoraOptions, 'targetModules'>> & { targetModules: readonly string[] | string };

/** y = base(x) + scaling · dropout(x) Aᵀ Bᵀ for one Linear; A and B are the trainable tensors. */
export class LoraLinear implements LinearAdapter {
  readonly scaling: number;
  /** Dropout is applied only while training is true and gradients are being recorded. */
  training = true;
  /** Dropout masks drawn so far (each from seed and this count): a resumed run restores it to draw the same masks. */
  dropoutCalls = 0;

  constructor(
    /** Dotted path of the adapted Linear in its model (model.layers.0.self_attn.q_proj). */
    readonly path: string,
    readonly base: Linear,
    readonly r: number,
    readonly alpha: number,
    readonly dropout: number,
    readonly useRslora: boolean,
    /** [r, in] */
    public loraA: Tensor,
    /** [out, r] */
    public loraB: Tensor,
    private readonly seed: number,
  ) {
    this.scaling = useRslora ? alpha / Math.sqrt(r) : alpha / r;
  }

  forward(x: Tensor, base: Linear): Tensor {
    const dropped = this.dropoutInput(x);
    return T.lowRankLinear(x, base.weight, this.loraA, this.loraB, this.scaling, { bias: base.bias, xa: dropped === x ? null : dropped });
  }

  /** The same function as forward, composed from plain differentiable ops (matmuls and adds): the cross-check of the fused op. */
  composedForward(x: Tensor, base: Linear): Tensor {
    const y = linear(x, base.weight, base.bias);
    const u = T.mulScalar(T.matmul(this.dropoutInput(x), this.loraA, { transB: true }), this.scaling);
    return T.add(y, T.matmul(u, this.loraB, { transB: true }));
  }

  /** The weight this adapter amounts to: W + scaling · B·A, in float32 (a 16-bit W is widened first; no gradient recorded). */
  mergedWeight(): Tensor {
    return T.noGrad(() => T.tidy(() => T.add(float32Of(this.base.weight), T.mulScalar(T.matmul(this.loraB, this.loraA), this.scaling))));
  }

  dispose(): void {
    this.loraA.dispose();
    this.loraB.dispose();
  }

  /** Inverted dropout (kept values scaled by 1/(1−p)) with a fresh seeded mask per call: reproducible runs. */
  private dropoutInput(x: Tensor): Tensor {
    if (!(this.dropout > 0) || !this.training || !T.isGradEnabled()) return x;
    const keep = 1 - this.dropout;
    const seed = paramSeed(this.seed, `${this.path}.lora_dropout.${this.dropoutCalls++}`);
    const mask = T.noGrad(() => T.tidy(() => T.where(T.lt(T.randUniform(x.shape, seed), keep), 1 / keep, 0)));
    return T.mul(x, mask);
  }
}

/** Every LoRA adapter of a model, in module order. */
export function loraAdapters(model: Module): LoraLinear[] {
  const out: LoraLinear[] = [];
  for (const [, module] of model.namedModules()) {
    if (module instanceof Linear && module.adapter instanceof LoraLinear) out.push(module.adapter);
  }
  return out;
}

export function hasLora(model: Module): boolean {
  return loraAdapters(model).length > 0;
}

/** Names of the parameters applyLora froze (trainable again after mergeLora / removeLora). */
const frozenBy = new WeakMap<Module, Set<string>>();

/** The output head 'all-linear' leaves out (PEFT excludes the model's output embeddings). */
function isOutputHead(path: string): boolean {
  return path === 'lm_head' || path.endsWith('.lm_head');
}

/** (path, Linear) pairs selected by PEFT's target_modules rules; throws naming targets that match nothing. */
export function selectLoraTargets(model: Module, targetModules: readonly string[] | string): [string, Linear][] {
  const linears = model.namedModules().filter((entry): entry is [string, Linear] => entry[1] instanceof Linear);
  const available = [...new Set(linears.map(([path]) => path.split('.').pop()!))].join(', ');
  if (typeof targetModules === 'string') {
    if (targetModules.toLowerCase() === ALL_LINEAR) return linears.filter(([path]) => !isOutputHead(path));
    let pattern: RegExp;
    try {
      pattern = new RegExp(`^(?:${targetModules})$`);
    } catch (err) {
      throw new LoraError(`targetModules '${targetModules}' is not a valid regular expression: ${(err as Error).message}`);
    }
    const chosen = linears.filter(([path]) => pattern.test(path));
    if (!chosen.length) throw new LoraError(`targetModules pattern '${targetModules}' matches no Linear module (paths look like ${linears[0]?.[0] ?? 'none'}; names: ${available})`);
    return chosen;
  }
  if (!Array.isArray(targetModules) || !targetModules.length || targetModules.some((t) => typeof t !== 'string' || !t)) {
    throw new LoraError(`targetModules must be 'all-linear', a regular expression or a non-empty list of module names (${available}), got ${JSON.stringify(targetModules)}`);
  }
  const matches = (path: string, target: string) => path === target || path.endsWith(`.${target}`);
  const unmatched = targetModules.filter((target) => !linears.some(([path]) => matches(path, target)));
  if (unmatched.length) throw new LoraError(`target module${unmatched.length > 1 ? 's' : ''} ${unmatched.map((t) => `'${t}'`).join(', ')} not found among the model's Linear modules (${available})`);
  return linears.filter(([path]) => targetModules.some((target) => matches(path, target)));
}

export class LoraError extends Error {
  constructor(message: string) {
    super(`LoRA: ${message}`);
    this.name = 'LoraError';
  }
}

/** Validates options and fills in PEFT's defaults. */
export function resolveLoraOptions(opts: LoraOptions = {}): LoraSettings {
  const settings: LoraSettings = {
    r: opts.r ?? 8,
    alpha: opts.alpha ?? 8,
    dropout: opts.dropout ?? 0,
    targetModules: opts.targetModules ?? DEFAULT_LORA_TARGETS,
    useRslora: opts.useRslora ?? false,
    seed: opts.seed ?? 0,
  };
  const problems: string[] = [];
  if (!Number.isInteger(settings.r) || settings.r < 1) problems.push(`r must be a positive integer, got ${JSON.stringify(settings.r)}`);
  if (!Number.isFinite(settings.alpha) || settings.alpha <= 0) problems.push(`alpha must be a positive number, got ${JSON.stringify(settings.alpha)}`);
  if (!(settings.dropout >= 0 && settings.dropout < 1)) problems.push(`dropout must be in [0, 1), got ${JSON.stringify(settings.dropout)}`);
  if (!Number.isInteger(settings.seed)) problems.push(`seed must be an integer, got ${JSON.stringify(settings.seed)}`);
  if (problems.length) throw new LoraError(problems.join('; '));
  return settings;
}

/**
 * Adds a LoRA adapter to every targeted Linear and freezes all base parameters. Returns the adapters.
 * Load base weights first: loading replaces parameters with fresh trainable tensors.
 */
export function applyLora(model: Module, opts: LoraOptions = {}): LoraLinear[] {
  const settings = resolveLoraOptions(opts);
  if (hasLora(model)) throw new LoraError('the model already has LoRA adapters (mergeLora or removeLora first)');
  const targets = selectLoraTargets(model, settings.targetModules);
  // A 16-bit parameter is a frozen base weight already (loaded straight into 16 bits): frozen by LoRA all the same, so
  // that removing the adapters widens it back to a trainable float32 weight.
  const wasTrainable = model.namedParameters().filter(([, p]) => p.requiresGrad || isHalfDType(p.dtype));
  frozenBy.set(model, new Set(wasTrainable.map(([name]) => name)));
  for (const [, p] of wasTrainable) {
    p.grad?.dispose();
    p.grad = null;
    p.requireGrad(false);
  }
  return targets.map(([path, layer]) => {
    const bound = 1 / Math.sqrt(layer.inFeatures); // kaiming_uniform_(a=√5): gain √(2/6), bound gain·√3/√fan_in
    const loraA = T.keep(T.randUniform([settings.r, layer.inFeatures], paramSeed(settings.seed, `${path}.lora_A.weight`), -bound, bound).requireGrad());
    const loraB = T.keep(T.zeros([layer.outFeatures, settings.r]).requireGrad());
    loraA.name = `${path}.lora_A.weight`;
    loraB.name = `${path}.lora_B.weight`;
    const adapter = new LoraLinear(path, layer, settings.r, settings.alpha, settings.dropout, settings.useRslora, loraA, loraB, settings.seed);
    layer.adapter = adapter;
    return adapter;
  });
}

/** Switches adapter dropout on (training) or off (evaluation); generation under noGrad never drops. */
export function setLoraTraining(model: Module, training: boolean): void {
  for (const adapter of loraAdapters(model)) adapter.training = training;
}

/**
 * What an optimizer should update: every base parameter still requiring gradients (none after applyLora)
 * and each adapter's `<path>.lora_A.weight` / `<path>.lora_B.weight`, in module order.
 */
export function trainableParameters(model: Module): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [name, p] of model.namedParameters()) if (p.requiresGrad) out.set(name, p);
  for (const adapter of loraAdapters(model)) {
    out.set(`${adapter.path}.lora_A.weight`, adapter.loraA);
    out.set(`${adapter.path}.lora_B.weight`, adapter.loraB);
  }
  return out;
}

export interface ParameterCounts {
  trainable: number;
  total: number;
}

/** Trainable and total parameter counts (adapters included in both, as PEFT counts them). */
export function parameterCounts(model: Module): ParameterCounts {
  let total = 0;
  for (const p of model.parameters()) total += p.size;
  let adapters = 0;
  for (const adapter of loraAdapters(model)) adapters += adapter.loraA.size + adapter.loraB.size;
  let trainable = 0;
  for (const p of trainableParameters(model).values()) trainable += p.size;
  return { trainable, total: total + adapters };
}

/** PEFT's print_trainable_parameters line: "trainable params: 1,024 || all params: 9,216 || trainable%: 11.1111". */
export function formatTrainableParameters(model: Module): string {
  const { trainable, total } = parameterCounts(model);
  const grouped = (n: number) => n.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `trainable params: ${grouped(trainable)} || all params: ${grouped(total)} || trainable%: ${(total ? (100 * trainable) / total : 0).toFixed(4)}`;
}

/** Replaces the parameter at `name` through the model's live ParameterDict when it has one (TransformerLM.params). */
function replaceParameter(model: Module, name: string, t: Tensor): void {
  const dict = (model as { params?: unknown }).params;
  if (dict instanceof ParameterDict) dict.set(name, t);
  else model.setParameter(name, t);
}

/** A float32 view of a weight: itself, or a 16-bit one widened (a new tensor). */
function float32Of(w: Tensor): Tensor {
  return w.dtype === 'float32' ? w : T.cast(w, 'float32');
}

/** The dtype frozen base weights are stored in: float32, bfloat16 or float16; 'auto' = the checkpoint's under LoRA. */
export type FrozenDType = 'auto' | 'float32' | HalfDType;
export const FROZEN_DTYPES: readonly FrozenDType[] = ['auto', 'float32', ...HALF_DTYPES];

/**
 * The storage dtype of the frozen weights for a setting: 'auto' keeps a 16-bit checkpoint's dtype when LoRA freezes
 * the base (full-parameter training trains float32 weights); an explicit dtype without LoRA is an error.
 */
export function resolveFrozenDType(setting: FrozenDType, opts: { lora: boolean; checkpointDType: 'float32' | HalfDType | null }): 'float32' | HalfDType {
  if (!FROZEN_DTYPES.includes(setting)) throw new LoraError(`frozenDtype must be one of ${FROZEN_DTYPES.join(', ')}, got ${JSON.stringify(setting)}`);
  if (setting === 'auto') return opts.lora && opts.checkpointDType ? opts.checkpointDType : 'float32';
  if (setting !== 'float32' && !opts.lora) throw new LoraError(`frozenDtype ${setting} needs LoRA: full-parameter training keeps float32 weights (set lora.r > 0, or frozenDtype auto / float32)`);
  return setting;
}

/**
 * Stores the frozen base weights as `dtype` (2 bytes an element instead of 4): every Linear weight and the
 * embedding table that no gradient reaches (after applyLora: all of them; the adapters and the norms stay float32).
 * Values round to nearest even, which is exact for weights loaded from a checkpoint of that dtype. The kernels widen
 * them inside the matmul / gather and accumulate in float32. Returns the bytes of weights converted (before → after).
 */
export async function storeFrozenWeights(model: Module, dtype: HalfDType): Promise<{ weights: number; bytesBefore: number; bytesAfter: number }> {
  if (!HALF_DTYPES.includes(dtype)) throw new LoraError(`storeFrozenWeights: dtype must be bfloat16 or float16, got ${JSON.stringify(dtype)}`);
  let weights = 0, bytesBefore = 0, bytesAfter = 0;
  for (const [path, module] of model.namedModules()) {
    if (!(module instanceof Linear) && !(module instanceof Embedding)) continue;
    const name = path ? `${path}.weight` : 'weight';
    const old = module.weight;
    if (old.requiresGrad || old.dtype !== 'float32') continue;
    const values = await old.read();
    const stored = T.keep(T.tensor(values, old.shape, dtype));
    stored.name = old.name;
    replaceParameter(model, name, stored);
    old.dispose();
    weights++;
    bytesBefore += old.size * 4;
    bytesAfter += Math.ceil(old.size / 2) * 4;
  }
  return { weights, bytesBefore, bytesAfter };
}

/**
 * Detaches every adapter; `merge` folds W += scaling·B·A first (in float32). Base parameters get back their
 * trainability, 16-bit ones widened to float32 first (full-parameter training keeps float32 weights).
 */
function detachAdapters(model: Module, merge: boolean): void {
  for (const adapter of loraAdapters(model)) {
    if (merge) {
      const old = adapter.base.weight;
      const merged = T.keep(adapter.mergedWeight());
      merged.name = old.name;
      replaceParameter(model, `${adapter.path}.weight`, merged);
      old.dispose();
    }
    adapter.base.adapter = null;
    adapter.dispose();
  }
  const frozen = frozenBy.get(model) ?? new Set<string>();
  for (const [name, p] of model.namedParameters()) {
    if (!frozen.has(name)) continue;
    if (p.dtype === 'float32') {
      p.requireGrad(true);
      continue;
    }
    const widened = T.keep(T.noGrad(() => T.cast(p, 'float32')));
    widened.name = p.name;
    replaceParameter(model, name, widened);
    p.dispose();
    widened.requireGrad(true);
  }
  frozenBy.delete(model);
}

/**
 * Folds every adapter into its base weight (W += alpha/r · B·A) and removes the adapters: the model is then a
 * plain Hugging Face model again (export it with encodeModel / toHfConfig). Throws when it has no adapters.
 */
export function mergeLora(model: Module): void {
  if (!hasLora(model)) throw new LoraError('mergeLora: the model has no LoRA adapters');
  detachAdapters(model, true);
}

/** Removes every adapter without merging (PEFT's unload): the model computes the base function again. */
export function removeLora(model: Module): void {
  detachAdapters(model, false);
}
