// Reductions over x viewed as [outer, len, inner]: out[o, q] = op_{r < len} x[(o * len + r) * inner + q].
// reduce_loop: one invocation per output, sequential loop (inner > 1 or short rows: reads coalesce over q).
// reduce_tree: one workgroup per output, strided partial reductions then a shared-memory tree.
// __OP__: a REDUCE_* code (src/backend/ops.ts, named in the generated ops.gen.wgsl). The identity (0, -inf, +inf) comes in the uniform `init`.

struct Params {
  outer: u32,
  len: u32,
  inner: u32,
  total: u32,   // outer * inner
  init: f32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> outF: array<f32>;
@group(0) @binding(2) var<storage, read> xF: array<f32>;

//#include grid.wgsl
const OP: u32 = __OP__u;
//#include ops.gen.wgsl

fn combine(a: f32, b: f32) -> f32 {
  if (OP == REDUCE_SUM) { return a + b; }
  if (OP == REDUCE_MAX) { return max(a, b); }
  return min(a, b);
}

@compute @workgroup_size(WG)
fn reduce_loop(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let i = linearId(wid, nwg, lid);
  if (i >= P.total) { return; }
  let o = i / P.inner;
  let q = i % P.inner;
  var base = o * P.len * P.inner + q;
  var acc = P.init;
  for (var r = 0u; r < P.len; r++) {
    acc = combine(acc, xF[base]);
    base += P.inner;
  }
  outF[i] = acc;
}

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn reduce_tree(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let i = workgroupIndex(wid, nwg);   // uniform across the workgroup
  let inRange = i < P.total;
  let o = i / P.inner;
  let q = i % P.inner;
  var acc = P.init;
  if (inRange) {
    let base = o * P.len * P.inner + q;
    for (var r = lid; r < P.len; r += WG) {
      acc = combine(acc, xF[base + r * P.inner]);
    }
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      partial[lid] = combine(partial[lid], partial[lid + s]);
    }
    workgroupBarrier();
  }
  if (inRange && lid == 0u) {
    outF[i] = partial[0];
  }
}
