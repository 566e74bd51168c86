// Flash-style scaled dot-product attention, forward: per (batch, head, block of BQ query rows), key rows are
// visited CH at a time with an online softmax (running max M, running sum L, rescaled output O), so no
// tq × tk matrix ever exists. Grouped-query heads read kv head h / (heads / kvHeads).
//
// Arguments come in an i32 parameter block written by the host (ARG_* word indices, generated from
// ATTENTION_PARAM_BLOCK in src/backend/kernel_layouts.ts; ARG_SCALE holds f32 bits).
// Work range [start, end) over batch · heads · ceil(tq / BQ) items; each item owns its output rows, so any split
// gives bit-identical results. Query blocks are visited in zigzag order (0, n−1, 1, n−2, …) so that
// contiguous ranges of items carry equal causal work.
import { expFast, expFastV, hmax, hsum, zeroFloats } from './common';
import {
  ARG_CAUSAL, ARG_HEADS, ARG_HEAD_DIM, ARG_K, ARG_KEY_START, ARG_KV_HEADS, ARG_KV_STRIDE, ARG_LSE, ARG_OUT, ARG_Q, ARG_Q_OFFSET,
  ARG_SCALE, ARG_TK, ARG_TQ, ARG_V,
} from './ops.gen';
import { CH, accumRows, dotRows } from './tiles';

/** Query rows per work item. */
export const BQ: i32 = 16;
export function attention_bq(): i32 { return BQ; }

@inline export function arg(p: usize, i: i32): i32 { return load<i32>(p + (<usize>i << 2)); }
@inline export function argPtr(p: usize, i: i32): usize { return <usize>load<u32>(p + (<usize>i << 2)); }
@inline export function argScale(p: usize): f32 { return load<f32>(p + (<usize>ARG_SCALE << 2)); }

/** Position of the r-th item of n in zigzag order. */
@inline export function zigzag(r: i32, n: i32): i32 { return (r & 1) ? n - 1 - (r >> 1) : r >> 1; }

/** First visible key of sequence b (left padding), 0 without keyStart. */
@inline export function keyStartOf(p: usize, b: i32): i32 {
  const ks = argPtr(p, ARG_KEY_START);
  return ks == 0 ? 0 : max(0, load<i32>(ks + (<usize>b << 2)));
}

/** One past the last key visible to the query row at absolute position qpos. */
@inline export function keyEnd(causal: i32, tk: i32, qpos: i32): i32 { return causal ? min(tk, qpos + 1) : tk; }

/**
 * Online-softmax step for one query row over a block of nb scores (scaled in place), of which the first
 * `valid` are visible. Leaves exp(s − M) in the row (0 where invisible), updates M and L, rescales O.
 */
@inline function softmaxStep(srow: usize, nb: i32, valid: i32, scale: f32, mp: usize, lp: usize, orow: usize, d: i32): void {
  if (valid <= 0) {
    zeroFloats(srow, nb);
    return;
  }
  const sv = f32x4.splat(scale);
  let mv = f32x4.splat(-Infinity);
  let c = 0;
  for (; c + 4 <= valid; c += 4) {
    const a = srow + (<usize>c << 2);
    const x = f32x4.mul(v128.load(a), sv);
    v128.store(a, x);
    mv = f32x4.pmax(mv, x); // pmax: one maxps (scores are never NaN)
  }
  let mx = hmax(mv);
  for (; c < valid; c++) {
    const a = srow + (<usize>c << 2);
    const x = load<f32>(a) * scale;
    store<f32>(a, x);
    mx = Mathf.max(mx, x);
  }
  const mOld = load<f32>(mp);
  const mNew = Mathf.max(mOld, mx);
  const nv = f32x4.splat(mNew);
  let acc = f32x4.splat(0);
  c = 0;
  for (; c + 4 <= valid; c += 4) {
    const a = srow + (<usize>c << 2);
    const ev = expFastV(f32x4.sub(v128.load(a), nv));
    v128.store(a, ev);
    acc = f32x4.add(acc, ev);
  }
  let sum = hsum(acc);
  for (; c < valid; c++) {
    const a = srow + (<usize>c << 2);
    const ev = expFast(load<f32>(a) - mNew);
    store<f32>(a, ev);
    sum += ev;
  }
  if (valid < nb) zeroFloats(srow + (<usize>valid << 2), nb - valid);
  const lOld = load<f32>(lp);
  store<f32>(mp, mNew);
  if (lOld == 0) {
    store<f32>(lp, sum); // O is still zero: nothing to rescale
    return;
  }
  const corr = Mathf.exp(mOld - mNew);
  store<f32>(lp, lOld * corr + sum);
  if (corr != 1) scaleRow(orow, d, corr);
}

/** dst[0..n) = src[0..n)·f. */
@inline function scaleRowTo(dst: usize, src: usize, n: i32, f: f32): void {
  const fv = f32x4.splat(f);
  let c = 0;
  for (; c + 4 <= n; c += 4) v128.store(dst + (<usize>c << 2), f32x4.mul(v128.load(src + (<usize>c << 2)), fv));
  for (; c < n; c++) store<f32>(dst + (<usize>c << 2), load<f32>(src + (<usize>c << 2)) * f);
}

/** row[0..n) *= f. */
@inline export function scaleRow(row: usize, n: i32, f: f32): void {
  const fv = f32x4.splat(f);
  let c = 0;
  for (; c + 4 <= n; c += 4) {
    const a = row + (<usize>c << 2);
    v128.store(a, f32x4.mul(v128.load(a), fv));
  }
  for (; c < n; c++) {
    const a = row + (<usize>c << 2);
    store<f32>(a, load<f32>(a) * f);
  }
}

/** Forward of query rows [i0, i0 + nq) of head h, sequence b. Scratch: S [BQ][CH], O [BQ][D], M, L [BQ]. */
function forwardBlock(p: usize, b: i32, h: i32, i0: i32, nq: i32, scratch: usize): void {
  const heads = arg(p, ARG_HEADS), kvHeads = arg(p, ARG_KV_HEADS), tq = arg(p, ARG_TQ), tk = arg(p, ARG_TK);
  const d = arg(p, ARG_HEAD_DIM), causal = arg(p, ARG_CAUSAL), qOffset = arg(p, ARG_Q_OFFSET);
  const scale = argScale(p);
  const kvh = h / (heads / kvHeads);
  const ldr = <usize>d << 2;
  const row0 = <usize>((b * heads + h) * tq + i0);
  const q0 = argPtr(p, ARG_Q) + row0 * ldr;
  const kvBase = <usize>(b * kvHeads + kvh) * <usize>arg(p, ARG_KV_STRIDE) * ldr;
  const kb = argPtr(p, ARG_K) + kvBase;
  const vb = argPtr(p, ARG_V) + kvBase;
  const ks = keyStartOf(p, b);
  const hiLast = keyEnd(causal, tk, qOffset + i0 + nq - 1);

  const sBuf = scratch;
  const oBuf = sBuf + (<usize>(BQ * CH) << 2);
  const mBuf = oBuf + <usize>BQ * ldr;
  const lBuf = mBuf + (<usize>BQ << 2);
  zeroFloats(oBuf, nq * d);
  for (let i = 0; i < nq; i++) {
    store<f32>(mBuf + (<usize>i << 2), -Infinity);
    store<f32>(lBuf + (<usize>i << 2), 0);
  }
  for (let j0 = ks; j0 < hiLast; j0 += CH) {
    const nb = min(CH, hiLast - j0);
    dotRows(q0, ldr, nq, kb + <usize>j0 * ldr, ldr, nb, d, sBuf, <usize>CH << 2);
    for (let i = 0; i < nq; i++) {
      const valid = min(nb, keyEnd(causal, tk, qOffset + i0 + i) - j0);
      softmaxStep(sBuf + (<usize>(i * CH) << 2), nb, valid, scale, mBuf + (<usize>i << 2), lBuf + (<usize>i << 2),
        oBuf + <usize>i * ldr, d);
    }
    accumRows(sBuf, nq, vb + <usize>j0 * ldr, ldr, nb, d, oBuf, ldr);
  }
  const out = argPtr(p, ARG_OUT) + row0 * ldr;
  const lse = argPtr(p, ARG_LSE) + (row0 << 2);
  for (let i = 0; i < nq; i++) {
    const l = load<f32>(lBuf + (<usize>i << 2));
    const orow = out + <usize>i * ldr;
    if (l > 0) {
      scaleRowTo(orow, oBuf + <usize>i * ldr, d, <f32>1 / l);
      store<f32>(lse + (<usize>i << 2), load<f32>(mBuf + (<usize>i << 2)) + Mathf.log(l));
    } else {
      zeroFloats(orow, d); // no visible key
      store<f32>(lse + (<usize>i << 2), Infinity);
    }
  }
}

export function attention_fwd(p: usize, scratch: usize, start: i32, end: i32): void {
  const heads = arg(p, ARG_HEADS), tq = arg(p, ARG_TQ);
  const nqb = (tq + BQ - 1) / BQ;
  for (let w = start; w < end; w++) {
    const bh = w / nqb;
    const qb = zigzag(w - bh * nqb, nqb);
    const i0 = qb * BQ;
    forwardBlock(p, bh / heads, bh % heads, i0, min(BQ, tq - i0), scratch);
  }
}
