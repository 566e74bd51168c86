// Loads TF.js under Node for the side-by-side peer of `dapo bench` (devDependency: absent → skipped); the peer
// cases themselves are browser-safe and live in src/bench/tfjs_cases.ts. tfjs-backend-wasm runs
// single-threaded under Node; tfjs-backend-webgpu gets the same Dawn adapter we use.
import { createRequire } from 'node:module';
import { type PeerKind, TF_BACKEND, type Tf } from '../src/bench/tfjs_cases.js';

export type { PeerKind, Tf } from '../src/bench/tfjs_cases.js';

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
