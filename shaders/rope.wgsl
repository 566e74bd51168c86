// Rotary position embedding, rotate-half convention (contract: src/backend/model_kernels.ts, rope), over
// x [batch, t, heads, headDim], one invocation per rotated pair (j, j + headDim/2).
// Angles are reduced exactly enough for long contexts: the host passes each frequency in turns per
// position, g_j = θ^(−2j/headDim) / 2π, split into three 12-bit-mantissa parts (table[3j + k]), and the
// position (< 2^24) is split into two 12-bit halves, so every partial product is exact in f32 and its
// fractional part loses nothing; the summed turns are wrapped to [−½, ½] before cos / sin, whose argument
// thus stays in [−π, π]. A plain f32 pos·f_j would be off by ~1e-4 rad at position 4096.

struct Params {
  pairs: u32,      // batch · t · heads · half
  half: u32,
  heads: u32,
  sign: f32,       // −1 for the inverse rotation
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> outF: array<f32>;
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read> positions: array<i32>;
@group(0) @binding(4) var<storage, read> table: array<f32>;

//#include grid.wgsl
const TAU: f32 = 6.283185307179586;

@compute @workgroup_size(WG)
fn rope(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linearId(wid, nwg, lid);
  if (i >= P.pairs) { return; }
  let j = i % P.half;
  let bth = i / P.half;             // (b·t + t)·heads + h
  let pos = positions[bth / P.heads];
  let ap = u32(abs(pos));
  let lo = f32(ap & 4095u);
  let hi = f32(ap >> 12u) * 4096.0;
  let g = vec3<f32>(table[3u * j], table[3u * j + 1u], table[3u * j + 2u]);
  let turnsLo = fract(lo * g);
  let turnsHi = fract(hi * g);
  var turns = turnsLo.x + turnsLo.y + turnsLo.z + turnsHi.x + turnsHi.y + turnsHi.z;
  turns = turns - round(turns);
  let a = TAU * turns * select(1.0, -1.0, pos < 0) * P.sign;
  let c = cos(a);
  let s = sin(a);
  let base = bth * 2u * P.half + j;
  let x1 = X[base];
  let x2 = X[base + P.half];
  outF[base] = x1 * c - x2 * s;
  outF[base + P.half] = x2 * c + x1 * s;
}
