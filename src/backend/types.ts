// The types every backend module shares: storages, views, kernel argument structs, KernelError and the
// shape helpers. Both backend.ts (the Backend interface) and model_kernels.ts (the fused-kernel contract)
// import from here, so neither imports the other.

/**
 * Element types. 'bfloat16' and 'float16' hold frozen weights (2 bytes an element, two packed per 32-bit word,
 * element 2i in the low half; an odd count is padded): only matmul's B operand, the gather table, a cast to
 * float32 and read accept them, widening to float32 exactly and accumulating in float32.
 */
export type DType = 'float32' | 'int32' | 'bfloat16' | 'float16';
export type HalfDType = 'bfloat16' | 'float16';
export const DTYPES: readonly DType[] = ['float32', 'int32', 'bfloat16', 'float16'];
export const HALF_DTYPES: readonly HalfDType[] = ['bfloat16', 'float16'];
export const BYTES_PER_ELEMENT: Record<DType, number> = { float32: 4, int32: 4, bfloat16: 2, float16: 2 };

export function isHalfDType(dtype: DType): dtype is HalfDType {
  return dtype === 'bfloat16' || dtype === 'float16';
}

/** Bytes a storage of `size` elements occupies (16-bit dtypes round up to whole 32-bit words). */
export function storageBytes(dtype: DType, size: number): number {
  return isHalfDType(dtype) ? Math.ceil(size / 2) * 4 : size * 4;
}

/** The error every kernel but matmul (B), gather (table), cast (to float32) and read gives a 16-bit storage. */
export function halfStorageMessage(dtype: DType): string {
  return `${dtype} storage is only accepted as matmul's B operand, gather's table, the input of a cast to float32 and by read `
    + '(16-bit dtypes hold frozen weights; widen with a cast to float32 first)';
}

export type BackendName = 'webgpu' | 'wasm' | 'reference';

/** Opaque handle to a backend allocation of `size` elements of `dtype`. */
export interface Storage {
  readonly backend: BackendName;
  readonly dtype: DType;
  readonly size: number;
}

/** Highest tensor rank the strided kernels accept. */
export const MAX_RANK = 6;

/**
 * A strided view used by elementwise kernels: element at multi-index i of the output shape reads
 * `offset + Σ i[d]·strides[d]`. A stride of 0 broadcasts; arbitrary strides express permute and slice.
 */
export interface View {
  readonly strides: readonly number[];
  readonly offset: number;
}

export interface MatmulArgs {
  /** Number of independent matrix products. */
  batch: number;
  m: number;
  n: number;
  k: number;
  /** a is stored [k, m] (per batch) and read transposed. */
  transA: boolean;
  /** b is stored [n, k] (per batch) and read transposed. */
  transB: boolean;
  /** Element strides between consecutive batches of a and b (0 broadcasts one matrix over the batch). */
  strideA: number;
  strideB: number;
}

export interface RandomArgs {
  kind: 'uniform' | 'normal';
  seed: number;
  /** uniform: [low, high); normal: mean, std. */
  a: number;
  b: number;
}

export interface MemoryStats {
  liveBytes: number;
  peakBytes: number;
  liveBuffers: number;
}

/**
 * Scaled dot-product attention over a batch of sequences, with grouped-query heads.
 * Layouts: q, out [batch, heads, tq, headDim]; k, v [batch, kvHeads, kvStride, headDim] of which rows
 * [0, tk) are used (a KV cache allocates kvStride = maxSeqLen rows); lse [batch, heads, tq].
 * Query head h reads kv head floor(h / (heads / kvHeads)).
 * Query row i sits at absolute position qOffset + i. Key j of sequence b is visible to it when
 *   j < tk, j ≥ keyStart[b] (left padding; keyStart absent = 0), and, if causal, j ≤ qOffset + i.
 * s_j = scale · q_i · k_j; lse_i = log Σ_visible exp(s_j); out_i = Σ_visible exp(s_j − lse_i) · v_j.
 * A row with no visible key gets out_i = 0 and lse_i = +Infinity (so exp(s − lse) = 0 in the backward).
 */
export interface AttentionArgs {
  batch: number;
  heads: number;
  kvHeads: number;
  tq: number;
  tk: number;
  kvStride: number;
  headDim: number;
  scale: number;
  causal: boolean;
  qOffset: number;
}

/**
 * Rotary position embedding (Llama / Hugging Face "rotate_half" convention) over x [batch, t, heads, headDim]
 * with positions int32 [batch, t]. For j < headDim/2, with f_j = inverseFrequencies[j] when given, else
 * theta^(−2j/headDim), and a = pos·f_j (−a when inverse, which is the backward):
 *   out[j] = x[j]·cos a − x[j + headDim/2]·sin a;  out[j + headDim/2] = x[j + headDim/2]·cos a + x[j]·sin a.
 */
export interface RopeArgs {
  batch: number;
  t: number;
  heads: number;
  headDim: number;
  theta: number;
  inverse: boolean;
  /**
   * Per-pair inverse frequencies [headDim/2] (scaled RoPE), used instead of theta^(−2j/headDim) when given.
   * A host array, not a storage: the kernels reduce angles exactly from float64 frequencies on the host side.
   */
  inverseFrequencies?: Float64Array | null;
}

/**
 * The low-rank update of a LoRA projection, added in place over rows × cols:
 *   out[i, c] += scale · Σ_{j<rank} u[i, j] · L(c, j),
 * with L(c, j) = l[c·rank + j] (l stored [cols, rank], e.g. B [out, r] in the forward) or, with transL,
 * L(c, j) = l[j·cols + c] (l stored [rank, cols], e.g. A [r, in] in the input gradient).
 */
export interface LowRankArgs {
  rows: number;
  cols: number;
  rank: number;
  scale: number;
  transL: boolean;
}

/**
 * A 2-D product with the low-rank update as its epilogue (matmulLowRank): out [rows, cols] =
 * x [rows, inner] · op(w) + scale · u [rows, rank] · op(l), op(w) = w [inner, cols] or, with transB, w stored
 * [cols, inner] read transposed (w may be a 16-bit storage); op(l) as in LowRankArgs.
 */
export interface MatmulLowRankArgs extends LowRankArgs {
  inner: number;
  transB: boolean;
}

/**
 * Decoupled AdamW (PyTorch semantics), in place over n elements, with the gradient multiplied by scale[0]
 * (a 1-element float32 storage, so clipping needs no readback):
 *   g = grad·scale[0]; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
 *   param = param·(1 − lr·weightDecay) − lr · (m / (1 − β1^step)) / (sqrt(v / (1 − β2^step)) + eps).
 */
export interface AdamWArgs {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step count for bias correction. */
  step: number;
}

/**
 * The clipped policy-gradient token loss of PPO / GRPO / DAPO. Per token i < n, with C = logRatioClamp:
 *   d = clamp(logp − oldLogp, −C, C); r = exp(d); A = adv;
 *   l1 = −A·r; l2 = −A·clamp(r, 1 − epsLow, 1 + epsHigh); l = max(l1, l2);
 *   if dualClip > 0 and A < 0: l = min(l, −A·dualClip);
 *   loss[i] = weight[i]·l.
 * epsLow ≠ epsHigh is DAPO's Clip-Higher; dualClip c > 1 bounds the loss of negative-advantage tokens.
 */
export interface TokenLossArgs {
  epsLow: number;
  epsHigh: number;
  /** c > 1 enables dual-clip for A < 0; 0 = off. */
  dualClip: number;
  /** The log-ratio is clamped to ±this before exp (e.g. 20). */
  logRatioClamp: number;
}

/** Error raised by a backend kernel, naming the kernel so failures are traceable. */
export class KernelError extends Error {
  constructor(readonly kernel: string, message: string) {
    super(`kernel '${kernel}': ${message}`);
    this.name = 'KernelError';
  }
}

/** Contiguous row-major strides of a shape. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let stride = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = stride;
    stride *= shape[d];
  }
  return strides;
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function contiguousView(shape: readonly number[]): View {
  return { strides: contiguousStrides(shape), offset: 0 };
}

/** Largest element offset a view reaches over `shape` (every dim of shape at least 1). */
export function viewExtent(view: View, shape: readonly number[]): number {
  let max = view.offset;
  for (let d = 0; d < shape.length; d++) max += (shape[d] - 1) * view.strides[d];
  return max;
}

/**
 * Collapses adjacent dimensions that are contiguous in every view, so kernels run fewer index
 * computations (a fully contiguous elementwise op becomes rank 1). Returns the reduced shape and views.
 */
export function coalesce(shape: readonly number[], views: readonly View[]): { shape: number[]; views: View[] } {
  const outShape: number[] = [];
  const outStrides: number[][] = views.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && views.every((v, i) => outStrides[i][last] === v.strides[d] * shape[d])) {
      outShape[last] *= shape[d];
      views.forEach((v, i) => { outStrides[i][last] = v.strides[d]; });
    } else {
      outShape.push(shape[d]);
      views.forEach((v, i) => outStrides[i].push(v.strides[d]));
    }
  }
  if (outShape.length === 0) {
    outShape.push(1);
    outStrides.forEach((strides) => strides.push(1));
  }
  return { shape: outShape, views: views.map((v, i) => ({ strides: outStrides[i], offset: v.offset })) };
}
