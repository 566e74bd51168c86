// TF.js in the bench page, as the peer of our backends: tfjs-backend-webgpu on the page's adapter and
// tfjs-backend-wasm with threads (the page is cross-origin isolated). Loaded on first use; the wasm binaries
// are served under /tfjs/ by scripts/serve-web.mjs.
import type { LoadPeer } from '../src/bench/suite.js';
import { TF_BACKEND, type Tf } from '../src/bench/tfjs_cases.js';

/** Where scripts/serve-web.mjs serves @tensorflow/tfjs-backend-wasm/dist/*.wasm. */
export const TFJS_WASM_PREFIX = '/tfjs/';

/** A loader that registers each TF.js backend once and switches TF.js to the one asked for. */
export function browserTfjsLoader(wasmThreads: number): LoadPeer {
  return async (kind) => {
    const tf: Tf = await import('@tensorflow/tfjs-core');
    // tf.grad needs the gradient registry (the ES-module build registers it as a side effect of this file).
    await import('@tensorflow/tfjs-core/dist/register_all_gradients.js');
    const name = TF_BACKEND[kind];
    if (!tf.findBackend(name)) {
      if (kind === 'tfjs-wasm') {
        const wasm = await import('@tensorflow/tfjs-backend-wasm');
        wasm.setWasmPaths(new URL(TFJS_WASM_PREFIX, location.href).href);
        wasm.setThreadsCount(wasmThreads);
      } else {
        await import('@tensorflow/tfjs-backend-webgpu');
      }
    }
    if (!(await tf.setBackend(name))) throw new Error(`TF.js could not start its ${name} backend`);
    await tf.ready();
    return tf;
  };
}
