// Rotary position embedding ("rotate_half") over x [batch, t, heads, headDim], positions int32 [batch, t].
// Per (batch, t) row the cos/sin table of its position is built once and reused by every head: angles
// pos·f_j (f_j = theta^(−2j/headDim), or the caller's float64 table for scaled RoPE) are reduced by π/2 in
// float64 (positions reach tens of thousands of radians), then sin and cos of the reduced angle are float64x2 polynomials. Work range [start, end) over batch · t rows.

const PIO2_HI: f64 = 1.5707963267341256; // π/2 split so k·PIO2_HI is exact for |k| < 2^20
const PIO2_LO: f64 = 6.077100506506192e-11;
const TWO_OVER_PI: f64 = 0.6366197723675814;

/** sin and cos (f64x2 lanes) of angles a; stores them as f32 at sinOut, cosOut (two floats each). */
@inline function sinCos2(a: v128, sinOut: usize, cosOut: usize): void {
  const k = f64x2.nearest(f64x2.mul(a, f64x2.splat(TWO_OVER_PI)));
  const y = f64x2.sub(f64x2.sub(a, f64x2.mul(k, f64x2.splat(PIO2_HI))), f64x2.mul(k, f64x2.splat(PIO2_LO)));
  const z = f64x2.mul(y, y);
  // |y| ≤ π/4: Taylor to y^11 (sin) and y^12 (cos), error < 1e-10
  let sp = f64x2.splat(-2.5052108385441720e-8);
  sp = f64x2.add(f64x2.mul(sp, z), f64x2.splat(2.7557319223985893e-6));
  sp = f64x2.add(f64x2.mul(sp, z), f64x2.splat(-1.9841269841269841e-4));
  sp = f64x2.add(f64x2.mul(sp, z), f64x2.splat(8.3333333333333333e-3));
  sp = f64x2.add(f64x2.mul(sp, z), f64x2.splat(-1.6666666666666667e-1));
  const sn = f64x2.add(y, f64x2.mul(f64x2.mul(sp, z), y));
  let cp = f64x2.splat(2.0876756987868099e-9);
  cp = f64x2.add(f64x2.mul(cp, z), f64x2.splat(-2.7557319223985891e-7));
  cp = f64x2.add(f64x2.mul(cp, z), f64x2.splat(2.4801587301587302e-5));
  cp = f64x2.add(f64x2.mul(cp, z), f64x2.splat(-1.3888888888888889e-3));
  cp = f64x2.add(f64x2.mul(cp, z), f64x2.splat(4.1666666666666667e-2));
  cp = f64x2.add(f64x2.mul(cp, z), f64x2.splat(-0.5));
  const cs = f64x2.add(f64x2.splat(1), f64x2.mul(cp, z));
  // quadrant q = k mod 4: sin = (s, c, −s, −c)[q], cos = (c, −s, −c, s)[q]
  const q = f64x2.sub(k, f64x2.mul(f64x2.floor(f64x2.mul(k, f64x2.splat(0.25))), f64x2.splat(4)));
  const odd = v128.or(f64x2.eq(q, f64x2.splat(1)), f64x2.eq(q, f64x2.splat(3)));
  const sinNeg = f64x2.ge(q, f64x2.splat(2));
  const cosNeg = v128.or(f64x2.eq(q, f64x2.splat(1)), f64x2.eq(q, f64x2.splat(2)));
  const sign = f64x2.splat(-0.0);
  const sv = v128.xor(v128.bitselect(cs, sn, odd), v128.and(sinNeg, sign));
  const cv = v128.xor(v128.bitselect(sn, cs, odd), v128.and(cosNeg, sign));
  v128.store64_lane(sinOut, f32x4.demote_f64x2_zero(sv), 0);
  v128.store64_lane(cosOut, f32x4.demote_f64x2_zero(cv), 0);
}

/**
 * out = rope(x) for rows [start, end) of batch · t. scratch: this thread's area for the frequency and cos/sin tables.
 * inverse negates the angle (the backward). frequencies: f64 [headDim/2] inverse frequencies (scaled RoPE), or 0
 * for theta^(−2j/headDim).
 */
export function rope(x: usize, positions: usize, out: usize, heads: i32, headDim: i32, theta: f64, inverse: i32,
  frequencies: usize, scratch: usize, start: i32, end: i32): void {
  const half = headDim >> 1;
  const half2 = (half + 1) & ~1; // tables padded to whole f64x2 pairs
  const freq = scratch; // f64 [half2]
  const sinT = freq + (<usize>half2 << 3); // f32 [half2]
  const cosT = sinT + (<usize>half2 << 2);
  for (let j = 0; j < half2; j++) {
    const f: f64 = frequencies != 0 ? load<f64>(frequencies + (<usize>j << 3)) : Math.pow(theta, -2.0 * <f64>j / <f64>headDim);
    store<f64>(freq + (<usize>j << 3), j < half ? f : 0);
  }
  const sgn: f64 = inverse ? -1 : 1;
  const rowBytes = <usize>heads * <usize>headDim << 2;
  const halfBytes = <usize>half << 2;
  for (let r = start; r < end; r++) {
    const pv = f64x2.splat(sgn * <f64>load<i32>(positions + (<usize>r << 2)));
    for (let j = 0; j < half2; j += 2) {
      sinCos2(f64x2.mul(pv, v128.load(freq + (<usize>j << 3))), sinT + (<usize>j << 2), cosT + (<usize>j << 2));
    }
    const xr = x + <usize>r * rowBytes, or = out + <usize>r * rowBytes;
    for (let h = 0; h < heads; h++) {
      const x1 = xr + <usize>h * (<usize>headDim << 2), o1 = or + <usize>h * (<usize>headDim << 2);
      const x2 = x1 + halfBytes, o2 = o1 + halfBytes;
      let j = 0;
      for (; j + 4 <= half; j += 4) {
        const a = <usize>j << 2;
        const c = v128.load(cosT + a), sn = v128.load(sinT + a);
        const u = v128.load(x1 + a), v = v128.load(x2 + a);
        v128.store(o1 + a, f32x4.sub(f32x4.mul(u, c), f32x4.mul(v, sn)));
        v128.store(o2 + a, f32x4.add(f32x4.mul(v, c), f32x4.mul(u, sn)));
      }
      for (; j < half; j++) {
        const a = <usize>j << 2;
        const c = load<f32>(cosT + a), sn = load<f32>(sinT + a);
        const u = load<f32>(x1 + a), v = load<f32>(x2 + a);
        store<f32>(o1 + a, u * c - v * sn);
        store<f32>(o2 + a, v * c + u * sn);
      }
    }
  }
}
