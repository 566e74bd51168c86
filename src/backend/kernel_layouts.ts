// Named layouts of the parameter blocks the host writes for the kernels (32-bit word offsets), so host code
// says `STRIDED_UNIFORM.shape + d` instead of `8 + d`. scripts/build.mjs reads this file (a leaf module: no
// imports) and generates the AssemblyScript constants of the WASM blocks into engine/ops.gen.ts.

/**
 * The array members of the uniform block of shaders/elementwise.wgsl (its `struct Params`, same field names;
 * scripts/build.mjs fails when the two disagree): shape as 2 vec4 (8 dims), strides as 6 vec4 (8 dims for each
 * of 3 views), the 3 view offsets as one vec4. Its scalar members are written by name through the generated
 * UNIFORM_LAYOUTS.elementwise (webgpu/uniform_params.ts), like every other shader's.
 */
export const STRIDED_UNIFORM = {
  /** shape[d] at shape + d. */
  shape: 8,
  /** stride of view v, dim d at strides + v · viewWords + d. */
  strides: 16,
  viewWords: 8,
  /** offset of view v at offsets + v. */
  offsets: 40,
  /** Dims the block has room for (the host coalesces to at most MAX_RANK first). */
  maxDims: 8,
} as const;

/** Word index of the stride of view `view`, dim `dim` in STRIDED_UNIFORM. */
export function stridedUniformStride(view: number, dim: number): number {
  return STRIDED_UNIFORM.strides + view * STRIDED_UNIFORM.viewWords + dim;
}

/**
 * The i32 strided-view parameter block of the WASM elementwise kernels (engine/common.ts): rank, shape[d] at
 * shape + d, stride of view v, dim d at strides + v · viewWords + d (elements). View offsets are folded into
 * the base pointers the host passes, so the block has none.
 */
export const STRIDED_PARAM_BLOCK = {
  rank: 0,
  shape: 1,
  strides: 8,
  viewWords: 8,
} as const;

/** Word index of the stride of view `view`, dim `dim` in STRIDED_PARAM_BLOCK. */
export function stridedParamStride(view: number, dim: number): number {
  return STRIDED_PARAM_BLOCK.strides + view * STRIDED_PARAM_BLOCK.viewWords + dim;
}

/**
 * The i32 parameter block of the WASM attention kernels (engine/attention.ts, engine/attention_backward.ts):
 * storage addresses first (0 where absent), then the shape arguments; scale holds f32 bits.
 */
export const ATTENTION_PARAM_BLOCK = {
  q: 0, k: 1, v: 2, keyStart: 3, out: 4, lse: 5, gOut: 6, gq: 7, gk: 8, gv: 9, dRow: 10, batch: 11, heads: 12,
  kvHeads: 13, tq: 14, tk: 15, kvStride: 16, headDim: 17, causal: 18, qOffset: 19, scale: 20,
} as const;

/** Words in ATTENTION_PARAM_BLOCK (the host zeroes them all before writing a call's arguments). */
export const ATTENTION_PARAM_WORDS = 21;
