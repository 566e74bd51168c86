// Float64 reference of the fused transformer kernels (contract: ../model_kernels.ts). Literal loops over
// plain arrays, written for obviousness: the product backends are tested against these.
import type { ModelKernels } from '../model_kernels.js';
import type { AdamWArgs, AttentionArgs, DType, LowRankArgs, RopeArgs, Storage, TokenLossArgs } from '../types.js';
import { forEachStrided } from './strided.js';

type F = Float64Array;

/** Index of the kv head read by query head h. */
function kvHeadOf(h: number, a: AttentionArgs): number {
  return Math.floor(h / (a.heads / a.kvHeads));
}

/** Whether key j is visible to query row i of sequence b. */
function visible(a: AttentionArgs, keyStart: F | null, b: number, i: number, j: number): boolean {
  if (j >= a.tk) return false;
  if (keyStart && j < keyStart[b]) return false;
  return !a.causal || j <= a.qOffset + i;
}

/** Scaled scores s_ij of one query row against every key row (−Infinity where not visible). */
function scoresOf(q: F, k: F, keyStart: F | null, a: AttentionArgs, b: number, h: number, i: number): F {
  const D = a.headDim;
  const qo = ((b * a.heads + h) * a.tq + i) * D;
  const kBase = (b * a.kvHeads + kvHeadOf(h, a)) * a.kvStride * D;
  const scores = new Float64Array(a.tk).fill(-Infinity);
  for (let j = 0; j < a.tk; j++) {
    if (!visible(a, keyStart, b, i, j)) continue;
    let dot = 0;
    for (let d = 0; d < D; d++) dot += q[qo + d] * k[kBase + j * D + d];
    scores[j] = a.scale * dot;
  }
  return scores;
}

function logSumExp(s: F): number {
  let mx = -Infinity;
  for (const v of s) mx = Math.max(mx, v);
  if (mx === -Infinity) return Infinity; // no visible key
  let sum = 0;
  for (const v of s) sum += Math.exp(v - mx);
  return mx + Math.log(sum);
}

export function attentionRef(q: F, k: F, v: F, keyStart: F | null, out: F, lse: F, a: AttentionArgs): void {
  const D = a.headDim;
  for (let b = 0; b < a.batch; b++) {
    for (let h = 0; h < a.heads; h++) {
      const vBase = (b * a.kvHeads + kvHeadOf(h, a)) * a.kvStride * D;
      for (let i = 0; i < a.tq; i++) {
        const s = scoresOf(q, k, keyStart, a, b, h, i);
        const l = logSumExp(s);
        const row = (b * a.heads + h) * a.tq + i;
        lse[row] = l;
        for (let d = 0; d < D; d++) {
          let acc = 0;
          if (l !== Infinity) for (let j = 0; j < a.tk; j++) acc += Math.exp(s[j] - l) * v[vBase + j * D + d];
          out[row * D + d] = acc;
        }
      }
    }
  }
}

export function attentionBackwardRef(
  q: F, k: F, v: F, keyStart: F | null, out: F, lse: F, gOut: F, gq: F, gk: F, gv: F, a: AttentionArgs,
): void {
  const D = a.headDim;
  gq.fill(0);
  gk.fill(0);
  gv.fill(0);
  for (let b = 0; b < a.batch; b++) {
    for (let h = 0; h < a.heads; h++) {
      const kvBase = (b * a.kvHeads + kvHeadOf(h, a)) * a.tk * D;
      for (let i = 0; i < a.tq; i++) {
        const row = (b * a.heads + h) * a.tq + i;
        const s = scoresOf(q, k, keyStart, a, b, h, i);
        let dRow = 0;
        for (let d = 0; d < D; d++) dRow += gOut[row * D + d] * out[row * D + d];
        for (let j = 0; j < a.tk; j++) {
          const p = Math.exp(s[j] - lse[row]);
          if (!(p > 0)) continue;
          let gp = 0;
          for (let d = 0; d < D; d++) gp += gOut[row * D + d] * v[kvBase + j * D + d];
          const dS = p * (gp - dRow);
          for (let d = 0; d < D; d++) {
            gq[row * D + d] += a.scale * dS * k[kvBase + j * D + d];
            gk[kvBase + j * D + d] += a.scale * dS * q[row * D + d];
            gv[kvBase + j * D + d] += p * gOut[row * D + d];
          }
        }
      }
    }
  }
}

export function logSoftmaxGatherRef(x: F, targets: F, logp: F, entropy: F, lse: F, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * cols, (r + 1) * cols);
    const l = logSumExp(row);
    let px = 0;
    for (let c = 0; c < cols; c++) px += Math.exp(row[c] - l) * row[c];
    const t = targets[r];
    lse[r] = l;
    logp[r] = t >= 0 && t < cols ? row[t] - l : 0;
    entropy[r] = l - px;
  }
}

export function logSoftmaxGatherBackwardRef(
  x: F, targets: F, lse: F, entropy: F, gLogp: F, gEntropy: F, gx: F, rows: number, cols: number,
): void {
  for (let r = 0; r < rows; r++) {
    const t = targets[r];
    const gl = t >= 0 && t < cols ? gLogp[r] : 0;
    for (let c = 0; c < cols; c++) {
      const xc = x[r * cols + c];
      const p = Math.exp(xc - lse[r]);
      gx[r * cols + c] = gl * ((c === t ? 1 : 0) - p) - gEntropy[r] * p * (xc - lse[r] + entropy[r]);
    }
  }
}

export function rmsNormRef(x: F, w: F, out: F, rstd: F, rows: number, cols: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let c = 0; c < cols; c++) ss += x[r * cols + c] ** 2;
    const rs = 1 / Math.sqrt(ss / cols + eps);
    rstd[r] = rs;
    for (let c = 0; c < cols; c++) out[r * cols + c] = x[r * cols + c] * rs * w[c];
  }
}

export function rmsNormBackwardRef(x: F, w: F, rstd: F, g: F, gx: F, gw: F, rows: number, cols: number): void {
  gw.fill(0);
  for (let r = 0; r < rows; r++) {
    const rs = rstd[r];
    let dot = 0;
    for (let c = 0; c < cols; c++) dot += g[r * cols + c] * w[c] * x[r * cols + c];
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      gx[i] = rs * w[c] * g[i] - x[i] * rs ** 3 * dot / cols;
      gw[c] += g[i] * x[i] * rs;
    }
  }
}

export function ropeRef(x: F, positions: F, out: F, a: RopeArgs): void {
  const half = a.headDim / 2;
  for (let b = 0; b < a.batch; b++) {
    for (let t = 0; t < a.t; t++) {
      const pos = positions[b * a.t + t];
      for (let h = 0; h < a.heads; h++) {
        const base = ((b * a.t + t) * a.heads + h) * a.headDim;
        for (let j = 0; j < half; j++) {
          const ang = (a.inverse ? -1 : 1) * pos * Math.pow(a.theta, (-2 * j) / a.headDim);
          const c = Math.cos(ang);
          const s = Math.sin(ang);
          const x1 = x[base + j];
          const x2 = x[base + j + half];
          out[base + j] = x1 * c - x2 * s;
          out[base + j + half] = x2 * c + x1 * s;
        }
      }
    }
  }
}

const sigmoid = (g: number): number => 1 / (1 + Math.exp(-g));

export function swigluRef(gate: F, up: F, out: F, n: number): void {
  for (let i = 0; i < n; i++) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
}

export function swigluBackwardRef(gate: F, up: F, gOut: F, gGate: F, gUp: F, n: number): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i];
    const sg = sigmoid(g);
    gGate[i] = gOut[i] * up[i] * sg * (1 + g * (1 - sg));
    gUp[i] = gOut[i] * g * sg;
  }
}

export function adamwRef(p: F, grad: F, m: F, v: F, scale: F, a: AdamWArgs, n: number): void {
  const bc1 = 1 - Math.pow(a.beta1, a.step);
  const bc2 = 1 - Math.pow(a.beta2, a.step);
  for (let i = 0; i < n; i++) {
    const g = grad[i] * scale[0];
    m[i] = a.beta1 * m[i] + (1 - a.beta1) * g;
    v[i] = a.beta2 * v[i] + (1 - a.beta2) * g * g;
    p[i] = p[i] * (1 - a.lr * a.weightDecay) - (a.lr * (m[i] / bc1)) / (Math.sqrt(v[i] / bc2) + a.eps);
  }
}

export function sumSquaresRef(x: F, out: F, n: number, accumulate: boolean): void {
  let total = accumulate ? out[0] : 0;
  for (let i = 0; i < n; i++) total += x[i] * x[i];
  out[0] = total;
}

/** The branches of the clipped token loss at one token, chosen identically for the forward and the backward. */
function tokenLossAt(lp: number, old: number, adv: number, a: TokenLossArgs) {
  const raw = lp - old;
  const d = Math.min(Math.max(raw, -a.logRatioClamp), a.logRatioClamp);
  const r = Math.exp(d);
  const l1 = -adv * r;
  const l2 = -adv * Math.min(Math.max(r, 1 - a.epsLow), 1 + a.epsHigh);
  let l = Math.max(l1, l2);
  const dualBound = -adv * a.dualClip;
  const dual = a.dualClip > 0 && adv < 0 && dualBound < l;
  if (dual) l = dualBound;
  const unclipped = l1 >= l2 && !dual && Math.abs(raw) <= a.logRatioClamp;
  return { d, r, l, unclipped };
}

export function tokenLossRef(logp: F, oldLogp: F, adv: F, weight: F, loss: F, stats: F, n: number, a: TokenLossArgs): void {
  for (let i = 0; i < n; i++) {
    const { d, r, l } = tokenLossAt(logp[i], oldLogp[i], adv[i], a);
    const valid = weight[i] !== 0 ? 1 : 0;
    loss[i] = weight[i] * l;
    stats[i] = valid * (r < 1 - a.epsLow && adv[i] < 0 ? 1 : 0);
    stats[n + i] = valid * (r > 1 + a.epsHigh && adv[i] > 0 ? 1 : 0);
    stats[2 * n + i] = valid * ((r - 1) - d);
  }
}

export function tokenLossBackwardRef(logp: F, oldLogp: F, adv: F, weight: F, gLoss: F, gLogp: F, n: number, a: TokenLossArgs): void {
  for (let i = 0; i < n; i++) {
    const { r, unclipped } = tokenLossAt(logp[i], oldLogp[i], adv[i], a);
    gLogp[i] = unclipped ? gLoss[i] * weight[i] * -adv[i] * r : 0;
  }
}

/** out[i, c] += scale · Σ_j u[i, j] · L(c, j), L(c, j) = l[c·rank + j] or (transL) l[j·cols + c]. */
export function lowRankAddRef(u: F, l: F, out: F, args: LowRankArgs): void {
  const { rows, cols, rank, scale, transL } = args;
  for (let i = 0; i < rows; i++) {
    for (let c = 0; c < cols; c++) {
      let s = 0;
      for (let j = 0; j < rank; j++) s += u[i * rank + j] * (transL ? l[j * cols + c] : l[c * rank + j]);
      out[i * cols + c] += scale * s;
    }
  }
}

/** What the reference kernels need from the reference backend: the float64 contents of its storages. */
export interface ReferenceKernelHost {
  /** The contents of a live storage of this backend (throws a KernelError naming `kernel` otherwise). */
  data(x: Storage, kernel: string): { readonly dtype: DType; readonly data: Float64Array };
}

/**
 * The reference model kernels: each resolves its storages to float64 arrays and runs the literal loops
 * above. Arguments are already validated against the signature table (model_kernels.ts).
 */
export function referenceModelKernels(host: ReferenceKernelHost) {
  const arrays = (kernel: string, storages: Storage[]): F[] => storages.map((x) => host.data(x, kernel).data);
  return {
    writeView(x, xView, out, outView, shape) {
      const source = host.data(x, 'writeView').data;
      const target = host.data(out, 'writeView');
      const toInt = target.dtype === 'int32';
      forEachStrided(shape, [xView, outView], (_i, [from, to]) => {
        target.data[to] = toInt ? Math.trunc(source[from]) | 0 : source[from];
      });
    },
    attention(q, k, v, keyStart, out, lse, args) {
      const [dq, dk, dv, dout, dlse] = arrays('attention', [q, k, v, out, lse]);
      attentionRef(dq, dk, dv, keyStart ? host.data(keyStart, 'attention').data : null, dout, dlse, args);
    },
    attentionBackward(q, k, v, keyStart, out, lse, gOut, gq, gk, gv, args) {
      const kernel = 'attentionBackward';
      const [dq, dk, dv, dout, dlse, dg, dgq, dgk, dgv] = arrays(kernel, [q, k, v, out, lse, gOut, gq, gk, gv]);
      attentionBackwardRef(dq, dk, dv, keyStart ? host.data(keyStart, kernel).data : null, dout, dlse, dg, dgq, dgk, dgv, args);
    },
    logSoftmaxGather(logits, targets, logp, entropy, lse, rows, cols) {
      const [x, t, lp, en, ls] = arrays('logSoftmaxGather', [logits, targets, logp, entropy, lse]);
      logSoftmaxGatherRef(x, t, lp, en, ls, rows, cols);
    },
    logSoftmaxGatherBackward(logits, targets, lse, entropy, gLogp, gEntropy, gLogits, rows, cols) {
      const [x, t, ls, en, gl, ge, gx] = arrays('logSoftmaxGatherBackward', [logits, targets, lse, entropy, gLogp, gEntropy, gLogits]);
      logSoftmaxGatherBackwardRef(x, t, ls, en, gl, ge, gx, rows, cols);
    },
    rmsNorm(x, weight, out, rstd, rows, cols, eps) {
      const [dx, w, o, r] = arrays('rmsNorm', [x, weight, out, rstd]);
      rmsNormRef(dx, w, o, r, rows, cols, eps);
    },
    rmsNormBackward(x, weight, rstd, gOut, gx, gWeight, rows, cols) {
      const [dx, w, r, g, gdx, gw] = arrays('rmsNormBackward', [x, weight, rstd, gOut, gx, gWeight]);
      rmsNormBackwardRef(dx, w, r, g, gdx, gw, rows, cols);
    },
    rope(x, positions, out, args) {
      const [dx, pos, o] = arrays('rope', [x, positions, out]);
      ropeRef(dx, pos, o, args);
    },
    swiglu(gate, up, out, n) {
      const [g, u, o] = arrays('swiglu', [gate, up, out]);
      swigluRef(g, u, o, n);
    },
    swigluBackward(gate, up, gOut, gGate, gUp, n) {
      const [g, u, go, gg, gu] = arrays('swigluBackward', [gate, up, gOut, gGate, gUp]);
      swigluBackwardRef(g, u, go, gg, gu, n);
    },
    tokenLoss(logp, oldLogp, adv, weight, loss, stats, n, args) {
      const [lp, old, a, w, l, perTokenStats] = arrays('tokenLoss', [logp, oldLogp, adv, weight, loss, stats]);
      tokenLossRef(lp, old, a, w, l, perTokenStats, n, args);
    },
    tokenLossBackward(logp, oldLogp, adv, weight, gLoss, gLogp, n, args) {
      const [lp, old, a, w, gl, g] = arrays('tokenLossBackward', [logp, oldLogp, adv, weight, gLoss, gLogp]);
      tokenLossBackwardRef(lp, old, a, w, gl, g, n, args);
    },
    lowRankAdd(u, l, out, args) {
      const [du, dl, o] = arrays('lowRankAdd', [u, l, out]);
      lowRankAddRef(du, dl, o, args);
    },
    adamw(param, grad, m, v, scale, args, n) {
      const [p, g, dm, dv, sc] = arrays('adamw', [param, grad, m, v, scale]);
      adamwRef(p, g, dm, dv, sc, args, n);
    },
    sumSquares(x, out, n, accumulate) {
      const [dx, o] = arrays('sumSquares', [x, out]);
      sumSquaresRef(dx, o, n, accumulate);
    },
  } satisfies ModelKernels;
}
