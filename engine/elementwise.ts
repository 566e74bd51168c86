// Elementwise kernels: fill, arange, cast, unary, binary, where, copy.
// All take a work range [s, e) over the contiguous output so a thread pool can split them.
import { expV, tanhV, gOff0, gOff1, gOff2, pRank, pShape, pStride, rowOffsets } from './common';

// ---------------------------------------------------------------- fill / arange / cast

/** out[i] = bits (raw 32-bit word; the host encodes float32 or int32). */
export function fill32(out: usize, bits: i32, s: i32, e: i32): void {
  let i = s;
  const v = i32x4.splat(bits);
  for (; i + 4 <= e; i += 4) v128.store(out + (<usize>i << 2), v);
  for (; i < e; i++) store<i32>(out + (<usize>i << 2), bits);
}

export function arange_f32(out: usize, start: f64, step: f64, s: i32, e: i32): void {
  for (let i = s; i < e; i++) store<f32>(out + (<usize>i << 2), <f32>(start + <f64>i * step));
}

export function arange_i32(out: usize, start: f64, step: f64, s: i32, e: i32): void {
  for (let i = s; i < e; i++) store<i32>(out + (<usize>i << 2), <i32>(start + <f64>i * step));
}

/** float32 -> int32, truncating toward zero (saturating). */
export function cast_f32_i32(x: usize, out: usize, s: i32, e: i32): void {
  let i = s;
  for (; i + 4 <= e; i += 4) v128.store(out + (<usize>i << 2), i32x4.trunc_sat_f32x4_s(v128.load(x + (<usize>i << 2))));
  for (; i < e; i++) store<i32>(out + (<usize>i << 2), <i32>load<f32>(x + (<usize>i << 2)));
}

export function cast_i32_f32(x: usize, out: usize, s: i32, e: i32): void {
  let i = s;
  for (; i + 4 <= e; i += 4) v128.store(out + (<usize>i << 2), f32x4.convert_i32x4_s(v128.load(x + (<usize>i << 2))));
  for (; i < e; i++) store<f32>(out + (<usize>i << 2), <f32>load<i32>(x + (<usize>i << 2)));
}

// ---------------------------------------------------------------- unary

@inline function unaryS(op: i32, x: f32, s: f32): f32 {
  switch (op) {
    case 0: return -x;
    case 1: return Mathf.exp(x);
    case 2: return Mathf.log(x);
    case 3: return Mathf.sqrt(x);
    case 4: return <f32>1 / Mathf.sqrt(x);
    case 5: return x > 0 ? x : 0;
    case 6: return x / (<f32>1 + Mathf.exp(-x));
    case 7: return <f32>1 / (<f32>1 + Mathf.exp(-x));
    case 8: return Mathf.tanh(x);
    case 9: return Mathf.abs(x);
    case 10: return x * x;
    case 11: return <f32>1 / x;
    case 12: return Mathf.pow(x, s);
    case 13: return x * s;
    case 14: return x + s;
    case 15: return x > 0 ? <f32>1 : <f32>0;
    case 16: {
      const sg = <f32>1 / (<f32>1 + Mathf.exp(-x));
      return sg * (<f32>1 + x * (<f32>1 - sg));
    }
    case 17: return x > 0 ? <f32>1 : x < 0 ? <f32>-1 : <f32>0;
  }
  return x;
}

@inline function hasSimdUnary(op: i32): bool { return op != 2 && op != 12; }

@inline function unaryV(op: i32, x: v128, s: v128): v128 {
  const one = f32x4.splat(1);
  const zero = f32x4.splat(0);
  switch (op) {
    case 0: return f32x4.neg(x);
    case 1: return expV(x);
    case 3: return f32x4.sqrt(x);
    case 4: return f32x4.div(one, f32x4.sqrt(x));
    case 5: return v128.and(x, f32x4.gt(x, zero));
    case 6: return f32x4.div(x, f32x4.add(one, expV(f32x4.neg(x))));
    case 7: return f32x4.div(one, f32x4.add(one, expV(f32x4.neg(x))));
    case 8: return tanhV(x);
    case 9: return f32x4.abs(x);
    case 10: return f32x4.mul(x, x);
    case 11: return f32x4.div(one, x);
    case 13: return f32x4.mul(x, s);
    case 14: return f32x4.add(x, s);
    case 15: return v128.and(one, f32x4.gt(x, zero));
    case 16: {
      const sg = f32x4.div(one, f32x4.add(one, expV(f32x4.neg(x))));
      return f32x4.mul(sg, f32x4.add(one, f32x4.mul(x, f32x4.sub(one, sg))));
    }
    case 17: return f32x4.sub(v128.and(one, f32x4.gt(x, zero)), v128.and(one, f32x4.lt(x, zero)));
  }
  return x;
}

@inline function unaryLoop(op: i32, x: usize, o: usize, n: i32, s: f32): void {
  let i = 0;
  if (hasSimdUnary(op)) {
    const sv = f32x4.splat(s);
    for (; i + 4 <= n; i += 4) v128.store(o + (<usize>i << 2), unaryV(op, v128.load(x + (<usize>i << 2)), sv));
  }
  for (; i < n; i++) store<f32>(o + (<usize>i << 2), unaryS(op, load<f32>(x + (<usize>i << 2)), s));
}

/** Contiguous run: o[i] = op(x[i]) for i < n. */
function unaryContig(op: i32, x: usize, o: usize, n: i32, s: f32): void {
  switch (op) {
    case 0: unaryLoop(0, x, o, n, s); break;
    case 1: unaryLoop(1, x, o, n, s); break;
    case 2: unaryLoop(2, x, o, n, s); break;
    case 3: unaryLoop(3, x, o, n, s); break;
    case 4: unaryLoop(4, x, o, n, s); break;
    case 5: unaryLoop(5, x, o, n, s); break;
    case 6: unaryLoop(6, x, o, n, s); break;
    case 7: unaryLoop(7, x, o, n, s); break;
    case 8: unaryLoop(8, x, o, n, s); break;
    case 9: unaryLoop(9, x, o, n, s); break;
    case 10: unaryLoop(10, x, o, n, s); break;
    case 11: unaryLoop(11, x, o, n, s); break;
    case 12: unaryLoop(12, x, o, n, s); break;
    case 13: unaryLoop(13, x, o, n, s); break;
    case 14: unaryLoop(14, x, o, n, s); break;
    case 15: unaryLoop(15, x, o, n, s); break;
    case 16: unaryLoop(16, x, o, n, s); break;
    case 17: unaryLoop(17, x, o, n, s); break;
  }
}

function unaryRun(op: i32, x: usize, sx: i32, o: usize, n: i32, s: f32): void {
  if (sx == 1) { unaryContig(op, x, o, n, s); return; }
  if (sx == 0) {
    const v = unaryS(op, load<f32>(x), s);
    const vv = f32x4.splat(v);
    let i = 0;
    for (; i + 4 <= n; i += 4) v128.store(o + (<usize>i << 2), vv);
    for (; i < n; i++) store<f32>(o + (<usize>i << 2), v);
    return;
  }
  for (let i = 0; i < n; i++) store<f32>(o + (<usize>i << 2), unaryS(op, load<f32>(x + (<usize>(i * sx) << 2)), s));
}

/** out[i] = op(x[view(i)], scalar) for i in [s, e); p: parameter block with one view. */
export function unary(op: i32, x: usize, out: usize, scalar: f32, p: usize, s: i32, e: i32): void {
  const rank = pRank(p);
  const rowLen = pShape(p, rank - 1);
  const sx = pStride(p, 0, rank - 1);
  let row = s / rowLen;
  let col = s % rowLen;
  let i = s;
  while (i < e) {
    const n = min(rowLen - col, e - i);
    rowOffsets(p, 1, rank, row);
    unaryRun(op, x + (<usize>(gOff0 + col * sx) << 2), sx, out + (<usize>i << 2), n, scalar);
    i += n; row++; col = 0;
  }
}

// ---------------------------------------------------------------- binary

@inline function binaryS(op: i32, a: f32, b: f32): f32 {
  switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    case 4: return Mathf.max(a, b);
    case 5: return Mathf.min(a, b);
    case 6: return Mathf.pow(a, b);
    case 7: return a == b ? <f32>1 : <f32>0;
    case 8: return a != b ? <f32>1 : <f32>0;
    case 9: return a < b ? <f32>1 : <f32>0;
    case 10: return a <= b ? <f32>1 : <f32>0;
    case 11: return a > b ? <f32>1 : <f32>0;
    case 12: return a >= b ? <f32>1 : <f32>0;
  }
  return a;
}

@inline function binaryV(op: i32, a: v128, b: v128): v128 {
  const one = f32x4.splat(1);
  switch (op) {
    case 0: return f32x4.add(a, b);
    case 1: return f32x4.sub(a, b);
    case 2: return f32x4.mul(a, b);
    case 3: return f32x4.div(a, b);
    case 4: return f32x4.max(a, b);
    case 5: return f32x4.min(a, b);
    case 7: return v128.and(one, f32x4.eq(a, b));
    case 8: return v128.and(one, f32x4.ne(a, b));
    case 9: return v128.and(one, f32x4.lt(a, b));
    case 10: return v128.and(one, f32x4.le(a, b));
    case 11: return v128.and(one, f32x4.gt(a, b));
    case 12: return v128.and(one, f32x4.ge(a, b));
  }
  return a;
}

@inline function binaryLoop(op: i32, a: usize, sa: i32, b: usize, sb: i32, o: usize, n: i32): void {
  let i = 0;
  if (op != 6) {
    if (sa == 1 && sb == 1) {
      for (; i + 4 <= n; i += 4) {
        const off = <usize>i << 2;
        v128.store(o + off, binaryV(op, v128.load(a + off), v128.load(b + off)));
      }
    } else if (sa == 1 && sb == 0) {
      const bv = v128.load32_splat(b);
      for (; i + 4 <= n; i += 4) {
        const off = <usize>i << 2;
        v128.store(o + off, binaryV(op, v128.load(a + off), bv));
      }
    } else if (sa == 0 && sb == 1) {
      const av = v128.load32_splat(a);
      for (; i + 4 <= n; i += 4) {
        const off = <usize>i << 2;
        v128.store(o + off, binaryV(op, av, v128.load(b + off)));
      }
    }
  }
  for (; i < n; i++) {
    store<f32>(o + (<usize>i << 2), binaryS(op, load<f32>(a + (<usize>(i * sa) << 2)), load<f32>(b + (<usize>(i * sb) << 2))));
  }
}

function binaryRun(op: i32, a: usize, sa: i32, b: usize, sb: i32, o: usize, n: i32): void {
  switch (op) {
    case 0: binaryLoop(0, a, sa, b, sb, o, n); break;
    case 1: binaryLoop(1, a, sa, b, sb, o, n); break;
    case 2: binaryLoop(2, a, sa, b, sb, o, n); break;
    case 3: binaryLoop(3, a, sa, b, sb, o, n); break;
    case 4: binaryLoop(4, a, sa, b, sb, o, n); break;
    case 5: binaryLoop(5, a, sa, b, sb, o, n); break;
    case 6: binaryLoop(6, a, sa, b, sb, o, n); break;
    case 7: binaryLoop(7, a, sa, b, sb, o, n); break;
    case 8: binaryLoop(8, a, sa, b, sb, o, n); break;
    case 9: binaryLoop(9, a, sa, b, sb, o, n); break;
    case 10: binaryLoop(10, a, sa, b, sb, o, n); break;
    case 11: binaryLoop(11, a, sa, b, sb, o, n); break;
    case 12: binaryLoop(12, a, sa, b, sb, o, n); break;
  }
}

/** out[i] = op(a[viewA(i)], b[viewB(i)]) for i in [s, e). */
export function binary(op: i32, a: usize, b: usize, out: usize, p: usize, s: i32, e: i32): void {
  const rank = pRank(p);
  const rowLen = pShape(p, rank - 1);
  const sa = pStride(p, 0, rank - 1);
  const sb = pStride(p, 1, rank - 1);
  let row = s / rowLen;
  let col = s % rowLen;
  let i = s;
  while (i < e) {
    const n = min(rowLen - col, e - i);
    rowOffsets(p, 2, rank, row);
    binaryRun(op, a + (<usize>(gOff0 + col * sa) << 2), sa, b + (<usize>(gOff1 + col * sb) << 2), sb, out + (<usize>i << 2), n);
    i += n; row++; col = 0;
  }
}

// ---------------------------------------------------------------- where

function whereRun(c: usize, sc: i32, a: usize, sa: i32, b: usize, sb: i32, o: usize, n: i32): void {
  let i = 0;
  if (sc == 1 && sa == 1 && sb == 1) {
    const zero = f32x4.splat(0);
    for (; i + 4 <= n; i += 4) {
      const off = <usize>i << 2;
      const m = f32x4.ne(v128.load(c + off), zero);
      v128.store(o + off, v128.bitselect(v128.load(a + off), v128.load(b + off), m));
    }
  }
  for (; i < n; i++) {
    const cv = load<f32>(c + (<usize>(i * sc) << 2));
    store<f32>(o + (<usize>i << 2), cv != 0 ? load<f32>(a + (<usize>(i * sa) << 2)) : load<f32>(b + (<usize>(i * sb) << 2)));
  }
}

export function where(c: usize, a: usize, b: usize, out: usize, p: usize, s: i32, e: i32): void {
  const rank = pRank(p);
  const rowLen = pShape(p, rank - 1);
  const sc = pStride(p, 0, rank - 1);
  const sa = pStride(p, 1, rank - 1);
  const sb = pStride(p, 2, rank - 1);
  let row = s / rowLen;
  let col = s % rowLen;
  let i = s;
  while (i < e) {
    const n = min(rowLen - col, e - i);
    rowOffsets(p, 3, rank, row);
    whereRun(c + (<usize>(gOff0 + col * sc) << 2), sc, a + (<usize>(gOff1 + col * sa) << 2), sa,
      b + (<usize>(gOff2 + col * sb) << 2), sb, out + (<usize>i << 2), n);
    i += n; row++; col = 0;
  }
}

// ---------------------------------------------------------------- copy (raw 32-bit words)

export function copy32(x: usize, out: usize, p: usize, s: i32, e: i32): void {
  const rank = pRank(p);
  const rowLen = pShape(p, rank - 1);
  const sx = pStride(p, 0, rank - 1);
  let row = s / rowLen;
  let col = s % rowLen;
  let i = s;
  while (i < e) {
    const n = min(rowLen - col, e - i);
    rowOffsets(p, 1, rank, row);
    const src = x + (<usize>(gOff0 + col * sx) << 2);
    const dst = out + (<usize>i << 2);
    if (sx != 1 && rank >= 2 && col == 0 && e - i >= 4 * rowLen && pStride(p, 0, rank - 2) == 1 &&
      (row % pShape(p, rank - 2)) + 4 <= pShape(p, rank - 2)) {
      // Four output rows read four adjacent input elements per column: 4x4 SIMD transposes.
      const ld = <usize>sx << 2;
      const ro = <usize>rowLen << 2;
      let j = 0;
      for (; j + 4 <= rowLen; j += 4) {
        const s0 = src + <usize>j * ld;
        const r0 = v128.load(s0);
        const r1 = v128.load(s0 + ld);
        const r2 = v128.load(s0 + 2 * ld);
        const r3 = v128.load(s0 + 3 * ld);
        const t01l = i32x4.shuffle(r0, r1, 0, 4, 1, 5);
        const t23l = i32x4.shuffle(r2, r3, 0, 4, 1, 5);
        const t01h = i32x4.shuffle(r0, r1, 2, 6, 3, 7);
        const t23h = i32x4.shuffle(r2, r3, 2, 6, 3, 7);
        const d = dst + (<usize>j << 2);
        v128.store(d, i64x2.shuffle(t01l, t23l, 0, 2));
        v128.store(d + ro, i64x2.shuffle(t01l, t23l, 1, 3));
        v128.store(d + 2 * ro, i64x2.shuffle(t01h, t23h, 0, 2));
        v128.store(d + 3 * ro, i64x2.shuffle(t01h, t23h, 1, 3));
      }
      for (; j < rowLen; j++) {
        for (let q = 0; q < 4; q++) store<i32>(dst + <usize>q * ro + (<usize>j << 2), load<i32>(src + <usize>j * ld + (<usize>q << 2)));
      }
      i += 4 * rowLen; row += 4;
      continue;
    }
    if (sx == 1) {
      memory.copy(dst, src, <usize>n << 2);
    } else if (sx == 0) {
      fill32(dst, load<i32>(src), 0, n);
    } else {
      for (let j = 0; j < n; j++) store<i32>(dst + (<usize>j << 2), load<i32>(src + (<usize>(j * sx) << 2)));
    }
    i += n; row++; col = 0;
  }
}

// ---------------------------------------------------------------- write view (strided source and destination)

/**
 * out[outView(i)] = x[xView(i)] (raw 32-bit words); view 0 of the parameter block is x, view 1 is out.
 * Work range [s, e) over the logical index; the host guarantees the out view never maps two indices to one word.
 */
export function write_view32(x: usize, out: usize, p: usize, s: i32, e: i32): void {
  const rank = pRank(p);
  const rowLen = pShape(p, rank - 1);
  const sx = pStride(p, 0, rank - 1);
  const so = pStride(p, 1, rank - 1);
  let row = s / rowLen;
  let col = s % rowLen;
  let i = s;
  while (i < e) {
    const n = min(rowLen - col, e - i);
    rowOffsets(p, 2, rank, row);
    const src = x + (<usize>(gOff0 + col * sx) << 2);
    const dst = out + (<usize>(gOff1 + col * so) << 2);
    if (sx == 1 && so == 1) {
      // inline: runs are short (a KV-cache row is headDim words) and memory.copy is an out-of-line call
      let j = 0;
      for (; j + 4 <= n; j += 4) v128.store(dst + (<usize>j << 2), v128.load(src + (<usize>j << 2)));
      for (; j < n; j++) store<i32>(dst + (<usize>j << 2), load<i32>(src + (<usize>j << 2)));
    } else {
      for (let j = 0; j < n; j++) store<i32>(dst + (<usize>(j * so) << 2), load<i32>(src + (<usize>(j * sx) << 2)));
    }
    i += n; row++; col = 0;
  }
}
