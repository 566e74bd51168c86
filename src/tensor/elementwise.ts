// Elementwise ops with broadcasting, and their gradients.
import type { BinaryOp, UnaryOp } from '../backend/backend.js';
import { checkInputs, record } from './record.js';
import type { Tensor } from './tensor.js';
import { full } from './creation.js';
import { binaryRaw, sumToShape, unaryRaw, whereRaw } from './raw.js';

export type Operand = Tensor | number;

function asTensor(x: Operand): Tensor {
  return typeof x === 'number' ? full([], x) : x;
}

function withScalar(x: Operand, fn: (tensor: Tensor) => Tensor): Tensor {
  return typeof x === 'number' ? thenFree(asTensor(x), fn) : fn(x);
}

// In the gradient rules, g is the output gradient, sa/sb/sx/so the saved inputs and output, needs[i] whether
// input i wants a gradient; thenFree chains temporaries so each is freed as soon as it is used.
function binary(op: BinaryOp, a: Operand, b: Operand, rule?: (g: Tensor, a: Tensor, b: Tensor, out: Tensor, needs: readonly boolean[]) => (Tensor | null)[]): Tensor {
  return withScalar(a, (ta) => withScalar(b, (tb) => {
    const out = binaryRaw(op, ta, tb);
    if (!rule) return out;
    return record(op, [ta, tb], out, [ta, tb, out], (g, [sa, sb, so], needs) => {
      const [ga, gb] = rule(g, sa, sb, so, needs);
      return [ga && reduceTo(ga, sa.shape), gb && reduceTo(gb, sb.shape)];
    });
  }));
}

/** Sums a broadcast gradient back to the input's shape, freeing the intermediate. */
function reduceTo(g: Tensor, shape: readonly number[]): Tensor {
  const reduced = sumToShape(g, shape);
  if (reduced !== g) g.dispose();
  return reduced;
}

export const add = (a: Operand, b: Operand) => binary('add', a, b, (g, _a, _b, _out, needs) => [needs[0] ? copyOf(g) : null, needs[1] ? copyOf(g) : null]);
export const sub = (a: Operand, b: Operand) => binary('sub', a, b, (g, _a, _b, _out, needs) => [needs[0] ? copyOf(g) : null, needs[1] ? unaryRaw('neg', g) : null]);
export const mul = (a: Operand, b: Operand) => binary('mul', a, b, (g, sa, sb, _out, needs) => [needs[0] ? binaryRaw('mul', g, sb) : null, needs[1] ? binaryRaw('mul', g, sa) : null]);
export const div = (a: Operand, b: Operand) => binary('div', a, b, (g, _sa, sb, so, needs) => [
  needs[0] ? binaryRaw('div', g, sb) : null,
  // d(a/b)/db = -out / b
  needs[1] ? thenFree(binaryRaw('div', so, sb), (q) => thenFree(binaryRaw('mul', g, q), (p) => unaryRaw('neg', p))) : null,
]);
export const maximum = (a: Operand, b: Operand) => binary('max', a, b, (g, sa, sb, _out, needs) => minMaxGrad(g, sa, sb, 'ge', needs));
export const minimum = (a: Operand, b: Operand) => binary('min', a, b, (g, sa, sb, _out, needs) => minMaxGrad(g, sa, sb, 'le', needs));
/** a ** b elementwise (a > 0 where b is fractional or requires grad, since d/db uses log a). */
export const pow = (a: Operand, b: Operand) => binary('pow', a, b, (g, sa, sb, so, needs) => [
  needs[0] ? thenFree(unaryRaw('addScalar', sb, -1), (bm1) => thenFree(binaryRaw('pow', sa, bm1), (p) => thenFree(binaryRaw('mul', p, sb), (d) => binaryRaw('mul', g, d)))) : null,
  needs[1] ? thenFree(unaryRaw('log', sa), (la) => thenFree(binaryRaw('mul', so, la), (d) => binaryRaw('mul', g, d))) : null,
]);

export const eq = (a: Operand, b: Operand) => binary('eq', a, b);
export const ne = (a: Operand, b: Operand) => binary('ne', a, b);
export const lt = (a: Operand, b: Operand) => binary('lt', a, b);
export const le = (a: Operand, b: Operand) => binary('le', a, b);
export const gt = (a: Operand, b: Operand) => binary('gt', a, b);
export const ge = (a: Operand, b: Operand) => binary('ge', a, b);

function copyOf(g: Tensor): Tensor {
  return unaryRaw('mulScalar', g, 1);
}

/** Applies fn to a temporary, then frees the temporary. */
function thenFree(temporary: Tensor, fn: (temporary: Tensor) => Tensor): Tensor {
  try {
    return fn(temporary);
  } finally {
    temporary.dispose();
  }
}

function minMaxGrad(g: Tensor, a: Tensor, b: Tensor, cmp: 'ge' | 'le', needs: readonly boolean[]): (Tensor | null)[] {
  // Ties send the gradient to a (like PyTorch's maximum for the first argument).
  const mask = binaryRaw(cmp, a, b);
  const ga = needs[0] ? binaryRaw('mul', g, mask) : null;
  const gb = needs[1] ? thenFree(thenFree(unaryRaw('neg', mask), (nm) => unaryRaw('addScalar', nm, 1)), (inv) => binaryRaw('mul', g, inv)) : null;
  mask.dispose();
  return [ga, gb];
}

function unary(op: UnaryOp, x: Tensor, scalar: number, rule: (g: Tensor, x: Tensor, out: Tensor) => Tensor): Tensor {
  const out = unaryRaw(op, x, scalar);
  return record(op, [x], out, [x, out], (g, [sx, so]) => [rule(g, sx, so)]);
}

export const neg = (x: Tensor) => unary('neg', x, 0, (g) => unaryRaw('neg', g));
export const exp = (x: Tensor) => unary('exp', x, 0, (g, _x, o) => binaryRaw('mul', g, o));
export const log = (x: Tensor) => unary('log', x, 0, (g, sx) => binaryRaw('div', g, sx));
export const sqrt = (x: Tensor) => unary('sqrt', x, 0, (g, _x, o) => thenFree(unaryRaw('mulScalar', o, 2), (d) => binaryRaw('div', g, d)));
export const rsqrt = (x: Tensor) => unary('rsqrt', x, 0, (g, _x, o) =>
  // d/dx x^-1/2 = -1/2 · out³
  thenFree(unaryRaw('powScalar', o, 3), (c) => thenFree(unaryRaw('mulScalar', c, -0.5), (d) => binaryRaw('mul', g, d))));
export const relu = (x: Tensor) => unary('relu', x, 0, (g, sx) => thenFree(unaryRaw('reluGrad', sx), (d) => binaryRaw('mul', g, d)));
export const silu = (x: Tensor) => unary('silu', x, 0, (g, sx) => thenFree(unaryRaw('siluGrad', sx), (d) => binaryRaw('mul', g, d)));
export const sigmoid = (x: Tensor) => unary('sigmoid', x, 0, (g, _x, o) =>
  thenFree(thenFree(unaryRaw('neg', o), (no) => unaryRaw('addScalar', no, 1)), (om) => thenFree(binaryRaw('mul', o, om), (d) => binaryRaw('mul', g, d))));
export const tanh = (x: Tensor) => unary('tanh', x, 0, (g, _x, o) =>
  thenFree(thenFree(unaryRaw('square', o), (o2) => thenFree(unaryRaw('neg', o2), (n2) => unaryRaw('addScalar', n2, 1))), (d) => binaryRaw('mul', g, d)));
export const abs = (x: Tensor) => unary('abs', x, 0, (g, sx) => thenFree(unaryRaw('sign', sx), (d) => binaryRaw('mul', g, d)));
export const square = (x: Tensor) => unary('square', x, 0, (g, sx) => thenFree(unaryRaw('mulScalar', sx, 2), (d) => binaryRaw('mul', g, d)));
/** x ** p for a scalar exponent p. */
export const powScalar = (x: Tensor, p: number) => unary('powScalar', x, p, (g, sx) =>
  thenFree(unaryRaw('powScalar', sx, p - 1), (c) => thenFree(unaryRaw('mulScalar', c, p), (d) => binaryRaw('mul', g, d))));
export const mulScalar = (x: Tensor, s: number) => unary('mulScalar', x, s, (g) => unaryRaw('mulScalar', g, s));
export const addScalar = (x: Tensor, s: number) => unary('addScalar', x, s, (g) => copyOf(g));

/** cond ? a : b with broadcasting; cond is float (non-zero = true). */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  return withScalar(a, (ta) => withScalar(b, (tb) => {
    checkInputs('where', [cond, ta, tb]);
    const out = whereRaw(cond, ta, tb);
    return record('where', [cond, ta, tb], out, [cond, ta, tb], (g, [savedCond, savedA, savedB], needs) => {
      const zero = full([], 0);
      try {
        const gradA = needs[1] ? reduceTo(whereRaw(savedCond, g, zero), savedA.shape) : null;
        const gradB = needs[2] ? reduceTo(whereRaw(savedCond, zero, g), savedB.shape) : null;
        return [null, gradA, gradB];
      } finally {
        zero.dispose();
      }
    });
  }));
}
