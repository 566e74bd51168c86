// Writes the TM × 4 accumulators acc_{i} of the barrier-free vec4 matmuls to out (rows past m and columns
// past n dropped). Expects batch, row0 and col from the including kernel.
  let outBase = batch * P.m * P.n;
//#unroll i TM
  if (row0 + {i}u < P.m) {
    let o = outBase + (row0 + {i}u) * P.n + col;
    if (col < P.n) { outF[o] = acc_{i}.x; }
    if (col + 1u < P.n) { outF[o + 1u] = acc_{i}.y; }
    if (col + 2u < P.n) { outF[o + 2u] = acc_{i}.z; }
    if (col + 3u < P.n) { outF[o + 3u] = acc_{i}.w; }
  }
//#end
