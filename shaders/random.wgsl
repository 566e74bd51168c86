// Counter-based random numbers, bit-identical to src/backend/rng.ts (lowbias32 hash, u32 wrap-around math).
// uniform(i) = a + (b - a) * u(i); normal(i) = a + b * sqrt(-2 ln u1) * cos(2π u2) (Box-Muller in f32).

struct Params {
  n: u32,
  key: u32,
  kind: u32,   // 0 uniform, 1 normal
  offset: u32, // index of element 0 in the whole storage (a window of a storage larger than one binding)
  a: f32,
  b: f32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> outF: array<f32>;

//#include grid.wgsl

fn mix32(v: u32) -> u32 {
  var x = v;
  x ^= x >> 16u;
  x *= 0x7feb352du;
  x ^= x >> 15u;
  x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}

fn bits(c: u32) -> u32 {
  return mix32(mix32(c) ^ P.key);
}

@compute @workgroup_size(WG)
fn random(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let i = linearId(wid, nwg, lid);
  if (i >= P.n) { return; }
  let g = i + P.offset;
  if (P.kind == 0u) {
    let u = f32(bits(g) >> 8u) * 5.9604644775390625e-8;
    outF[i] = P.a + (P.b - P.a) * u;
  } else {
    let u1 = f32((bits(2u * g) >> 8u) + 1u) * 5.9604644775390625e-8;
    let u2 = f32(bits(2u * g + 1u) >> 8u) * 5.9604644775390625e-8;
    // cos(2π u2) = -cos(2π u2 - π): keeps the argument in [-π, π) where WGSL bounds the error.
    let c = -cos(6.283185307179586 * u2 - 3.141592653589793);
    outF[i] = P.a + P.b * sqrt(-2.0 * log(u1)) * c;
  }
}
