// Embedding gather / scatter-add. ids are int32 and validated by the host.

/** out[r, :] = table[ids[r], :] for rows r in [start, end). */
export function gather(table: usize, ids: usize, out: usize, rowLen: i32, start: i32, end: i32): void {
  const bytes = <usize>rowLen << 2;
  for (let r = start; r < end; r++) {
    const id = load<i32>(ids + (<usize>r << 2));
    memory.copy(out + <usize>r * bytes, table + <usize>id * bytes, bytes);
  }
}

/** out[ids[r], c] += src[r, c] for all r < nIds and columns c in [start, end): threads split columns, never race. */
export function scatter_add(src: usize, ids: usize, out: usize, nIds: i32, rowLen: i32, start: i32, end: i32): void {
  const bytes = <usize>rowLen << 2;
  for (let r = 0; r < nIds; r++) {
    const id = load<i32>(ids + (<usize>r << 2));
    const sp = src + <usize>r * bytes;
    const op = out + <usize>id * bytes;
    let c = start;
    for (; c + 4 <= end; c += 4) {
      const o = op + (<usize>c << 2);
      v128.store(o, f32x4.add(v128.load(o), v128.load(sp + (<usize>c << 2))));
    }
    for (; c < end; c++) {
      const o = op + (<usize>c << 2);
      store<f32>(o, load<f32>(o) + load<f32>(sp + (<usize>c << 2)));
    }
  }
}
