// Fused log-softmax + gather (token log-probs and entropies) over logits [N, V] with int32 targets,
// forward and backward kernels timed on their own.
//
// Byte convention: the forward is memory-bound on the logits, so gbps = N·V·4 bytes of logits read ÷ time
// (targets and the [N] outputs are negligible). The backward also writes the [N, V] gradient:
// gbps = 2·N·V·4 bytes (logits read + gradient written) ÷ time.
import type { Backend } from '../backend/backend.js';
import { setBackend } from '../tensor/engine.js';
import { randUniform, tensor, zeros } from '../tensor/creation.js';
import { type BenchOutcome, type TimingOptions, attempt, disposeAll, gbpsOf, randomInts, timeIt } from './common.js';

/** [rows N, vocabulary V]. */
export type LogitsShape = readonly [number, number];

export const SOFTMAX_GATHER_SHAPE: LogitsShape = [4096, 8192];
/** --quick: a quarter of the rows. */
export const SOFTMAX_GATHER_SHAPE_QUICK: LogitsShape = [1024, 8192];

export function softmaxGatherBytes([n, v]: LogitsShape, pass: 'forward' | 'backward'): number {
  return (pass === 'forward' ? 1 : 2) * n * v * 4;
}

/** Records softmax_gather_fwd and softmax_gather_bwd. */
export async function benchSoftmaxGather(backend: Backend, label: string, shape: LogitsShape, opts: TimingOptions = {}): Promise<BenchOutcome[]> {
  setBackend(backend);
  const [rows, cols] = shape;
  // Logits of a trained model's scale (|x| ≤ 8) so exp() spans a realistic range.
  const logits = randUniform([rows, cols], 31, -8, 8);
  const targets = tensor(randomInts(rows, cols, 32), [rows], 'int32');
  const logp = zeros([rows]);
  const entropy = zeros([rows]);
  const lse = zeros([rows]);
  const gLogp = randUniform([rows], 33, -1, 1);
  const gEntropy = randUniform([rows], 34, -1, 1);
  const gLogits = zeros([rows, cols]);
  try {
    const fwd = await attempt('softmax_gather_fwd', label, shape, async () => {
      const { ms, runs } = await timeIt(backend, () => backend.kernels.logSoftmaxGather(
        logits.storage, targets.storage, logp.storage, entropy.storage, lse.storage, rows, cols,
      ), opts);
      return { op: 'softmax_gather_fwd', backend: label, shape: [...shape], ms, gbps: gbpsOf(softmaxGatherBytes(shape, 'forward'), ms), runs };
    });
    // lse and entropy now hold the forward's results, which the backward reads.
    const bwd = await attempt('softmax_gather_bwd', label, shape, async () => {
      const { ms, runs } = await timeIt(backend, () => backend.kernels.logSoftmaxGatherBackward(
        logits.storage, targets.storage, lse.storage, entropy.storage, gLogp.storage, gEntropy.storage, gLogits.storage, rows, cols,
      ), opts);
      return { op: 'softmax_gather_bwd', backend: label, shape: [...shape], ms, gbps: gbpsOf(softmaxGatherBytes(shape, 'backward'), ms), runs };
    });
    return [fwd, bwd];
  } finally {
    disposeAll([logits, targets, logp, entropy, lse, gLogp, gEntropy, gLogits]);
  }
}
