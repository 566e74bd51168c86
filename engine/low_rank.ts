// The low-rank half of a LoRA projection, added in place over rows of out [rows, cols]:
//   out[i, c] += scale · Σ_{j<rank} u[i, j] · L(c, j),
// L(c, j) = l[c·rank + j] (l [cols, rank]: a dot product over rank per output) or, with transL, l[j·cols + c]
// (l [rank, cols]: rank scaled rows of l added into the output row, four columns per SIMD step).
// Work range over rows; every row is owned by one thread, so results do not depend on the thread count.
import { hsum } from './common';

@inline function dot(a: usize, b: usize, n: i32): f32 {
  let acc = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= n; j += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(a + (<usize>j << 2)), v128.load(b + (<usize>j << 2))));
  let s = hsum(acc);
  for (; j < n; j++) s += load<f32>(a + (<usize>j << 2)) * load<f32>(b + (<usize>j << 2));
  return s;
}

export function low_rank_add(u: usize, l: usize, out: usize, cols: i32, rank: i32, transL: i32, scale: f32, start: i32, end: i32): void {
  const sv = f32x4.splat(scale);
  for (let i = start; i < end; i++) {
    const ur = u + (<usize>i * <usize>rank << 2);
    const or = out + (<usize>i * <usize>cols << 2);
    if (transL == 0) {
      for (let c = 0; c < cols; c++) {
        const o = or + (<usize>c << 2);
        store<f32>(o, load<f32>(o) + scale * dot(ur, l + (<usize>c * <usize>rank << 2), rank));
      }
      continue;
    }
    // transL: accumulate Σ_j u[i, j]·l[j, c…c+3] in registers, then one read-modify-write of out.
    let c = 0;
    for (; c + 4 <= cols; c += 4) {
      let acc = f32x4.splat(0);
      for (let j = 0; j < rank; j++) {
        const lj = l + ((<usize>j * <usize>cols + <usize>c) << 2);
        acc = f32x4.add(acc, f32x4.mul(f32x4.splat(load<f32>(ur + (<usize>j << 2))), v128.load(lj)));
      }
      const o = or + (<usize>c << 2);
      v128.store(o, f32x4.add(v128.load(o), f32x4.mul(sv, acc)));
    }
    for (; c < cols; c++) {
      let s: f32 = 0;
      for (let j = 0; j < rank; j++) s += load<f32>(ur + (<usize>j << 2)) * load<f32>(l + ((<usize>j * <usize>cols + <usize>c) << 2));
      const o = or + (<usize>c << 2);
      store<f32>(o, load<f32>(o) + scale * s);
    }
  }
}
