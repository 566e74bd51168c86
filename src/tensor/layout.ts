// Layout ops: reshape (shares storage), broadcastTo, permute/transpose, slice and concat (strided copies).
import { contiguousStrides } from '../backend/backend.js';
import { getBackend } from './engine.js';
import { checkInputs, empty, record } from './record.js';
import { normAxis, shapeStr } from './shape.js';
import { Tensor, checkShape } from './tensor.js';
import { zeros } from './creation.js';
import { broadcastToRaw, copyView, sumToShape } from './raw.js';

/** Same data, new shape (one dimension may be -1). Shares storage: no copy. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  checkInputs('reshape', [x], null);
  const known = shape.filter((d) => d !== -1);
  const holes = shape.length - known.length;
  let knownSize = 1;
  for (const d of known) knownSize *= d;
  let resolved = [...shape];
  if (holes > 1) throw new RangeError(`reshape: at most one -1 allowed in ${shapeStr(shape)}`);
  if (holes === 1) {
    if (knownSize === 0 || x.size % knownSize !== 0) throw new RangeError(`reshape: cannot infer -1 in ${shapeStr(shape)} for ${x.size} elements`);
    resolved = shape.map((d) => (d === -1 ? x.size / knownSize : d));
  }
  checkShape(resolved);
  if (resolved.reduce((a, b) => a * b, 1) !== x.size) {
    throw new RangeError(`reshape: cannot reshape ${shapeStr(x.shape)} (${x.size} elements) to ${shapeStr(resolved)}`);
  }
  const out = new Tensor(x.data.retain(), resolved, x.dtype);
  return record('reshape', [x], out, [], (g) => [reshape(g, x.shape)]);
}

export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  const out = broadcastToRaw(x, shape);
  return record('broadcastTo', [x], out, [], (g) => {
    const summed = sumToShape(g, x.shape);
    // backward() frees g after the rule, so never hand g itself back.
    return [summed === g ? copyView(g, { strides: contiguousStrides(g.shape), offset: 0 }, g.shape) : summed];
  });
}

/** Reorders axes: out.shape[i] = x.shape[perm[i]]. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  checkInputs('permute', [x], null);
  if (perm.length !== x.rank || new Set(perm.map((p) => normAxis('permute', p, x.rank))).size !== x.rank) {
    throw new RangeError(`permute: [${perm.join(', ')}] is not a permutation of the ${x.rank} axes of ${shapeStr(x.shape)}`);
  }
  const axes = perm.map((a) => normAxis('permute', a, x.rank));
  const shape = axes.map((a) => x.shape[a]);
  // Moving only size-1 axes keeps the memory order (decode's [B, 1, H, d] → [B, H, 1, d]): share the storage.
  const moved = axes.filter((a) => x.shape[a] !== 1);
  if (moved.every((a, i) => i === 0 || moved[i - 1] < a)) return reshape(x, shape);
  const strides = contiguousStrides(x.shape);
  const out = copyView(x, { strides: axes.map((a) => strides[a]), offset: 0 }, shape);
  const inverse = new Array<number>(axes.length);
  axes.forEach((a, i) => { inverse[a] = i; });
  return record('permute', [x], out, [], (g) => [permute(g, inverse)]);
}

/** Swaps two axes (default: the last two). */
export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const perm = x.shape.map((_, i) => i);
  const ia = normAxis('transpose', a, x.rank);
  const ib = normAxis('transpose', b, x.rank);
  [perm[ia], perm[ib]] = [perm[ib], perm[ia]];
  return permute(x, perm);
}

/** x[begin[i] : begin[i] + size[i]] on every axis (size -1 = to the end). */
export function slice(x: Tensor, begin: readonly number[], size?: readonly number[]): Tensor {
  checkInputs('slice', [x], null);
  if (begin.length > x.rank || (size && size.length !== begin.length)) {
    throw new RangeError(`slice: begin [${begin.join(', ')}]${size ? ` / size [${size.join(', ')}]` : ''} do not fit ${shapeStr(x.shape)}`);
  }
  const starts = x.shape.map((_, i) => begin[i] ?? 0);
  const sizes = x.shape.map((d, i) => (size?.[i] === undefined || size[i] === -1 ? d - starts[i] : size[i]));
  for (let i = 0; i < x.rank; i++) {
    if (starts[i] < 0 || sizes[i] < 0 || starts[i] + sizes[i] > x.shape[i]) {
      throw new RangeError(`slice: begin [${starts.join(', ')}] size [${sizes.join(', ')}] is out of bounds for ${shapeStr(x.shape)}`);
    }
  }
  const strides = contiguousStrides(x.shape);
  const offset = starts.reduce((acc, start, i) => acc + start * strides[i], 0);
  const out = copyView(x, { strides, offset }, sizes);
  return record('slice', [x], out, [], (g) => [padInto(g, x.shape, starts)]);
}

/** A zero tensor of `shape` with g written at `begin` (the slice gradient): one concat per padded axis. */
function padInto(g: Tensor, shape: readonly number[], begin: readonly number[]): Tensor {
  let padded = g;
  for (let axis = 0; axis < shape.length; axis++) {
    const before = begin[axis];
    const after = shape[axis] - before - padded.shape[axis];
    if (before === 0 && after === 0) continue;
    const parts: Tensor[] = [];
    const zeroShape = (length: number) => padded.shape.map((d, i) => (i === axis ? length : d));
    if (before > 0) parts.push(zeros(zeroShape(before)));
    parts.push(padded);
    if (after > 0) parts.push(zeros(zeroShape(after)));
    const next = concatRaw(parts, axis);
    for (const part of parts) if (part !== g) part.dispose();
    padded = next;
  }
  return padded === g ? copyView(g, { strides: contiguousStrides(g.shape), offset: 0 }, g.shape) : padded;
}

function concatRaw(xs: readonly Tensor[], axis: number): Tensor {
  const first = xs[0];
  const shape = [...first.shape];
  shape[axis] = xs.reduce((acc, t) => acc + t.shape[axis], 0);
  const backend = getBackend();
  // Concat along axis 0 is a sequence of contiguous block copies; other axes go through an axis-first
  // layout (strided reads are free) and one permute back.
  const perm = [axis, ...shape.map((_, i) => i).filter((i) => i !== axis)];
  const permShape = perm.map((a) => shape[a]);
  const axisFirst = axis === 0 ? empty(shape, first.dtype) : empty(permShape, first.dtype);
  let offset = 0;
  for (const part of xs) {
    const strides = contiguousStrides(part.shape);
    const partShape = perm.map((a) => part.shape[a]);
    backend.copy(part.storage, { strides: perm.map((a) => strides[a]), offset: 0 }, axisFirst.storage, offset, partShape);
    offset += part.size;
  }
  if (axis === 0) return axisFirst;
  const axisFirstStrides = contiguousStrides(permShape);
  const inverse = new Array<number>(perm.length);
  perm.forEach((a, i) => { inverse[a] = i; });
  const out = copyView(axisFirst, { strides: inverse.map((i) => axisFirstStrides[i]), offset: 0 }, shape);
  axisFirst.dispose();
  return out;
}

/** Joins tensors along an axis; all other dimensions must match. */
export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new RangeError('concat: needs at least one tensor');
  checkInputs('concat', xs, null);
  const rank = xs[0].rank;
  const joinAxis = normAxis('concat', axis, rank);
  for (const part of xs) {
    if (part.dtype !== xs[0].dtype) throw new TypeError(`concat: mixed dtypes ${xs[0].dtype} and ${part.dtype}`);
    if (part.rank !== rank || part.shape.some((d, i) => i !== joinAxis && d !== xs[0].shape[i])) {
      throw new RangeError(`concat: shapes ${shapeStr(xs[0].shape)} and ${shapeStr(part.shape)} differ outside axis ${joinAxis}`);
    }
  }
  const out = concatRaw(xs, joinAxis);
  const offsets: number[] = [];
  let offset = 0;
  for (const part of xs) { offsets.push(offset); offset += part.shape[joinAxis]; }
  return record('concat', xs, out, [], (g, _saved, needs) => xs.map((part, i) => {
    if (!needs[i]) return null;
    const begin = g.shape.map((_, d) => (d === joinAxis ? offsets[i] : 0));
    const size = g.shape.map((d, axisIndex) => (axisIndex === joinAxis ? part.shape[joinAxis] : d));
    const strides = contiguousStrides(g.shape);
    return copyView(g, { strides, offset: begin.reduce((acc, start, d) => acc + start * strides[d], 0) }, size);
  }));
}

/** Inserts a size-1 axis. */
export function unsqueeze(x: Tensor, axis: number): Tensor {
  const position = axis < 0 ? axis + x.rank + 1 : axis;
  const shape = [...x.shape];
  shape.splice(position, 0, 1);
  return reshape(x, shape);
}
