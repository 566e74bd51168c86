// Differentiable fused transformer ops (one backend kernel forward, one backward): attention, token
// log-probs with entropy, RMSNorm, RoPE, SwiGLU. Contracts: ../backend/model_kernels.ts.
import { type AttentionArgs, contiguousStrides, contiguousView } from '../backend/backend.js';
import { getBackend, tidy } from './engine.js';
import { checkInputs, empty, record } from './record.js';
import { shapeStr } from './shape.js';
import type { Tensor } from './tensor.js';
import { reshape, slice } from './layout.js';
import { meanTokenNll } from './linear_logprob_ops.js';

function fail(op: string, message: string): never {
  throw new RangeError(`${op}: ${message}`);
}

export interface AttentionOptions {
  causal?: boolean;
  /** Score scale (default 1/sqrt(headDim)). */
  scale?: number;
  /** Absolute position of query row 0 among the keys (prefill after a cached prefix, decode). */
  qOffset?: number;
  /** Keys in use (default: all rows of k); fewer when k and v are a preallocated KV cache. */
  kvLength?: number;
  /** int32 [batch]: first visible key per sequence (left padding). */
  keyStart?: Tensor | null;
}

/**
 * Flash-style scaled dot-product attention with grouped-query heads. q [B, H, Tq, D]; k, v [B, Hkv, S, D]
 * (S = rows allocated; the first kvLength are used) → [B, H, Tq, D]. Differentiable when kvLength = S.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const op = 'attention';
  checkInputs(op, [q, k, v]);
  if (opts.keyStart) checkInputs(op, [opts.keyStart], 'int32');
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) {
    fail(op, `expected q [B, H, Tq, D] and k, v [B, Hkv, S, D], got ${shapeStr(q.shape)}, ${shapeStr(k.shape)}, ${shapeStr(v.shape)}`);
  }
  const [batch, heads, tq, headDim] = q.shape;
  const [kb, kvHeads, kvStride, kd] = k.shape;
  if (kb !== batch || kd !== headDim || v.shape.some((d, i) => d !== k.shape[i])) {
    fail(op, `shapes do not agree: q ${shapeStr(q.shape)}, k ${shapeStr(k.shape)}, v ${shapeStr(v.shape)}`);
  }
  if (kvHeads < 1 || heads % kvHeads !== 0) fail(op, `query heads ${heads} must be a multiple of kv heads ${kvHeads}`);
  const tk = opts.kvLength ?? kvStride;
  if (tk < 0 || tk > kvStride) fail(op, `kvLength ${tk} outside [0, ${kvStride}]`);
  if (opts.keyStart && opts.keyStart.size !== batch) fail(op, `keyStart has ${opts.keyStart.size} entries for batch ${batch}`);
  const args: AttentionArgs = {
    batch, heads, kvHeads, tq, tk, kvStride, headDim,
    scale: opts.scale ?? 1 / Math.sqrt(headDim), causal: opts.causal ?? false, qOffset: opts.qOffset ?? 0,
  };
  const backend = getBackend();
  const out = empty(q.shape);
  const lse = empty([batch, heads, tq]);
  const ks = opts.keyStart ?? null;
  backend.kernels.attention(q.storage, k.storage, v.storage, ks?.storage ?? null, out.storage, lse.storage, args);
  const inputs = ks ? [q, k, v, ks] : [q, k, v];
  const result = record(op, inputs, out, ks ? [q, k, v, out, lse, ks] : [q, k, v, out, lse], (g, saved) => {
    if (tk !== kvStride) fail(op, `no gradient through a partly used KV cache (kvLength ${tk} of ${kvStride} rows)`);
    const [sq, sk, sv, so, sl, sks] = saved;
    const gq = empty(q.shape);
    const gk = empty(k.shape);
    const gv = empty(v.shape);
    getBackend().kernels.attentionBackward(sq.storage, sk.storage, sv.storage, sks?.storage ?? null, so.storage, sl.storage, g.storage,
      gq.storage, gk.storage, gv.storage, args);
    return ks ? [gq, gk, gv, null] : [gq, gk, gv];
  });
  lse.dispose(); // a recorded node keeps its own alias
  return result;
}

/**
 * Token log-probs and entropies from logits [N, V] and int32 targets [N] in one pass, never materialising
 * [N, V] log-probs. Targets outside [0, V) give logp 0 and no gradient (ignored positions).
 */
export function logSoftmaxGather(logits: Tensor, targets: Tensor): { logp: Tensor; entropy: Tensor } {
  const op = 'logSoftmaxGather';
  checkInputs(op, [logits]);
  checkInputs(op, [targets], 'int32');
  if (logits.rank !== 2) fail(op, `logits must be [N, V], got ${shapeStr(logits.shape)}`);
  const [rows, cols] = logits.shape;
  if (targets.size !== rows) fail(op, `targets ${shapeStr(targets.shape)} do not match ${rows} rows of logits ${shapeStr(logits.shape)}`);
  const backend = getBackend();
  // Both outputs live in one [2, N] tensor so one autograd node serves them; the caller gets row slices.
  const both = empty([2, rows]);
  const logp = empty([rows]);
  const entropy = empty([rows]);
  const lse = empty([rows]);
  backend.kernels.logSoftmaxGather(logits.storage, targets.storage, logp.storage, entropy.storage, lse.storage, rows, cols);
  backend.copy(logp.storage, { strides: [1], offset: 0 }, both.storage, 0, [rows]);
  backend.copy(entropy.storage, { strides: [1], offset: 0 }, both.storage, rows, [rows]);
  logp.dispose();
  const tracked = record(op, [logits, targets], both, [logits, targets, lse, entropy], (g, [x, t, l, e]) => {
    const backend = getBackend();
    const gLogp = empty([rows]);
    const gEnt = empty([rows]);
    backend.copy(g.storage, { strides: [1], offset: 0 }, gLogp.storage, 0, [rows]);
    backend.copy(g.storage, { strides: [1], offset: rows }, gEnt.storage, 0, [rows]);
    const gx = empty([rows, cols]);
    backend.kernels.logSoftmaxGatherBackward(x.storage, t.storage, l.storage, e.storage, gLogp.storage, gEnt.storage, gx.storage, rows, cols);
    gLogp.dispose();
    gEnt.dispose();
    return [gx, null];
  });
  lse.dispose();
  entropy.dispose();
  const out = tidy(() => ({
    logp: reshape(slice(tracked, [0, 0], [1, rows]), [rows]),
    entropy: reshape(slice(tracked, [1, 0], [1, rows]), [rows]),
  }));
  tracked.dispose();
  return out;
}

/** RMSNorm over the last axis: x · rsqrt(mean(x²) + eps) · weight. */
export function rmsNorm(x: Tensor, weight: Tensor, eps = 1e-6): Tensor {
  const op = 'rmsNorm';
  checkInputs(op, [x, weight]);
  const cols = x.shape[x.rank - 1];
  if (x.rank === 0 || weight.rank !== 1 || weight.shape[0] !== cols) {
    fail(op, `weight ${shapeStr(weight.shape)} must match the last axis of x ${shapeStr(x.shape)}`);
  }
  const rows = x.size / cols;
  const out = empty(x.shape);
  const rstd = empty([rows]);
  getBackend().kernels.rmsNorm(x.storage, weight.storage, out.storage, rstd.storage, rows, cols, eps);
  const r = record(op, [x, weight], out, [x, weight, rstd], (g, [sx, sw, sr]) => {
    const gx = empty(x.shape);
    const gw = empty(weight.shape);
    getBackend().kernels.rmsNormBackward(sx.storage, sw.storage, sr.storage, g.storage, gx.storage, gw.storage, rows, cols);
    return [gx, gw];
  });
  rstd.dispose();
  return r;
}

/**
 * Rotary position embedding on x [B, T, heads, headDim] at int32 positions [B, T] (Llama rotate_half
 * convention), with frequencies theta^(−2j/headDim) or, when given, the table inverseFrequencies [headDim/2]
 * (scaled RoPE). The backward is the inverse rotation.
 */
export function rope(x: Tensor, positions: Tensor, theta = 10000, inverseFrequencies: Float64Array | null = null): Tensor {
  const op = 'rope';
  checkInputs(op, [x]);
  checkInputs(op, [positions], 'int32');
  if (x.rank !== 4) fail(op, `x must be [B, T, heads, headDim], got ${shapeStr(x.shape)}`);
  const [batch, t, heads, headDim] = x.shape;
  if (headDim % 2 !== 0) fail(op, `headDim ${headDim} must be even`);
  if (positions.size !== batch * t) fail(op, `positions ${shapeStr(positions.shape)} do not match [${batch}, ${t}]`);
  if (inverseFrequencies && inverseFrequencies.length !== headDim / 2) fail(op, `inverseFrequencies has ${inverseFrequencies.length} entries, headDim ${headDim} needs ${headDim / 2}`);
  const args = { batch, t, heads, headDim, theta, inverse: false, inverseFrequencies };
  const out = empty(x.shape);
  getBackend().kernels.rope(x.storage, positions.storage, out.storage, args);
  return record(op, [x, positions], out, [positions], (g, [pos]) => {
    const gx = empty(x.shape);
    getBackend().kernels.rope(g.storage, pos.storage, gx.storage, { ...args, inverse: true });
    return [gx, null];
  });
}

/** silu(gate) · up, elementwise (the SwiGLU MLP's gate). */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  const op = 'swiglu';
  checkInputs(op, [gate, up]);
  if (gate.shape.length !== up.shape.length || gate.shape.some((d, i) => d !== up.shape[i])) {
    fail(op, `gate ${shapeStr(gate.shape)} and up ${shapeStr(up.shape)} differ`);
  }
  const out = empty(gate.shape);
  getBackend().kernels.swiglu(gate.storage, up.storage, out.storage, gate.size);
  return record(op, [gate, up], out, [gate, up], (g, [sg, su]) => {
    const gg = empty(gate.shape);
    const gu = empty(up.shape);
    getBackend().kernels.swigluBackward(sg.storage, su.storage, g.storage, gg.storage, gu.storage, gate.size);
    return [gg, gu];
  });
}

/**
 * Writes src into dst at `begin` (dst[begin + i] = src[i] over src's shape), in place and outside autograd:
 * appending keys and values to a KV cache.
 */
export function writeSlice(dst: Tensor, src: Tensor, begin: readonly number[]): void {
  const op = 'writeSlice';
  checkInputs(op, [dst, src], null);
  if (src.dtype !== dst.dtype) throw new TypeError(`${op}: dtype ${src.dtype} into ${dst.dtype}`);
  if (src.rank !== dst.rank || begin.length !== dst.rank || src.shape.some((d, i) => begin[i] < 0 || begin[i] + d > dst.shape[i])) {
    fail(op, `${shapeStr(src.shape)} at [${begin.join(', ')}] does not fit in ${shapeStr(dst.shape)}`);
  }
  if (dst.tracksGrad) fail(op, 'the destination takes part in autograd; write into a tensor outside the graph');
  const strides = contiguousStrides(dst.shape);
  const offset = begin.reduce((acc, b, i) => acc + b * strides[i], 0);
  getBackend().kernels.writeView(src.storage, contiguousView(src.shape), dst.storage, { strides, offset }, src.shape);
}

/** Mean token cross-entropy −log p(target) over the rows whose target is not ignored (targets < 0). */
export function crossEntropy(logits: Tensor, targets: Tensor): Tensor {
  return tidy(() => meanTokenNll(logSoftmaxGather(logits, targets).logp, targets));
}

/**
 * One token per row of logits [rows, V], drawn on the backend with uniforms [rows] ∈ [0, 1) (sampleRows): softmax of
 * logits / temperature, inverse transform in vocabulary order; temperature 0 = greedy. Returns [rows, 2] float32
 * (token, its log-probability), so a sampler reads two floats per row instead of V. No gradient.
 */
export function sampleRows(logits: Tensor, uniforms: Tensor, temperature: number): Tensor {
  const op = 'sampleRows';
  checkInputs(op, [logits, uniforms]);
  if (logits.rank !== 2) fail(op, `logits must be [rows, V], got ${shapeStr(logits.shape)}`);
  const [rows, cols] = logits.shape;
  if (uniforms.size !== rows) fail(op, `uniforms ${shapeStr(uniforms.shape)} do not match ${rows} rows of logits ${shapeStr(logits.shape)}`);
  const out = empty([rows, 2]);
  getBackend().kernels.sampleRows(logits.storage, uniforms.storage, out.storage, rows, cols, temperature);
  return out;
}
