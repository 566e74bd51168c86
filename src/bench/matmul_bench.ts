// Matmul benchmark cases, shared by `dapo bench` and the browser page.
import type { Backend } from '../backend/backend.js';
import { setBackend } from '../tensor/engine.js';
import { matmul } from '../tensor/linalg.js';
import { randUniform } from '../tensor/creation.js';
import { type BenchRecord, type TimingOptions, gflopsOf, timeIt } from './common.js';

export { type BenchRecord, type TimingOptions, median, timeIt } from './common.js';

/** [m, k, n] problems: squares and the tall-skinny projection shape of the issue. */
export const MATMUL_SHAPES: readonly [number, number, number][] = [
  [256, 256, 256], [512, 512, 512], [1024, 1024, 1024], [2048, 2048, 2048], [2048, 256, 1024],
];

export async function benchMatmul(backend: Backend, label: string, [m, k, n]: readonly [number, number, number], opts: TimingOptions = {}): Promise<BenchRecord> {
  setBackend(backend);
  const a = randUniform([m, k], 1, -1, 1);
  const b = randUniform([k, n], 2, -1, 1);
  let out = matmul(a, b);
  const { ms, runs } = await timeIt(backend, () => {
    out.dispose();
    out = matmul(a, b);
  }, opts);
  for (const t of [a, b, out]) t.dispose();
  return { op: 'matmul', backend: label, shape: [m, k, n], ms, gflops: gflopsOf(2 * m * n * k, ms), runs };
}
