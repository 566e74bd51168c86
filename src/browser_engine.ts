// The browser's engine start-up alone: navigator.gpu and Web Workers (threads only when cross-origin isolated).
// Pages import this rather than the src/browser.ts barrel, so a page bundle holds only the modules it uses (with
// code splitting, a barrel would put every module any page uses into every page's shared chunks).
import { browserWorkerFactory } from './backend/wasm/browser_workers.js';
import { type BackendChoice, type Platform, type Selection, createBackend, parseBackendChoice } from './backend/select.js';
import { setBackend } from './tensor/engine.js';

export function browserPlatform(opts: { threads?: number } = {}): Platform {
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  return {
    name: 'browser',
    async requestAdapter() {
      const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
      if (!gpu) return { error: 'navigator.gpu is not available in this browser' };
      const adapter = await gpu.requestAdapter();
      if (!adapter) return { error: 'navigator.gpu.requestAdapter() returned null' };
      return { gpu, adapter, via: 'navigator.gpu' };
    },
    wasmThreads: isolated ? opts.threads ?? Math.max(1, navigator.hardwareConcurrency || 1) : 1,
    workerFactory: isolated ? browserWorkerFactory() : undefined,
  };
}

export async function initEngine(opts: { backend?: BackendChoice | string; threads?: number } = {}): Promise<Selection> {
  const selection = await createBackend(parseBackendChoice(opts.backend ?? 'auto'), browserPlatform(opts), { threads: opts.threads });
  setBackend(selection.backend);
  return selection;
}
