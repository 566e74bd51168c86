// `dapo bench`: the benchmark cases (src/bench/cases.ts) per backend, each next to TF.js on the same
// adapter / in its WASM backend. Every case gets a fresh backend, so one case's failure or memory peak does
// not leak into the next. --json prints one JSON object per line (format: src/bench/format.ts).
import { type AdapterProbe, BACKEND_CHOICES, type BackendChoice, type Platform, createBackend } from '../src/backend/select.js';
import { nodePlatform } from '../src/node.js';
import { type BenchOutcome, type BenchRecord, type TimingOptions, isFailure } from '../src/bench/common.js';
import { type BenchCaseName, type BenchSizes, benchSizes, parseCaseNames, runCase } from '../src/bench/cases.js';
import { recordJson, recordText } from '../src/bench/format.js';
import { statedPeerFor } from '../src/bench/dapo_step_bench.js';
import { statedRealPeerFor } from '../src/bench/real_shapes_bench.js';
import { type PeerKind, type Tf, loadTfjs, tfjsMatmul } from './tfjs_peer.js';
import { tfjsAttention, tfjsMatmulTrain, tfjsSoftmaxGather } from './tfjs_model_peer.js';

export interface BenchOptions {
  backend: string[];
  json: boolean;
  /** Small shapes and a 1 s budget per timing loop instead of 4 s (see src/bench/cases.ts). */
  quick: boolean;
  threads?: number;
  /** Also measure TF.js (tfjs-webgpu next to webgpu, tfjs-wasm next to wasm). */
  peers: boolean;
  /** Case names (comma lists); absent or empty → all. */
  only?: string[];
}

const PEER: Record<string, PeerKind | undefined> = { webgpu: 'tfjs-webgpu', wasm: 'tfjs-wasm' };

type PeerCase = (tf: Tf, kind: PeerKind, sizes: BenchSizes, timing: TimingOptions) => Promise<BenchRecord[]>;

/** The cases TF.js has a counterpart for. */
const PEER_CASES: Partial<Record<BenchCaseName, PeerCase>> = {
  matmul: async (tf, kind, sizes, timing) => {
    const out: BenchRecord[] = [];
    for (const shape of sizes.matmul) out.push(await tfjsMatmul(tf, kind, shape, timing));
    return out;
  },
  attention: (tf, kind, sizes, timing) => tfjsAttention(tf, kind, sizes.attention, timing),
  softmax_gather: (tf, kind, sizes, timing) => tfjsSoftmaxGather(tf, kind, sizes.softmaxGather, timing),
  matmul_train: async (tf, kind, sizes, timing) => [await tfjsMatmulTrain(tf, kind, sizes.matmulTrainN, timing)],
};

/** Loads each TF.js peer once; a peer that failed to load is not tried again. */
class PeerLoader {
  private readonly failed = new Map<PeerKind, string>();
  private readonly loaded = new Set<PeerKind>();

  constructor(private readonly platform: Platform) {}

  async load(kind: PeerKind): Promise<Tf> {
    const earlier = this.failed.get(kind);
    if (earlier) throw new Error(earlier);
    if (this.loaded.has(kind)) return loadTfjs(kind); // switches TF.js back to this backend
    try {
      let gpu: GPU | undefined;
      if (kind === 'tfjs-webgpu') {
        const probe = await this.platform.requestAdapter();
        if ('error' in probe) throw new Error(probe.error);
        gpu = probe.gpu;
      }
      const tf = await loadTfjs(kind, gpu);
      this.loaded.add(kind);
      return tf;
    } catch (e) {
      this.failed.set(kind, (e as Error).message);
      throw e;
    }
  }
}

/**
 * One Dawn instance for the whole run: each case gets a fresh adapter and device, but from the same GPU
 * object, which also serves tfjs-webgpu. (Creating an instance per backend and letting finished ones be
 * garbage-collected while TF.js's lives crashes Dawn.)
 */
function sharedGpuPlatform(platform: Platform): Platform {
  let first: Promise<AdapterProbe | { error: string }> | null = null;
  return {
    ...platform,
    async requestAdapter() {
      if (!first) {
        first = platform.requestAdapter();
        return first;
      }
      const probe = await first;
      if ('error' in probe) return probe;
      // A device consumes its adapter: ask the same instance for a new one, at the same feature level.
      const compatibility = !probe.adapter.features.has('core-features-and-limits');
      const adapter = await probe.gpu.requestAdapter(compatibility ? { featureLevel: 'compatibility' } : undefined);
      return adapter ? { gpu: probe.gpu, adapter, via: probe.via } : { error: 'the GPU instance gave no further adapter' };
    },
  };
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** Where lines go and how they look: JSON objects or aligned text. */
class Printer {
  readonly records: BenchRecord[] = [];

  constructor(private readonly json: boolean, private readonly print: (line: string) => void) {}

  record(r: BenchRecord, vs?: BenchRecord): void {
    this.records.push(r);
    this.print(this.json ? JSON.stringify(recordJson(r, vs)) : recordText(r, vs));
  }

  failure(op: string, backend: string, error: string, shape?: number[]): void {
    this.print(this.json ? JSON.stringify({ op, backend, ...(shape ? { shape } : {}), error })
      : `  ${op.padEnd(20)} ${(shape ?? []).join('×').padEnd(16)} ${backend}: failed (${error})`);
  }

  text(line: string): void {
    if (!this.json) this.print(line);
  }

  /** Each of our records followed by its TF.js counterpart (same op and shape), which sets vs/ratio. */
  paired(ours: readonly BenchOutcome[], theirs: readonly BenchRecord[]): void {
    const used = new Set<BenchRecord>();
    for (const r of ours) {
      if (isFailure(r)) {
        this.failure(r.op, r.backend, r.error, r.shape);
        continue;
      }
      const vs = theirs.find((p) => p.op === r.op && sameShape(p.shape, r.shape));
      this.record(r, vs);
      if (vs) {
        this.record(vs);
        used.add(vs);
      }
    }
    for (const p of theirs) if (!used.has(p)) this.record(p);
  }
}

const messageOf = (e: unknown) => (e as Error)?.message ?? String(e);

export async function runBench(opts: BenchOptions, print: (line: string) => void): Promise<BenchRecord[]> {
  const names = opts.backend.flatMap((b) => b.split(',')).map((b) => b.trim()).filter(Boolean);
  for (const n of names) {
    if (!BACKEND_CHOICES.includes(n as BackendChoice) || n === 'auto') {
      throw new Error(`bench: unknown backend '${n}' (choose from webgpu, wasm, reference)`);
    }
  }
  const cases = parseCaseNames(opts.only);
  const out = new Printer(opts.json, print);
  const platform = sharedGpuPlatform(nodePlatform({ threads: opts.threads }));
  const peers = new PeerLoader(platform);

  for (const name of names) {
    // The float64 reference is an oracle, not a product backend: small shapes and few runs only.
    const reference = name === 'reference';
    const sizes = benchSizes(opts.quick || reference);
    if (reference) sizes.matmul = sizes.matmul.filter(([m]) => m <= 256);
    const timing: TimingOptions = reference ? { warmup: 1, runs: 3, budgetMs: 0 } : { runs: 5, budgetMs: opts.quick ? 1000 : 4000 };
    const peerKind = opts.peers ? PEER[name] : undefined;
    for (const [i, c] of cases.entries()) {
      let sel;
      try {
        sel = await createBackend(name as BackendChoice, platform, { threads: opts.threads });
      } catch (e) {
        out.failure(c, name, `backend unavailable: ${messageOf(e)}`);
        break;
      }
      const label = name === 'wasm' ? `wasm-${sel.backend.describe().threads}t` : name;
      if (i === 0) out.text(`${label}: ${JSON.stringify(sel.backend.describe())}`);
      let ours: BenchOutcome[] = [];
      try {
        ours = await runCase(c, sel.backend, label, sizes, timing);
      } catch (e) {
        out.failure(c, label, messageOf(e));
      } finally {
        sel.backend.destroy();
      }
      let theirs: BenchRecord[] = [];
      const peerCase = PEER_CASES[c];
      if (peerKind && peerCase) {
        try {
          theirs = await peerCase(await peers.load(peerKind), peerKind, sizes, timing);
        } catch (e) {
          out.failure(c, peerKind, messageOf(e));
        }
      }
      // A figure quoted from the issue, not measured, next to the record it was stated for (dapo_step on wasm).
      if (opts.peers) for (const r of ours) if (!isFailure(r)) { const stated = statedPeerFor(r) ?? statedRealPeerFor(r); if (stated) theirs.push(stated); }
      out.paired(ours, theirs);
    }
  }
  return out.records;
}
