// Shared by the attention kernels (attention*.wgsl): the uniform block of src/backend/model_kernels.ts
// attention arguments, and the key-range helpers. The including shader declares `keyStart`.

struct Params {
  tq: u32,
  tk: u32,
  kvStride: u32,
  heads: u32,
  kvHeads: u32,
  group: u32,        // heads / kvHeads
  qOffset: u32,
  causal: u32,
  hasKeyStart: u32,
  scale: f32,
  inf: f32,          // +Infinity: lse of a row that sees no key
  headDim: u32,
  rows: u32,         // batch · heads · tq
}

@group(0) @binding(0) var<uniform> P: Params;

fn firstKey(b: u32) -> u32 {
  if (P.hasKeyStart == 0u) { return 0u; }
  return u32(max(keyStart[b], 0));
}

// Largest query row index (within its head) among the flattened rows first … last of a block.
fn lastQueryRow(first: u32, last: u32) -> u32 {
  return select(P.tq - 1u, last % P.tq, first / P.tq == last / P.tq);
}
