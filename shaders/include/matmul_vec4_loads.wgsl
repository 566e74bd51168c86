// vec4 operand loads of the barrier-free matmuls (matmul_direct4, matmul_subgroups, matmul_small4); the host
// picks those only when every vec4 read is aligned and in bounds. The including shader defines P (m, n, k),
// TRANS_A and TRANS_B.

@group(0) @binding(2) var<storage, read> A4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> B4: array<vec4<f32>>;

// A[row, p .. p+3] as a vec4 (in matmul_direct4 and matmul_small4 uniform across the workgroup: a broadcast load).
fn loadArow(base: u32, row: u32, p: u32) -> vec4<f32> {
  if (TRANS_A) {
    let i0 = base + p * P.m + row;
    let i1 = i0 + P.m;
    let i2 = i1 + P.m;
    let i3 = i2 + P.m;
    return vec4<f32>(A4[i0 / 4u][i0 % 4u], A4[i1 / 4u][i1 % 4u], A4[i2 / 4u][i2 % 4u], A4[i3 / 4u][i3 % 4u]);
  }
  return A4[(base + row * P.k + p) / 4u];
}

// B[p + pp, c.x .. c.w] as a vec4: TRANS_B gathers four columns (one component of four vec4 loads), else
// one aligned vec4 at index o.
fn loadB4row(baseB: u32, c: vec4<u32>, p: u32, pp: u32, o: u32) -> vec4<f32> {
  if (TRANS_B) {
    let i = baseB + p + pp;
    return vec4<f32>(B4[(i + c.x * P.k) / 4u][pp], B4[(i + c.y * P.k) / 4u][pp], B4[(i + c.z * P.k) / 4u][pp], B4[(i + c.w * P.k) / 4u][pp]);
  }
  return B4[o];
}
