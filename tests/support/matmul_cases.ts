// The matmul variants the kernel tests sweep for one problem size: every transpose pair, and for a batch
// each way of sharing an operand across it (the strides the tensor layer passes for a broadcast).
import type { MatmulArgs } from '../../src/backend/backend.js';

export interface MatmulVariant {
  args: MatmulArgs;
  /** Elements of the A and B storages the args read (at least 1, so an empty problem still uploads). */
  sizeA: number;
  sizeB: number;
  /** e.g. "b3 7x9x23 tA=true tB=false bc=1", bc: 0 no operand shared, 1 A shared, 2 B shared. */
  label: string;
}

/** transA × transB × (for batch > 1) broadcast of none / A / B, in that nesting order. */
export function* matmulVariants(batch: number, m: number, n: number, k: number): Generator<MatmulVariant> {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      for (const broadcast of batch > 1 ? [0, 1, 2] : [0]) {
        const strideA = broadcast === 1 ? 0 : m * k;
        const strideB = broadcast === 2 ? 0 : k * n;
        yield {
          args: { batch, m, n, k, transA, transB, strideA, strideB },
          sizeA: Math.max(1, (batch - 1) * strideA + m * k),
          sizeB: Math.max(1, (batch - 1) * strideB + k * n),
          label: `b${batch} ${m}x${n}x${k} tA=${transA} tB=${transB} bc=${broadcast}`,
        };
      }
    }
  }
}
