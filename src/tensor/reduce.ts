// Reductions (sum, mean, max, min) along axes or whole.
import { record } from './record.js';
import { normAxis } from './shape.js';
import type { Tensor } from './tensor.js';
import { reshape } from './layout.js';
import { binaryRaw, broadcastToRaw, reduceRaw, unaryRaw } from './raw.js';

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

function finalShape(x: Tensor, axes: readonly number[], keepDims: boolean): number[] {
  return keepDims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
}

function reshapeOwned(owned: Tensor, shape: readonly number[]): Tensor {
  const reshaped = reshape(owned, shape);
  if (reshaped !== owned) owned.dispose();
  return reshaped;
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
  const total = reduceRaw('sum', x, axes);
  const scaled = unaryRaw('mulScalar', total, 1 / count);
  total.dispose();
  const out = reshapeOwned(scaled, finalShape(x, axes, !!opts.keepDims));
  return record('mean', [x], out, [], (g) => {
    const spread = broadcastGrad(g, keptShape, x.shape);
    const scaledGrad = unaryRaw('mulScalar', spread, 1 / count);
    spread.dispose();
    return [scaledGrad];
  });
}

function extremum(op: 'max' | 'min', x: Tensor, opts: ReduceOptions): Tensor {
  const axes = normAxes(op, x, opts.axis);
  const keptShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const kept = reduceRaw(op, x, axes);
  const out = reshape(kept, finalShape(x, axes, !!opts.keepDims));
  const result = record(op, [x], out, [x, kept], (g, [savedX, savedExtremum]) => {
    // The gradient goes to every position equal to the extremum, split evenly among ties.
    const mask = binaryRaw('eq', savedX, savedExtremum);
    const count = reduceRaw('sum', mask, axes);
    const share = binaryRaw('div', mask, count);
    const keptGrad = reshape(g, keptShape);
    const inputGrad = binaryRaw('mul', share, keptGrad);
    for (const temporary of [mask, count, share, keptGrad]) temporary.dispose();
    return [inputGrad];
  });
  kept.dispose();
  return result;
}

export const max = (x: Tensor, opts: ReduceOptions = {}) => extremum('max', x, opts);
export const min = (x: Tensor, opts: ReduceOptions = {}) => extremum('min', x, opts);

/** g (reshaped to keptShape) expanded to `shape` with one broadcasting copy. */
function broadcastGrad(g: Tensor, keptShape: readonly number[], shape: readonly number[]): Tensor {
  const keptGrad = reshape(g, keptShape);
  const out = broadcastToRaw(keptGrad, shape);
  keptGrad.dispose();
  return out;
}
