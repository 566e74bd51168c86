// Automatic backend choice, shared by Node and browsers: a hardware GPU adapter → WebGPU; a software adapter
// (llvmpipe, lavapipe, SwiftShader) or none → WASM, whose SIMD kernels beat a CPU-emulated GPU.
import type { Backend } from './backend.js';
import { ReferenceBackend } from './reference/reference_backend.js';
import { createWebGPUBackend, isSoftwareAdapter } from './webgpu/webgpu_backend.js';
import { createWasmBackend, type WorkerFactory } from './wasm/wasm_backend.js';

export type BackendChoice = 'auto' | 'webgpu' | 'wasm' | 'reference';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'webgpu', 'wasm', 'reference'];

export interface AdapterProbe {
  gpu: GPU;
  adapter: GPUAdapter;
  /** How the adapter was obtained (e.g. Dawn flags), for `dapo info`. */
  via: string;
}

/** What the host platform provides: Node (Dawn + worker_threads) or a browser (navigator.gpu + Web Workers). */
export interface Platform {
  name: 'node' | 'browser';
  /** Resolves with an adapter, or null with the reason when WebGPU is unavailable. */
  requestAdapter(): Promise<AdapterProbe | { error: string }>;
  wasmThreads: number;
  workerFactory?: WorkerFactory;
}

export interface Selection {
  backend: Backend;
  reason: string;
}

export function parseBackendChoice(value: string): BackendChoice {
  if (!(BACKEND_CHOICES as readonly string[]).includes(value)) {
    throw new Error(`unknown backend '${value}' (choose one of: ${BACKEND_CHOICES.join(', ')})`);
  }
  return value as BackendChoice;
}

export function adapterSummary(adapter: GPUAdapter): string {
  const i = adapter.info;
  return [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' / ') || 'unnamed adapter';
}

/** Decides without creating anything heavy: which backend `auto` would pick, and why. */
export async function decide(choice: BackendChoice, platform: Platform): Promise<{ pick: Exclude<BackendChoice, 'auto'>; reason: string; probe: AdapterProbe | null }> {
  if (choice === 'wasm' || choice === 'reference') return { pick: choice, reason: `forced by --backend ${choice}`, probe: null };
  const probe = await platform.requestAdapter();
  if ('error' in probe) {
    if (choice === 'webgpu') throw new Error(`--backend webgpu: no WebGPU adapter available (${probe.error})`);
    return { pick: 'wasm', reason: `no WebGPU adapter (${probe.error}); WASM SIMD is the CPU path`, probe: null };
  }
  if (choice === 'webgpu') return { pick: 'webgpu', reason: 'forced by --backend webgpu', probe };
  if (isSoftwareAdapter(probe.adapter.info)) {
    return { pick: 'wasm', reason: `the WebGPU adapter (${adapterSummary(probe.adapter)}) is a software rasterizer; WASM SIMD is faster on this CPU`, probe };
  }
  return { pick: 'webgpu', reason: `hardware GPU adapter: ${adapterSummary(probe.adapter)}`, probe };
}

export async function createBackend(choice: BackendChoice, platform: Platform, opts: { threads?: number } = {}): Promise<Selection> {
  const d = await decide(choice, platform);
  if (d.pick === 'reference') return { backend: new ReferenceBackend(), reason: d.reason };
  if (d.pick === 'wasm') {
    const backend = await createWasmBackend({ threads: opts.threads ?? platform.wasmThreads, workerFactory: platform.workerFactory });
    return { backend, reason: d.reason };
  }
  const backend = await createWebGPUBackend(d.probe!.gpu, { adapter: d.probe!.adapter });
  return { backend, reason: d.reason };
}
