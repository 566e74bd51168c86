// `dapo info`: backends available here, the adapter, WASM SIMD/threads, and what auto-selection picks.
import { decide } from '../src/backend/select.js';
import { nodePlatform } from '../src/node.js';
import { isSoftwareAdapter } from '../src/backend/webgpu/webgpu_backend.js';
import { wasmFeatures } from '../src/backend/wasm/features.js';

const KEY_LIMITS = [
  'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupStorageSize',
  'maxStorageBuffersPerShaderStage', 'maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupsPerDimension',
] as const;

export async function collectInfo(): Promise<Record<string, unknown>> {
  const platform = nodePlatform();
  const probe = await platform.requestAdapter();
  let webgpu: Record<string, unknown>;
  if ('error' in probe) {
    webgpu = { available: false, error: probe.error };
  } else {
    const { adapter } = probe;
    const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
    const limits: Record<string, number> = {};
    for (const k of KEY_LIMITS) limits[k] = Number((adapter.limits as unknown as Record<string, number>)[k]);
    webgpu = {
      available: true,
      via: probe.via,
      vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description,
      isFallbackAdapter: Boolean(info.isFallbackAdapter ?? (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter),
      software: isSoftwareAdapter(info),
      featureLevel: adapter.features.has('core-features-and-limits') ? 'core' : 'compatibility',
      features: [...adapter.features].sort(),
      limits,
    };
  }
  const wasm = { ...(await wasmFeatures()), threadsAvailable: platform.wasmThreads, workers: platform.workerFactory ? 'worker_threads' : 'none' };
  const auto = await decide('auto', platform);
  return { node: process.version, platform: `${process.platform}-${process.arch}`, webgpu, wasm, auto: { backend: auto.pick, reason: auto.reason } };
}

export function formatInfo(info: Record<string, unknown>): string {
  const w = info.webgpu as Record<string, unknown>;
  const lines = [`node ${info.node} on ${info.platform}`, '', 'WebGPU'];
  if (!w.available) {
    lines.push(`  unavailable: ${w.error}`);
  } else {
    lines.push(
      `  adapter      ${[w.vendor, w.architecture, w.device, w.description].filter(Boolean).join(' / ')}`,
      `  via          ${w.via}`,
      `  feature lvl  ${w.featureLevel}${w.isFallbackAdapter ? ' (fallback adapter)' : ''}${w.software ? ' — software rasterizer' : ''}`,
      `  features     ${(w.features as string[]).join(', ')}`,
      ...Object.entries(w.limits as Record<string, number>).map(([k, v]) => `  ${k.padEnd(34)} ${v}`),
    );
  }
  const m = info.wasm as Record<string, unknown>;
  lines.push('', 'WASM', `  simd ${m.simd ? 'yes' : 'no'}, relaxed simd ${m.relaxedSimd ? 'yes' : 'no'}, threads ${m.threads ? `yes (${m.threadsAvailable} via ${m.workers})` : 'no'}`);
  const auto = info.auto as Record<string, unknown>;
  lines.push('', `auto-selection: ${auto.backend} — ${auto.reason}`);
  return lines.join('\n');
}
