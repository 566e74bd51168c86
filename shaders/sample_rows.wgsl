// Token sampling from logits rows on the device (contract: src/backend/model_kernels.ts, sampleRows), so
// generation reads back two floats per row instead of the row. One workgroup per row.
//   sample_rows: s = x / temperature; token = the smallest c with u·z < Σ_{j ≤ c} exp(s_j − max s), z the whole sum
//     (inverse transform in index order, as sampleToken on the host). Each invocation owns a contiguous chunk of
//     the row; invocation 0 scans the chunk sums in order (a sequential scan is monotone, so exactly one chunk
//     holds the goal), and the owner of that chunk walks it.
//   sample_greedy: the first maximum, with its temperature-1 log-probability.
// out[2·row] = token (a float: exact below 2^24 columns), out[2·row + 1] = its log-probability under softmax(s).
// Template: __WG__.

struct Params {
  rows: u32,
  cols: u32,
  temperature: f32,
  pad: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read> uniforms: array<f32>;

//#include grid.wgsl

var<workgroup> wm: array<f32, WG>;
var<workgroup> wi: array<u32, WG>;
var<workgroup> ws: array<f32, WG>;
var<workgroup> prefix: array<f32, WG>;

// Max of the row's scaled values (and the first index holding it) into wm[0], wi[0].
fn rowMax(base: u32, lid: u32, scale: f32) {
  var m = -3.0e38;
  var mi = P.cols;
  for (var c = lid; c < P.cols; c += WG) {
    let v = X[base + c] * scale;
    if (v > m) { m = v; mi = c; }
  }
  wm[lid] = m;
  wi[lid] = mi;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (lid < k) {
      let om = wm[lid + k];
      let oi = wi[lid + k];
      if (om > wm[lid] || (om == wm[lid] && oi < wi[lid])) { wm[lid] = om; wi[lid] = oi; }
    }
    workgroupBarrier();
  }
}

// Σ exp(s − m) over the row into ws[0] (strided, tree-merged).
fn rowSum(base: u32, lid: u32, scale: f32, m: f32) {
  var s = 0.0;
  for (var c = lid; c < P.cols; c += WG) { s += exp(X[base + c] * scale - m); }
  ws[lid] = s;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (lid < k) { ws[lid] += ws[lid + k]; }
    workgroupBarrier();
  }
}

@compute @workgroup_size(WG)
fn sample_greedy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let row = workgroupIndex(wid, nwg);
  if (row >= P.rows) { return; }   // uniform across the workgroup
  let base = row * P.cols;
  rowMax(base, lid, 1.0);
  let m = wm[0];
  let best = wi[0];
  workgroupBarrier();
  rowSum(base, lid, 1.0, m);
  if (lid == 0u) {
    out[2u * row] = f32(best);
    out[2u * row + 1u] = -log(ws[0]);
  }
}

@compute @workgroup_size(WG)
fn sample_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let row = workgroupIndex(wid, nwg);
  if (row >= P.rows) { return; }
  let base = row * P.cols;
  let scale = 1.0 / P.temperature;
  rowMax(base, lid, scale);
  let m = wm[0];
  workgroupBarrier();
  // This invocation's contiguous chunk [c0, c1).
  let chunk = (P.cols + WG - 1u) / WG;
  let c0 = min(lid * chunk, P.cols);
  let c1 = min(c0 + chunk, P.cols);
  var s = 0.0;
  for (var c = c0; c < c1; c++) { s += exp(X[base + c] * scale - m); }
  ws[lid] = s;
  workgroupBarrier();
  if (lid == 0u) {
    var acc = 0.0;
    for (var t = 0u; t < WG; t++) {
      acc += ws[t];
      prefix[t] = acc;
    }
  }
  workgroupBarrier();
  let z = prefix[WG - 1u];
  let goal = uniforms[row] * z;
  let before = select(0.0, prefix[max(lid, 1u) - 1u], lid > 0u);
  let lastOwner = (P.cols - 1u) / chunk;
  if (c0 < c1 && before <= goal && (goal < prefix[lid] || lid == lastOwner)) {
    var acc = before;
    var token = c1 - 1u;
    for (var c = c0; c < c1; c++) {
      acc += exp(X[base + c] * scale - m);
      if (goal < acc) { token = c; break; }
    }
    out[2u * row] = f32(token);
    out[2u * row + 1u] = X[base + token] * scale - (m + log(z));
  }
}
