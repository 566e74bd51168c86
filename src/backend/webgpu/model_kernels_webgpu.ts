// WebGPU launchers of the fused model kernels other than attention (contract: ../model_kernels.ts):
// writeView, logSoftmaxGather(+Backward), rmsNorm(+Backward), rope, swiglu(+Backward), tokenLoss(+Backward),
// adamw, sumSquares.
// Each validates its storages against the arguments, picks a kernel variant and records its dispatches.
import {
  type AdamWArgs, type RopeArgs, type Storage, type View, KernelError, sizeOf,
} from '../backend.js';
import { type TokenLossArgs, checkTokenLossArgs } from '../model_kernels.js';
import {
  type GPUStorageRef, type KernelHost, type UniformSlot, requireCounts, requireNoAlias, requireStorage,
} from './kernel_host.js';

/** Rows below which the one-row-per-invocation variants leave most SIMD lanes idle. */
const MIN_ROWS_PER_INVOCATION = 16;
/** Workgroup size of the one-row-per-invocation variants (small: rows spread over all CPU threads). */
const ROWS_WG = 16;

function rowVariant(host: KernelHost, rows: number): 'rows' | 'tree' {
  return host.variants.rowReduce ?? (host.software && rows >= MIN_ROWS_PER_INVOCATION ? 'rows' : 'tree');
}

/** Copies n raw words src → dst (contiguous) with the elementwise copy kernel. */
function copyWords(host: KernelHost, kernel: string, src: GPUBuffer, dst: GPUBuffer, n: number): void {
  const pe = host.pipeline('elementwise', 'copy', { WG: host.wg, OP: 0 }, kernel);
  host.launch(kernel, pe, (s) => {
    s.u[0] = n; s.u[1] = 1; s.u[8] = n; s.u[16] = 1;
  }, [dst, src], host.groups1d(n, kernel));
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
    const clash = ins.some((s) => s.buffer === o.buffer) || outs.slice(0, i).some(([s]) => s.buffer === o.buffer);
    if (!clash) return o.buffer;
    const tmp = host.alloc(o.dtype, count);
    temps.push({ tmp, out: o, count });
    return host.st(tmp, kernel).buffer;
  });
  body(bufs);
  for (const { tmp, out, count } of temps) {
    if (count > 0) copyWords(host, kernel, host.st(tmp, kernel).buffer, out.buffer, count);
    host.free(tmp);
  }
}

/**
 * Elementwise launches over n elements: the vec4 entry `entry4` for the first ⌊n/4⌋·4 elements (a quarter
 * of the loads), then the scalar `entry` from `start` for the remaining ones. `params` fills the uniform
 * block; the launcher sets `n` (word 0) and `start` (word `startWord`).
 */
function elementwise4(
  host: KernelHost, kernel: string, family: string, entry: string, entry4: string, n: number, startWord: number,
  params: (s: UniformSlot) => void, buffers: GPUBuffer[],
): void {
  const n4 = Math.floor(n / 4);
  if (n4 > 0) {
    const pe = host.pipeline(family, entry4, { WG: host.wg }, kernel);
    host.launch(kernel, pe, (s) => { params(s); s.u[0] = n; }, buffers, host.groups1d(n4, kernel));
  }
  if (n4 * 4 < n) {
    const pe = host.pipeline(family, entry, { WG: host.wg }, kernel);
    host.launch(kernel, pe, (s) => { params(s); s.u[0] = n; s.u[startWord] = n4 * 4; }, buffers, host.groups1d(n - n4 * 4, kernel));
  }
}

// ------------------------------------------------------------------------------------------ writeView

/** Largest element offset a view reaches over `shape` (shape non-empty in every dim). */
function viewExtent(view: View, shape: readonly number[]): number {
  let max = view.offset;
  for (let d = 0; d < shape.length; d++) max += (shape[d] - 1) * view.strides[d];
  return max;
}

export function writeView(host: KernelHost, x: Storage, xView: View, out: Storage, outView: View, shape: readonly number[]): void {
  const k = host.kernel('writeView');
  const a = host.st(x, k);
  const o = host.st(out, k);
  if (xView.strides.length !== shape.length || outView.strides.length !== shape.length) {
    throw new KernelError(k, `views have ${xView.strides.length} and ${outView.strides.length} strides for a rank-${shape.length} shape`);
  }
  shape.forEach((d, i) => requireCounts(k, { [`shape[${i}]`]: d }));
  const n = sizeOf(shape);
  if (n === 0) return;
  if (viewExtent(xView, shape) >= a.size) throw new KernelError(k, `x view reaches element ${viewExtent(xView, shape)} of ${a.size}`);
  if (viewExtent(outView, shape) >= o.size) throw new KernelError(k, `out view reaches element ${viewExtent(outView, shape)} of ${o.size}`);
  if (shape.some((d, i) => d > 1 && outView.strides[i] === 0)) throw new KernelError(k, 'out view maps several elements to one (stride 0)');
  const pe = host.pipeline('elementwise', 'write_view', { WG: host.wg, OP: 0 }, k);
  let src = a.buffer;
  let srcView = xView;
  let staged: Storage | null = null;
  if (a.buffer === o.buffer) {
    // Reading and writing one buffer in a dispatch is not allowed: stage the source view contiguously.
    staged = host.alloc(a.dtype, n);
    const cp = host.pipeline('elementwise', 'copy', { WG: host.wg, OP: 0 }, k);
    const cpParams = host.stridedParams(k, shape, [xView]);
    host.launch(k, cp, cpParams, [host.st(staged, k).buffer, a.buffer], host.groups1d(n, k));
    src = host.st(staged, k).buffer;
    const strides: number[] = [];
    let s = 1;
    for (let d = shape.length - 1; d >= 0; d--) { strides[d] = s; s *= shape[d]; }
    srcView = { strides, offset: 0 };
  }
  const params = host.stridedParams(k, shape, [srcView, outView]);
  host.launch(k, pe, params, [o.buffer, src], host.groups1d(n, k));
  if (staged) host.free(staged);
}

// ------------------------------------------------------------------------------------------ log-softmax

export function logSoftmaxGather(
  host: KernelHost, logits: Storage, targets: Storage, logp: Storage, entropy: Storage, lse: Storage, rows: number, cols: number,
): void {
  const k = host.kernel('logSoftmaxGather');
  requireCounts(k, { rows, cols });
  const x = host.st(logits, k);
  const t = host.st(targets, k);
  const lp = host.st(logp, k);
  const en = host.st(entropy, k);
  const ls = host.st(lse, k);
  requireStorage(k, 'logits', x, rows * cols);
  requireStorage(k, 'targets', t, rows, 'int32');
  requireStorage(k, 'logp', lp, rows);
  requireStorage(k, 'entropy', en, rows);
  requireStorage(k, 'lse', ls, rows);
  requireNoAlias(k, { logp: lp, entropy: en, lse: ls }, { logits: x, targets: t });
  if (rows === 0) return;
  if (cols === 0) throw new KernelError(k, 'cols must be at least 1');
  const variant = rowVariant(host, rows);
  const WG = variant === 'rows' ? Math.min(ROWS_WG, host.wg) : host.wg;
  const pe = host.pipeline('softmax_gather', variant === 'rows' ? 'lsg_rows' : 'lsg_tree', { WG, V4: cols % 4 === 0 ? 1 : 0, U: 4 }, k);
  const groups = variant === 'rows' ? host.groups1d(rows, k, WG) : host.groups1d(rows, k, 1);
  host.launch(k, pe, (s) => { s.u[0] = rows; s.u[1] = cols; }, [lp.buffer, x.buffer, t.buffer, en.buffer, ls.buffer], groups);
}

export function logSoftmaxGatherBackward(
  host: KernelHost, logits: Storage, targets: Storage, lse: Storage, entropy: Storage, gLogp: Storage, gEntropy: Storage,
  gLogits: Storage, rows: number, cols: number,
): void {
  const k = host.kernel('logSoftmaxGatherBackward');
  requireCounts(k, { rows, cols });
  const x = host.st(logits, k);
  const t = host.st(targets, k);
  const ls = host.st(lse, k);
  const en = host.st(entropy, k);
  const gl = host.st(gLogp, k);
  const ge = host.st(gEntropy, k);
  const gx = host.st(gLogits, k);
  requireStorage(k, 'logits', x, rows * cols);
  requireStorage(k, 'targets', t, rows, 'int32');
  for (const [name, s] of [['lse', ls], ['entropy', en], ['gLogp', gl], ['gEntropy', ge]] as const) requireStorage(k, name, s, rows);
  requireStorage(k, 'gLogits', gx, rows * cols);
  if (rows * cols === 0) return;
  const WG = host.wg;
  const U = 4;
  const chunksPerRow = Math.ceil(cols / (WG * 4 * U));
  const pe = host.pipeline('softmax_gather', 'lsg_bwd', { WG, V4: cols % 4 === 0 ? 1 : 0, U }, k);
  const groups = host.groups1d(rows * chunksPerRow * WG, k, WG);
  withOutputs(host, k, [[gx, rows * cols]], [x, t, ls, en, gl, ge], ([out]) => {
    host.launch(k, pe, (s) => { s.u[0] = rows; s.u[1] = cols; s.u[2] = chunksPerRow; },
      [out, x.buffer, t.buffer, ls.buffer, en.buffer, gl.buffer, ge.buffer], groups);
  });
}

// ------------------------------------------------------------------------------------------ RMSNorm

export function rmsNorm(host: KernelHost, x: Storage, weight: Storage, out: Storage, rstd: Storage, rows: number, cols: number, eps: number): void {
  const k = host.kernel('rmsNorm');
  requireCounts(k, { rows, cols });
  const a = host.st(x, k);
  const w = host.st(weight, k);
  const o = host.st(out, k);
  const r = host.st(rstd, k);
  requireStorage(k, 'x', a, rows * cols);
  requireStorage(k, 'weight', w, cols);
  requireStorage(k, 'out', o, rows * cols);
  requireStorage(k, 'rstd', r, rows);
  if (rows * cols === 0) return;
  const variant = rowVariant(host, rows);
  const WG = variant === 'rows' ? Math.min(ROWS_WG, host.wg) : host.wg;
  const entry = variant === 'rows' ? (cols % 4 === 0 ? 'rms_norm_rows4' : 'rms_norm_rows') : 'rms_norm_tree';
  const pe = host.pipeline('norm', entry, { WG }, k);
  const groups = variant === 'rows' ? host.groups1d(rows, k, WG) : host.groups1d(rows, k, 1);
  withOutputs(host, k, [[o, rows * cols], [r, rows]], [a, w], ([ob, rb]) => {
    host.launch(k, pe, (s) => { s.u[0] = rows; s.u[1] = cols; s.f[2] = eps; }, [ob, a.buffer, w.buffer, rb], groups);
  });
}

export function rmsNormBackward(
  host: KernelHost, x: Storage, weight: Storage, rstd: Storage, gOut: Storage, gx: Storage, gWeight: Storage, rows: number, cols: number,
): void {
  const k = host.kernel('rmsNormBackward');
  requireCounts(k, { rows, cols });
  const a = host.st(x, k);
  const w = host.st(weight, k);
  const r = host.st(rstd, k);
  const g = host.st(gOut, k);
  const dx = host.st(gx, k);
  const dw = host.st(gWeight, k);
  requireStorage(k, 'x', a, rows * cols);
  requireStorage(k, 'weight', w, cols);
  requireStorage(k, 'rstd', r, rows);
  requireStorage(k, 'gOut', g, rows * cols);
  requireStorage(k, 'gx', dx, rows * cols);
  requireStorage(k, 'gWeight', dw, cols);
  if (cols === 0) return;
  const params = (s: UniformSlot, rowsPerBlock = 0): void => {
    s.u[0] = rows; s.u[1] = cols; s.u[3] = rowsPerBlock;
  };
  withOutputs(host, k, [[dx, rows * cols], [dw, cols]], [a, w, r, g], ([dxb, dwb]) => {
    if (rows > 0) {
      const variant = rowVariant(host, rows);
      const WG = variant === 'rows' ? Math.min(ROWS_WG, host.wg) : host.wg;
      const entry = variant === 'rows' ? (cols % 4 === 0 ? 'rms_norm_bwd_gx_rows4' : 'rms_norm_bwd_gx_rows') : 'rms_norm_bwd_gx_tree';
      const pe = host.pipeline('norm', entry, { WG }, k);
      const groups = variant === 'rows' ? host.groups1d(rows, k, WG) : host.groups1d(rows, k, 1);
      host.launch(k, pe, (s) => params(s), [dxb, a.buffer, w.buffer, r.buffer, g.buffer], groups);
    }
    // gWeight: column sums over row blocks; more than one block goes through partials and the reduce kernel.
    const WG = host.wg;
    const vec4 = cols % 4 === 0;
    const colGroups = Math.ceil((vec4 ? cols / 4 : cols) / WG);
    const target = host.software ? 8 : 256;
    const blocks = Math.max(1, Math.min(Math.ceil(target / colGroups), Math.ceil(rows / 64), host.maxWorkgroupsPerDim));
    const rowsPerBlock = Math.max(1, Math.ceil(rows / blocks));
    const pe = host.pipeline('norm', vec4 ? 'rms_norm_bwd_gw4' : 'rms_norm_bwd_gw', { WG }, k);
    if (blocks === 1) {
      host.launch(k, pe, (s) => params(s, rowsPerBlock), [dwb, a.buffer, g.buffer, r.buffer], [colGroups, 1, 1]);
      return;
    }
    const partials = host.alloc('float32', blocks * cols);
    const pb = host.st(partials, k).buffer;
    host.launch(k, pe, (s) => params(s, rowsPerBlock), [pb, a.buffer, g.buffer, r.buffer], [colGroups, blocks, 1]);
    const red = host.pipeline('reduce', 'reduce_loop', { WG, OP: 0 }, k);
    host.launch(k, red, (s) => { s.u[0] = 1; s.u[1] = blocks; s.u[2] = cols; s.u[3] = cols; s.f[4] = 0; }, [dwb, pb], host.groups1d(cols, k));
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
  const k = host.kernel('rope');
  const { batch, t, heads, headDim } = args;
  requireCounts(k, { batch, t, heads, headDim });
  if (headDim % 2 !== 0) throw new KernelError(k, `headDim must be even, got ${headDim}`);
  if (!(args.theta > 0)) throw new KernelError(k, `theta must be positive, got ${args.theta}`);
  const a = host.st(x, k);
  const p = host.st(positions, k);
  const o = host.st(out, k);
  const n = batch * t * heads * headDim;
  requireStorage(k, 'x', a, n);
  requireStorage(k, 'positions', p, batch * t, 'int32');
  requireStorage(k, 'out', o, n);
  requireNoAlias(k, { out: o }, { x: a, positions: p });
  if (n === 0) return;
  const table = host.st(ropeTable(host, args.theta, headDim), k);
  const pairs = n / 2;
  const pe = host.pipeline('rope', 'rope', { WG: host.wg }, k);
  host.launch(k, pe, (s) => {
    s.u[0] = pairs; s.u[1] = headDim / 2; s.u[2] = heads; s.f[3] = args.inverse ? -1 : 1;
  }, [o.buffer, a.buffer, p.buffer, table.buffer], host.groups1d(pairs, k));
}

// ------------------------------------------------------------------------------------------ SwiGLU

export function swiglu(host: KernelHost, gate: Storage, up: Storage, out: Storage, n: number): void {
  const k = host.kernel('swiglu');
  requireCounts(k, { n });
  const g = host.st(gate, k);
  const u = host.st(up, k);
  const o = host.st(out, k);
  for (const [name, s] of [['gate', g], ['up', u], ['out', o]] as const) requireStorage(k, name, s, n);
  if (n === 0) return;
  withOutputs(host, k, [[o, n]], [g, u], ([ob]) => {
    elementwise4(host, k, 'swiglu', 'swiglu', 'swiglu4', n, 1, () => {}, [ob, g.buffer, u.buffer]);
  });
}

export function swigluBackward(host: KernelHost, gate: Storage, up: Storage, gOut: Storage, gGate: Storage, gUp: Storage, n: number): void {
  const k = host.kernel('swigluBackward');
  requireCounts(k, { n });
  const g = host.st(gate, k);
  const u = host.st(up, k);
  const go = host.st(gOut, k);
  const dg = host.st(gGate, k);
  const du = host.st(gUp, k);
  for (const [name, s] of [['gate', g], ['up', u], ['gOut', go], ['gGate', dg], ['gUp', du]] as const) requireStorage(k, name, s, n);
  if (n === 0) return;
  withOutputs(host, k, [[dg, n], [du, n]], [g, u, go], ([dgb, dub]) => {
    elementwise4(host, k, 'swiglu', 'swiglu_bwd', 'swiglu_bwd4', n, 1, () => {}, [dgb, g.buffer, u.buffer, go.buffer, dub]);
  });
}

// ------------------------------------------------------------------------------------------ token loss

/** The token-loss uniform block: n, 1 − epsLow, 1 + epsHigh, dualClip, clamp (bounds rounded once, from float64). */
function tokenLossParams(n: number, a: TokenLossArgs): (s: UniformSlot) => void {
  return (s) => {
    s.u[0] = n; s.f[1] = 1 - a.epsLow; s.f[2] = 1 + a.epsHigh; s.f[3] = a.dualClip; s.f[4] = a.logRatioClamp;
  };
}

export function tokenLoss(
  host: KernelHost, logp: Storage, oldLogp: Storage, adv: Storage, weight: Storage, loss: Storage, stats: Storage, n: number,
  args: TokenLossArgs,
): void {
  const k = host.kernel('tokenLoss');
  checkTokenLossArgs(k, n, args);
  const ins = { logp: host.st(logp, k), oldLogp: host.st(oldLogp, k), adv: host.st(adv, k), weight: host.st(weight, k) };
  for (const [name, s] of Object.entries(ins)) requireStorage(k, name, s, n);
  const l = host.st(loss, k);
  const st = host.st(stats, k);
  requireStorage(k, 'loss', l, n);
  requireStorage(k, 'stats', st, 3 * n);
  if (n === 0) return;
  const pe = host.pipeline('token_loss', 'token_loss', { WG: host.wg }, k);
  withOutputs(host, k, [[l, n], [st, 3 * n]], Object.values(ins), ([lb, sb]) => {
    host.launch(k, pe, tokenLossParams(n, args), [ins.logp.buffer, ins.oldLogp.buffer, ins.adv.buffer, ins.weight.buffer, lb, sb],
      host.groups1d(n, k));
  });
}

export function tokenLossBackward(
  host: KernelHost, logp: Storage, oldLogp: Storage, adv: Storage, weight: Storage, gLoss: Storage, gLogp: Storage, n: number,
  args: TokenLossArgs,
): void {
  const k = host.kernel('tokenLossBackward');
  checkTokenLossArgs(k, n, args);
  const ins = {
    logp: host.st(logp, k), oldLogp: host.st(oldLogp, k), adv: host.st(adv, k), weight: host.st(weight, k), gLoss: host.st(gLoss, k),
  };
  for (const [name, s] of Object.entries(ins)) requireStorage(k, name, s, n);
  const g = host.st(gLogp, k);
  requireStorage(k, 'gLogp', g, n);
  if (n === 0) return;
  const pe = host.pipeline('token_loss', 'token_loss_bwd', { WG: host.wg }, k);
  withOutputs(host, k, [[g, n]], Object.values(ins), ([gb]) => {
    host.launch(k, pe, tokenLossParams(n, args),
      [ins.logp.buffer, ins.oldLogp.buffer, ins.adv.buffer, ins.weight.buffer, ins.gLoss.buffer, gb], host.groups1d(n, k));
  });
}

// ------------------------------------------------------------------------------------------ optimizer

export function adamw(host: KernelHost, param: Storage, grad: Storage, m: Storage, v: Storage, scale: Storage, args: AdamWArgs, n: number): void {
  const k = host.kernel('adamw');
  requireCounts(k, { n });
  if (!Number.isInteger(args.step) || args.step < 1) throw new KernelError(k, `step must be a positive integer, got ${args.step}`);
  const p = host.st(param, k);
  const g = host.st(grad, k);
  const ms = host.st(m, k);
  const vs = host.st(v, k);
  const sc = host.st(scale, k);
  for (const [name, s] of [['param', p], ['grad', g], ['m', ms], ['v', vs]] as const) requireStorage(k, name, s, n);
  requireStorage(k, 'scale', sc, 1);
  requireNoAlias(k, { param: p, m: ms, v: vs }, { grad: g, scale: sc });
  if (n === 0) return;
  elementwise4(host, k, 'adamw', 'adamw', 'adamw4', n, 13, (s) => {
    s.f[4] = args.lr; s.f[5] = args.beta1; s.f[6] = args.beta2; s.f[7] = args.eps;
    s.f[8] = 1 - args.lr * args.weightDecay; s.f[9] = 1 - args.beta1; s.f[10] = 1 - args.beta2;
    s.f[11] = 1 - Math.pow(args.beta1, args.step); s.f[12] = 1 - Math.pow(args.beta2, args.step);
  }, [p.buffer, ms.buffer, vs.buffer, g.buffer, sc.buffer]);
}

/** Inputs up to this many elements per invocation are summed by a single workgroup. */
const SINGLE_PASS_PER_INVOCATION = 64;

export function sumSquares(host: KernelHost, x: Storage, out: Storage, n: number, accumulate: boolean): void {
  const k = host.kernel('sumSquares');
  requireCounts(k, { n });
  const a = host.st(x, k);
  const o = host.st(out, k);
  requireStorage(k, 'x', a, n);
  requireStorage(k, 'out', o, 1);
  requireNoAlias(k, { out: o }, { x: a });
  const WG = host.wg;
  const pe = host.pipeline('adamw', 'sum_squares', { WG }, k);
  const finalPass = (src: GPUBuffer, count: number, square: boolean): void => {
    host.launch(k, pe, (s) => { s.u[0] = count; s.u[1] = 1; s.u[2] = accumulate ? 1 : 0; s.u[3] = square ? 1 : 0; }, [o.buffer, src], [1, 1, 1]);
  };
  if (n <= WG * SINGLE_PASS_PER_INVOCATION) {
    finalPass(a.buffer, n, true);
    return;
  }
  const groups = Math.min(Math.ceil(n / (WG * SINGLE_PASS_PER_INVOCATION)), host.software ? 64 : 1024, host.maxWorkgroupsPerDim);
  const partials = host.alloc('float32', groups);
  const pb = host.st(partials, k).buffer;
  host.launch(k, pe, (s) => { s.u[0] = n; s.u[1] = 0; s.u[3] = 1; }, [pb, a.buffer], [groups, 1, 1]);
  finalPass(pb, groups, false);
  host.free(partials);
}
