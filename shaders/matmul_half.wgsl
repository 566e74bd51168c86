// Batched matmul with a 16-bit B (frozen bfloat16 / float16 weights): the tiled and direct kernels of
// matmul.wgsl (include/matmul_kernels.wgsl) reading B as 16-bit elements packed two per u32 word and widening
// each on load; A, the staging tiles and the accumulation stay f32. Template tokens: those of matmul.wgsl plus
// __HALF__ (1 bfloat16, 2 float16).

//#include matmul_params.wgsl
@group(0) @binding(2) var<storage, read> A: array<f32>;
@group(0) @binding(3) var<storage, read> B: array<u32>;

//#include half_widen.wgsl

const HALF: u32 = __HALF__u;

fn readB(i: u32) -> f32 { return widenHalf(HALF, halfBits(B[i >> 1u], i)); }

//#include matmul_kernels.wgsl
