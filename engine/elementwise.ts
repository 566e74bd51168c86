// Elementwise kernels: fill, arange, cast, unary, binary, where, copy.
// All take a work range [start, end) over the contiguous output so a thread pool can split them.
// The strided kernels each walk their output rows with the same few lines of loop: AssemblyScript has no
// closures, and passing the row body as a function pointer would make it an indirect call per row segment
// that can no longer inline the per-op SIMD loops.
import {
  expV, tanhV, paramRank, paramShape, paramStride, rowOffset0, rowOffset1, rowOffset2, rowOffsets, transpose4x4,
} from './common';
import {
  BINARY_ADD, BINARY_DIV, BINARY_EQ, BINARY_GE, BINARY_GT, BINARY_LE, BINARY_LT, BINARY_MAX, BINARY_MIN, BINARY_MUL,
  BINARY_NE, BINARY_POW, BINARY_SUB,
  UNARY_ABS, UNARY_ADD_SCALAR, UNARY_EXP, UNARY_LOG, UNARY_MUL_SCALAR, UNARY_NEG, UNARY_POW_SCALAR, UNARY_RECIPROCAL,
  UNARY_RELU, UNARY_RELU_GRAD, UNARY_RSQRT, UNARY_SIGMOID, UNARY_SIGN, UNARY_SILU, UNARY_SILU_GRAD, UNARY_SQRT,
  UNARY_SQUARE, UNARY_TANH, hasSimdBinary, hasSimdUnary,
} from './ops.gen';

// ---------------------------------------------------------------- fill / arange / cast

/** out[i] = bits (raw 32-bit word; the host encodes float32 or int32). */
export function fill32(out: usize, bits: i32, start: i32, end: i32): void {
  let i = start;
  const v = i32x4.splat(bits);
  for (; i + 4 <= end; i += 4) v128.store(out + (<usize>i << 2), v);
  for (; i < end; i++) store<i32>(out + (<usize>i << 2), bits);
}

export function arange_f32(out: usize, first: f64, step: f64, start: i32, end: i32): void {
  for (let i = start; i < end; i++) store<f32>(out + (<usize>i << 2), <f32>(first + <f64>i * step));
}

export function arange_i32(out: usize, first: f64, step: f64, start: i32, end: i32): void {
  for (let i = start; i < end; i++) store<i32>(out + (<usize>i << 2), <i32>(first + <f64>i * step));
}

/** float32 -> int32, truncating toward zero (saturating). */
export function cast_f32_i32(x: usize, out: usize, start: i32, end: i32): void {
  let i = start;
  for (; i + 4 <= end; i += 4) v128.store(out + (<usize>i << 2), i32x4.trunc_sat_f32x4_s(v128.load(x + (<usize>i << 2))));
  for (; i < end; i++) store<i32>(out + (<usize>i << 2), <i32>load<f32>(x + (<usize>i << 2)));
}

export function cast_i32_f32(x: usize, out: usize, start: i32, end: i32): void {
  let i = start;
  for (; i + 4 <= end; i += 4) v128.store(out + (<usize>i << 2), f32x4.convert_i32x4_s(v128.load(x + (<usize>i << 2))));
  for (; i < end; i++) store<f32>(out + (<usize>i << 2), <f32>load<i32>(x + (<usize>i << 2)));
}

// ---------------------------------------------------------------- unary

@inline function unaryScalar(op: i32, x: f32, scalar: f32): f32 {
  switch (op) {
    case UNARY_NEG: return -x;
    case UNARY_EXP: return Mathf.exp(x);
    case UNARY_LOG: return Mathf.log(x);
    case UNARY_SQRT: return Mathf.sqrt(x);
    case UNARY_RSQRT: return <f32>1 / Mathf.sqrt(x);
    case UNARY_RELU: return x > 0 ? x : 0;
    case UNARY_SILU: return x / (<f32>1 + Mathf.exp(-x));
    case UNARY_SIGMOID: return <f32>1 / (<f32>1 + Mathf.exp(-x));
    case UNARY_TANH: return Mathf.tanh(x);
    case UNARY_ABS: return Mathf.abs(x);
    case UNARY_SQUARE: return x * x;
    case UNARY_RECIPROCAL: return <f32>1 / x;
    case UNARY_POW_SCALAR: return Mathf.pow(x, scalar);
    case UNARY_MUL_SCALAR: return x * scalar;
    case UNARY_ADD_SCALAR: return x + scalar;
    case UNARY_RELU_GRAD: return x > 0 ? <f32>1 : <f32>0;
    case UNARY_SILU_GRAD: {
      const sg = <f32>1 / (<f32>1 + Mathf.exp(-x));
      return sg * (<f32>1 + x * (<f32>1 - sg));
    }
    case UNARY_SIGN: return x > 0 ? <f32>1 : x < 0 ? <f32>-1 : <f32>0;
  }
  return x;
}

@inline function unaryVector(op: i32, x: v128, scalar: v128): v128 {
  const one = f32x4.splat(1);
  const zero = f32x4.splat(0);
  switch (op) {
    case UNARY_NEG: return f32x4.neg(x);
    case UNARY_EXP: return expV(x);
    case UNARY_SQRT: return f32x4.sqrt(x);
    case UNARY_RSQRT: return f32x4.div(one, f32x4.sqrt(x));
    case UNARY_RELU: return v128.and(x, f32x4.gt(x, zero));
    case UNARY_SILU: return f32x4.div(x, f32x4.add(one, expV(f32x4.neg(x))));
    case UNARY_SIGMOID: return f32x4.div(one, f32x4.add(one, expV(f32x4.neg(x))));
    case UNARY_TANH: return tanhV(x);
    case UNARY_ABS: return f32x4.abs(x);
    case UNARY_SQUARE: return f32x4.mul(x, x);
    case UNARY_RECIPROCAL: return f32x4.div(one, x);
    case UNARY_MUL_SCALAR: return f32x4.mul(x, scalar);
    case UNARY_ADD_SCALAR: return f32x4.add(x, scalar);
    case UNARY_RELU_GRAD: return v128.and(one, f32x4.gt(x, zero));
    case UNARY_SILU_GRAD: {
      const sg = f32x4.div(one, f32x4.add(one, expV(f32x4.neg(x))));
      return f32x4.mul(sg, f32x4.add(one, f32x4.mul(x, f32x4.sub(one, sg))));
    }
    case UNARY_SIGN: return f32x4.sub(v128.and(one, f32x4.gt(x, zero)), v128.and(one, f32x4.lt(x, zero)));
  }
  return x;
}

@inline function unaryLoop(op: i32, x: usize, out: usize, n: i32, scalar: f32): void {
  let i = 0;
  if (hasSimdUnary(op)) {
    const scalarVector = f32x4.splat(scalar);
    for (; i + 4 <= n; i += 4) v128.store(out + (<usize>i << 2), unaryVector(op, v128.load(x + (<usize>i << 2)), scalarVector));
  }
  for (; i < n; i++) store<f32>(out + (<usize>i << 2), unaryScalar(op, load<f32>(x + (<usize>i << 2)), scalar));
}

/** Contiguous run: o[i] = op(x[i]) for i < n. */
function unaryContig(op: i32, x: usize, out: usize, n: i32, scalar: f32): void {
  switch (op) {
    case UNARY_NEG: unaryLoop(UNARY_NEG, x, out, n, scalar); break;
    case UNARY_EXP: unaryLoop(UNARY_EXP, x, out, n, scalar); break;
    case UNARY_LOG: unaryLoop(UNARY_LOG, x, out, n, scalar); break;
    case UNARY_SQRT: unaryLoop(UNARY_SQRT, x, out, n, scalar); break;
    case UNARY_RSQRT: unaryLoop(UNARY_RSQRT, x, out, n, scalar); break;
    case UNARY_RELU: unaryLoop(UNARY_RELU, x, out, n, scalar); break;
    case UNARY_SILU: unaryLoop(UNARY_SILU, x, out, n, scalar); break;
    case UNARY_SIGMOID: unaryLoop(UNARY_SIGMOID, x, out, n, scalar); break;
    case UNARY_TANH: unaryLoop(UNARY_TANH, x, out, n, scalar); break;
    case UNARY_ABS: unaryLoop(UNARY_ABS, x, out, n, scalar); break;
    case UNARY_SQUARE: unaryLoop(UNARY_SQUARE, x, out, n, scalar); break;
    case UNARY_RECIPROCAL: unaryLoop(UNARY_RECIPROCAL, x, out, n, scalar); break;
    case UNARY_POW_SCALAR: unaryLoop(UNARY_POW_SCALAR, x, out, n, scalar); break;
    case UNARY_MUL_SCALAR: unaryLoop(UNARY_MUL_SCALAR, x, out, n, scalar); break;
    case UNARY_ADD_SCALAR: unaryLoop(UNARY_ADD_SCALAR, x, out, n, scalar); break;
    case UNARY_RELU_GRAD: unaryLoop(UNARY_RELU_GRAD, x, out, n, scalar); break;
    case UNARY_SILU_GRAD: unaryLoop(UNARY_SILU_GRAD, x, out, n, scalar); break;
    case UNARY_SIGN: unaryLoop(UNARY_SIGN, x, out, n, scalar); break;
  }
}

function unaryRun(op: i32, x: usize, strideX: i32, out: usize, n: i32, scalar: f32): void {
  if (strideX == 1) { unaryContig(op, x, out, n, scalar); return; }
  if (strideX == 0) {
    const v = unaryScalar(op, load<f32>(x), scalar);
    const valueVector = f32x4.splat(v);
    let i = 0;
    for (; i + 4 <= n; i += 4) v128.store(out + (<usize>i << 2), valueVector);
    for (; i < n; i++) store<f32>(out + (<usize>i << 2), v);
    return;
  }
  for (let i = 0; i < n; i++) store<f32>(out + (<usize>i << 2), unaryScalar(op, load<f32>(x + (<usize>(i * strideX) << 2)), scalar));
}

/** out[i] = op(x[view(i)], scalar) for i in [start, end); p: parameter block with one view. */
export function unary(op: i32, x: usize, out: usize, scalar: f32, params: usize, start: i32, end: i32): void {
  const rank = paramRank(params);
  const rowLen = paramShape(params, rank - 1);
  const strideX = paramStride(params, 0, rank - 1);
  let row = start / rowLen;
  let col = start % rowLen;
  let i = start;
  while (i < end) {
    const n = min(rowLen - col, end - i);
    rowOffsets(params, 1, rank, row);
    unaryRun(op, x + (<usize>(rowOffset0 + col * strideX) << 2), strideX, out + (<usize>i << 2), n, scalar);
    i += n; row++; col = 0;
  }
}

// ---------------------------------------------------------------- binary

@inline function binaryScalar(op: i32, a: f32, b: f32): f32 {
  switch (op) {
    case BINARY_ADD: return a + b;
    case BINARY_SUB: return a - b;
    case BINARY_MUL: return a * b;
    case BINARY_DIV: return a / b;
    case BINARY_MAX: return Mathf.max(a, b);
    case BINARY_MIN: return Mathf.min(a, b);
    case BINARY_POW: return Mathf.pow(a, b);
    case BINARY_EQ: return a == b ? <f32>1 : <f32>0;
    case BINARY_NE: return a != b ? <f32>1 : <f32>0;
    case BINARY_LT: return a < b ? <f32>1 : <f32>0;
    case BINARY_LE: return a <= b ? <f32>1 : <f32>0;
    case BINARY_GT: return a > b ? <f32>1 : <f32>0;
    case BINARY_GE: return a >= b ? <f32>1 : <f32>0;
  }
  return a;
}

@inline function binaryVector(op: i32, a: v128, b: v128): v128 {
  const one = f32x4.splat(1);
  switch (op) {
    case BINARY_ADD: return f32x4.add(a, b);
    case BINARY_SUB: return f32x4.sub(a, b);
    case BINARY_MUL: return f32x4.mul(a, b);
    case BINARY_DIV: return f32x4.div(a, b);
    case BINARY_MAX: return f32x4.max(a, b);
    case BINARY_MIN: return f32x4.min(a, b);
    case BINARY_EQ: return v128.and(one, f32x4.eq(a, b));
    case BINARY_NE: return v128.and(one, f32x4.ne(a, b));
    case BINARY_LT: return v128.and(one, f32x4.lt(a, b));
    case BINARY_LE: return v128.and(one, f32x4.le(a, b));
    case BINARY_GT: return v128.and(one, f32x4.gt(a, b));
    case BINARY_GE: return v128.and(one, f32x4.ge(a, b));
  }
  return a;
}

@inline function binaryLoop(op: i32, a: usize, strideA: i32, b: usize, strideB: i32, out: usize, n: i32): void {
  let i = 0;
  if (hasSimdBinary(op)) {
    if (strideA == 1 && strideB == 1) {
      for (; i + 4 <= n; i += 4) {
        const off = <usize>i << 2;
        v128.store(out + off, binaryVector(op, v128.load(a + off), v128.load(b + off)));
      }
    } else if (strideA == 1 && strideB == 0) {
      const bSplat = v128.load32_splat(b);
      for (; i + 4 <= n; i += 4) {
        const off = <usize>i << 2;
        v128.store(out + off, binaryVector(op, v128.load(a + off), bSplat));
      }
    } else if (strideA == 0 && strideB == 1) {
      const aSplat = v128.load32_splat(a);
      for (; i + 4 <= n; i += 4) {
        const off = <usize>i << 2;
        v128.store(out + off, binaryVector(op, aSplat, v128.load(b + off)));
      }
    }
  }
  for (; i < n; i++) {
    const aValue = load<f32>(a + (<usize>(i * strideA) << 2));
    store<f32>(out + (<usize>i << 2), binaryScalar(op, aValue, load<f32>(b + (<usize>(i * strideB) << 2))));
  }
}

function binaryRun(op: i32, a: usize, strideA: i32, b: usize, strideB: i32, out: usize, n: i32): void {
  switch (op) {
    case BINARY_ADD: binaryLoop(BINARY_ADD, a, strideA, b, strideB, out, n); break;
    case BINARY_SUB: binaryLoop(BINARY_SUB, a, strideA, b, strideB, out, n); break;
    case BINARY_MUL: binaryLoop(BINARY_MUL, a, strideA, b, strideB, out, n); break;
    case BINARY_DIV: binaryLoop(BINARY_DIV, a, strideA, b, strideB, out, n); break;
    case BINARY_MAX: binaryLoop(BINARY_MAX, a, strideA, b, strideB, out, n); break;
    case BINARY_MIN: binaryLoop(BINARY_MIN, a, strideA, b, strideB, out, n); break;
    case BINARY_POW: binaryLoop(BINARY_POW, a, strideA, b, strideB, out, n); break;
    case BINARY_EQ: binaryLoop(BINARY_EQ, a, strideA, b, strideB, out, n); break;
    case BINARY_NE: binaryLoop(BINARY_NE, a, strideA, b, strideB, out, n); break;
    case BINARY_LT: binaryLoop(BINARY_LT, a, strideA, b, strideB, out, n); break;
    case BINARY_LE: binaryLoop(BINARY_LE, a, strideA, b, strideB, out, n); break;
    case BINARY_GT: binaryLoop(BINARY_GT, a, strideA, b, strideB, out, n); break;
    case BINARY_GE: binaryLoop(BINARY_GE, a, strideA, b, strideB, out, n); break;
  }
}

/** out[i] = op(a[viewA(i)], b[viewB(i)]) for i in [start, end). */
export function binary(op: i32, a: usize, b: usize, out: usize, params: usize, start: i32, end: i32): void {
  const rank = paramRank(params);
  const rowLen = paramShape(params, rank - 1);
  const strideA = paramStride(params, 0, rank - 1);
  const strideB = paramStride(params, 1, rank - 1);
  let row = start / rowLen;
  let col = start % rowLen;
  let i = start;
  while (i < end) {
    const n = min(rowLen - col, end - i);
    rowOffsets(params, 2, rank, row);
    binaryRun(op, a + (<usize>(rowOffset0 + col * strideA) << 2), strideA, b + (<usize>(rowOffset1 + col * strideB) << 2), strideB, out + (<usize>i << 2), n);
    i += n; row++; col = 0;
  }
}

// ---------------------------------------------------------------- where

function whereRun(cond: usize, strideCond: i32, a: usize, strideA: i32, b: usize, strideB: i32, out: usize, n: i32): void {
  let i = 0;
  if (strideCond == 1 && strideA == 1 && strideB == 1) {
    const zero = f32x4.splat(0);
    for (; i + 4 <= n; i += 4) {
      const off = <usize>i << 2;
      const m = f32x4.ne(v128.load(cond + off), zero);
      v128.store(out + off, v128.bitselect(v128.load(a + off), v128.load(b + off), m));
    }
  }
  for (; i < n; i++) {
    const condValue = load<f32>(cond + (<usize>(i * strideCond) << 2));
    const picked = condValue != 0 ? a + (<usize>(i * strideA) << 2) : b + (<usize>(i * strideB) << 2);
    store<f32>(out + (<usize>i << 2), load<f32>(picked));
  }
}

export function where(cond: usize, a: usize, b: usize, out: usize, params: usize, start: i32, end: i32): void {
  const rank = paramRank(params);
  const rowLen = paramShape(params, rank - 1);
  const strideCond = paramStride(params, 0, rank - 1);
  const strideA = paramStride(params, 1, rank - 1);
  const strideB = paramStride(params, 2, rank - 1);
  let row = start / rowLen;
  let col = start % rowLen;
  let i = start;
  while (i < end) {
    const n = min(rowLen - col, end - i);
    rowOffsets(params, 3, rank, row);
    whereRun(cond + (<usize>(rowOffset0 + col * strideCond) << 2), strideCond, a + (<usize>(rowOffset1 + col * strideA) << 2), strideA,
      b + (<usize>(rowOffset2 + col * strideB) << 2), strideB, out + (<usize>i << 2), n);
    i += n; row++; col = 0;
  }
}

// ---------------------------------------------------------------- copy (raw 32-bit words)

export function copy32(x: usize, out: usize, params: usize, start: i32, end: i32): void {
  const rank = paramRank(params);
  const rowLen = paramShape(params, rank - 1);
  const strideX = paramStride(params, 0, rank - 1);
  let row = start / rowLen;
  let col = start % rowLen;
  let i = start;
  while (i < end) {
    const n = min(rowLen - col, end - i);
    rowOffsets(params, 1, rank, row);
    const src = x + (<usize>(rowOffset0 + col * strideX) << 2);
    const dst = out + (<usize>i << 2);
    if (strideX != 1 && rank >= 2 && col == 0 && end - i >= 4 * rowLen && paramStride(params, 0, rank - 2) == 1 &&
      (row % paramShape(params, rank - 2)) + 4 <= paramShape(params, rank - 2)) {
      // Four output rows read four adjacent input elements per column: 4x4 SIMD transposes.
      const ld = <usize>strideX << 2;
      const ro = <usize>rowLen << 2;
      let j = 0;
      for (; j + 4 <= rowLen; j += 4) transpose4x4(src + <usize>j * ld, ld, dst + (<usize>j << 2), ro);
      for (; j < rowLen; j++) {
        for (let q = 0; q < 4; q++) store<i32>(dst + <usize>q * ro + (<usize>j << 2), load<i32>(src + <usize>j * ld + (<usize>q << 2)));
      }
      i += 4 * rowLen; row += 4;
      continue;
    }
    if (strideX == 1) {
      memory.copy(dst, src, <usize>n << 2);
    } else if (strideX == 0) {
      fill32(dst, load<i32>(src), 0, n);
    } else {
      for (let j = 0; j < n; j++) store<i32>(dst + (<usize>j << 2), load<i32>(src + (<usize>(j * strideX) << 2)));
    }
    i += n; row++; col = 0;
  }
}

// ---------------------------------------------------------------- write view (strided source and destination)

/**
 * out[outView(i)] = x[xView(i)] (raw 32-bit words); view 0 of the parameter block is x, view 1 is out.
 * Work range [s, end) over the logical index; the host guarantees the out view never maps two indices to one word.
 */
export function write_view32(x: usize, out: usize, params: usize, start: i32, end: i32): void {
  const rank = paramRank(params);
  const rowLen = paramShape(params, rank - 1);
  const strideX = paramStride(params, 0, rank - 1);
  const strideOut = paramStride(params, 1, rank - 1);
  let row = start / rowLen;
  let col = start % rowLen;
  let i = start;
  while (i < end) {
    const n = min(rowLen - col, end - i);
    rowOffsets(params, 2, rank, row);
    const src = x + (<usize>(rowOffset0 + col * strideX) << 2);
    const dst = out + (<usize>(rowOffset1 + col * strideOut) << 2);
    if (strideX == 1 && strideOut == 1) {
      // inline: runs are short (a KV-cache row is headDim words) and memory.copy is an out-of-line call
      let j = 0;
      for (; j + 4 <= n; j += 4) v128.store(dst + (<usize>j << 2), v128.load(src + (<usize>j << 2)));
      for (; j < n; j++) store<i32>(dst + (<usize>j << 2), load<i32>(src + (<usize>j << 2)));
    } else {
      for (let j = 0; j < n; j++) store<i32>(dst + (<usize>(j * strideOut) << 2), load<i32>(src + (<usize>(j * strideX) << 2)));
    }
    i += n; row++; col = 0;
  }
}
