// Clipped policy-gradient token loss (PPO / GRPO / DAPO), forward and backward, one invocation per token
// (contract: src/backend/model_kernels.ts, tokenLoss / tokenLossBackward). Both entries pick the branch with
// the same `branch` function, so the gradient always belongs to the branch the forward chose.
//   token_loss: loss[i] = weight·l and stats [3, n] (low clip, high clip, k3 KL), zero for weight-0 tokens.
//   token_loss_bwd: gLogp[i] = gLoss·weight·(−A·r) on the unclipped branch, else 0.
// The k3 term (r − 1) − d cancels to ~d²/2 for the small log-ratios of on-policy steps: it is summed as a
// series there, so float32 keeps its relative precision.

struct Params {
  n: u32,
  lo: f32,        // 1 − epsLow
  hi: f32,        // 1 + epsHigh
  dualClip: f32,  // 0 = off
  clampC: f32,    // log-ratio clamp
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> logp: array<f32>;
@group(0) @binding(2) var<storage, read> oldLogp: array<f32>;
@group(0) @binding(3) var<storage, read> adv: array<f32>;
@group(0) @binding(4) var<storage, read> weight: array<f32>;
// token_loss
@group(0) @binding(5) var<storage, read_write> loss: array<f32>;
@group(0) @binding(6) var<storage, read_write> stats: array<f32>;
// token_loss_bwd
@group(0) @binding(5) var<storage, read> gLoss: array<f32>;
@group(0) @binding(6) var<storage, read_write> gLogp: array<f32>;

//#include grid.wgsl
/** |d| below which k3 = expm1(d) − d is summed as a series (terms through d⁶: error < 1e-10 relative). */
const SERIES_MAX: f32 = 0.125;

struct Branch {
  raw: f32,       // logp − oldLogp before the clamp
  d: f32,         // clamped log-ratio
  r: f32,
  l: f32,
  unclipped: bool,
}

fn branch(i: u32) -> Branch {
  let a = adv[i];
  let raw = logp[i] - oldLogp[i];
  let d = clamp(raw, -P.clampC, P.clampC);
  let r = exp(d);
  let l1 = -a * r;
  let l2 = -a * clamp(r, P.lo, P.hi);
  var l = max(l1, l2);
  let bound = -a * P.dualClip;
  let dual = P.dualClip > 0.0 && a < 0.0 && bound < l;
  if (dual) { l = bound; }
  return Branch(raw, d, r, l, l1 >= l2 && !dual && abs(raw) <= P.clampC);
}

fn k3(d: f32, r: f32) -> f32 {
  if (abs(d) < SERIES_MAX) {
    return d * d * (0.5 + d * (1.0 / 6.0 + d * (1.0 / 24.0 + d * (1.0 / 120.0 + d * (1.0 / 720.0)))));
  }
  return (r - 1.0) - d;
}

@compute @workgroup_size(WG)
fn token_loss(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let i = linearId(wid, nwg, lid);
  if (i >= P.n) { return; }
  let b = branch(i);
  let w = weight[i];
  let a = adv[i];
  let valid = w != 0.0;
  loss[i] = w * b.l;
  stats[i] = select(0.0, 1.0, valid && b.r < P.lo && a < 0.0);
  stats[P.n + i] = select(0.0, 1.0, valid && b.r > P.hi && a > 0.0);
  stats[2u * P.n + i] = select(0.0, k3(b.d, b.r), valid);
}

@compute @workgroup_size(WG)
fn token_loss_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
  let i = linearId(wid, nwg, lid);
  if (i >= P.n) { return; }
  let b = branch(i);
  gLogp[i] = select(0.0, gLoss[i] * weight[i] * (-adv[i] * b.r), b.unclipped);
}
