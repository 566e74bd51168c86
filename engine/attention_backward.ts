// Flash-style attention backward in one pass per (batch, kv head): for each block of BKV key rows and every
// query head sharing the kv head, query rows are visited CH at a time and the block's probabilities are
// recomputed transposed (key rows × query columns) from the saved log-sum-exp:
//   Pᵀ = exp(scale·K·Qᵀ − lse), dSᵀ = scale·Pᵀ·(V·gOutᵀ − D) with D_i = gOut_i·out_i,
//   gv += Pᵀ·gOut, gk += dSᵀ·Q, gq += dS·K (dSᵀ read transposed, see tiles.ts accumRowsT).
// Each score block is computed once and feeds all three gradients (5 block products, where separate dq and
// dk/dv passes need 7). A work item owns every row it writes (gk, gv of its kv head, gq and D of the query
// heads sharing it) and adds gq's key-block terms in a fixed order, so any thread split gives bit-identical
// results. Requires kvStride == tk (checked by the host). Parameter block as in attention.ts; ARG_D_ROW holds D.
import { expFastFlushV, hsum, zeroFloats } from './common';
import { arg, argPtr, argScale, keyStartOf } from './attention';
import {
  ARG_CAUSAL, ARG_D_ROW, ARG_GK, ARG_GQ, ARG_GV, ARG_G_OUT, ARG_HEADS, ARG_HEAD_DIM, ARG_K, ARG_KV_HEADS, ARG_LSE,
  ARG_OUT, ARG_Q, ARG_Q_OFFSET, ARG_TK, ARG_TQ, ARG_V,
} from './ops.gen';
import { CH, accumRows, accumRowsT, dotRows } from './tiles';

/** Key rows per block of the backward. */
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

/**
 * One key row against nq query columns, visible from column `first` on: S := p, dP := scale·p·(dP − D) with
 * p = exp(scale·S − lse), lse and D per column; columns before `first` := 0.
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

/** gq of the query heads sharing kv head kvh of sequence b, gk and gv of that kv head. Scratch: Pᵀ, dSᵀ [BKV][CH]. */
function backwardItem(p: usize, b: i32, kvh: i32, scratch: usize): void {
  const heads = arg(p, ARG_HEADS), kvHeads = arg(p, ARG_KV_HEADS), tq = arg(p, ARG_TQ), tk = arg(p, ARG_TK);
  const d = arg(p, ARG_HEAD_DIM), causal = arg(p, ARG_CAUSAL), qOffset = arg(p, ARG_Q_OFFSET);
  const scale = argScale(p);
  const group = heads / kvHeads;
  const ldr = <usize>d << 2;
  const kvRow0 = <usize>((b * kvHeads + kvh) * tk);
  const kb = argPtr(p, ARG_K) + kvRow0 * ldr;
  const vb = argPtr(p, ARG_V) + kvRow0 * ldr;
  const gkb = argPtr(p, ARG_GK) + kvRow0 * ldr;
  const gvb = argPtr(p, ARG_GV) + kvRow0 * ldr;
  const headRow0 = <usize>((b * heads + kvh * group) * tq);
  const q = argPtr(p, ARG_Q) + headRow0 * ldr;
  const g = argPtr(p, ARG_G_OUT) + headRow0 * ldr;
  const o = argPtr(p, ARG_OUT) + headRow0 * ldr;
  const gq = argPtr(p, ARG_GQ) + headRow0 * ldr;
  const lse = argPtr(p, ARG_LSE) + (headRow0 << 2);
  const drow = argPtr(p, ARG_D_ROW) + (headRow0 << 2);
  const ks = keyStartOf(p, b);

  // the group's query rows are contiguous: group·tq rows from headRow0
  const nRows = group * tq;
  for (let i = 0; i < nRows; i++) store<f32>(drow + (<usize>i << 2), rowDot(g + <usize>i * ldr, o + <usize>i * ldr, d));
  zeroFloats(gq, nRows * d);
  zeroFloats(gkb, tk * d); // keys before ks are seen by nobody and stay 0
  zeroFloats(gvb, tk * d);

  const sBuf = scratch;
  const dpBuf = sBuf + (<usize>(BKV * CH) << 2);
  const ldp = <usize>CH << 2;
  for (let j0 = ks; j0 < tk; j0 += BKV) {
    const nk = min(BKV, tk - j0);
    const kj = kb + <usize>j0 * ldr, vj = vb + <usize>j0 * ldr;
    const gkj = gkb + <usize>j0 * ldr, gvj = gvb + <usize>j0 * ldr;
    // queries before iStart see none of these keys (causal)
    const iStart = causal ? max(0, j0 - qOffset) : 0;
    for (let hh = 0; hh < group; hh++) {
      const hr = <usize>(hh * tq);
      for (let i0 = iStart; i0 < tq; i0 += CH) {
        const nq = min(CH, tq - i0);
        const r = hr + <usize>i0;
        const qi = q + r * ldr, gi = g + r * ldr;
        dotRows(kj, ldr, nk, qi, ldr, nq, d, sBuf, ldp);
        dotRows(vj, ldr, nk, gi, ldr, nq, d, dpBuf, ldp);
        for (let jj = 0; jj < nk; jj++) {
          const first = causal ? max(0, j0 + jj - qOffset - i0) : 0;
          pdsRowT(sBuf + (<usize>(jj * CH) << 2), dpBuf + (<usize>(jj * CH) << 2), nq, first, scale, lse + (r << 2), drow + (r << 2));
        }
        accumRows(sBuf, nk, gi, ldr, nq, d, gvj, ldr);
        accumRows(dpBuf, nk, qi, ldr, nq, d, gkj, ldr);
        accumRowsT(dpBuf, nq, kj, ldr, nk, d, gq + r * ldr, ldr);
      }
    }
  }
}

/** Work range [start, end) over batch · kvHeads items. */
export function attention_bwd(p: usize, scratch: usize, start: i32, end: i32): void {
  const kvHeads = arg(p, ARG_KV_HEADS);
  for (let w = start; w < end; w++) backwardItem(p, w / kvHeads, w % kvHeads, scratch);
}
