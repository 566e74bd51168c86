// TF.js on the same machine, as the side-by-side peer in `dapo bench` (devDependency: absent → skipped).
// tfjs-backend-wasm runs single-threaded under Node; tfjs-backend-webgpu gets the same Dawn adapter we use.
import { median } from '../src/bench/matmul_bench.js';
import type { BenchRecord } from '../src/bench/matmul_bench.js';

type Tf = typeof import('@tensorflow/tfjs-core');

export type PeerKind = 'tfjs-wasm' | 'tfjs-webgpu';

export async function loadTfjs(kind: PeerKind, gpu?: GPU): Promise<Tf> {
  const tf = await import('@tensorflow/tfjs-core');
  if (kind === 'tfjs-wasm') {
    await import('@tensorflow/tfjs-backend-wasm');
    await tf.setBackend('wasm');
  } else {
    if (!gpu) throw new Error('no WebGPU adapter for tfjs-webgpu');
    // tfjs-backend-webgpu looks for navigator.gpu.
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
    await import('@tensorflow/tfjs-backend-webgpu');
    await tf.setBackend('webgpu');
  }
  await tf.ready();
  return tf;
}

export async function tfjsMatmul(tf: Tf, kind: PeerKind, [m, k, n]: readonly [number, number, number], runs = 5, budgetMs = 4000): Promise<BenchRecord> {
  const a = tf.randomUniform([m, k], -1, 1, 'float32', 1);
  const b = tf.randomUniform([k, n], -1, 1, 'float32', 2);
  const once = async () => {
    const c = tf.matMul(a, b);
    await c.data();
    c.dispose();
  };
  await once();
  await once();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < runs || (performance.now() - start < budgetMs && times.length < 50)) {
    const t0 = performance.now();
    await once();
    times.push(performance.now() - t0);
  }
  a.dispose();
  b.dispose();
  const ms = median(times);
  return { op: 'matmul', backend: kind, shape: [m, k, n], ms, gflops: (2 * m * n * k) / (ms * 1e6), runs: times.length };
}
