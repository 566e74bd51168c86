// Prologue of the tiled attention kernels that own query rows (attention_fwd, attention_bwd_dq), inside the entry
// point: workgroup (x, kvh, b) takes WG of the flattened rows of the query heads sharing kv head kvh of sequence
// b (contiguous in q, out and lse), one row per invocation. Defines b, kvh, nRows, r0 (the block's first row),
// row (this invocation's, clamped: invocations past nRows only help stage tiles), rowIdx (its flat row index) and
// kvBase (the kv head's first element).
  let b = wid.z;
  let kvh = wid.y;
  let nRows = P.group * P.tq;
  let r0 = wid.x * WG;
  let row = min(r0 + lid, nRows - 1u);
  let rowIdx = (b * P.heads + kvh * P.group) * P.tq + row;
  let kvBase = (b * P.kvHeads + kvh) * P.kvStride * HD;
