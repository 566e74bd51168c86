// Entry point of the AssemblyScript engine: re-exports every kernel family.
// Memory is imported (shared, owned by the host); the engine never allocates.
export { fill32, arange_f32, arange_i32, cast_f32_i32, cast_i32_f32, unary, binary, where, copy32, write_view32 } from './elementwise';
export { reduce } from './reduce';
export { matmul, matmul_half, matmul_low_rank, matmul_half_low_rank, matmul_ksplit, matmul_ksplit_sum, matmul_scratch_bytes, matmul_mr, matmul_nr, matmul_skinny_m, matmul_skinny_nb } from './matmul';
export { softmax } from './softmax';
export { gather, scatter_add } from './embedding';
export { widen_half, gather_half } from './half';
export { random_uniform, random_normal, random_bits, rng_key } from './random';
export { attention_fwd, attention_bq } from './attention';
export { attention_bwd, attention_bkv } from './attention_backward';
export { tiles_ch } from './tiles';
export { log_softmax_gather, log_softmax_gather_bwd } from './softmax_gather';
export { sample_rows } from './sample_rows';
export { rms_norm, rms_norm_bwd_rows, rms_norm_bwd_weight } from './norm';
export { rope } from './rope';
export { swiglu, swiglu_bwd } from './swiglu';
export { token_loss, token_loss_bwd } from './token_loss';
export { low_rank_add } from './low_rank';
export { adamw, sum_squares_partial, sum_squares_finish, sum_squares_chunk } from './adamw';

export function heap_base(): usize { return __heap_base; }
