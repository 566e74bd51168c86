// A small PyTorch-like module system: a Module owns named parameters and named child modules; names join
// with dots (model.layers.0.self_attn.q_proj.weight). Every parameter is seeded from the module tree's seed
// and its full dotted name, so a weight does not depend on which other parameters exist or their order.
import * as T from '../tensor/index.js';
import type { Tensor } from '../tensor/index.js';
import type { HalfDType } from '../backend/types.js';

/** Deterministic per-parameter seed from the model seed and the parameter's full dotted name. */
export function paramSeed(seed: number, name: string): number {
  let hash = (seed ^ 0x9e3779b9) >>> 0;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return hash;
}

/** Where a module sits in its tree: the tree's seed and the module's dotted prefix ('' or 'a.b.'). */
export interface ModuleInit {
  /** Seed of the whole tree (default 0); each parameter draws from paramSeed(seed, fullName). */
  seed?: number;
  /** Dotted path of this module inside its root, ending with '.' (default '' = a root module). */
  prefix?: string;
}

/** How a new parameter is filled: constant ones, zeros, or normal(0, std) seeded by its full name. */
export type ParameterInit = 'ones' | 'zeros' | { std: number };

/** While set (buildWithFrozenPlaceholders), normal-initialised weights are created as frozen 16-bit placeholders. */
let placeholderDType: HalfDType | null = null;

/**
 * Builds a module tree whose randomly initialised weights (every Linear and Embedding weight) are frozen zero
 * placeholders stored as `dtype`, for a loader to replace tensor by tensor: a LoRA base loaded this way never exists
 * as float32 (a 0.5 B model's float32 copy alone would take half of WASM's 4 GiB). Constant-initialised parameters
 * (norm weights, biases) stay float32 and trainable.
 */
export function buildWithFrozenPlaceholders<M>(dtype: HalfDType, build: () => M): M {
  const previous = placeholderDType;
  placeholderDType = dtype;
  try {
    return build();
  } finally {
    placeholderDType = previous;
  }
}

export class Module {
  private readonly ownParameters = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();
  protected readonly seed: number;
  protected readonly prefix: string;

  constructor(init: ModuleInit = {}) {
    this.seed = init.seed ?? 0;
    this.prefix = init.prefix ?? '';
  }

  /** Creates, registers and returns a trainable parameter (kept out of tidy scopes, named by its full path). */
  protected addParameter(name: string, shape: readonly number[], init: ParameterInit): Tensor {
    this.assertFreeName(name);
    const fullName = this.prefix + name;
    if (placeholderDType && typeof init === 'object') {
      const size = shape.reduce((a, b) => a * b, 1);
      const placeholder = T.keep(T.tensor(new Float32Array(size), shape, placeholderDType));
      placeholder.name = fullName;
      this.ownParameters.set(name, placeholder);
      return placeholder;
    }
    const t = init === 'ones' ? T.ones(shape) : init === 'zeros' ? T.zeros(shape) : T.randNormal(shape, paramSeed(this.seed, fullName), 0, init.std);
    t.name = fullName;
    this.ownParameters.set(name, T.keep(t.requireGrad()));
    return t;
  }

  /** Builds a child under `name`; the builder gets the child's place in the tree (seed and prefix). */
  protected addModule<M extends Module>(name: string, build: (init: Required<ModuleInit>) => M): M {
    this.assertFreeName(name);
    const child = build({ seed: this.seed, prefix: `${this.prefix}${name}.` });
    this.children.set(name, child);
    return child;
  }

  /** This module's own parameter `name` (children excluded); throws naming it when absent. */
  protected param(name: string): Tensor {
    const t = this.ownParameters.get(name);
    if (!t) throw new Error(`${this.constructor.name}: no parameter '${this.prefix}${name}'`);
    return t;
  }

  /** (dotted name, tensor) for every parameter, own parameters first, then each child's, in creation order. */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [name, t] of this.ownParameters) out.push([prefix + name, t]);
    for (const [name, child] of this.children) out.push(...child.namedParameters(`${prefix}${name}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** (dotted name, module) for this module ('' ) and every descendant, depth first. */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix.replace(/\.$/, ''), this]];
    for (const [name, child] of this.children) out.push(...child.namedModules(`${prefix}${name}.`));
    return out;
  }

  /** The parameter at a dotted path relative to this module; throws naming it when absent. */
  getParameter(path: string): Tensor {
    const { owner, leaf } = this.resolve(path);
    const t = owner?.ownParameters.get(leaf);
    if (!t) throw new Error(`${this.constructor.name}: no parameter '${path}'`);
    return t;
  }

  /**
   * Replaces the parameter at a dotted path (loading weights, gradcheck probes). The replacement must have
   * the same shape and be float32, or bfloat16 / float16 for a frozen weight (lora.ts storeFrozenWeights); the
   * old tensor is not disposed (the caller owns that choice).
   */
  setParameter(path: string, t: Tensor): void {
    const old = this.getParameter(path);
    const frozen16 = (t.dtype === 'bfloat16' || t.dtype === 'float16') && !t.requiresGrad;
    if ((t.dtype !== 'float32' && !frozen16) || t.shape.length !== old.shape.length || t.shape.some((d, i) => d !== old.shape[i])) {
      throw new RangeError(`${this.constructor.name}.setParameter: '${path}' must be float32 [${old.shape.join(', ')}], got ${t.dtype} [${t.shape.join(', ')}]`);
    }
    const { owner, leaf } = this.resolve(path);
    owner!.ownParameters.set(leaf, t);
  }

  /** Frees every parameter of the tree (and its gradient). */
  dispose(): void {
    for (const t of this.parameters()) t.dispose();
  }

  private resolve(path: string): { owner: Module | undefined; leaf: string } {
    const parts = path.split('.');
    const leaf = parts.pop()!;
    let owner: Module | undefined = this;
    for (const part of parts) owner = owner?.children.get(part);
    return { owner, leaf };
  }

  private assertFreeName(name: string): void {
    if (!name || name.includes('.')) throw new Error(`${this.constructor.name}: invalid parameter/module name '${name}' (non-empty, no dots)`);
    if (this.ownParameters.has(name) || this.children.has(name)) throw new Error(`${this.constructor.name}: '${this.prefix}${name}' is already registered`);
  }
}

/** An indexed list of child modules, named '0', '1', … (model.layers.{i}). */
export class ModuleList<M extends Module> extends Module implements Iterable<M> {
  private readonly items: M[] = [];

  constructor(count: number, build: (init: Required<ModuleInit>, index: number) => M, init: ModuleInit = {}) {
    super(init);
    for (let i = 0; i < count; i++) this.items.push(this.addModule(String(i), (at) => build(at, i)));
  }

  get length(): number {
    return this.items.length;
  }

  at(index: number): M {
    const m = this.items[index];
    if (!m) throw new RangeError(`ModuleList: index ${index} outside [0, ${this.items.length})`);
    return m;
  }

  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}

/**
 * A live name → parameter view of a module tree, in creation order: `set` replaces the module's parameter
 * (so the next forward uses it); names are fixed by the modules, so adding or removing entries is refused.
 */
export class ParameterDict extends Map<string, Tensor> {
  private readonly root: Module;

  constructor(root: Module) {
    super();
    this.root = root;
    for (const [name, t] of root.namedParameters()) super.set(name, t);
  }

  override set(name: string, t: Tensor): this {
    // Map's constructor never calls set here (no iterable), so `root` is always defined.
    if (!super.has(name)) throw new Error(`ParameterDict: no parameter '${name}' (the module tree fixes the names)`);
    this.root.setParameter(name, t);
    return super.set(name, t);
  }

  override delete(name: string): boolean {
    throw new Error(`ParameterDict: cannot remove '${name}'; replace a parameter with set()`);
  }

  override clear(): void {
    throw new Error('ParameterDict: cannot remove parameters; replace them with set()');
  }
}
