// Embedding kernels. gather: out[r, c] = table[ids[r], c], one invocation per output element
// (out-of-range ids write NaN; a table window, windowed = 1, holds rows [base, base + rows) and leaves the output
// rows of other ids alone, so the windows of a table larger than one binding fill the output between them);
// gather_half: the same from a 16-bit table (__KIND__ 1 bfloat16, 2 float16), widened; widen_half: a 16-bit storage cast to f32. scatter_add: out[ids[r], c] += src[r, c], one invocation per column c
// looping over r in order, so duplicate ids accumulate deterministically without float atomics
// (out-of-range ids are skipped).

struct Params {
  nIds: u32,
  rowLen: u32,
  rows: u32,    // rows of table (gather) / out (scatter_add)
  total: u32,   // gather: nIds * rowLen; scatter_add: rowLen
  base: u32,    // gather over a window: the table row the window starts at
  windowed: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> outF: array<f32>;
@group(0) @binding(2) var<storage, read> srcF: array<f32>;
@group(0) @binding(3) var<storage, read> ids: array<i32>;
// The 16-bit table of gather_half / widen_half (two elements per word), bound where srcF is for gather.
@group(0) @binding(2) var<storage, read> srcH: array<u32>;

//#include grid.wgsl
//#include half_widen.wgsl

const KIND: u32 = __KIND__u;

fn halfAt(i: u32) -> f32 { return widenHalf(KIND, halfBits(srcH[i >> 1u], i)); }

/** Source element of output element i of a gather (the row its id names, same column), or -1 for an id out of range
 *  (the output is NaN then), -2 for one outside a window (another window writes it). Shared by the float32 and the
 *  16-bit table. */
fn gatheredIndex(i: u32) -> i32 {
  let id = ids[i / P.rowLen] - i32(P.base);
  if (id < 0 || u32(id) >= P.rows) { return select(-1, -2, P.windowed == 1u); }
  return i32(u32(id) * P.rowLen + i % P.rowLen);
}

@compute @workgroup_size(WG)
fn gather(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let i = linearId(wid, nwg, lid);
  if (i >= P.total) { return; }
  let s = gatheredIndex(i);
  if (s == -2) { return; }
  if (s < 0) { outF[i] = bitcast<f32>(0x7fc00000u + P.total * 0u); return; }
  outF[i] = srcF[u32(s)];
}

@compute @workgroup_size(WG)
fn scatter_add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let c = linearId(wid, nwg, lid);
  if (c >= P.rowLen) { return; }
  for (var r = 0u; r < P.nIds; r++) {
    let id = ids[r];
    if (id >= 0 && u32(id) < P.rows) {
      let o = u32(id) * P.rowLen + c;
      outF[o] = outF[o] + srcF[r * P.rowLen + c];
    }
  }
}

@compute @workgroup_size(WG)
fn gather_half(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let i = linearId(wid, nwg, lid);
  if (i >= P.total) { return; }
  let s = gatheredIndex(i);
  if (s == -2) { return; }
  if (s < 0) { outF[i] = bitcast<f32>(0x7fc00000u + P.total * 0u); return; }
  outF[i] = halfAt(u32(s));
}

@compute @workgroup_size(WG)
fn widen_half(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let i = linearId(wid, nwg, lid);
  if (i >= P.total) { return; }
  outF[i] = halfAt(i);
}
