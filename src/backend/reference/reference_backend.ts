// Plain float64 TypeScript of every kernel: the oracle the product backends are tested against, and the
// backend gradcheck runs on. Clarity over speed; every kernel mirrors the Backend contract literally.
import type { Backend, BinaryOp, ReduceOp, UnaryOp } from '../backend.js';
import { type ModelKernels, validatedKernels } from '../model_kernels.js';
import { mix32, normalAt, uniformAt } from '../rng.js';
import { roundToHalf } from '../half.js';
import {
  type DType, KernelError, type MatmulArgs, type MemoryStats, type RandomArgs, type Storage, type View, halfStorageMessage, isHalfDType,
  storageBytes,
} from '../types.js';
import { referenceModelKernels } from './model_kernels_ref.js';
import { forEachStrided } from './strided.js';

/** Elements per tensor the reference backend allocates (float64: 2 GiB). */
export const REFERENCE_MAX_ELEMENTS = 2 ** 28;

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;

class RefStorage implements Storage {
  readonly backend = 'reference' as const;
  disposed = false;
  constructor(readonly dtype: DType, readonly size: number, readonly data: Float64Array) {}
}

export function unaryRef(op: UnaryOp, x: number, scalar: number): number {
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
    case 'powScalar': return Math.pow(x, scalar);
    case 'mulScalar': return x * scalar;
    case 'addScalar': return x + scalar;
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

export class ReferenceBackend implements Backend {
  readonly name = 'reference' as const;
  private live = 0;
  private peak = 0;
  private buffers = 0;

  describe(): Record<string, unknown> {
    return { precision: 'float64', purpose: 'test oracle' };
  }

  readonly kernels: ModelKernels = validatedKernels(referenceModelKernels({ data: (x, kernel, acceptHalf) => this.own(x, kernel, acceptHalf) }));

  /** The storage as this backend's own, live one; 16-bit storages only where `acceptHalf` says the kernel takes them. */
  private own(x: Storage, kernel: string, acceptHalf = false): RefStorage {
    if (!(x instanceof RefStorage)) throw new KernelError(kernel, 'storage belongs to another backend');
    if (x.disposed) throw new KernelError(kernel, 'storage was freed');
    if (!acceptHalf && isHalfDType(x.dtype)) throw new KernelError(kernel, halfStorageMessage(x.dtype));
    return x;
  }

  alloc(dtype: DType, size: number): Storage {
    if (size > REFERENCE_MAX_ELEMENTS) {
      // Refused before allocating: a float64 array this large takes a minute to fill, or fails with a raw
      // "Invalid typed array length".
      throw new KernelError('alloc', `the reference backend holds at most ${REFERENCE_MAX_ELEMENTS} (2^28) elements per tensor `
        + `(${gib(REFERENCE_MAX_ELEMENTS * 8)} as float64); this one has ${size} elements (${gib(size * 8)}). It is the float64 test `
        + 'oracle: use the wasm or webgpu backend for tensors this large');
    }
    this.live += storageBytes(dtype, size);
    this.buffers++;
    this.peak = Math.max(this.peak, this.live);
    return new RefStorage(dtype, size, new Float64Array(size));
  }

  upload(dtype: DType, data: ArrayLike<number>): Storage {
    const storage = this.alloc(dtype, data.length) as RefStorage;
    if (dtype === 'int32') for (let i = 0; i < data.length; i++) storage.data[i] = Math.trunc(data[i]) | 0;
    else if (isHalfDType(dtype)) storage.data.set(roundToHalf(dtype, data)); // widened, rounded as the format does
    else storage.data.set(data);
    return storage;
  }

  async read(x: Storage): Promise<Float64Array | Int32Array> {
    const storage = this.own(x, 'read', true);
    return storage.dtype === 'int32' ? Int32Array.from(storage.data) : storage.data.slice();
  }

  free(x: Storage): void {
    const storage = this.own(x, 'free', true);
    storage.disposed = true;
    this.live -= storageBytes(storage.dtype, storage.size);
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
    const target = this.own(out, 'fill');
    for (let i = 0; i < target.size; i++) this.store(target, i, value);
  }

  arange(out: Storage, start: number, step: number): void {
    const target = this.own(out, 'arange');
    for (let i = 0; i < target.size; i++) this.store(target, i, start + i * step);
  }

  random(out: Storage, args: RandomArgs): void {
    const target = this.own(out, 'random');
    const key = mix32(args.seed);
    for (let i = 0; i < target.size; i++) {
      target.data[i] = args.kind === 'uniform'
        ? args.a + (args.b - args.a) * uniformAt(key, i)
        : args.a + args.b * normalAt(key, i);
    }
  }

  cast(x: Storage, out: Storage): void {
    const source = this.own(x, 'cast', true);
    const target = this.own(out, 'cast');
    if (isHalfDType(source.dtype) && target.dtype !== 'float32') throw new KernelError('cast', `${source.dtype} casts to float32 only, not ${target.dtype}`);
    for (let i = 0; i < target.size; i++) this.store(target, i, source.data[i]);
  }

  unary(op: UnaryOp, x: Storage, xView: View, out: Storage, shape: readonly number[], scalar: number): void {
    const xData = this.own(x, `unary.${op}`).data;
    const target = this.own(out, `unary.${op}`);
    forEachStrided(shape, [xView], (i, [ia]) => this.store(target, i, unaryRef(op, xData[ia], scalar)));
  }

  binary(op: BinaryOp, a: Storage, aView: View, b: Storage, bView: View, out: Storage, shape: readonly number[]): void {
    const aData = this.own(a, `binary.${op}`).data;
    const bData = this.own(b, `binary.${op}`).data;
    const target = this.own(out, `binary.${op}`);
    forEachStrided(shape, [aView, bView], (i, [ia, ib]) => this.store(target, i, binaryRef(op, aData[ia], bData[ib])));
  }

  where(cond: Storage, cView: View, a: Storage, aView: View, b: Storage, bView: View, out: Storage, shape: readonly number[]): void {
    const condData = this.own(cond, 'where').data;
    const aData = this.own(a, 'where').data;
    const bData = this.own(b, 'where').data;
    const target = this.own(out, 'where');
    forEachStrided(shape, [cView, aView, bView], (i, [ic, ia, ib]) => this.store(target, i, condData[ic] !== 0 ? aData[ia] : bData[ib]));
  }

  copy(x: Storage, xView: View, out: Storage, outOffset: number, shape: readonly number[]): void {
    const xData = this.own(x, 'copy').data;
    const target = this.own(out, 'copy');
    forEachStrided(shape, [xView], (i, [ia]) => this.store(target, outOffset + i, xData[ia]));
  }

  reduce(op: ReduceOp, x: Storage, out: Storage, outer: number, len: number, inner: number): void {
    const xData = this.own(x, `reduce.${op}`).data;
    const target = this.own(out, `reduce.${op}`);
    for (let p = 0; p < outer; p++) {
      for (let q = 0; q < inner; q++) {
        let acc = op === 'sum' ? 0 : op === 'max' ? -Infinity : Infinity;
        for (let r = 0; r < len; r++) {
          const v = xData[(p * len + r) * inner + q];
          acc = op === 'sum' ? acc + v : op === 'max' ? Math.max(acc, v) : Math.min(acc, v);
        }
        this.store(target, p * inner + q, acc);
      }
    }
  }

  matmul(a: Storage, b: Storage, out: Storage, args: MatmulArgs): void {
    const aData = this.own(a, 'matmul').data;
    const bData = this.own(b, 'matmul', true).data;
    const outData = this.own(out, 'matmul').data;
    const { m, n, k } = args;
    for (let bt = 0; bt < args.batch; bt++) {
      const aOffset = bt * args.strideA;
      const bOffset = bt * args.strideB;
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let acc = 0;
          for (let p = 0; p < k; p++) {
            const av = args.transA ? aData[aOffset + p * m + i] : aData[aOffset + i * k + p];
            const bv = args.transB ? bData[bOffset + j * k + p] : bData[bOffset + p * n + j];
            acc += av * bv;
          }
          outData[(bt * m + i) * n + j] = acc;
        }
      }
    }
  }

  softmax(x: Storage, out: Storage, rows: number, cols: number, log: boolean): void {
    const xData = this.own(x, 'softmax').data;
    const outData = this.own(out, 'softmax').data;
    for (let r = 0; r < rows; r++) {
      let rowMax = -Infinity;
      for (let c = 0; c < cols; c++) rowMax = Math.max(rowMax, xData[r * cols + c]);
      let sum = 0;
      for (let c = 0; c < cols; c++) sum += Math.exp(xData[r * cols + c] - rowMax);
      const lse = rowMax + Math.log(sum);
      for (let c = 0; c < cols; c++) {
        outData[r * cols + c] = log ? xData[r * cols + c] - lse : Math.exp(xData[r * cols + c] - lse);
      }
    }
  }

  gather(table: Storage, ids: Storage, out: Storage, nIds: number, rowLen: number): void {
    const tableStorage = this.own(table, 'gather', true);
    const idData = this.own(ids, 'gather').data;
    const target = this.own(out, 'gather');
    const rows = tableStorage.size / rowLen;
    for (let r = 0; r < nIds; r++) {
      const row = idData[r];
      if (row < 0 || row >= rows) throw new KernelError('gather', `index ${row} out of range [0, ${rows})`);
      for (let c = 0; c < rowLen; c++) this.store(target, r * rowLen + c, tableStorage.data[row * rowLen + c]);
    }
  }

  scatterAdd(src: Storage, ids: Storage, out: Storage, nIds: number, rowLen: number): void {
    const srcData = this.own(src, 'scatterAdd').data;
    const idData = this.own(ids, 'scatterAdd').data;
    const target = this.own(out, 'scatterAdd');
    const rows = target.size / rowLen;
    for (let r = 0; r < nIds; r++) {
      const row = idData[r];
      if (row < 0 || row >= rows) throw new KernelError('scatterAdd', `index ${row} out of range [0, ${rows})`);
      for (let c = 0; c < rowLen; c++) target.data[row * rowLen + c] += srcData[r * rowLen + c];
    }
  }
}
