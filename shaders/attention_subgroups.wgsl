// Flash attention forward for CPU rasterisers with subgroups (llvmpipe: a workgroup is one 8-lane SIMD
// subgroup, storage loads are per-lane scalar loops, barriers are coroutine switches). No workgroup memory
// and no barriers: a workgroup of L lanes (= the subgroup size) owns TM = L·QR query rows of one batch entry
// and kv head (the rows of all query heads sharing it, flattened) and walks the visible keys in tiles of 4L,
// keeping an online softmax per row:
//   scores: lane l owns keys j0 + 4l … j0 + 4l + 3 (four vec4 loads per 4 dims); query row i is loaded by
//     lane i % L and reaches every lane by subgroupBroadcast;
//   softmax: each row's tile max and sum by subgroupMax / subgroupAdd (uniform row statistics);
//   P·V: lane l owns the head-dim chunks l, l + L, … (vec4); the probabilities of lane a's four keys reach
//     every lane by subgroupShuffle with the uniform index a, and multiply the V rows of those keys.
// Loops over the head dim and the source lanes stay loops: fully unrolled bodies cost seconds of LLVM time
// per pipeline and ran slower. Masked scores use a finite sentinel, so no infinity enters the arithmetic.
// Contract: src/backend/model_kernels.ts (attention). Template: __L__ (lanes), __QR__ (rows per lane),
// __TM__ = L·QR, __D4__ = headDim/4, __DV__ = ceil(D4 / L) (head-dim chunks per lane).
enable subgroups;

//#include attention_params.wgsl
@group(0) @binding(1) var<storage, read_write> out4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> lse: array<f32>;
@group(0) @binding(3) var<storage, read> Q4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> K4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> V4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> keyStart: array<i32>;

const L: u32 = __L__u;
const TM: u32 = __TM__u;
const D4: u32 = __D4__u;
const KT: u32 = 4u * L;
const NEG: f32 = -1.0e30;

@compute @workgroup_size(L)
fn attention_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
  // Rows of the block run over the G = heads / kvHeads query heads sharing kv head `kvh` (contiguous in
  // q, out and lse): decode (tq = 1) fills the lanes with the group's heads instead of clamped copies.
//#include attention_rows_subgroups.wgsl
//#unroll r QR
  let qo_{r} = (rowBase + min(r0 + {r}u * L + lane, nRows - 1u)) * D4;
//#end
//#unroll v DV
  let cv_{v} = min(lane + {v}u * L, D4 - 1u);
//#end
//#unroll i TM
  var m_{i} = NEG;
  var l_{i} = 0.0;
  var p_{i} = vec4<f32>(0.0);
//#unroll v DV
  var acc_{i}_{v} = vec4<f32>(0.0);
//#end
//#end

  let ks = firstKey(b);
  var kEnd = P.tk;
  if (P.causal != 0u) { kEnd = min(kEnd, P.qOffset + lastQueryRow(r0, min(r0 + TM, nRows) - 1u) + 1u); }
  let kLast = max(P.tk, 1u) - 1u;
  for (var j0 = (ks / KT) * KT; j0 < kEnd; j0 += KT) {
    let jl = j0 + 4u * lane;
    let kj = vec4<u32>(jl, jl + 1u, jl + 2u, jl + 3u);
    let kb0 = kvBase + min(jl, kLast) * D4;
    let kb1 = kvBase + min(jl + 1u, kLast) * D4;
    let kb2 = kvBase + min(jl + 2u, kLast) * D4;
    let kb3 = kvBase + min(jl + 3u, kLast) * D4;
//#unroll i TM
    var s_{i} = vec4<f32>(0.0);
//#end
    for (var c = 0u; c < D4; c++) {
//#unroll r QR
      let q_{r} = Q4[qo_{r} + c] * P.scale;
//#end
      let k0 = K4[kb0 + c];
      let k1 = K4[kb1 + c];
      let k2 = K4[kb2 + c];
      let k3 = K4[kb3 + c];
//#unroll i TM
      {
        let qb = subgroupBroadcast(q_{i/L}, {i%L}u);
        s_{i} += vec4<f32>(dot(qb, k0), dot(qb, k1), dot(qb, k2), dot(qb, k3));
      }
//#end
    }
    let inRange = (kj >= vec4<u32>(ks)) & (kj < vec4<u32>(P.tk));
//#unroll i TM
    {
      let lim = select(0xffffffffu, P.qOffset + (r0 + {i}u) % P.tq, P.causal != 0u);
      let vis = inRange & (kj <= vec4<u32>(lim));
      let sm = select(vec4<f32>(NEG), s_{i}, vis);
      let mn = max(m_{i}, subgroupMax(max(max(sm.x, sm.y), max(sm.z, sm.w))));
      let alpha = exp(m_{i} - mn);
      p_{i} = select(vec4<f32>(0.0), exp(sm - vec4<f32>(mn)), vis);
      l_{i} = l_{i} * alpha + subgroupAdd(p_{i}.x + p_{i}.y + p_{i}.z + p_{i}.w);
      m_{i} = mn;
//#unroll v DV
      acc_{i}_{v} *= alpha;
//#end
    }
//#end
    for (var a = 0u; a < L; a++) {
      if (j0 + a * 4u >= kEnd) { break; }
//#unroll i TM
      let pb_{i} = subgroupShuffle(p_{i}, a);
//#end
      for (var e = 0u; e < 4u; e++) {
        let vr = kvBase + min(j0 + a * 4u + e, kLast) * D4;
//#unroll v DV
        let vv_{v} = V4[vr + cv_{v}];
//#end
//#unroll i TM
//#unroll v DV
        acc_{i}_{v} = fma(vec4<f32>(pb_{i}[e]), vv_{v}, acc_{i}_{v});
//#end
//#end
      }
    }
  }

//#unroll i TM
  if (r0 + {i}u < nRows) {
    let inv = select(0.0, 1.0 / l_{i}, l_{i} > 0.0);
    let o = (rowBase + r0 + {i}u) * D4;
//#unroll v DV
    if (lane + {v}u * L < D4) { out4[o + lane + {v}u * L] = acc_{i}_{v} * inv; }
//#end
    if (lane == {i%L}u) { lse[rowBase + r0 + {i}u] = select(P.inf, m_{i} + log(l_{i}), l_{i} > 0.0); }
  }
//#end
}
