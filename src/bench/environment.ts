// The environment record of a bench run: where the figures were measured (runtime, browser and OS, CPU
// cores, WASM threads, the WebGPU adapter with its feature level, features and key limits). It is the first
// line of `dapo bench --json` and of the page's download, so files from several machines can be compared.
// Browser-safe: the Node and browser entries fill in what only they know (Node version, userAgent).
import { isSoftwareAdapter } from '../backend/webgpu/adapter.js';
import type { Platform } from '../backend/select.js';
import type { BenchSize } from './cases.js';

/** The limits that decide which kernels fit (workgroup sizes, storage sizes), as `dapo info` lists them. */
export const KEY_LIMITS = [
  'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupStorageSize',
  'maxStorageBuffersPerShaderStage', 'maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupsPerDimension',
] as const;

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  fallback: boolean;
  /** A CPU rasteriser (llvmpipe, lavapipe, SwiftShader, WARP). */
  software: boolean;
  feature_level: 'core' | 'compatibility';
  features: string[];
  limits: Record<string, number>;
}

export interface BenchEnvironment {
  runtime: 'node' | 'browser';
  /** Short human label: browser or Node, OS, adapter — the row name in a comparison. */
  label: string;
  /** e.g. "Chrome 131" or "node v20.19.0". */
  agent: string;
  os: string;
  user_agent?: string;
  cpu_cores: number;
  wasm_threads: number;
  cross_origin_isolated?: boolean;
  /** The WebGPU adapter, or why there is none; absent when the run had no webgpu backend (not probed). */
  adapter?: AdapterDescription | { error: string };
  size: BenchSize;
  cases: string[];
  backends: string[];
  /** ISO time the run started. */
  date: string;
}

/** One JSON line: {"environment": {...}}. */
export interface EnvironmentLine {
  environment: BenchEnvironment;
}

export function describeAdapter(adapter: GPUAdapter): AdapterDescription {
  const info = (adapter.info ?? {}) as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const fallback = Boolean(info.isFallbackAdapter ?? (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter);
  const level = (adapter as GPUAdapter & { featureLevel?: string }).featureLevel;
  const limits: Record<string, number> = {};
  for (const key of KEY_LIMITS) limits[key] = Number((adapter.limits as unknown as Record<string, number>)[key]);
  return {
    vendor: info.vendor ?? '', architecture: info.architecture ?? '', device: info.device ?? '', description: info.description ?? '',
    fallback,
    software: isSoftwareAdapter({ ...info, isFallbackAdapter: fallback }),
    feature_level: level === 'core' || level === 'compatibility' ? level : adapter.features.has('core-features-and-limits') ? 'core' : 'compatibility',
    features: [...adapter.features].map(String).sort(),
    limits,
  };
}

/** "vendor architecture (description)", the parts the adapter gives. */
export function adapterName(adapter: NonNullable<BenchEnvironment['adapter']>): string {
  if ('error' in adapter) return 'no WebGPU';
  const main = [adapter.vendor, adapter.architecture].filter(Boolean).join(' ');
  const detail = adapter.description || adapter.device;
  return (main && detail && detail !== main ? `${main} (${detail})` : main || detail) || 'unnamed adapter';
}

/** Browser name and major version from userAgentData brands or the userAgent string. */
export function browserFromUserAgent(userAgent: string, brands: readonly { brand: string; version: string }[] = []): string {
  const branded = brands.find((b) => !/not.?a.?brand/i.test(b.brand) && b.brand !== 'Chromium') ?? brands.find((b) => b.brand === 'Chromium');
  if (branded) return `${branded.brand} ${branded.version}`;
  for (const [name, pattern] of [['Edge', /Edg\/(\d+)/], ['Firefox', /Firefox\/(\d+)/], ['Chrome', /Chrome\/(\d+)/], ['Safari', /Version\/(\d+)[^ ]* Safari/]] as const) {
    const m = pattern.exec(userAgent);
    if (m) return `${name} ${m[1]}`;
  }
  return 'unknown browser';
}

/** The OS a userAgent names (userAgentData.platform when the browser gives it). */
export function osFromUserAgent(userAgent: string, platform?: string): string {
  if (platform) return platform;
  for (const [name, pattern] of [['Android', /Android/], ['iOS', /iPhone|iPad/], ['Windows', /Windows/], ['macOS', /Mac OS X/], ['ChromeOS', /CrOS/], ['Linux', /Linux/]] as const) {
    if (pattern.test(userAgent)) return name;
  }
  return 'unknown OS';
}

/** What the environment record says besides the host (filled by the caller). */
export interface RunFacts {
  size: BenchSize;
  cases: readonly string[];
  backends: readonly string[];
  date?: Date;
}

/**
 * The environment of a run on `platform`; `host` names the runtime (agent, os, userAgent) and CPU cores,
 * which only the entry (Node or the page) knows.
 */
export async function benchEnvironment(
  platform: Platform, host: { agent: string; os: string; user_agent?: string; cpu_cores: number }, facts: RunFacts,
): Promise<BenchEnvironment> {
  let adapter: BenchEnvironment['adapter'];
  if (facts.backends.includes('webgpu')) {
    const probe = await platform.requestAdapter();
    adapter = 'error' in probe ? { error: probe.error } : describeAdapter(probe.adapter);
  }
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated;
  return {
    runtime: platform.name,
    label: [host.agent, host.os, ...(adapter ? [adapterName(adapter)] : [])].join(' · '),
    agent: host.agent,
    os: host.os,
    ...(host.user_agent ? { user_agent: host.user_agent } : {}),
    cpu_cores: host.cpu_cores,
    wasm_threads: platform.wasmThreads,
    ...(platform.name === 'browser' ? { cross_origin_isolated: isolated === true } : {}),
    ...(adapter ? { adapter } : {}),
    size: facts.size,
    cases: [...facts.cases],
    backends: [...facts.backends],
    date: (facts.date ?? new Date()).toISOString(),
  };
}
