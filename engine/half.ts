// 16-bit weights (bfloat16, float16) widened to float32 with SIMD integer ops, exactly. Storage: element i at
// byte 2·i (little-endian), two per 32-bit word. kind: HALF_BF16 or HALF_F16 (the host's codes).
//   bfloat16: the upper half of a float32, so widening is a 16-bit shift;
//   float16: normals rebias the exponent (+112 << 23), Inf/NaN map to exponent 255 keeping the payload (the
//   quiet bit lands on float32's), subnormals (and ±0) are m·2^-24, exact as an i32 → f32 convert and a
//   power-of-two multiply.

export const HALF_BF16: i32 = 1;
export const HALF_F16: i32 = 2;

/** Four 16-bit patterns, zero-extended into u32 lanes → four float32 lanes. */
@inline export function widenLanes(h: v128, kind: i32): v128 {
  if (kind == HALF_BF16) return i32x4.shl(h, 16);
  const sign = i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16);
  const em = v128.and(h, i32x4.splat(0x7fff));
  const normal = i32x4.add(i32x4.shl(em, 13), i32x4.splat(0x38000000));
  const infNan = i32x4.add(normal, i32x4.splat(0x38000000));
  const subnormal = f32x4.mul(f32x4.convert_i32x4_s(em), f32x4.splat(<f32>5.9604644775390625e-8));
  let r = v128.bitselect(infNan, normal, i32x4.gt_s(em, i32x4.splat(0x7bff)));
  r = v128.bitselect(subnormal, r, i32x4.lt_s(em, i32x4.splat(0x0400)));
  return v128.or(r, sign);
}

/** Four consecutive 16-bit elements at p → four float32 lanes. */
@inline export function widen4(p: usize, kind: i32): v128 {
  return widenLanes(v128.load16x4_u(p), kind);
}

/** One 16-bit element at p → float32 (the same lane arithmetic as widen4). */
@inline export function widen1(p: usize, kind: i32): f32 {
  return f32x4.extract_lane(widenLanes(i32x4.splat(<i32>load<u16>(p)), kind), 0);
}

/** dst[0..count) (float32) = widened src[0..count) (16-bit). */
@inline export function widenRun(src: usize, dst: usize, count: i32, kind: i32): void {
  let i = 0;
  for (; i + 8 <= count; i += 8) {
    const v = v128.load(src + (<usize>i << 1));
    v128.store(dst + (<usize>i << 2), widenLanes(i32x4.extend_low_i16x8_u(v), kind));
    v128.store(dst + (<usize>i << 2), widenLanes(i32x4.extend_high_i16x8_u(v), kind), 16);
  }
  for (; i < count; i++) store<f32>(dst + (<usize>i << 2), widen1(src + (<usize>i << 1), kind));
}

/** out[i] = float32(src[i]) for elements i in [start, end) (cast of a 16-bit storage to float32). */
export function widen_half(src: usize, out: usize, kind: i32, start: i32, end: i32): void {
  if (start >= end) return;
  widenRun(src + (<usize>start << 1), out + (<usize>start << 2), end - start, kind);
}

/** out[r, :] = float32(table[ids[r], :]) for rows r in [start, end): the embedding lookup of a 16-bit table. */
export function gather_half(table: usize, ids: usize, out: usize, rowLen: i32, kind: i32, start: i32, end: i32): void {
  for (let r = start; r < end; r++) {
    const id = load<i32>(ids + (<usize>r << 2));
    widenRun(table + ((<usize>id * <usize>rowLen) << 1), out + ((<usize>r * <usize>rowLen) << 2), rowLen, kind);
  }
}
