// Attaches autograd nodes to op outputs and allocates outputs on the active backend.
import { type DType, isHalfDType } from '../backend/backend.js';
import { type BackwardRule, GradNode } from '../autograd/node.js';
import { getBackend, isGradEnabled } from './engine.js';
import { Tensor } from './tensor.js';
import { shapeStr } from './shape.js';

/** A fresh, uninitialised tensor on the active backend (every kernel writes its whole output). */
export function empty(shape: readonly number[], dtype: DType = 'float32'): Tensor {
  const backend = getBackend();
  let size = 1;
  for (const d of shape) size *= d;
  let storage;
  try {
    storage = backend.allocUninitialized ? backend.allocUninitialized(dtype, size) : backend.alloc(dtype, size);
  } catch (err) {
    // The backend knows the element count; the shape is what the caller recognises.
    if (err instanceof Error) {
      const tensor = `tensor ${shapeStr(shape)} ${dtype}`;
      err.message = /^kernel '[^']*'/.test(err.message) ? err.message.replace(/^(kernel '[^']*')/, `$1 (${tensor})`) : `${err.message} (${tensor})`;
    }
    throw err;
  }
  return Tensor.fromStorage(storage, shape, dtype, backend);
}

/** Checks that inputs are alive, on the active backend and of an accepted dtype. */
export function checkInputs(op: string, inputs: readonly Tensor[], dtype: DType | null = 'float32'): void {
  const backend = getBackend();
  for (const t of inputs) {
    t.assertAlive(op);
    if (t.backend !== backend) {
      throw new Error(`${op}: tensor ${shapeStr(t.shape)} lives on backend '${t.backend.name}' but the active backend is '${backend.name}'`);
    }
    if (dtype && t.dtype !== dtype) {
      throw new TypeError(`${op}: expected ${dtype} input, got ${t.dtype} tensor ${shapeStr(t.shape)} (cast it first)`);
    }
  }
}

/**
 * Checks a weight operand that may be stored 16-bit (frozen weights: matmul's B, the gather table): alive, on the
 * active backend, float32, bfloat16 or float16.
 */
export function checkWeightInput(op: string, t: Tensor): void {
  checkInputs(op, [t], null);
  if (t.dtype !== 'float32' && !isHalfDType(t.dtype)) {
    throw new TypeError(`${op}: expected a float32, bfloat16 or float16 weight, got ${t.dtype} tensor ${shapeStr(t.shape)}`);
  }
}

/**
 * Records `out = op(inputs)` for backward when grad mode is on and some input tracks gradients.
 * `saved` are the tensors the rule reads (kept alive by the node); the rule receives them in order.
 */
export function record(op: string, inputs: readonly Tensor[], out: Tensor, saved: readonly Tensor[], rule: BackwardRule): Tensor {
  if (!isGradEnabled() || !inputs.some((t) => t.tracksGrad)) return out;
  out.gradFn = new GradNode(op, inputs, inputs.map((t) => t.gradFn), saved, rule);
  return out;
}
