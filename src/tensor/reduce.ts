// Reductions (sum, mean, max, min) along axes or whole, and broadcast-gradient folding.
import type { ReduceOp } from '../backend/backend.js';
import { getBackend } from './engine.js';
import { checkInputs, empty, record } from './record.js';
import { normAxis, shapeStr } from './shape.js';
import type { Tensor } from './tensor.js';
import { binaryRaw, unaryRaw } from './elementwise.js';
import { broadcastToRaw, reshape } from './layout.js';

export interface ReduceOptions {
  /** Axes to reduce (negative counts from the end); all when omitted. */
  axis?: number | readonly number[];
  keepDims?: boolean;
}

function normAxes(op: string, x: Tensor, axis: ReduceOptions['axis']): number[] {
  if (axis === undefined) return x.shape.map((_, i) => i);
  const list = typeof axis === 'number' ? [axis] : [...axis];
  const axes = [...new Set(list.map((a) => normAxis(op, a, x.rank)))];
  return axes.sort((a, b) => a - b);
}

/** Reduces one axis with the backend kernel; output keeps the axis as size 1. No autograd. */
function reduceAxisRaw(op: ReduceOp, x: Tensor, axis: number): Tensor {
  let outer = 1;
  let inner = 1;
  for (let d = 0; d < axis; d++) outer *= x.shape[d];
  for (let d = axis + 1; d < x.rank; d++) inner *= x.shape[d];
  const len = x.shape[axis];
  if (len === 0 && op !== 'sum') throw new RangeError(`${op}: cannot reduce an empty axis ${axis} of ${shapeStr(x.shape)}`);
  const outShape = x.shape.map((d, i) => (i === axis ? 1 : d));
  const out = empty(outShape);
  getBackend().reduce(op, x.storage, out.storage, outer, len, inner);
  return out;
}

/** Reduces the given axes (keeping them as size 1). No autograd. */
export function reduceRaw(op: ReduceOp, x: Tensor, axes: readonly number[]): Tensor {
  checkInputs(op, [x]);
  let cur = x;
  // Reduce the largest axes first so later passes touch less data.
  const order = [...axes].sort((a, b) => x.shape[b] - x.shape[a]);
  for (const a of order) {
    const next = reduceAxisRaw(op, cur, a);
    if (cur !== x) cur.dispose();
    cur = next;
  }
  return cur === x ? reshape(x, x.shape) : cur;
}

function finalShape(x: Tensor, axes: readonly number[], keepDims: boolean): number[] {
  return keepDims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
}

function reshapeOwned(t: Tensor, shape: readonly number[]): Tensor {
  const r = reshape(t, shape);
  if (r !== t) t.dispose();
  return r;
}

export function sum(x: Tensor, opts: ReduceOptions = {}): Tensor {
  const axes = normAxes('sum', x, opts.axis);
  const keptShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const out = reshapeOwned(reduceRaw('sum', x, axes), finalShape(x, axes, !!opts.keepDims));
  return record('sum', [x], out, [], (g) => [broadcastGrad(g, keptShape, x.shape)]);
}

export function mean(x: Tensor, opts: ReduceOptions = {}): Tensor {
  const axes = normAxes('mean', x, opts.axis);
  let count = 1;
  for (const a of axes) count *= x.shape[a];
  const keptShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const s = reduceRaw('sum', x, axes);
  const scaled = unaryRaw('mulScalar', s, 1 / count);
  s.dispose();
  const out = reshapeOwned(scaled, finalShape(x, axes, !!opts.keepDims));
  return record('mean', [x], out, [], (g) => {
    const b = broadcastGrad(g, keptShape, x.shape);
    const r = unaryRaw('mulScalar', b, 1 / count);
    b.dispose();
    return [r];
  });
}

function extremum(op: 'max' | 'min', x: Tensor, opts: ReduceOptions): Tensor {
  const axes = normAxes(op, x, opts.axis);
  const keptShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const kept = reduceRaw(op, x, axes);
  const out = reshape(kept, finalShape(x, axes, !!opts.keepDims));
  const result = record(op, [x], out, [x, kept], (g, [sx, sk]) => {
    // The gradient goes to every position equal to the extremum, split evenly among ties.
    const mask = binaryRaw('eq', sx, sk);
    const count = reduceRaw('sum', mask, axes);
    const share = binaryRaw('div', mask, count);
    const gb = reshape(g, keptShape);
    const r = binaryRaw('mul', share, gb);
    for (const t of [mask, count, share, gb]) t.dispose();
    return [r];
  });
  kept.dispose();
  return result;
}

export const max = (x: Tensor, opts: ReduceOptions = {}) => extremum('max', x, opts);
export const min = (x: Tensor, opts: ReduceOptions = {}) => extremum('min', x, opts);

/** g (reshaped to keptShape) expanded to `shape` with one broadcasting copy. */
function broadcastGrad(g: Tensor, keptShape: readonly number[], shape: readonly number[]): Tensor {
  const gk = reshape(g, keptShape);
  const out = broadcastToRaw(gk, shape);
  gk.dispose();
  return out;
}

/** Sums g over the axes where `shape` was broadcast (leading extra axes and size-1 axes). */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  if (axes.length === 0 && lead === 0) return g;
  const r = reduceRaw('sum', g, axes);
  const out = reshape(r, shape);
  if (out !== r) r.dispose();
  return out;
}
