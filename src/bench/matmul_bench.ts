// Matmul benchmark cases, shared by `dapo bench` and the browser page.
import type { Backend } from '../backend/backend.js';
import { setBackend } from '../tensor/engine.js';
import { matmul } from '../tensor/linalg.js';
import { randUniform } from '../tensor/creation.js';

export interface BenchRecord {
  op: string;
  backend: string;
  shape: number[];
  /** Median wall time of one run, GPU work awaited. */
  ms: number;
  gflops?: number;
  gbps?: number;
  runs: number;
}

/** [m, k, n] problems: squares and the tall-skinny projection shape of the issue. */
export const MATMUL_SHAPES: readonly [number, number, number][] = [
  [256, 256, 256], [512, 512, 512], [1024, 1024, 1024], [2048, 2048, 2048], [2048, 256, 1024],
];

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export interface TimingOptions {
  warmup?: number;
  runs?: number;
  /** Stop adding runs (beyond the minimum) after this many ms in total. */
  budgetMs?: number;
}

/** Median wall time of fn() followed by backend.sync(), after warm-up. */
export async function timeIt(backend: Backend, fn: () => void, opts: TimingOptions = {}): Promise<{ ms: number; runs: number }> {
  const warmup = opts.warmup ?? 2;
  const minRuns = opts.runs ?? 5;
  const budget = opts.budgetMs ?? 5000;
  for (let i = 0; i < warmup; i++) {
    fn();
    await backend.sync();
  }
  const times: number[] = [];
  const start = performance.now();
  while (times.length < minRuns || (performance.now() - start < budget && times.length < 50)) {
    const t0 = performance.now();
    fn();
    await backend.sync();
    times.push(performance.now() - t0);
    if (times.length >= minRuns && performance.now() - start > budget) break;
  }
  return { ms: median(times), runs: times.length };
}

export async function benchMatmul(backend: Backend, label: string, [m, k, n]: readonly [number, number, number], opts: TimingOptions = {}): Promise<BenchRecord> {
  setBackend(backend);
  const a = randUniform([m, k], 1, -1, 1);
  const b = randUniform([k, n], 2, -1, 1);
  let out = matmul(a, b);
  const { ms, runs } = await timeIt(backend, () => {
    out.dispose();
    out = matmul(a, b);
  }, opts);
  for (const t of [a, b, out]) t.dispose();
  return { op: 'matmul', backend: label, shape: [m, k, n], ms, gflops: (2 * m * n * k) / (ms * 1e6), runs };
}
