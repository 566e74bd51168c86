// The one seeded generator of the tests (mulberry32): test data depends only on its seed, not on the product's
// RNG (src/backend/rng.ts, which tests check rather than use) nor on the order other tests ran in.

/** A stream of uniform numbers from a 32-bit seed. */
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** The next uniform number in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** n float32 values uniform in [lo, hi). */
  floats(n: number, lo = -1, hi = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * this.next();
    return out;
  }

  /** n integers uniform in [lo, hi). */
  ints(n: number, lo: number, hi: number): number[] {
    return Array.from({ length: n }, () => lo + Math.floor(this.next() * (hi - lo)));
  }
}

/** n float32 values uniform in [lo, hi) from a fresh stream: the same data for every backend and every run. */
export function hostRandom(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  return new SeededRandom(seed).floats(n, lo, hi);
}

/** Rounds each value to the nearest multiple of 1/stepsPerUnit in place (ties for comparisons, max, where). */
export function quantize(values: Float32Array, stepsPerUnit: number): Float32Array {
  for (let i = 0; i < values.length; i++) values[i] = Math.round(values[i] * stepsPerUnit) / stepsPerUnit;
  return values;
}
