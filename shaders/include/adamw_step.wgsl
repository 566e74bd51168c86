// One decoupled AdamW step of four elements, shared by adamw.wgsl and optimizer_multi.wgsl (scalar callers splat
// and keep lane 0): the gradient scaled by scale[0]; bias corrections bc1, bc2 and decay = 1 − lr·weightDecay come
// from the host. Needs the uniform P (lr, beta1, beta2, eps, oneMinusBeta1, oneMinusBeta2, bc1, bc2) and `scale`.
// Returns (param, m, v).
fn adamwStep(p: vec4<f32>, m0: vec4<f32>, v0: vec4<f32>, grad: vec4<f32>, decay: f32) -> array<vec4<f32>, 3> {
  let g = grad * scale[0];
  let m = P.beta1 * m0 + P.oneMinusBeta1 * g;
  let v = P.beta2 * v0 + P.oneMinusBeta2 * g * g;
  return array<vec4<f32>, 3>(p * decay - (P.lr * (m / P.bc1)) / (sqrt(v / P.bc2) + P.eps), m, v);
}
