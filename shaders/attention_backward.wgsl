// Attention backward, tiled for GPUs (and any device without subgroups), in three kernels so that no
// kernel binds more than 8 storages and none needs atomics (contract: src/backend/model_kernels.ts):
//   attention_bwd_stats: per query row, stats = (lse, D) with D = Σ_d gOut·out; an lse of +Infinity (row
//     sees no key) becomes a huge finite value, so exp(s − lse) = 0 without infinities in later arithmetic.
//   attention_bwd_dq: one invocation per query row (q, gOut and the gq accumulator in registers), key and
//     value tiles in workgroup memory: p = exp(s − lse), dS = p·(gOut·v − D), gq = scale·Σ dS·k.
//   attention_bwd_dkv: one invocation per key row (k, v and both accumulators in registers), walking every
//     query head that shares the kv head, query / gOut / stats tiles in workgroup memory:
//     gv = Σ p·gOut, gk = scale·Σ dS·q. Key rows nobody sees end at 0.
// Scores are recomputed from lse; nothing T×T is stored. Template: __WG__ (rows per workgroup), __BK__ (rows
// per tile), __HD__ (head dim).

//#include attention_params.wgsl
// attention_bwd_stats
@group(0) @binding(1) var<storage, read_write> statsOut: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> O: array<f32>;
@group(0) @binding(3) var<storage, read> G: array<f32>;
@group(0) @binding(4) var<storage, read> lseIn: array<f32>;
// attention_bwd_dq (binding 1 = gq) and attention_bwd_dkv (binding 1 = gk, 8 = gv)
@group(0) @binding(1) var<storage, read_write> gOut1: array<f32>;
@group(0) @binding(2) var<storage, read> Q: array<f32>;
@group(0) @binding(3) var<storage, read> K: array<f32>;
@group(0) @binding(4) var<storage, read> V: array<f32>;
@group(0) @binding(5) var<storage, read> keyStart: array<i32>;
@group(0) @binding(6) var<storage, read> stats: array<vec2<f32>>;
@group(0) @binding(7) var<storage, read> GO: array<f32>;
@group(0) @binding(8) var<storage, read_write> gvOut: array<f32>;

//#include grid.wgsl
const BK: u32 = __BK__u;
const HD: u32 = __HD__u;
const BIG: f32 = 1.0e30;

@compute @workgroup_size(WG)
fn attention_bwd_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) lid: u32) {
  let row = linearId(wid, nwg, lid);
  if (row >= P.rows) { return; }
  var d = 0.0;
  for (var c = 0u; c < P.headDim; c++) { d = fma(G[row * P.headDim + c], O[row * P.headDim + c], d); }
  let l = lseIn[row];
  statsOut[row] = vec2<f32>(select(BIG, l, l <= BIG), d);
}

var<workgroup> As: array<f32, BK * HD>;
var<workgroup> Bs: array<f32, BK * HD>;
var<workgroup> Ss: array<vec2<f32>, BK>;

@compute @workgroup_size(WG)
fn attention_bwd_dq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  // Rows: the flattened rows of the query heads sharing kv head `kvh`, as in attention.wgsl.
//#include attention_rows.wgsl
  var q: array<f32, HD>;
  var go: array<f32, HD>;
  var acc: array<f32, HD>;
  for (var d = 0u; d < HD; d++) {
    q[d] = Q[rowIdx * HD + d] * P.scale;
    go[d] = GO[rowIdx * HD + d];
    acc[d] = 0.0;
  }
  let st = stats[rowIdx];
//#include attention_key_range.wgsl
  for (var j0 = ks; j0 < kEnd; j0 += BK) {
    workgroupBarrier();
    for (var e = lid; e < BK * HD; e += WG) {
      let src = kvBase + min(j0 + e / HD, P.tk - 1u) * HD + e % HD;
      As[e] = K[src];
      Bs[e] = V[src];
    }
    workgroupBarrier();
    let n = select(0u, min(BK, myEnd - j0), myEnd > j0);
    for (var j = 0u; j < n; j++) {
      var s = 0.0;
      var dp = 0.0;
      for (var d = 0u; d < HD; d++) {
        s = fma(q[d], As[j * HD + d], s);
        dp = fma(go[d], Bs[j * HD + d], dp);
      }
      let ds = exp(s - st.x) * (dp - st.y);
      for (var d = 0u; d < HD; d++) { acc[d] = fma(ds, As[j * HD + d], acc[d]); }
    }
  }
  if (r0 + lid < nRows) {
    for (var d = 0u; d < HD; d++) { gOut1[rowIdx * HD + d] = acc[d] * P.scale; }
  }
}

@compute @workgroup_size(WG)
fn attention_bwd_dkv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let b = wid.z;
  let kvh = wid.y;
  let j0 = wid.x * WG;
  let key = min(j0 + lid, P.tk - 1u);
  let keyIdx = (b * P.kvHeads + kvh) * P.tk + key;
  var k: array<f32, HD>;
  var v: array<f32, HD>;
  var gk: array<f32, HD>;
  var gv: array<f32, HD>;
  for (var d = 0u; d < HD; d++) {
    k[d] = K[keyIdx * HD + d] * P.scale;
    v[d] = V[keyIdx * HD + d];
    gk[d] = 0.0;
    gv[d] = 0.0;
  }
  let ks = firstKey(b);
  // Rows before iStart see no key of this block (causal); a block entirely before keyStart sees no row.
  let firstVisible = max(j0, ks);
  var iStart = 0u;
  if (P.causal != 0u && firstVisible > P.qOffset) { iStart = firstVisible - P.qOffset; }
  if (firstVisible >= min(j0 + WG, P.tk)) { iStart = P.tq; }
  let mine = key >= ks && j0 + lid < P.tk;
  for (var hh = 0u; hh < P.group; hh++) {
    let rowBase = (b * P.heads + kvh * P.group + hh) * P.tq;
    for (var i0 = iStart; i0 < P.tq; i0 += BK) {
      workgroupBarrier();
      for (var e = lid; e < BK * HD; e += WG) {
        let src = (rowBase + min(i0 + e / HD, P.tq - 1u)) * HD + e % HD;
        As[e] = Q[src];
        Bs[e] = GO[src];
      }
      for (var e = lid; e < BK; e += WG) { Ss[e] = stats[rowBase + min(i0 + e, P.tq - 1u)]; }
      workgroupBarrier();
      // This key is visible to rows i ≥ key − qOffset (causal) of the tile, up to tq.
      var iFirst = i0;
      if (P.causal != 0u && key > P.qOffset + i0) { iFirst = key - P.qOffset; }
      let iEnd = select(i0, min(i0 + BK, P.tq), mine);
      for (var i = iFirst; i < iEnd; i++) {
        let t = i - i0;
        var s = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < HD; d++) {
          s = fma(k[d], As[t * HD + d], s);
          dp = fma(v[d], Bs[t * HD + d], dp);
        }
        let st = Ss[t];
        let p = exp(s - st.x);
        let ds = p * (dp - st.y);
        for (var d = 0u; d < HD; d++) {
          gv[d] = fma(p, Bs[t * HD + d], gv[d]);
          gk[d] = fma(ds, As[t * HD + d], gk[d]);
        }
      }
    }
  }
  if (j0 + lid < P.tk) {
    for (var d = 0u; d < HD; d++) {
      gOut1[keyIdx * HD + d] = gk[d] * P.scale;
      gvOut[keyIdx * HD + d] = gv[d];
    }
  }
}
