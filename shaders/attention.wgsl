// Flash attention forward, tiled for GPUs (and any device without subgroups): one invocation per query row
// (its scaled query and output accumulator in registers), WG rows per workgroup taken from the flattened rows
// of the query heads that share a kv head (so decode fills a workgroup with the group's heads); it stages BK
// keys and values at a time in workgroup memory and every row walks the visible ones with an online softmax
// (the tile's scores first, then one rescale per tile). Never materialises the T×T scores.
// Contract: src/backend/model_kernels.ts (attention). Template: __WG__ (rows per workgroup), __BK__ (keys per
// tile), __HD__ (head dim).

//#include attention_params.wgsl
@group(0) @binding(1) var<storage, read_write> outF: array<f32>;
@group(0) @binding(2) var<storage, read_write> lse: array<f32>;
@group(0) @binding(3) var<storage, read> Q: array<f32>;
@group(0) @binding(4) var<storage, read> K: array<f32>;
@group(0) @binding(5) var<storage, read> V: array<f32>;
@group(0) @binding(6) var<storage, read> keyStart: array<i32>;

const WG: u32 = __WG__u;
const BK: u32 = __BK__u;
const HD: u32 = __HD__u;
const NEG: f32 = -1.0e30;

var<workgroup> Ks: array<f32, BK * HD>;
var<workgroup> Vs: array<f32, BK * HD>;

@compute @workgroup_size(WG)
fn attention_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  // Rows: the flattened rows of the query heads sharing kv head `kvh` (contiguous in q, out and lse).
//#include attention_rows.wgsl
  var q: array<f32, HD>;
  var acc: array<f32, HD>;
  for (var d = 0u; d < HD; d++) {
    q[d] = Q[rowIdx * HD + d] * P.scale;
    acc[d] = 0.0;
  }
//#include attention_key_range.wgsl
  var m = NEG;
  var l = 0.0;
  var s: array<f32, BK>;
  for (var j0 = ks; j0 < kEnd; j0 += BK) {
    workgroupBarrier();
    for (var e = lid; e < BK * HD; e += WG) {
      let src = kvBase + min(j0 + e / HD, P.tk - 1u) * HD + e % HD;
      Ks[e] = K[src];
      Vs[e] = V[src];
    }
    workgroupBarrier();
    let n = select(0u, min(BK, myEnd - j0), myEnd > j0);
    var mt = m;
    for (var j = 0u; j < n; j++) {
      var dot = 0.0;
      for (var d = 0u; d < HD; d++) { dot = fma(q[d], Ks[j * HD + d], dot); }
      s[j] = dot;
      mt = max(mt, dot);
    }
    let alpha = exp(m - mt);
    l *= alpha;
    for (var d = 0u; d < HD; d++) { acc[d] *= alpha; }
    for (var j = 0u; j < n; j++) {
      let p = exp(s[j] - mt);
      l += p;
      for (var d = 0u; d < HD; d++) { acc[d] = fma(p, Vs[j * HD + d], acc[d]); }
    }
    m = mt;
  }
  if (r0 + lid < nRows) {
    let inv = select(0.0, 1.0 / l, l > 0.0);
    for (var d = 0u; d < HD; d++) { outF[rowIdx * HD + d] = acc[d] * inv; }
    lse[rowIdx] = select(P.inf, m + log(l), l > 0.0);
  }
}
