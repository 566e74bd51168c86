// Browser adapter for the WASM backend's thread pool: Web Workers from a Blob URL. Needs a
// cross-origin-isolated page (SharedArrayBuffer); otherwise the backend runs on one thread.
import type { PoolWorker, WorkerFactory, WorkerInit } from './thread_pool.js';

const BROWSER_SHIM = `
self.onmessage = function (e) {
  self.onmessage = null;
  __poolMain(e.data, function (m) { self.postMessage(m); });
};
`;

export function browserWorkerFactory(): WorkerFactory {
  return {
    kind: 'web-worker',
    start(source: string, init: WorkerInit): Promise<PoolWorker> {
      return new Promise((resolve, reject) => {
        const url = URL.createObjectURL(new Blob([source + BROWSER_SHIM], { type: 'text/javascript' }));
        const w = new Worker(url);
        w.onerror = (e) => { URL.revokeObjectURL(url); reject(new Error(`worker failed to start: ${e.message}`)); };
        w.onmessage = (e: MessageEvent<{ type?: string }>) => {
          URL.revokeObjectURL(url);
          if (e.data?.type !== 'ready') return reject(new Error('unexpected worker message'));
          w.onmessage = null;
          w.onerror = null;
          resolve({ terminate: () => w.terminate() });
        };
        w.postMessage(init);
      });
    },
  };
}

/** Whether this browser context can run a threaded pool. */
export function browserThreadsAvailable(): boolean {
  const g = globalThis as { crossOriginIsolated?: boolean; Worker?: unknown };
  return typeof SharedArrayBuffer !== 'undefined' && g.crossOriginIsolated === true && typeof g.Worker === 'function';
}
