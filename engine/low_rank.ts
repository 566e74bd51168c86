// The low-rank half of a LoRA projection, added in place over rows of out [rows, cols]:
//   out[i, c] += scale · Σ_{j<rank} u[i, j] · lT[j, c],   lT [rank, cols]
// (the host transposes an l stored [cols, rank] into lT first: rank·cols values, tiny). Each four-column group
// of a row sums rank scaled vectors of lT in registers, then reads and writes out once.
// Work range over rows; every row is owned by one thread, so results do not depend on the thread count.

export function low_rank_add(u: usize, lT: usize, out: usize, cols: i32, rank: i32, scale: f32, start: i32, end: i32): void {
  const sv = f32x4.splat(scale);
  for (let i = start; i < end; i++) {
    const ur = u + (<usize>i * <usize>rank << 2);
    const or = out + (<usize>i * <usize>cols << 2);
    let c = 0;
    for (; c + 8 <= cols; c += 8) {
      let a0 = f32x4.splat(0), a1 = a0;
      for (let j = 0; j < rank; j++) {
        const uj = f32x4.splat(load<f32>(ur + (<usize>j << 2)));
        const lj = lT + ((<usize>j * <usize>cols + <usize>c) << 2);
        a0 = f32x4.add(a0, f32x4.mul(uj, v128.load(lj)));
        a1 = f32x4.add(a1, f32x4.mul(uj, v128.load(lj, 16)));
      }
      const o = or + (<usize>c << 2);
      v128.store(o, f32x4.add(v128.load(o), f32x4.mul(sv, a0)));
      v128.store(o, f32x4.add(v128.load(o, 16), f32x4.mul(sv, a1)), 16);
    }
    for (; c < cols; c++) {
      let s: f32 = 0;
      for (let j = 0; j < rank; j++) s += load<f32>(ur + (<usize>j << 2)) * load<f32>(lT + ((<usize>j * <usize>cols + <usize>c) << 2));
      const o = or + (<usize>c << 2);
      store<f32>(o, load<f32>(o) + scale * s);
    }
  }
}
