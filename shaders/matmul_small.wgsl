// Small-output matmul: out[b] = opA(a[b]) · opB(b[b]) for m ≤ MR (GEMV at m = 1, the decode shape
// [1..B, d] × weights), with split-K. Same operand contract as matmul.wgsl (TRANS_A: a stored [k, m];
// TRANS_B: b stored [n, k]; batch strides in elements). A workgroup of WX invocations covers 4·WX columns
// and all MR rows; each invocation owns 4 columns × MR rows and walks one k-slice [split·kSplit, +kSplit).
// The host runs tiny-n products (n ≤ 4, many rows) as the transposed problem through the same kernel,
// hence the output strides: element (r, c) of batch b goes to out[b·batchStride + split·splitStride +
// r·rowStride + c·colStride]; with more than one split those are partials that the reduce family sums.
// matmul_small: scalar loads, any shape. matmul_small4: vec4 loads, k unrolled by 4 (host checks
// k % 4 == 0, strideA % 4 == 0, strideB % 4 == 0, and n % 4 == 0 unless TRANS_B), B columns clamped.
// No workgroup memory: the A values are uniform across the workgroup (broadcast loads), each B element is
// read once per row block, which is all there is at m ≤ MR. Template: __WX__ __MR__ __TRANS_A__ __TRANS_B__.

struct Params {
  m: u32,
  n: u32,
  k: u32,
  batchOffset: u32,
  strideA: u32,
  strideB: u32,
  kSplit: u32,
  rowStride: u32,
  colStride: u32,
  batchStride: u32,
  splitStride: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> outF: array<f32>;
@group(0) @binding(2) var<storage, read> A: array<f32>;
@group(0) @binding(3) var<storage, read> B: array<f32>;

const WX: u32 = __WX__u;
const TRANS_A: bool = __TRANS_A__u == 1u;
const TRANS_B: bool = __TRANS_B__u == 1u;

fn loadA(base: u32, row: u32, p: u32) -> f32 {
  if (TRANS_A) { return A[base + p * P.m + row]; }
  return A[base + row * P.k + p];
}

fn loadB(base: u32, p: u32, col: u32) -> f32 {
  if (TRANS_B) { return B[base + col * P.k + p]; }
  return B[base + p * P.n + col];
}

fn store(batch: u32, split: u32, row: u32, col: u32, v: vec4<f32>) {
  if (row >= P.m) { return; }
  let o = batch * P.batchStride + split * P.splitStride + row * P.rowStride;
  for (var e = 0u; e < 4u; e++) {
    if (col + e < P.n) { outF[o + (col + e) * P.colStride] = v[e]; }
  }
}

@compute @workgroup_size(WX)
fn matmul_small(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let batch = wid.z + P.batchOffset;
  let baseA = batch * P.strideA;
  let baseB = batch * P.strideB;
  let col = (wid.x * WX + lid) * 4u;
  let c = min(vec4<u32>(col, col + 1u, col + 2u, col + 3u), vec4<u32>(P.n - 1u));
  let k0 = wid.y * P.kSplit;
  let k1 = min(k0 + P.kSplit, P.k);
//#unroll i MR
  var acc_{i} = vec4<f32>(0.0);
  let row_{i} = min({i}u, P.m - 1u);
//#end
  for (var p = k0; p < k1; p++) {
    let b = vec4<f32>(loadB(baseB, p, c.x), loadB(baseB, p, c.y), loadB(baseB, p, c.z), loadB(baseB, p, c.w));
//#unroll i MR
    acc_{i} = fma(vec4<f32>(loadA(baseA, row_{i}, p)), b, acc_{i});
//#end
  }
//#unroll i MR
  store(batch, wid.y, {i}u, col, acc_{i});
//#end
}

//#include matmul_vec4_loads.wgsl

@compute @workgroup_size(WX)
fn matmul_small4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let batch = wid.z + P.batchOffset;
  let baseA = batch * P.strideA;
  let baseB = batch * P.strideB;
  let col = (wid.x * WX + lid) * 4u;
  let c = min(vec4<u32>(col, col + 1u, col + 2u, col + 3u), vec4<u32>(P.n - 1u));
  let colV = min(col, P.n - 4u);
  let k0 = wid.y * P.kSplit;
  let k1 = min(k0 + P.kSplit, P.k);
//#unroll i MR
  var acc_{i} = vec4<f32>(0.0);
  let row_{i} = min({i}u, P.m - 1u);
//#end
  for (var p = k0; p < k1; p += 4u) {
    var b0: vec4<f32>;
    var b1: vec4<f32>;
    var b2: vec4<f32>;
    var b3: vec4<f32>;
    if (TRANS_B) {
      // Four columns' k-runs, transposed to four k-rows of the four columns.
      let t0 = B4[(baseB + c.x * P.k + p) / 4u];
      let t1 = B4[(baseB + c.y * P.k + p) / 4u];
      let t2 = B4[(baseB + c.z * P.k + p) / 4u];
      let t3 = B4[(baseB + c.w * P.k + p) / 4u];
      b0 = vec4<f32>(t0.x, t1.x, t2.x, t3.x);
      b1 = vec4<f32>(t0.y, t1.y, t2.y, t3.y);
      b2 = vec4<f32>(t0.z, t1.z, t2.z, t3.z);
      b3 = vec4<f32>(t0.w, t1.w, t2.w, t3.w);
    } else {
      let o = (baseB + p * P.n + colV) / 4u;
      let s = P.n / 4u;
      b0 = B4[o];
      b1 = B4[o + s];
      b2 = B4[o + 2u * s];
      b3 = B4[o + 3u * s];
    }
//#unroll i MR
    {
      let a = loadArow(baseA, row_{i}, p);
      acc_{i} = fma(vec4<f32>(a.x), b0, fma(vec4<f32>(a.y), b1, fma(vec4<f32>(a.z), b2, fma(vec4<f32>(a.w), b3, acc_{i}))));
    }
//#end
  }
//#unroll i MR
  store(batch, wid.y, {i}u, col, acc_{i});
//#end
}
