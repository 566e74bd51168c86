// Node entry point: wires Dawn (the `webgpu` package) and worker_threads into the engine.
import { requestNodeAdapter } from './backend/webgpu/node_gpu.js';
import { nodeDefaultThreads, nodeWorkerFactory } from './backend/wasm/node_workers.js';
import { type BackendChoice, type Platform, type Selection, createBackend, parseBackendChoice } from './backend/select.js';
import { setBackend } from './tensor/engine.js';

export * from './index.js';

export function nodePlatform(opts: { threads?: number } = {}): Platform {
  return {
    name: 'node',
    async requestAdapter() {
      try {
        const r = await requestNodeAdapter();
        return { gpu: r.gpu, adapter: r.adapter, via: `Dawn (${r.flags.length ? r.flags.join(' ') : 'default: Vulkan'})` };
      } catch (e) {
        return { error: (e as Error).message };
      }
    },
    wasmThreads: opts.threads ?? nodeDefaultThreads(),
    workerFactory: nodeWorkerFactory(),
  };
}

export interface InitOptions {
  /** 'auto' (default), 'webgpu', 'wasm' or 'reference'; the DAPO_BACKEND env var is used when absent. */
  backend?: BackendChoice | string;
  /** WASM worker threads (default: available cores). */
  threads?: number;
}

/** Creates the chosen backend, makes it the active one, and says why it was chosen. */
export async function initEngine(opts: InitOptions = {}): Promise<Selection> {
  const choice = parseBackendChoice(opts.backend ?? process.env.DAPO_BACKEND ?? 'auto');
  const selection = await createBackend(choice, nodePlatform({ threads: opts.threads }), { threads: opts.threads });
  setBackend(selection.backend);
  return selection;
}

export { loadCheckpoint, saveCheckpoint, writeFileAtomic } from './io/node_files.js';
export {
  type LoadPretrainedOptions, type ResolveModelOptions, cachedSnapshot, directoryReader, huggingFaceCacheDir, loadPretrained, resolveModelDir,
} from './io/pretrained_node.js';
export { svgToPng } from './plot/png_node.js';
export { NodeRunStore, RunDirError, latestCheckpoint, readJsonl, readRunConfig, restoreOptimizer, restoreRun } from './rl/run_dir_node.js';
export { loadHfTokenizer, readHfTokenizerFiles } from './data/tokenizer_node.js';
export { loadDatasetTask, readDatasetFile } from './data/datasets_node.js';
export { loadRewardModule } from './data/reward_module_node.js';
