// Token sampling from logits rows (contract: src/backend/model_kernels.ts, sampleRows), so generation hands
// back two floats per row instead of reading the row to the host. Work range [start, end) over rows.
// s = x · (1/temperature); token = the smallest c with u·z < Σ_{j ≤ c} exp(s_j − max s) (index order, as sampleToken on
// the host). The exps come four at a time from the SIMD exp and are added one by one in float64, in index order, by
// the same code in the total and in the walk, so the walk's sums equal the total's and it always stops in the row.
// temperature 0: the first maximum and its temperature-1 log-probability.
import { expFastFlushV } from './common';

@inline function scaled(x: usize, c: i32, inv: f32, divide: bool): v128 {
  const v = v128.load(x + (<usize>c << 2));
  return divide ? f32x4.mul(v, f32x4.splat(inv)) : v;
}

/** Σ exp(s − m) over [0, cols) in index order (float64); with target ≥ 0, stops at the first c whose sum exceeds it. */
function walk(x: usize, cols: i32, inv: f32, divide: bool, m: f32, target: f64): i64 {
  let acc: f64 = 0;
  let c = 0;
  const mv = f32x4.splat(m);
  for (; c + 4 <= cols; c += 4) {
    const e = expFastFlushV(f32x4.sub(scaled(x, c, inv, divide), mv));
    const e0 = <f64>f32x4.extract_lane(e, 0), e1 = <f64>f32x4.extract_lane(e, 1);
    const e2 = <f64>f32x4.extract_lane(e, 2), e3 = <f64>f32x4.extract_lane(e, 3);
    if (target >= 0 && target < acc + e0 + e1 + e2 + e3) {
      acc += e0; if (target < acc) return c;
      acc += e1; if (target < acc) return c + 1;
      acc += e2; if (target < acc) return c + 2;
      return c + 3;
    }
    acc += e0; acc += e1; acc += e2; acc += e3;
  }
  for (; c < cols; c++) {
    const s = divide ? load<f32>(x + (<usize>c << 2)) * inv : load<f32>(x + (<usize>c << 2));
    acc += <f64>f32x4.extract_lane(expFastFlushV(f32x4.splat(s - m)), 0);
    if (target >= 0 && target < acc) return c;
  }
  // The total (target < 0) as bits; a target the sums never exceed (u·z rounded up to z) takes the last column.
  return target < 0 ? reinterpret<i64>(acc) : <i64>(cols - 1);
}

export function sample_rows(logits: usize, uniforms: usize, out: usize, cols: i32, temperature: f32, start: i32, end: i32): void {
  const greedy = temperature == 0;
  const inv: f32 = greedy ? 1 : 1 / temperature;
  const divide = inv != 1;
  for (let r = start; r < end; r++) {
    const x = logits + (<usize>r * <usize>cols << 2);
    // The max four lanes at a time; greedy then finds its first index.
    let mv = f32x4.splat(-Infinity);
    let c = 0;
    for (; c + 4 <= cols; c += 4) mv = f32x4.max(mv, scaled(x, c, inv, divide));
    let m: f32 = Mathf.max(Mathf.max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), Mathf.max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
    for (; c < cols; c++) m = Mathf.max(m, divide ? load<f32>(x + (<usize>c << 2)) * inv : load<f32>(x + (<usize>c << 2)));
    let best = 0;
    if (greedy) while (best < cols - 1 && load<f32>(x + (<usize>best << 2)) != m) best++;
    const z = reinterpret<f64>(walk(x, cols, inv, divide, m, -1));
    const logZ = <f64>m + Math.log(z);
    let token = best;
    if (!greedy) token = <i32>walk(x, cols, inv, divide, m, <f64>load<f32>(uniforms + (<usize>r << 2)) * z);
    const s = divide ? load<f32>(x + (<usize>token << 2)) * inv : load<f32>(x + (<usize>token << 2));
    store<f32>(out + (<usize>r << 3), <f32>token);
    store<f32>(out + (<usize>r << 3) + 4, <f32>(<f64>s - logZ));
  }
}
