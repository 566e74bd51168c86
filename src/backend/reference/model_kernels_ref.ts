// Float64 reference of the fused transformer kernels (contract: ../model_kernels.ts). Literal loops over
// plain arrays, written for obviousness: the product backends are tested against these.
import type { ModelKernels } from '../model_kernels.js';
import type { AdamWArgs, AttentionArgs, DType, LowRankArgs, MatmulLowRankArgs, RopeArgs, Storage, TokenLossArgs } from '../types.js';
import { forEachStrided } from './strided.js';

type Floats = Float64Array;

/** Index of the kv head read by query head h. */
function kvHeadOf(h: number, args: AttentionArgs): number {
  return Math.floor(h / (args.heads / args.kvHeads));
}

/** Whether key j is visible to query row i of sequence b. */
function visible(args: AttentionArgs, keyStart: Floats | null, b: number, i: number, j: number): boolean {
  if (j >= args.tk) return false;
  if (keyStart && j < keyStart[b]) return false;
  return !args.causal || j <= args.qOffset + i;
}

/** Scaled scores s_ij of one query row against every key row (−Infinity where not visible). */
function scoresOf(q: Floats, k: Floats, keyStart: Floats | null, args: AttentionArgs, b: number, h: number, i: number): Floats {
  const D = args.headDim;
  const qBase = ((b * args.heads + h) * args.tq + i) * D;
  const kBase = (b * args.kvHeads + kvHeadOf(h, args)) * args.kvStride * D;
  const scores = new Float64Array(args.tk).fill(-Infinity);
  for (let j = 0; j < args.tk; j++) {
    if (!visible(args, keyStart, b, i, j)) continue;
    let dot = 0;
    for (let d = 0; d < D; d++) dot += q[qBase + d] * k[kBase + j * D + d];
    scores[j] = args.scale * dot;
  }
  return scores;
}

function logSumExp(values: Floats): number {
  let max = -Infinity;
  for (const v of values) max = Math.max(max, v);
  if (max === -Infinity) return Infinity; // no visible key
  let sum = 0;
  for (const v of values) sum += Math.exp(v - max);
  return max + Math.log(sum);
}

export function attentionRef(q: Floats, k: Floats, v: Floats, keyStart: Floats | null, out: Floats, lse: Floats, args: AttentionArgs): void {
  const D = args.headDim;
  for (let b = 0; b < args.batch; b++) {
    for (let h = 0; h < args.heads; h++) {
      const vBase = (b * args.kvHeads + kvHeadOf(h, args)) * args.kvStride * D;
      for (let i = 0; i < args.tq; i++) {
        const scores = scoresOf(q, k, keyStart, args, b, h, i);
        const rowLse = logSumExp(scores);
        const row = (b * args.heads + h) * args.tq + i;
        lse[row] = rowLse;
        for (let d = 0; d < D; d++) {
          let acc = 0;
          if (rowLse !== Infinity) for (let j = 0; j < args.tk; j++) acc += Math.exp(scores[j] - rowLse) * v[vBase + j * D + d];
          out[row * D + d] = acc;
        }
      }
    }
  }
}

export function attentionBackwardRef(
  q: Floats, k: Floats, v: Floats, keyStart: Floats | null, out: Floats, lse: Floats, gOut: Floats, gq: Floats, gk: Floats, gv: Floats, args: AttentionArgs,
): void {
  const D = args.headDim;
  gq.fill(0);
  gk.fill(0);
  gv.fill(0);
  for (let b = 0; b < args.batch; b++) {
    for (let h = 0; h < args.heads; h++) {
      const kvBase = (b * args.kvHeads + kvHeadOf(h, args)) * args.tk * D;
      for (let i = 0; i < args.tq; i++) {
        const row = (b * args.heads + h) * args.tq + i;
        const scores = scoresOf(q, k, keyStart, args, b, h, i);
        let dRow = 0;
        for (let d = 0; d < D; d++) dRow += gOut[row * D + d] * out[row * D + d];
        for (let j = 0; j < args.tk; j++) {
          const prob = Math.exp(scores[j] - lse[row]);
          if (!(prob > 0)) continue;
          let gProb = 0;
          for (let d = 0; d < D; d++) gProb += gOut[row * D + d] * v[kvBase + j * D + d];
          const dS = prob * (gProb - dRow);
          for (let d = 0; d < D; d++) {
            gq[row * D + d] += args.scale * dS * k[kvBase + j * D + d];
            gk[kvBase + j * D + d] += args.scale * dS * q[row * D + d];
            gv[kvBase + j * D + d] += prob * gOut[row * D + d];
          }
        }
      }
    }
  }
}

export function logSoftmaxGatherRef(x: Floats, targets: Floats, logp: Floats, entropy: Floats, lse: Floats, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * cols, (r + 1) * cols);
    const rowLse = logSumExp(row);
    let expectedLogit = 0;
    for (let c = 0; c < cols; c++) expectedLogit += Math.exp(row[c] - rowLse) * row[c];
    const target = targets[r];
    lse[r] = rowLse;
    logp[r] = target >= 0 && target < cols ? row[target] - rowLse : 0;
    entropy[r] = rowLse - expectedLogit;
  }
}

/** sampleRows in float64: the host sampler's formulas (sampleToken) with s = x·(1/temperature). */
export function sampleRowsRef(x: Floats, uniforms: Floats, out: Floats, rows: number, cols: number, temperature: number): void {
  const scale = temperature === 0 ? 1 : 1 / temperature;
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    let best = 0;
    for (let c = 0; c < cols; c++) {
      const s = x[r * cols + c] * scale;
      if (s > m) { m = s; best = c; }
    }
    let z = 0;
    for (let c = 0; c < cols; c++) z += Math.exp(x[r * cols + c] * scale - m);
    let token = best;
    if (temperature !== 0) {
      const target = uniforms[r] * z;
      let acc = 0;
      token = cols - 1;
      for (let c = 0; c < cols; c++) {
        acc += Math.exp(x[r * cols + c] * scale - m);
        if (target < acc) { token = c; break; }
      }
    }
    out[2 * r] = token;
    out[2 * r + 1] = x[r * cols + token] * scale - (m + Math.log(z));
  }
}

export function logSoftmaxGatherBackwardRef(
  x: Floats, targets: Floats, lse: Floats, entropy: Floats, gLogp: Floats, gEntropy: Floats, gx: Floats, rows: number, cols: number,
): void {
  for (let r = 0; r < rows; r++) {
    const target = targets[r];
    const gTargetLogp = target >= 0 && target < cols ? gLogp[r] : 0;
    for (let c = 0; c < cols; c++) {
      const xc = x[r * cols + c];
      const prob = Math.exp(xc - lse[r]);
      gx[r * cols + c] = gTargetLogp * ((c === target ? 1 : 0) - prob) - gEntropy[r] * prob * (xc - lse[r] + entropy[r]);
    }
  }
}

export function rmsNormRef(x: Floats, weight: Floats, out: Floats, rstd: Floats, rows: number, cols: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    let sumSquares = 0;
    for (let c = 0; c < cols; c++) sumSquares += x[r * cols + c] ** 2;
    const rs = 1 / Math.sqrt(sumSquares / cols + eps);
    rstd[r] = rs;
    for (let c = 0; c < cols; c++) out[r * cols + c] = x[r * cols + c] * rs * weight[c];
  }
}

export function rmsNormBackwardRef(
  x: Floats, weight: Floats, rstd: Floats, gOut: Floats, gx: Floats, gWeight: Floats, rows: number, cols: number,
): void {
  gWeight.fill(0);
  for (let r = 0; r < rows; r++) {
    const rs = rstd[r];
    let dot = 0;
    for (let c = 0; c < cols; c++) dot += gOut[r * cols + c] * weight[c] * x[r * cols + c];
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      gx[i] = rs * weight[c] * gOut[i] - x[i] * rs ** 3 * dot / cols;
      gWeight[c] += gOut[i] * x[i] * rs;
    }
  }
}

export function ropeRef(x: Floats, positions: Floats, out: Floats, args: RopeArgs): void {
  const half = args.headDim / 2;
  for (let b = 0; b < args.batch; b++) {
    for (let t = 0; t < args.t; t++) {
      const pos = positions[b * args.t + t];
      for (let h = 0; h < args.heads; h++) {
        const base = ((b * args.t + t) * args.heads + h) * args.headDim;
        for (let j = 0; j < half; j++) {
          const frequency = args.inverseFrequencies ? args.inverseFrequencies[j] : Math.pow(args.theta, (-2 * j) / args.headDim);
          const angle = (args.inverse ? -1 : 1) * pos * frequency;
          const cos = Math.cos(angle);
          const sin = Math.sin(angle);
          const x1 = x[base + j];
          const x2 = x[base + j + half];
          out[base + j] = x1 * cos - x2 * sin;
          out[base + j + half] = x2 * cos + x1 * sin;
        }
      }
    }
  }
}

const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));

export function swigluRef(gate: Floats, up: Floats, out: Floats, n: number): void {
  for (let i = 0; i < n; i++) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
}

export function swigluBackwardRef(gate: Floats, up: Floats, gOut: Floats, gGate: Floats, gUp: Floats, n: number): void {
  for (let i = 0; i < n; i++) {
    const gateValue = gate[i];
    const sig = sigmoid(gateValue);
    gGate[i] = gOut[i] * up[i] * sig * (1 + gateValue * (1 - sig));
    gUp[i] = gOut[i] * gateValue * sig;
  }
}

export function adamwRef(param: Floats, grad: Floats, m: Floats, v: Floats, scale: Floats, args: AdamWArgs, n: number): void {
  const bc1 = 1 - Math.pow(args.beta1, args.step);
  const bc2 = 1 - Math.pow(args.beta2, args.step);
  for (let i = 0; i < n; i++) {
    const g = grad[i] * scale[0];
    m[i] = args.beta1 * m[i] + (1 - args.beta1) * g;
    v[i] = args.beta2 * v[i] + (1 - args.beta2) * g * g;
    param[i] = param[i] * (1 - args.lr * args.weightDecay) - (args.lr * (m[i] / bc1)) / (Math.sqrt(v[i] / bc2) + args.eps);
  }
}

export function sumSquaresRef(x: Floats, out: Floats, n: number, accumulate: boolean): void {
  let total = accumulate ? out[0] : 0;
  for (let i = 0; i < n; i++) total += x[i] * x[i];
  out[0] = total;
}

/** The branches of the clipped token loss at one token, chosen identically for the forward and the backward. */
function tokenLossAt(logp: number, oldLogp: number, adv: number, args: TokenLossArgs) {
  const rawLogRatio = logp - oldLogp;
  const logRatio = Math.min(Math.max(rawLogRatio, -args.logRatioClamp), args.logRatioClamp);
  const ratio = Math.exp(logRatio);
  const l1 = -adv * ratio;
  const l2 = -adv * Math.min(Math.max(ratio, 1 - args.epsLow), 1 + args.epsHigh);
  let loss = Math.max(l1, l2);
  const dualBound = -adv * args.dualClip;
  const dual = args.dualClip > 0 && adv < 0 && dualBound < loss;
  if (dual) loss = dualBound;
  const unclipped = l1 >= l2 && !dual && Math.abs(rawLogRatio) <= args.logRatioClamp;
  return { logRatio, ratio, loss, unclipped };
}

export function tokenLossRef(logp: Floats, oldLogp: Floats, adv: Floats, weight: Floats, loss: Floats, stats: Floats, n: number, args: TokenLossArgs): void {
  for (let i = 0; i < n; i++) {
    const at = tokenLossAt(logp[i], oldLogp[i], adv[i], args);
    const valid = weight[i] !== 0 ? 1 : 0;
    loss[i] = weight[i] * at.loss;
    stats[i] = valid * (at.ratio < 1 - args.epsLow && adv[i] < 0 ? 1 : 0);
    stats[n + i] = valid * (at.ratio > 1 + args.epsHigh && adv[i] > 0 ? 1 : 0);
    stats[2 * n + i] = valid * ((at.ratio - 1) - at.logRatio);
  }
}

export function tokenLossBackwardRef(logp: Floats, oldLogp: Floats, adv: Floats, weight: Floats, gLoss: Floats, gLogp: Floats, n: number, args: TokenLossArgs): void {
  for (let i = 0; i < n; i++) {
    const { ratio, unclipped } = tokenLossAt(logp[i], oldLogp[i], adv[i], args);
    gLogp[i] = unclipped ? gLoss[i] * weight[i] * -adv[i] * ratio : 0;
  }
}

/** out[i, c] += scale · Σ_j u[i, j] · L(c, j), L(c, j) = l[c·rank + j] or (transL) l[j·cols + c]. */
export function lowRankAddRef(u: Floats, l: Floats, out: Floats, args: LowRankArgs): void {
  const { rows, cols, rank, scale, transL } = args;
  for (let i = 0; i < rows; i++) {
    for (let c = 0; c < cols; c++) {
      let dot = 0;
      for (let j = 0; j < rank; j++) dot += u[i * rank + j] * (transL ? l[j * cols + c] : l[c * rank + j]);
      out[i * cols + c] += scale * dot;
    }
  }
}

/** out = x·op(w) + scale · u·op(l) (MatmulLowRankArgs), summed in float64: the product, then the low-rank term. */
export function matmulLowRankRef(x: Floats, w: Floats, u: Floats, l: Floats, out: Floats, args: MatmulLowRankArgs): void {
  const { rows, cols, inner, transB } = args;
  for (let i = 0; i < rows; i++) {
    for (let c = 0; c < cols; c++) {
      let dot = 0;
      for (let p = 0; p < inner; p++) dot += x[i * inner + p] * (transB ? w[c * inner + p] : w[p * cols + c]);
      out[i * cols + c] = dot;
    }
  }
  lowRankAddRef(u, l, out, args);
}

/** What the reference kernels need from the reference backend: the float64 contents of its storages. */
export interface ReferenceKernelHost {
  /** The contents of a live storage of this backend (throws a KernelError naming `kernel` otherwise). */
  data(x: Storage, kernel: string, acceptHalf?: boolean): { readonly dtype: DType; readonly data: Float64Array };
}

/**
 * The reference model kernels: each resolves its storages to float64 arrays and runs the literal loops
 * above. Arguments are already validated against the signature table (model_kernels.ts).
 */
export function referenceModelKernels(host: ReferenceKernelHost) {
  /** The named storages' float64 contents (null stays null), resolved in the order given. */
  const arrays = <T extends Record<string, Storage | null>>(kernel: string, storages: T) => {
    const resolved: Record<string, Floats | null> = {};
    for (const [name, storage] of Object.entries(storages)) resolved[name] = storage ? host.data(storage, kernel).data : null;
    return resolved as { [Name in keyof T]: T[Name] extends Storage ? Floats : Floats | null };
  };
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
      const data = arrays('attention', { q, k, v, keyStart, out, lse });
      attentionRef(data.q, data.k, data.v, data.keyStart, data.out, data.lse, args);
    },
    attentionBackward(q, k, v, keyStart, out, lse, gOut, gq, gk, gv, args) {
      const data = arrays('attentionBackward', { q, k, v, keyStart, out, lse, gOut, gq, gk, gv });
      attentionBackwardRef(data.q, data.k, data.v, data.keyStart, data.out, data.lse, data.gOut, data.gq, data.gk, data.gv, args);
    },
    logSoftmaxGather(logits, targets, logp, entropy, lse, rows, cols) {
      const data = arrays('logSoftmaxGather', { logits, targets, logp, entropy, lse });
      logSoftmaxGatherRef(data.logits, data.targets, data.logp, data.entropy, data.lse, rows, cols);
    },
    sampleRows(logits, uniforms, out, rows, cols, temperature) {
      const data = arrays('sampleRows', { logits, uniforms, out });
      sampleRowsRef(data.logits, data.uniforms, data.out, rows, cols, temperature);
    },
    logSoftmaxGatherBackward(logits, targets, lse, entropy, gLogp, gEntropy, gLogits, rows, cols) {
      const data = arrays('logSoftmaxGatherBackward', { logits, targets, lse, entropy, gLogp, gEntropy, gLogits });
      logSoftmaxGatherBackwardRef(data.logits, data.targets, data.lse, data.entropy, data.gLogp, data.gEntropy, data.gLogits, rows, cols);
    },
    rmsNorm(x, weight, out, rstd, rows, cols, eps) {
      const data = arrays('rmsNorm', { x, weight, out, rstd });
      rmsNormRef(data.x, data.weight, data.out, data.rstd, rows, cols, eps);
    },
    rmsNormBackward(x, weight, rstd, gOut, gx, gWeight, rows, cols) {
      const data = arrays('rmsNormBackward', { x, weight, rstd, gOut, gx, gWeight });
      rmsNormBackwardRef(data.x, data.weight, data.rstd, data.gOut, data.gx, data.gWeight, rows, cols);
    },
    rope(x, positions, out, args) {
      const data = arrays('rope', { x, positions, out });
      ropeRef(data.x, data.positions, data.out, args);
    },
    swiglu(gate, up, out, n) {
      const data = arrays('swiglu', { gate, up, out });
      swigluRef(data.gate, data.up, data.out, n);
    },
    swigluBackward(gate, up, gOut, gGate, gUp, n) {
      const data = arrays('swigluBackward', { gate, up, gOut, gGate, gUp });
      swigluBackwardRef(data.gate, data.up, data.gOut, data.gGate, data.gUp, n);
    },
    tokenLoss(logp, oldLogp, adv, weight, loss, stats, n, args) {
      const data = arrays('tokenLoss', { logp, oldLogp, adv, weight, loss, stats });
      tokenLossRef(data.logp, data.oldLogp, data.adv, data.weight, data.loss, data.stats, n, args);
    },
    tokenLossBackward(logp, oldLogp, adv, weight, gLoss, gLogp, n, args) {
      const data = arrays('tokenLossBackward', { logp, oldLogp, adv, weight, gLoss, gLogp });
      tokenLossBackwardRef(data.logp, data.oldLogp, data.adv, data.weight, data.gLoss, data.gLogp, n, args);
    },
    lowRankAdd(u, l, out, args) {
      const data = arrays('lowRankAdd', { u, l, out });
      lowRankAddRef(data.u, data.l, data.out, args);
    },
    matmulLowRank(x, w, u, l, out, args) {
      const data = arrays('matmulLowRank', { x, u, l, out });
      const weight = host.data(w, 'matmulLowRank', true).data; // a frozen base weight may be 16-bit
      matmulLowRankRef(data.x, weight, data.u, data.l, data.out, args);
    },
    adamw(param, grad, m, v, scale, args, n) {
      const data = arrays('adamw', { param, grad, m, v, scale });
      adamwRef(data.param, data.grad, data.m, data.v, data.scale, args, n);
    },
    sumSquares(x, out, n, accumulate) {
      const data = arrays('sumSquares', { x, out });
      sumSquaresRef(data.x, data.out, n, accumulate);
    },
  } satisfies ModelKernels;
}
