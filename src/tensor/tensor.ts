// Tensor: a shape and dtype over a reference-counted backend storage. Tensors are always contiguous
// row-major; reshape shares the storage, other layout changes copy through a strided kernel.
import { type Backend, type DType, DTYPES, type Storage, sizeOf } from '../backend/backend.js';
import type { TapeNode } from '../autograd/tape.js';
import { getBackend, nextTensorId, registerTensorGuard, trackTensor, untrackTensor } from './engine.js';

/** A backend storage shared by every tensor (and saved autograd input) that views it. */
export class SharedStorage {
  private refs = 1;
  constructor(readonly backend: Backend, readonly storage: Storage) {}

  retain(): this {
    if (this.refs <= 0) throw new Error('internal: retain of a released storage');
    this.refs++;
    return this;
  }

  release(): void {
    if (--this.refs === 0) this.backend.free(this.storage);
  }

  get released(): boolean {
    return this.refs <= 0;
  }
}

export function checkDType(dtype: string): DType {
  if (!(DTYPES as readonly string[]).includes(dtype)) {
    throw new TypeError(`unsupported dtype '${dtype}' (supported: ${DTYPES.join(', ')})`);
  }
  return dtype as DType;
}

export function checkShape(shape: readonly number[], what = 'shape'): number[] {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`invalid ${what} [${shape.join(', ')}]: dimensions must be non-negative integers`);
  }
  return [...shape];
}

export class Tensor {
  readonly id = nextTensorId();
  readonly shape: readonly number[];
  readonly size: number;
  /** Set when this tensor is a leaf whose gradient should be accumulated into `.grad`. */
  requiresGrad = false;
  grad: Tensor | null = null;
  /** The autograd node that produced this tensor (null for leaves and no-grad results). */
  gradFn: TapeNode<Tensor> | null = null;
  private disposed = false;
  name?: string;

  constructor(readonly data: SharedStorage, shape: readonly number[], readonly dtype: DType) {
    this.shape = Object.freeze([...shape]);
    this.size = sizeOf(shape);
    if (this.size > data.storage.size) {
      throw new Error(`internal: tensor of shape [${shape}] over storage of ${data.storage.size} elements`);
    }
    trackTensor(this);
  }

  static fromStorage(storage: Storage, shape: readonly number[], dtype: DType, backend: Backend = getBackend()): Tensor {
    return new Tensor(new SharedStorage(backend, storage), shape, dtype);
  }

  get rank(): number {
    return this.shape.length;
  }

  get backend(): Backend {
    return this.data.backend;
  }

  get storage(): Storage {
    this.assertAlive('storage');
    return this.data.storage;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** True when gradients flow through this tensor (a grad-requiring leaf or the output of a recorded op). */
  get tracksGrad(): boolean {
    return this.requiresGrad || this.gradFn !== null;
  }

  assertAlive(op: string): void {
    if (this.disposed) {
      throw new Error(`${op}: tensor #${this.id}${this.name ? ` '${this.name}'` : ''} [${this.shape.join(', ')}] was disposed`);
    }
  }

  /** Marks this leaf as trainable: backward() accumulates into `.grad`. */
  requireGrad(flag = true): this {
    if (this.gradFn) throw new Error('requireGrad: only leaf tensors can require grad (this one was computed by an op)');
    if (flag && this.dtype !== 'float32') throw new TypeError(`requireGrad: only float32 tensors can require grad, got ${this.dtype}`);
    this.requiresGrad = flag;
    return this;
  }

  /** Copies the contents to the host (the only asynchronous tensor operation). */
  async read(): Promise<Float32Array | Int32Array | Float64Array> {
    this.assertAlive('read');
    const all = await this.data.backend.read(this.data.storage);
    return all.length === this.size ? all : all.subarray(0, this.size);
  }

  /** Contents as a float64 JS array (convenient in tests and metrics). */
  async toArray(): Promise<number[]> {
    return Array.from(await this.read());
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item: tensor has ${this.size} elements, expected 1`);
    return (await this.read())[0];
  }

  /** Frees this tensor's hold on its storage (and its graph node). Safe to call twice. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    untrackTensor(this);
    this.data.release();
    if (this.gradFn) {
      this.gradFn.release();
      this.gradFn = null;
    }
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  toString(): string {
    return `Tensor#${this.id}(${this.dtype}, [${this.shape.join(', ')}]${this.disposed ? ', disposed' : ''})`;
  }
}

export function isTensor(v: unknown): v is Tensor {
  return v instanceof Tensor;
}

registerTensorGuard(isTensor);
