// Raw kernel calls: one backend kernel each, with shape checks but no autograd. The differentiable ops and
// their backward rules are built from these, so elementwise, reduce and layout never import each other for them.
import { type BinaryOp, type ReduceOp, type UnaryOp, type View, contiguousView } from '../backend/backend.js';
import { getBackend } from './engine.js';
import { checkInputs, empty } from './record.js';
import { broadcastShapes, broadcastView, sameShape, shapeStr } from './shape.js';
import { Tensor } from './tensor.js';

/** Runs a unary kernel; no autograd. */
export function unaryRaw(op: UnaryOp, x: Tensor, scalar = 0): Tensor {
  checkInputs(op, [x]);
  const out = empty(x.shape);
  getBackend().unary(op, x.storage, contiguousView(x.shape), out.storage, x.shape, scalar);
  return out;
}

/** Runs a broadcasting binary kernel; no autograd. */
export function binaryRaw(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  checkInputs(op, [a, b]);
  const shape = broadcastShapes(op, a.shape, b.shape);
  const out = empty(shape);
  getBackend().binary(op, a.storage, broadcastView(a.shape, shape), b.storage, broadcastView(b.shape, shape), out.storage, shape);
  return out;
}

/** cond ? a : b with broadcasting (cond non-zero = true); no autograd. */
export function whereRaw(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShapes('where', broadcastShapes('where', cond.shape, a.shape), b.shape);
  const out = empty(shape);
  getBackend().where(cond.storage, broadcastView(cond.shape, shape), a.storage, broadcastView(a.shape, shape),
    b.storage, broadcastView(b.shape, shape), out.storage, shape);
  return out;
}

/** The same storage under another shape of the same size; no autograd (reshape() is the recorded op). */
export function viewRaw(x: Tensor, shape: readonly number[]): Tensor {
  return new Tensor(x.data.retain(), shape, x.dtype);
}

/** Copies a strided view of x into a new contiguous tensor of `shape`. No autograd. */
export function copyView(x: Tensor, view: View, shape: readonly number[]): Tensor {
  const out = empty(shape, x.dtype);
  getBackend().copy(x.storage, view, out.storage, 0, shape);
  return out;
}

/** Materialises x broadcast to `shape`. No autograd. */
export function broadcastToRaw(x: Tensor, shape: readonly number[]): Tensor {
  checkInputs('broadcastTo', [x], null);
  const broadcast = broadcastShapes('broadcastTo', x.shape, shape);
  if (!sameShape(broadcast, shape)) throw new RangeError(`broadcastTo: ${shapeStr(x.shape)} cannot be broadcast to ${shapeStr(shape)}`);
  return copyView(x, broadcastView(x.shape, shape), shape);
}

/** Reduces one axis with the backend kernel; output keeps the axis as size 1. No autograd. */
function reduceAxisRaw(op: ReduceOp, x: Tensor, axis: number): Tensor {
  let outer = 1;
  let inner = 1;
  for (let d = 0; d < axis; d++) outer *= x.shape[d];
  for (let d = axis + 1; d < x.rank; d++) inner *= x.shape[d];
  const length = x.shape[axis];
  if (length === 0 && op !== 'sum') throw new RangeError(`${op}: cannot reduce an empty axis ${axis} of ${shapeStr(x.shape)}`);
  const outShape = x.shape.map((d, i) => (i === axis ? 1 : d));
  const out = empty(outShape);
  getBackend().reduce(op, x.storage, out.storage, outer, length, inner);
  return out;
}

/** Reduces the given axes (keeping them as size 1). No autograd. */
export function reduceRaw(op: ReduceOp, x: Tensor, axes: readonly number[]): Tensor {
  checkInputs(op, [x]);
  let current = x;
  // Reduce the largest axes first so later passes touch less data.
  const order = [...axes].sort((a, b) => x.shape[b] - x.shape[a]);
  for (const axis of order) {
    const next = reduceAxisRaw(op, current, axis);
    if (current !== x) current.dispose();
    current = next;
  }
  return current === x ? viewRaw(x, x.shape) : current;
}

/** Sums g over the axes where `shape` was broadcast (leading extra axes and size-1 axes); g itself when none. */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  if (axes.length === 0 && lead === 0) return g;
  const summed = reduceRaw('sum', g, axes);
  const out = viewRaw(summed, shape);
  summed.dispose();
  return out;
}
