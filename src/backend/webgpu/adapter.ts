// Device acquisition and what the backend reads off the adapter: its identity (and whether it is a CPU
// rasteriser, which picks the barrier-free kernels), subgroup sizes, feature level and the limits that size
// workgroups and storages; and the matmul kernel those facts pick.
import type { MatmulConfig } from './kernel_host.js';

export interface AdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}

const SOFTWARE_PATTERNS = ['llvmpipe', 'lavapipe', 'swiftshader', 'software', 'mesa/x.org', 'softpipe', 'warp', 'basic render driver', 'microsoft basic'];

/** True for CPU rasterisers (llvmpipe / lavapipe / SwiftShader / WARP) and fallback adapters. */
export function isSoftwareAdapter(info: AdapterInfoLike): boolean {
  if (info.isFallbackAdapter) return true;
  const text = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ').toLowerCase();
  return SOFTWARE_PATTERNS.some((pattern) => text.includes(pattern));
}

/** The device limits the backend sizes its dispatches and storages by. */
export interface DeviceLimits {
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
  maxComputeWorkgroupSizeY: number;
  maxComputeWorkgroupsPerDimension: number;
  maxStorageBuffersPerShaderStage: number;
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  maxComputeWorkgroupStorageSize: number;
  minStorageBufferOffsetAlignment: number;
}

export function readLimits(device: GPUDevice): DeviceLimits {
  const limits = device.limits;
  return {
    maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupSizeY: limits.maxComputeWorkgroupSizeY,
    maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
    maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage,
    maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
    maxBufferSize: limits.maxBufferSize,
    maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
    minStorageBufferOffsetAlignment: limits.minStorageBufferOffsetAlignment ?? 256,
  };
}

export interface AdapterFacts {
  info: AdapterInfoLike;
  features: string[];
  featureLevel: 'core' | 'compatibility';
  /** Smallest and largest subgroup size of the device; 0 without the 'subgroups' feature. */
  subgroupMinSize: number;
  subgroupMaxSize: number;
}

/** Reads the adapter's identity, features and subgroup sizes (`featureLevel` overrides the detected one). */
export function readAdapterFacts(adapter: GPUAdapter, device: GPUDevice, featureLevel?: 'core' | 'compatibility'): AdapterFacts {
  const adapterInfo = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info as
    (GPUAdapterInfo & { isFallbackAdapter?: boolean; subgroupMinSize?: number; subgroupMaxSize?: number }) | undefined;
  const fallback = adapterInfo?.isFallbackAdapter ?? (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false;
  const hasSubgroups = device.features.has('subgroups');
  const adapterLevel = (adapter as GPUAdapter & { featureLevel?: string }).featureLevel;
  return {
    info: {
      vendor: adapterInfo?.vendor ?? '', architecture: adapterInfo?.architecture ?? '', device: adapterInfo?.device ?? '',
      description: adapterInfo?.description ?? '', isFallbackAdapter: fallback,
    },
    features: [...adapter.features].map(String).sort(),
    featureLevel: featureLevel
      ?? (adapterLevel === 'compatibility' || adapterLevel === 'core' ? adapterLevel
        : adapter.features.has('core-features-and-limits') ? 'core' : 'compatibility'),
    subgroupMinSize: hasSubgroups ? adapterInfo?.subgroupMinSize ?? 0 : 0,
    subgroupMaxSize: hasSubgroups ? adapterInfo?.subgroupMaxSize ?? 0 : 0,
  };
}

/** The limits worth raising to the adapter's maxima. */
const WANTED_LIMITS = [
  'maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY', 'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupStorageSize', 'maxStorageBuffersPerShaderStage', 'maxComputeWorkgroupsPerDimension',
] as const;

/**
 * Requests the device (asking for the adapter's maxima of the limits that matter unless `requestMaxLimits`
 * is false). `adapter` is used when given; otherwise one is requested from `gpu` (core, then compatibility).
 */
export async function acquireDevice(
  gpu: GPU, opts: { adapter?: GPUAdapter; featureLevel?: 'core' | 'compatibility'; requestMaxLimits?: boolean },
): Promise<{ adapter: GPUAdapter; device: GPUDevice; featureLevel: 'core' | 'compatibility' | undefined }> {
  let adapter = opts.adapter ?? null;
  let featureLevel = opts.featureLevel;
  if (!adapter) {
    adapter = await gpu.requestAdapter().catch(() => null);
    if (!adapter) {
      adapter = await gpu.requestAdapter({ featureLevel: 'compatibility' } as GPURequestAdapterOptions).catch(() => null);
      featureLevel ??= 'compatibility';
    }
    if (!adapter) throw new Error('WebGPU: requestAdapter() returned no adapter');
  }
  const requiredLimits: Record<string, number> = {};
  if (opts.requestMaxLimits !== false) {
    const adapterLimits = adapter.limits as unknown as Record<string, number | undefined>;
    for (const name of WANTED_LIMITS) if (typeof adapterLimits[name] === 'number') requiredLimits[name] = adapterLimits[name]!;
  }
  // Subgroups feed the software-rasteriser matmul; every kernel has a path without them.
  const requiredFeatures = (['subgroups'] as const).filter((feature) => adapter.features.has(feature)) as GPUFeatureName[];
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'dapo-webgpu' });
  return { adapter, device, featureLevel };
}

/**
 * CPU rasterisers (llvmpipe, SwiftShader) run invocations as SIMD lanes: workgroup memory and barriers
 * only add traffic there, so they get barrier-free kernels; with subgroups of ≥ 8 lanes, the one that
 * shares rows of A through subgroupBroadcast (16 lanes × 16 rows × 4 columns: 20 GFLOP/s at 1024² on
 * 2-core llvmpipe, against 10 without subgroups and 8 for 8 rows). GPUs get workgroup-memory tiles sized
 * to the invocation limit.
 */
export function pickMatmulConfig(limits: DeviceLimits, software: boolean, subgroupMinSize: number): MatmulConfig {
  const invocations = Math.min(limits.maxComputeInvocationsPerWorkgroup, 256);
  const WX = Math.min(16, limits.maxComputeWorkgroupSizeX);
  if (software) {
    return subgroupMinSize >= 8 ? { kind: 'subgroups', WX, WY: 1, TM: 16, BK: 4 } : { kind: 'direct', WX, WY: 1, TM: 8, BK: 4 };
  }
  const WY = Math.max(1, Math.min(Math.floor(invocations / WX), limits.maxComputeWorkgroupSizeY, 16));
  return { kind: 'tiled', WX, WY, TM: 4, BK: 16 };
}
