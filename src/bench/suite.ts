// The `dapo bench` run itself, shared by the CLI and the browser page: every case on each backend, each case
// on a fresh backend (so one case's failure or memory peak does not leak into the next), each next to its
// TF.js peer when one is loaded. Results go out as events; the CLI prints them, the page tabulates them.
// Browser-safe: the platform (Dawn + worker_threads, or navigator.gpu + Web Workers) and the TF.js loader
// come from the caller.
import { type AdapterProbe, BACKEND_CHOICES, type BackendChoice, type Platform, createBackend } from '../backend/select.js';
import { type BenchFailure, type BenchOutcome, type BenchRecord, type TimingOptions, isFailure } from './common.js';
import { type BenchCaseName, type BenchSize, type BenchSizes, benchSizes, runCase } from './cases.js';
import { statedPeerFor } from './dapo_step_bench.js';
import { statedRealPeerFor } from './real_shapes_bench.js';
import { PEER_OF, type PeerKind, type Tf, tfjsAttention, tfjsMatmul, tfjsMatmulTrain, tfjsSoftmaxGather } from './tfjs_cases.js';

/** Loads TF.js with the peer's backend active (gpu: the WebGPU instance our backend uses, where it matters). */
export type LoadPeer = (kind: PeerKind, gpu: GPU | undefined) => Promise<Tf>;

export type SuiteEvent =
  /** A backend started (first case): its label and Backend.describe(). */
  | { kind: 'backend'; label: string; description: Record<string, unknown> }
  /** A measurement; `vs` is its TF.js (or stated) counterpart, which sets vs/ratio in the JSON line. */
  | { kind: 'record'; record: BenchRecord; vs?: BenchRecord }
  | { kind: 'failure'; failure: BenchFailure };

export interface SuiteProgress {
  /** Cases finished over cases in the run (backends × cases). */
  done: number;
  total: number;
  backend: string;
  case: BenchCaseName;
  stage: 'ours' | 'peer';
}

export interface SuiteOptions {
  platform: Platform;
  backends: readonly string[];
  cases: readonly BenchCaseName[];
  size: BenchSize;
  threads?: number;
  /** Measure TF.js next to webgpu and wasm with this loader; absent → no peers. */
  loadPeer?: LoadPeer;
  emit: (event: SuiteEvent) => void;
  progress?: (p: SuiteProgress) => void;
  /** Awaited before each case (the page yields to the browser so it can paint). */
  between?: () => Promise<void>;
}

/** Parses backend names (comma lists or several); throws naming the unknown ones. */
export function parseBackendNames(lists: readonly string[]): string[] {
  const names = lists.flatMap((b) => b.split(',')).map((b) => b.trim()).filter(Boolean);
  const unknown = names.filter((n) => !BACKEND_CHOICES.includes(n as BackendChoice) || n === 'auto');
  if (unknown.length) throw new Error(`bench: unknown backend '${unknown.join("', '")}' (choose from webgpu, wasm, reference)`);
  if (!names.length) throw new Error('bench: no backend given (choose from webgpu, wasm, reference)');
  return names;
}

/** Timing loop per size: full 4 s per measurement, quick 1 s, tiny a single run (it proves the path runs). */
export function suiteTiming(size: BenchSize, reference: boolean): TimingOptions {
  if (size === 'tiny') return { warmup: 0, runs: 1, budgetMs: 0 };
  if (reference) return { warmup: 1, runs: 3, budgetMs: 0 };
  return { runs: 5, budgetMs: size === 'quick' ? 1000 : 4000 };
}

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

  constructor(private readonly platform: Platform, private readonly loadPeer: LoadPeer) {}

  async load(kind: PeerKind): Promise<Tf> {
    const earlier = this.failed.get(kind);
    if (earlier) throw new Error(earlier);
    if (this.loaded.has(kind)) return this.loadPeer(kind, undefined); // switches TF.js back to this backend
    try {
      let gpu: GPU | undefined;
      if (kind === 'tfjs-webgpu') {
        const probe = await this.platform.requestAdapter();
        if ('error' in probe) throw new Error(probe.error);
        gpu = probe.gpu;
      }
      const tf = await this.loadPeer(kind, gpu);
      this.loaded.add(kind);
      return tf;
    } catch (e) {
      this.failed.set(kind, messageOf(e));
      throw e;
    }
  }
}

/**
 * One GPU instance for the whole run: each case gets a fresh adapter and device, but from the same GPU
 * object, which also serves tfjs-webgpu. (Under Node, creating a Dawn instance per backend and letting
 * finished ones be garbage-collected while TF.js's lives crashes Dawn.)
 */
export function sharedGpuPlatform(platform: Platform): Platform {
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

const messageOf = (e: unknown) => (e as Error)?.message ?? String(e);

/** Each of our records followed by its TF.js counterpart (same op and shape), then unpaired peer records. */
function emitPaired(emit: SuiteOptions['emit'], ours: readonly BenchOutcome[], theirs: readonly BenchRecord[]): void {
  const used = new Set<BenchRecord>();
  for (const r of ours) {
    if (isFailure(r)) {
      emit({ kind: 'failure', failure: r });
      continue;
    }
    const vs = theirs.find((p) => p.op === r.op && sameShape(p.shape, r.shape));
    emit({ kind: 'record', record: r, vs });
    if (vs) {
      emit({ kind: 'record', record: vs });
      used.add(vs);
    }
  }
  for (const p of theirs) if (!used.has(p)) emit({ kind: 'record', record: p });
}

/**
 * Runs the cases on each backend in order; returns every record (ours and the peers'). The platform should
 * be wrapped by sharedGpuPlatform when TF.js peers run on WebGPU.
 */
export async function runSuite(opts: SuiteOptions): Promise<BenchRecord[]> {
  const records: BenchRecord[] = [];
  const emit = (event: SuiteEvent) => {
    if (event.kind === 'record') records.push(event.record);
    opts.emit(event);
  };
  const peers = opts.loadPeer ? new PeerLoader(opts.platform, opts.loadPeer) : null;
  const total = opts.backends.length * opts.cases.length;
  let done = 0;
  for (const name of opts.backends) {
    // The float64 reference is an oracle, not a product backend: small shapes and few runs only.
    const reference = name === 'reference';
    const sizes = benchSizes(reference && opts.size === 'full' ? 'quick' : opts.size);
    if (reference && opts.size !== 'tiny') sizes.matmul = sizes.matmul.filter(([m]) => m <= 256);
    const timing = suiteTiming(opts.size, reference);
    const peerKind = peers ? PEER_OF[name] : undefined;
    for (const [i, c] of opts.cases.entries()) {
      await opts.between?.();
      opts.progress?.({ done, total, backend: name, case: c, stage: 'ours' });
      let sel;
      try {
        sel = await createBackend(name as BackendChoice, opts.platform, { threads: opts.threads });
      } catch (e) {
        emit({ kind: 'failure', failure: { op: c, backend: name, shape: [], error: `backend unavailable: ${messageOf(e)}` } });
        done += opts.cases.length - i;
        break;
      }
      const label = name === 'wasm' ? `wasm-${sel.backend.describe().threads}t` : name;
      if (i === 0) emit({ kind: 'backend', label, description: sel.backend.describe() });
      let ours: BenchOutcome[] = [];
      try {
        ours = await runCase(c, sel.backend, label, sizes, timing);
      } catch (e) {
        emit({ kind: 'failure', failure: { op: c, backend: label, shape: [], error: messageOf(e) } });
      } finally {
        sel.backend.destroy();
      }
      let theirs: BenchRecord[] = [];
      const peerCase = PEER_CASES[c];
      if (peers && peerKind && peerCase) {
        opts.progress?.({ done, total, backend: name, case: c, stage: 'peer' });
        try {
          theirs = await peerCase(await peers.load(peerKind), peerKind, sizes, timing);
        } catch (e) {
          emit({ kind: 'failure', failure: { op: c, backend: peerKind, shape: [], error: messageOf(e) } });
        }
      }
      // A figure quoted from the issue, not measured, next to the record it was stated for (dapo_step on wasm).
      if (peers) for (const r of ours) if (!isFailure(r)) { const stated = statedPeerFor(r) ?? statedRealPeerFor(r); if (stated) theirs.push(stated); }
      emitPaired(emit, ours, theirs);
      done++;
    }
  }
  return records;
}
