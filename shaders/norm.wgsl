// RMSNorm forward and backward over x [rows, cols] (contract: src/backend/model_kernels.ts, rmsNorm /
// rmsNormBackward). Row reductions come in two shapes: *_rows, one invocation per row with no workgroup
// memory (CPU rasterisers, where lanes are SIMD lanes and barriers are context switches), and *_tree, one
// workgroup per row with a workgroup-memory tree (GPUs). The weight gradient is a column reduction:
// rms_norm_bwd_gw sums a block of rows per invocation and column, into gWeight directly or into per-block
// partials that the reduce family sums. The *4 entries are the same with vec4 loads, for cols % 4 == 0 (a
// quarter of the loads, which dominate on CPU rasterisers). Template: __WG__.

struct Params {
  rows: u32,
  cols: u32,
  eps: f32,
  rowsPerBlock: u32,   // rms_norm_bwd_gw
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> outF: array<f32>;   // out, gx, gWeight (or partials)
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read> W: array<f32>;
@group(0) @binding(3) var<storage, read> G3: array<f32>;           // rms_norm_bwd_gw: gOut
@group(0) @binding(4) var<storage, read_write> rstdOut: array<f32>;
@group(0) @binding(4) var<storage, read> rstdIn: array<f32>;
@group(0) @binding(5) var<storage, read> G: array<f32>;
@group(0) @binding(1) var<storage, read_write> out4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> X4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> W4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> G34: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> G4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> gwOut: array<f32>;   // rms_norm_bwd_tree: gWeight (or partials)

//#include grid.wgsl

var<workgroup> red: array<f32, WG>;

// Sum of v over the workgroup (every invocation gets it). Call in uniform control flow.
fn treeSum(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (lid < k) { red[lid] += red[lid + k]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn sumSquares(base: u32, start: u32, stride: u32) -> f32 {
  var s = 0.0;
  for (var c = start; c < P.cols; c += stride) { let v = X[base + c]; s = fma(v, v, s); }
  return s;
}

fn normalize(row: u32, start: u32, stride: u32, rstd: f32) {
  let base = row * P.cols;
  for (var c = start; c < P.cols; c += stride) { outF[base + c] = X[base + c] * rstd * W[c]; }
}

fn gwxDot(base: u32, start: u32, stride: u32) -> f32 {
  var s = 0.0;
  for (var c = start; c < P.cols; c += stride) { s = fma(G[base + c] * W[c], X[base + c], s); }
  return s;
}

// gx = rstd·w·g − x·rstd³·dot / cols
fn inputGrad(row: u32, start: u32, stride: u32, dot: f32) {
  let base = row * P.cols;
  let rstd = rstdIn[row];
  let k = rstd * rstd * rstd * dot / f32(P.cols);
  for (var c = start; c < P.cols; c += stride) { outF[base + c] = rstd * W[c] * G[base + c] - X[base + c] * k; }
}

@compute @workgroup_size(WG)
fn rms_norm_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let row = linearId(wid, nwg, lid);
  if (row >= P.rows) { return; }
  let rstd = 1.0 / sqrt(sumSquares(row * P.cols, 0u, 1u) / f32(P.cols) + P.eps);
  rstdOut[row] = rstd;
  normalize(row, 0u, 1u, rstd);
}

@compute @workgroup_size(WG)
fn rms_norm_tree(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let row = workgroupIndex(wid, nwg);
  let rowC = min(row, P.rows - 1u);
  let rstd = 1.0 / sqrt(treeSum(lid, sumSquares(rowC * P.cols, lid, WG)) / f32(P.cols) + P.eps);
  if (row >= P.rows) { return; }
  if (lid == 0u) { rstdOut[row] = rstd; }
  normalize(row, lid, WG, rstd);
}

@compute @workgroup_size(WG)
fn rms_norm_bwd_gx_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_index) lid: u32) {
  let row = linearId(wid, nwg, lid);
  if (row >= P.rows) { return; }
  inputGrad(row, 0u, 1u, gwxDot(row * P.cols, 0u, 1u));
}

@compute @workgroup_size(WG)
fn rms_norm_bwd_gx_tree(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_index) lid: u32) {
  let row = workgroupIndex(wid, nwg);
  let dot = treeSum(lid, gwxDot(min(row, P.rows - 1u) * P.cols, lid, WG));
  if (row >= P.rows) { return; }
  inputGrad(row, lid, WG, dot);
}

// Both backward outputs in one dispatch (the 'tree' variant): workgroups [0, rows) are rms_norm_bwd_gx_tree's rows,
// the next colGroups · blocks ones rms_norm_bwd_gw's (column group, row block) pairs, column group fastest, writing
// gwOut. The branch depends on the workgroup index alone, so the barriers stay in uniform control flow.
@compute @workgroup_size(WG)
fn rms_norm_bwd_tree(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
  let g = workgroupIndex(wid, nwg);
  if (g < P.rows) {
    let dot = treeSum(lid, gwxDot(g * P.cols, lid, WG));
    inputGrad(g, lid, WG, dot);
    return;
  }
  let colGroups = (P.cols + WG - 1u) / WG;
  let pair = g - P.rows;
  let c = (pair % colGroups) * WG + lid;
  let block = pair / colGroups;
  let r0 = block * P.rowsPerBlock;
  if (c >= P.cols || r0 >= P.rows) { return; }
  let r1 = min(r0 + P.rowsPerBlock, P.rows);
  var s = 0.0;
  for (var r = r0; r < r1; r++) { s = fma(G[r * P.cols + c] * X[r * P.cols + c], rstdIn[r], s); }
  gwOut[block * P.cols + c] = s;
}

// out[block · cols + c] = Σ_{rows r of the block} g[r, c]·x[r, c]·rstd[r]; grid x: columns, y: row blocks.
@compute @workgroup_size(WG)
fn rms_norm_bwd_gw(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x * WG + lid;
  if (c >= P.cols) { return; }
  let r0 = wid.y * P.rowsPerBlock;
  let r1 = min(r0 + P.rowsPerBlock, P.rows);
  var s = 0.0;
  for (var r = r0; r < r1; r++) { s = fma(G3[r * P.cols + c] * X[r * P.cols + c], rstdIn[r], s); }
  outF[wid.y * P.cols + c] = s;
}

@compute @workgroup_size(WG)
fn rms_norm_rows4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
  let row = linearId(wid, nwg, lid);
  if (row >= P.rows) { return; }
  let c4 = P.cols / 4u;
  let base = row * c4;
  var s = 0.0;
  for (var c = 0u; c < c4; c++) { let v = X4[base + c]; s += dot(v, v); }
  let rstd = 1.0 / sqrt(s / f32(P.cols) + P.eps);
  rstdOut[row] = rstd;
  for (var c = 0u; c < c4; c++) { out4[base + c] = X4[base + c] * rstd * W4[c]; }
}

@compute @workgroup_size(WG)
fn rms_norm_bwd_gx_rows4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) lid: u32) {
  let row = linearId(wid, nwg, lid);
  if (row >= P.rows) { return; }
  let c4 = P.cols / 4u;
  let base = row * c4;
  var dot4 = vec4<f32>(0.0);
  for (var c = 0u; c < c4; c++) { dot4 = fma(G4[base + c] * W4[c], X4[base + c], dot4); }
  let rstd = rstdIn[row];
  let k = rstd * rstd * rstd * (dot4.x + dot4.y + dot4.z + dot4.w) / f32(P.cols);
  for (var c = 0u; c < c4; c++) { out4[base + c] = rstd * W4[c] * G4[base + c] - X4[base + c] * k; }
}

// rms_norm_bwd_gw over four columns per invocation.
@compute @workgroup_size(WG)
fn rms_norm_bwd_gw4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x * WG + lid;
  let c4 = P.cols / 4u;
  if (c >= c4) { return; }
  let r0 = wid.y * P.rowsPerBlock;
  let r1 = min(r0 + P.rowsPerBlock, P.rows);
  var s = vec4<f32>(0.0);
  for (var r = r0; r < r1; r++) { s = fma(G34[r * c4 + c] * X4[r * c4 + c], vec4<f32>(rstdIn[r]), s); }
  out4[wid.y * c4 + c] = s;
}
