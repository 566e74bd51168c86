// Attention launchers (forward and backward) for the WebGPU backend. Two kernel families each:
// 'subgroups' (shaders/attention_subgroups.wgsl, attention_backward_subgroups.wgsl) for CPU rasterisers with
// a fixed subgroup size, barrier-free with rows shared by subgroupBroadcast; 'tiled' (attention.wgsl,
// attention_backward.wgsl) with key / query tiles in workgroup memory for GPUs and devices without
// subgroups. The head dim specialises the pipeline (registers are unrolled over it); every other shape is
// a uniform.
import { type AttentionArgs, KernelError, type Storage } from '../types.js';
import { type GPUStorageRef, type KernelHost, type UniformSlot, gpuStorages, requireNoAlias } from './kernel_host.js';
import { UNIFORM_LAYOUTS, setParams } from './uniform_params.js';

type Variant = 'subgroups' | 'tiled';

/** Head dims the unrolled subgroup kernels accept (registers scale with it). */
const MAX_SUBGROUP_HEAD_DIM = 256;

function pickVariant(host: KernelHost, headDim: number): Variant {
  const subgroupsFit = host.fixedSubgroupSize >= 4 && host.fixedSubgroupSize <= 64 && headDim % 4 === 0 && headDim <= MAX_SUBGROUP_HEAD_DIM;
  if (!subgroupsFit) return 'tiled';
  return host.variants.attention ?? (host.software ? 'subgroups' : 'tiled');
}

/** The keyStart binding; without keyStart any read-only buffer fills it (the kernel does not read it). */
function keyStartBuffer(inputs: { q: GPUStorageRef; keyStart: GPUStorageRef | null }): GPUBuffer {
  return inputs.keyStart ? inputs.keyStart.buffer : inputs.q.buffer;
}

/** The uniform block shared by every attention kernel (each family includes attention_params.wgsl). */
function attentionParams(args: AttentionArgs, hasKeyStart: boolean): (slot: UniformSlot) => void {
  return (slot) => setParams(slot, UNIFORM_LAYOUTS.attention, {
    tq: args.tq, tk: args.tk, kvStride: args.kvStride, heads: args.heads, kvHeads: args.kvHeads, group: args.heads / args.kvHeads,
    qOffset: args.qOffset, causal: args.causal ? 1 : 0, hasKeyStart: hasKeyStart ? 1 : 0, scale: args.scale, inf: Infinity,
    headDim: args.headDim, rows: args.batch * args.heads * args.tq,
  });
}

function checkGrid(host: KernelHost, kernel: string, groups: readonly number[]): void {
  if (groups.some((count) => count > host.maxWorkgroupsPerDim)) {
    throw new KernelError(kernel, `grid [${groups.join(', ')}] exceeds maxComputeWorkgroupsPerDimension (${host.maxWorkgroupsPerDim})`);
  }
}

/** Keys per workgroup-memory tile of the tiled kernels: `arrays` tiles of BK × headDim floats must fit. */
function tileKeys(host: KernelHost, kernel: string, headDim: number, arrays: number, extraFloats: number): number {
  const fit = Math.floor((host.maxWorkgroupStorage / 4 - extraFloats) / (arrays * headDim));
  if (fit < 1) throw new KernelError(kernel, `headDim ${headDim} does not fit the device's workgroup memory (${host.maxWorkgroupStorage} bytes)`);
  return Math.min(32, fit);
}

export function attention(
  host: KernelHost, q: Storage, k: Storage, v: Storage, keyStart: Storage | null, out: Storage, lse: Storage, args: AttentionArgs,
): void {
  const kernel = host.kernel('attention');
  const gpu = gpuStorages(host, kernel, { q, k, v, keyStart, out, lse });
  const rows = args.batch * args.heads * args.tq;
  requireNoAlias(kernel, { out: gpu.out, lse: gpu.lse }, { q: gpu.q, k: gpu.k, v: gpu.v, keyStart: gpu.keyStart });
  if (rows === 0) return;
  // The kernels' row blocks run over the query rows of all heads sharing a kv head.
  const groupRows = (args.heads / args.kvHeads) * args.tq;
  const variant = pickVariant(host, args.headDim);
  const params = attentionParams(args, gpu.keyStart !== null);
  const buffers = [gpu.out.buffer, gpu.lse.buffer, gpu.q.buffer, gpu.k.buffer, gpu.v.buffer, keyStartBuffer(gpu)];
  if (variant === 'subgroups') {
    const L = host.fixedSubgroupSize;
    const D4 = args.headDim / 4;
    // One query row per lane: two per lane ran at about the same speed and wastes more on short tq (decode).
    const tpl = { L, QR: 1, TM: L, D4, DV: Math.ceil(D4 / L) };
    const pipeline = host.pipeline('attention_subgroups', 'attention_fwd', tpl, kernel);
    const groups = [Math.ceil(groupRows / tpl.TM), args.kvHeads, args.batch] as const;
    checkGrid(host, kernel, groups);
    host.launch(kernel, pipeline, params, buffers, groups);
    return;
  }
  const WG = Math.min(64, host.maxInvocations);
  const BK = tileKeys(host, kernel, args.headDim, 2, 0);
  const pipeline = host.pipeline('attention', 'attention_fwd', { WG, BK, HD: args.headDim }, kernel);
  const groups = [Math.ceil(groupRows / WG), args.kvHeads, args.batch] as const;
  checkGrid(host, kernel, groups);
  host.launch(kernel, pipeline, params, buffers, groups);
}

/**
 * Three passes: per-row stats (lse, D = Σ gOut·out) into a temporary, then dQ over query-row blocks and
 * dK/dV over key-row blocks (each looping over the query heads of its kv head), so no pass binds more than
 * 8 storages or needs atomics.
 */
export function attentionBackward(
  host: KernelHost, q: Storage, k: Storage, v: Storage, keyStart: Storage | null, out: Storage, lse: Storage, gOut: Storage,
  gq: Storage, gk: Storage, gv: Storage, args: AttentionArgs,
): void {
  const kernel = host.kernel('attentionBackward');
  const gpu = gpuStorages(host, kernel, { q, k, v, keyStart, out, lse, gOut, gq, gk, gv });
  const rows = args.batch * args.heads * args.tq;
  const qSize = rows * args.headDim;
  const kvSize = args.batch * args.kvHeads * args.tk * args.headDim;
  requireNoAlias(kernel, { gq: gpu.gq, gk: gpu.gk, gv: gpu.gv },
    { q: gpu.q, k: gpu.k, v: gpu.v, keyStart: gpu.keyStart, out: gpu.out, lse: gpu.lse, gOut: gpu.gOut });
  const variant = pickVariant(host, args.headDim);
  const params = attentionParams(args, gpu.keyStart !== null);
  // Tiles of the tiled kernels: query / gOut rows (or keys / values) plus the (lse, D) pairs of 32 rows.
  const BK = tileKeys(host, kernel, args.headDim, 2, 2 * 32);
  const WG = Math.min(64, host.maxInvocations);
  const tiledTpl = { WG, BK, HD: args.headDim };
  if (rows === 0) {
    // No query rows: every key gradient is zero.
    if (kvSize > 0) {
      const fillZero = host.pipeline('elementwise', 'fill', { WG: host.wg, OP: 0 }, kernel);
      for (const keyGrad of [gpu.gk, gpu.gv]) {
        host.launch(kernel, fillZero, (slot) => setParams(slot, UNIFORM_LAYOUTS.elementwise, { n: kvSize, flag: 0 }),
          [keyGrad.buffer], host.groups1d(kvSize, kernel));
      }
    }
    return;
  }
  const stats = host.alloc('float32', 2 * rows);
  const statsBuffer = host.gpuStorage(stats, kernel).buffer;
  try {
    const statsPipeline = host.pipeline('attention_backward', 'attention_bwd_stats', tiledTpl, kernel);
    host.launch(kernel, statsPipeline, params, [statsBuffer, gpu.out.buffer, gpu.gOut.buffer, gpu.lse.buffer], host.groups1d(rows, kernel, WG));
    const shared = [gpu.q.buffer, gpu.k.buffer, gpu.v.buffer, keyStartBuffer(gpu), statsBuffer, gpu.gOut.buffer];
    let family = 'attention_backward';
    let tpl: Record<string, number> = tiledTpl;
    let rowBlock = WG;
    if (variant === 'subgroups') {
      const L = host.fixedSubgroupSize;
      const D4 = args.headDim / 4;
      family = 'attention_backward_subgroups';
      // One row (dQ) or key (dK/dV) per lane: two per lane measured no faster (more registers spill).
      const R = 1;
      tpl = { L, R, TM: L * R, D4, DV: Math.ceil(D4 / L) };
      rowBlock = L * R;
    }
    const dqGroups = [Math.ceil((args.heads / args.kvHeads) * args.tq / rowBlock), args.kvHeads, args.batch] as const;
    const dkvGroups = [Math.ceil(args.tk / rowBlock), args.kvHeads, args.batch] as const;
    checkGrid(host, kernel, dqGroups);
    checkGrid(host, kernel, dkvGroups);
    host.launch(kernel, host.pipeline(family, 'attention_bwd_dq', tpl, kernel), params, [gpu.gq.buffer, ...shared], dqGroups);
    host.launch(kernel, host.pipeline(family, 'attention_bwd_dkv', tpl, kernel), params, [gpu.gk.buffer, ...shared, gpu.gv.buffer], dkvGroups);
  } finally {
    host.free(stats);
  }
}
