// Batched matmul out[b] = opA(a[b]) · opB(b[b]), out contiguous [batch, m, n].
// opA: a stored [m, k] (TRANS_A = 0) or [k, m] (TRANS_A = 1); opB: b stored [k, n] or [n, k] (TRANS_B = 1).
// Batch strides strideA / strideB are element counts (0 broadcasts one matrix).
//
// Register-blocked tiles: a workgroup of WX × WY invocations computes a BM × BN tile (BM = WY·TM,
// BN = WX·4); each invocation accumulates TM rows × 4 columns (one vec4 per row). A and B tiles of depth
// BK are staged in workgroup memory (A as [BK][BM], B as [BK][BN/4] vec4), loaded with bounds checks, so
// any m, n, k works; transposes change only the staging loads. Template tokens: __WX__ __WY__ __TM__
// __BK__ __TRANS_A__ __TRANS_B__.

//#include matmul_params.wgsl
@group(0) @binding(2) var<storage, read> A: array<f32>;
@group(0) @binding(3) var<storage, read> B: array<f32>;

// Element i of B (matmul_half.wgsl widens a 16-bit B here instead).
fn readB(i: u32) -> f32 { return B[i]; }

//#include matmul_kernels.wgsl

// ---------------------------------------------------------------------------------------------------------
// matmul_direct4: matmul_direct with vec4 loads, k unrolled by 4 and the TM rows unrolled by the host
// (`//#unroll i TM` … `//#end` repeats the block with {i} = 0 … TM-1), so accumulators are plain registers.
// The host picks it only when every vec4 read is aligned and in bounds: k % 4 == 0, strideB % 4 == 0,
// strideA % 4 == 0, and n % 4 == 0 unless TRANS_B. Rows / columns past the edge are clamped (reads stay in
// bounds) and their results dropped. Grid x walks row blocks and y column strips, so consecutive
// workgroups reuse one strip of B from the CPU cache.

//#include matmul_vec4_loads.wgsl

@compute @workgroup_size(WX)
fn matmul_direct4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
//#include matmul_vec4_setup.wgsl
  let mLast = P.m - 1u;
//#unroll i TM
  var acc_{i} = vec4<f32>(0.0);
  let rw_{i} = min(row0 + {i}u, mLast);
//#end
  let s = P.n / 4u;
  for (var p = 0u; p < P.k; p += 4u) {
//#unroll i TM
    let a_{i} = loadArow(baseA, rw_{i}, p);
//#end
//#include matmul_vec4_steps.wgsl
  }
//#include matmul_vec4_store.wgsl
}
