// The two WebGPU adapters the kernel tests run on: Vulkan with core features (subgroups on llvmpipe) and
// OpenGL ES in compatibility mode with default limits (128 invocations per workgroup, no subgroups).
import { requestNodeAdapter } from '../../src/backend/webgpu/node_gpu.js';
import { type WebGPUBackend, type WebGPUBackendOptions, createWebGPUBackend } from '../../src/backend/webgpu/webgpu_backend.js';

export interface WebGPUTestAdapter {
  name: 'vulkan core' | 'opengles compat (default limits)';
  /** Opens a fresh backend on the adapter; options override the test defaults. */
  open(options?: WebGPUBackendOptions): Promise<WebGPUBackend>;
}

export const WEBGPU_TEST_ADAPTERS: readonly WebGPUTestAdapter[] = [
  {
    name: 'vulkan core',
    open: async (options = {}) => {
      const found = await requestNodeAdapter({ backend: 'vulkan' });
      return createWebGPUBackend(found.gpu, { adapter: found.adapter, featureLevel: found.featureLevel, source: found.flags.join(' '), ...options });
    },
  },
  {
    name: 'opengles compat (default limits)',
    open: async (options = {}) => {
      const found = await requestNodeAdapter({ backend: 'opengles' });
      return createWebGPUBackend(found.gpu, { adapter: found.adapter, featureLevel: found.featureLevel, requestMaxLimits: false, ...options });
    },
  },
];
