// Multi-tensor optimizer kernels: one dispatch serves several tensors, each bound at its own bindings (WGSL
// cannot index an array of buffers, so a switch picks the tensor). The WebGPU backend coalesces runs of
// consecutive adamw / sumSquares calls into these (model_kernels_webgpu.ts, Dispatcher.coalesce); the per-element
// arithmetic is adamw.wgsl's.
//   adamw_multi2 / adamw_multi3: AdamW over 2 / 3 tensors laid end to end: invocation i belongs to tensor t
//     with end(t−1) ≤ i < end(t) (`end0..2`, cumulative element counts), element i − end(t−1); each tensor has
//     its own decay (1 − lr·weightDecay: norm weights are exempt). adamw4_multi2 / 3: the same over vec4s, for
//     tensors that all have a multiple of 4 elements (ends count vec4s; a quarter of the loads).
//   sum_squares_multi: pass 1 of adamw.wgsl's sum_squares over up to 7 tensors: workgroup g belongs to tensor
//     t with end(t−1) ≤ g < end(t) (`end0..6`, cumulative workgroup counts), grid-strides over that tensor's
//     `n<t>` elements with the tensor's workgroups, and writes its partial to partials[base + g]. The final
//     pass over all partials is sum_squares (adamw.wgsl). Unused slots repeat a bound tensor with no workgroups.

struct Params {
  lr: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  oneMinusBeta1: f32,
  oneMinusBeta2: f32,
  bc1: f32,
  bc2: f32,
  end0: u32,
  end1: u32,
  end2: u32,
  end3: u32,
  end4: u32,
  end5: u32,
  end6: u32,
  n0: u32,
  n1: u32,
  n2: u32,
  n3: u32,
  n4: u32,
  n5: u32,
  n6: u32,
  decay0: f32,
  decay1: f32,
  decay2: f32,
  base: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
// adamw_multi: scale, then param / mom / vel / grad per tensor
@group(0) @binding(1) var<storage, read> scale: array<f32>;
@group(0) @binding(2) var<storage, read_write> param0: array<f32>;
@group(0) @binding(3) var<storage, read_write> mom0: array<f32>;
@group(0) @binding(4) var<storage, read_write> vel0: array<f32>;
@group(0) @binding(5) var<storage, read> grad0: array<f32>;
@group(0) @binding(6) var<storage, read_write> param1: array<f32>;
@group(0) @binding(7) var<storage, read_write> mom1: array<f32>;
@group(0) @binding(8) var<storage, read_write> vel1: array<f32>;
@group(0) @binding(9) var<storage, read> grad1: array<f32>;
@group(0) @binding(10) var<storage, read_write> param2: array<f32>;
@group(0) @binding(11) var<storage, read_write> mom2: array<f32>;
@group(0) @binding(12) var<storage, read_write> vel2: array<f32>;
@group(0) @binding(13) var<storage, read> grad2: array<f32>;
// adamw4_multi: the same bindings seen as vec4
@group(0) @binding(2) var<storage, read_write> param40: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> mom40: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> vel40: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> grad40: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> param41: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> mom41: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> vel41: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read> grad41: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> param42: array<vec4<f32>>;
@group(0) @binding(11) var<storage, read_write> mom42: array<vec4<f32>>;
@group(0) @binding(12) var<storage, read_write> vel42: array<vec4<f32>>;
@group(0) @binding(13) var<storage, read> grad42: array<vec4<f32>>;
// sum_squares_multi: partials, then one input per tensor
@group(0) @binding(1) var<storage, read_write> partials: array<f32>;
@group(0) @binding(2) var<storage, read> X0: array<f32>;
@group(0) @binding(3) var<storage, read> X1: array<f32>;
@group(0) @binding(4) var<storage, read> X2: array<f32>;
@group(0) @binding(5) var<storage, read> X3: array<f32>;
@group(0) @binding(6) var<storage, read> X4: array<f32>;
@group(0) @binding(7) var<storage, read> X5: array<f32>;
@group(0) @binding(8) var<storage, read> X6: array<f32>;

//#include grid.wgsl

//#include adamw_step.wgsl

// Tensor k's element i (scalar; the vec4 versions below): adamw.wgsl's arithmetic through the shared step.
//#unroll k 3
fn adamw{k}(i: u32) {
  let r = adamwStep(vec4<f32>(param{k}[i]), vec4<f32>(mom{k}[i]), vec4<f32>(vel{k}[i]), vec4<f32>(grad{k}[i]), P.decay{k});
  param{k}[i] = r[0].x; mom{k}[i] = r[1].x; vel{k}[i] = r[2].x;
}

//#end
@compute @workgroup_size(WG)
fn adamw_multi2(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let i = linearId(wid, nwg, lid);
  if (i < P.end0) { adamw0(i); } else if (i < P.end1) { adamw1(i - P.end0); }
}

@compute @workgroup_size(WG)
fn adamw_multi3(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let i = linearId(wid, nwg, lid);
  if (i < P.end0) { adamw0(i); } else if (i < P.end1) { adamw1(i - P.end0); } else if (i < P.end2) { adamw2(i - P.end1); }
}

// vec4 versions, for chunks whose tensors all have a multiple of 4 elements (`end0..2` then count vec4s).
//#unroll k 3
fn adamw4{k}(i: u32) {
  let r = adamwStep(param4{k}[i], mom4{k}[i], vel4{k}[i], grad4{k}[i], P.decay{k});
  param4{k}[i] = r[0]; mom4{k}[i] = r[1]; vel4{k}[i] = r[2];
}

//#end
@compute @workgroup_size(WG)
fn adamw4_multi2(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let i = linearId(wid, nwg, lid);
  if (i < P.end0) { adamw40(i); } else if (i < P.end1) { adamw41(i - P.end0); }
}

@compute @workgroup_size(WG)
fn adamw4_multi3(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let i = linearId(wid, nwg, lid);
  if (i < P.end0) { adamw40(i); } else if (i < P.end1) { adamw41(i - P.end0); } else if (i < P.end2) { adamw42(i - P.end1); }
}

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn sum_squares_multi(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
  let g = workgroupIndex(wid, nwg);
  var ends = array<u32, 7>(P.end0, P.end1, P.end2, P.end3, P.end4, P.end5, P.end6);
  var counts = array<u32, 7>(P.n0, P.n1, P.n2, P.n3, P.n4, P.n5, P.n6);
  var t = 0u;
  var first = 0u;
  for (; t < 6u && g >= ends[t]; t++) { first = ends[t]; }
  let groups = ends[t] - first;
  let n = counts[t];
  let start = (g - first) * WG + lid;
  let stride = groups * WG;
  // One loop per tensor (the switch outside the loop: a switch per load costs CPU rasterisers a third of the pass).
  var s = 0.0;
  switch t {
//#unroll k 7
    case {k}u: {
      for (var i = start; i < n; i += stride) { let v = X{k}[i]; s = fma(v, v, s); }
    }
//#end
    default: {}
  }
  red[lid] = s;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (lid < k) { red[lid] += red[lid + k]; }
    workgroupBarrier();
  }
  if (lid == 0u) { partials[P.base + g] = red[0]; }
}
