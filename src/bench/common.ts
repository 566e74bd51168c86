// What every benchmark case shares: the record it yields, the timing loop, and seeded host data.
// Browser-safe (no Node imports): the browser page runs the same cases.
import type { Backend } from '../backend/backend.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Profile } from './profile.js';

export interface BenchRecord {
  op: string;
  backend: string;
  shape: number[];
  /** Median wall time of one run, GPU work awaited. */
  ms: number;
  gflops?: number;
  gbps?: number;
  tokensPerS?: number;
  /** Case-specific figures printed after the throughput (e.g. peak_bytes, speedup), in snake_case. */
  extra?: Record<string, number>;
  /** Where one step's time went (train and DAPO steps): see profile.ts. */
  profile?: Profile;
  /** Train and DAPO steps at real shapes: whether the training passes ran with activation checkpointing. */
  checkpointing?: boolean;
  runs: number;
}

/** A measurement that could not be taken (a kernel missing or failing on this backend). */
export interface BenchFailure {
  op: string;
  backend: string;
  shape: number[];
  error: string;
}

export type BenchOutcome = BenchRecord | BenchFailure;

export function isFailure(o: BenchOutcome): o is BenchFailure {
  return 'error' in o;
}

/** Runs one measurement; a thrown error becomes a BenchFailure so the case's other passes still report. */
export async function attempt(op: string, backend: string, shape: readonly number[], measure: () => Promise<BenchRecord>): Promise<BenchOutcome> {
  try {
    return await measure();
  } catch (e) {
    return { op, backend, shape: [...shape], error: (e as Error)?.message ?? String(e) };
  }
}

export interface TimingOptions {
  warmup?: number;
  /** Minimum timed runs (default 5). */
  runs?: number;
  /** Stop adding runs (beyond the minimum) after this many ms in total. */
  budgetMs?: number;
  /** Never more runs than this (default 50). */
  maxRuns?: number;
}

export interface Timing {
  ms: number;
  runs: number;
}

export function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Runs `run` up to `warmup` times untimed, then at least `runs` times and, within `budgetMs`, up to `maxRuns`;
 * returns what each timed run returned. The budget keeps slow cases (llvmpipe) bounded.
 */
export async function repeatAsync<R>(run: () => Promise<R>, opts: TimingOptions = {}): Promise<R[]> {
  const warmup = opts.warmup ?? 2;
  const minRuns = opts.runs ?? 5;
  const maxRuns = Math.max(minRuns, opts.maxRuns ?? 50);
  const budget = opts.budgetMs ?? 5000;
  // Warm-up compiles pipelines and JITs; for runs that take seconds one suffices (budget/2 spent → stop).
  const warmStart = performance.now();
  for (let i = 0; i < warmup && (i === 0 || performance.now() - warmStart < budget / 2); i++) await run();
  const results: R[] = [];
  const start = performance.now();
  while (results.length < minRuns || (performance.now() - start < budget && results.length < maxRuns)) {
    results.push(await run());
  }
  return results;
}

/** Median wall time of an asynchronous run after warm-up: the common loop of our backends and TF.js. */
export async function timeAsync(run: () => Promise<void>, opts: TimingOptions = {}): Promise<Timing> {
  const times = await repeatAsync(async () => {
    const t0 = performance.now();
    await run();
    return performance.now() - t0;
  }, opts);
  return { ms: median(times), runs: times.length };
}

/** Median wall time of fn() followed by backend.sync(), after warm-up. */
export function timeIt(backend: Backend, fn: () => void, opts: TimingOptions = {}): Promise<Timing> {
  return timeAsync(async () => {
    fn();
    await backend.sync();
  }, opts);
}

export const gflopsOf = (flops: number, ms: number): number => flops / (ms * 1e6);
export const gbpsOf = (bytes: number, ms: number): number => bytes / (ms * 1e6);
export const tokensPerSOf = (tokens: number, ms: number): number => tokens / (ms / 1000);

/** Seeded integers in [0, n) (mulberry32), the same on every backend and in the TF.js peer. */
export function randomInts(count: number, n: number, seed: number): number[] {
  let state = seed >>> 0;
  const out = new Array<number>(count);
  for (let i = 0; i < count; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) % n);
  }
  return out;
}

/** The throughput figure a record carries (the one peers are compared on). */
export function throughputOf(r: BenchRecord): number | undefined {
  return r.gflops ?? r.gbps ?? r.tokensPerS;
}

export function disposeAll(ts: readonly Tensor[]): void {
  for (const t of ts) t.dispose();
}
