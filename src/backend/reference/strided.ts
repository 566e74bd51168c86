// The strided walk every reference elementwise kernel shares.
import { type View, sizeOf } from '../types.js';

/** Calls fn(outIndex, offsets...) for each element of `shape`, walking the views' strides. */
export function forEachStrided(shape: readonly number[], views: readonly View[], fn: (i: number, offs: number[]) => void): void {
  const n = sizeOf(shape);
  const rank = shape.length;
  const idx = new Array<number>(rank).fill(0);
  const offs = views.map((v) => v.offset);
  for (let i = 0; i < n; i++) {
    fn(i, offs);
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      for (let v = 0; v < views.length; v++) offs[v] += views[v].strides[d];
      if (idx[d] < shape[d]) break;
      for (let v = 0; v < views.length; v++) offs[v] -= views[v].strides[d] * shape[d];
      idx[d] = 0;
    }
  }
}
