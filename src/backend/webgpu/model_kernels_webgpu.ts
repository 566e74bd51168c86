// The WebGPU backend's model kernels (contract: ../model_kernels.ts): writeView, logSoftmaxGather(+Backward),
// rmsNorm(+Backward), rope, swiglu(+Backward), tokenLoss(+Backward), lowRankAdd, adamw, sumSquares here, attention in
// attention_webgpu.ts. Arguments arrive validated against the signature table; each launcher resolves its
// storages, keeps outputs from aliasing writable bindings, picks a kernel variant and records its dispatches.
import type { ModelKernels } from '../model_kernels.js';
import {
  type AdamWArgs, type LowRankArgs, type RopeArgs, type Storage, type TokenLossArgs, type View, contiguousStrides, sizeOf,
} from '../types.js';
import { attention, attentionBackward } from './attention_webgpu.js';
import { copyWords, stridedParams } from './core_kernels_webgpu.js';
import { type GPUStorageRef, type KernelHost, type UniformSlot, requireNoAlias } from './kernel_host.js';
import { UNIFORM_LAYOUTS, setParams } from './uniform_params.js';

/** Rows below which the one-row-per-invocation variants leave most SIMD lanes idle. */
const MIN_ROWS_PER_INVOCATION = 16;
/** Workgroup size of the one-row-per-invocation variants (small: rows spread over all CPU threads). */
const ROWS_WG = 16;

function rowVariant(host: KernelHost, rows: number): 'rows' | 'tree' {
  return host.variants.rowReduce ?? (host.software && rows >= MIN_ROWS_PER_INVOCATION ? 'rows' : 'tree');
}

/**
 * Runs `body` with the output buffers; an output that shares its buffer with an input or an earlier output
 * is replaced by a temporary whose first `count` words are copied into place afterwards (outputs are bound
 * writable, and WebGPU forbids a writable binding aliasing another binding).
 */
function withOutputs(
  host: KernelHost, kernel: string, outs: [GPUStorageRef, number][], ins: GPUStorageRef[], body: (bufs: GPUBuffer[]) => void,
): void {
  const temps: { tmp: Storage; out: GPUStorageRef; count: number }[] = [];
  const bufs = outs.map(([o, count], i) => {
    const clash = ins.some((input) => input.buffer === o.buffer) || outs.slice(0, i).some(([earlier]) => earlier.buffer === o.buffer);
    if (!clash) return o.buffer;
    const tmp = host.alloc(o.dtype, count);
    temps.push({ tmp, out: o, count });
    return host.gpuStorage(tmp, kernel).buffer;
  });
  body(bufs);
  for (const { tmp, out, count } of temps) {
    if (count > 0) copyWords(host, kernel, host.gpuStorage(tmp, kernel).buffer, out.buffer, count);
    host.free(tmp);
  }
}

/**
 * Elementwise launches over n elements: the vec4 entry `entry4` for the first ⌊n/4⌋·4 elements (a quarter
 * of the loads), then the scalar `entry` from `start` for the remaining ones. `params` fills the uniform
 * block; the launcher sets its `n` and `start` fields.
 */
function elementwise4(
  host: KernelHost, kernel: string, family: 'swiglu' | 'adamw', entry: string, entry4: string, n: number,
  params: (slot: UniformSlot) => void, buffers: GPUBuffer[],
): void {
  const layout = UNIFORM_LAYOUTS[family];
  const n4 = Math.floor(n / 4);
  if (n4 > 0) {
    const pipeline = host.pipeline(family, entry4, { WG: host.wg }, kernel);
    host.launch(kernel, pipeline, (slot) => { params(slot); setParams(slot, layout, { n }); }, buffers, host.groups1d(n4, kernel));
  }
  if (n4 * 4 < n) {
    const pipeline = host.pipeline(family, entry, { WG: host.wg }, kernel);
    host.launch(kernel, pipeline, (slot) => { params(slot); setParams(slot, layout, { n, start: n4 * 4 }); }, buffers, host.groups1d(n - n4 * 4, kernel));
  }
}

// ------------------------------------------------------------------------------------------ writeView

export function writeView(host: KernelHost, x: Storage, xView: View, out: Storage, outView: View, shape: readonly number[]): void {
  const kernel = host.kernel('writeView');
  const source = host.gpuStorage(x, kernel);
  const target = host.gpuStorage(out, kernel);
  const n = sizeOf(shape);
  if (n === 0) return;
  const pipeline = host.pipeline('elementwise', 'write_view', { WG: host.wg, OP: 0 }, kernel);
  let src = source.buffer;
  let srcView = xView;
  let staged: Storage | null = null;
  if (source.buffer === target.buffer) {
    // Reading and writing one buffer in a dispatch is not allowed: stage the source view contiguously.
    staged = host.alloc(source.dtype, n);
    const copyPipeline = host.pipeline('elementwise', 'copy', { WG: host.wg, OP: 0 }, kernel);
    host.launch(kernel, copyPipeline, stridedParams(kernel, shape, [xView]), [host.gpuStorage(staged, kernel).buffer, source.buffer], host.groups1d(n, kernel));
    src = host.gpuStorage(staged, kernel).buffer;
    srcView = { strides: contiguousStrides(shape), offset: 0 };
  }
  host.launch(kernel, pipeline, stridedParams(kernel, shape, [srcView, outView]), [target.buffer, src], host.groups1d(n, kernel));
  if (staged) host.free(staged);
}

// ------------------------------------------------------------------------------------------ log-softmax

export function logSoftmaxGather(
  host: KernelHost, logits: Storage, targets: Storage, logp: Storage, entropy: Storage, lse: Storage, rows: number, cols: number,
): void {
  const kernel = host.kernel('logSoftmaxGather');
  const x = host.gpuStorage(logits, kernel);
  const t = host.gpuStorage(targets, kernel);
  const lp = host.gpuStorage(logp, kernel);
  const en = host.gpuStorage(entropy, kernel);
  const ls = host.gpuStorage(lse, kernel);
  requireNoAlias(kernel, { logp: lp, entropy: en, lse: ls }, { logits: x, targets: t });
  if (rows === 0) return;
  const variant = rowVariant(host, rows);
  const WG = variant === 'rows' ? Math.min(ROWS_WG, host.wg) : host.wg;
  const pipeline = host.pipeline('softmax_gather', variant === 'rows' ? 'lsg_rows' : 'lsg_tree', { WG, V4: cols % 4 === 0 ? 1 : 0, U: 4 }, kernel);
  const groups = variant === 'rows' ? host.groups1d(rows, kernel, WG) : host.groups1d(rows, kernel, 1);
  host.launch(kernel, pipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.softmax_gather, { rows, cols }),
    [lp.buffer, x.buffer, t.buffer, en.buffer, ls.buffer], groups);
}

export function logSoftmaxGatherBackward(
  host: KernelHost, logits: Storage, targets: Storage, lse: Storage, entropy: Storage, gLogp: Storage, gEntropy: Storage,
  gLogits: Storage, rows: number, cols: number,
): void {
  const kernel = host.kernel('logSoftmaxGatherBackward');
  const x = host.gpuStorage(logits, kernel);
  const t = host.gpuStorage(targets, kernel);
  const ls = host.gpuStorage(lse, kernel);
  const en = host.gpuStorage(entropy, kernel);
  const gl = host.gpuStorage(gLogp, kernel);
  const ge = host.gpuStorage(gEntropy, kernel);
  const gx = host.gpuStorage(gLogits, kernel);
  if (rows * cols === 0) return;
  const WG = host.wg;
  const U = 4;
  const chunksPerRow = Math.ceil(cols / (WG * 4 * U));
  const pipeline = host.pipeline('softmax_gather', 'lsg_bwd', { WG, V4: cols % 4 === 0 ? 1 : 0, U }, kernel);
  const groups = host.groups1d(rows * chunksPerRow * WG, kernel, WG);
  withOutputs(host, kernel, [[gx, rows * cols]], [x, t, ls, en, gl, ge], ([out]) => {
    host.launch(kernel, pipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.softmax_gather, { rows, cols, chunksPerRow }),
      [out, x.buffer, t.buffer, ls.buffer, en.buffer, gl.buffer, ge.buffer], groups);
  });
}

// ------------------------------------------------------------------------------------------ RMSNorm

export function rmsNorm(host: KernelHost, x: Storage, weight: Storage, out: Storage, rstd: Storage, rows: number, cols: number, eps: number): void {
  const kernel = host.kernel('rmsNorm');
  const a = host.gpuStorage(x, kernel);
  const w = host.gpuStorage(weight, kernel);
  const o = host.gpuStorage(out, kernel);
  const r = host.gpuStorage(rstd, kernel);
  if (rows * cols === 0) return;
  const variant = rowVariant(host, rows);
  const WG = variant === 'rows' ? Math.min(ROWS_WG, host.wg) : host.wg;
  const entry = variant === 'rows' ? (cols % 4 === 0 ? 'rms_norm_rows4' : 'rms_norm_rows') : 'rms_norm_tree';
  const pipeline = host.pipeline('norm', entry, { WG }, kernel);
  const groups = variant === 'rows' ? host.groups1d(rows, kernel, WG) : host.groups1d(rows, kernel, 1);
  withOutputs(host, kernel, [[o, rows * cols], [r, rows]], [a, w], ([ob, rb]) => {
    host.launch(kernel, pipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.norm, { rows, cols, eps }), [ob, a.buffer, w.buffer, rb], groups);
  });
}

export function rmsNormBackward(
  host: KernelHost, x: Storage, weight: Storage, rstd: Storage, gOut: Storage, gx: Storage, gWeight: Storage, rows: number, cols: number,
): void {
  const kernel = host.kernel('rmsNormBackward');
  const a = host.gpuStorage(x, kernel);
  const w = host.gpuStorage(weight, kernel);
  const r = host.gpuStorage(rstd, kernel);
  const g = host.gpuStorage(gOut, kernel);
  const dx = host.gpuStorage(gx, kernel);
  const dw = host.gpuStorage(gWeight, kernel);
  if (cols === 0) return;
  const params = (slot: UniformSlot, rowsPerBlock = 0): void => setParams(slot, UNIFORM_LAYOUTS.norm, { rows, cols, rowsPerBlock });
  withOutputs(host, kernel, [[dx, rows * cols], [dw, cols]], [a, w, r, g], ([dxb, dwb]) => {
    if (rows > 0) {
      const variant = rowVariant(host, rows);
      const WG = variant === 'rows' ? Math.min(ROWS_WG, host.wg) : host.wg;
      const entry = variant === 'rows' ? (cols % 4 === 0 ? 'rms_norm_bwd_gx_rows4' : 'rms_norm_bwd_gx_rows') : 'rms_norm_bwd_gx_tree';
      const pipeline = host.pipeline('norm', entry, { WG }, kernel);
      const groups = variant === 'rows' ? host.groups1d(rows, kernel, WG) : host.groups1d(rows, kernel, 1);
      host.launch(kernel, pipeline, (slot) => params(slot), [dxb, a.buffer, w.buffer, r.buffer, g.buffer], groups);
    }
    // gWeight: column sums over row blocks; more than one block goes through partials and the reduce kernel.
    const WG = host.wg;
    const vec4 = cols % 4 === 0;
    const colGroups = Math.ceil((vec4 ? cols / 4 : cols) / WG);
    const target = host.software ? 8 : 256;
    const blocks = Math.max(1, Math.min(Math.ceil(target / colGroups), Math.ceil(rows / 64), host.maxWorkgroupsPerDim));
    const rowsPerBlock = Math.max(1, Math.ceil(rows / blocks));
    const pipeline = host.pipeline('norm', vec4 ? 'rms_norm_bwd_gw4' : 'rms_norm_bwd_gw', { WG }, kernel);
    if (blocks === 1) {
      host.launch(kernel, pipeline, (slot) => params(slot, rowsPerBlock), [dwb, a.buffer, g.buffer, r.buffer], [colGroups, 1, 1]);
      return;
    }
    const partials = host.alloc('float32', blocks * cols);
    const pb = host.gpuStorage(partials, kernel).buffer;
    host.launch(kernel, pipeline, (slot) => params(slot, rowsPerBlock), [pb, a.buffer, g.buffer, r.buffer], [colGroups, blocks, 1]);
    const reducePipeline = host.pipeline('reduce', 'reduce_loop', { WG, OP: 0 }, kernel);
    host.launch(kernel, reducePipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.reduce, { outer: 1, len: blocks, inner: cols, total: cols, init: 0 }),
      [dwb, pb], host.groups1d(cols, kernel));
    host.free(partials);
  });
}

// ------------------------------------------------------------------------------------------ RoPE

const ropeTables = new WeakMap<KernelHost, Map<string, Storage>>();

/** v rounded to 12 significant bits (so its product with a 12-bit integer is exact in float32). */
function round12(v: number): number {
  if (v === 0) return 0;
  const q = 2 ** (Math.floor(Math.log2(Math.abs(v))) - 11);
  return Math.round(v / q) * q;
}

/** Per rotated pair j: θ^(−2j/headDim) / 2π (turns per position) as three 12-bit parts, cached per backend. */
function ropeTable(host: KernelHost, theta: number, headDim: number): Storage {
  let cache = ropeTables.get(host);
  if (!cache) ropeTables.set(host, (cache = new Map()));
  const key = `${theta}:${headDim}`;
  let table = cache.get(key);
  if (!table) {
    const half = headDim / 2;
    const data = new Float32Array(3 * half);
    for (let j = 0; j < half; j++) {
      const g = Math.pow(theta, (-2 * j) / headDim) / (2 * Math.PI);
      const g1 = round12(g);
      const g2 = round12(g - g1);
      const g3 = round12(g - g1 - g2);
      data.set([g1, g2, g3], 3 * j);
    }
    table = host.uploadConstant('float32', data);
    cache.set(key, table);
  }
  return table;
}

export function rope(host: KernelHost, x: Storage, positions: Storage, out: Storage, args: RopeArgs): void {
  const kernel = host.kernel('rope');
  const { batch, t, heads, headDim } = args;
  const a = host.gpuStorage(x, kernel);
  const p = host.gpuStorage(positions, kernel);
  const o = host.gpuStorage(out, kernel);
  const n = batch * t * heads * headDim;
  requireNoAlias(kernel, { out: o }, { x: a, positions: p });
  if (n === 0) return;
  const table = host.gpuStorage(ropeTable(host, args.theta, headDim), kernel);
  const pairs = n / 2;
  const pipeline = host.pipeline('rope', 'rope', { WG: host.wg }, kernel);
  host.launch(kernel, pipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.rope, {
    pairs, half: headDim / 2, heads, sign: args.inverse ? -1 : 1,
  }), [o.buffer, a.buffer, p.buffer, table.buffer], host.groups1d(pairs, kernel));
}

// ------------------------------------------------------------------------------------------ SwiGLU

export function swiglu(host: KernelHost, gate: Storage, up: Storage, out: Storage, n: number): void {
  const kernel = host.kernel('swiglu');
  const g = host.gpuStorage(gate, kernel);
  const u = host.gpuStorage(up, kernel);
  const o = host.gpuStorage(out, kernel);
  if (n === 0) return;
  withOutputs(host, kernel, [[o, n]], [g, u], ([ob]) => {
    elementwise4(host, kernel, 'swiglu', 'swiglu', 'swiglu4', n, () => {}, [ob, g.buffer, u.buffer]);
  });
}

export function swigluBackward(host: KernelHost, gate: Storage, up: Storage, gOut: Storage, gGate: Storage, gUp: Storage, n: number): void {
  const kernel = host.kernel('swigluBackward');
  const g = host.gpuStorage(gate, kernel);
  const u = host.gpuStorage(up, kernel);
  const go = host.gpuStorage(gOut, kernel);
  const dg = host.gpuStorage(gGate, kernel);
  const du = host.gpuStorage(gUp, kernel);
  if (n === 0) return;
  withOutputs(host, kernel, [[dg, n], [du, n]], [g, u, go], ([dgb, dub]) => {
    elementwise4(host, kernel, 'swiglu', 'swiglu_bwd', 'swiglu_bwd4', n, () => {}, [dgb, g.buffer, u.buffer, go.buffer, dub]);
  });
}

// ------------------------------------------------------------------------------------------ token loss

/** The token-loss uniform block: n, 1 − epsLow, 1 + epsHigh, dualClip, clamp (bounds rounded once, from float64). */
function tokenLossParams(n: number, a: TokenLossArgs): (slot: UniformSlot) => void {
  return (slot) => setParams(slot, UNIFORM_LAYOUTS.token_loss, {
    n, lo: 1 - a.epsLow, hi: 1 + a.epsHigh, dualClip: a.dualClip, clampC: a.logRatioClamp,
  });
}

export function tokenLoss(
  host: KernelHost, logp: Storage, oldLogp: Storage, adv: Storage, weight: Storage, loss: Storage, stats: Storage, n: number,
  args: TokenLossArgs,
): void {
  const kernel = host.kernel('tokenLoss');
  const ins = { logp: host.gpuStorage(logp, kernel), oldLogp: host.gpuStorage(oldLogp, kernel), adv: host.gpuStorage(adv, kernel), weight: host.gpuStorage(weight, kernel) };
  const l = host.gpuStorage(loss, kernel);
  const statsOut = host.gpuStorage(stats, kernel);
  if (n === 0) return;
  const pipeline = host.pipeline('token_loss', 'token_loss', { WG: host.wg }, kernel);
  withOutputs(host, kernel, [[l, n], [statsOut, 3 * n]], Object.values(ins), ([lb, sb]) => {
    host.launch(kernel, pipeline, tokenLossParams(n, args), [ins.logp.buffer, ins.oldLogp.buffer, ins.adv.buffer, ins.weight.buffer, lb, sb],
      host.groups1d(n, kernel));
  });
}

export function tokenLossBackward(
  host: KernelHost, logp: Storage, oldLogp: Storage, adv: Storage, weight: Storage, gLoss: Storage, gLogp: Storage, n: number,
  args: TokenLossArgs,
): void {
  const kernel = host.kernel('tokenLossBackward');
  const ins = {
    logp: host.gpuStorage(logp, kernel), oldLogp: host.gpuStorage(oldLogp, kernel), adv: host.gpuStorage(adv, kernel), weight: host.gpuStorage(weight, kernel), gLoss: host.gpuStorage(gLoss, kernel),
  };
  const g = host.gpuStorage(gLogp, kernel);
  if (n === 0) return;
  const pipeline = host.pipeline('token_loss', 'token_loss_bwd', { WG: host.wg }, kernel);
  withOutputs(host, kernel, [[g, n]], Object.values(ins), ([gb]) => {
    host.launch(kernel, pipeline, tokenLossParams(n, args),
      [ins.logp.buffer, ins.oldLogp.buffer, ins.adv.buffer, ins.weight.buffer, ins.gLoss.buffer, gb], host.groups1d(n, kernel));
  });
}

// ------------------------------------------------------------------------------------------ LoRA low-rank update

export function lowRankAdd(host: KernelHost, u: Storage, l: Storage, out: Storage, args: LowRankArgs): void {
  const kernel = host.kernel('lowRankAdd');
  const us = host.gpuStorage(u, kernel);
  const ls = host.gpuStorage(l, kernel);
  const o = host.gpuStorage(out, kernel);
  requireNoAlias(kernel, { out: o }, { u: us, l: ls });
  const { rows, cols, rank } = args;
  if (rows * cols === 0 || rank === 0) return;
  const vec4 = cols % 4 === 0;
  const entry = vec4 ? (args.transL ? 'low_rank_add4_t' : 'low_rank_add4') : 'low_rank_add';
  const pipeline = host.pipeline('low_rank', entry, { WG: host.wg }, kernel);
  host.launch(kernel, pipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.low_rank, {
    rows, cols, rank, transL: args.transL ? 1 : 0, scale: args.scale,
  }), [o.buffer, us.buffer, ls.buffer], host.groups1d(vec4 ? rows * (cols / 4) : rows * cols, kernel));
}

// ------------------------------------------------------------------------------------------ optimizer

export function adamw(host: KernelHost, param: Storage, grad: Storage, m: Storage, v: Storage, scale: Storage, args: AdamWArgs, n: number): void {
  const kernel = host.kernel('adamw');
  const p = host.gpuStorage(param, kernel);
  const g = host.gpuStorage(grad, kernel);
  const ms = host.gpuStorage(m, kernel);
  const vs = host.gpuStorage(v, kernel);
  const sc = host.gpuStorage(scale, kernel);
  requireNoAlias(kernel, { param: p, m: ms, v: vs }, { grad: g, scale: sc });
  if (n === 0) return;
  elementwise4(host, kernel, 'adamw', 'adamw', 'adamw4', n, (slot) => setParams(slot, UNIFORM_LAYOUTS.adamw, {
    lr: args.lr, beta1: args.beta1, beta2: args.beta2, eps: args.eps, decay: 1 - args.lr * args.weightDecay,
    oneMinusBeta1: 1 - args.beta1, oneMinusBeta2: 1 - args.beta2,
    bc1: 1 - Math.pow(args.beta1, args.step), bc2: 1 - Math.pow(args.beta2, args.step),
  }), [p.buffer, ms.buffer, vs.buffer, g.buffer, sc.buffer]);
}

/** Inputs up to this many elements per invocation are summed by a single workgroup. */
const SINGLE_PASS_PER_INVOCATION = 64;

export function sumSquares(host: KernelHost, x: Storage, out: Storage, n: number, accumulate: boolean): void {
  const kernel = host.kernel('sumSquares');
  const a = host.gpuStorage(x, kernel);
  const o = host.gpuStorage(out, kernel);
  requireNoAlias(kernel, { out: o }, { x: a });
  const WG = host.wg;
  const pipeline = host.pipeline('adamw', 'sum_squares', { WG }, kernel);
  const finalPass = (src: GPUBuffer, count: number, square: boolean): void => {
    host.launch(kernel, pipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.adamw, {
      n: count, final_: 1, accumulate: accumulate ? 1 : 0, square: square ? 1 : 0,
    }), [o.buffer, src], [1, 1, 1]);
  };
  if (n <= WG * SINGLE_PASS_PER_INVOCATION) {
    finalPass(a.buffer, n, true);
    return;
  }
  const groups = Math.min(Math.ceil(n / (WG * SINGLE_PASS_PER_INVOCATION)), host.software ? 64 : 1024, host.maxWorkgroupsPerDim);
  const partials = host.alloc('float32', groups);
  const pb = host.gpuStorage(partials, kernel).buffer;
  host.launch(kernel, pipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.adamw, { n, final_: 0, square: 1 }), [pb, a.buffer], [groups, 1, 1]);
  finalPass(pb, groups, false);
  host.free(partials);
}

/** The WebGPU backend's model kernels as one object (the backend wraps it with the signature-table validator). */
export function webgpuModelKernels(host: KernelHost) {
  return {
    writeView: (x, xView, out, outView, shape) => writeView(host, x, xView, out, outView, shape),
    attention: (q, k, v, keyStart, out, lse, args) => attention(host, q, k, v, keyStart, out, lse, args),
    attentionBackward: (q, k, v, keyStart, out, lse, gOut, gq, gk, gv, args) =>
      attentionBackward(host, q, k, v, keyStart, out, lse, gOut, gq, gk, gv, args),
    logSoftmaxGather: (logits, targets, logp, entropy, lse, rows, cols) => logSoftmaxGather(host, logits, targets, logp, entropy, lse, rows, cols),
    logSoftmaxGatherBackward: (logits, targets, lse, entropy, gLogp, gEntropy, gLogits, rows, cols) =>
      logSoftmaxGatherBackward(host, logits, targets, lse, entropy, gLogp, gEntropy, gLogits, rows, cols),
    rmsNorm: (x, weight, out, rstd, rows, cols, eps) => rmsNorm(host, x, weight, out, rstd, rows, cols, eps),
    rmsNormBackward: (x, weight, rstd, gOut, gx, gWeight, rows, cols) => rmsNormBackward(host, x, weight, rstd, gOut, gx, gWeight, rows, cols),
    rope: (x, positions, out, args) => rope(host, x, positions, out, args),
    swiglu: (gate, up, out, n) => swiglu(host, gate, up, out, n),
    swigluBackward: (gate, up, gOut, gGate, gUp, n) => swigluBackward(host, gate, up, gOut, gGate, gUp, n),
    tokenLoss: (logp, oldLogp, adv, weight, loss, stats, n, args) => tokenLoss(host, logp, oldLogp, adv, weight, loss, stats, n, args),
    tokenLossBackward: (logp, oldLogp, adv, weight, gLoss, gLogp, n, args) =>
      tokenLossBackward(host, logp, oldLogp, adv, weight, gLoss, gLogp, n, args),
    lowRankAdd: (u, l, out, args) => lowRankAdd(host, u, l, out, args),
    adamw: (param, grad, m, v, scale, args, n) => adamw(host, param, grad, m, v, scale, args, n),
    sumSquares: (x, out, n, accumulate) => sumSquares(host, x, out, n, accumulate),
  } satisfies ModelKernels;
}
