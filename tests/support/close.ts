// The one elementwise closeness check of the tests, with two tolerance shapes: atol + rtol·|want| (kernels
// against the float64 reference), and a relative tolerance floored at a fraction of the data's magnitude
// (the WebGPU kernel tests, whose float32 sums lose precision against the largest element, not each one).
// Both treat non-finite values alike: NaN must meet NaN, ±Infinity must be met exactly.

/** The largest finite |value|, 0 for none. */
export function maxAbs(values: ArrayLike<number>): number {
  let largest = 0;
  for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i])) largest = Math.max(largest, Math.abs(values[i]));
  return largest;
}

/** Throws naming the worst element (and how many miss) unless every got[i] is within toleranceAt(want[i]). */
function checkElements(got: ArrayLike<number>, want: ArrayLike<number>, what: string, toleranceAt: (want: number) => number, describeTolerance: string): void {
  if (got.length !== want.length) throw new Error(`${what}: length ${got.length} ≠ expected ${want.length}`);
  let worst = -1;
  let worstExcess = 0;
  let misses = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i];
    const w = want[i];
    if (g === w || (Number.isNaN(w) && Number.isNaN(g))) continue;
    const excess = Number.isFinite(w) && Number.isFinite(g) ? Math.abs(g - w) - toleranceAt(w) : Infinity;
    if (excess <= 0) continue;
    misses++;
    if (worst < 0 || excess > worstExcess) { worst = i; worstExcess = excess; }
  }
  if (worst >= 0) {
    throw new Error(`${what}: element ${worst} is ${got[worst]}, expected ${want[worst]} (${describeTolerance}; ${misses} of ${want.length} elements outside)`);
  }
}

/** Asserts |got − want| ≤ atol + rtol·|want| elementwise, reporting the worst element. */
export function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string, atol = 1e-5, rtol = 1e-4): void {
  checkElements(got, want, what, (w) => atol + rtol * Math.abs(w), `atol ${atol}, rtol ${rtol}`);
}

/**
 * Asserts |got − want| ≤ rtol·max(|want|, scale/100) + rtol·scale/100 elementwise: relative to each element, but
 * never tighter than relative to a hundredth of `scale` (default: max(1, largest |want|); pass √k for a dot
 * product of length k, whose rounding grows with the terms rather than with the result).
 */
export function assertCloseToScale(got: ArrayLike<number>, want: ArrayLike<number>, what: string, rtol = 1e-4, scale = Math.max(1, maxAbs(want))): void {
  checkElements(got, want, what, (w) => rtol * Math.max(Math.abs(w), scale * 1e-2) + rtol * 1e-2 * scale, `rtol ${rtol} at scale ${scale}`);
}
