// TF.js on the same machine, as the side-by-side peer in `dapo bench` (devDependency: absent → skipped).
// tfjs-backend-wasm runs single-threaded under Node; tfjs-backend-webgpu gets the same Dawn adapter we use.
import { createRequire } from 'node:module';
import { type BenchRecord, type TimingOptions, gflopsOf, timeAsync } from '../src/bench/common.js';

export type Tf = typeof import('@tensorflow/tfjs-core');
type TfTensor = import('@tensorflow/tfjs-core').Tensor;

export type PeerKind = 'tfjs-wasm' | 'tfjs-webgpu';

const TF_BACKEND: Record<PeerKind, string> = { 'tfjs-wasm': 'wasm', 'tfjs-webgpu': 'webgpu' };

let gradientsRegistered: Promise<void> | null = null;

/**
 * tf.grad needs the kernels' gradient functions, which only tfjs-core's ES-module sources register
 * (dist/register_all_gradients.js, not the CommonJS bundle Node loads, and not loadable by Node as is).
 * esbuild (a devDependency) bundles them on the fly; TF.js keeps its gradient registry and engine on
 * globalThis, so this second copy registers into the same registry and its gradients run on the same engine.
 */
function registerTfjsGradients(): Promise<void> {
  gradientsRegistered ??= (async () => {
    const { build } = await import('esbuild');
    const entry = createRequire(import.meta.url).resolve('@tensorflow/tfjs-core/dist/register_all_gradients.js');
    const out = await build({ entryPoints: [entry], bundle: true, format: 'esm', platform: 'neutral', write: false, logLevel: 'error' });
    await import(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0].text).toString('base64')}`);
  })();
  return gradientsRegistered;
}

/** Loads TF.js with the peer's backend registered and active; calling it again only switches backends. */
export async function loadTfjs(kind: PeerKind, gpu?: GPU): Promise<Tf> {
  const tf = await import('@tensorflow/tfjs-core');
  await registerTfjsGradients();
  if (!tf.findBackend(TF_BACKEND[kind])) {
    if (kind === 'tfjs-wasm') {
      await import('@tensorflow/tfjs-backend-wasm');
    } else {
      if (!gpu) throw new Error('no WebGPU adapter for tfjs-webgpu');
      // tfjs-backend-webgpu looks for navigator.gpu (which also keeps Dawn's GPU object alive).
      Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
      await import('@tensorflow/tfjs-backend-webgpu');
    }
  }
  if (!(await tf.setBackend(TF_BACKEND[kind]))) throw new Error(`TF.js could not start its ${TF_BACKEND[kind]} backend`);
  await tf.ready();
  return tf;
}

/**
 * Waits until the tensors are computed by reading one element of each back (GPU queues run in order, so
 * this waits for all earlier work too) — without copying whole outputs to the host, which our side
 * (backend.sync) does not do either.
 */
export async function syncTf(tf: Tf, ts: readonly TfTensor[]): Promise<void> {
  const probe = tf.tidy(() => tf.addN(ts.map((t) => tf.slice(tf.reshape(t, [-1]), 0, 1))));
  await probe.data();
  probe.dispose();
}

/** Times run() (which returns the tensors it created), syncing on them and disposing them each time. */
export function timeTf(tf: Tf, run: () => TfTensor[], opts: TimingOptions): ReturnType<typeof timeAsync> {
  return timeAsync(async () => {
    const outs = run();
    await syncTf(tf, outs);
    tf.dispose(outs);
  }, opts);
}

export async function tfjsMatmul(tf: Tf, kind: PeerKind, [m, k, n]: readonly [number, number, number], opts: TimingOptions = {}): Promise<BenchRecord> {
  const a = tf.randomUniform([m, k], -1, 1, 'float32', 1);
  const b = tf.randomUniform([k, n], -1, 1, 'float32', 2);
  try {
    const { ms, runs } = await timeTf(tf, () => [tf.matMul(a, b)], opts);
    return { op: 'matmul', backend: kind, shape: [m, k, n], ms, gflops: gflopsOf(2 * m * n * k, ms), runs };
  } finally {
    tf.dispose([a, b]);
  }
}
