// Optimizer kernels: decoupled AdamW in place, and the sum of squares behind global gradient-norm clipping.
// sum_squares is deterministic for any thread count: fixed SQ_CHUNK-element chunks each write a float64
// partial, and sum_squares_finish adds the partials in chunk order on one thread.

/**
 * param = param·decay − stepSize·m / (sqrt(v)·rsqrtBc2 + eps) after m, v take g = grad·scale[0]; the host folds
 * decay = 1 − lr·wd, stepSize = lr / (1 − β1^t), rsqrtBc2 = 1 / sqrt(1 − β2^t). Work range [start, end) over elements.
 */
export function adamw(param: usize, grad: usize, m: usize, v: usize, scale: usize, beta1: f32, beta2: f32, eps: f32,
  decay: f32, stepSize: f32, rsqrtBc2: f32, start: i32, end: i32): void {
  const gs = load<f32>(scale);
  const b1 = f32x4.splat(beta1), c1 = f32x4.splat(<f32>1 - beta1);
  const b2 = f32x4.splat(beta2), c2 = f32x4.splat(<f32>1 - beta2);
  const gsv = f32x4.splat(gs), ev = f32x4.splat(eps), dv = f32x4.splat(decay), sv = f32x4.splat(stepSize);
  const rv = f32x4.splat(rsqrtBc2);
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const a = <usize>i << 2;
    const g = f32x4.mul(v128.load(grad + a), gsv);
    const mv = f32x4.add(f32x4.mul(b1, v128.load(m + a)), f32x4.mul(c1, g));
    const vv = f32x4.add(f32x4.mul(b2, v128.load(v + a)), f32x4.mul(c2, f32x4.mul(g, g)));
    v128.store(m + a, mv);
    v128.store(v + a, vv);
    const den = f32x4.add(f32x4.mul(f32x4.sqrt(vv), rv), ev);
    v128.store(param + a, f32x4.sub(f32x4.mul(v128.load(param + a), dv), f32x4.div(f32x4.mul(sv, mv), den)));
  }
  for (; i < end; i++) {
    const a = <usize>i << 2;
    const g = load<f32>(grad + a) * gs;
    const mv = beta1 * load<f32>(m + a) + (<f32>1 - beta1) * g;
    const vv = beta2 * load<f32>(v + a) + (<f32>1 - beta2) * (g * g);
    store<f32>(m + a, mv);
    store<f32>(v + a, vv);
    store<f32>(param + a, load<f32>(param + a) * decay - (stepSize * mv) / (Mathf.sqrt(vv) * rsqrtBc2 + eps));
  }
}

/** Elements per sum_squares partial (the host reads it through sum_squares_chunk). */
export const SQ_CHUNK: i32 = 16384;
export function sum_squares_chunk(): i32 { return SQ_CHUNK; }

/** partials[c] (f64) = Σ x[i]² over chunk c of n elements; work range [start, end) over chunks. */
export function sum_squares_partial(x: usize, partials: usize, n: i32, start: i32, end: i32): void {
  for (let ch = start; ch < end; ch++) {
    const i0 = ch * SQ_CHUNK;
    const i1 = min(n, i0 + SQ_CHUNK);
    let total: f64 = 0;
    // f32 lanes over 256-element blocks, each block'start sum carried in f64
    for (let b0 = i0; b0 < i1; b0 += 256) {
      const b1 = min(i1, b0 + 256);
      let a0 = f32x4.splat(0), a1 = a0;
      let i = b0;
      for (; i + 8 <= b1; i += 8) {
        const v0 = v128.load(x + (<usize>i << 2));
        const v1 = v128.load(x + (<usize>i << 2), 16);
        a0 = f32x4.add(a0, f32x4.mul(v0, v0));
        a1 = f32x4.add(a1, f32x4.mul(v1, v1));
      }
      const a = f32x4.add(a0, a1);
      let blk = (<f64>f32x4.extract_lane(a, 0) + <f64>f32x4.extract_lane(a, 1)) +
        (<f64>f32x4.extract_lane(a, 2) + <f64>f32x4.extract_lane(a, 3));
      for (; i < b1; i++) {
        const v = <f64>load<f32>(x + (<usize>i << 2));
        blk += v * v;
      }
      total += blk;
    }
    store<f64>(partials + (<usize>ch << 3), total);
  }
}

/** out[0] = (accumulate ? out[0] : 0) + Σ partials, in chunk order. */
export function sum_squares_finish(partials: usize, chunks: i32, out: usize, accumulate: i32): void {
  let total: f64 = accumulate ? <f64>load<f32>(out) : 0;
  let sum: f64 = 0;
  for (let c = 0; c < chunks; c++) sum += load<f64>(partials + (<usize>c << 3));
  store<f32>(out, <f32>(total + sum));
}
