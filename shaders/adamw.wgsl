// Optimizer kernels (contract: src/backend/model_kernels.ts, adamw / sumSquares).
//   adamw: decoupled AdamW in place over n elements, the gradient scaled by scale[0] (read on the device,
//     so gradient clipping needs no readback). Bias corrections and 1 − lr·weightDecay come from the host
//     in float64 and are rounded once. adamw4 updates four elements per invocation with vec4 loads over the
//     first ⌊n/4⌋·4 elements; adamw covers [start, n).
//   sum_squares: Σ x² in two passes without float atomics: pass 1 writes one partial per workgroup (a
//     grid-stride loop, then a workgroup-memory tree), pass 2 (one workgroup, `final_` = 1, `square` = 0)
//     sums the partials and adds out[0] when accumulating. Small inputs take the final pass directly.

struct Params {
  n: u32,
  final_: u32,       // sum_squares: 1 writes out[0] (plus out[0] when accumulate), 0 writes out[workgroup]
  accumulate: u32,
  square: u32,       // sum_squares: 1 sums x² (the input), 0 sums x (the partials)
  lr: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  decay: f32,        // 1 − lr·weightDecay
  oneMinusBeta1: f32,
  oneMinusBeta2: f32,
  bc1: f32,          // 1 − β1^step
  bc2: f32,          // 1 − β2^step
  start: u32,        // adamw: first element
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read_write> mom: array<f32>;
@group(0) @binding(3) var<storage, read_write> vel: array<f32>;
@group(0) @binding(4) var<storage, read> grad: array<f32>;
@group(0) @binding(5) var<storage, read> scale: array<f32>;
@group(0) @binding(1) var<storage, read_write> param4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> mom4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> vel4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> grad4: array<vec4<f32>>;
// sum_squares
@group(0) @binding(1) var<storage, read_write> sumOut: array<f32>;
@group(0) @binding(2) var<storage, read> X: array<f32>;

//#include grid.wgsl

//#include adamw_step.wgsl

@compute @workgroup_size(WG)
fn adamw(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let i = P.start + linearId(wid, nwg, lid);
  if (i >= P.n) { return; }
  let r = adamwStep(vec4<f32>(param[i]), vec4<f32>(mom[i]), vec4<f32>(vel[i]), vec4<f32>(grad[i]), P.decay);
  mom[i] = r[1].x;
  vel[i] = r[2].x;
  param[i] = r[0].x;
}

@compute @workgroup_size(WG)
fn adamw4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let i = linearId(wid, nwg, lid);
  if (i >= P.n / 4u) { return; }
  let r = adamwStep(param4[i], mom4[i], vel4[i], grad4[i], P.decay);
  mom4[i] = r[1];
  vel4[i] = r[2];
  param4[i] = r[0];
}

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn sum_squares(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let groups = nwg.x * nwg.y;
  let g = workgroupIndex(wid, nwg);
  var s = 0.0;
  for (var i = g * WG + lid; i < P.n; i += groups * WG) {
    let v = X[i];
    s = fma(v, select(1.0, v, P.square == 1u), s);
  }
  red[lid] = s;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (lid < k) { red[lid] += red[lid + k]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    if (P.final_ == 1u) {
      sumOut[0] = select(0.0, sumOut[0], P.accumulate == 1u) + red[0];
    } else {
      sumOut[g] = red[0];
    }
  }
}
