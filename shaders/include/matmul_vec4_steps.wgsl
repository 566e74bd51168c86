// Four k-steps of the barrier-free vec4 matmuls (matmul_direct4, matmul_subgroups), inside the loop over p:
// a_{i} holds A[row i, p .. p+3]; each step loads one B row (vec4 of this lane's 4 columns) and updates the
// TM accumulators acc_{i}. Expects baseB, c, colV, s = n / 4 and TM from the including kernel.
    var o = (baseB + p * P.n + colV) / 4u;
    if (TRANS_B) { o = 0u; }
    {
      let b = loadB4row(baseB, c, p, 0u, o);
//#unroll i TM
      acc_{i} = fma(vec4<f32>(a_{i}.x), b, acc_{i});
//#end
    }
    {
      let b = loadB4row(baseB, c, p, 1u, o + s);
//#unroll i TM
      acc_{i} = fma(vec4<f32>(a_{i}.y), b, acc_{i});
//#end
    }
    {
      let b = loadB4row(baseB, c, p, 2u, o + 2u * s);
//#unroll i TM
      acc_{i} = fma(vec4<f32>(a_{i}.z), b, acc_{i});
//#end
    }
    {
      let b = loadB4row(baseB, c, p, 3u, o + 3u * s);
//#unroll i TM
      acc_{i} = fma(vec4<f32>(a_{i}.w), b, acc_{i});
//#end
    }
