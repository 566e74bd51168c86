// Neural-network primitives built on single kernels: softmax, log-softmax, embedding gather.
import { getBackend } from './engine.js';
import { checkInputs, checkWeightInput, empty, record } from './record.js';
import { normAxis, shapeStr } from './shape.js';
import type { Tensor } from './tensor.js';
import { binaryRaw, reduceRaw, unaryRaw } from './raw.js';
import { zeros } from './creation.js';

function lastAxis(op: string, x: Tensor, axis: number): void {
  if (x.rank === 0 || normAxis(op, axis, x.rank) !== x.rank - 1) {
    throw new RangeError(`${op}: only the last axis is supported (got axis ${axis} for ${shapeStr(x.shape)})`);
  }
}

function softmaxRaw(x: Tensor, log: boolean): Tensor {
  const cols = x.shape[x.rank - 1];
  const out = empty(x.shape);
  getBackend().softmax(x.storage, out.storage, x.size / Math.max(cols, 1), cols, log);
  return out;
}

/** softmax along the last axis. */
export function softmax(x: Tensor, axis = -1): Tensor {
  checkInputs('softmax', [x]);
  lastAxis('softmax', x, axis);
  const out = softmaxRaw(x, false);
  return record('softmax', [x], out, [out], (g, [y]) => {
    // dx = y · (g − Σ g·y)
    const gy = binaryRaw('mul', g, y);
    const rowSum = reduceRaw('sum', gy, [y.rank - 1]);
    const centered = binaryRaw('sub', g, rowSum);
    const inputGrad = binaryRaw('mul', y, centered);
    for (const temporary of [gy, rowSum, centered]) temporary.dispose();
    return [inputGrad];
  });
}

/** log-softmax along the last axis. */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  checkInputs('logSoftmax', [x]);
  lastAxis('logSoftmax', x, axis);
  const out = softmaxRaw(x, true);
  return record('logSoftmax', [x], out, [out], (g, [y]) => {
    // dx = g − softmax(x) · Σ g
    const probabilities = unaryRaw('exp', y);
    const rowSum = reduceRaw('sum', g, [y.rank - 1]);
    const spread = binaryRaw('mul', probabilities, rowSum);
    const inputGrad = binaryRaw('sub', g, spread);
    for (const temporary of [probabilities, rowSum, spread]) temporary.dispose();
    return [inputGrad];
  });
}

/**
 * Rows of `table` [rows, dim] picked by int32 `ids` of any shape → [...ids.shape, dim] (embedding lookup).
 * The gradient scatter-adds into the table (duplicate ids accumulate).
 */
export function gather(table: Tensor, ids: Tensor): Tensor {
  checkWeightInput('gather', table);
  checkInputs('gather', [ids], 'int32');
  if (table.rank !== 2) throw new RangeError(`gather: table must be [rows, dim], got ${shapeStr(table.shape)}`);
  const dim = table.shape[1];
  const out = empty([...ids.shape, dim]);
  getBackend().gather(table.storage, ids.storage, out.storage, ids.size, dim);
  return record('gather', [table, ids], out, [ids], (g, [savedIds]) => {
    const tableGrad = zeros(table.shape);
    getBackend().scatterAdd(g.storage, savedIds.storage, tableGrad.storage, savedIds.size, dim);
    return [tableGrad, null];
  });
}
