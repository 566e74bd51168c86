// RMSNorm over rows of x [rows, cols] with a weight [cols]: forward and backward.
// The backward's weight gradient is a sum over rows: rows are cut into fixed chunks (chosen by the host from
// the shape alone), each chunk writes its own partial row, and a second pass adds the partials in chunk order,
// so the result does not depend on how many threads ran.
import { hsum, sumPartials, zeroFloats } from './common';

@inline function sumSquares(x: usize, n: i32): f32 {
  let a0 = f32x4.splat(0), a1 = a0;
  let c = 0;
  for (; c + 8 <= n; c += 8) {
    const v0 = v128.load(x + (<usize>c << 2));
    const v1 = v128.load(x + (<usize>c << 2), 16);
    a0 = f32x4.add(a0, f32x4.mul(v0, v0));
    a1 = f32x4.add(a1, f32x4.mul(v1, v1));
  }
  let r = hsum(f32x4.add(a0, a1));
  for (; c < n; c++) {
    const v = load<f32>(x + (<usize>c << 2));
    r += v * v;
  }
  return r;
}

/** out[r] = x[r]·rstd_r·weight, rstd_r = 1 / sqrt(mean(x[r]²) + eps). Work range over rows. */
export function rms_norm(x: usize, w: usize, out: usize, rstd: usize, cols: i32, eps: f32, start: i32, end: i32): void {
  for (let r = start; r < end; r++) {
    const off = <usize>r * <usize>cols << 2;
    const xr = x + off, or = out + off;
    const rs = <f32>(1 / Math.sqrt(<f64>sumSquares(xr, cols) / <f64>cols + <f64>eps));
    store<f32>(rstd + (<usize>r << 2), rs);
    const rv = f32x4.splat(rs);
    let c = 0;
    for (; c + 4 <= cols; c += 4) {
      const a = <usize>c << 2;
      v128.store(or + a, f32x4.mul(f32x4.mul(v128.load(xr + a), rv), v128.load(w + a)));
    }
    for (; c < cols; c++) {
      const a = <usize>c << 2;
      store<f32>(or + a, load<f32>(xr + a) * rs * load<f32>(w + a));
    }
  }
}

/**
 * Backward, pass 1: work range over row chunks of chunkRows rows. For each row: gx = rstd·w·g − x·rstd³·dot/cols
 * with dot = Σ g·w·x; chunk c's partial[c] = Σ_rows g·x·rstd.
 */
export function rms_norm_bwd_rows(x: usize, w: usize, rstd: usize, g: usize, gx: usize, partial: usize, rows: i32, cols: i32,
  chunkRows: i32, start: i32, end: i32): void {
  const rowBytes = <usize>cols << 2;
  for (let ch = start; ch < end; ch++) {
    const part = partial + <usize>ch * rowBytes;
    zeroFloats(part, cols);
    const r1 = min(rows, (ch + 1) * chunkRows);
    for (let r = ch * chunkRows; r < r1; r++) {
      const off = <usize>r * rowBytes;
      const xr = x + off, gr = g + off, or = gx + off;
      const rs = load<f32>(rstd + (<usize>r << 2));
      let dv = f32x4.splat(0);
      let c = 0;
      for (; c + 4 <= cols; c += 4) {
        const a = <usize>c << 2;
        dv = f32x4.add(dv, f32x4.mul(f32x4.mul(v128.load(gr + a), v128.load(w + a)), v128.load(xr + a)));
      }
      let dot = hsum(dv);
      for (; c < cols; c++) {
        const a = <usize>c << 2;
        dot += load<f32>(gr + a) * load<f32>(w + a) * load<f32>(xr + a);
      }
      const k = rs * rs * rs * dot / <f32>cols;
      const rv = f32x4.splat(rs), kv = f32x4.splat(k);
      c = 0;
      for (; c + 4 <= cols; c += 4) {
        const a = <usize>c << 2;
        const xv = v128.load(xr + a), gv = v128.load(gr + a);
        v128.store(or + a, f32x4.sub(f32x4.mul(f32x4.mul(rv, v128.load(w + a)), gv), f32x4.mul(xv, kv)));
        v128.store(part + a, f32x4.add(v128.load(part + a), f32x4.mul(f32x4.mul(gv, xv), rv)));
      }
      for (; c < cols; c++) {
        const a = <usize>c << 2;
        const xv = load<f32>(xr + a), gv = load<f32>(gr + a);
        store<f32>(or + a, rs * load<f32>(w + a) * gv - xv * k);
        store<f32>(part + a, load<f32>(part + a) + gv * xv * rs);
      }
    }
  }
}

/** Backward, pass 2: gWeight[c] = Σ_chunks partial[chunk][c] in chunk order; work range over columns. */
export function rms_norm_bwd_weight(partial: usize, gw: usize, chunks: i32, cols: i32, start: i32, end: i32): void {
  sumPartials(partial, <usize>cols << 2, chunks, gw, start, end);
}
