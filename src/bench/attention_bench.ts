// Fused causal attention, forward and backward kernels, timed on their own (inputs and outputs allocated
// once, outside the timed loop).
//
// FLOP convention (FlashAttention's): the forward is two matmuls per head, S = QKᵀ and O = PV, of 2·T²·D
// each → 4·B·H·T²·D, halved when causal (only the lower triangle is needed). The backward is counted as
// 2.5 × the forward (five matmuls: S recomputed, dV = PᵀdO, dP = dO·Vᵀ, dQ = dS·K, dK = dSᵀQ).
import type { AttentionArgs, Backend } from '../backend/backend.js';
import { setBackend } from '../tensor/engine.js';
import { randUniform, zeros } from '../tensor/creation.js';
import { type BenchOutcome, type TimingOptions, attempt, disposeAll, gflopsOf, timeIt } from './common.js';

/** [batch, heads, T, headDim]. */
export type AttentionShape = readonly [number, number, number, number];

export const ATTENTION_SHAPE: AttentionShape = [4, 4, 256, 64];
/** --quick: one sequence of 128. */
export const ATTENTION_SHAPE_QUICK: AttentionShape = [1, 4, 128, 64];

export function attentionFlops([b, h, t, d]: AttentionShape, pass: 'forward' | 'backward', causal = true): number {
  const forward = (4 * b * h * t * t * d) / (causal ? 2 : 1);
  return pass === 'forward' ? forward : 2.5 * forward;
}

/** Forward and backward records (ops attention_fwd, attention_bwd) of causal attention without GQA. */
export async function benchAttention(backend: Backend, label: string, shape: AttentionShape, opts: TimingOptions = {}): Promise<BenchOutcome[]> {
  setBackend(backend);
  const [batch, heads, t, headDim] = shape;
  const qShape = [batch, heads, t, headDim];
  const q = randUniform(qShape, 21, -1, 1);
  const k = randUniform(qShape, 22, -1, 1);
  const v = randUniform(qShape, 23, -1, 1);
  const gOut = randUniform(qShape, 24, -1, 1);
  const out = zeros(qShape);
  const lse = zeros([batch, heads, t]);
  const gq = zeros(qShape);
  const gk = zeros(qShape);
  const gv = zeros(qShape);
  const args: AttentionArgs = {
    batch, heads, kvHeads: heads, tq: t, tk: t, kvStride: t, headDim, scale: 1 / Math.sqrt(headDim), causal: true, qOffset: 0,
  };
  try {
    const forward = () => backend.kernels.attention(q.storage, k.storage, v.storage, null, out.storage, lse.storage, args);
    const fwd = await attempt('attention_fwd', label, shape, async () => {
      const { ms, runs } = await timeIt(backend, forward, opts);
      return { op: 'attention_fwd', backend: label, shape: [...shape], ms, gflops: gflopsOf(attentionFlops(shape, 'forward'), ms), runs };
    });
    // out and lse now hold the forward's results, which the backward reads (zeros if the forward failed).
    const bwd = await attempt('attention_bwd', label, shape, async () => {
      const { ms, runs } = await timeIt(backend, () => backend.kernels.attentionBackward(
        q.storage, k.storage, v.storage, null, out.storage, lse.storage, gOut.storage, gq.storage, gk.storage, gv.storage, args,
      ), opts);
      return { op: 'attention_bwd', backend: label, shape: [...shape], ms, gflops: gflopsOf(attentionFlops(shape, 'backward'), ms), runs };
    });
    return [fwd, bwd];
  } finally {
    disposeAll([q, k, v, gOut, out, lse, gq, gk, gv]);
  }
}
