// Row-wise softmax / log-softmax over x viewed as [rows, cols]. One workgroup per row:
// each invocation keeps an online (max, sum of exp) pair over a strided slice of the row, the pairs are
// merged by a shared-memory tree, then every invocation writes its slice. __LOG__: 1 for log-softmax.

struct Params {
  rows: u32,
  cols: u32,
  ninf: f32,   // -inf, supplied by the host
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> outF: array<f32>;
@group(0) @binding(2) var<storage, read> xF: array<f32>;

//#include grid.wgsl
const LOG: bool = __LOG__u == 1u;

var<workgroup> smax: array<f32, WG>;
var<workgroup> ssum: array<f32, WG>;

@compute @workgroup_size(WG)
fn softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let row = workgroupIndex(wid, nwg);   // uniform across the workgroup
  let inRange = row < P.rows;
  let base = row * P.cols;
  var m = P.ninf;
  var s = 0.0;
  if (inRange) {
    for (var c = lid; c < P.cols; c += WG) {
      let v = xF[base + c];
      if (v > m) {
        s = s * exp(m - v) + 1.0;
        m = v;
      } else {
        s += exp(v - m);
      }
    }
  }
  smax[lid] = m;
  ssum[lid] = s;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (lid < k) {
      let m1 = smax[lid];
      let m2 = smax[lid + k];
      let mm = max(m1, m2);
      var s1 = ssum[lid];
      var s2 = ssum[lid + k];
      // Guard -inf - -inf = NaN for empty slices.
      if (s1 > 0.0) { s1 *= exp(m1 - mm); }
      if (s2 > 0.0) { s2 *= exp(m2 - mm); }
      smax[lid] = mm;
      ssum[lid] = s1 + s2;
    }
    workgroupBarrier();
  }
  let lse = smax[0] + log(ssum[0]);
  if (inRange) {
    for (var c = lid; c < P.cols; c += WG) {
      let v = xF[base + c] - lse;
      if (LOG) {
        outF[base + c] = v;
      } else {
        outF[base + c] = exp(v);
      }
    }
  }
}
