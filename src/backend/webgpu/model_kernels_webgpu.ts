// The WebGPU backend's model kernels (contract: ../model_kernels.ts): writeView, logSoftmaxGather(+Backward),
// rmsNorm(+Backward), rope, swiglu(+Backward), tokenLoss(+Backward), lowRankAdd, adamw, sumSquares here, attention in
// attention_webgpu.ts. Arguments arrive validated against the signature table; each launcher resolves its
// storages, keeps outputs from aliasing writable bindings, picks a kernel variant and records its dispatches.
import type { ModelKernels } from '../model_kernels.js';
import {
  type AdamWArgs, type LowRankArgs, type MatmulLowRankArgs, type RopeArgs, type Storage, type TokenLossArgs, type View, contiguousStrides, sizeOf,
} from '../types.js';
import { attention, attentionBackward } from './attention_webgpu.js';
import { copyWords, matmul, stridedParams } from './core_kernels_webgpu.js';
import {
  type GPUStorageRef, type Groups, type KernelHost, type PipelineRef, type UniformSlot, gpuStorages, requireNoAlias,
} from './kernel_host.js';
import { UNIFORM_LAYOUTS, setParams } from './uniform_params.js';

/** Rows below which the one-row-per-invocation variants leave most SIMD lanes idle. */
const MIN_ROWS_PER_INVOCATION = 16;
/** Workgroup size of the one-row-per-invocation variants (small: rows spread over all CPU threads). */
const ROWS_WG = 16;

type RowVariant = 'rows' | 'tree';

/**
 * Pipeline and grid of a row-wise kernel (log-softmax-gather, RMSNorm): 'rows' runs one row per invocation
 * in small workgroups, 'tree' one workgroup per row. `pipelineFor` picks the entry for the variant.
 */
/** The row variant rowKernel picks for `rows` rows. */
function rowVariant(host: KernelHost, rows: number): RowVariant {
  return host.variants.rowReduce ?? (host.software && rows >= MIN_ROWS_PER_INVOCATION ? 'rows' : 'tree');
}

function rowKernel(
  host: KernelHost, kernel: string, rows: number, pipelineFor: (variant: RowVariant, WG: number) => PipelineRef,
): { pipeline: PipelineRef; groups: Groups } {
  const variant = rowVariant(host, rows);
  const WG = variant === 'rows' ? Math.min(ROWS_WG, host.wg) : host.wg;
  const pipeline = pipelineFor(variant, WG);
  const groups = variant === 'rows' ? host.groups1d(rows, kernel, WG) : host.groups1d(rows, kernel, 1);
  return { pipeline, groups };
}

/** The RMSNorm entry `family_rows4` / `family_rows` / `family_tree` for the row variant (vec4 rows when cols allow). */
function normEntry(family: string, variant: RowVariant, cols: number): string {
  if (variant === 'tree') return `${family}_tree`;
  return cols % 4 === 0 ? `${family}_rows4` : `${family}_rows`;
}

/**
 * Runs `body` with the output buffers; an output that shares its buffer with an input or an earlier output
 * is replaced by a temporary whose first `count` words are copied into place afterwards (outputs are bound
 * writable, and WebGPU forbids a writable binding aliasing another binding).
 */
function withOutputs(
  host: KernelHost, kernel: string, outs: [GPUStorageRef, number][], ins: GPUStorageRef[], body: (outBuffers: GPUBuffer[]) => void,
): void {
  const temps: { tmp: Storage; out: GPUStorageRef; count: number }[] = [];
  const outBuffers = outs.map(([out, count], i) => {
    const clash = ins.some((input) => input.buffer === out.buffer) || outs.slice(0, i).some(([earlier]) => earlier.buffer === out.buffer);
    if (!clash) return out.buffer;
    const tmp = host.alloc(out.dtype, count);
    temps.push({ tmp, out, count });
    return host.gpuStorage(tmp, kernel).buffer;
  });
  body(outBuffers);
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
  let sourceBuffer = source.buffer;
  let sourceView = xView;
  let staged: Storage | null = null;
  if (source.buffer === target.buffer) {
    // Reading and writing one buffer in a dispatch is not allowed: stage the source view contiguously.
    staged = host.alloc(source.dtype, n);
    const copyPipeline = host.pipeline('elementwise', 'copy', { WG: host.wg, OP: 0 }, kernel);
    host.launch(kernel, copyPipeline, stridedParams(kernel, shape, [xView]), [host.gpuStorage(staged, kernel).buffer, source.buffer], host.groups1d(n, kernel));
    sourceBuffer = host.gpuStorage(staged, kernel).buffer;
    sourceView = { strides: contiguousStrides(shape), offset: 0 };
  }
  host.launch(kernel, pipeline, stridedParams(kernel, shape, [sourceView, outView]), [target.buffer, sourceBuffer], host.groups1d(n, kernel));
  if (staged) host.free(staged);
}

// ------------------------------------------------------------------------------------------ log-softmax

export function logSoftmaxGather(
  host: KernelHost, logits: Storage, targets: Storage, logp: Storage, entropy: Storage, lse: Storage, rows: number, cols: number,
): void {
  const kernel = host.kernel('logSoftmaxGather');
  const gpu = gpuStorages(host, kernel, { logits, targets, logp, entropy, lse });
  requireNoAlias(kernel, { logp: gpu.logp, entropy: gpu.entropy, lse: gpu.lse }, { logits: gpu.logits, targets: gpu.targets });
  if (rows === 0) return;
  const { pipeline, groups } = rowKernel(host, kernel, rows, (variant, WG) =>
    host.pipeline('softmax_gather', `lsg_${variant}`, { WG, V4: cols % 4 === 0 ? 1 : 0, U: 4 }, kernel));
  host.launch(kernel, pipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.softmax_gather, { rows, cols }),
    [gpu.logp.buffer, gpu.logits.buffer, gpu.targets.buffer, gpu.entropy.buffer, gpu.lse.buffer], groups);
}

/** sampleRows: one workgroup per row (shaders/sample_rows.wgsl). */
export function sampleRows(host: KernelHost, logits: Storage, uniforms: Storage, out: Storage, rows: number, cols: number, temperature: number): void {
  const kernel = host.kernel('sampleRows');
  const gpu = gpuStorages(host, kernel, { logits, uniforms, out });
  requireNoAlias(kernel, { out: gpu.out }, { logits: gpu.logits, uniforms: gpu.uniforms });
  if (rows === 0) return;
  const pipeline = host.pipeline('sample_rows', temperature === 0 ? 'sample_greedy' : 'sample_rows', { WG: host.wg }, kernel);
  host.launch(kernel, pipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.sample_rows, { rows, cols, temperature }),
    // The greedy entry reads no uniforms: its layout has no binding 3.
    temperature === 0 ? [gpu.out.buffer, gpu.logits.buffer] : [gpu.out.buffer, gpu.logits.buffer, gpu.uniforms.buffer], host.groups1d(rows, kernel, 1));
}

export function logSoftmaxGatherBackward(
  host: KernelHost, logits: Storage, targets: Storage, lse: Storage, entropy: Storage, gLogp: Storage, gEntropy: Storage,
  gLogits: Storage, rows: number, cols: number,
): void {
  const kernel = host.kernel('logSoftmaxGatherBackward');
  const gpu = gpuStorages(host, kernel, { logits, targets, lse, entropy, gLogp, gEntropy, gLogits });
  const ins = [gpu.logits, gpu.targets, gpu.lse, gpu.entropy, gpu.gLogp, gpu.gEntropy];
  if (rows * cols === 0) return;
  const WG = host.wg;
  const U = 4;
  const chunksPerRow = Math.ceil(cols / (WG * 4 * U));
  const pipeline = host.pipeline('softmax_gather', 'lsg_bwd', { WG, V4: cols % 4 === 0 ? 1 : 0, U }, kernel);
  const groups = host.groups1d(rows * chunksPerRow * WG, kernel, WG);
  withOutputs(host, kernel, [[gpu.gLogits, rows * cols]], ins, ([gLogitsBuffer]) => {
    host.launch(kernel, pipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.softmax_gather, { rows, cols, chunksPerRow }),
      [gLogitsBuffer, ...ins.map((input) => input.buffer)], groups);
  });
}

// ------------------------------------------------------------------------------------------ RMSNorm

export function rmsNorm(host: KernelHost, x: Storage, weight: Storage, out: Storage, rstd: Storage, rows: number, cols: number, eps: number): void {
  const kernel = host.kernel('rmsNorm');
  const gpu = gpuStorages(host, kernel, { x, weight, out, rstd });
  if (rows * cols === 0) return;
  const { pipeline, groups } = rowKernel(host, kernel, rows, (variant, WG) => host.pipeline('norm', normEntry('rms_norm', variant, cols), { WG }, kernel));
  withOutputs(host, kernel, [[gpu.out, rows * cols], [gpu.rstd, rows]], [gpu.x, gpu.weight], ([outBuffer, rstdBuffer]) => {
    host.launch(kernel, pipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.norm, { rows, cols, eps }),
      [outBuffer, gpu.x.buffer, gpu.weight.buffer, rstdBuffer], groups);
  });
}

export function rmsNormBackward(
  host: KernelHost, x: Storage, weight: Storage, rstd: Storage, gOut: Storage, gx: Storage, gWeight: Storage, rows: number, cols: number,
): void {
  const kernel = host.kernel('rmsNormBackward');
  const gpu = gpuStorages(host, kernel, { x, weight, rstd, gOut, gx, gWeight });
  if (cols === 0) return;
  const params = (slot: UniformSlot, rowsPerBlock = 0): void => setParams(slot, UNIFORM_LAYOUTS.norm, { rows, cols, rowsPerBlock });
  const ins = [gpu.x, gpu.weight, gpu.rstd, gpu.gOut];
  withOutputs(host, kernel, [[gpu.gx, rows * cols], [gpu.gWeight, cols]], ins, ([gxBuffer, gWeightBuffer]) => {
    if (rows > 0 && rowVariant(host, rows) === 'tree') {
      rmsNormBackwardTree(host, kernel, rows, cols, gxBuffer, gWeightBuffer, ins.map((input) => input.buffer));
      return;
    }
    if (rows > 0) {
      const { pipeline, groups } = rowKernel(host, kernel, rows, (variant, WG) =>
        host.pipeline('norm', normEntry('rms_norm_bwd_gx', variant, cols), { WG }, kernel));
      host.launch(kernel, pipeline, (slot) => params(slot), [gxBuffer, ...ins.map((input) => input.buffer)], groups);
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
      host.launch(kernel, pipeline, (slot) => params(slot, rowsPerBlock), [gWeightBuffer, gpu.x.buffer, gpu.gOut.buffer, gpu.rstd.buffer], [colGroups, 1, 1]);
      return;
    }
    const partials = host.alloc('float32', blocks * cols);
    const partialsBuffer = host.gpuStorage(partials, kernel).buffer;
    host.launch(kernel, pipeline, (slot) => params(slot, rowsPerBlock), [partialsBuffer, gpu.x.buffer, gpu.gOut.buffer, gpu.rstd.buffer], [colGroups, blocks, 1]);
    const reducePipeline = host.pipeline('reduce', 'reduce_loop', { WG, OP: 0 }, kernel);
    host.launch(kernel, reducePipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.reduce, { outer: 1, len: blocks, inner: cols, total: cols, init: 0 }),
      [gWeightBuffer, partialsBuffer], host.groups1d(cols, kernel));
    host.free(partials);
  });
}

/**
 * The 'tree' variant (GPUs): gx and the gWeight column sums in one dispatch (rms_norm_bwd_tree), straight into
 * gWeight when one row block covers the rows, else into per-block partials that one reduce dispatch sums: 1 or 2
 * dispatches instead of 2 or 3. The block count follows the separate kernels' rule for GPUs.
 */
function rmsNormBackwardTree(
  host: KernelHost, kernel: string, rows: number, cols: number, gx: GPUBuffer, gWeight: GPUBuffer, ins: GPUBuffer[],
): void {
  const WG = host.wg;
  const colGroups = Math.ceil(cols / WG);
  const blocks = Math.max(1, Math.min(Math.ceil(256 / colGroups), Math.ceil(rows / 64), host.maxWorkgroupsPerDim));
  const rowsPerBlock = Math.ceil(rows / blocks);
  const pipeline = host.pipeline('norm', 'rms_norm_bwd_tree', { WG }, kernel);
  const partials = blocks > 1 ? host.alloc('float32', blocks * cols) : null;
  const target = partials ? host.gpuStorage(partials, kernel).buffer : gWeight;
  host.launch(kernel, pipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.norm, { rows, cols, rowsPerBlock }),
    [gx, ...ins, target], host.groups1d(rows + colGroups * blocks, kernel, 1));
  if (!partials) return;
  const reducePipeline = host.pipeline('reduce', 'reduce_loop', { WG, OP: 0 }, kernel);
  host.launch(kernel, reducePipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.reduce, { outer: 1, len: blocks, inner: cols, total: cols, init: 0 }),
    [gWeight, target], host.groups1d(cols, kernel));
  host.free(partials);
}

// ------------------------------------------------------------------------------------------ RoPE

const ropeTables = new WeakMap<KernelHost, Map<string, Storage>>();

/** v rounded to 12 significant bits (so its product with a 12-bit integer is exact in float32). */
function round12(v: number): number {
  if (v === 0) return 0;
  const q = 2 ** (Math.floor(Math.log2(Math.abs(v))) - 11);
  return Math.round(v / q) * q;
}

/**
 * Per rotated pair j: f_j / 2π (turns per position) as three 12-bit parts, cached per backend; f_j is
 * θ^(−2j/headDim), or inverseFrequencies[j] when given (scaled RoPE; keyed by its values).
 */
function ropeTable(host: KernelHost, theta: number, headDim: number, inverseFrequencies: Float64Array | null | undefined): Storage {
  let cache = ropeTables.get(host);
  if (!cache) ropeTables.set(host, (cache = new Map()));
  const key = inverseFrequencies ? `table:${inverseFrequencies.join(',')}` : `${theta}:${headDim}`;
  let table = cache.get(key);
  if (!table) {
    const half = headDim / 2;
    const data = new Float32Array(3 * half);
    for (let j = 0; j < half; j++) {
      const frequency = inverseFrequencies ? inverseFrequencies[j] : Math.pow(theta, (-2 * j) / headDim);
      const turns = frequency / (2 * Math.PI);
      const g1 = round12(turns);
      const g2 = round12(turns - g1);
      const g3 = round12(turns - g1 - g2);
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
  const gpu = gpuStorages(host, kernel, { x, positions, out });
  const n = batch * t * heads * headDim;
  requireNoAlias(kernel, { out: gpu.out }, { x: gpu.x, positions: gpu.positions });
  if (n === 0) return;
  const table = host.gpuStorage(ropeTable(host, args.theta, headDim, args.inverseFrequencies), kernel);
  const pairs = n / 2;
  const pipeline = host.pipeline('rope', 'rope', { WG: host.wg }, kernel);
  host.launch(kernel, pipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.rope, {
    pairs, half: headDim / 2, heads, sign: args.inverse ? -1 : 1,
  }), [gpu.out.buffer, gpu.x.buffer, gpu.positions.buffer, table.buffer], host.groups1d(pairs, kernel));
}

// ------------------------------------------------------------------------------------------ SwiGLU

export function swiglu(host: KernelHost, gate: Storage, up: Storage, out: Storage, n: number): void {
  const kernel = host.kernel('swiglu');
  const gpu = gpuStorages(host, kernel, { gate, up, out });
  if (n === 0) return;
  withOutputs(host, kernel, [[gpu.out, n]], [gpu.gate, gpu.up], ([outBuffer]) => {
    elementwise4(host, kernel, 'swiglu', 'swiglu', 'swiglu4', n, () => {}, [outBuffer, gpu.gate.buffer, gpu.up.buffer]);
  });
}

export function swigluBackward(host: KernelHost, gate: Storage, up: Storage, gOut: Storage, gGate: Storage, gUp: Storage, n: number): void {
  const kernel = host.kernel('swigluBackward');
  const gpu = gpuStorages(host, kernel, { gate, up, gOut, gGate, gUp });
  if (n === 0) return;
  withOutputs(host, kernel, [[gpu.gGate, n], [gpu.gUp, n]], [gpu.gate, gpu.up, gpu.gOut], ([gGateBuffer, gUpBuffer]) => {
    elementwise4(host, kernel, 'swiglu', 'swiglu_bwd', 'swiglu_bwd4', n, () => {},
      [gGateBuffer, gpu.gate.buffer, gpu.up.buffer, gpu.gOut.buffer, gUpBuffer]);
  });
}

// ------------------------------------------------------------------------------------------ token loss

/** The token-loss uniform block: n, 1 − epsLow, 1 + epsHigh, dualClip, clamp (bounds rounded once, from float64). */
function tokenLossParams(n: number, args: TokenLossArgs): (slot: UniformSlot) => void {
  return (slot) => setParams(slot, UNIFORM_LAYOUTS.token_loss, {
    n, lo: 1 - args.epsLow, hi: 1 + args.epsHigh, dualClip: args.dualClip, clampC: args.logRatioClamp,
  });
}

/** One token-loss launch over n tokens: the inputs bind first, then the outputs (staged where they alias). */
function launchTokenLoss(
  host: KernelHost, kernel: string, entry: string, ins: GPUStorageRef[], outs: [GPUStorageRef, number][], n: number, args: TokenLossArgs,
): void {
  if (n === 0) return;
  const pipeline = host.pipeline('token_loss', entry, { WG: host.wg }, kernel);
  withOutputs(host, kernel, outs, ins, (outBuffers) => {
    host.launch(kernel, pipeline, tokenLossParams(n, args), [...ins.map((input) => input.buffer), ...outBuffers], host.groups1d(n, kernel));
  });
}

export function tokenLoss(
  host: KernelHost, logp: Storage, oldLogp: Storage, adv: Storage, weight: Storage, loss: Storage, stats: Storage, n: number,
  args: TokenLossArgs,
): void {
  const kernel = host.kernel('tokenLoss');
  const gpu = gpuStorages(host, kernel, { logp, oldLogp, adv, weight, loss, stats });
  launchTokenLoss(host, kernel, 'token_loss', [gpu.logp, gpu.oldLogp, gpu.adv, gpu.weight], [[gpu.loss, n], [gpu.stats, 3 * n]], n, args);
}

export function tokenLossBackward(
  host: KernelHost, logp: Storage, oldLogp: Storage, adv: Storage, weight: Storage, gLoss: Storage, gLogp: Storage, n: number,
  args: TokenLossArgs,
): void {
  const kernel = host.kernel('tokenLossBackward');
  const gpu = gpuStorages(host, kernel, { logp, oldLogp, adv, weight, gLoss, gLogp });
  launchTokenLoss(host, kernel, 'token_loss_bwd', [gpu.logp, gpu.oldLogp, gpu.adv, gpu.weight, gpu.gLoss], [[gpu.gLogp, n]], n, args);
}

// ------------------------------------------------------------------------------------------ LoRA low-rank update

export function lowRankAdd(host: KernelHost, u: Storage, l: Storage, out: Storage, args: LowRankArgs): void {
  const kernel = host.kernel('lowRankAdd');
  const gpu = gpuStorages(host, kernel, { u, l, out });
  requireNoAlias(kernel, { out: gpu.out }, { u: gpu.u, l: gpu.l });
  const { rows, cols, rank } = args;
  if (rows * cols === 0 || rank === 0) return;
  const vec4 = cols % 4 === 0;
  const entry = vec4 ? (args.transL ? 'low_rank_add4_t' : 'low_rank_add4') : 'low_rank_add';
  const pipeline = host.pipeline('low_rank', entry, { WG: host.wg }, kernel);
  host.launch(kernel, pipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.low_rank, {
    rows, cols, rank, transL: args.transL ? 1 : 0, scale: args.scale,
  }), [gpu.out.buffer, gpu.u.buffer, gpu.l.buffer], host.groups1d(vec4 ? rows * (cols / 4) : rows * cols, kernel));
}

/**
 * matmulLowRank on WebGPU: the backend's matmul kernels with the epilogue in their store (tiled, direct, direct4 and
 * subgroup variants, float32 or 16-bit w; core_kernels_webgpu.ts matmul). Shapes the small-output kernel takes
 * (smallMatmulProblem: few output tiles, long k) run it and then the lowRankAdd pass.
 */
export function matmulLowRank(host: KernelHost, x: Storage, w: Storage, u: Storage, l: Storage, out: Storage, args: MatmulLowRankArgs): void {
  const kernel = host.kernel('matmulLowRank');
  const gpu = gpuStorages(host, kernel, { x, u, l, out });
  requireNoAlias(kernel, { out: gpu.out }, { x: gpu.x, w: host.gpuStorage(w, kernel, true), u: gpu.u, l: gpu.l });
  const { rows, cols, inner, rank, scale, transL } = args;
  if (rows * cols === 0) return;
  const product = { batch: 1, m: rows, n: cols, k: inner, transA: false, transB: args.transB, strideA: 0, strideB: 0 };
  if (rank > 0 && matmul(host, x, w, out, product, { u: gpu.u, l: gpu.l, rank, scale, transL })) return;
  matmul(host, x, w, out, product);
  lowRankAdd(host, u, l, out, args);
}

// ------------------------------------------------------------------------------------------ optimizer

// Consecutive adamw calls with the same hyper-parameters and scale (one optimizer step), and consecutive
// sumSquares calls accumulating into one output (a global gradient norm), are coalesced (host.coalesce) and
// recorded as multi-tensor dispatches (optimizer_multi.wgsl): a few tensors per dispatch, as many as the device
// lets one dispatch bind. The per-element arithmetic is unchanged; only the sum of squares adds its partials in
// a different order.

/** A deferred adamw call: the buffers of one tensor, its length and its decay (1 − lr·weightDecay). */
interface AdamwItem {
  param: GPUBuffer;
  m: GPUBuffer;
  v: GPUBuffer;
  grad: GPUBuffer;
  n: number;
  decay: number;
}

/**
 * Whether to coalesce optimizer calls (variants.multiTensor; default: on GPUs, where each dispatch costs a launch
 * and a barrier, not on CPU rasterisers, where dispatches are cheap and the per-invocation choice of tensor made
 * the optimizer step slower on llvmpipe: 510 vs 401 ms median, see the commit message).
 */
function multiTensor(host: KernelHost): boolean {
  return host.variants.multiTensor ?? !host.software;
}

/** Tensors per adamw dispatch: 4 storage bindings each plus the scale, at most 3 (adamw_multi3). */
function adamwPerDispatch(host: KernelHost): number {
  return Math.min(3, Math.floor((host.maxStorageBuffers - 1) / 4));
}

/**
 * Splits `items` in order into chunks of at most `max` whose buffers are pairwise distinct and distinct from
 * `shared` (a writable binding must not alias any other binding of its dispatch).
 */
function disjointChunks<T>(items: T[], max: number, buffersOf: (item: T) => GPUBuffer[], shared: GPUBuffer[]): T[][] {
  const chunks: T[][] = [];
  let chunk: T[] = [];
  let used = new Set<GPUBuffer>(shared);
  for (const item of items) {
    const buffers = buffersOf(item);
    const clash = buffers.some((buffer, i) => used.has(buffer) || buffers.indexOf(buffer) !== i);
    if (chunk.length === max || (chunk.length > 0 && clash)) {
      chunks.push(chunk);
      chunk = [];
      used = new Set<GPUBuffer>(shared);
    }
    chunk.push(item);
    for (const buffer of buffers) used.add(buffer);
  }
  if (chunk.length) chunks.push(chunk);
  return chunks;
}

export function adamw(host: KernelHost, param: Storage, grad: Storage, m: Storage, v: Storage, scale: Storage, args: AdamWArgs, n: number): void {
  const kernel = host.kernel('adamw');
  const gpu = gpuStorages(host, kernel, { param, grad, m, v, scale });
  requireNoAlias(kernel, { param: gpu.param, m: gpu.m, v: gpu.v }, { grad: gpu.grad, scale: gpu.scale });
  if (n === 0) return;
  const common = {
    lr: args.lr, beta1: args.beta1, beta2: args.beta2, eps: args.eps,
    oneMinusBeta1: 1 - args.beta1, oneMinusBeta2: 1 - args.beta2,
    bc1: 1 - Math.pow(args.beta1, args.step), bc2: 1 - Math.pow(args.beta2, args.step),
  };
  const item: AdamwItem = { param: gpu.param.buffer, m: gpu.m.buffer, v: gpu.v.buffer, grad: gpu.grad.buffer, n, decay: 1 - args.lr * args.weightDecay };
  const scaleBuffer = gpu.scale.buffer;
  const perDispatch = adamwPerDispatch(host);
  if (perDispatch < 2 || !multiTensor(host)) {
    adamwOne(host, kernel, scaleBuffer, common, item);
    return;
  }
  host.coalesce(['adamw', scaleBuffer, args.lr, args.beta1, args.beta2, args.eps, args.step], item, (items: AdamwItem[]) => {
    const chunks = disjointChunks(items, perDispatch, (t) => [t.param, t.m, t.v, t.grad], [scaleBuffer]);
    for (const chunk of chunks) {
      if (chunk.length === 1) {
        adamwOne(host, kernel, scaleBuffer, common, chunk[0]);
        continue;
      }
      const vec4 = chunk.every((t) => t.n % 4 === 0);
      const ends: number[] = [];
      for (const t of chunk) ends.push((ends.at(-1) ?? 0) + (vec4 ? t.n / 4 : t.n));
      const pipeline = host.pipeline('optimizer_multi', `${vec4 ? 'adamw4' : 'adamw'}_multi${chunk.length}`, { WG: host.wg }, kernel);
      host.launch(kernel, pipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.optimizer_multi, {
        ...common, end0: ends[0], end1: ends[1], end2: ends[2] ?? 0,
        decay0: chunk[0].decay, decay1: chunk[1].decay, decay2: chunk[2]?.decay ?? 0,
      }), [scaleBuffer, ...chunk.flatMap((t) => [t.param, t.m, t.v, t.grad])], host.groups1d(ends.at(-1)!, kernel));
    }
  });
}

/** One tensor's update: the vec4 entry over ⌊n/4⌋·4 elements, the scalar one over the rest. */
function adamwOne(host: KernelHost, kernel: string, scale: GPUBuffer, common: Record<string, number>, t: AdamwItem): void {
  elementwise4(host, kernel, 'adamw', 'adamw', 'adamw4', t.n, (slot) => setParams(slot, UNIFORM_LAYOUTS.adamw, { ...common, decay: t.decay }),
    [t.param, t.m, t.v, t.grad, scale]);
}

/** Inputs up to this many elements per invocation are summed by a single workgroup. */
const SINGLE_PASS_PER_INVOCATION = 64;
/** Tensors per sum_squares_multi dispatch (its 7 inputs and the partials fit the default 8 storage bindings). */
const SUM_SQUARES_PER_DISPATCH = 7;

interface SumSquaresItem {
  x: GPUBuffer;
  n: number;
  accumulate: boolean;
}

export function sumSquares(host: KernelHost, x: Storage, out: Storage, n: number, accumulate: boolean): void {
  const kernel = host.kernel('sumSquares');
  const gpu = gpuStorages(host, kernel, { x, out });
  requireNoAlias(kernel, { out: gpu.out }, { x: gpu.x });
  const outBuffer = gpu.out.buffer;
  if (host.maxStorageBuffers < SUM_SQUARES_PER_DISPATCH + 1 || !multiTensor(host)) {
    sumSquaresOne(host, kernel, outBuffer, { x: gpu.x.buffer, n, accumulate });
    return;
  }
  host.coalesce(['sumSquares', outBuffer], { x: gpu.x.buffer, n, accumulate }, (items: SumSquaresItem[]) => {
    // A call that does not accumulate restarts the sum: each restart begins a segment of its own.
    const segments: SumSquaresItem[][] = [];
    for (const item of items) {
      if (!item.accumulate || segments.length === 0) segments.push([]);
      segments.at(-1)!.push(item);
    }
    for (const segment of segments) {
      if (segment.length === 1) sumSquaresOne(host, kernel, outBuffer, segment[0]);
      else sumSquaresMulti(host, kernel, outBuffer, segment);
    }
  });
}

/** Workgroups of the first pass over n elements (0: none; small inputs: one). */
function sumSquaresGroups(host: KernelHost, n: number): number {
  if (n === 0) return 0;
  return Math.min(Math.ceil(n / (host.wg * SINGLE_PASS_PER_INVOCATION)), host.software ? 64 : 1024, host.maxWorkgroupsPerDim);
}

/** Σ x² over the segment's tensors into out[0] (plus out[0] when its first call accumulates): partials, one final pass. */
function sumSquaresMulti(host: KernelHost, kernel: string, out: GPUBuffer, segment: SumSquaresItem[]): void {
  const WG = host.wg;
  const total = segment.reduce((sum, t) => sum + sumSquaresGroups(host, t.n), 0);
  const partials = host.alloc('float32', Math.max(total, 1));
  const partialsBuffer = host.gpuStorage(partials, kernel).buffer;
  const multi = host.pipeline('optimizer_multi', 'sum_squares_multi', { WG }, kernel);
  let base = 0;
  for (let first = 0; first < segment.length; first += SUM_SQUARES_PER_DISPATCH) {
    const chunk = segment.slice(first, first + SUM_SQUARES_PER_DISPATCH);
    const ends: number[] = [];
    const counts: number[] = [];
    for (let t = 0; t < SUM_SQUARES_PER_DISPATCH; t++) {
      ends.push((ends.at(-1) ?? 0) + (t < chunk.length ? sumSquaresGroups(host, chunk[t].n) : 0));
      counts.push(t < chunk.length ? chunk[t].n : 0);
    }
    const groups = ends.at(-1)!;
    const inputs = Array.from({ length: SUM_SQUARES_PER_DISPATCH }, (_, t) => chunk[Math.min(t, chunk.length - 1)].x);
    const chunkBase = base;
    host.launch(kernel, multi, (slot) => setParams(slot, UNIFORM_LAYOUTS.optimizer_multi, {
      base: chunkBase,
      end0: ends[0], end1: ends[1], end2: ends[2], end3: ends[3], end4: ends[4], end5: ends[5], end6: ends[6],
      n0: counts[0], n1: counts[1], n2: counts[2], n3: counts[3], n4: counts[4], n5: counts[5], n6: counts[6],
    }), [partialsBuffer, ...inputs], [groups, 1, 1]);
    base += groups;
  }
  const final = host.pipeline('adamw', 'sum_squares', { WG }, kernel);
  host.launch(kernel, final, (slot) => setParams(slot, UNIFORM_LAYOUTS.adamw, {
    n: total, final_: 1, accumulate: segment[0].accumulate ? 1 : 0, square: 0,
  }), [out, partialsBuffer], [1, 1, 1]);
  host.free(partials);
}

/** One tensor's Σ x²: a single workgroup for small inputs, else partials and a final pass. */
function sumSquaresOne(host: KernelHost, kernel: string, out: GPUBuffer, item: SumSquaresItem): void {
  const { x, n, accumulate } = item;
  const WG = host.wg;
  const pipeline = host.pipeline('adamw', 'sum_squares', { WG }, kernel);
  const finalPass = (source: GPUBuffer, count: number, square: boolean): void => {
    host.launch(kernel, pipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.adamw, {
      n: count, final_: 1, accumulate: accumulate ? 1 : 0, square: square ? 1 : 0,
    }), [out, source], [1, 1, 1]);
  };
  if (n <= WG * SINGLE_PASS_PER_INVOCATION) {
    finalPass(x, n, true);
    return;
  }
  const groups = sumSquaresGroups(host, n);
  const partials = host.alloc('float32', groups);
  const partialsBuffer = host.gpuStorage(partials, kernel).buffer;
  host.launch(kernel, pipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.adamw, { n, final_: 0, square: 1 }), [partialsBuffer, x], [groups, 1, 1]);
  finalPass(partialsBuffer, groups, false);
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
    sampleRows: (logits, uniforms, out, rows, cols, temperature) => sampleRows(host, logits, uniforms, out, rows, cols, temperature),
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
    matmulLowRank: (x, w, u, l, out, args) => matmulLowRank(host, x, w, u, l, out, args),
    adamw: (param, grad, m, v, scale, args, n) => adamw(host, param, grad, m, v, scale, args, n),
    sumSquares: (x, out, n, accumulate) => sumSquares(host, x, out, n, accumulate),
  } satisfies ModelKernels;
}
