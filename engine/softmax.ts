// Row-wise softmax / log-softmax over x viewed as [rows, cols]; work range [start, end) over rows.
import { expV, hmax, hsum } from './common';

export function softmax(x: usize, out: usize, cols: i32, log: i32, start: i32, end: i32): void {
  for (let r = start; r < end; r++) {
    const xr = x + (<usize>r * <usize>cols << 2);
    const or = out + (<usize>r * <usize>cols << 2);
    // max
    let mx: f32 = -Infinity;
    let c = 0;
    if (cols >= 8) {
      let m0 = v128.load(xr), m1 = v128.load(xr, 16);
      c = 8;
      for (; c + 8 <= cols; c += 8) {
        const p = xr + (<usize>c << 2);
        m0 = f32x4.max(m0, v128.load(p));
        m1 = f32x4.max(m1, v128.load(p, 16));
      }
      mx = hmax(f32x4.max(m0, m1));
    }
    for (; c < cols; c++) mx = Mathf.max(mx, load<f32>(xr + (<usize>c << 2)));
    const mv = f32x4.splat(mx);
    // sum of exp(x - max); softmax stores the exponentials on the way
    let sv = f32x4.splat(0);
    let sum: f32 = 0;
    c = 0;
    if (log) {
      for (; c + 4 <= cols; c += 4) sv = f32x4.add(sv, expV(f32x4.sub(v128.load(xr + (<usize>c << 2)), mv)));
      for (; c < cols; c++) sum += Mathf.exp(load<f32>(xr + (<usize>c << 2)) - mx);
      sum += hsum(sv);
      const lse = mx + Mathf.log(sum);
      const lv = f32x4.splat(lse);
      c = 0;
      for (; c + 4 <= cols; c += 4) v128.store(or + (<usize>c << 2), f32x4.sub(v128.load(xr + (<usize>c << 2)), lv));
      for (; c < cols; c++) store<f32>(or + (<usize>c << 2), load<f32>(xr + (<usize>c << 2)) - lse);
    } else {
      for (; c + 4 <= cols; c += 4) {
        const ev = expV(f32x4.sub(v128.load(xr + (<usize>c << 2)), mv));
        v128.store(or + (<usize>c << 2), ev);
        sv = f32x4.add(sv, ev);
      }
      for (; c < cols; c++) {
        const ev = Mathf.exp(load<f32>(xr + (<usize>c << 2)) - mx);
        store<f32>(or + (<usize>c << 2), ev);
        sum += ev;
      }
      sum += hsum(sv);
      const inv: f32 = <f32>1 / sum;
      const iv = f32x4.splat(inv);
      c = 0;
      for (; c + 4 <= cols; c += 4) v128.store(or + (<usize>c << 2), f32x4.mul(v128.load(or + (<usize>c << 2)), iv));
      for (; c < cols; c++) store<f32>(or + (<usize>c << 2), load<f32>(or + (<usize>c << 2)) * inv);
    }
  }
}
