// bfloat16 / float16 ⇄ float32 on the host: the one definition of the 16-bit formats every backend rounds
// and widens by (the kernels' widening is tested bit-exact against halfToFloat32Bits). Rounding is to nearest
// even from float32 (a value is first taken as float32, as every float upload is); NaN stays a quiet NaN.
import type { HalfDType } from './types.js';

/** float32 bits → bfloat16 bits, round to nearest even. */
export function float32BitsToBfloat16(x: number): number {
  if ((x & 0x7fffffff) >>> 0 > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff;
  return (((x >>> 0) + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 bits → float16 bits, round to nearest even (overflow → ±Inf, underflow → ±0 through subnormals). */
export function float32BitsToFloat16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // subnormal half: units of 2^-24; the full significand (implicit bit in) shifted right, rounded to even
    const shift = 14 - e;
    if (shift > 24) return sign; // below half the smallest subnormal (exactly half only at shift 24 with m = 0)
    const full = mant | 0x800000;
    let v = full >>> shift;
    const rest = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (v & 1))) v++;
    return sign | v;
  }
  let v = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (v & 1))) v++; // a carry into the exponent is right (up to Inf)
  return sign | v;
}

/** bfloat16 bits → float32 bits (exact). */
export function bfloat16ToFloat32Bits(h: number): number {
  return (h << 16) >>> 0;
}

/** float16 bits → float32 bits (exact: normals rebias, subnormals normalise, Inf/NaN keep their payload). */
export function float16ToFloat32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const em = h & 0x7fff;
  if (em >= 0x7c00) return (sign | 0x7f800000 | ((em & 0x3ff) << 13)) >>> 0;
  if (em >= 0x0400) return (sign | ((em << 13) + 0x38000000)) >>> 0;
  // subnormal or zero: em · 2^-24, exact in float32
  const bits = new Uint32Array(new Float32Array([em * 2 ** -24]).buffer)[0];
  return (sign | bits) >>> 0;
}

export function halfToFloat32Bits(dtype: HalfDType, h: number): number {
  return dtype === 'bfloat16' ? bfloat16ToFloat32Bits(h) : float16ToFloat32Bits(h);
}

/**
 * Host data → 16-bit patterns packed two per 32-bit word, element 2i in the low half. A Uint16Array is taken as
 * the patterns themselves (a checkpoint's raw BF16 / F16 bytes, every NaN payload kept); any other array as
 * values, taken as float32 and rounded to nearest even.
 */
export function packHalf(dtype: HalfDType, data: ArrayLike<number>): Uint32Array {
  const words = new Uint32Array(Math.ceil(data.length / 2));
  if (data instanceof Uint16Array) {
    for (let i = 0; i < data.length; i++) words[i >> 1] |= data[i] << ((i & 1) * 16);
    return words;
  }
  const bits = new Uint32Array(Float32Array.from(data).buffer);
  const round = dtype === 'bfloat16' ? float32BitsToBfloat16 : float32BitsToFloat16;
  for (let i = 0; i < bits.length; i++) words[i >> 1] |= round(bits[i]) << ((i & 1) * 16);
  return words;
}

/** Packed words → float32 values of the first `size` elements (exact). */
export function unpackHalf(dtype: HalfDType, words: Uint32Array, size: number): Float32Array {
  const out = new Float32Array(size);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < size; i++) outBits[i] = halfToFloat32Bits(dtype, (words[i >> 1] >>> ((i & 1) * 16)) & 0xffff);
  return out;
}

/** The values as the 16-bit format rounds them, widened back to float64 (the reference backend's storage). */
export function roundToHalf(dtype: HalfDType, data: ArrayLike<number>): Float64Array {
  return Float64Array.from(unpackHalf(dtype, packHalf(dtype, data), data.length));
}
