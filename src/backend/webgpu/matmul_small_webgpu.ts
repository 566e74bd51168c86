// Small-output matmul path of WebGPUBackend.matmul (shaders/matmul_small.wgsl): GEMV and products with a
// few rows (decode: [1..B, d] × weights), and products with a few columns (a value head: n ≤ 4) run as the
// transposed problem. The row-block kernels waste most of their rows there (16-row blocks at m = 1), and
// leave the device idle when the output is small; this path sizes its rows to m and splits k across
// workgroups, summing the partials with the reduce kernel.
import { type MatmulArgs, KernelError } from '../backend.js';
import type { GPUStorageRef, KernelHost } from './kernel_host.js';

/** Row buckets of the kernel (registers per invocation grow with it). */
const ROW_BUCKETS = [1, 2, 4, 8, 16];
/** Fewest k per split: below it the partial traffic outweighs the parallelism. */
const MIN_K_PER_SPLIT = 256;
const MAX_SPLITS = 64;

interface Problem {
  m: number;
  n: number;
  transA: boolean;
  transB: boolean;
  strideA: number;
  strideB: number;
  /** Operands swapped (the kernel computes outᵀ = opB(b)ᵀ · opA(a)ᵀ). */
  swapped: boolean;
}

/**
 * The problem the small kernel runs, or null when the row-block kernels suit it better: m up to `maxRows`
 * (8 on CPU rasterisers, where the 16-row subgroup kernel is already load-frugal, 16 on GPUs), or n ≤ 4
 * with more rows (swapped).
 */
export function smallMatmulProblem(host: KernelHost, g: MatmulArgs): Problem | null {
  const maxRows = host.software ? 8 : 16;
  if (g.m <= maxRows) return { m: g.m, n: g.n, transA: g.transA, transB: g.transB, strideA: g.strideA, strideB: g.strideB, swapped: false };
  if (g.n <= 4) {
    // outᵀ[c, r] = Σ_p opB(b)[p, c]·opA(a)[r, p]: A' = bᵀ (stored [k, n] untransposed = "transA"), B' = aᵀ.
    return { m: g.n, n: g.m, transA: !g.transB, transB: !g.transA, strideA: g.strideB, strideB: g.strideA, swapped: true };
  }
  return null;
}

/**
 * Records the small-output matmul of `g` (problem `pr` from smallMatmulProblem) into `out`. `a` and `b` are
 * the caller's operands; the swapped problem binds them the other way round.
 */
export function matmulSmall(host: KernelHost, kernel: string, a: GPUStorageRef, b: GPUStorageRef, out: GPUBuffer, g: MatmulArgs, pr: Problem): void {
  const { batch, k } = g;
  const [first, second] = pr.swapped ? [b, a] : [a, b];
  const vec4 = k % 4 === 0 && pr.strideA % 4 === 0 && pr.strideB % 4 === 0 && (pr.transB || pr.n % 4 === 0);
  const MR = ROW_BUCKETS.find((r) => r >= pr.m) ?? 16;
  const WX = host.software ? 16 : Math.min(64, host.maxInvocations);
  const colBlocks = Math.ceil(pr.n / (4 * WX));
  const maxDim = host.maxWorkgroupsPerDim;
  if (colBlocks > maxDim) throw new KernelError(kernel, `matrix of ${g.m}×${g.n} exceeds the dispatch limits`);
  // Enough workgroups to occupy the device: a few per CPU thread on software adapters, hundreds on GPUs.
  const target = host.software ? 16 : 512;
  let splits = 1;
  let kSplit = k;
  const total = batch * g.m * g.n;
  const wanted = Math.min(Math.ceil(target / (colBlocks * Math.min(batch, maxDim))), Math.floor(k / MIN_K_PER_SPLIT), MAX_SPLITS);
  if (wanted > 1 && wanted * total * 4 <= 64 * 1024 * 1024) {
    kSplit = Math.ceil(k / wanted / 4) * 4;
    splits = Math.ceil(k / kSplit);
  }
  const pipeline = host.pipeline('matmul_small', vec4 ? 'matmul_small4' : 'matmul_small', {
    WX, MR, TRANS_A: pr.transA ? 1 : 0, TRANS_B: pr.transB ? 1 : 0,
  }, kernel);
  const partials = splits > 1 ? host.alloc('float32', splits * total) : null;
  const target0 = partials ? host.gpuStorage(partials, kernel).buffer : out;
  // Output element (row, col) of the kernel's problem; swapped, that is out[col, row].
  const rowStride = pr.swapped ? 1 : g.n;
  const colStride = pr.swapped ? g.n : 1;
  for (let b0 = 0; b0 < batch; b0 += maxDim) {
    const nb = Math.min(maxDim, batch - b0);
    host.launch(kernel, pipeline, (s) => {
      s.u[0] = pr.m; s.u[1] = pr.n; s.u[2] = k; s.u[3] = b0; s.u[4] = pr.strideA; s.u[5] = pr.strideB;
      s.u[6] = kSplit; s.u[7] = rowStride; s.u[8] = colStride; s.u[9] = g.m * g.n; s.u[10] = total;
    }, [target0, first.buffer, second.buffer], [colBlocks, splits, nb]);
  }
  if (partials) {
    const red = host.pipeline('reduce', 'reduce_loop', { WG: host.wg, OP: 0 }, kernel);
    host.launch(kernel, red, (s) => { s.u[0] = 1; s.u[1] = splits; s.u[2] = total; s.u[3] = total; s.f[4] = 0; },
      [out, host.gpuStorage(partials, kernel).buffer], host.groups1d(total, kernel));
    host.free(partials);
  }
}
