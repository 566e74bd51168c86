// WebGPU launchers of the core kernels of the Backend interface (fill, arange, random, cast, unary, binary,
// where, copy, reduce, matmul, softmax, gather, scatterAdd), in the host-function style of the model
// kernels, plus the helpers every launcher module shares: the strided uniform layout, raw word copies and
// the output-aliasing guard.
import { BINARY_CODE, type BinaryOp, type ReduceOp, UNARY_CODE, type UnaryOp } from '../backend.js';
import { STRIDED_UNIFORM, stridedUniformStride } from '../kernel_layouts.js';
import { mix32 } from '../rng.js';
import {
  type DType, type HalfDType, KernelError, type MatmulArgs, type RandomArgs, type Storage, type View, coalesce, isHalfDType, sizeOf,
  storageBytes,
} from '../types.js';
import { type GPUStorageRef, type KernelHost, type UniformSlot, bindingOf } from './kernel_host.js';
import { matmulSmall, smallMatmulProblem } from './matmul_small_webgpu.js';
import { UNIFORM_LAYOUTS, setParams } from './uniform_params.js';

const ELEMENTWISE = UNIFORM_LAYOUTS.elementwise;
/** The shaders' codes of the 16-bit formats (include/half_widen.wgsl). */
export const HALF_KIND: Record<HalfDType, number> = { bfloat16: 1, float16: 2 };

/**
 * The strided uniform block of shaders/elementwise.wgsl (STRIDED_UNIFORM): n, rank, then shape[d], the
 * stride of each view in each dim and the offset of each view (up to three views).
 */
export function stridedParams(kernel: string, shape: readonly number[], views: readonly View[]): (slot: UniformSlot) => void {
  const merged = coalesce(shape, views);
  if (merged.shape.length > STRIDED_UNIFORM.maxDims) throw new KernelError(kernel, `rank ${merged.shape.length} exceeds ${STRIDED_UNIFORM.maxDims}`);
  const n = sizeOf(shape);
  return (slot) => {
    setParams(slot, ELEMENTWISE, { n, rank: merged.shape.length });
    for (let d = 0; d < merged.shape.length; d++) {
      slot.u[STRIDED_UNIFORM.shape + d] = merged.shape[d];
      for (let v = 0; v < merged.views.length; v++) slot.u[stridedUniformStride(v, d)] = merged.views[v].strides[d];
    }
    for (let v = 0; v < merged.views.length; v++) slot.u[STRIDED_UNIFORM.offsets + v] = merged.views[v].offset;
  };
}

/** Copies n raw words src → dst (contiguous) with the elementwise copy kernel. */
export function copyWords(host: KernelHost, kernel: string, src: GPUBuffer, dst: GPUBuffer, n: number): void {
  const pipeline = host.pipeline('elementwise', 'copy', { WG: host.wg, OP: 0 }, kernel);
  host.launch(kernel, pipeline, (slot) => {
    setParams(slot, ELEMENTWISE, { n, rank: 1 });
    slot.u[STRIDED_UNIFORM.shape] = n;
    slot.u[stridedUniformStride(0, 0)] = 1;
  }, [dst, src], host.groups1d(n, kernel));
}

/** Runs `body(outBuffer)`; when `out` aliases an input, into a temporary that is then copied to `out`. */
export function aliasGuard(host: KernelHost, kernel: string, out: GPUStorageRef, inputs: GPUStorageRef[], body: (outBuffer: GPUBuffer) => void): void {
  if (!inputs.some((input) => input.buffer === out.buffer)) {
    body(out.buffer);
    return;
  }
  const temp = host.alloc(out.dtype, out.size);
  body(host.gpuStorage(temp, kernel).buffer);
  copyWords(host, kernel, host.gpuStorage(temp, kernel).buffer, out.buffer, out.size);
  host.free(temp);
}

/** The 32-bit word fill writes for `value` in a storage of `dtype` (int32 truncated, else float32 bits). */
export function fillBits(dtype: DType, value: number): number {
  return dtype === 'int32' ? (Math.trunc(value) | 0) >>> 0 : new Uint32Array(new Float32Array([value]).buffer)[0];
}

export function fill(host: KernelHost, out: Storage, value: number): void {
  const kernel = host.kernel('fill');
  const target = host.gpuStorage(out, kernel);
  const bits = fillBits(target.dtype, value);
  const pipeline = host.pipeline('elementwise', 'fill', { WG: host.wg, OP: 0 }, kernel);
  host.launch(kernel, pipeline, (slot) => setParams(slot, ELEMENTWISE, { n: target.size, flag: bits }), [target.buffer], host.groups1d(target.size, kernel));
}

/**
 * Zeroes every 32-bit word of `out` (any dtype, 16-bit storages included) with the fill kernel, recorded in order
 * with the other dispatches. Used by alloc instead of queue.writeBuffer of a zero array: through a browser's GPU
 * process that write streams every byte over IPC (Chromium, GLES compat adapter: about 0.5 s for the 40 MiB of a
 * 151 k-vocabulary logits buffer), while the dispatch writes them where they live.
 */
export function zeroFill(host: KernelHost, out: Storage): void {
  const kernel = host.kernel('alloc.zero');
  const target = host.gpuStorage(out, kernel, true);
  const words = storageBytes(target.dtype, target.size) / 4;
  const pipeline = host.pipeline('elementwise', 'fill', { WG: host.wg, OP: 0 }, kernel);
  host.launch(kernel, pipeline, (slot) => setParams(slot, ELEMENTWISE, { n: words, flag: 0 }), [target.buffer], host.groups1d(words, kernel));
}

export function arange(host: KernelHost, out: Storage, start: number, step: number): void {
  const kernel = host.kernel('arange');
  const target = host.gpuStorage(out, kernel);
  const intExact = target.dtype === 'int32' && Number.isInteger(start) && Number.isInteger(step)
    && Math.abs(start) < 2 ** 31 && Math.abs(step) < 2 ** 31;
  const mode = target.dtype === 'float32' ? 0 : intExact ? 1 : 2;
  const pipeline = host.pipeline('elementwise', 'arange', { WG: host.wg, OP: 0 }, kernel);
  host.launch(kernel, pipeline, (slot) => {
    setParams(slot, ELEMENTWISE, { n: target.size, flag: mode, scalar: start, scalar2: step, intStart: start | 0, intStep: step | 0 });
  }, [target.buffer], host.groups1d(target.size, kernel));
}

export function random(host: KernelHost, out: Storage, args: RandomArgs): void {
  const kernel = host.kernel(`random.${args.kind}`);
  const target = host.gpuStorage(out, kernel);
  const key = mix32(args.seed);
  const pipeline = host.pipeline('random', 'random', { WG: host.wg }, kernel);
  host.launch(kernel, pipeline, (slot) => {
    setParams(slot, UNIFORM_LAYOUTS.random, { n: target.size, key, kind: args.kind === 'uniform' ? 0 : 1, a: args.a, b: args.b });
  }, [target.buffer], host.groups1d(target.size, kernel));
}

export function cast(host: KernelHost, x: Storage, out: Storage): void {
  const kernel = host.kernel('cast');
  const source = host.gpuStorage(x, kernel, true);
  const target = host.gpuStorage(out, kernel);
  if (source.size < target.size) throw new KernelError(kernel, `input has ${source.size} elements, output ${target.size}`);
  if (isHalfDType(source.dtype)) {
    if (target.dtype !== 'float32') throw new KernelError(kernel, `${source.dtype} casts to float32 only, not ${target.dtype}`);
    if (target.size === 0) return;
    const widen = host.pipeline('embedding', 'widen_half', { WG: host.wg, KIND: HALF_KIND[source.dtype] }, kernel);
    host.launch(kernel, widen, (slot) => setParams(slot, UNIFORM_LAYOUTS.embedding, { nIds: 0, rowLen: 1, rows: 0, total: target.size }),
      [target.buffer, source.buffer], host.groups1d(target.size, kernel));
    return;
  }
  const mode = source.dtype === target.dtype ? 2 : source.dtype === 'float32' ? 0 : 1;
  const pipeline = host.pipeline('elementwise', 'cast_dtype', { WG: host.wg, OP: 0 }, kernel);
  aliasGuard(host, kernel, target, [source], (outBuffer) => {
    host.launch(kernel, pipeline, (slot) => setParams(slot, ELEMENTWISE, { n: target.size, flag: mode }), [outBuffer, source.buffer], host.groups1d(target.size, kernel));
  });
}

export function unary(host: KernelHost, op: UnaryOp, x: Storage, xView: View, out: Storage, shape: readonly number[], scalar: number): void {
  const kernel = host.kernel(`unary.${op}`);
  const source = host.gpuStorage(x, kernel);
  const target = host.gpuStorage(out, kernel);
  const n = sizeOf(shape);
  if (n === 0) return;
  const params = stridedParams(kernel, shape, [xView]);
  const pipeline = host.pipeline('elementwise', 'unary', { WG: host.wg, OP: UNARY_CODE[op] }, kernel);
  aliasGuard(host, kernel, target, [source], (outBuffer) => {
    host.launch(kernel, pipeline, (slot) => { params(slot); setParams(slot, ELEMENTWISE, { scalar }); }, [outBuffer, source.buffer], host.groups1d(n, kernel));
  });
}

export function binary(
  host: KernelHost, op: BinaryOp, a: Storage, aView: View, b: Storage, bView: View, out: Storage, shape: readonly number[],
): void {
  const kernel = host.kernel(`binary.${op}`);
  const left = host.gpuStorage(a, kernel);
  const right = host.gpuStorage(b, kernel);
  const target = host.gpuStorage(out, kernel);
  const n = sizeOf(shape);
  if (n === 0) return;
  const params = stridedParams(kernel, shape, [aView, bView]);
  const pipeline = host.pipeline('elementwise', 'binary', { WG: host.wg, OP: BINARY_CODE[op] }, kernel);
  aliasGuard(host, kernel, target, [left, right], (outBuffer) => {
    host.launch(kernel, pipeline, params, [outBuffer, left.buffer, right.buffer], host.groups1d(n, kernel));
  });
}

export function where(
  host: KernelHost, cond: Storage, cView: View, a: Storage, aView: View, b: Storage, bView: View, out: Storage, shape: readonly number[],
): void {
  const kernel = host.kernel('where');
  const condition = host.gpuStorage(cond, kernel);
  const ifTrue = host.gpuStorage(a, kernel);
  const ifFalse = host.gpuStorage(b, kernel);
  const target = host.gpuStorage(out, kernel);
  const n = sizeOf(shape);
  if (n === 0) return;
  const params = stridedParams(kernel, shape, [cView, aView, bView]);
  const pipeline = host.pipeline('elementwise', 'where_', { WG: host.wg, OP: 0 }, kernel);
  aliasGuard(host, kernel, target, [condition, ifTrue, ifFalse], (outBuffer) => {
    host.launch(kernel, pipeline, (slot) => { params(slot); setParams(slot, ELEMENTWISE, { flag: condition.dtype === 'int32' ? 1 : 0 }); },
      [outBuffer, condition.buffer, ifTrue.buffer, ifFalse.buffer], host.groups1d(n, kernel));
  });
}

export function copy(host: KernelHost, x: Storage, xView: View, out: Storage, outOffset: number, shape: readonly number[]): void {
  const kernel = host.kernel('copy');
  const source = host.gpuStorage(x, kernel);
  const target = host.gpuStorage(out, kernel);
  const n = sizeOf(shape);
  if (n === 0) return;
  if (outOffset + n > target.size) throw new KernelError(kernel, `writes [${outOffset}, ${outOffset + n}) past the output size ${target.size}`);
  const params = stridedParams(kernel, shape, [xView]);
  const pipeline = host.pipeline('elementwise', 'copy', { WG: host.wg, OP: 0 }, kernel);
  aliasGuard(host, kernel, target, [source], (outBuffer) => {
    host.launch(kernel, pipeline, (slot) => { params(slot); setParams(slot, ELEMENTWISE, { outOffset }); }, [outBuffer, source.buffer], host.groups1d(n, kernel));
  });
}

export function reduce(host: KernelHost, op: ReduceOp, x: Storage, out: Storage, outer: number, len: number, inner: number): void {
  const kernel = host.kernel(`reduce.${op}`);
  const source = host.gpuStorage(x, kernel);
  const target = host.gpuStorage(out, kernel);
  const total = outer * inner;
  if (total === 0) return;
  const code = op === 'sum' ? 0 : op === 'max' ? 1 : 2;
  const init = op === 'sum' ? 0 : op === 'max' ? -Infinity : Infinity;
  // A workgroup per output for long rows when there are few outputs or rows are contiguous (inner = 1);
  // otherwise one invocation per output, whose reads coalesce across q.
  const tree = len >= 64 && (inner === 1 || total <= 2048);
  const pipeline = host.pipeline('reduce', tree ? 'reduce_tree' : 'reduce_loop', { WG: host.wg, OP: code }, kernel);
  const groups = tree ? host.groups1d(total, kernel, 1) : host.groups1d(total, kernel);
  aliasGuard(host, kernel, target, [source], (outBuffer) => {
    host.launch(kernel, pipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.reduce, { outer, len, inner, total, init }),
      [outBuffer, source.buffer], groups);
  });
}

/**
 * The LoRA epilogue of matmulLowRank, added by the matmul kernels' store (include/matmul_params.wgsl, template
 * LOW_RANK = 1): out += scale · u·op(l), u [m, rank], l [n, rank] or (transL) [rank, n]; batch 1 only.
 */
export interface LowRankStore {
  u: GPUStorageRef;
  l: GPUStorageRef;
  rank: number;
  scale: number;
  transL: boolean;
}

/** The template token and uniform fields of the epilogue (zeros without one). */
function lowRankParams(lowRank: LowRankStore | null): { tpl: Record<string, number>; params: Record<string, number>; buffers: GPUBuffer[] } {
  return lowRank
    ? { tpl: { LOW_RANK: 1 }, params: { rank: lowRank.rank, transL: lowRank.transL ? 1 : 0, scale: lowRank.scale }, buffers: [lowRank.u.buffer, lowRank.l.buffer] }
    : { tpl: {}, params: {}, buffers: [] };
}

/**
 * Batched matmul; with `lowRank`, one product (batch 1) with the LoRA epilogue in the store. Returns false, with
 * nothing computed, for the one variant without the epilogue (the small-output kernel, matmul_small.wgsl): the
 * caller then runs matmul and lowRankAdd.
 */
export function matmul(host: KernelHost, a: Storage, b: Storage, out: Storage, args: MatmulArgs, lowRank: LowRankStore | null = null): boolean {
  const kernel = host.kernel(lowRank ? 'matmulLowRank' : 'matmul');
  const left = host.gpuStorage(a, kernel);
  const right = host.gpuStorage(b, kernel, true);
  const target = host.gpuStorage(out, kernel);
  return matmulRefs(host, kernel, left, right, target, args, lowRank);
}

/** matmul on resolved operands (B may be a window of a larger storage: windows_webgpu.ts). */
export function matmulRefs(host: KernelHost, kernel: string, left: GPUStorageRef, right: GPUStorageRef, target: GPUStorageRef,
  args: MatmulArgs, lowRank: LowRankStore | null = null): boolean {
  const { batch, m, n } = args;
  if (lowRank && batch !== 1) throw new KernelError(kernel, 'the low-rank epilogue takes one product (batch 1)');
  if (batch * m * n === 0) return true;
  if (target.size < batch * m * n) throw new KernelError(kernel, `output has ${target.size} elements, needs ${batch * m * n}`);
  if (right.dtype === 'int32') throw new KernelError(kernel, 'expects a float32 or 16-bit B, got int32');
  const config = host.matmul;
  const inputs = lowRank ? [left, right, lowRank.u, lowRank.l] : [left, right];
  const epilogue = lowRankParams(lowRank);
  if (isHalfDType(right.dtype)) {
    matmulHalfB(host, kernel, left, right, target, args, HALF_KIND[right.dtype], inputs, epilogue);
    return true;
  }
  const small = config.small === false ? null : smallMatmulProblem(host, args);
  if (small) {
    if (lowRank) return false;
    aliasGuard(host, kernel, target, [left, right], (outBuffer) => matmulSmall(host, kernel, left, right, outBuffer, args, small));
    return true;
  }
  // The vec4 variants need every vec4 read aligned and in bounds.
  const vec4 = config.kind !== 'tiled' && args.k % 4 === 0 && args.strideA % 4 === 0 && args.strideB % 4 === 0 && (args.transB || n % 4 === 0);
  const subgroups = config.kind === 'subgroups' && host.subgroupMinSize >= 8 && config.TM % 8 === 0;
  const entry = config.kind === 'tiled' ? 'matmul' : !vec4 ? 'matmul_direct' : subgroups ? 'matmul_subgroups' : 'matmul_direct4';
  const tiled = entry === 'matmul';
  const pipeline = host.pipeline(entry === 'matmul_subgroups' ? 'matmul_subgroups' : 'matmul', entry, {
    WX: config.WX, WY: tiled ? config.WY : 1, TM: config.TM, BK: tiled ? config.BK : 4, R: subgroups ? config.TM / 8 : 0,
    TRANS_A: args.transA ? 1 : 0, TRANS_B: args.transB ? 1 : 0, ...epilogue.tpl,
  }, kernel);
  const rowBlock = tiled ? config.WY * config.TM : config.TM;
  const colBlock = config.WX * 4;
  const colGroups = Math.ceil(n / colBlock);
  const rowGroups = Math.ceil(m / rowBlock);
  const maxDim = host.maxWorkgroupsPerDim;
  if (colGroups > maxDim || rowGroups > maxDim) throw new KernelError(kernel, `matrix of ${m}×${n} exceeds the dispatch limits`);
  const rowsFirst = entry !== 'matmul' && entry !== 'matmul_direct';
  aliasGuard(host, kernel, target, inputs, (outBuffer) => {
    for (let firstBatch = 0; firstBatch < batch; firstBatch += maxDim) {
      const batches = Math.min(maxDim, batch - firstBatch);
      // matmul.wgsl and matmul_subgroups.wgsl share their uniform struct (include/matmul_params.wgsl).
      host.launch(kernel, pipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.matmul, {
        m, n, k: args.k, batchOffset: firstBatch, strideA: args.strideA, strideB: args.strideB, ...epilogue.params,
      }), [outBuffer, left.buffer, bindingOf(right), ...epilogue.buffers], rowsFirst ? [rowGroups, colGroups, batches] : [colGroups, rowGroups, batches]);
    }
  });
  return true;
}

/**
 * matmul with a 16-bit B (matmul_half.wgsl): the tiled kernel on GPUs, the direct one on CPU rasterisers (the
 * vec4, subgroup and small-output variants read B as f32 vectors, so they are not used here); B is widened on load.
 */
function matmulHalfB(host: KernelHost, kernel: string, left: GPUStorageRef, right: GPUStorageRef, target: GPUStorageRef,
  args: MatmulArgs, half: number, inputs: GPUStorageRef[], epilogue: ReturnType<typeof lowRankParams>): void {
  const { batch, m, n } = args;
  const config = host.matmul;
  const tiled = config.kind === 'tiled';
  const pipeline = host.pipeline('matmul_half', tiled ? 'matmul' : 'matmul_direct', {
    WX: config.WX, WY: tiled ? config.WY : 1, TM: config.TM, BK: tiled ? config.BK : 4,
    TRANS_A: args.transA ? 1 : 0, TRANS_B: args.transB ? 1 : 0, HALF: half, ...epilogue.tpl,
  }, kernel);
  const colGroups = Math.ceil(n / (config.WX * 4));
  const rowGroups = Math.ceil(m / (tiled ? config.WY * config.TM : config.TM));
  const maxDim = host.maxWorkgroupsPerDim;
  if (colGroups > maxDim || rowGroups > maxDim) throw new KernelError(kernel, `matrix of ${m}×${n} exceeds the dispatch limits`);
  aliasGuard(host, kernel, target, inputs, (outBuffer) => {
    for (let firstBatch = 0; firstBatch < batch; firstBatch += maxDim) {
      const batches = Math.min(maxDim, batch - firstBatch);
      host.launch(kernel, pipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.matmul_half, {
        m, n, k: args.k, batchOffset: firstBatch, strideA: args.strideA, strideB: args.strideB, ...epilogue.params,
      }), [outBuffer, left.buffer, bindingOf(right), ...epilogue.buffers], [colGroups, rowGroups, batches]);
    }
  });
}

export function softmax(host: KernelHost, x: Storage, out: Storage, rows: number, cols: number, log: boolean): void {
  const kernel = host.kernel(log ? 'logSoftmax' : 'softmax');
  const source = host.gpuStorage(x, kernel);
  const target = host.gpuStorage(out, kernel);
  if (rows * cols === 0) return;
  const pipeline = host.pipeline('softmax', 'softmax', { WG: host.wg, LOG: log ? 1 : 0 }, kernel);
  aliasGuard(host, kernel, target, [source], (outBuffer) => {
    host.launch(kernel, pipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.softmax, { rows, cols, ninf: -Infinity }),
      [outBuffer, source.buffer], host.groups1d(rows, kernel, 1));
  });
}

export function gather(host: KernelHost, table: Storage, ids: Storage, out: Storage, nIds: number, rowLen: number): void {
  const kernel = host.kernel('gather');
  const rowsOf = host.gpuStorage(table, kernel, true);
  const idList = host.gpuStorage(ids, kernel);
  const target = host.gpuStorage(out, kernel);
  if (idList.dtype !== 'int32') throw new KernelError(kernel, 'ids must be int32');
  if (rowsOf.dtype === 'int32') throw new KernelError(kernel, 'expects a float32 or 16-bit table, got int32');
  const total = nIds * rowLen;
  if (total === 0) return;
  const pipeline = isHalfDType(rowsOf.dtype)
    ? host.pipeline('embedding', 'gather_half', { WG: host.wg, KIND: HALF_KIND[rowsOf.dtype] }, kernel)
    : host.pipeline('embedding', 'gather', { WG: host.wg }, kernel);
  const rows = Math.floor(rowsOf.size / rowLen);
  aliasGuard(host, kernel, target, [rowsOf, idList], (outBuffer) => {
    host.launch(kernel, pipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.embedding, { nIds, rowLen, rows, total }),
      [outBuffer, rowsOf.buffer, idList.buffer], host.groups1d(total, kernel));
  });
}

export function scatterAdd(host: KernelHost, src: Storage, ids: Storage, out: Storage, nIds: number, rowLen: number): void {
  const kernel = host.kernel('scatterAdd');
  const source = host.gpuStorage(src, kernel);
  const idList = host.gpuStorage(ids, kernel);
  const target = host.gpuStorage(out, kernel);
  if (idList.dtype !== 'int32') throw new KernelError(kernel, 'ids must be int32');
  if (nIds * rowLen === 0) return;
  if (target.buffer === source.buffer || target.buffer === idList.buffer) throw new KernelError(kernel, 'out must not alias src or ids');
  const pipeline = host.pipeline('embedding', 'scatter_add', { WG: host.wg }, kernel);
  const rows = Math.floor(target.size / rowLen);
  host.launch(kernel, pipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.embedding, { nIds, rowLen, rows, total: rowLen }),
    [target.buffer, source.buffer, idList.buffer], host.groups1d(rowLen, kernel));
}
