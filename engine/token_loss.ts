// Clipped policy-gradient token loss (PPO / GRPO / DAPO), forward and backward, elementwise over n tokens
// (contract: src/backend/model_kernels.ts, tokenLoss / tokenLossBackward). Four tokens per SIMD step, the
// tail through the same vector code on one lane, so every token sees identical rounding. Both entries choose
// the branch with `branch`, so the gradient always belongs to the branch the forward chose.
// lo = 1 − epsLow, hi = 1 + epsHigh, c = dualClip (0 = off), C = log-ratio clamp. Work range [start, end).
import { expV } from './common';

// Results of branch() for the current four tokens (globals are per instance, i.e. per thread).
let bD: v128 = f32x4.splat(0);     // clamped log-ratio d
let bR: v128 = f32x4.splat(0);     // r = exp(d)
let bL: v128 = f32x4.splat(0);     // chosen loss l (before the weight)
let bGrad: v128 = f32x4.splat(0);  // ∂l/∂logp: −A·r on the unclipped branch, else 0

@inline function branch(lp: v128, old: v128, a: v128, lo: f32, hi: f32, c: f32, C: f32): void {
  const raw = f32x4.sub(lp, old);
  const d = f32x4.pmin(f32x4.pmax(raw, f32x4.splat(-C)), f32x4.splat(C));
  const r = expV(d);
  const na = f32x4.neg(a);
  const l1 = f32x4.mul(na, r);
  const l2 = f32x4.mul(na, f32x4.pmin(f32x4.pmax(r, f32x4.splat(lo)), f32x4.splat(hi)));
  const take1 = f32x4.ge(l1, l2); // ties → l1
  let l = v128.bitselect(l1, l2, take1);
  const bound = f32x4.mul(na, f32x4.splat(c));
  const dualOn = i32x4.splat(c > 0 ? -1 : 0);
  const dual = v128.and(v128.and(dualOn, f32x4.lt(a, f32x4.splat(0))), f32x4.lt(bound, l));
  l = v128.bitselect(bound, l, dual);
  const unclipped = v128.and(v128.andnot(take1, dual), f32x4.le(f32x4.abs(raw), f32x4.splat(C)));
  bD = d;
  bR = r;
  bL = l;
  bGrad = v128.and(l1, unclipped);
}

/** k3 = (r − 1) − d, summed as a series for |d| < 1/8 where the subtraction would cancel (~d²/2 is left). */
@inline function k3(d: v128, r: v128): v128 {
  let p = f32x4.add(f32x4.mul(d, f32x4.splat(<f32>(1.0 / 720.0))), f32x4.splat(<f32>(1.0 / 120.0)));
  p = f32x4.add(f32x4.mul(d, p), f32x4.splat(<f32>(1.0 / 24.0)));
  p = f32x4.add(f32x4.mul(d, p), f32x4.splat(<f32>(1.0 / 6.0)));
  p = f32x4.add(f32x4.mul(d, p), f32x4.splat(0.5));
  const series = f32x4.mul(f32x4.mul(d, d), p);
  const direct = f32x4.sub(f32x4.sub(r, f32x4.splat(1)), d);
  return v128.bitselect(series, direct, f32x4.lt(f32x4.abs(d), f32x4.splat(0.125)));
}

/** Element i of a float array in every lane (the scalar tail reuses the vector code). */
@inline function splatAt(p: usize, i: i32): v128 {
  return f32x4.splat(load<f32>(p + (<usize>i << 2)));
}

/** loss[i] = weight·l; stats [3, n]: low clip, high clip, k3 — each 0 where weight is 0. */
export function token_loss(logp: usize, oldLogp: usize, adv: usize, weight: usize, loss: usize, stats: usize, n: i32,
  lo: f32, hi: f32, c: f32, C: f32, start: i32, end: i32): void {
  const zero = f32x4.splat(0), one = f32x4.splat(1);
  const loV = f32x4.splat(lo), hiV = f32x4.splat(hi);
  const high = stats + (<usize>n << 2);
  const kl = stats + (<usize>n << 3);
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const o = <usize>i << 2;
    const a = v128.load(adv + o);
    const w = v128.load(weight + o);
    branch(v128.load(logp + o), v128.load(oldLogp + o), a, lo, hi, c, C);
    const valid = f32x4.ne(w, zero);
    v128.store(loss + o, f32x4.mul(w, bL));
    v128.store(stats + o, v128.and(v128.and(valid, v128.and(f32x4.lt(bR, loV), f32x4.lt(a, zero))), one));
    v128.store(high + o, v128.and(v128.and(valid, v128.and(f32x4.gt(bR, hiV), f32x4.gt(a, zero))), one));
    v128.store(kl + o, v128.and(valid, k3(bD, bR)));
  }
  for (; i < end; i++) {
    const o = <usize>i << 2;
    const a = load<f32>(adv + o);
    const w = load<f32>(weight + o);
    branch(splatAt(logp, i), splatAt(oldLogp, i), f32x4.splat(a), lo, hi, c, C);
    const r = f32x4.extract_lane(bR, 0);
    const valid = w != 0;
    store<f32>(loss + o, w * f32x4.extract_lane(bL, 0));
    store<f32>(stats + o, valid && r < lo && a < 0 ? 1 : 0);
    store<f32>(high + o, valid && r > hi && a > 0 ? 1 : 0);
    store<f32>(kl + o, valid ? f32x4.extract_lane(k3(bD, bR), 0) : 0);
  }
}

/** gLogp[i] = gLoss·weight·(−A·r) on the unclipped branch, else 0. */
export function token_loss_bwd(logp: usize, oldLogp: usize, adv: usize, weight: usize, gLoss: usize, gLogp: usize,
  lo: f32, hi: f32, c: f32, C: f32, start: i32, end: i32): void {
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const o = <usize>i << 2;
    branch(v128.load(logp + o), v128.load(oldLogp + o), v128.load(adv + o), lo, hi, c, C);
    v128.store(gLogp + o, f32x4.mul(f32x4.mul(v128.load(gLoss + o), v128.load(weight + o)), bGrad));
  }
  for (; i < end; i++) {
    const o = <usize>i << 2;
    branch(splatAt(logp, i), splatAt(oldLogp, i), splatAt(adv, i), lo, hi, c, C);
    store<f32>(gLogp + o, load<f32>(gLoss + o) * load<f32>(weight + o) * f32x4.extract_lane(bGrad, 0));
  }
}
