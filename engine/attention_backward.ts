// Flash-style attention backward in two passes that never write the same rows from two threads:
//   dq pass, per (batch, head, query block): D_i = gOut_i·out_i (kept in a host buffer for the dkv pass),
//     p = exp(scale·q·k − lse), dS = p·(gOut·v − D), gq = scale·dS·k, key blocks visited CH at a time;
//   dkv pass, per (batch, kv head, key block): the same p and dS recomputed transposed (key rows × query
//     columns) for every query head sharing the kv head, gv = pᵀ·gOut, gk = scale·dSᵀ·q.
// Requires kvStride == tk (checked by the host). Parameter block as in attention.ts; DROW is the D buffer.
import { copyFloats, expFastFlushV, hsum, zeroFloats } from './common';
import {
  A_DROW, A_GK, A_GOUT, A_GQ, A_GV, A_HEAD_DIM, A_HEADS, A_KV_HEADS, A_K, A_LSE, A_OUT, A_Q, A_Q_OFFSET, A_TK, A_TQ,
  A_CAUSAL, A_V, BQ, arg, argPtr, argScale, keyEnd, keyStartOf, zigzag,
} from './attention';
import { CH, accumRows, dotRows } from './tiles';

/** Key rows per dkv work item. */
export const BKV: i32 = 16;
export function attention_bkv(): i32 { return BKV; }

@inline function rowDot(a: usize, b: usize, n: i32): f32 {
  let acc = f32x4.splat(0);
  let c = 0;
  for (; c + 4 <= n; c += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(a + (<usize>c << 2)), v128.load(b + (<usize>c << 2))));
  let r = hsum(acc);
  for (; c < n; c++) r += load<f32>(a + (<usize>c << 2)) * load<f32>(b + (<usize>c << 2));
  return r;
}

/** Scalar twin of one lane of the dS computation below. */
@inline function dsScalar(s: f32, dp: f32, scale: f32, lse: f32, dr: f32): f32 {
  const pv = f32x4.extract_lane(expFastFlushV(f32x4.splat(s * scale - lse)), 0);
  return pv * (dp - dr) * scale;
}

/**
 * dq pass, one query row: over columns [0, valid) of the block, S := scale·p·(dP − D) with p = exp(scale·S − lse)
 * (lse, D per row); columns [valid, nb) := 0.
 */
@inline function dsRow(srow: usize, dprow: usize, nb: i32, valid: i32, scale: f32, lse: f32, dr: f32): void {
  const sv = f32x4.splat(scale), lv = f32x4.splat(lse), dv = f32x4.splat(dr);
  let c = 0;
  for (; c + 4 <= valid; c += 4) {
    const a = <usize>c << 2;
    const pv = expFastFlushV(f32x4.sub(f32x4.mul(v128.load(srow + a), sv), lv));
    v128.store(srow + a, f32x4.mul(f32x4.mul(pv, f32x4.sub(v128.load(dprow + a), dv)), sv));
  }
  for (; c < valid; c++) {
    const a = <usize>c << 2;
    store<f32>(srow + a, dsScalar(load<f32>(srow + a), load<f32>(dprow + a), scale, lse, dr));
  }
  const from = max(valid, 0);
  if (from < nb) zeroFloats(srow + (<usize>from << 2), nb - from);
}

/** dq of query rows [i0, i0 + nq) of head h. Scratch: S, dP [BQ][CH]; GQ [BQ][D]; lse, D [BQ]. */
function dqBlock(p: usize, b: i32, h: i32, i0: i32, nq: i32, scratch: usize): void {
  const heads = arg(p, A_HEADS), kvHeads = arg(p, A_KV_HEADS), tq = arg(p, A_TQ), tk = arg(p, A_TK);
  const d = arg(p, A_HEAD_DIM), causal = arg(p, A_CAUSAL), qOffset = arg(p, A_Q_OFFSET);
  const scale = argScale(p);
  const kvh = h / (heads / kvHeads);
  const ldr = <usize>d << 2;
  const row0 = <usize>((b * heads + h) * tq + i0);
  const q0 = argPtr(p, A_Q) + row0 * ldr;
  const g0 = argPtr(p, A_GOUT) + row0 * ldr;
  const o0 = argPtr(p, A_OUT) + row0 * ldr;
  const kvBase = <usize>(b * kvHeads + kvh) * <usize>tk * ldr;
  const kb = argPtr(p, A_K) + kvBase;
  const vb = argPtr(p, A_V) + kvBase;
  const ks = keyStartOf(p, b);
  const hiLast = keyEnd(causal, tk, qOffset + i0 + nq - 1);

  const sBuf = scratch;
  const dpBuf = sBuf + (<usize>(BQ * CH) << 2);
  const gqBuf = dpBuf + (<usize>(BQ * CH) << 2);
  const lseBuf = gqBuf + <usize>BQ * ldr;
  const dBuf = lseBuf + (<usize>BQ << 2);
  const lse = argPtr(p, A_LSE) + (row0 << 2);
  const drow = argPtr(p, A_DROW) + (row0 << 2);
  for (let i = 0; i < nq; i++) {
    const dr = rowDot(g0 + <usize>i * ldr, o0 + <usize>i * ldr, d);
    store<f32>(drow + (<usize>i << 2), dr);
    store<f32>(dBuf + (<usize>i << 2), dr);
    store<f32>(lseBuf + (<usize>i << 2), load<f32>(lse + (<usize>i << 2)));
  }
  zeroFloats(gqBuf, nq * d);
  for (let j0 = ks; j0 < hiLast; j0 += CH) {
    const nb = min(CH, hiLast - j0);
    dotRows(q0, ldr, nq, kb + <usize>j0 * ldr, ldr, nb, d, sBuf, <usize>CH << 2);
    dotRows(g0, ldr, nq, vb + <usize>j0 * ldr, ldr, nb, d, dpBuf, <usize>CH << 2);
    for (let i = 0; i < nq; i++) {
      const valid = min(nb, keyEnd(causal, tk, qOffset + i0 + i) - j0);
      dsRow(sBuf + (<usize>(i * CH) << 2), dpBuf + (<usize>(i * CH) << 2), nb, valid, scale,
        load<f32>(lseBuf + (<usize>i << 2)), load<f32>(dBuf + (<usize>i << 2)));
    }
    accumRows(sBuf, nq, kb + <usize>j0 * ldr, ldr, nb, d, gqBuf, ldr);
  }
  copyFloats(argPtr(p, A_GQ) + row0 * ldr, gqBuf, nq * d);
}

export function attention_bwd_dq(p: usize, scratch: usize, s: i32, e: i32): void {
  const heads = arg(p, A_HEADS), tq = arg(p, A_TQ);
  const nqb = (tq + BQ - 1) / BQ;
  for (let w = s; w < e; w++) {
    const bh = w / nqb;
    const qb = zigzag(w - bh * nqb, nqb);
    const i0 = qb * BQ;
    dqBlock(p, bh / heads, bh % heads, i0, min(BQ, tq - i0), scratch);
  }
}

/**
 * dkv pass, one key row against nq query columns, visible from column `first` on: S := p, dP := scale·p·(dP − D)
 * with lse and D per column; columns before `first` := 0.
 */
@inline function pdsRowT(srow: usize, dprow: usize, nq: i32, first: i32, scale: f32, lse: usize, dr: usize): void {
  const sv = f32x4.splat(scale);
  let c = 0;
  for (; c + 4 <= nq; c += 4) {
    const a = <usize>c << 2;
    const pv = expFastFlushV(f32x4.sub(f32x4.mul(v128.load(srow + a), sv), v128.load(lse + a)));
    v128.store(srow + a, pv);
    v128.store(dprow + a, f32x4.mul(f32x4.mul(pv, f32x4.sub(v128.load(dprow + a), v128.load(dr + a))), sv));
  }
  for (; c < nq; c++) {
    const a = <usize>c << 2;
    const pv = f32x4.extract_lane(expFastFlushV(f32x4.splat(load<f32>(srow + a) * scale - load<f32>(lse + a))), 0);
    store<f32>(srow + a, pv);
    store<f32>(dprow + a, pv * (load<f32>(dprow + a) - load<f32>(dr + a)) * scale);
  }
  if (first > 0) {
    const n = min(first, nq);
    zeroFloats(srow, n);
    zeroFloats(dprow, n);
  }
}

/** gk, gv of key rows [j0, j0 + nk) of kv head kvh. Scratch: Pᵀ, dSᵀ [BKV][CH]; GK, GV [BKV][D]. */
function dkvBlock(p: usize, b: i32, kvh: i32, j0: i32, nk: i32, scratch: usize): void {
  const heads = arg(p, A_HEADS), kvHeads = arg(p, A_KV_HEADS), tq = arg(p, A_TQ), tk = arg(p, A_TK);
  const d = arg(p, A_HEAD_DIM), causal = arg(p, A_CAUSAL), qOffset = arg(p, A_Q_OFFSET);
  const scale = argScale(p);
  const group = heads / kvHeads;
  const ldr = <usize>d << 2;
  const kvRow0 = <usize>((b * kvHeads + kvh) * tk + j0);
  const k0 = argPtr(p, A_K) + kvRow0 * ldr;
  const v0 = argPtr(p, A_V) + kvRow0 * ldr;
  const ks = keyStartOf(p, b);

  const sBuf = scratch;
  const dpBuf = sBuf + (<usize>(BKV * CH) << 2);
  const gkBuf = dpBuf + (<usize>(BKV * CH) << 2);
  const gvBuf = gkBuf + <usize>BKV * ldr;
  zeroFloats(gkBuf, nk * d);
  zeroFloats(gvBuf, nk * d);
  // queries before iStart see none of these keys (causal); keys before ks are seen by nobody
  const iStart = causal ? max(0, j0 - qOffset) : 0;
  if (j0 + nk > ks) {
    for (let h = kvh * group; h < (kvh + 1) * group; h++) {
      const row0 = <usize>((b * heads + h) * tq);
      const q = argPtr(p, A_Q) + row0 * ldr;
      const g = argPtr(p, A_GOUT) + row0 * ldr;
      const lse = argPtr(p, A_LSE) + (row0 << 2);
      const drow = argPtr(p, A_DROW) + (row0 << 2);
      for (let i0 = iStart; i0 < tq; i0 += CH) {
        const nq = min(CH, tq - i0);
        const qi = q + <usize>i0 * ldr;
        const gi = g + <usize>i0 * ldr;
        dotRows(k0, ldr, nk, qi, ldr, nq, d, sBuf, <usize>CH << 2);
        dotRows(v0, ldr, nk, gi, ldr, nq, d, dpBuf, <usize>CH << 2);
        for (let jj = 0; jj < nk; jj++) {
          const j = j0 + jj;
          const first = j < ks ? nq : causal ? max(0, j - qOffset - i0) : 0;
          pdsRowT(sBuf + (<usize>(jj * CH) << 2), dpBuf + (<usize>(jj * CH) << 2), nq, first, scale,
            lse + (<usize>i0 << 2), drow + (<usize>i0 << 2));
        }
        accumRows(sBuf, nk, gi, ldr, nq, d, gvBuf, ldr);
        accumRows(dpBuf, nk, qi, ldr, nq, d, gkBuf, ldr);
      }
    }
  }
  copyFloats(argPtr(p, A_GK) + kvRow0 * ldr, gkBuf, nk * d);
  copyFloats(argPtr(p, A_GV) + kvRow0 * ldr, gvBuf, nk * d);
}

export function attention_bwd_dkv(p: usize, scratch: usize, s: i32, e: i32): void {
  const kvHeads = arg(p, A_KV_HEADS), tk = arg(p, A_TK);
  const nkb = (tk + BKV - 1) / BKV;
  for (let w = s; w < e; w++) {
    const bk = w / nkb;
    const kb = zigzag(w - bk * nkb, nkb);
    const j0 = kb * BKV;
    dkvBlock(p, bk / kvHeads, bk % kvHeads, j0, min(BKV, tk - j0), scratch);
  }
}
