// Prologue of the barrier-free vec4 matmuls (matmul_direct4, matmul_subgroups), inside the entry point: grid x
// walks blocks of TM rows, y strips of WX·4 columns (this lane owns 4). Defines batch, baseA, baseB, row0, col,
// c (the lane's columns, clamped to n − 1 so loads stay in bounds) and colV (col clamped for aligned vec4 loads).
  let batch = wid.z + P.batchOffset;
  let baseA = batch * P.strideA;
  let baseB = batch * P.strideB;
  let row0 = wid.x * TM;
  let col = (wid.y * WX + lid) * 4u;
  let c = min(vec4<u32>(col, col + 1u, col + 2u, col + 3u), vec4<u32>(P.n - 1u));
  let colV = min(col, P.n - 4u);
