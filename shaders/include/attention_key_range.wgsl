// Key range of a tiled attention query block (after attention_rows.wgsl, inside the entry point): keys
// [ks, kEnd) are staged for the whole block, this invocation's row sees keys [ks, myEnd). Invocations past the
// last row only help stage tiles (myEnd = 0).
  let ks = firstKey(b);
  var kEnd = P.tk;
  var myEnd = select(0u, P.tk, r0 + lid < nRows);
  if (P.causal != 0u) {
    kEnd = min(kEnd, P.qOffset + lastQueryRow(r0, min(r0 + WG, nRows) - 1u) + 1u);
    myEnd = min(myEnd, P.qOffset + row % P.tq + 1u);
  }
