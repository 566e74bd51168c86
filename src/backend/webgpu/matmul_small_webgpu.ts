// Small-output matmul path of WebGPUBackend.matmul (shaders/matmul_small.wgsl): GEMV and products with a
// few rows (decode: [1..B, d] × weights), and products with a few columns (a value head: n ≤ 4) run as the
// transposed problem. The row-block kernels waste most of their rows there (16-row blocks at m = 1), and
// leave the device idle when the output is small; this path sizes its rows to m and splits k across
// workgroups, summing the partials with the reduce kernel.
import { type MatmulArgs, KernelError } from '../backend.js';
import { type GPUStorageRef, type KernelHost, bindingOf } from './kernel_host.js';
import { UNIFORM_LAYOUTS, setParams } from './uniform_params.js';

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
export function smallMatmulProblem(host: KernelHost, args: MatmulArgs): Problem | null {
  const maxRows = host.software ? 8 : 16;
  if (args.m <= maxRows) {
    return { m: args.m, n: args.n, transA: args.transA, transB: args.transB, strideA: args.strideA, strideB: args.strideB, swapped: false };
  }
  if (args.n <= 4) {
    // outᵀ[c, r] = Σ_p opB(b)[p, c]·opA(a)[r, p]: A' = bᵀ (stored [k, n] untransposed = "transA"), B' = aᵀ.
    return { m: args.n, n: args.m, transA: !args.transB, transB: !args.transA, strideA: args.strideB, strideB: args.strideA, swapped: true };
  }
  return null;
}

/**
 * Records the small-output matmul of `args` (`problem` from smallMatmulProblem) into `out`. `a` and `b` are
 * the caller's operands; the swapped problem binds them the other way round.
 */
export function matmulSmall(
  host: KernelHost, kernel: string, a: GPUStorageRef, b: GPUStorageRef, out: GPUBuffer, args: MatmulArgs, problem: Problem,
): void {
  const { batch, k } = args;
  const [first, second] = problem.swapped ? [b, a] : [a, b];
  const vec4 = k % 4 === 0 && problem.strideA % 4 === 0 && problem.strideB % 4 === 0 && (problem.transB || problem.n % 4 === 0);
  const MR = ROW_BUCKETS.find((r) => r >= problem.m) ?? 16;
  const WX = host.software ? 16 : Math.min(64, host.maxInvocations);
  const colBlocks = Math.ceil(problem.n / (4 * WX));
  const maxDim = host.maxWorkgroupsPerDim;
  if (colBlocks > maxDim) throw new KernelError(kernel, `matrix of ${args.m}×${args.n} exceeds the dispatch limits`);
  // Enough workgroups to occupy the device: a few per CPU thread on software adapters, hundreds on GPUs.
  const targetWorkgroups = host.software ? 16 : 512;
  let splits = 1;
  let kSplit = k;
  const total = batch * args.m * args.n;
  const wanted = Math.min(Math.ceil(targetWorkgroups / (colBlocks * Math.min(batch, maxDim))), Math.floor(k / MIN_K_PER_SPLIT), MAX_SPLITS);
  if (wanted > 1 && wanted * total * 4 <= 64 * 1024 * 1024) {
    kSplit = Math.ceil(k / wanted / 4) * 4;
    splits = Math.ceil(k / kSplit);
  }
  const pipeline = host.pipeline('matmul_small', vec4 ? 'matmul_small4' : 'matmul_small', {
    WX, MR, TRANS_A: problem.transA ? 1 : 0, TRANS_B: problem.transB ? 1 : 0,
  }, kernel);
  const partials = splits > 1 ? host.alloc('float32', splits * total) : null;
  const destination = partials ? host.gpuStorage(partials, kernel).buffer : out;
  // Output element (row, col) of the kernel's problem; swapped, that is out[col, row].
  const rowStride = problem.swapped ? 1 : args.n;
  const colStride = problem.swapped ? args.n : 1;
  for (let firstBatch = 0; firstBatch < batch; firstBatch += maxDim) {
    const batches = Math.min(maxDim, batch - firstBatch);
    host.launch(kernel, pipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.matmul_small, {
      m: problem.m, n: problem.n, k, batchOffset: firstBatch, strideA: problem.strideA, strideB: problem.strideB,
      kSplit, rowStride, colStride, batchStride: args.m * args.n, splitStride: total,
    }), [destination, bindingOf(first), bindingOf(second)], [colBlocks, splits, batches]);
  }
  if (partials) {
    // Sum the split-k partials: a reduce over `splits` rows of `total` columns.
    const reducePipeline = host.pipeline('reduce', 'reduce_loop', { WG: host.wg, OP: 0 }, kernel);
    host.launch(kernel, reducePipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.reduce, { outer: 1, len: splits, inner: total, total, init: 0 }),
      [out, host.gpuStorage(partials, kernel).buffer], host.groups1d(total, kernel));
    host.free(partials);
  }
}
