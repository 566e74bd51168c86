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

const WX: u32 = __WX__u;
const WY: u32 = __WY__u;
const TM: u32 = __TM__u;
const BK: u32 = __BK__u;
const TRANS_A: bool = __TRANS_A__u == 1u;
const TRANS_B: bool = __TRANS_B__u == 1u;
const NT: u32 = WX * WY;
const BM: u32 = WY * TM;
const BN: u32 = WX * 4u;

var<workgroup> As: array<f32, BK * BM>;
var<workgroup> Bs: array<vec4<f32>, BK * BN / 4u>;

fn loadA(base: u32, row: u32, p: u32) -> f32 {
  if (row >= P.m || p >= P.k) { return 0.0; }
  if (TRANS_A) { return A[base + p * P.m + row]; }
  return A[base + row * P.k + p];
}

fn loadB(base: u32, p: u32, col: u32) -> f32 {
  if (col >= P.n || p >= P.k) { return 0.0; }
  if (TRANS_B) { return B[base + col * P.k + p]; }
  return B[base + p * P.n + col];
}

@compute @workgroup_size(WX, WY)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let batch = wid.z + P.batchOffset;
  let baseA = batch * P.strideA;
  let baseB = batch * P.strideB;
  let row0 = wid.y * BM;
  let col0 = wid.x * BN;
  let tx = lid3.x;
  let ty = lid3.y;

  var acc: array<vec4<f32>, TM>;
  for (var i = 0u; i < TM; i++) { acc[i] = vec4<f32>(0.0); }

  for (var k0 = 0u; k0 < P.k; k0 += BK) {
    // Stage A[row0 .. row0+BM, k0 .. k0+BK] as As[kk * BM + r].
    for (var e = lid; e < BK * BM; e += NT) {
      var r: u32;
      var kk: u32;
      if (TRANS_A) { r = e % BM; kk = e / BM; } else { kk = e % BK; r = e / BK; }
      As[kk * BM + r] = loadA(baseA, row0 + r, k0 + kk);
    }
    // Stage B[k0 .. k0+BK, col0 .. col0+BN] as Bs[kk * BN/4 + c/4][c%4].
    for (var e = lid; e < BK * BN; e += NT) {
      var c: u32;
      var kk: u32;
      if (TRANS_B) { kk = e % BK; c = e / BK; } else { c = e % BN; kk = e / BN; }
      Bs[kk * (BN / 4u) + c / 4u][c % 4u] = loadB(baseB, k0 + kk, col0 + c);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      let b = Bs[kk * (BN / 4u) + tx];
      let aBase = kk * BM + ty * TM;
      for (var i = 0u; i < TM; i++) {
        acc[i] = fma(vec4<f32>(As[aBase + i]), b, acc[i]);
      }
    }
    workgroupBarrier();
  }

  let outBase = batch * P.m * P.n;
  let col = col0 + tx * 4u;
  for (var i = 0u; i < TM; i++) {
    let row = row0 + ty * TM + i;
    if (row < P.m) {
      let o = outBase + row * P.n + col;
      storeRow4(o, col, acc[i]);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// matmul_direct: no workgroup memory. A 1-D workgroup of WX invocations covers BN = WX·4 columns and TM
// rows: each invocation owns TM × 4 outputs; the A value of a (row, p) is the same for every invocation
// (a uniform load, broadcast) and B is read as 4 consecutive columns per invocation. No barriers: this is
// the fast shape on CPU rasterisers (llvmpipe / SwiftShader), where workgroup memory is just more memory
// traffic and barriers cost a context switch.

fn clampRow(r: u32) -> u32 { return min(r, P.m - 1u); }

fn loadB4(base: u32, p: u32, col: u32) -> vec4<f32> {
  if (TRANS_B) {
    let c = min(vec4<u32>(col, col + 1u, col + 2u, col + 3u), vec4<u32>(P.n - 1u));
    return vec4<f32>(B[base + c.x * P.k + p], B[base + c.y * P.k + p], B[base + c.z * P.k + p], B[base + c.w * P.k + p]);
  }
  let o = base + p * P.n;
  let c = min(vec4<u32>(col, col + 1u, col + 2u, col + 3u), vec4<u32>(P.n - 1u));
  return vec4<f32>(B[o + c.x], B[o + c.y], B[o + c.z], B[o + c.w]);
}

fn loadA1(base: u32, row: u32, p: u32) -> f32 {
  if (TRANS_A) { return A[base + p * P.m + row]; }
  return A[base + row * P.k + p];
}

@compute @workgroup_size(WX)
fn matmul_direct(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let batch = wid.z + P.batchOffset;
  let baseA = batch * P.strideA;
  let baseB = batch * P.strideB;
  let row0 = wid.y * TM;
  let col = (wid.x * WX + lid) * 4u;
  var acc: array<vec4<f32>, TM>;
  var rows: array<u32, TM>;
  for (var i = 0u; i < TM; i++) { rows[i] = clampRow(row0 + i); }
  for (var p = 0u; p < P.k; p++) {
    let b = loadB4(baseB, p, col);
    for (var i = 0u; i < TM; i++) {
      acc[i] = fma(vec4<f32>(loadA1(baseA, rows[i], p)), b, acc[i]);
    }
  }
  let outBase = batch * P.m * P.n;
  for (var i = 0u; i < TM; i++) {
    let row = row0 + i;
    if (row < P.m) {
      let o = outBase + row * P.n + col;
      storeRow4(o, col, acc[i]);
    }
  }
}

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
