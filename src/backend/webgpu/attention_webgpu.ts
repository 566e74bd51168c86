// Attention launchers (forward and backward) for the WebGPU backend. Two kernel families each:
// 'subgroups' (shaders/attention_subgroups.wgsl, attention_backward_subgroups.wgsl) for CPU rasterisers with
// a fixed subgroup size, barrier-free with rows shared by subgroupBroadcast; 'tiled' (attention.wgsl,
// attention_backward.wgsl) with key / query tiles in workgroup memory for GPUs and devices without
// subgroups. The head dim specialises the pipeline (registers are unrolled over it); every other shape is
// a uniform.
import { type AttentionArgs, KernelError, type Storage } from '../types.js';
import { type GPUStorageRef, type KernelHost, type UniformSlot, requireNoAlias } from './kernel_host.js';
import { UNIFORM_LAYOUTS, setParams } from './uniform_params.js';

type Variant = 'subgroups' | 'tiled';

/** Head dims the unrolled subgroup kernels accept (registers scale with it). */
const MAX_SUBGROUP_HEAD_DIM = 256;

function pickVariant(host: KernelHost, headDim: number): Variant {
  const sgOk = host.fixedSubgroupSize >= 4 && host.fixedSubgroupSize <= 64 && headDim % 4 === 0 && headDim <= MAX_SUBGROUP_HEAD_DIM;
  if (!sgOk) return 'tiled';
  return host.variants.attention ?? (host.software ? 'subgroups' : 'tiled');
}

interface Inputs {
  q: GPUStorageRef;
  k: GPUStorageRef;
  v: GPUStorageRef;
  keyStart: GPUStorageRef | null;
}

/** The attention inputs as this backend's storages (sizes and args are checked by the signature table). */
function inputsOf(host: KernelHost, kernel: string, q: Storage, k: Storage, v: Storage, keyStart: Storage | null): Inputs {
  return {
    q: host.gpuStorage(q, kernel), k: host.gpuStorage(k, kernel), v: host.gpuStorage(v, kernel),
    keyStart: keyStart ? host.gpuStorage(keyStart, kernel) : null,
  };
}

/** The uniform block shared by every attention kernel (each family includes attention_params.wgsl). */
function attentionParams(a: AttentionArgs, hasKeyStart: boolean): (slot: UniformSlot) => void {
  return (slot) => setParams(slot, UNIFORM_LAYOUTS.attention, {
    tq: a.tq, tk: a.tk, kvStride: a.kvStride, heads: a.heads, kvHeads: a.kvHeads, group: a.heads / a.kvHeads,
    qOffset: a.qOffset, causal: a.causal ? 1 : 0, hasKeyStart: hasKeyStart ? 1 : 0, scale: a.scale, inf: Infinity,
    headDim: a.headDim, rows: a.batch * a.heads * a.tq,
  });
}

function checkGrid(host: KernelHost, kernel: string, groups: readonly number[]): void {
  if (groups.some((g) => g > host.maxWorkgroupsPerDim)) {
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
  host: KernelHost, q: Storage, k: Storage, v: Storage, keyStart: Storage | null, out: Storage, lse: Storage, a: AttentionArgs,
): void {
  const kernel = host.kernel('attention');
  const c = inputsOf(host, kernel, q, k, v, keyStart);
  const o = host.gpuStorage(out, kernel);
  const l = host.gpuStorage(lse, kernel);
  const rows = a.batch * a.heads * a.tq;
  requireNoAlias(kernel, { out: o, lse: l }, { q: c.q, k: c.k, v: c.v, keyStart: c.keyStart });
  if (rows === 0) return;
  // The kernels' row blocks run over the query rows of all heads sharing a kv head.
  const groupRows = (a.heads / a.kvHeads) * a.tq;
  const variant = pickVariant(host, a.headDim);
  const params = attentionParams(a, c.keyStart !== null);
  // keyStart null: any read-only buffer fills the binding (the kernel does not read it).
  const ksBuf = c.keyStart ? c.keyStart.buffer : c.q.buffer;
  const buffers = [o.buffer, l.buffer, c.q.buffer, c.k.buffer, c.v.buffer, ksBuf];
  if (variant === 'subgroups') {
    const L = host.fixedSubgroupSize;
    const D4 = a.headDim / 4;
    // One query row per lane: two per lane ran at about the same speed and wastes more on short tq (decode).
    const tpl = { L, QR: 1, TM: L, D4, DV: Math.ceil(D4 / L) };
    const pipeline = host.pipeline('attention_subgroups', 'attention_fwd', tpl, kernel);
    const groups = [Math.ceil(groupRows / tpl.TM), a.kvHeads, a.batch] as const;
    checkGrid(host, kernel, groups);
    host.launch(kernel, pipeline, params, buffers, groups);
    return;
  }
  const WG = Math.min(64, host.maxInvocations);
  const BK = tileKeys(host, kernel, a.headDim, 2, 0);
  const pipeline = host.pipeline('attention', 'attention_fwd', { WG, BK, HD: a.headDim }, kernel);
  const groups = [Math.ceil(groupRows / WG), a.kvHeads, a.batch] as const;
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
  gq: Storage, gk: Storage, gv: Storage, a: AttentionArgs,
): void {
  const kernel = host.kernel('attentionBackward');
  const c = inputsOf(host, kernel, q, k, v, keyStart);
  const o = host.gpuStorage(out, kernel);
  const l = host.gpuStorage(lse, kernel);
  const g = host.gpuStorage(gOut, kernel);
  const dq = host.gpuStorage(gq, kernel);
  const dk = host.gpuStorage(gk, kernel);
  const dv = host.gpuStorage(gv, kernel);
  const rows = a.batch * a.heads * a.tq;
  const qSize = rows * a.headDim;
  const kvSize = a.batch * a.kvHeads * a.tk * a.headDim;
  requireNoAlias(kernel, { gq: dq, gk: dk, gv: dv }, { q: c.q, k: c.k, v: c.v, keyStart: c.keyStart, out: o, lse: l, gOut: g });
  const variant = pickVariant(host, a.headDim);
  const params = attentionParams(a, c.keyStart !== null);
  const ksBuf = c.keyStart ? c.keyStart.buffer : c.q.buffer;
  // Tiles of the tiled kernels: query / gOut rows (or keys / values) plus the (lse, D) pairs of 32 rows.
  const BK = tileKeys(host, kernel, a.headDim, 2, 2 * 32);
  const WG = Math.min(64, host.maxInvocations);
  const tiledTpl = { WG, BK, HD: a.headDim };
  if (rows === 0) {
    // No query rows: every key gradient is zero.
    if (kvSize > 0) {
      const zero = host.pipeline('elementwise', 'fill', { WG: host.wg, OP: 0 }, kernel);
      for (const keyGrad of [dk, dv]) {
        host.launch(kernel, zero, (slot) => setParams(slot, UNIFORM_LAYOUTS.elementwise, { n: kvSize, flag: 0 }),
          [keyGrad.buffer], host.groups1d(kvSize, kernel));
      }
    }
    return;
  }
  const stats = host.alloc('float32', 2 * rows);
  const statsRef = host.gpuStorage(stats, kernel);
  try {
    const pStats = host.pipeline('attention_backward', 'attention_bwd_stats', tiledTpl, kernel);
    host.launch(kernel, pStats, params, [statsRef.buffer, o.buffer, g.buffer, l.buffer], host.groups1d(rows, kernel, WG));
    const shared = [c.q.buffer, c.k.buffer, c.v.buffer, ksBuf, statsRef.buffer, g.buffer];
    let family = 'attention_backward';
    let tpl: Record<string, number> = tiledTpl;
    let rowBlock = WG;
    if (variant === 'subgroups') {
      const L = host.fixedSubgroupSize;
      const D4 = a.headDim / 4;
      family = 'attention_backward_subgroups';
      // One row (dQ) or key (dK/dV) per lane: two per lane measured no faster (more registers spill).
      const R = 1;
      tpl = { L, R, TM: L * R, D4, DV: Math.ceil(D4 / L) };
      rowBlock = L * R;
    }
    const dqGroups = [Math.ceil((a.heads / a.kvHeads) * a.tq / rowBlock), a.kvHeads, a.batch] as const;
    const dkvGroups = [Math.ceil(a.tk / rowBlock), a.kvHeads, a.batch] as const;
    checkGrid(host, kernel, dqGroups);
    checkGrid(host, kernel, dkvGroups);
    host.launch(kernel, host.pipeline(family, 'attention_bwd_dq', tpl, kernel), params, [dq.buffer, ...shared], dqGroups);
    host.launch(kernel, host.pipeline(family, 'attention_bwd_dkv', tpl, kernel), params, [dk.buffer, ...shared, dv.buffer], dkvGroups);
  } finally {
    host.free(stats);
  }
}
