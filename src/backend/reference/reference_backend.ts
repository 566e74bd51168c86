// Plain float64 TypeScript of every kernel: the oracle the product backends are tested against, and the
// backend gradcheck runs on. Clarity over speed; every kernel mirrors the Backend contract literally.
import {
  type AdamWArgs, type AttentionArgs, type Backend, type BinaryOp, type DType, type MatmulArgs, type MemoryStats,
  type RandomArgs, type ReduceOp, type RopeArgs, type Storage, type UnaryOp, type View, KernelError, sizeOf,
} from '../backend.js';
import { type TokenLossArgs, checkTokenLossArgs } from '../model_kernels.js';
import { mix32, normalAt, uniformAt } from '../rng.js';
import {
  adamwRef, attentionBackwardRef, attentionRef, logSoftmaxGatherBackwardRef, logSoftmaxGatherRef, rmsNormBackwardRef,
  rmsNormRef, ropeRef, sumSquaresRef, swigluBackwardRef, swigluRef, tokenLossBackwardRef, tokenLossRef,
} from './model_kernels_ref.js';

class RefStorage implements Storage {
  readonly backend = 'reference' as const;
  disposed = false;
  constructor(readonly dtype: DType, readonly size: number, readonly data: Float64Array) {}
}

export function unaryRef(op: UnaryOp, x: number, s: number): number {
  switch (op) {
    case 'neg': return -x;
    case 'exp': return Math.exp(x);
    case 'log': return Math.log(x);
    case 'sqrt': return Math.sqrt(x);
    case 'rsqrt': return 1 / Math.sqrt(x);
    case 'relu': return x > 0 ? x : 0;
    case 'silu': return x / (1 + Math.exp(-x));
    case 'sigmoid': return 1 / (1 + Math.exp(-x));
    case 'tanh': return Math.tanh(x);
    case 'abs': return Math.abs(x);
    case 'square': return x * x;
    case 'reciprocal': return 1 / x;
    case 'powScalar': return Math.pow(x, s);
    case 'mulScalar': return x * s;
    case 'addScalar': return x + s;
    case 'reluGrad': return x > 0 ? 1 : 0;
    case 'siluGrad': {
      const sg = 1 / (1 + Math.exp(-x));
      return sg * (1 + x * (1 - sg));
    }
    case 'sign': return x > 0 ? 1 : x < 0 ? -1 : 0;
  }
}

export function binaryRef(op: BinaryOp, a: number, b: number): number {
  switch (op) {
    case 'add': return a + b;
    case 'sub': return a - b;
    case 'mul': return a * b;
    case 'div': return a / b;
    case 'max': return Math.max(a, b);
    case 'min': return Math.min(a, b);
    case 'pow': return Math.pow(a, b);
    case 'eq': return a === b ? 1 : 0;
    case 'ne': return a !== b ? 1 : 0;
    case 'lt': return a < b ? 1 : 0;
    case 'le': return a <= b ? 1 : 0;
    case 'gt': return a > b ? 1 : 0;
    case 'ge': return a >= b ? 1 : 0;
  }
}

/** Calls fn(outIndex, offsets...) for each element of `shape`, walking the views' strides. */
function forEachStrided(shape: readonly number[], views: readonly View[], fn: (i: number, offs: number[]) => void): void {
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

export class ReferenceBackend implements Backend {
  readonly name = 'reference' as const;
  private live = 0;
  private peak = 0;
  private buffers = 0;

  describe(): Record<string, unknown> {
    return { precision: 'float64', purpose: 'test oracle' };
  }

  private s(x: Storage, kernel: string): RefStorage {
    if (!(x instanceof RefStorage)) throw new KernelError(kernel, 'storage belongs to another backend');
    if (x.disposed) throw new KernelError(kernel, 'storage was freed');
    return x;
  }

  alloc(dtype: DType, size: number): Storage {
    this.live += size * 4;
    this.buffers++;
    this.peak = Math.max(this.peak, this.live);
    return new RefStorage(dtype, size, new Float64Array(size));
  }

  upload(dtype: DType, data: ArrayLike<number>): Storage {
    const s = this.alloc(dtype, data.length) as RefStorage;
    if (dtype === 'int32') for (let i = 0; i < data.length; i++) s.data[i] = Math.trunc(data[i]) | 0;
    else s.data.set(data);
    return s;
  }

  async read(x: Storage): Promise<Float64Array | Int32Array> {
    const s = this.s(x, 'read');
    return s.dtype === 'int32' ? Int32Array.from(s.data) : s.data.slice();
  }

  free(x: Storage): void {
    const s = this.s(x, 'free');
    s.disposed = true;
    this.live -= s.size * 4;
    this.buffers--;
  }

  memory(): MemoryStats {
    return { liveBytes: this.live, peakBytes: this.peak, liveBuffers: this.buffers };
  }

  async sync(): Promise<void> {}
  destroy(): void {}

  private store(out: RefStorage, i: number, v: number): void {
    out.data[i] = out.dtype === 'int32' ? Math.trunc(v) | 0 : v;
  }

  fill(out: Storage, value: number): void {
    const o = this.s(out, 'fill');
    for (let i = 0; i < o.size; i++) this.store(o, i, value);
  }

  arange(out: Storage, start: number, step: number): void {
    const o = this.s(out, 'arange');
    for (let i = 0; i < o.size; i++) this.store(o, i, start + i * step);
  }

  random(out: Storage, args: RandomArgs): void {
    const o = this.s(out, 'random');
    const key = mix32(args.seed);
    for (let i = 0; i < o.size; i++) {
      o.data[i] = args.kind === 'uniform'
        ? args.a + (args.b - args.a) * uniformAt(key, i)
        : args.a + args.b * normalAt(key, i);
    }
  }

  cast(x: Storage, out: Storage): void {
    const a = this.s(x, 'cast');
    const o = this.s(out, 'cast');
    for (let i = 0; i < o.size; i++) this.store(o, i, a.data[i]);
  }

  unary(op: UnaryOp, x: Storage, xView: View, out: Storage, shape: readonly number[], scalar: number): void {
    const a = this.s(x, `unary.${op}`).data;
    const o = this.s(out, `unary.${op}`);
    forEachStrided(shape, [xView], (i, [ia]) => this.store(o, i, unaryRef(op, a[ia], scalar)));
  }

  binary(op: BinaryOp, a: Storage, aView: View, b: Storage, bView: View, out: Storage, shape: readonly number[]): void {
    const da = this.s(a, `binary.${op}`).data;
    const db = this.s(b, `binary.${op}`).data;
    const o = this.s(out, `binary.${op}`);
    forEachStrided(shape, [aView, bView], (i, [ia, ib]) => this.store(o, i, binaryRef(op, da[ia], db[ib])));
  }

  where(cond: Storage, cView: View, a: Storage, aView: View, b: Storage, bView: View, out: Storage, shape: readonly number[]): void {
    const dc = this.s(cond, 'where').data;
    const da = this.s(a, 'where').data;
    const db = this.s(b, 'where').data;
    const o = this.s(out, 'where');
    forEachStrided(shape, [cView, aView, bView], (i, [ic, ia, ib]) => this.store(o, i, dc[ic] !== 0 ? da[ia] : db[ib]));
  }

  copy(x: Storage, xView: View, out: Storage, outOffset: number, shape: readonly number[]): void {
    const a = this.s(x, 'copy').data;
    const o = this.s(out, 'copy');
    forEachStrided(shape, [xView], (i, [ia]) => this.store(o, outOffset + i, a[ia]));
  }

  reduce(op: ReduceOp, x: Storage, out: Storage, outer: number, len: number, inner: number): void {
    const a = this.s(x, `reduce.${op}`).data;
    const o = this.s(out, `reduce.${op}`);
    for (let p = 0; p < outer; p++) {
      for (let q = 0; q < inner; q++) {
        let acc = op === 'sum' ? 0 : op === 'max' ? -Infinity : Infinity;
        for (let r = 0; r < len; r++) {
          const v = a[(p * len + r) * inner + q];
          acc = op === 'sum' ? acc + v : op === 'max' ? Math.max(acc, v) : Math.min(acc, v);
        }
        this.store(o, p * inner + q, acc);
      }
    }
  }

  matmul(a: Storage, b: Storage, out: Storage, g: MatmulArgs): void {
    const da = this.s(a, 'matmul').data;
    const db = this.s(b, 'matmul').data;
    const o = this.s(out, 'matmul').data;
    const { m, n, k } = g;
    for (let bt = 0; bt < g.batch; bt++) {
      const oa = bt * g.strideA;
      const ob = bt * g.strideB;
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let acc = 0;
          for (let p = 0; p < k; p++) {
            const av = g.transA ? da[oa + p * m + i] : da[oa + i * k + p];
            const bv = g.transB ? db[ob + j * k + p] : db[ob + p * n + j];
            acc += av * bv;
          }
          o[(bt * m + i) * n + j] = acc;
        }
      }
    }
  }

  softmax(x: Storage, out: Storage, rows: number, cols: number, log: boolean): void {
    const a = this.s(x, 'softmax').data;
    const o = this.s(out, 'softmax').data;
    for (let r = 0; r < rows; r++) {
      let mx = -Infinity;
      for (let c = 0; c < cols; c++) mx = Math.max(mx, a[r * cols + c]);
      let sum = 0;
      for (let c = 0; c < cols; c++) sum += Math.exp(a[r * cols + c] - mx);
      const lse = mx + Math.log(sum);
      for (let c = 0; c < cols; c++) {
        o[r * cols + c] = log ? a[r * cols + c] - lse : Math.exp(a[r * cols + c] - lse);
      }
    }
  }

  gather(table: Storage, ids: Storage, out: Storage, nIds: number, rowLen: number): void {
    const t = this.s(table, 'gather');
    const id = this.s(ids, 'gather').data;
    const o = this.s(out, 'gather');
    const rows = t.size / rowLen;
    for (let r = 0; r < nIds; r++) {
      const row = id[r];
      if (row < 0 || row >= rows) throw new KernelError('gather', `index ${row} out of range [0, ${rows})`);
      for (let c = 0; c < rowLen; c++) this.store(o, r * rowLen + c, t.data[row * rowLen + c]);
    }
  }

  scatterAdd(src: Storage, ids: Storage, out: Storage, nIds: number, rowLen: number): void {
    const sr = this.s(src, 'scatterAdd').data;
    const id = this.s(ids, 'scatterAdd').data;
    const o = this.s(out, 'scatterAdd');
    const rows = o.size / rowLen;
    for (let r = 0; r < nIds; r++) {
      const row = id[r];
      if (row < 0 || row >= rows) throw new KernelError('scatterAdd', `index ${row} out of range [0, ${rows})`);
      for (let c = 0; c < rowLen; c++) o.data[row * rowLen + c] += sr[r * rowLen + c];
    }
  }

  // ---------------------------------------------------------------- fused model kernels (model_kernels.ts)

  /** The float64 arrays of storages, each checked to hold at least `min` elements. */
  private arrays(kernel: string, pairs: [Storage, number][]): Float64Array[] {
    return pairs.map(([x, min]) => {
      const st = this.s(x, kernel);
      if (st.size < min) throw new KernelError(kernel, `storage of ${st.size} elements, needs ${min}`);
      return st.data;
    });
  }

  writeView(x: Storage, xView: View, out: Storage, outView: View, shape: readonly number[]): void {
    const a = this.s(x, 'writeView').data;
    const o = this.s(out, 'writeView');
    forEachStrided(shape, [xView, outView], (_i, [ia, io]) => this.store(o, io, a[ia]));
  }

  attention(q: Storage, k: Storage, v: Storage, keyStart: Storage | null, out: Storage, lse: Storage, a: AttentionArgs): void {
    const qn = a.batch * a.heads * a.tq * a.headDim;
    const kn = a.batch * a.kvHeads * a.kvStride * a.headDim;
    const [dq, dk, dv, dout, dlse] = this.arrays('attention', [[q, qn], [k, kn], [v, kn], [out, qn], [lse, qn / a.headDim]]);
    attentionRef(dq, dk, dv, keyStart ? this.arrays('attention', [[keyStart, a.batch]])[0] : null, dout, dlse, a);
  }

  attentionBackward(
    q: Storage, k: Storage, v: Storage, keyStart: Storage | null, out: Storage, lse: Storage, gOut: Storage,
    gq: Storage, gk: Storage, gv: Storage, a: AttentionArgs,
  ): void {
    if (a.kvStride !== a.tk) throw new KernelError('attentionBackward', `kvStride ${a.kvStride} must equal tk ${a.tk}`);
    const qn = a.batch * a.heads * a.tq * a.headDim;
    const kn = a.batch * a.kvHeads * a.tk * a.headDim;
    const [dq, dk, dv, dout, dlse, dg, dgq, dgk, dgv] = this.arrays('attentionBackward', [
      [q, qn], [k, kn], [v, kn], [out, qn], [lse, qn / a.headDim], [gOut, qn], [gq, qn], [gk, kn], [gv, kn],
    ]);
    const ks = keyStart ? this.arrays('attentionBackward', [[keyStart, a.batch]])[0] : null;
    attentionBackwardRef(dq, dk, dv, ks, dout, dlse, dg, dgq, dgk, dgv, a);
  }

  logSoftmaxGather(logits: Storage, targets: Storage, logp: Storage, entropy: Storage, lse: Storage, rows: number, cols: number): void {
    const [x, t, lp, en, ls] = this.arrays('logSoftmaxGather', [[logits, rows * cols], [targets, rows], [logp, rows], [entropy, rows], [lse, rows]]);
    logSoftmaxGatherRef(x, t, lp, en, ls, rows, cols);
  }

  logSoftmaxGatherBackward(
    logits: Storage, targets: Storage, lse: Storage, entropy: Storage, gLogp: Storage, gEntropy: Storage,
    gLogits: Storage, rows: number, cols: number,
  ): void {
    const [x, t, ls, en, gl, ge, gx] = this.arrays('logSoftmaxGatherBackward', [
      [logits, rows * cols], [targets, rows], [lse, rows], [entropy, rows], [gLogp, rows], [gEntropy, rows], [gLogits, rows * cols],
    ]);
    logSoftmaxGatherBackwardRef(x, t, ls, en, gl, ge, gx, rows, cols);
  }

  tokenLoss(logp: Storage, oldLogp: Storage, adv: Storage, weight: Storage, loss: Storage, stats: Storage, n: number, args: TokenLossArgs): void {
    checkTokenLossArgs('tokenLoss', n, args);
    const [lp, old, a, w, l, st] = this.arrays('tokenLoss', [[logp, n], [oldLogp, n], [adv, n], [weight, n], [loss, n], [stats, 3 * n]]);
    tokenLossRef(lp, old, a, w, l, st, n, args);
  }

  tokenLossBackward(
    logp: Storage, oldLogp: Storage, adv: Storage, weight: Storage, gLoss: Storage, gLogp: Storage, n: number, args: TokenLossArgs,
  ): void {
    checkTokenLossArgs('tokenLossBackward', n, args);
    const [lp, old, a, w, gl, g] = this.arrays('tokenLossBackward', [[logp, n], [oldLogp, n], [adv, n], [weight, n], [gLoss, n], [gLogp, n]]);
    tokenLossBackwardRef(lp, old, a, w, gl, g, n, args);
  }

  rmsNorm(x: Storage, weight: Storage, out: Storage, rstd: Storage, rows: number, cols: number, eps: number): void {
    const [dx, w, o, r] = this.arrays('rmsNorm', [[x, rows * cols], [weight, cols], [out, rows * cols], [rstd, rows]]);
    rmsNormRef(dx, w, o, r, rows, cols, eps);
  }

  rmsNormBackward(x: Storage, weight: Storage, rstd: Storage, gOut: Storage, gx: Storage, gWeight: Storage, rows: number, cols: number): void {
    const [dx, w, r, g, gdx, gw] = this.arrays('rmsNormBackward', [
      [x, rows * cols], [weight, cols], [rstd, rows], [gOut, rows * cols], [gx, rows * cols], [gWeight, cols],
    ]);
    rmsNormBackwardRef(dx, w, r, g, gdx, gw, rows, cols);
  }

  rope(x: Storage, positions: Storage, out: Storage, a: RopeArgs): void {
    if (a.headDim % 2 !== 0) throw new KernelError('rope', `headDim ${a.headDim} must be even`);
    const n = a.batch * a.t * a.heads * a.headDim;
    const [dx, pos, o] = this.arrays('rope', [[x, n], [positions, a.batch * a.t], [out, n]]);
    ropeRef(dx, pos, o, a);
  }

  swiglu(gate: Storage, up: Storage, out: Storage, n: number): void {
    const [g, u, o] = this.arrays('swiglu', [[gate, n], [up, n], [out, n]]);
    swigluRef(g, u, o, n);
  }

  swigluBackward(gate: Storage, up: Storage, gOut: Storage, gGate: Storage, gUp: Storage, n: number): void {
    const [g, u, go, gg, gu] = this.arrays('swigluBackward', [[gate, n], [up, n], [gOut, n], [gGate, n], [gUp, n]]);
    swigluBackwardRef(g, u, go, gg, gu, n);
  }

  adamw(param: Storage, grad: Storage, m: Storage, v: Storage, scale: Storage, a: AdamWArgs, n: number): void {
    const [p, g, dm, dv, sc] = this.arrays('adamw', [[param, n], [grad, n], [m, n], [v, n], [scale, 1]]);
    adamwRef(p, g, dm, dv, sc, a, n);
  }

  sumSquares(x: Storage, out: Storage, n: number, accumulate: boolean): void {
    const [dx, o] = this.arrays('sumSquares', [[x, n], [out, 1]]);
    sumSquaresRef(dx, o, n, accumulate);
  }
}
