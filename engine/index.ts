// Entry point of the AssemblyScript engine: re-exports every kernel family.
// Memory is imported (shared, owned by the host); the engine never allocates.
export { fill32, arange_f32, arange_i32, cast_f32_i32, cast_i32_f32, unary, binary, where, copy32 } from './elementwise';
export { reduce } from './reduce';
export { matmul, matmul_scratch_bytes, matmul_mr, matmul_nr } from './matmul';
export { softmax } from './softmax';
export { gather, scatter_add } from './embedding';
export { random_uniform, random_normal, random_bits, rng_key } from './random';

export function heap_base(): usize { return __heap_base; }
