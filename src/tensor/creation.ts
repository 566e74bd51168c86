// Tensor creation: from host data, constants, ranges and seeded random numbers.
import { type DType, isHalfDType } from '../backend/backend.js';
import { getBackend } from './engine.js';
import { empty, checkInputs, record } from './record.js';
import { Tensor, checkDType, checkShape } from './tensor.js';
import { shapeStr } from './shape.js';

type HostData = ArrayLike<number> | number;

/** A tensor from host numbers; `shape` defaults to [data.length] (or [] for a scalar). */
export function tensor(data: HostData | readonly HostData[], shape?: readonly number[], dtype: DType | string = 'float32'): Tensor {
  const checkedDType = checkDType(dtype);
  const flat = flatten(data);
  const checkedShape = checkShape(shape ?? (typeof data === 'number' ? [] : [flat.length]));
  let elements = 1;
  for (const d of checkedShape) elements *= d;
  if (elements !== flat.length) throw new RangeError(`tensor: ${flat.length} values do not fill shape ${shapeStr(checkedShape)} (${elements} elements)`);
  for (let i = 0; i < flat.length; i++) {
    if (checkedDType === 'int32' && !Number.isInteger(flat[i])) throw new TypeError(`tensor: int32 data has a non-integer value ${flat[i]} at index ${i}`);
  }
  const backend = getBackend();
  return Tensor.fromStorage(backend.upload(checkedDType, flat), checkedShape, checkedDType, backend);
}

function flatten(data: HostData | readonly HostData[]): ArrayLike<number> {
  if (typeof data === 'number') return [data];
  if (Array.isArray(data) && data.some((d) => typeof d !== 'number')) {
    const out: number[] = [];
    for (const item of data as readonly HostData[]) {
      const values = flatten(item);
      for (let i = 0; i < values.length; i++) out.push(values[i]);
    }
    return out;
  }
  return data as ArrayLike<number>;
}

/** Kernels only read 16-bit tensors (frozen weights): they are made from host values, never filled or computed. */
function computedDType(op: string, dtype: DType | string): DType {
  const checked = checkDType(dtype);
  if (isHalfDType(checked)) throw new TypeError(`${op}: ${checked} tensors hold frozen weights and are made from host values (tensor(values, shape, '${checked}'))`);
  return checked;
}

export function full(shape: readonly number[], value: number, dtype: DType | string = 'float32'): Tensor {
  const out = empty(checkShape(shape), computedDType('full', dtype));
  getBackend().fill(out.storage, value);
  return out;
}

export const zeros = (shape: readonly number[], dtype: DType | string = 'float32') => full(shape, 0, dtype);
export const ones = (shape: readonly number[], dtype: DType | string = 'float32') => full(shape, 1, dtype);
export const zerosLike = (t: Tensor) => full(t.shape, 0, t.dtype);
export const onesLike = (t: Tensor) => full(t.shape, 1, t.dtype);

/** [start, start+step, …) with n = ceil((end-start)/step) elements. */
export function arange(start: number, end?: number, step = 1, dtype: DType | string = 'float32'): Tensor {
  if (end === undefined) [start, end] = [0, start];
  if (step === 0) throw new RangeError('arange: step must be non-zero');
  const length = Math.max(0, Math.ceil((end - start) / step));
  const out = empty([length], computedDType('arange', dtype));
  getBackend().arange(out.storage, start, step);
  return out;
}

/** Seeded uniform numbers in [low, high): the same seed gives the same numbers on every backend. */
export function randUniform(shape: readonly number[], seed: number, low = 0, high = 1): Tensor {
  const out = empty(checkShape(shape));
  getBackend().random(out.storage, { kind: 'uniform', seed: seed >>> 0, a: low, b: high });
  return out;
}

/** Seeded normal numbers N(mean, std²). */
export function randNormal(shape: readonly number[], seed: number, mean = 0, std = 1): Tensor {
  const out = empty(checkShape(shape));
  getBackend().random(out.storage, { kind: 'normal', seed: seed >>> 0, a: mean, b: std });
  return out;
}

/**
 * Converts dtype (float32 → int32 truncates toward zero; bfloat16 / float16 → float32 widens exactly).
 * Differentiable float32→float32 only (identity).
 */
export function cast(x: Tensor, dtype: DType | string): Tensor {
  const target = checkDType(dtype);
  checkInputs('cast', [x], null);
  if (isHalfDType(target) && x.dtype !== target) {
    throw new TypeError(`cast: cannot cast ${x.dtype} to ${target}: 16-bit tensors hold frozen weights and are made from host values (tensor(values, shape, '${target}'))`);
  }
  const out = empty(x.shape, target);
  getBackend().cast(x.storage, out.storage);
  if (target !== 'float32' || x.dtype !== 'float32') return out;
  return record('cast', [x], out, [], (g) => [cast(g, 'float32')]);
}
