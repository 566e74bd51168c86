// Browser adapter acquisition: navigator.gpu, core feature level first, compatibility as the fallback.

export interface BrowserAdapter {
  gpu: GPU;
  adapter: GPUAdapter;
  featureLevel: 'core' | 'compatibility';
}

export function hasBrowserWebGPU(): boolean {
  return typeof navigator !== 'undefined' && !!(navigator as Navigator & { gpu?: GPU }).gpu;
}

export async function requestBrowserAdapter(
  opts: { powerPreference?: GPUPowerPreference; featureLevel?: 'core' | 'compatibility' } = {},
): Promise<BrowserAdapter> {
  if (!hasBrowserWebGPU()) throw new Error('WebGPU is not available (navigator.gpu is missing)');
  const gpu = (navigator as Navigator & { gpu: GPU }).gpu;
  const levels: ('core' | 'compatibility')[] = opts.featureLevel ? [opts.featureLevel] : ['core', 'compatibility'];
  for (const featureLevel of levels) {
    const req: GPURequestAdapterOptions & { featureLevel?: string } = { powerPreference: opts.powerPreference };
    if (featureLevel === 'compatibility') req.featureLevel = 'compatibility';
    const adapter = await gpu.requestAdapter(req).catch(() => null);
    if (adapter) return { gpu, adapter, featureLevel };
  }
  throw new Error('navigator.gpu.requestAdapter() returned no adapter');
}
