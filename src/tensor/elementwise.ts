// Elementwise ops with broadcasting, and their gradients.
import { type BinaryOp, type UnaryOp, contiguousView } from '../backend/backend.js';
import { getBackend } from './engine.js';
import { checkInputs, empty, record } from './record.js';
import { broadcastShapes, broadcastView } from './shape.js';
import { Tensor } from './tensor.js';
import { full } from './creation.js';
import { sumToShape } from './reduce.js';

export type Operand = Tensor | number;

function asTensor(x: Operand): Tensor {
  return typeof x === 'number' ? full([], x) : x;
}

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

function withScalar(x: Operand, fn: (t: Tensor) => Tensor): Tensor {
  if (typeof x !== 'number') return fn(x);
  const t = asTensor(x);
  try {
    return fn(t);
  } finally {
    t.dispose();
  }
}

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
  const r = sumToShape(g, shape);
  if (r !== g) g.dispose();
  return r;
}

export const add = (a: Operand, b: Operand) => binary('add', a, b, (g, _a, _b, _o, n) => [n[0] ? copyOf(g) : null, n[1] ? copyOf(g) : null]);
export const sub = (a: Operand, b: Operand) => binary('sub', a, b, (g, _a, _b, _o, n) => [n[0] ? copyOf(g) : null, n[1] ? unaryRaw('neg', g) : null]);
export const mul = (a: Operand, b: Operand) => binary('mul', a, b, (g, sa, sb, _o, n) => [n[0] ? binaryRaw('mul', g, sb) : null, n[1] ? binaryRaw('mul', g, sa) : null]);
export const div = (a: Operand, b: Operand) => binary('div', a, b, (g, _sa, sb, so, n) => [
  n[0] ? binaryRaw('div', g, sb) : null,
  // d(a/b)/db = -out / b
  n[1] ? free2(binaryRaw('div', so, sb), (q) => free2(binaryRaw('mul', g, q), (p) => unaryRaw('neg', p))) : null,
]);
export const maximum = (a: Operand, b: Operand) => binary('max', a, b, (g, sa, sb, _o, n) => minMaxGrad(g, sa, sb, 'ge', n));
export const minimum = (a: Operand, b: Operand) => binary('min', a, b, (g, sa, sb, _o, n) => minMaxGrad(g, sa, sb, 'le', n));
/** a ** b elementwise (a > 0 where b is fractional or requires grad, since d/db uses log a). */
export const pow = (a: Operand, b: Operand) => binary('pow', a, b, (g, sa, sb, so, n) => [
  n[0] ? free2(unaryRaw('addScalar', sb, -1), (bm1) => free2(binaryRaw('pow', sa, bm1), (p) => free2(binaryRaw('mul', p, sb), (d) => binaryRaw('mul', g, d)))) : null,
  n[1] ? free2(unaryRaw('log', sa), (la) => free2(binaryRaw('mul', so, la), (d) => binaryRaw('mul', g, d))) : null,
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

/** Applies fn to t, then frees t. */
function free2(t: Tensor, fn: (t: Tensor) => Tensor): Tensor {
  try {
    return fn(t);
  } finally {
    t.dispose();
  }
}

function minMaxGrad(g: Tensor, a: Tensor, b: Tensor, cmp: 'ge' | 'le', n: readonly boolean[]): (Tensor | null)[] {
  // Ties send the gradient to a (like PyTorch's maximum for the first argument).
  const mask = binaryRaw(cmp, a, b);
  const ga = n[0] ? binaryRaw('mul', g, mask) : null;
  const gb = n[1] ? free2(free2(unaryRaw('neg', mask), (nm) => unaryRaw('addScalar', nm, 1)), (inv) => binaryRaw('mul', g, inv)) : null;
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
export const sqrt = (x: Tensor) => unary('sqrt', x, 0, (g, _x, o) => free2(unaryRaw('mulScalar', o, 2), (d) => binaryRaw('div', g, d)));
export const rsqrt = (x: Tensor) => unary('rsqrt', x, 0, (g, _x, o) =>
  // d/dx x^-1/2 = -1/2 · out³
  free2(unaryRaw('powScalar', o, 3), (c) => free2(unaryRaw('mulScalar', c, -0.5), (d) => binaryRaw('mul', g, d))));
export const relu = (x: Tensor) => unary('relu', x, 0, (g, sx) => free2(unaryRaw('reluGrad', sx), (d) => binaryRaw('mul', g, d)));
export const silu = (x: Tensor) => unary('silu', x, 0, (g, sx) => free2(unaryRaw('siluGrad', sx), (d) => binaryRaw('mul', g, d)));
export const sigmoid = (x: Tensor) => unary('sigmoid', x, 0, (g, _x, o) =>
  free2(free2(unaryRaw('neg', o), (no) => unaryRaw('addScalar', no, 1)), (om) => free2(binaryRaw('mul', o, om), (d) => binaryRaw('mul', g, d))));
export const tanh = (x: Tensor) => unary('tanh', x, 0, (g, _x, o) =>
  free2(free2(unaryRaw('square', o), (o2) => free2(unaryRaw('neg', o2), (n2) => unaryRaw('addScalar', n2, 1))), (d) => binaryRaw('mul', g, d)));
export const abs = (x: Tensor) => unary('abs', x, 0, (g, sx) => free2(unaryRaw('sign', sx), (d) => binaryRaw('mul', g, d)));
export const square = (x: Tensor) => unary('square', x, 0, (g, sx) => free2(unaryRaw('mulScalar', sx, 2), (d) => binaryRaw('mul', g, d)));
/** x ** p for a scalar exponent p. */
export const powScalar = (x: Tensor, p: number) => unary('powScalar', x, p, (g, sx) =>
  free2(unaryRaw('powScalar', sx, p - 1), (c) => free2(unaryRaw('mulScalar', c, p), (d) => binaryRaw('mul', g, d))));
export const mulScalar = (x: Tensor, s: number) => unary('mulScalar', x, s, (g) => unaryRaw('mulScalar', g, s));
export const addScalar = (x: Tensor, s: number) => unary('addScalar', x, s, (g) => copyOf(g));

/** cond ? a : b with broadcasting; cond is float (non-zero = true). */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  return withScalar(a, (ta) => withScalar(b, (tb) => {
    checkInputs('where', [cond, ta, tb]);
    const shape = broadcastShapes('where', broadcastShapes('where', cond.shape, ta.shape), tb.shape);
    const out = empty(shape);
    getBackend().where(cond.storage, broadcastView(cond.shape, shape), ta.storage, broadcastView(ta.shape, shape),
      tb.storage, broadcastView(tb.shape, shape), out.storage, shape);
    return record('where', [cond, ta, tb], out, [cond, ta, tb], (g, [sc, sa, sb], n) => {
      const zero = full([], 0);
      try {
        const ga = n[1] ? reduceTo(whereRaw(sc, g, zero), sa.shape) : null;
        const gb = n[2] ? reduceTo(whereRaw(sc, zero, g), sb.shape) : null;
        return [null, ga, gb];
      } finally {
        zero.dispose();
      }
    });
  }));
}

function whereRaw(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShapes('where', broadcastShapes('where', cond.shape, a.shape), b.shape);
  const out = empty(shape);
  getBackend().where(cond.storage, broadcastView(cond.shape, shape), a.storage, broadcastView(a.shape, shape),
    b.storage, broadcastView(b.shape, shape), out.storage, shape);
  return out;
}
