// Finite-difference gradient check in float64: run it with the reference backend active.
import { getBackend, keep, noGrad, tidy } from '../tensor/engine.js';
import { Tensor } from '../tensor/tensor.js';
import { tensor, randNormal } from '../tensor/creation.js';
import { mul } from '../tensor/elementwise.js';
import { sum } from '../tensor/reduce.js';
import { backward } from './backward.js';

export interface GradcheckOptions {
  /** Central-difference step (default 1e-6). */
  eps?: number;
  /** Allowed |analytic − numeric| ≤ atol + rtol·|numeric| (defaults 1e-6, 1e-4). */
  atol?: number;
  rtol?: number;
  /** Seed of the random projection applied to non-scalar outputs. */
  seed?: number;
  /** Inputs (by index) that are not differentiated (e.g. int32 ids). */
  constant?: readonly number[];
}

export interface GradcheckResult {
  ok: boolean;
  maxAbsError: number;
  /** Where the worst mismatch was: input index, element index, analytic and numeric values. */
  worst: { input: number; index: number; analytic: number; numeric: number } | null;
}

/**
 * Compares autograd gradients of fn with central differences. fn maps input tensors to one output; a
 * non-scalar output is reduced with a fixed random projection so every output element is exercised.
 */
export async function gradcheck(fn: (...xs: Tensor[]) => Tensor, inputs: readonly Tensor[], opts: GradcheckOptions = {}): Promise<GradcheckResult> {
  const eps = opts.eps ?? 1e-6;
  const atol = opts.atol ?? 1e-6;
  const rtol = opts.rtol ?? 1e-4;
  const constant = new Set(opts.constant ?? []);
  if (getBackend().name !== 'reference') {
    throw new Error(`gradcheck: run it on the float64 reference backend (active: '${getBackend().name}')`);
  }
  const host = await Promise.all(inputs.map((t) => t.read()));
  const inputLike = (i: number, data: ArrayLike<number>) => tensor(data, inputs[i].shape, inputs[i].dtype);

  let projection: Tensor | null = null;
  const objective = (xs: Tensor[]): Tensor => {
    const y = fn(...xs);
    if (y.size === 1) return sum(y);
    if (!projection) projection = keep(noGrad(() => randNormal(y.shape, opts.seed ?? 1234)));
    return sum(mul(y, projection));
  };

  // Analytic gradients.
  const leaves = host.map((values, i) => inputLike(i, values));
  leaves.forEach((leaf, i) => { if (!constant.has(i)) leaf.requireGrad(); });
  const loss = tidy(() => objective(leaves));
  backward(loss);
  loss.dispose();
  const analytic = await Promise.all(leaves.map((leaf) => (leaf.grad ? leaf.grad.read() : Promise.resolve(null))));
  leaves.forEach((leaf) => leaf.dispose());

  // Numeric gradients.
  const evalAt = async (i: number, index: number, delta: number): Promise<number> => {
    const data = Float64Array.from(host[i]);
    data[index] += delta;
    const xs = host.map((values, j) => inputLike(j, j === i ? data : values));
    const y = noGrad(() => tidy(() => objective(xs)));
    const value = await y.item();
    y.dispose();
    xs.forEach((x) => x.dispose());
    return value;
  };
  let maxAbsError = 0;
  let worst: GradcheckResult['worst'] = null;
  let ok = true;
  for (let i = 0; i < inputs.length; i++) {
    if (constant.has(i)) continue;
    const analyticGrad = analytic[i];
    for (let index = 0; index < host[i].length; index++) {
      const numeric = ((await evalAt(i, index, eps)) - (await evalAt(i, index, -eps))) / (2 * eps);
      const got = analyticGrad ? analyticGrad[index] : 0;
      const err = Math.abs(got - numeric);
      if (err > atol + rtol * Math.abs(numeric)) ok = false;
      if (err > maxAbsError || worst === null) {
        maxAbsError = Math.max(maxAbsError, err);
        worst = { input: i, index, analytic: got, numeric };
      }
    }
  }
  (projection as Tensor | null)?.dispose();
  return { ok, maxAbsError, worst };
}
