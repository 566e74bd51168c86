// Writes the TM × 4 accumulators acc_{i} of the barrier-free vec4 matmuls to out (rows past m and columns
// past n dropped). Expects batch, row0 and col from the including kernel.
  let outBase = batch * P.m * P.n;
//#unroll i TM
  if (row0 + {i}u < P.m) {
    let o = outBase + (row0 + {i}u) * P.n + col;
    storeRow4(o, col, acc_{i});
  }
//#end
