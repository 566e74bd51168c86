// Attention backward for CPU rasterisers with subgroups: the dQ and dK/dV kernels of
// attention_backward.wgsl (which also provides the stats pre-pass: per-row (lse, D = Σ gOut·out)) in the
// barrier-free form of attention_subgroups.wgsl. A workgroup is one subgroup of L lanes. p is recomputed
// from lse; nothing T×T is stored.
//   attention_bwd_dq: TM query rows per workgroup (the flattened rows of the query heads sharing a kv head),
//     keys in tiles of 4L (lane l owns four keys). Scores and
//     gOut·v come from vec4 loads of the lane's keys against query / gOut rows broadcast from the lane that
//     loaded them; dS = p·(gOut·v − D) with p = exp(s − lse); gq rows accumulate dS·k with lane l owning
//     head-dim chunks l, l + L, … and dS of lane a's keys arriving by subgroupShuffle.
//   attention_bwd_dkv: TM key rows per workgroup (one kv head), looping over the query heads that share it
//     and their rows in tiles of 4L (lane l owns four rows); the same products with the roles of rows and
//     keys exchanged; gv accumulates p·gOut and gk accumulates dS·q per owned head-dim chunk.
// No atomics: every output element has one writer. Template: __L__, __R__ (rows or keys per lane),
// __TM__ = L·R (rows or keys per workgroup), __D4__ = headDim/4, __DV__ = ceil(D4/L).
enable subgroups;

//#include attention_params.wgsl
@group(0) @binding(1) var<storage, read_write> out4: array<vec4<f32>>;   // gq (dq) or gk (dkv)
@group(0) @binding(2) var<storage, read> Q4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> K4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> V4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> keyStart: array<i32>;
@group(0) @binding(6) var<storage, read> stats: array<vec2<f32>>;      // (lse, D) per query row
@group(0) @binding(7) var<storage, read> G4: array<vec4<f32>>;         // gOut
@group(0) @binding(8) var<storage, read_write> gv4: array<vec4<f32>>;

const L: u32 = __L__u;
const TM: u32 = __TM__u;
const D4: u32 = __D4__u;
const KT: u32 = 4u * L;

@compute @workgroup_size(L)
fn attention_bwd_dq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
  // Rows: the flattened rows of the query heads sharing kv head `kvh`, as in attention_subgroups.wgsl.
//#include attention_rows_subgroups.wgsl
  // Row i of the block is loaded by lane i % L into its register set i / L.
//#unroll r R
  let myRow_{r} = rowBase + min(r0 + {r}u * L + lane, nRows - 1u);
  let qo_{r} = myRow_{r} * D4;
  let st_{r} = stats[myRow_{r}];
//#end
//#unroll v DV
  let cv_{v} = min(lane + {v}u * L, D4 - 1u);
//#end
//#unroll i TM
  let lse_{i} = subgroupBroadcast(st_{i/L}.x, {i%L}u);
  let dd_{i} = subgroupBroadcast(st_{i/L}.y, {i%L}u);
  var ds_{i} = vec4<f32>(0.0);
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
    var dp_{i} = vec4<f32>(0.0);
//#end
    for (var c = 0u; c < D4; c++) {
//#unroll r R
      let qv_{r} = Q4[qo_{r} + c] * P.scale;
      let gv_{r} = G4[qo_{r} + c];
//#end
      let k0 = K4[kb0 + c];
      let k1 = K4[kb1 + c];
      let k2 = K4[kb2 + c];
      let k3 = K4[kb3 + c];
      let v0 = V4[kb0 + c];
      let v1 = V4[kb1 + c];
      let v2 = V4[kb2 + c];
      let v3 = V4[kb3 + c];
//#unroll i TM
      {
        let qb = subgroupBroadcast(qv_{i/L}, {i%L}u);
        s_{i} += vec4<f32>(dot(qb, k0), dot(qb, k1), dot(qb, k2), dot(qb, k3));
        let gb = subgroupBroadcast(gv_{i/L}, {i%L}u);
        dp_{i} += vec4<f32>(dot(gb, v0), dot(gb, v1), dot(gb, v2), dot(gb, v3));
      }
//#end
    }
    let inRange = (kj >= vec4<u32>(ks)) & (kj < vec4<u32>(P.tk));
//#unroll i TM
    {
      let lim = select(0xffffffffu, P.qOffset + (r0 + {i}u) % P.tq, P.causal != 0u);
      let vis = inRange & (kj <= vec4<u32>(lim));
      let p = select(vec4<f32>(0.0), exp(s_{i} - vec4<f32>(lse_{i})), vis);
      ds_{i} = p * (dp_{i} - vec4<f32>(dd_{i}));
    }
//#end
    for (var a = 0u; a < L; a++) {
      if (j0 + a * 4u >= kEnd) { break; }
//#unroll i TM
      let db_{i} = subgroupShuffle(ds_{i}, a);
//#end
      for (var e = 0u; e < 4u; e++) {
        let kr = kvBase + min(j0 + a * 4u + e, kLast) * D4;
//#unroll v DV
        let kv_{v} = K4[kr + cv_{v}];
//#end
//#unroll i TM
//#unroll v DV
        acc_{i}_{v} = fma(vec4<f32>(db_{i}[e]), kv_{v}, acc_{i}_{v});
//#end
//#end
      }
    }
  }
//#unroll i TM
  if (r0 + {i}u < nRows) {
    let o = (rowBase + r0 + {i}u) * D4;
//#unroll v DV
    if (lane + {v}u * L < D4) { out4[o + lane + {v}u * L] = acc_{i}_{v} * P.scale; }
//#end
  }
//#end
}

@compute @workgroup_size(L)
fn attention_bwd_dkv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
  let b = wid.z;
  let kvh = wid.y;
  let j0 = wid.x * TM;
  let kvBase = (b * P.kvHeads + kvh) * P.tk * D4;
  // Key j of the block is loaded by lane j % L into its register set j / L.
//#unroll r R
  let ko_{r} = kvBase + min(j0 + {r}u * L + lane, P.tk - 1u) * D4;
//#end
//#unroll v DV
  let cv_{v} = min(lane + {v}u * L, D4 - 1u);
//#end
//#unroll j TM
  var p_{j} = vec4<f32>(0.0);
  var ds_{j} = vec4<f32>(0.0);
//#unroll v DV
  var gk_{j}_{v} = vec4<f32>(0.0);
  var gv_{j}_{v} = vec4<f32>(0.0);
//#end
//#end
  let ks = firstKey(b);
  // Rows before iStart see no key of this block (causal); a block entirely before keyStart sees no row.
  let firstVisible = max(j0, ks);
  var iStart = 0u;
  if (P.causal != 0u && firstVisible > P.qOffset) { iStart = firstVisible - P.qOffset; }
  if (firstVisible >= min(j0 + TM, P.tk)) { iStart = P.tq; }
  let tqLast = max(P.tq, 1u) - 1u;
  for (var hh = 0u; hh < P.group; hh++) {
    let rowBase = (b * P.heads + kvh * P.group + hh) * P.tq;
    for (var i0 = iStart; i0 < P.tq; i0 += KT) {
      let il = i0 + 4u * lane;
      let ri = vec4<u32>(il, il + 1u, il + 2u, il + 3u);
      let rc = min(ri, vec4<u32>(tqLast)) + vec4<u32>(rowBase);
      let qo = rc * D4;
//#unroll j TM
      var s_{j} = vec4<f32>(0.0);
      var dp_{j} = vec4<f32>(0.0);
//#end
      for (var c = 0u; c < D4; c++) {
//#unroll r R
        let kv_{r} = K4[ko_{r} + c] * P.scale;
        let vv_{r} = V4[ko_{r} + c];
//#end
        let q0 = Q4[qo.x + c];
        let q1 = Q4[qo.y + c];
        let q2 = Q4[qo.z + c];
        let q3 = Q4[qo.w + c];
        let g0 = G4[qo.x + c];
        let g1 = G4[qo.y + c];
        let g2 = G4[qo.z + c];
        let g3 = G4[qo.w + c];
//#unroll j TM
        {
          let kb = subgroupBroadcast(kv_{j/L}, {j%L}u);
          s_{j} += vec4<f32>(dot(q0, kb), dot(q1, kb), dot(q2, kb), dot(q3, kb));
          let vb = subgroupBroadcast(vv_{j/L}, {j%L}u);
          dp_{j} += vec4<f32>(dot(g0, vb), dot(g1, vb), dot(g2, vb), dot(g3, vb));
        }
//#end
      }
      let st0 = stats[rc.x];
      let st1 = stats[rc.y];
      let st2 = stats[rc.z];
      let st3 = stats[rc.w];
      let lse4 = vec4<f32>(st0.x, st1.x, st2.x, st3.x);
      let dd4 = vec4<f32>(st0.y, st1.y, st2.y, st3.y);
      let rowOk = ri < vec4<u32>(P.tq);
//#unroll j TM
      {
        let key = j0 + {j}u;
        var vis = rowOk & vec4<bool>(key < P.tk && key >= ks);
        if (P.causal != 0u) { vis = vis & (vec4<u32>(key) <= vec4<u32>(P.qOffset) + ri); }
        p_{j} = select(vec4<f32>(0.0), exp(s_{j} - lse4), vis);
        ds_{j} = p_{j} * (dp_{j} - dd4);
      }
//#end
      for (var a = 0u; a < L; a++) {
        if (i0 + a * 4u >= P.tq) { break; }
//#unroll j TM
        let pb_{j} = subgroupShuffle(p_{j}, a);
        let db_{j} = subgroupShuffle(ds_{j}, a);
//#end
        for (var e = 0u; e < 4u; e++) {
          let ro = (rowBase + min(i0 + a * 4u + e, tqLast)) * D4;
//#unroll v DV
          let go_{v} = G4[ro + cv_{v}];
          let qr_{v} = Q4[ro + cv_{v}];
//#end
//#unroll j TM
//#unroll v DV
          gv_{j}_{v} = fma(vec4<f32>(pb_{j}[e]), go_{v}, gv_{j}_{v});
          gk_{j}_{v} = fma(vec4<f32>(db_{j}[e]), qr_{v}, gk_{j}_{v});
//#end
//#end
        }
      }
    }
  }
//#unroll j TM
  if (j0 + {j}u < P.tk) {
    let o = kvBase + (j0 + {j}u) * D4;
//#unroll v DV
    if (lane + {v}u * L < D4) {
      out4[o + lane + {v}u * L] = gk_{j}_{v} * P.scale;
      gv4[o + lane + {v}u * L] = gv_{j}_{v};
    }
//#end
  }
//#end
}
