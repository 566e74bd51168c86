// Shared helpers for the kernels: strided-view parameter blocks and SIMD math.
//
// Strided kernels receive a pointer `params` to an i32 parameter block written by the host (layout
// STRIDED_PARAM_BLOCK in src/backend/kernel_layouts.ts): the rank (1..6), shape[d], and the strides of each
// view (elements). View base pointers already include the view offset. Work ranges index the contiguous output.
import { PARAM_RANK, PARAM_SHAPE, PARAM_STRIDES, PARAM_VIEW_WORDS } from './ops.gen';

// Per-instance (per-thread) results of rowOffsets(): AssemblyScript has no multiple return values, and
// globals are private to each instance.
export let rowOffset0: i32 = 0;
export let rowOffset1: i32 = 0;
export let rowOffset2: i32 = 0;

@inline export function paramRank(params: usize): i32 { return load<i32>(params + (<usize>PARAM_RANK << 2)); }
@inline export function paramShape(params: usize, dim: i32): i32 { return load<i32>(params + (<usize>(PARAM_SHAPE + dim) << 2)); }
@inline export function paramStride(params: usize, view: i32, dim: i32): i32 {
  return load<i32>(params + (<usize>(PARAM_STRIDES + PARAM_VIEW_WORDS * view + dim) << 2));
}

/** Element offsets of the first element of `row` (all dims but the last) for `views` views. */
@inline export function rowOffsets(params: usize, views: i32, rank: i32, row: i32): void {
  let offset0 = 0, offset1 = 0, offset2 = 0;
  for (let d = rank - 2; d >= 0; d--) {
    const size = paramShape(params, d);
    const index = row % size;
    row = row / size;
    offset0 += index * paramStride(params, 0, d);
    if (views > 1) offset1 += index * paramStride(params, 1, d);
    if (views > 2) offset2 += index * paramStride(params, 2, d);
  }
  rowOffset0 = offset0; rowOffset1 = offset1; rowOffset2 = offset2;
}

// ---- SIMD exp (Cephes expf polynomial, ~1-2 ulp) ----
@inline export function expV(x: v128): v128 {
  const hi = f32x4.splat(88.3762626647949);
  const lo = f32x4.splat(-88.3762626647949);
  const big = f32x4.gt(x, f32x4.splat(88.72283));
  const small = f32x4.lt(x, f32x4.splat(-103.97208));
  let v = f32x4.min(f32x4.max(x, lo), hi);
  let fx = f32x4.floor(f32x4.add(f32x4.mul(v, f32x4.splat(1.44269504088896341)), f32x4.splat(0.5)));
  v = f32x4.sub(v, f32x4.mul(fx, f32x4.splat(0.693359375)));
  v = f32x4.sub(v, f32x4.mul(fx, f32x4.splat(-2.12194440e-4)));
  const z = f32x4.mul(v, v);
  let y = f32x4.splat(1.9875691500e-4);
  y = f32x4.add(f32x4.mul(y, v), f32x4.splat(1.3981999507e-3));
  y = f32x4.add(f32x4.mul(y, v), f32x4.splat(8.3334519073e-3));
  y = f32x4.add(f32x4.mul(y, v), f32x4.splat(4.1665795894e-2));
  y = f32x4.add(f32x4.mul(y, v), f32x4.splat(1.6666665459e-1));
  y = f32x4.add(f32x4.mul(y, v), f32x4.splat(5.0000001201e-1));
  y = f32x4.add(f32x4.add(f32x4.mul(y, z), v), f32x4.splat(1.0));
  const n = i32x4.trunc_sat_f32x4_s(fx);
  const n1 = i32x4.shr_s(n, 1);
  const n2 = i32x4.sub(n, n1);
  const p1 = i32x4.shl(i32x4.add(n1, i32x4.splat(127)), 23);
  const p2 = i32x4.shl(i32x4.add(n2, i32x4.splat(127)), 23);
  y = f32x4.mul(f32x4.mul(y, p1), p2);
  y = v128.bitselect(f32x4.splat(Infinity), y, big);
  y = v128.andnot(y, small);
  return y;
}

/** SIMD tanh (Cephes tanhf: odd polynomial for |x| < 0.625, 1 - 2 / (exp(2|x|) + 1) above). */
@inline export function tanhV(x: v128): v128 {
  const ax = f32x4.abs(x);
  const e = expV(f32x4.add(ax, ax));
  const one = f32x4.splat(1);
  let big = f32x4.sub(one, f32x4.div(f32x4.splat(2), f32x4.add(e, one)));
  big = v128.or(big, v128.and(x, i32x4.splat(0x80000000))); // copy the sign of x
  const z = f32x4.mul(x, x);
  let p = f32x4.splat(-5.70498872745e-3);
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(2.06390887954e-2));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(-5.37397155531e-2));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(1.33314422036e-1));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(-3.33332819422e-1));
  const small = f32x4.add(f32x4.mul(f32x4.mul(p, z), x), x);
  return v128.bitselect(big, small, f32x4.ge(ax, f32x4.splat(0.625)));
}

@inline export function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}
@inline export function hmax(v: v128): f32 {
  return Mathf.max(Mathf.max(f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1)), Mathf.max(f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3)));
}
@inline export function hmin(v: v128): f32 {
  return Mathf.min(Mathf.min(f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1)), Mathf.min(f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3)));
}

// ---- fast SIMD exp for x ≤ 88 (the softmax case, x − max ≤ 0) ----
// exp(x) = 2^t, t = x·log2e: n = round(t) read from the low mantissa bits of t + 1.5·2^23 (no float→int
// conversion), 2^f (f = t − n ∈ [−½, ½]) as the square of a degree-4 minimax fit of 2^(f/2), 2^n built in the
// exponent field. Relative error ≤ 7.5e-7 for x ≥ −10 (the rounding of t dominates), ≤ 4.1e-6 down to −87.
// t clamps at −126 so the result stays a normal float (≈ 1.2e-38 instead of 0 below x ≈ −87.3);
// expFastFlushV returns 0 there. About 20 SIMD ops against ~40 for expV.
@inline export function expFastV(x: v128): v128 {
  // magic = 1.5·2^23 + 127: t + magic holds n + 127 in its low mantissa bits, so shifting them into the
  // exponent field builds 2^n with no integer add (and no float→int conversion)
  const magic = f32x4.splat(12583039.0);
  const t = f32x4.pmax(f32x4.mul(x, f32x4.splat(1.4426950408889634)), f32x4.splat(-126)); // pmax: one maxps
  const tm = f32x4.add(t, magic);
  const f = f32x4.sub(t, f32x4.sub(tm, magic));
  // (2^(f/2))² needs one add less than a degree-5 fit of 2^f, and Estrin's form keeps the dependency chain
  // short so more loop iterations overlap: ~10% faster log-softmax-gather than degree-5 Horner
  const f2 = f32x4.mul(f, f);
  const lo = f32x4.add(f32x4.mul(f, f32x4.splat(0.3465728163719177)), f32x4.splat(1));
  const hi = f32x4.add(f32x4.add(f32x4.mul(f, f32x4.splat(0.006950824987143278)), f32x4.splat(0.060056835412979126)),
    f32x4.mul(f2, f32x4.splat(0.0006006782641634345)));
  let p = f32x4.add(lo, f32x4.mul(f2, hi));
  p = f32x4.mul(p, p);
  return f32x4.mul(p, i32x4.shl(tm, 23));
}

/** expFastV with inputs below −87.3 (and −Infinity) flushed to exactly 0. */
@inline export function expFastFlushV(x: v128): v128 {
  return v128.andnot(expFastV(x), f32x4.lt(x, f32x4.splat(-87.33654)));
}

/** Scalar twin of expFastV (same rounding), for row tails that must match the vector lanes' accuracy. */
@inline export function expFast(x: f32): f32 {
  return f32x4.extract_lane(expFastV(f32x4.splat(x)), 0);
}

/**
 * sigmoid(x) = 1 / (1 + exp(−x)) on the fast exp: −x is capped at 88 (exp stays finite, sigmoid ≈ 6e-39) and
 * below it expFastV bottoms out near 1.2e-38 (sigmoid = 1); relative error ≲ 1e-6.
 */
@inline export function sigmoidV(x: v128): v128 {
  const one = f32x4.splat(1);
  return f32x4.div(one, f32x4.add(one, expFastV(f32x4.pmin(f32x4.neg(x), f32x4.splat(88)))));
}

// ---- small copies and fills ----
// memory.copy / memory.fill are out-of-line calls in V8; for the short row segments of the tiled kernels an
// inline SIMD loop is several times cheaper.

/** dst[0..n) = src[0..n) (floats; the ranges must not overlap). */
@inline export function copyFloats(dst: usize, src: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), v128.load(src + (<usize>i << 2)));
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), load<f32>(src + (<usize>i << 2)));
}

/** dst[0..n) = 0 (floats). */
@inline export function zeroFloats(dst: usize, n: i32): void {
  const z = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), z);
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), 0);
}

/** Reads four rows of four 32-bit words (row pitch ld bytes) and stores them transposed (row pitch dstPitch bytes). */
@inline export function transpose4x4(src: usize, ld: usize, dst: usize, dstPitch: usize): void {
  const r0 = v128.load(src);
  const r1 = v128.load(src + ld);
  const r2 = v128.load(src + 2 * ld);
  const r3 = v128.load(src + 3 * ld);
  const t01l = i32x4.shuffle(r0, r1, 0, 4, 1, 5);
  const t23l = i32x4.shuffle(r2, r3, 0, 4, 1, 5);
  const t01h = i32x4.shuffle(r0, r1, 2, 6, 3, 7);
  const t23h = i32x4.shuffle(r2, r3, 2, 6, 3, 7);
  v128.store(dst, i64x2.shuffle(t01l, t23l, 0, 2));
  v128.store(dst + dstPitch, i64x2.shuffle(t01l, t23l, 1, 3));
  v128.store(dst + 2 * dstPitch, i64x2.shuffle(t01h, t23h, 0, 2));
  v128.store(dst + 3 * dstPitch, i64x2.shuffle(t01h, t23h, 1, 3));
}

/**
 * out[i] = Σ_chunk partials[chunk][i] in chunk order (chunk 0 first, so any thread split sums identically) for i
 * in [start, end); chunk rows are chunkBytes apart. The second pass of the split-k matmul and the norm backward.
 */
@inline export function sumPartials(partials: usize, chunkBytes: usize, chunks: i32, out: usize, start: i32, end: i32): void {
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const off = <usize>i << 2;
    let acc = v128.load(partials + off);
    for (let chunk = 1; chunk < chunks; chunk++) acc = f32x4.add(acc, v128.load(partials + <usize>chunk * chunkBytes + off));
    v128.store(out + off, acc);
  }
  for (; i < end; i++) {
    const off = <usize>i << 2;
    let acc = load<f32>(partials + off);
    for (let chunk = 1; chunk < chunks; chunk++) acc += load<f32>(partials + <usize>chunk * chunkBytes + off);
    store<f32>(out + off, acc);
  }
}

/**
 * a * b + c on four f32 lanes. In the relaxed-SIMD build (ASC_FEATURE_RELAXED_SIMD, build/engine_relaxed.wasm) it is
 * `f32x4.relaxed_madd`, which the runtime may fuse into one FMA (one rounding) or run as mul then add; in the plain
 * build it is mul then add (two roundings). Results may differ between the two builds in the last bits, never within
 * one binary on one machine.
 */
@inline export function madd4(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}
