// Matmul forward + backward through autograd: loss = sum(A @ B), backward gives dA = 1·Bᵀ and dB = Aᵀ·1.
// FLOP convention: three N³ matmuls (forward, dA, dB) → 6·N³ (the sum and the ones seed are not counted).
import type { Backend } from '../backend/backend.js';
import { setBackend, tidy } from '../tensor/engine.js';
import { randUniform } from '../tensor/creation.js';
import { matmul } from '../tensor/linalg.js';
import { sum } from '../tensor/reduce.js';
import { backward } from '../autograd/backward.js';
import type { Tensor } from '../tensor/tensor.js';
import { type BenchRecord, type TimingOptions, disposeAll, gflopsOf, timeIt } from './common.js';

export const MATMUL_TRAIN_N = 512;
/** --quick: N = 256. */
export const MATMUL_TRAIN_N_QUICK = 256;

export const matmulTrainFlops = (n: number): number => 6 * n * n * n;

/** Record matmul_train: one forward + backward of sum(A @ B) with A, B [N, N]. */
export async function benchMatmulTrain(backend: Backend, label: string, n: number, opts: TimingOptions = {}): Promise<BenchRecord> {
  setBackend(backend);
  const a = randUniform([n, n], 41, -1, 1).requireGrad();
  const b = randUniform([n, n], 42, -1, 1).requireGrad();
  try {
    const { ms, runs } = await timeIt(backend, () => {
      const loss = tidy(() => sum(matmul(a, b)));
      backward(loss);
      loss.dispose();
      disposeGrads([a, b]);
    }, opts);
    return { op: 'matmul_train', backend: label, shape: [n, n, n], ms, gflops: gflopsOf(matmulTrainFlops(n), ms), runs };
  } finally {
    disposeGrads([a, b]);
    disposeAll([a, b]);
  }
}

function disposeGrads(ts: readonly Tensor[]): void {
  for (const t of ts) {
    t.grad?.dispose();
    t.grad = null;
  }
}
