// Node adapter acquisition through Dawn (the `webgpu` npm package). The ONLY module that imports it, so the
// browser bundle never sees it. Vulkan core first; OpenGL ES (compatibility feature level) as the fallback.
//
// Env: DAPO_WEBGPU_BACKEND=vulkan|opengles|auto, DAPO_WEBGPU_ADAPTER=<adapter name> (Dawn flag `adapter=`).
// Dawn's "max…PerPipelineLayout artificially reduced" warnings (lavapipe reports 1e6 dynamic buffers) come from its
// native logger, which writes to file descriptor 2 with no callback, flag or toggle to silence it: they cannot be
// filtered from JavaScript (replacing process.stderr.write does not catch them).
// Lifetime: Dawn keeps the process alive while the GPU object and devices live; WebGPUBackend.destroy()
// destroys the device and drops its references to `gpu` and `adapter`, so callers must drop theirs too.
import { create, globals } from 'webgpu';

export type NodeGpuBackend = 'vulkan' | 'opengles' | 'auto';

export interface NodeAdapter {
  gpu: GPU;
  adapter: GPUAdapter;
  /** Dawn flags the adapter was created with. */
  flags: string[];
  featureLevel: 'core' | 'compatibility';
}

let globalsInstalled = false;

/** Installs GPUBufferUsage, GPUMapMode, … on globalThis (Dawn's `globals`), once. */
export function installWebGPUGlobals(): void {
  if (globalsInstalled) return;
  const g = globalThis as Record<string, unknown>;
  for (const [k, v] of Object.entries(globals as Record<string, unknown>)) if (g[k] === undefined) g[k] = v;
  globalsInstalled = true;
}

async function tryAdapter(flags: string[], featureLevel: 'core' | 'compatibility'): Promise<NodeAdapter | null> {
  let gpu: GPU;
  try {
    gpu = create(flags);
  } catch {
    return null;
  }
  try {
    const adapter = await gpu.requestAdapter(featureLevel === 'compatibility' ? { featureLevel: 'compatibility' } : undefined);
    if (!adapter) return null;
    return { gpu, adapter, flags, featureLevel };
  } catch {
    return null;
  }
}

/**
 * Finds a Dawn adapter: Vulkan (core) first, then OpenGL ES (compatibility) with EGL_PLATFORM=surfaceless.
 * Throws with the list of tried configurations when none works.
 */
export async function requestNodeAdapter(
  opts: { backend?: NodeGpuBackend; adapterName?: string } = {},
): Promise<NodeAdapter> {
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  installWebGPUGlobals();
  const envBackend = process.env.DAPO_WEBGPU_BACKEND as NodeGpuBackend | undefined;
  const backend: NodeGpuBackend = opts.backend ?? (envBackend === 'vulkan' || envBackend === 'opengles' ? envBackend : 'auto');
  const adapterName = opts.adapterName ?? process.env.DAPO_WEBGPU_ADAPTER;
  const extra = adapterName ? [`adapter=${adapterName}`] : [];
  const tried: string[] = [];

  if (backend === 'vulkan' || backend === 'auto') {
    const attempts = backend === 'auto' ? [[...extra], ['backend=vulkan', ...extra]] : [['backend=vulkan', ...extra]];
    for (const flags of attempts) {
      tried.push(`[${flags.join(', ')}] core`);
      const r = await tryAdapter(flags, 'core');
      if (r) return r;
    }
  }
  if (backend === 'opengles' || backend === 'auto') {
    process.env.EGL_PLATFORM ??= 'surfaceless';
    const flags = ['backend=opengles', ...extra];
    tried.push(`[${flags.join(', ')}] compatibility`);
    const r = await tryAdapter(flags, 'compatibility');
    if (r) return r;
  }
  throw new Error(`No WebGPU adapter found through Dawn (tried ${tried.join('; ')})`);
}
