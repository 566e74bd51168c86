// Fused log-softmax + target gather + entropy over logits [rows, cols], one pass over each row: an online
// log-sum-exp visits the row in L1-sized blocks (block max first, then exp(x − m) against the running max,
// rescaling the running sums only when the max grows). Never writes [rows, cols] in the forward.
// Work range [s, e) over rows.
import { expFast, expFastV, hmax, hsum } from './common';

/** Floats per block: the max pass and the exp pass read the block twice, the second time from L1. */
const BLK: i32 = 2048;

@inline function blockMax(x: usize, n: i32): f32 {
  let c = 0;
  let mx: f32 = -Infinity;
  if (n >= 16) {
    // pmax is one maxps; max's NaN/±0 rules cost several instructions in V8
    let m0 = v128.load(x), m1 = v128.load(x, 16), m2 = v128.load(x, 32), m3 = v128.load(x, 48);
    c = 16;
    for (; c + 16 <= n; c += 16) {
      const a = x + (<usize>c << 2);
      m0 = f32x4.pmax(m0, v128.load(a));
      m1 = f32x4.pmax(m1, v128.load(a, 16));
      m2 = f32x4.pmax(m2, v128.load(a, 32));
      m3 = f32x4.pmax(m3, v128.load(a, 48));
    }
    mx = hmax(f32x4.pmax(f32x4.pmax(m0, m1), f32x4.pmax(m2, m3)));
  }
  for (; c < n; c++) mx = Mathf.max(mx, load<f32>(x + (<usize>c << 2)));
  return mx;
}

/**
 * logp[r] = x[t] − lse (0 when t = targets[r] is outside [0, cols)), entropy[r] = lse − Σ softmax·x, lse[r].
 * Running sums against the running max m: S = Σ exp(x − m), T = Σ exp(x − m)·(x − m); then lse = m + log S
 * and entropy = log S − T / S (no cancellation against a large m).
 */
export function log_softmax_gather(x: usize, targets: usize, logp: usize, entropy: usize, lse: usize, cols: i32, s: i32, e: i32): void {
  for (let r = s; r < e; r++) {
    const row = x + (<usize>r * <usize>cols << 2);
    if (cols == 0) {
      // an empty row: log Σ = log 0 reads as +Infinity (no class), like a row with no visible key
      store<f32>(lse + (<usize>r << 2), Infinity);
      store<f32>(logp + (<usize>r << 2), 0);
      store<f32>(entropy + (<usize>r << 2), Infinity);
      continue;
    }
    let m: f32 = -Infinity;
    let sv = f32x4.splat(0), tv = f32x4.splat(0);
    let ss: f32 = 0, ts: f32 = 0;
    for (let c0 = 0; c0 < cols; c0 += BLK) {
      const n = min(BLK, cols - c0);
      const blk = row + (<usize>c0 << 2);
      const bm = blockMax(blk, n);
      if (bm > m) {
        if (m != -Infinity) {
          // S' = c·S, T' = c·(T + δ·S) with c = exp(δ), δ = m − m'
          const delta = m - bm;
          const corr = Mathf.exp(delta);
          const cv = f32x4.splat(corr), dv = f32x4.splat(delta);
          tv = f32x4.mul(f32x4.add(tv, f32x4.mul(dv, sv)), cv);
          sv = f32x4.mul(sv, cv);
          ts = (ts + delta * ss) * corr;
          ss *= corr;
        }
        m = bm;
      }
      const mv = f32x4.splat(m);
      let c = 0;
      for (; c + 4 <= n; c += 4) {
        const dlt = f32x4.sub(v128.load(blk + (<usize>c << 2)), mv);
        const ev = expFastV(dlt);
        sv = f32x4.add(sv, ev);
        tv = f32x4.add(tv, f32x4.mul(ev, dlt));
      }
      for (; c < n; c++) {
        const dlt = load<f32>(blk + (<usize>c << 2)) - m;
        const ev = expFast(dlt);
        ss += ev;
        ts += ev * dlt;
      }
    }
    const sum = hsum(sv) + ss;
    const logSum = Mathf.log(sum);
    const l = m + logSum;
    const t = load<i32>(targets + (<usize>r << 2));
    store<f32>(lse + (<usize>r << 2), l);
    store<f32>(logp + (<usize>r << 2), t >= 0 && t < cols ? load<f32>(row + (<usize>t << 2)) - l : 0);
    store<f32>(entropy + (<usize>r << 2), logSum - (hsum(tv) + ts) / sum);
  }
}

/**
 * gx[r, c] = gLogp·([c == t] − p) − gEntropy·p·(x − lse + entropy), p = exp(x − lse), written as
 * p·(−gLogp − gEntropy·(entropy + d)) with d = x − lse, plus gLogp at the target column.
 */
export function log_softmax_gather_bwd(x: usize, targets: usize, lse: usize, entropy: usize, gLogp: usize, gEntropy: usize,
  gx: usize, cols: i32, s: i32, e: i32): void {
  for (let r = s; r < e; r++) {
    const off = <usize>r * <usize>cols << 2;
    const row = x + off;
    const out = gx + off;
    const ri = <usize>r << 2;
    const l = load<f32>(lse + ri);
    const t = load<i32>(targets + ri);
    const gl: f32 = t >= 0 && t < cols ? load<f32>(gLogp + ri) : 0;
    const ge = load<f32>(gEntropy + ri);
    const base = -gl - ge * load<f32>(entropy + ri);
    const lv = f32x4.splat(l), bv = f32x4.splat(base), gv = f32x4.splat(-ge);
    let c = 0;
    for (; c + 4 <= cols; c += 4) {
      const a = <usize>c << 2;
      const dlt = f32x4.sub(v128.load(row + a), lv);
      v128.store(out + a, f32x4.mul(expFastV(dlt), f32x4.add(bv, f32x4.mul(gv, dlt))));
    }
    for (; c < cols; c++) {
      const a = <usize>c << 2;
      const dlt = load<f32>(row + a) - l;
      store<f32>(out + a, expFast(dlt) * (base - ge * dlt));
    }
    if (t >= 0 && t < cols) {
      const a = out + (<usize>t << 2);
      store<f32>(a, load<f32>(a) + gl);
    }
  }
}
