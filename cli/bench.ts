// `dapo bench`: kernel benchmarks per backend, each next to TF.js on the same adapter / in its WASM backend.
// --json prints one JSON object per line.
import { BACKEND_CHOICES, type BackendChoice, createBackend } from '../src/backend/select.js';
import { nodePlatform } from '../src/node.js';
import { type BenchRecord, MATMUL_SHAPES, benchMatmul } from '../src/bench/matmul_bench.js';
import { type PeerKind, loadTfjs, tfjsMatmul } from './tfjs_peer.js';

export interface BenchOptions {
  backend: string[];
  json: boolean;
  quick: boolean;
  threads?: number;
  /** Also measure TF.js (tfjs-webgpu next to webgpu, tfjs-wasm next to wasm). */
  peers: boolean;
}

const PEER: Record<string, PeerKind | undefined> = { webgpu: 'tfjs-webgpu', wasm: 'tfjs-wasm' };

export async function runBench(opts: BenchOptions, print: (line: string) => void): Promise<BenchRecord[]> {
  const names = opts.backend.flatMap((b) => b.split(',')).map((b) => b.trim()).filter(Boolean);
  for (const n of names) {
    if (!BACKEND_CHOICES.includes(n as BackendChoice) || n === 'auto') {
      throw new Error(`bench: unknown backend '${n}' (choose from webgpu, wasm, reference)`);
    }
  }
  const shapes = opts.quick ? MATMUL_SHAPES.filter(([m]) => m <= 512) : MATMUL_SHAPES;
  const budgetMs = opts.quick ? 1000 : 4000;
  const records: BenchRecord[] = [];
  const platform = nodePlatform({ threads: opts.threads });
  const emit = (r: BenchRecord, vs?: BenchRecord) => {
    records.push(r);
    const ratio = vs ? r.gflops! / vs.gflops! : undefined;
    if (opts.json) {
      print(JSON.stringify({ op: r.op, backend: r.backend, shape: r.shape, ms: round(r.ms), gflops: round(r.gflops!), ...(vs ? { vs: vs.backend, ratio: round(ratio!) } : {}) }));
    } else {
      print(`  ${r.op} ${r.shape.join('×').padEnd(16)} ${r.backend.padEnd(12)} ${round(r.ms).toString().padStart(10)} ms ${round(r.gflops!).toString().padStart(8)} GFLOP/s${vs ? `   ${round(ratio!)}× ${vs.backend}` : ''}`);
    }
  };

  for (const name of names) {
    let sel;
    try {
      sel = await createBackend(name as BackendChoice, platform, { threads: opts.threads });
    } catch (e) {
      print(opts.json ? JSON.stringify({ op: 'matmul', backend: name, error: (e as Error).message }) : `${name}: unavailable (${(e as Error).message})`);
      continue;
    }
    const label = name === 'wasm' ? `wasm-${sel.backend.describe().threads}t` : name;
    if (!opts.json) print(`${label}: ${JSON.stringify(sel.backend.describe())}`);
    const ours: BenchRecord[] = [];
    for (const shape of shapes) {
      if (name === 'reference' && shape[0] > 256) continue;
      ours.push(await benchMatmul(sel.backend, label, shape, { runs: 5, budgetMs }));
    }
    sel.backend.destroy();

    const peerKind = opts.peers ? PEER[name] : undefined;
    let peer: BenchRecord[] = [];
    if (peerKind) {
      try {
        const probe = peerKind === 'tfjs-webgpu' ? await platform.requestAdapter() : null;
        const tf = await loadTfjs(peerKind, probe && 'gpu' in probe ? probe.gpu : undefined);
        for (const shape of shapes) peer.push(await tfjsMatmul(tf, peerKind, shape, 5, budgetMs));
      } catch (e) {
        peer = [];
        if (!opts.json) print(`  (${peerKind} unavailable: ${(e as Error).message})`);
      }
    }
    ours.forEach((r, i) => {
      emit(r, peer[i]);
      if (peer[i]) emit(peer[i]);
    });
  }
  return records;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
