// Node adapter for the WASM backend's thread pool: the only file that imports node:worker_threads.
import { availableParallelism, cpus } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { PoolWorker, WorkerFactory, WorkerInit } from './thread_pool.js';
import { createWasmBackend, type WasmBackend, type WasmBackendOptions } from './wasm_backend.js';

const NODE_SHIM = `
const { parentPort, workerData } = require('node:worker_threads');
__poolMain(workerData, function (m) { parentPort.postMessage(m); });
`;

/** How long a shut-down worker may take to leave on its own before it is terminated. */
const WORKER_EXIT_GRACE_MS = 2000;

/** Worker factory over node:worker_threads (eval'd source, so no file paths are involved). */
export function nodeWorkerFactory(): WorkerFactory {
  return {
    kind: 'node:worker_threads',
    start(source: string, init: WorkerInit): Promise<PoolWorker> {
      return new Promise((resolve, reject) => {
        const w = new Worker(source + NODE_SHIM, { eval: true, workerData: init });
        const onError = (e: unknown) => reject(e instanceof Error ? e : new Error(String(e)));
        w.once('error', onError);
        w.once('message', (m: { type?: string }) => {
          if (m?.type !== 'ready') return reject(new Error(`unexpected worker message ${JSON.stringify(m)}`));
          w.off('error', onError);
          w.on('error', () => { /* a dead worker is reported by the kernel that waits on it */ });
          w.unref();
          resolve({
            terminate: () => {
              // The pool has set SHUTDOWN and woken the worker, which leaves its loop and exits by itself. Terminating
              // it in that same moment races Node's teardown of a thread waking from Atomics.wait (a class of native
              // aborts in worker_threads), so only a worker still alive after a grace period is terminated.
              const grace = setTimeout(() => { void w.terminate(); }, WORKER_EXIT_GRACE_MS);
              grace.unref();
              w.once('exit', () => clearTimeout(grace));
            },
          });
        });
      });
    },
  };
}

/** Number of hardware threads Node reports. */
export function nodeDefaultThreads(): number {
  try {
    return Math.max(1, availableParallelism());
  } catch {
    return Math.max(1, cpus().length);
  }
}

/** createWasmBackend with Node workers and one thread per core unless told otherwise. */
export function createNodeWasmBackend(opts: WasmBackendOptions = {}): Promise<WasmBackend> {
  return createWasmBackend({ threads: nodeDefaultThreads(), workerFactory: nodeWorkerFactory(), ...opts });
}
