// The tiled and direct batched matmul kernels (matmul, matmul_direct), shared by matmul.wgsl (float32 B) and
// matmul_half.wgsl (16-bit B). The including shader defines P (include/matmul_params.wgsl), A, and
// readB(i) -> f32 (element i of B).

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
  if (TRANS_B) { return readB(base + col * P.k + p); }
  return readB(base + p * P.n + col);
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
    return vec4<f32>(readB(base + c.x * P.k + p), readB(base + c.y * P.k + p), readB(base + c.z * P.k + p), readB(base + c.w * P.k + p));
  }
  let o = base + p * P.n;
  let c = min(vec4<u32>(col, col + 1u, col + 2u, col + 3u), vec4<u32>(P.n - 1u));
  return vec4<f32>(readB(o + c.x), readB(o + c.y), readB(o + c.z), readB(o + c.w));
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

