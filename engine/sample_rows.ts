// Token sampling from logits rows (contract: src/backend/model_kernels.ts, sampleRows), so generation hands
// back two floats per row instead of reading the row to the host. Work range [start, end) over rows.
// s = x · (1/temperature); token = the smallest c with u·z < Σ_{j ≤ c} exp(s_j − max s) (index order, as sampleToken on
// the host). The exps come four at a time from the SIMD exp and are added one by one in float64, in index order, by
// the same code in the total and in the walk, so the walk's sums equal the total's and it always stops in the row.
// temperature 0: the first maximum and its temperature-1 log-probability.
import { expFastFlushV, hmax } from './common';

@inline function scaled(x: usize, c: i32, inv: f32, divide: bool): v128 {
  const v = v128.load(x + (<usize>c << 2));
  return divide ? f32x4.mul(v, f32x4.splat(inv)) : v;
}

@inline function scaled1(x: usize, c: i32, inv: f32, divide: bool): f32 {
  const v = load<f32>(x + (<usize>c << 2));
  return divide ? v * inv : v;
}

/** The running sum where the last walk stopped (this instance's: each thread has its own globals). */
let walked: f64 = 0;

/**
 * Adds exp(s − m) over the row in index order (float64) until the sum exceeds target; returns that column (the last
 * one when it never does: target = Infinity for the row's total, or u·z rounded up to z) and leaves the sum in walked.
 */
function walk(x: usize, cols: i32, inv: f32, divide: bool, m: f32, target: f64): i32 {
  let acc: f64 = 0;
  let c = 0;
  const mv = f32x4.splat(m);
  for (; c + 4 <= cols; c += 4) {
    const e = expFastFlushV(f32x4.sub(scaled(x, c, inv, divide), mv));
    const e0 = <f64>f32x4.extract_lane(e, 0), e1 = <f64>f32x4.extract_lane(e, 1);
    const e2 = <f64>f32x4.extract_lane(e, 2), e3 = <f64>f32x4.extract_lane(e, 3);
    if (target < acc + e0 + e1 + e2 + e3) {
      acc += e0; if (target < acc) { walked = acc; return c; }
      acc += e1; if (target < acc) { walked = acc; return c + 1; }
      acc += e2; if (target < acc) { walked = acc; return c + 2; }
      walked = acc + e3;
      return c + 3;
    }
    acc += e0; acc += e1; acc += e2; acc += e3;
  }
  for (; c < cols; c++) {
    acc += <f64>f32x4.extract_lane(expFastFlushV(f32x4.splat(scaled1(x, c, inv, divide) - m)), 0);
    if (target < acc) { walked = acc; return c; }
  }
  walked = acc;
  return cols - 1;
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
    let m = hmax(mv);
    for (; c < cols; c++) m = Mathf.max(m, scaled1(x, c, inv, divide));
    let best = 0;
    if (greedy) while (best < cols - 1 && load<f32>(x + (<usize>best << 2)) != m) best++;
    walk(x, cols, inv, divide, m, Infinity);
    const z = walked;
    const logZ = <f64>m + Math.log(z);
    let token = best;
    if (!greedy) token = walk(x, cols, inv, divide, m, <f64>load<f32>(uniforms + (<usize>r << 2)) * z);
    const s = scaled1(x, token, inv, divide);
    store<f32>(out + (<usize>r << 3), <f32>token);
    store<f32>(out + (<usize>r << 3) + 4, <f32>(<f64>s - logZ));
  }
}
