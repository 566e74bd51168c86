// Fused log-softmax + gather + entropy over logits [rows, cols] (contract: src/backend/model_kernels.ts,
// logSoftmaxGather / logSoftmaxGatherBackward). One read of each row with an online log-sum-exp that also
// carries t = Σ exp(x − m)·x, so entropy = lse − t / s; the [rows, cols] log-probabilities are never written.
//   lsg_rows: one invocation per row, no workgroup memory or barriers (CPU rasterisers: lanes are SIMD
//     lanes, a per-lane row costs the same loads as a shared one and needs no reduction).
//   lsg_tree: one workgroup per row, strided partial states merged by a workgroup-memory tree (GPUs).
//   lsg_bwd: gLogits, one workgroup per (row, chunk of WG·4·U columns), row values loaded once per
//     invocation.
// The row is read four columns at a time: one aligned vec4 load when the template's V4 is 1 (cols % 4 == 0),
// else four scalar loads; columns past the row end are masked. Template: __WG__, __V4__, __U__ (vec4 chunks
// per step).

struct Params {
  rows: u32,
  cols: u32,
  chunksPerRow: u32,   // lsg_bwd: column chunks per row
  pad: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> X4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> targets: array<i32>;
// lsg_rows / lsg_tree
@group(0) @binding(1) var<storage, read_write> logp: array<f32>;
@group(0) @binding(4) var<storage, read_write> entropy: array<f32>;
@group(0) @binding(5) var<storage, read_write> lseOut: array<f32>;
// lsg_bwd
@group(0) @binding(1) var<storage, read_write> gX: array<f32>;
@group(0) @binding(1) var<storage, read_write> gX4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> lseIn: array<f32>;
@group(0) @binding(5) var<storage, read> entIn: array<f32>;
@group(0) @binding(6) var<storage, read> gLogp: array<f32>;
@group(0) @binding(7) var<storage, read> gEnt: array<f32>;

//#include grid.wgsl
const U: u32 = __U__u;
const NEG: f32 = -1.0e30;

// Accessors in two versions, picked by the suffix _0 / _1 that the V4 token expands to: an entry point may
// reference only one of the two variables bound at a binding.
// Columns c … c + 3 of the row starting at `base` (c a multiple of 4), NEG past the row end.
fn load4_0(base: u32, c: u32) -> vec4<f32> {
  let ok = vec4<u32>(c, c + 1u, c + 2u, c + 3u) < vec4<u32>(P.cols);
  let last = base + P.cols - 1u;
  let v = vec4<f32>(X[min(base + c, last)], X[min(base + c + 1u, last)], X[min(base + c + 2u, last)], X[min(base + c + 3u, last)]);
  return select(vec4<f32>(NEG), v, ok);
}

fn load4_1(base: u32, c: u32) -> vec4<f32> {
  let ok = vec4<u32>(c, c + 1u, c + 2u, c + 3u) < vec4<u32>(P.cols);
  return select(vec4<f32>(NEG), X4[(base + min(c, P.cols - 4u)) / 4u], ok);
}

fn load1_0(i: u32) -> f32 { return X[i]; }
fn load1_1(i: u32) -> f32 { return X4[i / 4u][i % 4u]; }

// Stores columns c … c + 3 (those inside the row) of the row starting at `base`.
fn store4_0(base: u32, c: u32, v: vec4<f32>) {
  let n = min(4u, P.cols - c);
  for (var e = 0u; e < n; e++) { gX[base + c + e] = v[e]; }
}

fn store4_1(base: u32, c: u32, v: vec4<f32>) { gX4[(base + c) / 4u] = v; }

// Online state over a row: m (running max), s = Σ exp(x − m), t = Σ exp(x − m)·x.
struct Lse {
  m: f32,
  s: f32,
  t: f32,
}

fn merge(a: Lse, b: Lse) -> Lse {
  let m = max(a.m, b.m);
  let ea = exp(a.m - m);
  let eb = exp(b.m - m);
  return Lse(m, a.s * ea + b.s * eb, a.t * ea + b.t * eb);
}

// Folds U vec4 chunks starting at column c into the state (one rescale per step).
fn step(st: Lse, base: u32, c: u32) -> Lse {
  var x: array<vec4<f32>, U>;
  var mx = st.m;
  for (var u = 0u; u < U; u++) {
    x[u] = load4___V4__(base, c + 4u * u);
    mx = max(mx, max(max(x[u].x, x[u].y), max(x[u].z, x[u].w)));
  }
  let a = exp(st.m - mx);
  var s = st.s * a;
  var t = st.t * a;
  for (var u = 0u; u < U; u++) {
    let ok = x[u] > vec4<f32>(NEG);
    let e = select(vec4<f32>(0.0), exp(x[u] - vec4<f32>(mx)), ok);
    s += e.x + e.y + e.z + e.w;
    t += dot(e, select(vec4<f32>(0.0), x[u], ok));
  }
  return Lse(mx, s, t);
}

fn finish(row: u32, st: Lse) {
  let lse = st.m + log(st.s);
  lseOut[row] = lse;
  entropy[row] = lse - st.t / st.s;
  let t = targets[row];
  var lp = 0.0;
  if (t >= 0 && u32(t) < P.cols) { lp = load1___V4__(row * P.cols + u32(t)) - lse; }
  logp[row] = lp;
}

@compute @workgroup_size(WG)
fn lsg_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let row = linearId(wid, nwg, lid);
  if (row >= P.rows) { return; }
  let base = row * P.cols;
  var st = Lse(NEG, 0.0, 0.0);
  for (var c = 0u; c < P.cols; c += 4u * U) { st = step(st, base, c); }
  finish(row, st);
}

var<workgroup> tm: array<f32, WG>;
var<workgroup> ts: array<f32, WG>;
var<workgroup> tt: array<f32, WG>;

@compute @workgroup_size(WG)
fn lsg_tree(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let row = workgroupIndex(wid, nwg);
  let inRange = row < P.rows;
  let base = row * P.cols;
  var st = Lse(NEG, 0.0, 0.0);
  if (inRange) {
    for (var c = lid * 4u * U; c < P.cols; c += WG * 4u * U) { st = step(st, base, c); }
  }
  tm[lid] = st.m;
  ts[lid] = st.s;
  tt[lid] = st.t;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (lid < k) {
      let r = merge(Lse(tm[lid], ts[lid], tt[lid]), Lse(tm[lid + k], ts[lid + k], tt[lid + k]));
      tm[lid] = r.m;
      ts[lid] = r.s;
      tt[lid] = r.t;
    }
    workgroupBarrier();
  }
  if (inRange && lid == 0u) { finish(row, Lse(tm[0], ts[0], tt[0])); }
}

// gLogits[r, c] = gl·([c == t] − p) − ge·p·(x − lse + entropy), p = exp(x − lse); gl = 0 for ignored rows.
@compute @workgroup_size(WG)
fn lsg_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let g = workgroupIndex(wid, nwg);
  let row = g / P.chunksPerRow;
  if (row >= P.rows) { return; }
  let chunk = g % P.chunksPerRow;
  let t = targets[row];
  let gl = select(0.0, gLogp[row], t >= 0 && u32(t) < P.cols);
  let lse = lseIn[row];
  let ge = gEnt[row];
  let shift = entIn[row] - lse;
  let base = row * P.cols;
  for (var u = 0u; u < U; u++) {
    let c = ((chunk * U + u) * WG + lid) * 4u;
    if (c >= P.cols) { break; }
    let x = load4___V4__(base, c);
    let p = exp(x - vec4<f32>(lse));
    let hit = vec4<f32>(select(vec4<u32>(0u), vec4<u32>(1u), vec4<i32>(i32(c), i32(c) + 1, i32(c) + 2, i32(c) + 3) == vec4<i32>(t)));
    let gx = gl * (hit - p) - ge * p * (x + vec4<f32>(shift));
    store4___V4__(base, c, gx);
  }
}
