// Batched matmul for CPU rasterisers with subgroups (the 'subgroups' feature, subgroup size ≥ 8): the
// barrier-free matmul_direct4 work split (a workgroup of WX lanes shares TM = 8·R rows, each lane owns 4
// columns), but the rows of A are loaded once per subgroup — lane i reads rows i, 8 + i, … — and handed to
// every lane with subgroupBroadcast. On llvmpipe every storage load inside a loop is a per-lane scalar loop
// with bounds checks, so sharing A this way cuts the loads per 4 steps of k from TM + 4 vec4 to R + 4.
// Same contract as matmul.wgsl: out[b] = opA(a[b]) · opB(b[b]); conditions k % 4 == 0, strideA % 4 == 0,
// strideB % 4 == 0 and n % 4 == 0 unless TRANS_B. Template tokens: __WX__ __TM__ __R__ __TRANS_A__ __TRANS_B__.
enable subgroups;

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
@group(0) @binding(2) var<storage, read> A4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> B4: array<vec4<f32>>;

const WX: u32 = __WX__u;
const TM: u32 = __TM__u;
const TRANS_A: bool = __TRANS_A__u == 1u;
const TRANS_B: bool = __TRANS_B__u == 1u;

// A[row, p .. p+3] as a vec4.
fn loadArow(base: u32, row: u32, p: u32) -> vec4<f32> {
  if (TRANS_A) {
    let i0 = base + p * P.m + row;
    let i1 = i0 + P.m;
    let i2 = i1 + P.m;
    let i3 = i2 + P.m;
    return vec4<f32>(A4[i0 / 4u][i0 % 4u], A4[i1 / 4u][i1 % 4u], A4[i2 / 4u][i2 % 4u], A4[i3 / 4u][i3 % 4u]);
  }
  return A4[(base + row * P.k + p) / 4u];
}

// B[p + pp, c.x .. c.w] as a vec4: TRANS_B gathers four columns, else one aligned vec4 at index o.
fn loadB4row(baseB: u32, c: vec4<u32>, p: u32, pp: u32, o: u32) -> vec4<f32> {
  if (TRANS_B) {
    let i = baseB + p + pp;
    return vec4<f32>(B4[(i + c.x * P.k) / 4u][pp], B4[(i + c.y * P.k) / 4u][pp], B4[(i + c.z * P.k) / 4u][pp], B4[(i + c.w * P.k) / 4u][pp]);
  }
  return B4[o];
}

@compute @workgroup_size(WX)
fn matmul_subgroups(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
                    @builtin(subgroup_invocation_id) sid: u32) {
  let batch = wid.z + P.batchOffset;
  let baseA = batch * P.strideA;
  let baseB = batch * P.strideB;
  let row0 = wid.x * TM;
  let col = (wid.y * WX + lid) * 4u;
  let c = min(vec4<u32>(col, col + 1u, col + 2u, col + 3u), vec4<u32>(P.n - 1u));
  let colV = min(col, P.n - 4u);
  // The rows this lane loads for the whole subgroup (clamped: edge rows are computed and dropped).
//#unroll r R
  let myRow_{r} = min(row0 + {r}u * 8u + sid % 8u, P.m - 1u);
//#end
//#unroll i TM
  var acc_{i} = vec4<f32>(0.0);
//#end
  let s = P.n / 4u;
  for (var p = 0u; p < P.k; p += 4u) {
//#unroll r R
    let mine_{r} = loadArow(baseA, myRow_{r}, p);
//#end
//#unroll i TM
    let a_{i} = subgroupBroadcast(mine_{i/8}, {i%8}u);
//#end
    var o = (baseB + p * P.n + colV) / 4u;
    if (TRANS_B) { o = 0u; }
    {
      let b = loadB4row(baseB, c, p, 0u, o);
//#unroll i TM
      acc_{i} = fma(vec4<f32>(a_{i}.x), b, acc_{i});
//#end
    }
    {
      let b = loadB4row(baseB, c, p, 1u, o + s);
//#unroll i TM
      acc_{i} = fma(vec4<f32>(a_{i}.y), b, acc_{i});
//#end
    }
    {
      let b = loadB4row(baseB, c, p, 2u, o + 2u * s);
//#unroll i TM
      acc_{i} = fma(vec4<f32>(a_{i}.z), b, acc_{i});
//#end
    }
    {
      let b = loadB4row(baseB, c, p, 3u, o + 3u * s);
//#unroll i TM
      acc_{i} = fma(vec4<f32>(a_{i}.w), b, acc_{i});
//#end
    }
  }
  let outBase = batch * P.m * P.n;
//#unroll i TM
  if (row0 + {i}u < P.m) {
    let o = outBase + (row0 + {i}u) * P.n + col;
    if (col < P.n) { outF[o] = acc_{i}.x; }
    if (col + 1u < P.n) { outF[o + 1u] = acc_{i}.y; }
    if (col + 2u < P.n) { outF[o + 2u] = acc_{i}.z; }
    if (col + 3u < P.n) { outF[o + 3u] = acc_{i}.w; }
  }
//#end
}
