// Reductions over x viewed as [outer, len, inner]: out[o * inner + q] = op over r of x[(o * len + r) * inner + q].
// Work range [start, end) over the outer * inner outputs. op: a REDUCE_* code (src/backend/ops.ts).
import { hmax, hmin, hsum } from './common';
import { REDUCE_MAX, REDUCE_SUM } from './ops.gen';

@inline function identity(op: i32): f32 { return op == REDUCE_SUM ? <f32>0 : op == REDUCE_MAX ? -Infinity : Infinity; }

@inline function combS(op: i32, a: f32, b: f32): f32 {
  return op == REDUCE_SUM ? a + b : op == REDUCE_MAX ? Mathf.max(a, b) : Mathf.min(a, b);
}
@inline function combV(op: i32, a: v128, b: v128): v128 {
  return op == REDUCE_SUM ? f32x4.add(a, b) : op == REDUCE_MAX ? f32x4.max(a, b) : f32x4.min(a, b);
}
@inline function hcomb(op: i32, v: v128): f32 { return op == REDUCE_SUM ? hsum(v) : op == REDUCE_MAX ? hmax(v) : hmin(v); }

/** Reduction of one contiguous row of n floats. */
@inline function rowReduce(op: i32, x: usize, n: i32): f32 {
  let i = 0;
  let acc: f32 = identity(op);
  if (n >= 16) {
    let v0 = v128.load(x), v1 = v128.load(x, 16), v2 = v128.load(x, 32), v3 = v128.load(x, 48);
    i = 16;
    for (; i + 16 <= n; i += 16) {
      const p = x + (<usize>i << 2);
      v0 = combV(op, v0, v128.load(p));
      v1 = combV(op, v1, v128.load(p, 16));
      v2 = combV(op, v2, v128.load(p, 32));
      v3 = combV(op, v3, v128.load(p, 48));
    }
    acc = hcomb(op, combV(op, combV(op, v0, v1), combV(op, v2, v3)));
  }
  for (; i < n; i++) acc = combS(op, acc, load<f32>(x + (<usize>i << 2)));
  return acc;
}

const QCHUNK: i32 = 256;

@inline function reduceOp(op: i32, x: usize, out: usize, len: i32, inner: i32, start: i32, end: i32): void {
  if (inner == 1) {
    for (let o = start; o < end; o++) store<f32>(out + (<usize>o << 2), rowReduce(op, x + (<usize>o * <usize>len << 2), len));
    return;
  }
  let i = start;
  while (i < end) {
    const p = i / inner;
    const q0 = i % inner;
    const q1 = min(inner, q0 + (end - i));
    for (let qc = q0; qc < q1; qc += QCHUNK) {
      const qe = min(q1, qc + QCHUNK);
      const o = out + (<usize>(p * inner) << 2);
      if (len == 0) {
        for (let q = qc; q < qe; q++) store<f32>(o + (<usize>q << 2), identity(op));
        continue;
      }
      const base = x + (<usize>p * <usize>len * <usize>inner << 2);
      memory.copy(o + (<usize>qc << 2), base + (<usize>qc << 2), <usize>(qe - qc) << 2);
      for (let r = 1; r < len; r++) {
        const row = base + (<usize>r * <usize>inner << 2);
        let q = qc;
        for (; q + 4 <= qe; q += 4) {
          const dst = o + (<usize>q << 2);
          v128.store(dst, combV(op, v128.load(dst), v128.load(row + (<usize>q << 2))));
        }
        for (; q < qe; q++) {
          const dst = o + (<usize>q << 2);
          store<f32>(dst, combS(op, load<f32>(dst), load<f32>(row + (<usize>q << 2))));
        }
      }
    }
    i += q1 - q0;
  }
}

export function reduce(op: i32, x: usize, out: usize, len: i32, inner: i32, start: i32, end: i32): void {
  if (op == 0) reduceOp(0, x, out, len, inner, start, end);
  else if (op == 1) reduceOp(1, x, out, len, inner, start, end);
  else reduceOp(2, x, out, len, inner, start, end);
}
