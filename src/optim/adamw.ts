// AdamW over named parameters with the fused backend kernel, and global gradient-norm clipping that never
// reads back: the norm and the clip factor stay on the device and feed the kernel's `scale` input.
import * as T from '../tensor/index.js';
import type { Tensor } from '../tensor/index.js';

export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Clip the global L2 norm of all gradients to this value (0 or absent: no clipping). */
  maxGradNorm?: number;
  /** Parameters exempt from weight decay (default: 1-D tensors, i.e. norm weights). */
  noDecay?: (name: string, t: Tensor) => boolean;
}

export interface StepResult {
  /** Global gradient norm before clipping: a 1-element device tensor (read it with the step's other scalars). */
  gradNorm: Tensor;
}

export class AdamW {
  private readonly m = new Map<string, Tensor>();
  private readonly v = new Map<string, Tensor>();
  private steps = 0;
  readonly opts: Required<Omit<AdamWOptions, 'noDecay'>> & Pick<AdamWOptions, 'noDecay'>;

  constructor(private readonly params: Map<string, Tensor>, opts: AdamWOptions) {
    this.opts = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 0, ...opts };
    const options = this.opts;
    const problems: string[] = [];
    if (!(options.lr >= 0)) problems.push(`lr must be ≥ 0, got ${options.lr}`);
    if (!(options.beta1 >= 0 && options.beta1 < 1)) problems.push(`beta1 must be in [0, 1), got ${options.beta1}`);
    if (!(options.beta2 >= 0 && options.beta2 < 1)) problems.push(`beta2 must be in [0, 1), got ${options.beta2}`);
    if (!(options.eps > 0)) problems.push(`eps must be > 0, got ${options.eps}`);
    if (!(options.weightDecay >= 0)) problems.push(`weightDecay must be ≥ 0, got ${options.weightDecay}`);
    if (!(options.maxGradNorm >= 0)) problems.push(`maxGradNorm must be ≥ 0, got ${options.maxGradNorm}`);
    if (problems.length) throw new RangeError(`AdamW: ${problems.join('; ')}`);
  }

  /** Completed steps (the bias-correction count). */
  get stepCount(): number {
    return this.steps;
  }

  /** Global L2 norm of the gradients present, as a 1-element device tensor. */
  gradNorm(): Tensor {
    const ss = T.zeros([1]);
    const backend = T.getBackend();
    for (const p of this.params.values()) if (p.grad) backend.kernels.sumSquares(p.grad.storage, ss.storage, p.grad.size, true);
    const norm = T.sqrt(ss);
    ss.dispose();
    return norm;
  }

  /**
   * Applies one update to every parameter that has a gradient, then frees the gradients (zero_grad).
   * `lr` overrides the configured rate for this step (schedules). `gradNorm`, when the caller already computed it
   * with gradNorm() (e.g. to check it before stepping), is used instead of computing it again and returned as is.
   */
  step(lr = this.opts.lr, gradNorm: Tensor = T.noGrad(() => this.gradNorm())): StepResult {
    const opts = this.opts;
    this.steps++;
    const scale = T.noGrad(() => T.tidy(() => opts.maxGradNorm > 0
      ? T.minimum(T.div(opts.maxGradNorm, T.addScalar(gradNorm, 1e-6)), 1)
      : T.ones([1])));
    const backend = T.getBackend();
    const noDecay = opts.noDecay ?? ((_n: string, t: Tensor) => t.rank < 2);
    // Moments first, so the updates below are consecutive kernel calls (WebGPU records them as multi-tensor dispatches).
    for (const [name, p] of this.params) {
      if (!p.grad || this.m.has(name)) continue;
      this.m.set(name, T.keep(T.zeros(p.shape)));
      this.v.set(name, T.keep(T.zeros(p.shape)));
    }
    for (const [name, p] of this.params) {
      if (!p.grad) continue;
      backend.kernels.adamw(p.storage, p.grad.storage, this.m.get(name)!.storage, this.v.get(name)!.storage, scale.storage, {
        lr, beta1: opts.beta1, beta2: opts.beta2, eps: opts.eps, weightDecay: noDecay(name, p) ? 0 : opts.weightDecay, step: this.steps,
      }, p.size);
      p.grad.dispose();
      p.grad = null;
    }
    scale.dispose();
    return { gradNorm };
  }

  /** Frees gradients without updating (skipped steps, e.g. a non-finite loss). */
  zeroGrad(): void {
    for (const param of this.params.values()) {
      param.grad?.dispose();
      param.grad = null;
    }
  }

  /** Moment tensors by parameter name (checkpointing): `name.exp_avg`, `name.exp_avg_sq`. */
  state(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [name, firstMoment] of this.m) {
      out.set(`${name}.exp_avg`, firstMoment);
      out.set(`${name}.exp_avg_sq`, this.v.get(name)!);
    }
    return out;
  }

  /** Restores moments and the step count saved from state(). Every moment must belong to a parameter of this
   *  optimizer, with its shape, and come in pairs (exp_avg with exp_avg_sq); nothing changes unless all do. */
  loadState(state: Map<string, Tensor>, steps: number): void {
    const problems: string[] = [];
    if (!Number.isSafeInteger(steps) || steps < 0) problems.push(`the step count must be a non-negative integer, got ${steps}`);
    for (const [key, moment] of state) {
      const match = /^(.*)\.(exp_avg|exp_avg_sq)$/.exec(key);
      const param = match ? this.params.get(match[1]) : undefined;
      if (!match || !param) problems.push(`'${key}' is not a moment of a parameter of this optimizer`);
      else if (moment.shape.length !== param.shape.length || moment.shape.some((size, i) => size !== param.shape[i])) {
        problems.push(`'${key}' has shape [${moment.shape.join(', ')}], the parameter has [${param.shape.join(', ')}]`);
      } else if (!state.has(`${match[1]}.${match[2] === 'exp_avg' ? 'exp_avg_sq' : 'exp_avg'}`)) {
        problems.push(`'${key}' has no ${match[2] === 'exp_avg' ? 'exp_avg_sq' : 'exp_avg'} partner`);
      }
    }
    if (problems.length) throw new RangeError(`AdamW.loadState: ${problems.join('; ')}`);
    this.disposeState();
    for (const name of this.params.keys()) {
      const firstMoment = state.get(`${name}.exp_avg`);
      const secondMoment = state.get(`${name}.exp_avg_sq`);
      if (!firstMoment || !secondMoment) continue;
      this.m.set(name, T.keep(firstMoment));
      this.v.set(name, T.keep(secondMoment));
    }
    this.steps = steps;
  }

  private disposeState(): void {
    for (const moment of [...this.m.values(), ...this.v.values()]) moment.dispose();
    this.m.clear();
    this.v.clear();
  }

  dispose(): void {
    this.disposeState();
  }
}
