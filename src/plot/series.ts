// Pure data helpers for the charts: pull a numeric field out of JSONL records, smooth it, aggregate over seeds.
// Browser-safe (no I/O).

/** One line of metrics.jsonl or eval.jsonl. Fields may be null or absent when they do not apply. */
export interface MetricsRecord {
  step: number;
  [k: string]: number | boolean | string | null | undefined;
}

export interface Point {
  step: number;
  value: number;
}

/** The (step, value) pairs of `field`, skipping records where the value is missing, null or not finite. */
export function fieldPoints(records: readonly MetricsRecord[], field: string): Point[] {
  const out: Point[] = [];
  for (const record of records) {
    const value = record[field];
    if (typeof value === 'number' && Number.isFinite(value) && typeof record.step === 'number' && Number.isFinite(record.step)) {
      out.push({ step: record.step, value });
    }
  }
  return out;
}

/** Default EMA weight: each point keeps 90 % of the running average (TensorBoard's slider at 0.9). */
export const EMA_WEIGHT = 0.9;

/**
 * Debiased exponential moving average: s_t = w·s_{t-1} + (1-w)·x_t, divided by (1 - w^t) so the first points
 * are not pulled towards zero (TensorBoard does the same).
 */
export function ema(values: readonly number[], weight = EMA_WEIGHT): number[] {
  if (!(weight >= 0 && weight < 1)) throw new Error(`ema: weight must be in [0, 1), got ${weight}`);
  const out: number[] = [];
  let acc = 0;
  let norm = 0;
  for (const x of values) {
    acc = weight * acc + (1 - weight) * x;
    norm = weight * norm + (1 - weight);
    out.push(acc / norm);
  }
  return out;
}

export function smoothPoints(points: readonly Point[], weight = EMA_WEIGHT): Point[] {
  const smoothed = ema(points.map((point) => point.value), weight);
  return points.map((point, i) => ({ step: point.step, value: smoothed[i]! }));
}

export interface MeanStd {
  mean: number;
  /** Sample standard deviation (n - 1 in the denominator); NaN when n < 2. */
  std: number;
  n: number;
}

/** Mean and sample standard deviation of the finite values; mean is NaN when there are none. */
/**
 * [min, max] of the values by a loop ([Infinity, -Infinity] when empty): Math.min(...values) spreads every value
 * onto the call stack, which overflows past ~10⁵ points (a long run's metrics).
 */
export function extent(values: Iterable<number>): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  return [lo, hi];
}

export function meanStd(values: readonly number[]): MeanStd {
  const xs = values.filter((v) => Number.isFinite(v));
  const n = xs.length;
  if (n === 0) return { mean: NaN, std: NaN, n: 0 };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, std: NaN, n };
  const squaredDeviations = xs.reduce((a, b) => a + (b - mean) * (b - mean), 0);
  return { mean, std: Math.sqrt(squaredDeviations / (n - 1)), n };
}

export interface BandPoint {
  step: number;
  mean: number;
  min: number;
  max: number;
  /** How many series had a value at this step. */
  n: number;
}

/** Per step, the mean and min–max over the series that have a value there (steps sorted ascending). */
export function aggregateSeries(series: readonly Point[][]): BandPoint[] {
  const byStep = new Map<number, number[]>();
  for (const points of series) {
    for (const point of points) {
      const values = byStep.get(point.step);
      if (values) values.push(point.value);
      else byStep.set(point.step, [point.value]);
    }
  }
  // Only steps every series reached: a mean over fewer runs (a ragged tail, e.g. runs that stopped at a sample
  // budget after different step counts) would jump and mislead.
  return [...byStep.entries()]
    .filter(([, values]) => values.length === series.filter((points) => points.length > 0).length)
    .sort((a, b) => a[0] - b[0])
    .map(([step, values]) => ({
      step,
      mean: values.reduce((a, b) => a + b, 0) / values.length,
      min: extent(values)[0],
      max: extent(values)[1],
      n: values.length,
    }));
}

export { parseJsonl } from '../io/jsonl.js';
