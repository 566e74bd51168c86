// Prologue of the subgroup attention kernels that own query rows (attention_fwd, attention_bwd_dq), inside the entry
// point: workgroup (x, kvh, b) takes TM of the flattened rows of the query heads sharing kv head kvh of sequence b
// (contiguous in q, out and lse). Defines b, kvh, nRows, r0 (the block's first row), rowBase (the group's first
// flat row) and kvBase (the kv head's first vec4).
  let b = wid.z;
  let kvh = wid.y;
  let nRows = P.group * P.tq;
  let r0 = wid.x * TM;
  let rowBase = (b * P.heads + kvh * P.group) * P.tq;
  let kvBase = (b * P.kvHeads + kvh) * P.kvStride * D4;
