// Fused kernels of the transformer policy and its optimizer: the contract every backend's `kernels` object
// satisfies, and the one argument-signature table that validates every call on every backend.
// Every tensor argument is a contiguous float32 Storage unless marked int32; shapes are given in the args.
// Each method's math is stated exactly here: the float64 reference implements it literally, the product
// backends must match it to float32 tolerance.
//
// Adding a kernel: a method here, a line in KERNEL_SIGNATURES (TypeScript rejects a missing line or a wrong
// parameter count), and one implementation per backend (webgpu/, wasm/, reference/ model-kernel objects).

import {
  type AdamWArgs, type AttentionArgs, type DType, KernelError, type LowRankArgs, type MatmulLowRankArgs, type RopeArgs, type Storage, type TokenLossArgs, type View,
  sizeOf, viewExtent,
} from './types.js';

export type { AdamWArgs, AttentionArgs, LowRankArgs, MatmulLowRankArgs, RopeArgs, TokenLossArgs } from './types.js';

export interface ModelKernels {
  /**
   * out[outView(i)] = x[xView(i)] over `shape` (raw 32-bit words, either dtype): a strided write, e.g. new
   * keys into a KV cache [batch, kvHeads, maxSeqLen, headDim] at a position. Output elements outside the
   * view are untouched; the out view must not map two indices to one element.
   */
  writeView(x: Storage, xView: View, out: Storage, outView: View, shape: readonly number[]): void;

  /** See AttentionArgs. keyStart: int32 [batch] or null. */
  attention(q: Storage, k: Storage, v: Storage, keyStart: Storage | null, out: Storage, lse: Storage, args: AttentionArgs): void;
  /**
   * Gradients of attention, recomputing probabilities from lse: p_ij = exp(s_ij − lse_i) over visible keys,
   * D_i = Σ_d gOut_i·out_i, dS_ij = p_ij·(gOut_i·v_j − D_i);
   * gq_i = scale·Σ_j dS_ij k_j; gk_j = scale·Σ_{heads sharing the kv head, i} dS_ij q_i; gv_j = Σ p_ij gOut_i.
   * Requires kvStride == tk. gq [batch, heads, tq, headDim]; gk, gv [batch, kvHeads, tk, headDim], all
   * overwritten (key rows nobody sees get 0).
   */
  attentionBackward(
    q: Storage, k: Storage, v: Storage, keyStart: Storage | null, out: Storage, lse: Storage, gOut: Storage,
    gq: Storage, gk: Storage, gv: Storage, args: AttentionArgs,
  ): void;

  /**
   * Per row r of logits [rows, cols] with target id t = targets[r] (int32):
   *   lse_r = log Σ_c exp(x_c); logp_r = x_t − lse_r (0 when t is outside [0, cols): ignored rows);
   *   entropy_r = lse_r − Σ_c softmax(x)_c · x_c.
   * One pass over the row (online log-sum-exp); never writes [rows, cols].
   */
  logSoftmaxGather(logits: Storage, targets: Storage, logp: Storage, entropy: Storage, lse: Storage, rows: number, cols: number): void;
  /**
   * gLogits[r, c] = gLogp_r·([c == t] − p_c) − gEntropy_r·p_c·(x_c − lse_r + entropy_r), with p_c = exp(x_c − lse_r)
   * (the gLogp term is 0 for ignored rows). Overwrites gLogits [rows, cols].
   */
  logSoftmaxGatherBackward(
    logits: Storage, targets: Storage, lse: Storage, entropy: Storage, gLogp: Storage, gEntropy: Storage,
    gLogits: Storage, rows: number, cols: number,
  ): void;

  /** out[r, c] = x[r, c]·rstd_r·weight[c], rstd_r = 1 / sqrt(mean_c x[r, c]² + eps); writes out and rstd [rows]. */
  rmsNorm(x: Storage, weight: Storage, out: Storage, rstd: Storage, rows: number, cols: number, eps: number): void;
  /**
   * gx[r, c] = rstd_r·weight[c]·g[r, c] − x[r, c]·rstd_r³·(1/cols)·Σ_k g[r, k]·weight[k]·x[r, k];
   * gWeight[c] = Σ_r g[r, c]·x[r, c]·rstd_r. Overwrites gx and gWeight.
   */
  rmsNormBackward(x: Storage, weight: Storage, rstd: Storage, gOut: Storage, gx: Storage, gWeight: Storage, rows: number, cols: number): void;

  /**
   * See RopeArgs: f_j = args.inverseFrequencies[j] (a float64 host table, scaled RoPE) when given, else
   * theta^(−2j/headDim). positions: int32 [batch, t]. out may not alias x.
   */
  rope(x: Storage, positions: Storage, out: Storage, args: RopeArgs): void;

  /** out = silu(gate)·up over n elements (silu(g) = g·sigmoid(g)). */
  swiglu(gate: Storage, up: Storage, out: Storage, n: number): void;
  /** gGate = gOut·up·sigmoid(g)·(1 + g·(1 − sigmoid(g))); gUp = gOut·silu(g). */
  swigluBackward(gate: Storage, up: Storage, gOut: Storage, gGate: Storage, gUp: Storage, n: number): void;

  /**
   * See TokenLossArgs. logp, oldLogp, adv, weight, loss: float32 [n]; stats: float32 [3, n] with
   * valid_i = (weight[i] ≠ 0 ? 1 : 0):
   *   stats[0, i] = valid_i·(r < 1 − epsLow and A < 0)   (low clip active, TRL's definition)
   *   stats[1, i] = valid_i·(r > 1 + epsHigh and A > 0)  (high clip active)
   *   stats[2, i] = valid_i·((r − 1) − d)                (k3 estimate of KL(old ‖ new) per token)
   */
  tokenLoss(logp: Storage, oldLogp: Storage, adv: Storage, weight: Storage, loss: Storage, stats: Storage, n: number, args: TokenLossArgs): void;
  /**
   * gLogp[i] = gLoss[i]·weight[i]·∂l/∂logp, with ∂l/∂logp = −A·r when l1 is the active branch (l1 ≥ l2, ties
   * → l1) and, for dual-clip, not replaced by the constant −A·c (replaced only when −A·c < l); 0 when the
   * clipped branch or the dual-clip constant is active, and 0 when |logp − oldLogp| > C (clamped).
   * The branch is chosen exactly as in the forward. Overwrites gLogp [n].
   */
  tokenLossBackward(
    logp: Storage, oldLogp: Storage, adv: Storage, weight: Storage, gLoss: Storage, gLogp: Storage, n: number, args: TokenLossArgs,
  ): void;

  /**
   * See LowRankArgs: out [rows, cols] += scale · u [rows, rank] · op(l), in place. The low-rank half of a LoRA
   * projection fused into one pass over the matmul's output (forward: out = x·Wᵀ, u = x·Aᵀ, l = B; input
   * gradient: out = gy·W, u = gy·B, l = A with transL): no [rows, cols] temporary, no separate add.
   * out may not alias u or l.
   */
  lowRankAdd(u: Storage, l: Storage, out: Storage, args: LowRankArgs): void;
  /**
   * See MatmulLowRankArgs: out [rows, cols] = x·op(w) + scale · u·op(l), overwritten. The LoRA projection with
   * the rank-r product as the matmul's epilogue, so out is written once (forward: x, w = W with transB, u = x·Aᵀ,
   * l = B; input gradient: x = gy, w = W, u = gy·B, l = A with transL). w may be float32, bfloat16 or float16.
   * out may not alias any input.
   */
  matmulLowRank(x: Storage, w: Storage, u: Storage, l: Storage, out: Storage, args: MatmulLowRankArgs): void;

  /**
   * One token per row of logits [rows, cols], drawn with uniforms [rows] ∈ [0, 1): with s = logits·(1/temperature)
   * and p = softmax(s), the smallest c whose cumulative Σ_{j ≤ c} p_j (index order) exceeds u·Σp — what sampleToken
   * (src/nn/sampling.ts) picks without top-k/top-p; temperature 0: the first maximum (uniforms unread). out [rows, 2]:
   * (token as a float, exact since cols ≤ 2²⁴; its log-probability under softmax(s), temperature 1 when greedy).
   * Generation reads these 2 floats per row instead of the row. out may not alias an input.
   */
  sampleRows(logits: Storage, uniforms: Storage, out: Storage, rows: number, cols: number, temperature: number): void;

  /** See AdamWArgs: updates param, m and v in place. */
  adamw(param: Storage, grad: Storage, m: Storage, v: Storage, scale: Storage, args: AdamWArgs, n: number): void;
  /** out[0] = (accumulate ? out[0] : 0) + Σ_{i<n} x[i]² (global grad norm without readback). */
  sumSquares(x: Storage, out: Storage, n: number, accumulate: boolean): void;
}

// ------------------------------------------------------------------------------------ argument signatures

/** Most columns sampleRows takes: its token indices travel as float32, exact up to 2²⁴. */
export const MAX_SAMPLE_COLS = 2 ** 24;

/** Largest log-ratio clamp whose exp stays finite, with room for the advantage factor, in float32. */
export const MAX_LOG_RATIO_CLAMP = 80;

/** Every invalid TokenLossArgs field, described (empty when valid). Shared by the kernels and loss_ops.ts. */
export function tokenLossArgsProblems(args: TokenLossArgs): string[] {
  const bad: string[] = [];
  if (!(args.epsLow >= 0 && args.epsLow < 1)) bad.push(`epsLow must be in [0, 1), got ${args.epsLow}`);
  if (!(args.epsHigh >= 0 && Number.isFinite(args.epsHigh))) bad.push(`epsHigh must be a finite number ≥ 0, got ${args.epsHigh}`);
  if (!(args.dualClip === 0 || (args.dualClip > 1 && Number.isFinite(args.dualClip)))) {
    bad.push(`dualClip must be 0 (off) or a finite number > 1, got ${args.dualClip}`);
  }
  if (!(args.logRatioClamp > 0 && args.logRatioClamp <= MAX_LOG_RATIO_CLAMP)) {
    bad.push(`logRatioClamp must be in (0, ${MAX_LOG_RATIO_CLAMP}], got ${args.logRatioClamp}`);
  }
  return bad;
}

/** Throws a KernelError listing every invalid TokenLossArgs field (and n). */
export function checkTokenLossArgs(kernel: string, n: number, args: TokenLossArgs): void {
  const bad = [...countProblems({ n }), ...tokenLossArgsProblems(args)];
  if (bad.length) throw new KernelError(kernel, bad.join('; '));
}

const ATTENTION_COUNTS = ['batch', 'heads', 'kvHeads', 'tq', 'tk', 'kvStride', 'headDim', 'qOffset'] as const;

/** Every invalid AttentionArgs field, described (empty when valid). */
export function attentionArgsProblems(args: AttentionArgs): string[] {
  const bad = countProblems(Object.fromEntries(ATTENTION_COUNTS.map((key) => [key, args[key]])));
  if (bad.length) return bad;
  if (args.headDim === 0) bad.push('headDim must be at least 1');
  if (args.kvHeads === 0 || args.heads % args.kvHeads !== 0) bad.push(`heads (${args.heads}) must be a multiple of kvHeads (${args.kvHeads})`);
  if (args.kvStride < args.tk) bad.push(`kvStride (${args.kvStride}) must be at least tk (${args.tk})`);
  if (!Number.isFinite(args.scale)) bad.push(`scale must be finite, got ${args.scale}`);
  return bad;
}

function ropeArgsProblems(args: RopeArgs): string[] {
  const bad = countProblems({ batch: args.batch, t: args.t, heads: args.heads, headDim: args.headDim });
  if (!bad.length && args.headDim % 2 !== 0) bad.push(`headDim ${args.headDim} must be even`);
  if (!(args.theta > 0)) bad.push(`theta must be positive, got ${args.theta}`);
  const table = args.inverseFrequencies;
  if (table !== undefined && table !== null) {
    if (!(table instanceof Float64Array)) bad.push('inverseFrequencies must be a Float64Array or null');
    else if (!bad.length && table.length !== args.headDim / 2) bad.push(`inverseFrequencies has ${table.length} entries, headDim ${args.headDim} needs ${args.headDim / 2}`);
    else if (table.some((f) => !Number.isFinite(f) || f < 0)) bad.push('inverseFrequencies must be finite and non-negative');
  }
  return bad;
}

function lowRankArgsProblems(args: LowRankArgs): string[] {
  const bad = countProblems({ rows: args.rows, cols: args.cols, rank: args.rank });
  if (!Number.isFinite(args.scale)) bad.push(`scale must be finite, got ${args.scale}`);
  if (typeof args.transL !== 'boolean') bad.push(`transL must be true or false, got ${JSON.stringify(args.transL)}`);
  return bad;
}

function matmulLowRankArgsProblems(args: MatmulLowRankArgs): string[] {
  const bad = [...lowRankArgsProblems(args), ...countProblems({ inner: args.inner })];
  if (typeof args.transB !== 'boolean') bad.push(`transB must be true or false, got ${JSON.stringify(args.transB)}`);
  return bad;
}

function adamwArgsProblems(args: AdamWArgs): string[] {
  return Number.isInteger(args.step) && args.step >= 1 ? [] : [`step must be a positive integer, got ${args.step}`];
}

function countProblems(counts: Record<string, number>): string[] {
  return Object.entries(counts)
    .filter(([, v]) => !Number.isInteger(v) || v < 0)
    .map(([name, v]) => `${name} must be a non-negative integer, got ${v}`);
}

/** One call's arguments by parameter name. */
type Named = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A positional parameter of a model kernel. */
export type ParamSpec =
  /** A storage the kernel reads ('input'), writes ('output'), or reads and writes in place ('inout');
   *  'optional' may be null. `elements`: how many elements it must hold, from the other arguments. */
  | { name: string; role: 'input' | 'output' | 'inout' | 'optional'; dtype: DType | 'any'; elements?: (a: Named) => number }
  /** A non-negative integer (rows, cols, n). */
  | { name: string; role: 'count' }
  /** A number or flag passed through to the kernel. */
  | { name: string; role: 'scalar' }
  /** An args struct, with the validator of its fields. */
  | { name: string; role: 'args'; problems: (args: any) => string[] } // eslint-disable-line @typescript-eslint/no-explicit-any
  /** A strided view or a shape (checked by the kernel's `check`). */
  | { name: string; role: 'view' | 'shape' };

type KernelFn = (...args: any[]) => void; // eslint-disable-line @typescript-eslint/no-explicit-any

/** One ParamSpec per element of a parameter tuple (so an entry with the wrong arity does not compile). */
type SpecsOf<T extends readonly unknown[]> = { readonly [I in keyof T]: ParamSpec };

export interface KernelSignature<F extends KernelFn = KernelFn> {
  /** One entry per positional parameter, in order. */
  readonly params: SpecsOf<Parameters<F>>;
  /** Rules across parameters, run once every count and args struct is valid. */
  readonly check?: (a: Named) => string[];
}

const input = (name: string, elements: (a: Named) => number, dtype: DType = 'float32'): ParamSpec => ({ name, role: 'input', dtype, elements });
const output = (name: string, elements: (a: Named) => number): ParamSpec => ({ name, role: 'output', dtype: 'float32', elements });
const inout = (name: string, elements: (a: Named) => number): ParamSpec => ({ name, role: 'inout', dtype: 'float32', elements });
const count = (name: string): ParamSpec => ({ name, role: 'count' });
const scalar = (name: string): ParamSpec => ({ name, role: 'scalar' });

// Element counts of the attention layouts (see AttentionArgs).
const qElems = ({ args: a }: Named) => a.batch * a.heads * a.tq * a.headDim;
const lseElems = ({ args: a }: Named) => a.batch * a.heads * a.tq;
const kvElems = ({ args: a }: Named) => a.batch * a.kvHeads * a.kvStride * a.headDim;
const keyStartElems = ({ args: a }: Named) => a.batch;
const attentionArgs: ParamSpec = { name: 'args', role: 'args', problems: attentionArgsProblems };
const tokenLossArgs: ParamSpec = { name: 'args', role: 'args', problems: tokenLossArgsProblems };
const rowsTimesCols = ({ rows, cols }: Named) => rows * cols;
const perRow = ({ rows }: Named) => rows;
const perCol = ({ cols }: Named) => cols;
const perToken = ({ n }: Named) => n;
const one = () => 1;

function writeViewProblems({ x, xView, out, outView, shape }: Named): string[] {
  const dims = shape as readonly number[];
  if (xView.strides.length !== dims.length || outView.strides.length !== dims.length) {
    return [`views have ${xView.strides.length} and ${outView.strides.length} strides for a rank-${dims.length} shape`];
  }
  const bad = countProblems(Object.fromEntries(dims.map((d, i) => [`shape[${i}]`, d])));
  if (bad.length || sizeOf(dims) === 0) return bad;
  for (const [what, view, storage] of [['x', xView, x], ['out', outView, out]] as const) {
    bad.push(...countProblems({ [`${what} view offset`]: view.offset }));
    bad.push(...countProblems(Object.fromEntries((view as View).strides.map((st, i) => [`${what} view stride ${i}`, st]))));
    if (bad.length) continue;
    const extent = viewExtent(view, dims);
    if (extent >= storage.size) bad.push(`${what} view reaches element ${extent} of ${storage.size}`);
  }
  if (dims.some((d, i) => d > 1 && outView.strides[i] === 0)) bad.push('out view maps several elements to one (stride 0)');
  return bad;
}

/** The argument signature of every model kernel: the one place argument rules live, for every backend. */
export const KERNEL_SIGNATURES: { readonly [K in keyof ModelKernels]: KernelSignature<ModelKernels[K]> } = {
  writeView: {
    params: [
      { name: 'x', role: 'input', dtype: 'any' }, { name: 'xView', role: 'view' },
      { name: 'out', role: 'inout', dtype: 'any' }, { name: 'outView', role: 'view' }, { name: 'shape', role: 'shape' },
    ],
    check: writeViewProblems,
  },
  attention: {
    params: [
      input('q', qElems), input('k', kvElems), input('v', kvElems),
      { name: 'keyStart', role: 'optional', dtype: 'int32', elements: keyStartElems },
      output('out', qElems), output('lse', lseElems), attentionArgs,
    ],
  },
  attentionBackward: {
    params: [
      input('q', qElems), input('k', kvElems), input('v', kvElems),
      { name: 'keyStart', role: 'optional', dtype: 'int32', elements: keyStartElems },
      input('out', qElems), input('lse', lseElems), input('gOut', qElems),
      output('gq', qElems), output('gk', kvElems), output('gv', kvElems), attentionArgs,
    ],
    check: ({ args }) => (args.kvStride === args.tk ? [] : [`requires kvStride == tk (got ${args.kvStride} and ${args.tk})`]),
  },
  logSoftmaxGather: {
    params: [
      input('logits', rowsTimesCols), input('targets', perRow, 'int32'),
      output('logp', perRow), output('entropy', perRow), output('lse', perRow), count('rows'), count('cols'),
    ],
    check: ({ rows, cols }) => (rows > 0 && cols === 0 ? ['cols must be at least 1'] : []),
  },
  logSoftmaxGatherBackward: {
    params: [
      input('logits', rowsTimesCols), input('targets', perRow, 'int32'), input('lse', perRow), input('entropy', perRow),
      input('gLogp', perRow), input('gEntropy', perRow), output('gLogits', rowsTimesCols), count('rows'), count('cols'),
    ],
  },
  rmsNorm: {
    params: [input('x', rowsTimesCols), input('weight', perCol), output('out', rowsTimesCols), output('rstd', perRow), count('rows'), count('cols'), scalar('eps')],
  },
  rmsNormBackward: {
    params: [
      input('x', rowsTimesCols), input('weight', perCol), input('rstd', perRow), input('gOut', rowsTimesCols),
      output('gx', rowsTimesCols), output('gWeight', perCol), count('rows'), count('cols'),
    ],
  },
  rope: {
    params: [
      input('x', ({ args: a }) => a.batch * a.t * a.heads * a.headDim), input('positions', ({ args: a }) => a.batch * a.t, 'int32'),
      output('out', ({ args: a }) => a.batch * a.t * a.heads * a.headDim), { name: 'args', role: 'args', problems: ropeArgsProblems },
    ],
    check: ({ x, out }) => (x === out ? ['out may not alias x'] : []),
  },
  swiglu: { params: [input('gate', perToken), input('up', perToken), output('out', perToken), count('n')] },
  swigluBackward: {
    params: [input('gate', perToken), input('up', perToken), input('gOut', perToken), output('gGate', perToken), output('gUp', perToken), count('n')],
  },
  tokenLoss: {
    params: [
      input('logp', perToken), input('oldLogp', perToken), input('adv', perToken), input('weight', perToken),
      output('loss', perToken), output('stats', ({ n }) => 3 * n), count('n'), tokenLossArgs,
    ],
  },
  tokenLossBackward: {
    params: [
      input('logp', perToken), input('oldLogp', perToken), input('adv', perToken), input('weight', perToken), input('gLoss', perToken),
      output('gLogp', perToken), count('n'), tokenLossArgs,
    ],
  },
  sampleRows: {
    params: [input('logits', rowsTimesCols), input('uniforms', perRow), output('out', ({ rows }) => 2 * rows), count('rows'), count('cols'), scalar('temperature')],
    check: ({ logits, uniforms, out, rows, cols, temperature }) => [
      ...(rows > 0 && cols === 0 ? ['cols must be at least 1'] : []),
      ...(cols > MAX_SAMPLE_COLS ? [`cols ${cols} exceeds ${MAX_SAMPLE_COLS} (tokens are returned as float32)`] : []),
      ...(Number.isFinite(temperature) && temperature >= 0 ? [] : [`temperature must be a finite number ≥ 0, got ${temperature}`]),
      ...(out === logits || out === uniforms ? ['out may not alias logits or uniforms'] : []),
    ],
  },
  lowRankAdd: {
    params: [
      input('u', ({ args: a }) => a.rows * a.rank), input('l', ({ args: a }) => a.cols * a.rank),
      inout('out', ({ args: a }) => a.rows * a.cols), { name: 'args', role: 'args', problems: lowRankArgsProblems },
    ],
    check: ({ u, l, out }) => (out === u || out === l ? ['out may not alias u or l'] : []),
  },
  matmulLowRank: {
    params: [
      input('x', ({ args: a }) => a.rows * a.inner),
      { name: 'w', role: 'input', dtype: 'any', elements: ({ args: a }) => a.inner * a.cols },
      input('u', ({ args: a }) => a.rows * a.rank), input('l', ({ args: a }) => a.cols * a.rank),
      output('out', ({ args: a }) => a.rows * a.cols), { name: 'args', role: 'args', problems: matmulLowRankArgsProblems },
    ],
    check: ({ x, w, u, l, out }) => {
      const bad: string[] = [];
      if (w.dtype === 'int32') bad.push('w must be float32, bfloat16 or float16, got int32');
      if ([x, w, u, l].includes(out)) bad.push('out may not alias x, w, u or l');
      return bad;
    },
  },
  adamw: {
    params: [
      inout('param', perToken), input('grad', perToken), inout('m', perToken), inout('v', perToken), input('scale', one),
      { name: 'args', role: 'args', problems: adamwArgsProblems }, count('n'),
    ],
  },
  sumSquares: { params: [input('x', perToken), inout('out', one), count('n'), scalar('accumulate')] },
};

function isStorage(value: unknown): value is Storage {
  return typeof value === 'object' && value !== null && 'dtype' in value && 'size' in value;
}

/** Every problem with one call's arguments against its signature (empty when valid). */
export function kernelCallProblems(signature: KernelSignature, args: readonly unknown[]): string[] {
  const params = signature.params as readonly ParamSpec[];
  const named: Named = {};
  params.forEach((p, i) => { named[p.name] = args[i]; });
  const bad: string[] = [];
  if (args.length !== params.length) bad.push(`expects ${params.length} arguments, got ${args.length}`);
  for (const p of params) {
    const value = named[p.name];
    if (p.role === 'count') bad.push(...countProblems({ [p.name]: value as number }));
    else if (p.role === 'args') bad.push(...(value && typeof value === 'object' ? p.problems(value) : [`${p.name} must be an object`]));
  }
  const shapesKnown = bad.length === 0;
  for (const p of params) {
    if (p.role !== 'input' && p.role !== 'output' && p.role !== 'inout' && p.role !== 'optional') continue;
    const value = named[p.name];
    if (value === null && p.role === 'optional') continue;
    if (!isStorage(value)) { bad.push(`${p.name} must be a storage, got ${value === null ? 'null' : typeof value}`); continue; }
    if (p.dtype !== 'any' && value.dtype !== p.dtype) bad.push(`${p.name} must be ${p.dtype}, got ${value.dtype}`);
    if (shapesKnown && p.elements) {
      const needed = p.elements(named);
      if (value.size < needed) bad.push(`${p.name} has ${value.size} elements, needs ${needed}`);
    }
  }
  if (bad.length === 0 && signature.check) bad.push(...signature.check(named));
  return bad;
}

/** Throws a KernelError naming the kernel and listing every bad argument of the call. */
export function validateKernelCall(kernel: keyof ModelKernels, args: readonly unknown[]): void {
  const bad = kernelCallProblems(KERNEL_SIGNATURES[kernel], args);
  if (bad.length) throw new KernelError(kernel, bad.join('; '));
}

/**
 * Wraps a backend's kernel object so every call is validated against KERNEL_SIGNATURES first; the
 * implementations then check only what is theirs (storage ownership, aliasing, scratch and device limits).
 */
export function validatedKernels(impl: ModelKernels): ModelKernels {
  const wrapped: Record<string, KernelFn> = {};
  for (const kernel of Object.keys(KERNEL_SIGNATURES) as (keyof ModelKernels)[]) {
    const run = (impl[kernel] as KernelFn).bind(impl);
    wrapped[kernel] = (...args: unknown[]) => {
      validateKernelCall(kernel, args);
      run(...args);
    };
  }
  return Object.freeze(wrapped) as unknown as ModelKernels;
}
