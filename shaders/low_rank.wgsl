// The low-rank half of a LoRA projection, added in place (contract: src/backend/model_kernels.ts, lowRankAdd):
//   out[i, c] += scale · Σ_{j<rank} u[i, j] · L(c, j),
// L(c, j) = l[c·rank + j] (l stored [cols, rank]) or, with transL, l[j·cols + c] (l stored [rank, cols]).
// One pass over out after the matmul: rank is small (4…64), so each output reads rank values of u (the same
// for a row: cached) and of l, and out is read and written once — no [rows, cols] temporary, no add pass.
// low_rank_add4(_t) handle four columns per invocation (vec4 out and, with transL, vec4 l loads) when
// cols % 4 == 0; low_rank_add one column. Template: __WG__.

struct Params {
  rows: u32,
  cols: u32,
  rank: u32,
  transL: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> outF: array<f32>;
@group(0) @binding(2) var<storage, read> U: array<f32>;
@group(0) @binding(3) var<storage, read> L: array<f32>;
@group(0) @binding(1) var<storage, read_write> out4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> L4: array<vec4<f32>>;

//#include grid.wgsl

fn lowRankL(c: u32, j: u32) -> f32 {
  if (P.transL == 1u) { return L[j * P.cols + c]; }
  return L[c * P.rank + j];
}

@compute @workgroup_size(WG)
fn low_rank_add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let id = linearId(wid, nwg, lid);
  if (id >= P.rows * P.cols) { return; }
  let i = id / P.cols;
  let c = id % P.cols;
  var s = 0.0;
  for (var j = 0u; j < P.rank; j++) {
    s = fma(U[i * P.rank + j], lowRankL(c, j), s);
  }
  outF[id] = fma(P.scale, s, outF[id]);
}

// Four columns c … c+3 of row i: the shared tail of the two vec4 entries (which read l differently, so that
// neither binds l both as f32 and as vec4).
fn columnGroup(id: u32) -> vec2<u32> {
  let colGroups = P.cols / 4u;
  return vec2<u32>(id / colGroups, (id % colGroups) * 4u);
}

@compute @workgroup_size(WG)
fn low_rank_add4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let id = linearId(wid, nwg, lid);
  if (id >= P.rows * (P.cols / 4u)) { return; }
  let ic = columnGroup(id);
  var s = vec4<f32>(0.0);
  for (var j = 0u; j < P.rank; j++) {
    let o = ic.y * P.rank + j;
    s = fma(vec4<f32>(U[ic.x * P.rank + j]), vec4<f32>(L[o], L[o + P.rank], L[o + 2u * P.rank], L[o + 3u * P.rank]), s);
  }
  out4[id] = fma(vec4<f32>(P.scale), s, out4[id]);
}

// transL: l [rank, cols] gives four consecutive columns as one vec4.
@compute @workgroup_size(WG)
fn low_rank_add4_t(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
  let id = linearId(wid, nwg, lid);
  if (id >= P.rows * (P.cols / 4u)) { return; }
  let ic = columnGroup(id);
  var s = vec4<f32>(0.0);
  for (var j = 0u; j < P.rank; j++) {
    s = fma(vec4<f32>(U[ic.x * P.rank + j]), L4[(j * P.cols + ic.y) / 4u], s);
  }
  out4[id] = fma(vec4<f32>(P.scale), s, out4[id]);
}
