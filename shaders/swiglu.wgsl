// SwiGLU gate, forward and backward, elementwise over n (contract: src/backend/model_kernels.ts):
// out = silu(g)·up; gGate = gOut·up·σ(g)·(1 + g·(1 − σ(g))); gUp = gOut·silu(g).
// σ is evaluated from exp(−|g|), so no overflow for large |g|. The *4 entries handle four elements per
// invocation with vec4 loads (a quarter of the loads: what costs most on CPU rasterisers) over the first
// n4 = ⌊n/4⌋·4 elements; the scalar entries cover [start, n) (the tail, or everything).

struct Params {
  n: u32,
  start: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> out0: array<f32>;   // out (swiglu) / gGate
@group(0) @binding(2) var<storage, read> gate: array<f32>;
@group(0) @binding(3) var<storage, read> up: array<f32>;
@group(0) @binding(4) var<storage, read> gOut: array<f32>;
@group(0) @binding(5) var<storage, read_write> gUp: array<f32>;
@group(0) @binding(1) var<storage, read_write> out04: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> gate4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> up4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> gOut4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> gUp4: array<vec4<f32>>;

//#include grid.wgsl

fn sigmoid(x: vec4<f32>) -> vec4<f32> {
  let e = exp(-abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= vec4<f32>(0.0));
}

@compute @workgroup_size(WG)
fn swiglu(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let i = P.start + linearId(wid, nwg, lid);
  if (i >= P.n) { return; }
  let g = gate[i];
  out0[i] = g * sigmoid(vec4<f32>(g)).x * up[i];
}

@compute @workgroup_size(WG)
fn swiglu4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let i = linearId(wid, nwg, lid);
  if (i >= P.n / 4u) { return; }
  let g = gate4[i];
  out04[i] = g * sigmoid(g) * up4[i];
}

@compute @workgroup_size(WG)
fn swiglu_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let i = P.start + linearId(wid, nwg, lid);
  if (i >= P.n) { return; }
  let g = gate[i];
  let sg = sigmoid(vec4<f32>(g)).x;
  let go = gOut[i];
  out0[i] = go * up[i] * sg * (1.0 + g * (1.0 - sg));
  gUp[i] = go * g * sg;
}

@compute @workgroup_size(WG)
fn swiglu_bwd4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let i = linearId(wid, nwg, lid);
  if (i >= P.n / 4u) { return; }
  let g = gate4[i];
  let sg = sigmoid(g);
  let go = gOut4[i];
  out04[i] = go * up4[i] * sg * (1.0 + g * (1.0 - sg));
  gUp4[i] = go * g * sg;
}
