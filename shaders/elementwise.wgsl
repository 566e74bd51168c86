// Elementwise kernels: fill, arange, cast, unary, binary, where, copy, write_view.
// Templated by the host before compilation: __WG__ (workgroup size), __OP__ (unary/binary op code from
// src/backend/ops.ts; the named codes come from the generated include ops.gen.wgsl).
// Strided views: element i of the output shape reads offset + sum(idx[d] * stride[d]) for up to 8 dims
// (MAX_RANK = 6). Work items past 65535 workgroups use a 2-D grid (include/grid.wgsl).

struct Params {
  n: u32,
  rank: u32,
  outOffset: u32,
  flag: u32,      // fill: value bits; arange: mode; cast: mode; where: cond is int32
  scalar: f32,    // unary scalar / arange start
  scalar2: f32,   // arange step
  intStart: i32,  // arange int start
  intStep: i32,   // arange int step
  shape: array<vec4<u32>, 2>,
  strides: array<vec4<u32>, 6>,  // view v, dim d: strides[2v + d/4][d%4]
  offsets: vec4<u32>,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> outF: array<f32>;
@group(0) @binding(1) var<storage, read_write> outU: array<u32>;
@group(0) @binding(2) var<storage, read> xF: array<f32>;
@group(0) @binding(2) var<storage, read> xU: array<u32>;
@group(0) @binding(3) var<storage, read> yF: array<f32>;
@group(0) @binding(4) var<storage, read> zF: array<f32>;

//#include grid.wgsl
const OP: u32 = __OP__u;
//#include ops.gen.wgsl

fn viewStride(view: u32, dim: u32) -> u32 {
  return P.strides[2u * view + dim / 4u][dim % 4u];
}

// Offsets of element i in the (up to) three input views.
fn viewOffsets(i: u32) -> vec3<u32> {
  if (P.rank == 1u) {
    return P.offsets.xyz + i * vec3<u32>(viewStride(0u, 0u), viewStride(1u, 0u), viewStride(2u, 0u));
  }
  var rest = i;
  var offsets = P.offsets.xyz;
  for (var d = i32(P.rank) - 1; d >= 0; d--) {
    let dim = u32(d);
    let size = P.shape[dim / 4u][dim % 4u];
    let index = rest % size;
    rest = rest / size;
    offsets += index * vec3<u32>(viewStride(0u, dim), viewStride(1u, dim), viewStride(2u, dim));
  }
  return offsets;
}

fn nan() -> f32 {
  return bitcast<f32>(0x7fc00000u + P.n * 0u);
}

fn sigmoid(x: f32) -> f32 {
  return 1.0 / (1.0 + exp(-x));
}

fn safeTanh(x: f32) -> f32 {
  let e = exp(-2.0 * abs(x));
  let t = (1.0 - e) / (1.0 + e);
  return select(-t, t, x >= 0.0);
}

// Math.pow semantics for the cases WGSL pow leaves undefined (negative base, zero base, zero exponent).
fn powf(a: f32, b: f32) -> f32 {
  if (b == 0.0) { return 1.0; }
  if (a == 0.0) {
    if (b > 0.0) { return 0.0; }
    return 1.0 / a;
  }
  if (a < 0.0) {
    if (floor(b) != b) { return nan(); }
    let r = pow(-a, b);
    let half = b * 0.5;
    return select(r, -r, floor(half) != half);
  }
  return pow(a, b);
}

fn unaryOp(x: f32, scalar: f32) -> f32 {
  switch OP {
    case UNARY_NEG: { return -x; }
    case UNARY_EXP: { return exp(x); }
    case UNARY_LOG: { return log(x); }
    case UNARY_SQRT: { return sqrt(x); }
    case UNARY_RSQRT: { return 1.0 / sqrt(x); }
    case UNARY_RELU: { return select(0.0, x, x > 0.0); }
    case UNARY_SILU: { return x * sigmoid(x); }
    case UNARY_SIGMOID: { return sigmoid(x); }
    case UNARY_TANH: { return safeTanh(x); }
    case UNARY_ABS: { return abs(x); }
    case UNARY_SQUARE: { return x * x; }
    case UNARY_RECIPROCAL: { return 1.0 / x; }
    case UNARY_POW_SCALAR: { return powf(x, scalar); }
    case UNARY_MUL_SCALAR: { return x * scalar; }
    case UNARY_ADD_SCALAR: { return x + scalar; }
    case UNARY_RELU_GRAD: { return select(0.0, 1.0, x > 0.0); }
    case UNARY_SILU_GRAD: { let sig = sigmoid(x); return sig * (1.0 + x * (1.0 - sig)); }
    case UNARY_SIGN: { return select(select(0.0, -1.0, x < 0.0), 1.0, x > 0.0); }
    default: { return nan(); }
  }
}

fn binaryOp(a: f32, b: f32) -> f32 {
  switch OP {
    case BINARY_ADD: { return a + b; }
    case BINARY_SUB: { return a - b; }
    case BINARY_MUL: { return a * b; }
    case BINARY_DIV: { return a / b; }
    case BINARY_MAX: { return max(a, b); }
    case BINARY_MIN: { return min(a, b); }
    case BINARY_POW: { return powf(a, b); }
    case BINARY_EQ: { return select(0.0, 1.0, a == b); }
    case BINARY_NE: { return select(0.0, 1.0, a != b); }
    case BINARY_LT: { return select(0.0, 1.0, a < b); }
    case BINARY_LE: { return select(0.0, 1.0, a <= b); }
    case BINARY_GT: { return select(0.0, 1.0, a > b); }
    case BINARY_GE: { return select(0.0, 1.0, a >= b); }
    default: { return nan(); }
  }
}

@compute @workgroup_size(WG)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linearId(wid, nwg, lid);
  if (i >= P.n) { return; }
  outU[i] = P.flag;
}

// flag 0: float32 out; 1: int32 out with integral start/step (exact i32 math); 2: int32 out, truncated.
@compute @workgroup_size(WG)
fn arange(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let i = linearId(wid, nwg, lid);
  if (i >= P.n) { return; }
  if (P.flag == 1u) {
    outU[i] = bitcast<u32>(P.intStart + i32(i) * P.intStep);
  } else {
    let v = P.scalar + f32(i) * P.scalar2;
    if (P.flag == 0u) {
      outU[i] = bitcast<u32>(v);
    } else {
      outU[i] = bitcast<u32>(i32(trunc(v)));
    }
  }
}

// flag 0: float32 -> int32 (truncate toward zero); 1: int32 -> float32; 2: same dtype (raw words).
@compute @workgroup_size(WG)
fn cast_dtype(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linearId(wid, nwg, lid);
  if (i >= P.n) { return; }
  let w = xU[i];
  if (P.flag == 0u) {
    outU[i] = bitcast<u32>(i32(bitcast<f32>(w)));
  } else if (P.flag == 1u) {
    outU[i] = bitcast<u32>(f32(bitcast<i32>(w)));
  } else {
    outU[i] = w;
  }
}

@compute @workgroup_size(WG)
fn unary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let i = linearId(wid, nwg, lid);
  if (i >= P.n) { return; }
  let at = viewOffsets(i);
  outF[i] = unaryOp(xF[at.x], P.scalar);
}

@compute @workgroup_size(WG)
fn binary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let i = linearId(wid, nwg, lid);
  if (i >= P.n) { return; }
  let at = viewOffsets(i);
  outF[i] = binaryOp(xF[at.x], yF[at.y]);
}

// cond is read as raw words: float32 nonzero ignores the sign bit (-0 is false); int32 any bit.
@compute @workgroup_size(WG)
fn where_(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let i = linearId(wid, nwg, lid);
  if (i >= P.n) { return; }
  let at = viewOffsets(i);
  var c = xU[at.x];
  if (P.flag == 0u) { c = c & 0x7fffffffu; }
  outF[i] = select(zF[at.z], yF[at.y], c != 0u);
}

@compute @workgroup_size(WG)
fn copy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linearId(wid, nwg, lid);
  if (i >= P.n) { return; }
  let at = viewOffsets(i);
  outU[P.outOffset + i] = xU[at.x];
}

// write_view: out[view 1 (i)] = x[view 0 (i)] (raw words): a strided write such as new keys into a KV cache;
// elements of out outside the view are left alone.
@compute @workgroup_size(WG)
fn write_view(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let i = linearId(wid, nwg, lid);
  if (i >= P.n) { return; }
  let at = viewOffsets(i);
  outU[at.y] = xU[at.x];
}
