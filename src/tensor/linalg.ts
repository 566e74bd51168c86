// Batched matmul with transposed operands read in place (no copies) and broadcast batch dims.
import { getBackend } from './engine.js';
import { isHalfDType } from '../backend/backend.js';
import { checkInputs, checkWeightInput, empty, record } from './record.js';
import { broadcastShapes, shapeStr } from './shape.js';
import type { Tensor } from './tensor.js';
import { reshape, transpose } from './layout.js';
import { broadcastToRaw, sumToShape } from './raw.js';

export interface MatmulOptions {
  /** Read a as its transpose over the last two axes (a stored [..., k, m]). */
  transA?: boolean;
  /** Read b as its transpose over the last two axes (b stored [..., n, k]). */
  transB?: boolean;
}

/**
 * opA(a) @ opB(b) over the last two axes; leading axes broadcast. b may be a 16-bit (bfloat16 / float16) frozen
 * weight: the kernels widen it to float32 and accumulate in float32 (it never gets a gradient).
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const transA = !!opts.transA;
  const transB = !!opts.transB;
  checkInputs('matmul', [a]);
  checkWeightInput('matmul', b);
  if (a.rank < 2 || b.rank < 2) {
    throw new RangeError(`matmul: operands must have rank ≥ 2, got ${shapeStr(a.shape)} and ${shapeStr(b.shape)}`);
  }
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const m = transA ? ac : ar;
  const k = transA ? ar : ac;
  const kb = transB ? bc : br;
  const n = transB ? br : bc;
  if (k !== kb) {
    throw new RangeError(`matmul: inner dimensions differ: ${shapeStr(a.shape)}${transA ? 'ᵀ' : ''} @ ${shapeStr(b.shape)}${transB ? 'ᵀ' : ''} (${k} vs ${kb})`);
  }
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const batchShape = broadcastShapes('matmul', batchA, batchB);
  const batch = batchShape.reduce((x, y) => x * y, 1);
  const prodA = batchA.reduce((x, y) => x * y, 1);
  const prodB = batchB.reduce((x, y) => x * y, 1);
  // The kernel broadcasts a whole operand (stride 0) or walks both in step; anything else is expanded first.
  const expandedA = prodA === batch || prodA === 1 ? a : broadcastToRaw(a, [...batchShape, ar, ac]);
  const expandedB = prodB === batch || prodB === 1 ? b : broadcastToRaw(b, [...batchShape, br, bc]);
  const out = empty([...batchShape, m, n]);
  // A batch of rows against one shared B (a linear layer on [B, T, d]) is one [batch·m, k] product: same
  // output layout, B packed once and a tall M that splits well over threads.
  const sharedB = prodB === 1 && !transA;
  getBackend().matmul(expandedA.storage, expandedB.storage, out.storage, sharedB
    ? { batch: 1, m: batch * m, n, k, transA, transB, strideA: 0, strideB: 0 }
    : {
      batch, m, n, k, transA, transB,
      strideA: expandedA.size === ar * ac ? 0 : ar * ac,
      strideB: expandedB.size === br * bc ? 0 : br * bc,
    });
  if (expandedA !== a) expandedA.dispose();
  if (expandedB !== b) expandedB.dispose();
  return record('matmul', [a, b], out, [a, b], (g, [sa, sb], needs) => {
    let ga: Tensor | null = null;
    let gb: Tensor | null = null;
    if (needs[0]) {
      // dA = dC·opB(B)ᵀ, laid out like A.
      if (!transA) ga = matmul(g, sb, { transB: !transB });
      else if (!isHalfDType(sb.dtype)) ga = matmul(sb, g, { transA: transB, transB: true });
      else {
        // a 16-bit B can only be the right operand: dAᵀ = dC·opB(B)ᵀ, transposed into A's layout
        const gaT = matmul(g, sb, { transB: !transB });
        ga = transpose(gaT);
        gaT.dispose();
      }
      ga = foldBatch(ga, sa.shape);
    }
    if (needs[1]) {
      if (sharedB) {
        // dB = Σ_batch Aᵀ·dC as one product over the flattened rows, instead of a batch of products summed after.
        gb = empty(sb.shape);
        const rows = batch * m;
        getBackend().matmul(transB ? g.storage : sa.storage, transB ? sa.storage : g.storage, gb.storage, {
          batch: 1, m: transB ? n : k, n: transB ? k : n, k: rows, transA: true, transB: false, strideA: 0, strideB: 0,
        });
      } else {
        // dB = opA(A)ᵀ·dC, laid out like B.
        gb = transB ? matmul(g, sa, { transA: true, transB: transA }) : matmul(sa, g, { transA: !transA });
        gb = foldBatch(gb, sb.shape);
      }
    }
    return [ga, gb];
  });
}

/** Sums a batched gradient over batch axes its operand was broadcast along. */
function foldBatch(g: Tensor, shape: readonly number[]): Tensor {
  if (g.rank === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const summed = sumToShape(g, shape);
  if (summed !== g) g.dispose();
  if (summed.rank !== shape.length) {
    const reshaped = reshape(summed, shape);
    summed.dispose();
    return reshaped;
  }
  return summed;
}
