// Batched matmul: out[bt] (m x n) = opA(a[bt]) (m x k) * opB(b[bt]) (k x n), out contiguous.
// Goto/BLIS-style: B is packed into KC x NR panels, A into MR x KC panels (both in a per-thread scratch
// area), and an MR x NR register-blocked f32x4 micro-kernel accumulates over KC. Transposed operands are
// handled by the packing routines; nothing is materialised outside the scratch area.
// Small m (decode: [1..16, d] times a weight) streams B in place, never packed. With transB (weights stored
// [n, k]) threads split the output columns (mode 2): each reads its own rows of B. Without transB, threads
// split k instead (matmul_ksplit + matmul_ksplit_sum): each streams whole rows of B.
import { madd4, sumPartials, transpose4x4, zeroFloats } from './common';
import { dotRows } from './tiles';
import { widen1, widen4, widenLanes, widenRun } from './half';

export const MR: i32 = 4;
export const NR: i32 = 8;
const KC: i32 = 256;
const MC: i32 = 128;
const NC: i32 = 2048;

// LoRA epilogue (matmul_low_rank / matmul_half_low_rank): out += scale · u·lT over the block a kernel path has just
// computed, before it is stored, so out is written once. u [rows, rank], lT [rank, n] (row stride n, like out);
// out is one [m, n] product (batch 1). Set on entry of each export, per instance (= per thread): wasm globals are
// not shared between the workers. epiRank == 0: no epilogue (plain matmul).
let epiRank: i32 = 0;
let epiU: usize = 0;
let epiLT: usize = 0;
let epiOut: usize = 0;
let epiN: i32 = 0;
let epiScale: f32 = 0;

/**
 * The epilogue over rows [r0, r1), columns [c0, c1) of out: per element, s = Σ_j u[i, j]·lT[j, c] in order,
 * then out + scale·s — the same operations as engine/low_rank.ts low_rank_add, so fused and unfused agree bitwise.
 */
function lowRankBlock(r0: i32, r1: i32, c0: i32, c1: i32): void {
  const rank = epiRank;
  const sv = f32x4.splat(epiScale);
  const ldl = <usize>epiN << 2;
  for (let i = r0; i < r1; i++) {
    const ur = epiU + (<usize>i * <usize>rank << 2);
    const or = epiOut + <usize>i * ldl;
    let c = c0;
    for (; c + 4 <= c1; c += 4) {
      let a0 = f32x4.splat(0);
      const lc = epiLT + (<usize>c << 2);
      for (let j = 0; j < rank; j++) a0 = f32x4.add(a0, f32x4.mul(f32x4.splat(load<f32>(ur + (<usize>j << 2))), v128.load(lc + <usize>j * ldl)));
      const o = or + (<usize>c << 2);
      v128.store(o, f32x4.add(v128.load(o), f32x4.mul(sv, a0)));
    }
    for (; c < c1; c++) {
      let sum: f32 = 0;
      for (let j = 0; j < rank; j++) sum += load<f32>(ur + (<usize>j << 2)) * load<f32>(epiLT + (<usize>c << 2) + <usize>j * ldl);
      const o = or + (<usize>c << 2);
      store<f32>(o, load<f32>(o) + epiScale * sum);
    }
  }
}

/** Bytes of scratch one thread needs. */
export function matmul_scratch_bytes(): i32 { return (KC * NC + MC * KC + MR * NR + 64) * 4; }
export function matmul_mr(): i32 { return MR; }
export function matmul_nr(): i32 { return NR; }
/** Rows per batch up to which the host picks the skinny path (mode 2). */
export const SKINNY_M: i32 = 16;
/** Output columns per mode-2 work item. */
export const SKINNY_NB: i32 = 8;
export function matmul_skinny_m(): i32 { return SKINNY_M; }
export function matmul_skinny_nb(): i32 { return SKINNY_NB; }

// B(p, j) = transB ? b[j * k + p] : b[p * n + j]; packs rows [pc, pc+kc), cols [jc, jc+nc) into NR-wide panels.
function packB(b: usize, transB: i32, n: i32, k: i32, pc: i32, kc: i32, jc: i32, nc: i32, bp: usize): void {
  const zero = f32x4.splat(0);
  for (let jp = 0; jp < nc; jp += NR) {
    const nr = min(NR, nc - jp);
    let dst = bp + (<usize>jp * <usize>kc << 2);
    if (!transB) {
      let src = b + ((<usize>pc * <usize>n + <usize>(jc + jp)) << 2);
      const ld = <usize>n << 2;
      if (nr == NR) {
        for (let p = 0; p < kc; p++) {
          v128.store(dst, v128.load(src));
          v128.store(dst, v128.load(src, 16), 16);
          src += ld; dst += NR << 2;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          v128.store(dst, zero);
          v128.store(dst, zero, 16);
          for (let jj = 0; jj < nr; jj++) store<f32>(dst + (<usize>jj << 2), load<f32>(src + (<usize>jj << 2)));
          src += ld; dst += NR << 2;
        }
      }
    } else {
      if (nr < NR) {
        for (let p = 0; p < kc; p++) {
          v128.store(dst + (<usize>p * NR << 2), zero);
          v128.store(dst + (<usize>p * NR << 2), zero, 16);
        }
      }
      const ldk = <usize>k << 2;
      let j = 0;
      if (nr == NR) {
        // 4x4 transposes: columns jj..jj+3, rows p..p+3
        for (; j < NR; j += 4) {
          const s0 = b + ((<usize>(jc + jp + j) * <usize>k + <usize>pc) << 2);
          let p = 0;
          for (; p + 4 <= kc; p += 4) {
            // rows of the source are B(p..p+3, j+i); the panel wants B(p+q, j..j+3)
            transpose4x4(s0 + (<usize>p << 2), ldk, dst + ((<usize>p * NR + <usize>j) << 2), NR * 4);
          }
          for (; p < kc; p++) {
            for (let jj = 0; jj < 4; jj++) {
              store<f32>(dst + ((<usize>p * NR + <usize>(j + jj)) << 2), load<f32>(s0 + <usize>jj * ldk + (<usize>p << 2)));
            }
          }
        }
      } else {
        for (let jj = 0; jj < nr; jj++) {
          const src = b + ((<usize>(jc + jp + jj) * <usize>k + <usize>pc) << 2);
          for (let p = 0; p < kc; p++) store<f32>(dst + ((<usize>p * NR + <usize>jj) << 2), load<f32>(src + (<usize>p << 2)));
        }
      }
    }
  }
}

/**
 * packB for a 16-bit B (kind: HALF_BF16 / HALF_F16; b addresses 2-byte elements): the same KC x NR float32 panels,
 * each element widened as it is packed, so the micro-kernel and its float32 accumulation are unchanged.
 */
function packBHalf(b: usize, kind: i32, transB: i32, n: i32, k: i32, pc: i32, kc: i32, jc: i32, nc: i32, bp: usize): void {
  for (let jp = 0; jp < nc; jp += NR) {
    const nr = min(NR, nc - jp);
    let dst = bp + (<usize>jp * <usize>kc << 2);
    if (!transB) {
      // B(p, j) = b[p * n + j]: a panel row is NR consecutive elements of a row of B
      let src = b + ((<usize>pc * <usize>n + <usize>(jc + jp)) << 1);
      const ld = <usize>n << 1;
      if (nr == NR) {
        for (let p = 0; p < kc; p++) {
          const v = v128.load(src);
          v128.store(dst, widenLanes(i32x4.extend_low_i16x8_u(v), kind));
          v128.store(dst, widenLanes(i32x4.extend_high_i16x8_u(v), kind), 16);
          src += ld; dst += NR << 2;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          for (let jj = 0; jj < NR; jj++) store<f32>(dst + (<usize>jj << 2), jj < nr ? widen1(src + (<usize>jj << 1), kind) : 0);
          src += ld; dst += NR << 2;
        }
      }
    } else {
      // B(p, j) = b[j * k + p]: four elements along k from each of four rows of B, widened, transposed in registers
      const ldk = <usize>k << 1;
      if (nr == NR) {
        for (let j = 0; j < NR; j += 4) {
          const s0 = b + ((<usize>(jc + jp + j) * <usize>k + <usize>pc) << 1);
          let p = 0;
          for (; p + 4 <= kc; p += 4) {
            const at = s0 + (<usize>p << 1);
            const r0 = widen4(at, kind), r1 = widen4(at + ldk, kind), r2 = widen4(at + 2 * ldk, kind), r3 = widen4(at + 3 * ldk, kind);
            const t0 = i32x4.shuffle(r0, r1, 0, 4, 1, 5), t1 = i32x4.shuffle(r2, r3, 0, 4, 1, 5);
            const t2 = i32x4.shuffle(r0, r1, 2, 6, 3, 7), t3 = i32x4.shuffle(r2, r3, 2, 6, 3, 7);
            const d = dst + ((<usize>p * NR + <usize>j) << 2);
            v128.store(d, i64x2.shuffle(t0, t1, 0, 2));
            v128.store(d, i64x2.shuffle(t0, t1, 1, 3), NR * 4);
            v128.store(d, i64x2.shuffle(t2, t3, 0, 2), NR * 8);
            v128.store(d, i64x2.shuffle(t2, t3, 1, 3), NR * 12);
          }
          for (; p < kc; p++) {
            for (let jj = 0; jj < 4; jj++) {
              store<f32>(dst + ((<usize>p * NR + <usize>(j + jj)) << 2), widen1(s0 + <usize>jj * ldk + (<usize>p << 1), kind));
            }
          }
        }
      } else {
        for (let p = 0; p < kc; p++) {
          for (let jj = 0; jj < NR; jj++) {
            const src = b + ((<usize>(jc + jp + jj) * <usize>k + <usize>(pc + p)) << 1);
            store<f32>(dst + ((<usize>p * NR + <usize>jj) << 2), jj < nr ? widen1(src, kind) : 0);
          }
        }
      }
    }
  }
}

// A(i, p) = transA ? a[p * m + i] : a[i * k + p]; packs rows [ic, ic+mc), cols [pc, pc+kc) into MR-tall panels.
function packA(a: usize, transA: i32, m: i32, k: i32, ic: i32, mc: i32, pc: i32, kc: i32, ap: usize): void {
  for (let ip = 0; ip < mc; ip += MR) {
    const mr = min(MR, mc - ip);
    const dst = ap + (<usize>ip * <usize>kc << 2);
    if (transA) {
      const ld = <usize>m << 2;
      let src = a + ((<usize>pc * <usize>m + <usize>(ic + ip)) << 2);
      if (mr == MR) {
        for (let p = 0; p < kc; p++) { v128.store(dst + (<usize>p * MR << 2), v128.load(src)); src += ld; }
      } else {
        for (let p = 0; p < kc; p++) {
          for (let ii = 0; ii < MR; ii++) store<f32>(dst + ((<usize>p * MR + <usize>ii) << 2), ii < mr ? load<f32>(src + (<usize>ii << 2)) : 0);
          src += ld;
        }
      }
    } else {
      const ldk = <usize>k << 2;
      const s0 = a + ((<usize>(ic + ip) * <usize>k + <usize>pc) << 2);
      if (mr == MR) {
        let p = 0;
        for (; p + 4 <= kc; p += 4) {
          transpose4x4(s0 + (<usize>p << 2), ldk, dst + (<usize>p * MR << 2), MR * 4);
        }
        for (; p < kc; p++) {
          for (let ii = 0; ii < MR; ii++) store<f32>(dst + ((<usize>p * MR + <usize>ii) << 2), load<f32>(s0 + <usize>ii * ldk + (<usize>p << 2)));
        }
      } else {
        for (let ii = 0; ii < MR; ii++) {
          const src = s0 + <usize>ii * ldk;
          for (let p = 0; p < kc; p++) store<f32>(dst + ((<usize>p * MR + <usize>ii) << 2), ii < mr ? load<f32>(src + (<usize>p << 2)) : 0);
        }
      }
    }
  }
}

/**
 * MR x NR micro-kernel: C (row stride ldc bytes) (+)= Ap(MR x kc) * Bp(kc x NR); with epi (the last k block of a
 * matmul_low_rank call) the LoRA epilogue is added in registers before the store.
 */
@inline function micro(ap: usize, bp: usize, kc: i32, c: usize, ldc: usize, acc: bool, mr: i32, nr: i32, tmp: usize, epi: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  for (let p = 0; p < kc; p++) {
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    let av = v128.load32_splat(ap);
    c00 = madd4(av, b0, c00);
    c01 = madd4(av, b1, c01);
    av = v128.load32_splat(ap, 4);
    c10 = madd4(av, b0, c10);
    c11 = madd4(av, b1, c11);
    av = v128.load32_splat(ap, 8);
    c20 = madd4(av, b0, c20);
    c21 = madd4(av, b1, c21);
    av = v128.load32_splat(ap, 12);
    c30 = madd4(av, b0, c30);
    c31 = madd4(av, b1, c31);
    ap += MR << 2;
    bp += NR << 2;
  }
  if (mr == MR && nr == NR) {
    if (acc) {
      c00 = f32x4.add(c00, v128.load(c)); c01 = f32x4.add(c01, v128.load(c, 16));
      c10 = f32x4.add(c10, v128.load(c + ldc)); c11 = f32x4.add(c11, v128.load(c + ldc, 16));
      c20 = f32x4.add(c20, v128.load(c + 2 * ldc)); c21 = f32x4.add(c21, v128.load(c + 2 * ldc, 16));
      c30 = f32x4.add(c30, v128.load(c + 3 * ldc)); c31 = f32x4.add(c31, v128.load(c + 3 * ldc, 16));
    }
    if (epi) {
      // the tile's place in out gives its rows of u and columns of lT
      const at = <i32>((c - epiOut) >> 2);
      const row = at / epiN;
      const lc = epiLT + (<usize>(at - row * epiN) << 2);
      const ldl = <usize>epiN << 2;
      const u0 = epiU + (<usize>row * <usize>epiRank << 2);
      const ldu = <usize>epiRank << 2;
      let s00 = f32x4.splat(0), s01 = s00, s10 = s00, s11 = s00, s20 = s00, s21 = s00, s30 = s00, s31 = s00;
      for (let j = 0; j < epiRank; j++) {
        const lj = lc + <usize>j * ldl;
        const l0 = v128.load(lj), l1 = v128.load(lj, 16);
        const uj = u0 + (<usize>j << 2);
        let x = f32x4.splat(load<f32>(uj));
        s00 = f32x4.add(s00, f32x4.mul(x, l0)); s01 = f32x4.add(s01, f32x4.mul(x, l1));
        x = f32x4.splat(load<f32>(uj + ldu));
        s10 = f32x4.add(s10, f32x4.mul(x, l0)); s11 = f32x4.add(s11, f32x4.mul(x, l1));
        x = f32x4.splat(load<f32>(uj + 2 * ldu));
        s20 = f32x4.add(s20, f32x4.mul(x, l0)); s21 = f32x4.add(s21, f32x4.mul(x, l1));
        x = f32x4.splat(load<f32>(uj + 3 * ldu));
        s30 = f32x4.add(s30, f32x4.mul(x, l0)); s31 = f32x4.add(s31, f32x4.mul(x, l1));
      }
      const sv = f32x4.splat(epiScale);
      c00 = f32x4.add(c00, f32x4.mul(sv, s00)); c01 = f32x4.add(c01, f32x4.mul(sv, s01));
      c10 = f32x4.add(c10, f32x4.mul(sv, s10)); c11 = f32x4.add(c11, f32x4.mul(sv, s11));
      c20 = f32x4.add(c20, f32x4.mul(sv, s20)); c21 = f32x4.add(c21, f32x4.mul(sv, s21));
      c30 = f32x4.add(c30, f32x4.mul(sv, s30)); c31 = f32x4.add(c31, f32x4.mul(sv, s31));
    }
    v128.store(c, c00); v128.store(c, c01, 16);
    v128.store(c + ldc, c10); v128.store(c + ldc, c11, 16);
    v128.store(c + 2 * ldc, c20); v128.store(c + 2 * ldc, c21, 16);
    v128.store(c + 3 * ldc, c30); v128.store(c + 3 * ldc, c31, 16);
  } else {
    v128.store(tmp, c00); v128.store(tmp, c01, 16);
    v128.store(tmp, c10, 32); v128.store(tmp, c11, 48);
    v128.store(tmp, c20, 64); v128.store(tmp, c21, 80);
    v128.store(tmp, c30, 96); v128.store(tmp, c31, 112);
    for (let i = 0; i < mr; i++) {
      const cr = c + <usize>i * ldc;
      const tr = tmp + (<usize>(i * NR) << 2);
      for (let j = 0; j < nr; j++) {
        const v = load<f32>(tr + (<usize>j << 2));
        store<f32>(cr + (<usize>j << 2), acc ? load<f32>(cr + (<usize>j << 2)) + v : v);
      }
    }
    if (epi) {
      // an edge tile: the epilogue over the stored mr x nr block (still in L1)
      const at = <i32>((c - epiOut) >> 2);
      const row = at / epiN;
      const col = at - row * epiN;
      lowRankBlock(row, row + mr, col, col + nr);
    }
  }
}

/**
 * Single-row product (m == 1, decode-style GEMV): c[j] = sum_p A(0, p) * B(p, j) for j in [c0, c1), no packing.
 * a: the row's first element; as: bytes between consecutive p of A.
 */
function gemv(a: usize, as: usize, b: usize, transB: i32, n: i32, k: i32, c: usize, c0: i32, c1: i32, acc: bool = false): void {
  const z = f32x4.splat(0);
  if (!transB) {
    // Stream B row by row (contiguous, TLB friendly) into the output slice, four rows of B at a time.
    const ldb = <usize>n << 2;
    const cc = c + (<usize>c0 << 2);
    const w = c1 - c0;
    if (!acc) zeroFloats(cc, w);
    let p = 0;
    for (; p < k; p += 4) {
      const rows = min(4, k - p);
      const r0 = b + <usize>p * ldb + (<usize>c0 << 2);
      const a0 = load<f32>(a + <usize>p * as);
      const a1: f32 = rows > 1 ? load<f32>(a + <usize>(p + 1) * as) : 0;
      const a2: f32 = rows > 2 ? load<f32>(a + <usize>(p + 2) * as) : 0;
      const a3: f32 = rows > 3 ? load<f32>(a + <usize>(p + 3) * as) : 0;
      const r1 = rows > 1 ? r0 + ldb : r0;
      const r2 = rows > 2 ? r0 + 2 * ldb : r0;
      const r3 = rows > 3 ? r0 + 3 * ldb : r0;
      const v0 = f32x4.splat(a0), v1 = f32x4.splat(a1), v2 = f32x4.splat(a2), v3 = f32x4.splat(a3);
      let j = 0;
      for (; j + 8 <= w; j += 8) {
        const off = <usize>j << 2;
        let x = v128.load(cc + off);
        let y = v128.load(cc + off, 16);
        x = f32x4.add(x, f32x4.add(f32x4.add(f32x4.mul(v0, v128.load(r0 + off)), f32x4.mul(v1, v128.load(r1 + off))),
          f32x4.add(f32x4.mul(v2, v128.load(r2 + off)), f32x4.mul(v3, v128.load(r3 + off)))));
        y = f32x4.add(y, f32x4.add(f32x4.add(f32x4.mul(v0, v128.load(r0 + off, 16)), f32x4.mul(v1, v128.load(r1 + off, 16))),
          f32x4.add(f32x4.mul(v2, v128.load(r2 + off, 16)), f32x4.mul(v3, v128.load(r3 + off, 16)))));
        v128.store(cc + off, x);
        v128.store(cc + off, y, 16);
      }
      for (; j < w; j++) {
        const off = <usize>j << 2;
        store<f32>(cc + off, load<f32>(cc + off) + ((a0 * load<f32>(r0 + off) + a1 * load<f32>(r1 + off)) +
          (a2 * load<f32>(r2 + off) + a3 * load<f32>(r3 + off))));
      }
    }
    return;
  }
  // B stored [n, k]: dot products of the A row with rows of B; A must be contiguous here.
  const ldk = <usize>k << 2;
  let j = c0;
  for (; j + 4 <= c1; j += 4) {
    const b0 = b + <usize>j * ldk;
    let acc0 = z, acc1 = z, acc2 = z, acc3 = z;
    let p = 0;
    for (; p + 4 <= k; p += 4) {
      const off = <usize>p << 2;
      const av = v128.load(a + off);
      acc0 = f32x4.add(acc0, f32x4.mul(av, v128.load(b0 + off)));
      acc1 = f32x4.add(acc1, f32x4.mul(av, v128.load(b0 + ldk + off)));
      acc2 = f32x4.add(acc2, f32x4.mul(av, v128.load(b0 + 2 * ldk + off)));
      acc3 = f32x4.add(acc3, f32x4.mul(av, v128.load(b0 + 3 * ldk + off)));
    }
    // transpose-add the four accumulators into one vector of four sums
    const t01l = i32x4.shuffle(acc0, acc1, 0, 4, 1, 5);
    const t23l = i32x4.shuffle(acc2, acc3, 0, 4, 1, 5);
    const t01h = i32x4.shuffle(acc0, acc1, 2, 6, 3, 7);
    const t23h = i32x4.shuffle(acc2, acc3, 2, 6, 3, 7);
    let sum = f32x4.add(
      f32x4.add(i64x2.shuffle(t01l, t23l, 0, 2), i64x2.shuffle(t01l, t23l, 1, 3)),
      f32x4.add(i64x2.shuffle(t01h, t23h, 0, 2), i64x2.shuffle(t01h, t23h, 1, 3)));
    if (p < k) {
      let r0: f32 = 0, r1: f32 = 0, r2: f32 = 0, r3: f32 = 0;
      for (; p < k; p++) {
        const off = <usize>p << 2;
        const av = load<f32>(a + off);
        r0 += av * load<f32>(b0 + off);
        r1 += av * load<f32>(b0 + ldk + off);
        r2 += av * load<f32>(b0 + 2 * ldk + off);
        r3 += av * load<f32>(b0 + 3 * ldk + off);
      }
      sum = f32x4.add(sum, f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(r0), 1, r1), 2, r2), 3, r3));
    }
    v128.store(c + (<usize>j << 2), sum);
  }
  for (; j < c1; j++) {
    const b0 = b + <usize>j * ldk;
    let acc = z;
    let p = 0;
    for (; p + 4 <= k; p += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(a + (<usize>p << 2)), v128.load(b0 + (<usize>p << 2))));
    let r: f32 = 0;
    for (; p < k; p++) r += load<f32>(a + (<usize>p << 2)) * load<f32>(b0 + (<usize>p << 2));
    store<f32>(c + (<usize>j << 2), (f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1)) + (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3)) + r);
  }
}

/**
 * Two-row product without transB: rows i0 and i0 + 1 of C (c0r, c1r, columns [c0, c1)) = A rows (a0, a1; as bytes
 * between consecutive p) times B [k, n]. Like gemv, B is streamed row by row, four rows at a time, so its rows
 * never compete for one L1 set (unpacked tiles of power-of-two-wide B rows do) and no packing is needed.
 */
function gemvPair(a0: usize, a1: usize, as: usize, b: usize, n: i32, k: i32, c0r: usize, c1r: usize, c0: i32, c1: i32, acc: bool = false): void {
  const ldb = <usize>n << 2;
  const w = c1 - c0;
  const o0 = c0r + (<usize>c0 << 2), o1 = c1r + (<usize>c0 << 2);
  if (!acc) {
    zeroFloats(o0, w);
    zeroFloats(o1, w);
  }
  for (let p = 0; p < k; p += 4) {
    const rows = min(4, k - p);
    const r0 = b + <usize>p * ldb + (<usize>c0 << 2);
    const r1 = rows > 1 ? r0 + ldb : r0;
    const r2 = rows > 2 ? r0 + 2 * ldb : r0;
    const r3 = rows > 3 ? r0 + 3 * ldb : r0;
    const pa = <usize>p * as;
    const x0 = load<f32>(a0 + pa), y0 = load<f32>(a1 + pa);
    const x1: f32 = rows > 1 ? load<f32>(a0 + pa + as) : 0, y1: f32 = rows > 1 ? load<f32>(a1 + pa + as) : 0;
    const x2: f32 = rows > 2 ? load<f32>(a0 + pa + 2 * as) : 0, y2: f32 = rows > 2 ? load<f32>(a1 + pa + 2 * as) : 0;
    const x3: f32 = rows > 3 ? load<f32>(a0 + pa + 3 * as) : 0, y3: f32 = rows > 3 ? load<f32>(a1 + pa + 3 * as) : 0;
    const u0 = f32x4.splat(x0), u1 = f32x4.splat(x1), u2 = f32x4.splat(x2), u3 = f32x4.splat(x3);
    const v0 = f32x4.splat(y0), v1 = f32x4.splat(y1), v2 = f32x4.splat(y2), v3 = f32x4.splat(y3);
    let j = 0;
    for (; j + 4 <= w; j += 4) {
      const off = <usize>j << 2;
      const b0 = v128.load(r0 + off), b1 = v128.load(r1 + off), b2 = v128.load(r2 + off), b3 = v128.load(r3 + off);
      v128.store(o0 + off, f32x4.add(v128.load(o0 + off), f32x4.add(
        f32x4.add(f32x4.mul(u0, b0), f32x4.mul(u1, b1)), f32x4.add(f32x4.mul(u2, b2), f32x4.mul(u3, b3)))));
      v128.store(o1 + off, f32x4.add(v128.load(o1 + off), f32x4.add(
        f32x4.add(f32x4.mul(v0, b0), f32x4.mul(v1, b1)), f32x4.add(f32x4.mul(v2, b2), f32x4.mul(v3, b3)))));
    }
    for (; j < w; j++) {
      const off = <usize>j << 2;
      const b0 = load<f32>(r0 + off), b1 = load<f32>(r1 + off), b2 = load<f32>(r2 + off), b3 = load<f32>(r3 + off);
      store<f32>(o0 + off, load<f32>(o0 + off) + ((x0 * b0 + x1 * b1) + (x2 * b2 + x3 * b3)));
      store<f32>(o1 + off, load<f32>(o1 + off) + ((y0 * b0 + y1 * b1) + (y2 * b2 + y3 * b3)));
    }
  }
}

/**
 * Mode 3 (grid): one product (batch 1) cut into gridRows × gridCols tiles, tile t = row block t / gridCols, column
 * block t % gridCols; rows split at multiples of MR, columns at multiples of NR (as ThreadPool.split cuts). Each
 * tile packs only its own columns of B and its own rows of A, so the host picks the grid that packs least.
 */
function gridTiles(a: usize, b: usize, out: usize, m: i32, n: i32, k: i32, transA: i32, transB: i32, gridRows: i32, gridCols: i32,
  scratch: usize, start: i32, end: i32, half: i32): void {
  for (let t = start; t < end; t++) {
    const rb = t / gridCols;
    const cb = t - rb * gridCols;
    const r0 = gridCut(m, gridRows, rb, MR), r1 = gridCut(m, gridRows, rb + 1, MR);
    const c0 = gridCut(n, gridCols, cb, NR), c1 = gridCut(n, gridCols, cb + 1, NR);
    if (r0 < r1 && c0 < c1) gebp(a, b, out, m, n, k, transA, transB, r0, r1, c0, c1, scratch, half);
  }
}

/** Boundary q of `parts` near-equal slices of [0, total), rounded to a multiple of align (ThreadPool.split's cut). */
@inline function gridCut(total: i32, parts: i32, q: i32, align: i32): i32 {
  if (q >= parts) return total;
  if (q <= 0) return 0;
  const unit = parts * align;
  return min(total, (total * q + (unit >> 1)) / unit * align);
}

/** half: 0 for a float32 B, else the 16-bit kind of B (packBHalf widens it; the unpacked m == 1 path is float32 only). */
function gebp(a: usize, b: usize, c: usize, m: i32, n: i32, k: i32, transA: i32, transB: i32,
  r0: i32, r1: i32, c0: i32, c1: i32, scratch: usize, half: i32 = 0): void {
  const ldc = <usize>n << 2;
  if (k == 0) {
    for (let i = r0; i < r1; i++) zeroFloats(c + <usize>i * ldc + (<usize>c0 << 2), c1 - c0);
    if (epiRank > 0) lowRankBlock(r0, r1, c0, c1);
    return;
  }
  if (m == 1 && !half) {
    // A(0, p) = a[p] whether or not A is transposed (m == 1)
    gemv(a, 4, b, transB, n, k, c, c0, c1);
    if (epiRank > 0) lowRankBlock(0, 1, c0, c1);
    return;
  }
  const bp = scratch;
  const ap = scratch + (<usize>KC * <usize>NC << 2);
  const tmp = ap + (<usize>MC * <usize>KC << 2);
  for (let jc = c0; jc < c1; jc += NC) {
    const nc = min(NC, c1 - jc);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = min(KC, k - pc);
      const epi = epiRank > 0 && pc + kc == k;
      if (half) packBHalf(b, half, transB, n, k, pc, kc, jc, nc, bp);
      else packB(b, transB, n, k, pc, kc, jc, nc, bp);
      for (let ic = r0; ic < r1; ic += MC) {
        const mc = min(MC, r1 - ic);
        packA(a, transA, m, k, ic, mc, pc, kc, ap);
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = min(NR, nc - jr);
          const bpp = bp + (<usize>jr * <usize>kc << 2);
          for (let ir = 0; ir < mc; ir += MR) {
            const mr = min(MR, mc - ir);
            micro(ap + (<usize>ir * <usize>kc << 2), bpp, kc, c + <usize>(ic + ir) * ldc + (<usize>(jc + jr) << 2), ldc,
              pc > 0, mr, nr, tmp, epi);
          }
        }
      }
    }
  }
}

/**
 * Skinny product for small m: columns [c0, c1) of out = opA(a) · opB(b), B read in place.
 * transB: dot products of A rows with B rows (A rows packed contiguous first when transA).
 * !transB (batched products; single ones go to matmul_ksplit): B is streamed row by row for each pair of A rows
 * (the host sends m ≥ 8 of these to the packed GEBP path instead).
 */
function skinny(a: usize, b: usize, c: usize, m: i32, n: i32, k: i32, transA: i32, transB: i32, c0: i32, c1: i32,
  scratch: usize, scratchBytes: usize): void {
  const ldc = <usize>n << 2;
  const w = c1 - c0;
  if (k == 0 || m == 1) {
    gebp(a, b, c, m, n, k, transA, transB, 0, m, c0, c1, scratch);
    return;
  }
  const ldk = <usize>k << 2;
  if (transB) {
    let ar = a;
    if (transA) {
      // A stored [k, m]: gather its rows (m·k floats); if they do not fit, the packed path takes over
      if (<usize>m * ldk > scratchBytes) {
        gebp(a, b, c, m, n, k, transA, transB, 0, m, c0, c1, scratch);
        return;
      }
      ar = scratch;
      for (let i = 0; i < m; i++) {
        const dst = ar + <usize>i * ldk;
        for (let p = 0; p < k; p++) store<f32>(dst + (<usize>p << 2), load<f32>(a + ((<usize>p * <usize>m + <usize>i) << 2)));
      }
    }
    dotRows(ar, ldk, m, b + <usize>c0 * ldk, ldk, w, k, c + (<usize>c0 << 2), ldc);
    if (epiRank > 0) lowRankBlock(0, m, c0, c1);
    return;
  }
  skinnyRows(a, transA ? 4 : <usize>k << 2, transA ? <usize>m << 2 : 4, m, k, b, n, c, c0, c1);
  if (epiRank > 0) lowRankBlock(0, m, c0, c1);
}

/** Bytes of B that skinnyRows streams past every pair of A rows before moving on: a block that stays in L2. */
const SKINNY_B_BLOCK: i32 = 256 << 10;

/**
 * C[0..m)[c0..c1) = A·B over k rows of B without transB, B streamed row by row: row pairs by gemvPair, an odd
 * last row by gemv. A(i, p) sits at a + i·rowStep + p·as (bytes). B is taken in blocks of rows (a multiple of 4,
 * about SKINNY_B_BLOCK bytes) that every row pair passes over while the block is in L2, instead of each pair
 * streaming all of B from memory; each output still sums its p in the same order and groups of four.
 */
function skinnyRows(a: usize, rowStep: usize, as: usize, m: i32, k: i32, b: usize, n: i32, c: usize, c0: i32, c1: i32): void {
  const ldc = <usize>n << 2;
  const kb = max(4, min(k + 3, SKINNY_B_BLOCK / (max(1, c1 - c0) << 2)) & ~3);
  for (let p0 = 0; p0 < k; p0 += kb) {
    const rows = min(kb, k - p0);
    const acc = p0 > 0;
    const ap = a + <usize>p0 * as;
    const bp = b + <usize>p0 * ldc;
    let i = 0;
    for (; i + 2 <= m; i += 2) {
      const ai = ap + <usize>i * rowStep;
      gemvPair(ai, ai + rowStep, as, bp, n, rows, c + <usize>i * ldc, c + <usize>(i + 1) * ldc, c0, c1, acc);
    }
    if (i < m) gemv(ap + <usize>i * rowStep, as, bp, 0, n, rows, c + <usize>i * ldc, c0, c1, acc);
  }
}

/**
 * Small-m product without transB, split over k: chunk q of kch rows of B writes the partial product
 * partials[q] = A[:, chunk] · B[chunk, :] over all n columns. Each thread streams whole, contiguous rows of B;
 * splitting the columns instead had both cores streaming interleaved halves of the same rows, which ran no
 * faster than one core. Work range [start, end) over chunks; matmul_ksplit_sum adds the partials in chunk order.
 */
export function matmul_ksplit(a: usize, b: usize, partials: usize, m: i32, n: i32, k: i32, transA: i32, kch: i32, start: i32, end: i32): void {
  const mn = <usize>m * <usize>n;
  for (let q = start; q < end; q++) {
    const p0 = q * kch;
    const rows = min(kch, k - p0);
    const aq = transA ? a + ((<usize>p0 * <usize>m) << 2) : a + (<usize>p0 << 2);
    skinnyRows(aq, transA ? 4 : <usize>k << 2, transA ? <usize>m << 2 : 4, m, rows, b + ((<usize>p0 * <usize>n) << 2), n,
      partials + ((<usize>q * mn) << 2), 0, n);
  }
}

/** out[i] = Σ_q partials[q][i] in chunk order (q = 0 first), for i in [start, end) of the m·n outputs. */
export function matmul_ksplit_sum(partials: usize, out: usize, chunks: i32, mn: i32, start: i32, end: i32): void {
  sumPartials(partials, <usize>mn << 2, chunks, out, start, end);
}

/**
 * mode 0: [start, end) ranges over the flattened batch * m output rows; mode 1: [start, end) ranges over the n output
 * columns (every batch and row); mode 2 (skinny, m ≤ SKINNY_M): [start, end) ranges over batch · ceil(n / SKINNY_NB)
 * column blocks, batch-major; mode 3 + 16 · gridRows + 4096 · gridCols (batch 1, gridRows and gridCols < 256): [start, end)
 * ranges over the gridRows · gridCols tiles of gridTiles. scratch: this thread's scratch area (matmul_scratch_bytes()).
 */
export function matmul(a: usize, b: usize, out: usize, batch: i32, m: i32, n: i32, k: i32, transA: i32, transB: i32,
  strideA: i32, strideB: i32, mode: i32, scratch: usize, start: i32, end: i32): void {
  epiRank = 0;
  matmulRange(a, b, out, batch, m, n, k, transA, transB, strideA, strideB, mode, scratch, start, end);
}

/** Sets the LoRA epilogue for this thread's part of one call: out (one [m, n] product) += scale · u·lT. */
function setLowRank(out: usize, n: i32, u: usize, lT: usize, rank: i32, scale: f32): void {
  epiRank = rank;
  epiU = u;
  epiLT = lT;
  epiOut = out;
  epiN = n;
  epiScale = scale;
}

/**
 * matmul of one product (batch 1, transA 0) with the LoRA epilogue: out = a·opB(b) + scale · u·lT, u [m, rank],
 * lT [rank, n]. Modes as matmul's; the host keeps the split-k path (small m without transB) unfused.
 */
export function matmul_low_rank(a: usize, b: usize, out: usize, m: i32, n: i32, k: i32, transB: i32, mode: i32, scratch: usize,
  u: usize, lT: usize, rank: i32, scale: f32, start: i32, end: i32): void {
  setLowRank(out, n, u, lT, rank, scale);
  matmulRange(a, b, out, 1, m, n, k, 0, transB, 0, 0, mode, scratch, start, end);
  epiRank = 0;
}

/** matmul_half with the LoRA epilogue (see matmul_low_rank); modeKind as matmul_half's. */
export function matmul_half_low_rank(a: usize, b: usize, out: usize, m: i32, n: i32, k: i32, transB: i32, modeKind: i32, scratch: usize,
  u: usize, lT: usize, rank: i32, scale: f32, start: i32, end: i32): void {
  setLowRank(out, n, u, lT, rank, scale);
  matmulHalfRange(a, b, out, 1, m, n, k, 0, transB, 0, 0, modeKind, scratch, start, end);
  epiRank = 0;
}

function matmulRange(a: usize, b: usize, out: usize, batch: i32, m: i32, n: i32, k: i32, transA: i32, transB: i32,
  strideA: i32, strideB: i32, mode: i32, scratch: usize, start: i32, end: i32): void {
  const mn = <usize>m * <usize>n;
  if (mode == 2) {
    const blocks = (n + SKINNY_NB - 1) / SKINNY_NB;
    let i = start;
    while (i < end) {
      const bt = i / blocks;
      const jb = i - bt * blocks;
      const jbEnd = min(blocks, jb + (end - i));
      skinny(a + (<usize>bt * <usize>strideA << 2), b + (<usize>bt * <usize>strideB << 2), out + (<usize>bt * mn << 2),
        m, n, k, transA, transB, jb * SKINNY_NB, min(n, jbEnd * SKINNY_NB), scratch, <usize>matmul_scratch_bytes());
      i += jbEnd - jb;
    }
    return;
  }
  if ((mode & 0xf) == 3) {
    gridTiles(a, b, out, m, n, k, transA, transB, (mode >> 4) & 0xff, mode >> 12, scratch, start, end, 0);
    return;
  }
  if (mode == 0) {
    if (start >= end) return;
    const bt0 = start / m;
    const bt1 = (end - 1) / m;
    for (let bt = bt0; bt <= bt1; bt++) {
      const r0 = max(start - bt * m, 0);
      const r1 = min(end - bt * m, m);
      gebp(a + (<usize>bt * <usize>strideA << 2), b + (<usize>bt * <usize>strideB << 2), out + (<usize>bt * mn << 2),
        m, n, k, transA, transB, r0, r1, 0, n, scratch);
    }
  } else {
    if (start >= end) return;
    for (let bt = 0; bt < batch; bt++) {
      gebp(a + (<usize>bt * <usize>strideA << 2), b + (<usize>bt * <usize>strideB << 2), out + (<usize>bt * mn << 2),
        m, n, k, transA, transB, 0, m, start, end, scratch);
    }
  }
}

/**
 * matmul with a 16-bit B (frozen weights). modeKind = kind + 256 · mode: kind HALF_BF16 or HALF_F16, mode 0 (work
 * over the batch · m output rows) or 1 (over the n output columns): the packed path, B widened to float32 while
 * it is packed; mode 3 (+ 16 · gridRows + 4096 · gridCols, batch 1): the packed path over the tiles of gridTiles; mode 2 (m ≤ SKINNY_M, transB, A not transposed, SKINNY_NB·k floats fit the scratch): column blocks
 * of SKINNY_NB rows of B widened into the scratch, then dotted with the A rows (decode reads 2 bytes a weight).
 * Packed into one argument so that scratch sits in the same slot as matmul's. strideB counts elements (2 bytes
 * each). A and the accumulation stay float32.
 */
export function matmul_half(a: usize, b: usize, out: usize, batch: i32, m: i32, n: i32, k: i32, transA: i32, transB: i32,
  strideA: i32, strideB: i32, modeKind: i32, scratch: usize, start: i32, end: i32): void {
  epiRank = 0;
  matmulHalfRange(a, b, out, batch, m, n, k, transA, transB, strideA, strideB, modeKind, scratch, start, end);
}

function matmulHalfRange(a: usize, b: usize, out: usize, batch: i32, m: i32, n: i32, k: i32, transA: i32, transB: i32,
  strideA: i32, strideB: i32, modeKind: i32, scratch: usize, start: i32, end: i32): void {
  if (start >= end) return;
  const mn = <usize>m * <usize>n;
  const kind = modeKind & 0xff;
  const mode = modeKind >> 8;
  if (mode == 2) {
    // skinny (decode): [start, end) over batch · ceil(n / SKINNY_NB) column blocks; transB, A not transposed
    const blocks = (n + SKINNY_NB - 1) / SKINNY_NB;
    const ldk = <usize>k << 2;
    for (let i = start; i < end; i++) {
      const bt = i / blocks;
      const j0 = (i - bt * blocks) * SKINNY_NB;
      const w = min(SKINNY_NB, n - j0);
      const bb = b + ((<usize>bt * <usize>strideB + <usize>j0 * <usize>k) << 1);
      // widen the block's w rows of B (contiguous: w·k elements) once, then dot every A row with them
      widenRun(bb, scratch, w * k, kind);
      dotRows(a + (<usize>bt * <usize>strideA << 2), ldk, m, scratch, ldk, w, k, out + (<usize>bt * mn << 2) + (<usize>j0 << 2), <usize>n << 2);
      if (epiRank > 0) lowRankBlock(0, m, j0, j0 + w);
    }
    return;
  }
  if ((mode & 0xf) == 3) {
    gridTiles(a, b, out, m, n, k, transA, transB, (mode >> 4) & 0xff, mode >> 12, scratch, start, end, kind);
    return;
  }
  if (mode == 0) {
    const bt0 = start / m;
    const bt1 = (end - 1) / m;
    for (let bt = bt0; bt <= bt1; bt++) {
      const r0 = max(start - bt * m, 0);
      const r1 = min(end - bt * m, m);
      gebp(a + (<usize>bt * <usize>strideA << 2), b + (<usize>bt * <usize>strideB << 1), out + (<usize>bt * mn << 2),
        m, n, k, transA, transB, r0, r1, 0, n, scratch, kind);
    }
  } else {
    for (let bt = 0; bt < batch; bt++) {
      gebp(a + (<usize>bt * <usize>strideA << 2), b + (<usize>bt * <usize>strideB << 1), out + (<usize>bt * mn << 2),
        m, n, k, transA, transB, 0, m, start, end, scratch, kind);
    }
  }
}
