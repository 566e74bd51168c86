// Fused log-softmax + target gather + entropy over logits [rows, cols] in one pass over each row: exp sums
// against a reference m that is at most a few nats below the row's running max, so no separate max pass is
// needed. Each block of BLK floats is summed against the max of everything before it (the first block against
// the max of its first HEAD floats) while the block's own max is taken in the same loop; only a block whose max
// exceeds the reference by more than MARGIN (exp would overflow or lose range) is summed again, from L1,
// against its own max. Never writes [rows, cols] in the forward. Work range [start, end) over rows.
import { expFast, expFastV, hmax, hsum } from './common';

/** Floats per block: the reference moves up to the running max between blocks. */
const BLK: i32 = 2048;
/** Floats whose max is the first block's reference. */
const HEAD: i32 = 64;
/** Largest accepted x − m in a block (nats): e^64·2^31 stays far below float max, e^(x − m) never overflows. */
const MARGIN: f32 = 64;

@inline function maxOf(x: usize, n: i32): f32 {
  let c = 0;
  let mx: f32 = -Infinity;
  if (n >= 4) {
    let mv = v128.load(x);
    for (c = 4; c + 4 <= n; c += 4) mv = f32x4.pmax(mv, v128.load(x + (<usize>c << 2)));
    mx = hmax(mv);
  }
  for (; c < n; c++) mx = Mathf.max(mx, load<f32>(x + (<usize>c << 2)));
  return mx;
}

// Sums of one block against reference m (per lane; tails into the scalars): S = Σ exp(x − m),
// T = Σ exp(x − m)·(x − m), and the block max.
let gS: v128 = f32x4.splat(0);
let gT: v128 = f32x4.splat(0);
let gSs: f32 = 0;
let gTs: f32 = 0;
let gMax: f32 = 0;

@inline function sumBlock(blk: usize, n: i32, m: f32): void {
  const mv = f32x4.splat(m);
  let sv = f32x4.splat(0), tv = sv;
  let bm = f32x4.splat(-Infinity);
  let c = 0;
  for (; c + 4 <= n; c += 4) {
    const x = v128.load(blk + (<usize>c << 2));
    bm = f32x4.pmax(bm, x); // pmax: one maxps
    const dlt = f32x4.sub(x, mv);
    const ev = expFastV(dlt);
    sv = f32x4.add(sv, ev);
    tv = f32x4.add(tv, f32x4.mul(ev, dlt));
  }
  let mx = hmax(bm);
  let ss: f32 = 0, ts: f32 = 0;
  for (; c < n; c++) {
    const x = load<f32>(blk + (<usize>c << 2));
    mx = Mathf.max(mx, x);
    const dlt = x - m;
    const ev = expFast(dlt);
    ss += ev;
    ts += ev * dlt;
  }
  gS = sv; gT = tv; gSs = ss; gTs = ts; gMax = mx;
}

/**
 * logp[r] = x[t] − lse (0 when t = targets[r] is outside [0, cols)), entropy[r] = lse − Σ softmax·x, lse[r].
 * Running sums against the reference m: S = Σ exp(x − m), T = Σ exp(x − m)·(x − m); then lse = m + log S
 * and entropy = log S − T / S (no cancellation against a large m).
 */
export function log_softmax_gather(x: usize, targets: usize, logp: usize, entropy: usize, lse: usize, cols: i32, start: i32, end: i32): void {
  for (let r = start; r < end; r++) {
    const row = x + (<usize>r * <usize>cols << 2);
    if (cols == 0) {
      // an empty row: log Σ = log 0 reads as +Infinity (no class), like a row with no visible key
      store<f32>(lse + (<usize>r << 2), Infinity);
      store<f32>(logp + (<usize>r << 2), 0);
      store<f32>(entropy + (<usize>r << 2), Infinity);
      continue;
    }
    let m = maxOf(row, min(HEAD, cols));
    let sv = f32x4.splat(0), tv = sv;
    let ss: f32 = 0, ts: f32 = 0;
    for (let c0 = 0; c0 < cols; c0 += BLK) {
      const n = min(BLK, cols - c0);
      const blk = row + (<usize>c0 << 2);
      sumBlock(blk, n, m);
      const bm = gMax;
      if (bm > m) {
        // !(bm − m ≤ MARGIN) also catches m = −Infinity (and NaN): then the block is summed again
        const redo = !(bm - m <= MARGIN);
        if (m != -Infinity) {
          // move the row'start sums to the new reference: S' = c·S, T' = c·(T + δ·S) with c = exp(δ), δ = m − m'
          const delta = m - bm;
          const corr = Mathf.exp(delta);
          const cv = f32x4.splat(corr), dv = f32x4.splat(delta);
          tv = f32x4.mul(f32x4.add(tv, f32x4.mul(dv, sv)), cv);
          sv = f32x4.mul(sv, cv);
          ts = (ts + delta * ss) * corr;
          ss *= corr;
          if (!redo) {
            // this block was summed against the old reference: rescale its sums the same way
            gT = f32x4.mul(f32x4.add(gT, f32x4.mul(dv, gS)), cv);
            gS = f32x4.mul(gS, cv);
            gTs = (gTs + delta * gSs) * corr;
            gSs *= corr;
          }
        }
        m = bm;
        if (redo) sumBlock(blk, n, m);
      }
      sv = f32x4.add(sv, gS);
      tv = f32x4.add(tv, gT);
      ss += gSs;
      ts += gTs;
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
  gx: usize, cols: i32, start: i32, end: i32): void {
  for (let r = start; r < end; r++) {
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
