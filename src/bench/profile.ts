// Where the seconds of a step go. On WASM every kernel call returns when its work is done (the main thread waits
// for the worker pool), so wrapping the backend's core ops and its `kernels` object times each call exactly; what
// the step spends outside them is host work (autograd, packing, sampling, JS). On WebGPU calls only record
// dispatches, so there the profile counts calls, dispatches and submits (backend.stats()) instead of timing kernels.
import type { Backend } from '../backend/backend.js';

export const PROFILE_CATEGORIES = ['matmul', 'attention', 'elementwise', 'loss', 'optimizer', 'memory', 'host'] as const;
export type ProfileCategory = (typeof PROFILE_CATEGORIES)[number];

/** Which category a core op or kernel belongs to; norm, RoPE, SwiGLU, copies and reductions count as elementwise. */
export function categoryOf(name: string): ProfileCategory {
  if (name === 'matmul' || name === 'lowRankAdd' || name === 'matmulLowRank') return 'matmul';
  if (name.startsWith('attention')) return 'attention';
  if (name.startsWith('logSoftmaxGather') || name.startsWith('tokenLoss') || name === 'softmax') return 'loss';
  if (name === 'adamw' || name === 'sumSquares') return 'optimizer';
  if (name === 'alloc' || name === 'allocUninitialized' || name === 'upload' || name === 'free' || name === 'read') return 'memory';
  return 'elementwise';
}

/** Backend methods that run work (the rest are bookkeeping). */
const CORE_OPS = [
  'alloc', 'allocUninitialized', 'upload', 'free', 'fill', 'arange', 'random', 'cast', 'unary', 'binary', 'where', 'copy', 'reduce',
  'matmul', 'softmax', 'gather', 'scatterAdd',
] as const;

export interface Profile {
  /** Milliseconds per category (WASM: measured per call; 'host' = wall time minus every timed call). */
  ms: Record<ProfileCategory, number>;
  /** Calls per category. */
  calls: Record<ProfileCategory, number>;
  wallMs: number;
  /** WebGPU: dispatches and submits in the profiled span (absent elsewhere). */
  dispatches?: number;
  submits?: number;
  /** WebGPU: dispatches in the profiled span by kernel name, most first (absent elsewhere). */
  dispatchesByKernel?: Record<string, number>;
  /** Whether ms are kernel times (false on WebGPU: calls return before the GPU runs them). */
  timed: boolean;
}

const zeros = (): Record<ProfileCategory, number> => Object.fromEntries(PROFILE_CATEGORIES.map((c) => [c, 0])) as Record<ProfileCategory, number>;

/**
 * Profiles `run` on `backend`: wraps its core ops and kernels for the duration (restored afterwards, also on error),
 * attributes each call's time (WASM) and count to its category.
 */
export async function profileRun<R>(backend: Backend, run: () => Promise<R>): Promise<{ result: R; profile: Profile }> {
  const timed = backend.name !== 'webgpu';
  const ms = zeros();
  const calls = zeros();
  let depth = 0;
  const wrap = <F extends (...args: never[]) => unknown>(name: string, fn: F): F => {
    const category = categoryOf(name);
    return ((...args: never[]) => {
      calls[category]++;
      // A core op called from inside a kernel's implementation is that kernel's time, not counted twice.
      if (!timed || depth > 0) return fn(...args);
      depth++;
      const t0 = performance.now();
      try {
        return fn(...args);
      } finally {
        ms[category] += performance.now() - t0;
        depth--;
      }
    }) as F;
  };
  const target = backend as unknown as Record<string, unknown>;
  const originals = new Map<string, PropertyDescriptor | undefined>();
  const shadow = (key: string, value: unknown) => {
    originals.set(key, Object.getOwnPropertyDescriptor(target, key));
    Object.defineProperty(target, key, { value, configurable: true, writable: true, enumerable: false });
  };
  for (const op of CORE_OPS) {
    const fn = target[op];
    if (typeof fn === 'function') shadow(op, wrap(op, (fn as (...a: never[]) => unknown).bind(backend)));
  }
  const kernels = backend.kernels as unknown as Record<string, (...a: never[]) => unknown>;
  shadow('kernels', Object.freeze(Object.fromEntries(Object.keys(kernels).map((k) => [k, wrap(k, kernels[k])]))));
  const stats = () => (backend as { stats?: () => Record<string, number> }).stats?.();
  const counts = () => (backend as { dispatchCounts?: () => Record<string, number> }).dispatchCounts?.();
  const before = stats();
  const countsBefore = counts();
  const t0 = performance.now();
  try {
    const result = await run();
    const wallMs = performance.now() - t0;
    const after = stats();
    if (timed) ms.host = Math.max(0, wallMs - PROFILE_CATEGORIES.reduce((sum, c) => sum + (c === 'host' ? 0 : ms[c]), 0));
    const profile: Profile = { ms, calls, wallMs, timed };
    if (before && after && 'dispatches' in after) {
      profile.dispatches = after.dispatches - before.dispatches;
      profile.submits = after.submits - before.submits;
    }
    const countsAfter = counts();
    if (countsBefore && countsAfter) {
      const diff = Object.entries(countsAfter).map(([k, n]) => [k, n - (countsBefore[k] ?? 0)] as const).filter(([, n]) => n > 0);
      profile.dispatchesByKernel = Object.fromEntries(diff.sort((a, b) => b[1] - a[1]));
    }
    return { result, profile };
  } finally {
    for (const [key, descriptor] of originals) {
      if (descriptor) Object.defineProperty(target, key, descriptor);
      else delete target[key];
    }
  }
}

/** One line for the human table: each category's share of the wall time (or its calls on WebGPU). */
export function profileText(p: Profile): string {
  if (!p.timed) {
    return `profile: ${PROFILE_CATEGORIES.filter((c) => c !== 'host').map((c) => `${c} ${p.calls[c]} calls`).join(', ')}`
      + (p.dispatches !== undefined ? `; ${p.dispatches} dispatches, ${p.submits} submits` : '')
      + (p.dispatchesByKernel ? ` (${Object.entries(p.dispatchesByKernel).map(([k, n]) => `${k} ${n}`).join(', ')})` : '');
  }
  const pct = (x: number) => `${((100 * x) / Math.max(p.wallMs, 1e-9)).toFixed(1)}%`;
  return `profile of ${(p.wallMs / 1000).toFixed(2)} s: ${PROFILE_CATEGORIES.map((c) => `${c} ${pct(p.ms[c])}`).join(', ')}`;
}
