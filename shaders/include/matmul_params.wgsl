// Uniform block and output of the batched matmul kernels (matmul.wgsl, matmul_subgroups.wgsl): out[b] is
// contiguous [m, n]; batch strides are element counts (0 broadcasts one matrix).

struct Params {
  m: u32,
  n: u32,
  k: u32,
  batchOffset: u32,
  strideA: u32,
  strideB: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> outF: array<f32>;

// out[o .. o + 3] = v for the output columns col .. col + 3 that exist (< n); the rest are dropped.
fn storeRow4(o: u32, col: u32, v: vec4<f32>) {
  if (col < P.n) { outF[o] = v.x; }
  if (col + 1u < P.n) { outF[o + 1u] = v.y; }
  if (col + 2u < P.n) { outF[o + 2u] = v.z; }
  if (col + 3u < P.n) { outF[o + 3u] = v.w; }
}
