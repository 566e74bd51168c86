// A linear layer with a low-rank (LoRA) update as one differentiable op. The rank-r half is the epilogue of the
// matmul (matmulLowRank, contract: ../backend/model_kernels.ts), forward and in the input gradient: the small
// product u (or v) first, then one kernel writes x·Wᵀ + scale·u·Bᵀ, so the [tokens, out] / [tokens, in] result is
// written once and no temporary of that size exists for the low-rank half:
//   forward   u  = xa·Aᵀ [tokens, r],  y  = x·Wᵀ + scale · u·Bᵀ (+ bias)
//   backward  v  = gy·B  [tokens, r],  gx = gy·W + scale · v·A
//             gA = scale · vᵀ·xa, gB = scale · gyᵀ·u, gW = gyᵀ·x, gBias = Σ_rows gy (each only when needed).
import type { MatmulArgs } from '../backend/backend.js';
import { getBackend } from './engine.js';
import { checkInputs, checkWeightInput, empty, record } from './record.js';
import { shapeStr } from './shape.js';
import type { Tensor } from './tensor.js';
import { binaryRaw, unaryRaw } from './raw.js';
import { reshape } from './layout.js';
import { sum } from './reduce.js';

export interface LowRankLinearOptions {
  /** [out], added to x·Wᵀ. */
  bias?: Tensor | null;
  /** The input of the low-rank path when it differs from x (LoRA dropout passes dropout(x)); same shape as x. */
  xa?: Tensor | null;
}

/** out [m, n] = opA(a)·opB(b) as one 2-D product (a [m, k] or [k, m], b [k, n] or [n, k]). */
function product(a: Tensor, b: Tensor, m: number, n: number, k: number, transA: boolean, transB: boolean): Tensor {
  const out = empty([m, n]);
  const args: MatmulArgs = { batch: 1, m, n, k, transA, transB, strideA: 0, strideB: 0 };
  getBackend().matmul(a.storage, b.storage, out.storage, args);
  return out;
}

function fail(message: string): never {
  throw new RangeError(`lowRankLinear: ${message}`);
}

/**
 * y = x·Wᵀ (+ bias) + scale · (xa·Aᵀ)·Bᵀ over the last axis of x [..., in], with W [out, in], A [r, in],
 * B [out, r]; xa defaults to x. Gradients flow to every input that tracks them (a frozen W gets none).
 */
export function lowRankLinear(x: Tensor, w: Tensor, a: Tensor, b: Tensor, scale: number, opts: LowRankLinearOptions = {}): Tensor {
  const bias = opts.bias ?? null;
  const xa = opts.xa ?? null;
  const inputs = [x, w, a, b, ...(bias ? [bias] : []), ...(xa ? [xa] : [])];
  checkInputs('lowRankLinear', inputs.filter((t) => t !== w));
  checkWeightInput('lowRankLinear', w); // a frozen base weight may be 16-bit
  if (x.rank < 1 || w.rank !== 2 || a.rank !== 2 || b.rank !== 2) {
    fail(`x must be [..., in] and W, A, B matrices, got x ${shapeStr(x.shape)}, W ${shapeStr(w.shape)}, A ${shapeStr(a.shape)}, B ${shapeStr(b.shape)}`);
  }
  const [outF, inF] = w.shape;
  const r = a.shape[0];
  const problems: string[] = [];
  if (x.shape[x.rank - 1] !== inF) problems.push(`x ${shapeStr(x.shape)} must end with W's in = ${inF}`);
  if (a.shape[1] !== inF) problems.push(`A ${shapeStr(a.shape)} must be [r, ${inF}]`);
  if (b.shape[0] !== outF || b.shape[1] !== r) problems.push(`B ${shapeStr(b.shape)} must be [${outF}, ${r}]`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== outF)) problems.push(`bias ${shapeStr(bias.shape)} must be [${outF}]`);
  if (xa && (xa.rank !== x.rank || xa.shape.some((d, i) => d !== x.shape[i]))) problems.push(`xa ${shapeStr(xa.shape)} must have x's shape ${shapeStr(x.shape)}`);
  if (!Number.isFinite(scale)) problems.push(`scale must be finite, got ${scale}`);
  if (problems.length) fail(problems.join('; '));

  const rows = x.size / inF;
  const outShape = [...x.shape.slice(0, -1), outF];
  const kernels = getBackend().kernels;
  const lowInput = xa ?? x;
  const u = product(lowInput, a, rows, r, inF, false, true);
  let y = empty([rows, outF]);
  kernels.matmulLowRank(x.storage, w.storage, u.storage, b.storage, y.storage,
    { rows, cols: outF, inner: inF, rank: r, scale, transL: false, transB: true });
  if (bias) {
    const biased = binaryRaw('add', y, bias);
    y.dispose();
    y = biased;
  }
  const out = reshape(y, outShape);
  if (out !== y) y.dispose();

  const saved = [x, w, a, b, u, ...(xa ? [xa] : [])];
  const result = record('lowRankLinear', inputs, out, saved, (g, [sx, sw, sa, sb, su, sxa], needs) => {
    const [needX, needW, needA, needB] = needs;
    const needBias = bias ? needs[4] : false;
    const needXa = xa ? needs[inputs.length - 1] : false;
    const lowX = sxa ?? sx;
    // v = gy·B [rows, r]: shared by the input gradient(s) and A's.
    const v = needX || needA || needXa ? product(g, sb, rows, r, outF, false, false) : null;
    let gx: Tensor | null = null;
    let gxa: Tensor | null = null;
    if (needX && xa) gx = product(g, sw, rows, inF, outF, false, false); // dropout: the low-rank half goes to xa
    else if (needX) {
      gx = empty([rows, inF]);
      kernels.matmulLowRank(g.storage, sw.storage, v!.storage, sa.storage, gx.storage,
        { rows, cols: inF, inner: outF, rank: r, scale, transL: true, transB: false });
    }
    if (needXa) {
      gxa = product(v!, sa, rows, inF, r, false, false);
      const scaled = unaryRaw('mulScalar', gxa, scale);
      gxa.dispose();
      gxa = scaled;
    }
    const scaledProduct = (p: Tensor): Tensor => {
      const scaled = unaryRaw('mulScalar', p, scale);
      p.dispose();
      return scaled;
    };
    const gw = needW ? product(g, sx, outF, inF, rows, true, false) : null;
    const ga = needA ? scaledProduct(product(v!, lowX, r, inF, rows, true, false)) : null;
    const gb = needB ? scaledProduct(product(g, su, outF, r, rows, true, false)) : null;
    let gBias: Tensor | null = null;
    if (needBias) {
      const g2 = reshape(g, [rows, outF]);
      gBias = sum(g2, { axis: 0 });
      g2.dispose();
    }
    v?.dispose();
    const shaped = (t: Tensor | null) => {
      if (!t) return null;
      const view = reshape(t, x.shape);
      if (view !== t) t.dispose();
      return view;
    };
    return [shaped(gx), gw, ga, gb, ...(bias ? [gBias] : []), ...(xa ? [shaped(gxa)] : [])];
  });
  u.dispose();
  return result;
}
