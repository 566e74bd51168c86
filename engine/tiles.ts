// Register-blocked f32x4 tiles shared by the small-m matmul and the attention kernels. Both work on rows
// that are already contiguous in memory, so nothing is packed: dotRows computes A·Bᵀ from row pointers,
// accumRows adds P·B where P is a small row-major block with a fixed row stride of CH floats.

/** Row stride (floats) of the P operand of accumRows; the tiles read P rows at constant offsets. */
export const CH: i32 = 64;
export function tiles_ch(): i32 { return CH; }

/** Four accumulators → one vector of their four horizontal sums. */
@inline function sum4(a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  const t01l = i32x4.shuffle(a0, a1, 0, 4, 1, 5);
  const t23l = i32x4.shuffle(a2, a3, 0, 4, 1, 5);
  const t01h = i32x4.shuffle(a0, a1, 2, 6, 3, 7);
  const t23h = i32x4.shuffle(a2, a3, 2, 6, 3, 7);
  return f32x4.add(
    f32x4.add(i64x2.shuffle(t01l, t23l, 0, 2), i64x2.shuffle(t01l, t23l, 1, 3)),
    f32x4.add(i64x2.shuffle(t01h, t23h, 0, 2), i64x2.shuffle(t01h, t23h, 1, 3)));
}

/** Scalar dot over bytes [from, to) of two rows. */
@inline function dotTail(a: usize, b: usize, from: usize, to: usize): f32 {
  let r: f32 = 0;
  for (let d = from; d < to; d += 4) r += load<f32>(a + d) * load<f32>(b + d);
  return r;
}

/** Dots of one A row with four B rows (len floats); the sums as one vector. */
@inline function dot1x4(a0: usize, b0: usize, ldb: usize, len: i32): v128 {
  const b1 = b0 + ldb, b2 = b1 + ldb, b3 = b2 + ldb;
  let c0 = f32x4.splat(0), c1 = c0, c2 = c0, c3 = c0;
  const n4 = <usize>(len & ~3) << 2;
  const end = <usize>len << 2;
  for (let d: usize = 0; d < n4; d += 16) {
    const x = v128.load(a0 + d);
    c0 = f32x4.add(c0, f32x4.mul(x, v128.load(b0 + d)));
    c1 = f32x4.add(c1, f32x4.mul(x, v128.load(b1 + d)));
    c2 = f32x4.add(c2, f32x4.mul(x, v128.load(b2 + d)));
    c3 = f32x4.add(c3, f32x4.mul(x, v128.load(b3 + d)));
  }
  let r = sum4(c0, c1, c2, c3);
  if (n4 < end) {
    r = f32x4.add(r, f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(dotTail(a0, b0, n4, end)),
      1, dotTail(a0, b1, n4, end)), 2, dotTail(a0, b2, n4, end)), 3, dotTail(a0, b3, n4, end)));
  }
  return r;
}

/** Dots of two A rows with four B rows, stored as four sums per A row at s0 and s1. */
@inline function dot2x4(a0: usize, a1: usize, b0: usize, ldb: usize, len: i32, s0: usize, s1: usize): void {
  const b1 = b0 + ldb, b2 = b1 + ldb, b3 = b2 + ldb;
  let c00 = f32x4.splat(0), c01 = c00, c02 = c00, c03 = c00;
  let c10 = c00, c11 = c00, c12 = c00, c13 = c00;
  const n4 = <usize>(len & ~3) << 2;
  const end = <usize>len << 2;
  for (let d: usize = 0; d < n4; d += 16) {
    const x0 = v128.load(a0 + d);
    const x1 = v128.load(a1 + d);
    let y = v128.load(b0 + d);
    c00 = f32x4.add(c00, f32x4.mul(x0, y));
    c10 = f32x4.add(c10, f32x4.mul(x1, y));
    y = v128.load(b1 + d);
    c01 = f32x4.add(c01, f32x4.mul(x0, y));
    c11 = f32x4.add(c11, f32x4.mul(x1, y));
    y = v128.load(b2 + d);
    c02 = f32x4.add(c02, f32x4.mul(x0, y));
    c12 = f32x4.add(c12, f32x4.mul(x1, y));
    y = v128.load(b3 + d);
    c03 = f32x4.add(c03, f32x4.mul(x0, y));
    c13 = f32x4.add(c13, f32x4.mul(x1, y));
  }
  let r0 = sum4(c00, c01, c02, c03);
  let r1 = sum4(c10, c11, c12, c13);
  if (n4 < end) {
    r0 = f32x4.add(r0, f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(dotTail(a0, b0, n4, end)),
      1, dotTail(a0, b1, n4, end)), 2, dotTail(a0, b2, n4, end)), 3, dotTail(a0, b3, n4, end)));
    r1 = f32x4.add(r1, f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(dotTail(a1, b0, n4, end)),
      1, dotTail(a1, b1, n4, end)), 2, dotTail(a1, b2, n4, end)), 3, dotTail(a1, b3, n4, end)));
  }
  v128.store(s0, r0);
  v128.store(s1, r1);
}

/** Dot of two rows of len floats. */
@inline function dot1x1(a: usize, b: usize, len: i32): f32 {
  let c = f32x4.splat(0);
  const n4 = <usize>(len & ~3) << 2;
  for (let d: usize = 0; d < n4; d += 16) c = f32x4.add(c, f32x4.mul(v128.load(a + d), v128.load(b + d)));
  return (f32x4.extract_lane(c, 0) + f32x4.extract_lane(c, 1)) + (f32x4.extract_lane(c, 2) + f32x4.extract_lane(c, 3)) +
    dotTail(a, b, n4, <usize>len << 2);
}

/**
 * S[i][j] = Σ_{d<len} A[i][d]·B[j][d] for i < nA, j < nB. A row i at a + i·lda, B row j at b + j·ldb, S row i at
 * s + i·lds (all bytes). B rows outer, A row pairs inner: four B rows stay in L1 while every A row passes.
 */
export function dotRows(a: usize, lda: usize, nA: i32, b: usize, ldb: usize, nB: i32, len: i32, s: usize, lds: usize): void {
  let j = 0;
  for (; j + 4 <= nB; j += 4) {
    const bj = b + <usize>j * ldb;
    const sj = s + (<usize>j << 2);
    let i = 0;
    for (; i + 2 <= nA; i += 2) {
      const ai = a + <usize>i * lda;
      const si = sj + <usize>i * lds;
      dot2x4(ai, ai + lda, bj, ldb, len, si, si + lds);
    }
    if (i < nA) v128.store(sj + <usize>i * lds, dot1x4(a + <usize>i * lda, bj, ldb, len));
  }
  for (; j < nB; j++) {
    const bj = b + <usize>j * ldb;
    for (let i = 0; i < nA; i++) store<f32>(s + <usize>i * lds + (<usize>j << 2), dot1x1(a + <usize>i * lda, bj, len));
  }
}

// ---- accumulate tiles: O += P·B, P a small block with rows or columns CH floats apart ----
// One set of tiles serves both layouts of P: the layout is a type argument, so every P offset below is a
// compile-time constant (wasm load offsets must be immediates) and each instantiation compiles to the same
// code as a hand-written copy would.

/** P[i][j] at (i·CH + j) floats: accumRows. */
class RowMajorP {}
/** P[i][j] at (j·CH + i) floats (P given as Pᵀ): accumRowsT, which lets the attention backward use one dSᵀ block
 * both as dSᵀ (for gk) and as dS (for gq) without a transpose. */
class TransposedP {}

/** Byte distance from P[i][j] to P[i + 1][j]. */
@inline function nextRowOfP<Layout>(): u32 { return idof<Layout>() == idof<TransposedP>() ? 4 : CH << 2; }
/** Byte distance from P[i][j] to P[i][j + 1]. */
@inline function nextColOfP<Layout>(): u32 { return idof<Layout>() == idof<TransposedP>() ? CH << 2 : 4; }

/** O[0..4][0..8] += P[0..4][j]·B[j][0..8] over j < nB. */
@inline function acc4x8<Layout>(p: usize, b: usize, ldb: usize, nB: i32, o: usize, ldo: usize): void {
  const o1 = o + ldo, o2 = o1 + ldo, o3 = o2 + ldo;
  let c00 = v128.load(o), c01 = v128.load(o, 16);
  let c10 = v128.load(o1), c11 = v128.load(o1, 16);
  let c20 = v128.load(o2), c21 = v128.load(o2, 16);
  let c30 = v128.load(o3), c31 = v128.load(o3, 16);
  let pj = p, bj = b;
  for (let j = 0; j < nB; j++) {
    const y0 = v128.load(bj);
    const y1 = v128.load(bj, 16);
    let x = v128.load32_splat(pj);
    c00 = f32x4.add(c00, f32x4.mul(x, y0));
    c01 = f32x4.add(c01, f32x4.mul(x, y1));
    x = v128.load32_splat(pj, nextRowOfP<Layout>());
    c10 = f32x4.add(c10, f32x4.mul(x, y0));
    c11 = f32x4.add(c11, f32x4.mul(x, y1));
    x = v128.load32_splat(pj, 2 * nextRowOfP<Layout>());
    c20 = f32x4.add(c20, f32x4.mul(x, y0));
    c21 = f32x4.add(c21, f32x4.mul(x, y1));
    x = v128.load32_splat(pj, 3 * nextRowOfP<Layout>());
    c30 = f32x4.add(c30, f32x4.mul(x, y0));
    c31 = f32x4.add(c31, f32x4.mul(x, y1));
    pj += nextColOfP<Layout>();
    bj += ldb;
  }
  v128.store(o, c00); v128.store(o, c01, 16);
  v128.store(o1, c10); v128.store(o1, c11, 16);
  v128.store(o2, c20); v128.store(o2, c21, 16);
  v128.store(o3, c30); v128.store(o3, c31, 16);
}

/** O[0..4][0..4] += P[0..4][j]·B[j][0..4] over j < nB. */
@inline function acc4x4<Layout>(p: usize, b: usize, ldb: usize, nB: i32, o: usize, ldo: usize): void {
  const o1 = o + ldo, o2 = o1 + ldo, o3 = o2 + ldo;
  let c0 = v128.load(o), c1 = v128.load(o1), c2 = v128.load(o2), c3 = v128.load(o3);
  let pj = p, bj = b;
  for (let j = 0; j < nB; j++) {
    const y = v128.load(bj);
    c0 = f32x4.add(c0, f32x4.mul(v128.load32_splat(pj), y));
    c1 = f32x4.add(c1, f32x4.mul(v128.load32_splat(pj, nextRowOfP<Layout>()), y));
    c2 = f32x4.add(c2, f32x4.mul(v128.load32_splat(pj, 2 * nextRowOfP<Layout>()), y));
    c3 = f32x4.add(c3, f32x4.mul(v128.load32_splat(pj, 3 * nextRowOfP<Layout>()), y));
    pj += nextColOfP<Layout>();
    bj += ldb;
  }
  v128.store(o, c0); v128.store(o1, c1); v128.store(o2, c2); v128.store(o3, c3);
}

/** O[0][0..8] += P[0][j]·B[j][0..8] over j < nB; even and odd j accumulate apart (four add chains, not two). */
@inline function acc1x8<Layout>(p: usize, b: usize, ldb: usize, nB: i32, o: usize): void {
  let c0 = v128.load(o), c1 = v128.load(o, 16);
  let d0 = f32x4.splat(0), d1 = d0;
  let pj = p, bj = b;
  let j = 0;
  for (; j + 2 <= nB; j += 2) {
    const x = v128.load32_splat(pj);
    c0 = f32x4.add(c0, f32x4.mul(x, v128.load(bj)));
    c1 = f32x4.add(c1, f32x4.mul(x, v128.load(bj, 16)));
    const bk = bj + ldb;
    const y = v128.load32_splat(pj, nextColOfP<Layout>());
    d0 = f32x4.add(d0, f32x4.mul(y, v128.load(bk)));
    d1 = f32x4.add(d1, f32x4.mul(y, v128.load(bk, 16)));
    pj += 2 * nextColOfP<Layout>();
    bj = bk + ldb;
  }
  if (j < nB) {
    const x = v128.load32_splat(pj);
    c0 = f32x4.add(c0, f32x4.mul(x, v128.load(bj)));
    c1 = f32x4.add(c1, f32x4.mul(x, v128.load(bj, 16)));
  }
  v128.store(o, f32x4.add(c0, d0)); v128.store(o, f32x4.add(c1, d1), 16);
}

/** O[0][0..4] += P[0][j]·B[j][0..4] over j < nB. */
@inline function acc1x4<Layout>(p: usize, b: usize, ldb: usize, nB: i32, o: usize): void {
  let c = v128.load(o);
  let pj = p, bj = b;
  for (let j = 0; j < nB; j++) {
    c = f32x4.add(c, f32x4.mul(v128.load32_splat(pj), v128.load(bj)));
    pj += nextColOfP<Layout>();
    bj += ldb;
  }
  v128.store(o, c);
}

/** accumRows / accumRowsT for one layout of P. */
@inline function accumulate<Layout>(p: usize, nA: i32, b: usize, ldb: usize, nB: i32, len: i32, o: usize, ldo: usize): void {
  const rowP = <usize>nextRowOfP<Layout>();
  const colP = <usize>nextColOfP<Layout>();
  const nA4 = nA & ~3;
  let c = 0;
  for (; c + 8 <= len; c += 8) {
    const bc = b + (<usize>c << 2);
    const oc = o + (<usize>c << 2);
    for (let i = 0; i < nA4; i += 4) acc4x8<Layout>(p + <usize>i * rowP, bc, ldb, nB, oc + <usize>i * ldo, ldo);
  }
  const c8 = c;
  if (c + 4 <= len) {
    const bc = b + (<usize>c << 2);
    const oc = o + (<usize>c << 2);
    for (let i = 0; i < nA4; i += 4) acc4x4<Layout>(p + <usize>i * rowP, bc, ldb, nB, oc + <usize>i * ldo, ldo);
  }
  // leftover rows run row by row along the columns: a C tile stored and the next one loaded never sit
  // 4 KiB apart (with power-of-two widths, rows of C and B alias in the store buffer)
  for (let i = nA4; i < nA; i++) {
    const pi = p + <usize>i * rowP;
    const oi = o + <usize>i * ldo;
    let cc = 0;
    for (; cc < c8; cc += 8) acc1x8<Layout>(pi, b + (<usize>cc << 2), ldb, nB, oi + (<usize>cc << 2));
    if (cc + 4 <= len) acc1x4<Layout>(pi, b + (<usize>cc << 2), ldb, nB, oi + (<usize>cc << 2));
  }
  if (c + 4 <= len) c += 4;
  for (; c < len; c++) {
    for (let i = 0; i < nA; i++) {
      const pi = p + <usize>i * rowP;
      let r: f32 = 0;
      for (let j = 0; j < nB; j++) r += load<f32>(pi + <usize>j * colP) * load<f32>(b + <usize>j * ldb + (<usize>c << 2));
      const oi = o + <usize>i * ldo + (<usize>c << 2);
      store<f32>(oi, load<f32>(oi) + r);
    }
  }
}

/**
 * O[i][c] += Σ_{j<nB} P[i·CH + j]·B[j][c] for i < nA, c < len. P: row stride CH floats (nB ≤ CH); B row j at
 * b + j·ldb, O row i at o + i·ldo (bytes). Column blocks outer so a B block of nB × 8 stays in L1 across rows.
 */
export function accumRows(p: usize, nA: i32, b: usize, ldb: usize, nB: i32, len: i32, o: usize, ldo: usize): void {
  accumulate<RowMajorP>(p, nA, b, ldb, nB, len, o, ldo);
}

/**
 * O[i][c] += Σ_{j<nB} Pᵀ[j·CH + i]·B[j][c] for i < nA (≤ CH), c < len: accumRows with P given transposed
 * (row j of Pᵀ holds column j of P, row stride CH floats). Same loop order as accumRows.
 */
export function accumRowsT(pt: usize, nA: i32, b: usize, ldb: usize, nB: i32, len: i32, o: usize, ldo: usize): void {
  accumulate<TransposedP>(pt, nA, b, ldb, nB, len, o, ldo);
}
