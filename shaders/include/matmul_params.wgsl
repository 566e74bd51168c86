// Uniform block and output of the batched matmul kernels (matmul.wgsl, matmul_subgroups.wgsl, matmul_half.wgsl):
// out[b] is contiguous [m, n]; batch strides are element counts (0 broadcasts one matrix).
// With the template token __LOW_RANK__ = 1 (matmulLowRank: batch 1) every store adds the LoRA epilogue
// scale · Σ_j U[row, j]·L(col, j) (L(c, j) = L[c·rank + j], or L[j·n + c] with transL) before writing, so the
// output is written once; rank, transL and scale are unused otherwise.

struct Params {
  m: u32,
  n: u32,
  k: u32,
  batchOffset: u32,
  strideA: u32,
  strideB: u32,
  rank: u32,
  transL: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> outF: array<f32>;

// out[o .. o + 3] = v for the output columns col .. col + 3 that exist (< n); the rest are dropped.
fn storeRow4(o: u32, col: u32, acc: vec4<f32>) {
  var v = acc;
//#unroll lr LOW_RANK
  v = lowRankEpilogue(o / P.n, col, v);
//#end
  if (col < P.n) { outF[o] = v.x; }
  if (col + 1u < P.n) { outF[o + 1u] = v.y; }
  if (col + 2u < P.n) { outF[o + 2u] = v.z; }
  if (col + 3u < P.n) { outF[o + 3u] = v.w; }
}

//#unroll lr LOW_RANK
@group(0) @binding(4) var<storage, read> LowU: array<f32>;
@group(0) @binding(5) var<storage, read> LowL: array<f32>;

fn lowRankL(c: u32, j: u32) -> f32 {
  if (P.transL == 1u) { return LowL[j * P.n + c]; }
  return LowL[c * P.rank + j];
}

// v + scale · Σ_j u[row, j]·L(col .. col+3, j), per lane the fma sequence of low_rank.wgsl (columns past n clamped:
// their results are dropped by the store).
fn lowRankEpilogue(row: u32, col: u32, v: vec4<f32>) -> vec4<f32> {
  let c = min(vec4<u32>(col, col + 1u, col + 2u, col + 3u), vec4<u32>(P.n - 1u));
  var s = vec4<f32>(0.0);
  for (var j = 0u; j < P.rank; j++) {
    s = fma(vec4<f32>(LowU[row * P.rank + j]), vec4<f32>(lowRankL(c.x, j), lowRankL(c.y, j), lowRankL(c.z, j), lowRankL(c.w, j)), s);
  }
  return fma(vec4<f32>(P.scale), s, v);
}
//#end
