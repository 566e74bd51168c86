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
