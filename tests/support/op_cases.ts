// The elementwise ops every op-level test sweeps, in one list, so a new unary or binary op is tested
// everywhere once it is added here.
import * as T from '../../src/tensor/index.js';
import type { Tensor } from '../../src/tensor/index.js';

export interface UnaryOpCase {
  name: string;
  fn: (x: Tensor) => Tensor;
  /** Defined only for positive inputs (log, roots, non-integer powers). */
  positiveOnly: boolean;
}

/** The scalar operands of powScalar, mulScalar and addScalar. */
export interface ScalarOperands { pow: number; mul: number; add: number }

export function unaryOpCases(scalars: ScalarOperands): UnaryOpCase[] {
  return [
    { name: 'neg', fn: T.neg, positiveOnly: false },
    { name: 'exp', fn: T.exp, positiveOnly: false },
    { name: 'log', fn: T.log, positiveOnly: true },
    { name: 'sqrt', fn: T.sqrt, positiveOnly: true },
    { name: 'rsqrt', fn: T.rsqrt, positiveOnly: true },
    { name: 'relu', fn: T.relu, positiveOnly: false },
    { name: 'silu', fn: T.silu, positiveOnly: false },
    { name: 'sigmoid', fn: T.sigmoid, positiveOnly: false },
    { name: 'tanh', fn: T.tanh, positiveOnly: false },
    { name: 'abs', fn: T.abs, positiveOnly: false },
    { name: 'square', fn: T.square, positiveOnly: false },
    { name: 'powScalar', fn: (x) => T.powScalar(x, scalars.pow), positiveOnly: !Number.isInteger(scalars.pow) },
    { name: 'mulScalar', fn: (x) => T.mulScalar(x, scalars.mul), positiveOnly: false },
    { name: 'addScalar', fn: (x) => T.addScalar(x, scalars.add), positiveOnly: false },
  ];
}

/** Differentiable binary ops (the comparisons are not). */
export const BINARY_OP_CASES: readonly { name: string; fn: (a: Tensor, b: Tensor) => Tensor }[] = [
  { name: 'add', fn: T.add },
  { name: 'sub', fn: T.sub },
  { name: 'mul', fn: T.mul },
  { name: 'div', fn: T.div },
  { name: 'maximum', fn: T.maximum },
  { name: 'minimum', fn: T.minimum },
  { name: 'pow', fn: T.pow },
];
