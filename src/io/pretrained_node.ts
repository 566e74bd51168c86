// Node adapter for pretrained models: a local directory, or a Hugging Face Hub id found in (or downloaded into)
// the standard Hugging Face cache — the same layout transformers and huggingface-cli use, so a model fetched by
// either is found here and the other way round. The browser bundle never imports this module.
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { type ModelFileReader, type PretrainedModel, type PretrainedOptions, PretrainedError, loadPretrainedFromFiles } from './pretrained.js';

export interface ResolveModelOptions {
  /** Branch, tag or commit of a Hub model (default 'main'). */
  revision?: string;
  /** The Hugging Face hub cache (default: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub). */
  cacheDir?: string;
  /** Download a Hub model missing from the cache (default true, false when HF_HUB_OFFLINE=1). */
  download?: boolean;
  /** Hub token for gated or private models (default: HF_TOKEN or HUGGING_FACE_HUB_TOKEN). */
  accessToken?: string;
  /** Give up on a Hub request whose response has not started within this many ms (default 20 000). */
  connectTimeoutMs?: number;
  /** The fetch the Hub client uses (tests pass a failing one). */
  fetch?: typeof fetch;
  /** Hub endpoint (default: HF_ENDPOINT or https://huggingface.co). */
  hubUrl?: string;
  /** Progress messages (e.g. console.error); silent by default. */
  log?: (message: string) => void;
}

export type LoadPretrainedOptions = PretrainedOptions & ResolveModelOptions;

/** Files of a model repository worth fetching: config, tokenizer, chat template and safetensors weights. */
const WANTED_FILE = /^(?:[^/]*\.json|[^/]*\.safetensors|tokenizer\.model|merges\.txt|vocab\.txt|[^/]*\.jinja)$/;

const HUB_ID = /^[A-Za-z0-9][\w.-]*(?:\/[\w.-]+)?$/;

/** The Hugging Face hub cache directory, as huggingface_hub resolves it. */
export function huggingFaceCacheDir(): string {
  const env = process.env;
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  const home = env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface');
  return join(home, 'hub');
}

/** The snapshot directory of `id` at `revision` in the cache, or null when it is not there (with config.json). */
export function cachedSnapshot(id: string, revision = 'main', cacheDir = huggingFaceCacheDir()): string | null {
  const repoDir = join(cacheDir, `models--${id.replace(/\//g, '--')}`);
  let commit = revision;
  if (!/^[0-9a-f]{40}$/.test(revision)) {
    const ref = join(repoDir, 'refs', revision);
    if (!existsSync(ref)) return null;
    commit = readFileSync(ref, 'utf8').trim();
  }
  const snapshot = join(repoDir, 'snapshots', commit);
  return existsSync(join(snapshot, 'config.json')) ? snapshot : null;
}

/**
 * A model directory for `model`: an existing local directory wins; otherwise `model` is a Hub id
 * ('HuggingFaceTB/SmolLM2-135M-Instruct'), looked up in the Hugging Face cache and downloaded into it when missing.
 * Offline, the error says how to get the files.
 */
export async function resolveModelDir(model: string, opts: ResolveModelOptions = {}): Promise<string> {
  const local = resolve(model);
  if (existsSync(local)) {
    if (!statSync(local).isDirectory()) throw new PretrainedError(`${model} is a file; pass the model directory (with config.json)`);
    return local;
  }
  if (!HUB_ID.test(model)) throw new PretrainedError(`no model directory ${local} (and '${model}' is not a Hugging Face Hub id like 'org/name')`);
  const revision = opts.revision ?? 'main';
  const cacheDir = opts.cacheDir ?? huggingFaceCacheDir();
  const cached = cachedSnapshot(model, revision, cacheDir);
  if (cached && hasWeights(cached)) return cached;
  const offline = ['1', 'true', 'yes', 'on'].includes((process.env.HF_HUB_OFFLINE ?? '').toLowerCase());
  if (opts.download === false || (opts.download === undefined && offline)) {
    throw new PretrainedError(`${model} is not in the Hugging Face cache ${cacheDir}, and downloading is off${offline ? ' (HF_HUB_OFFLINE)' : ''}.\n${howToGet(model, revision)}`);
  }
  try {
    return await downloadSnapshot(model, revision, cacheDir, opts);
  } catch (err) {
    const reason = (err as Error).message;
    throw new PretrainedError(`could not download ${model} from the Hugging Face Hub (${reason}).\n${howToGet(model, revision)}`);
  }
}

function howToGet(model: string, revision: string): string {
  const rev = revision === 'main' ? '' : ` --revision ${revision}`;
  return `Get the files where there is a network, e.g. \`hf download ${model}${rev}\` (or \`huggingface-cli download ${model}${rev}\`), ` +
    'which fills the same cache (copy ~/.cache/huggingface/hub here, or set HF_HOME / HF_HUB_CACHE), or pass the model directory itself ' +
    '(config.json, model.safetensors or model.safetensors.index.json with its shards, tokenizer files).';
}

function hasWeights(dir: string): boolean {
  return existsSync(join(dir, 'model.safetensors')) || existsSync(join(dir, 'model.safetensors.index.json'));
}

/** Fetches the wanted files of one commit into the cache (as huggingface_hub lays them out); returns the snapshot. */
async function downloadSnapshot(model: string, revision: string, cacheDir: string, opts: ResolveModelOptions): Promise<string> {
  const hub = await import('@huggingface/hub');
  const token = opts.accessToken ?? process.env.HF_TOKEN ?? process.env.HUGGING_FACE_HUB_TOKEN;
  const common = {
    fetch: withConnectTimeout(opts.fetch ?? globalThis.fetch, opts.connectTimeoutMs ?? 20_000),
    hubUrl: opts.hubUrl ?? process.env.HF_ENDPOINT,
    ...(token ? { accessToken: token as `hf_${string}` } : {}),
  };
  const log = opts.log ?? (() => {});
  log(`resolving ${model}@${revision} on the Hugging Face Hub`);
  const info = await hub.modelInfo({ ...common, name: model, revision, additionalFields: ['sha'] });
  const commit = info.sha;
  const files: string[] = [];
  for await (const entry of hub.listFiles({ ...common, repo: { type: 'model', name: model }, revision: commit })) {
    if (entry.type === 'file' && WANTED_FILE.test(entry.path)) files.push(entry.path);
  }
  if (!files.includes('config.json')) throw new Error(`${model} has no config.json`);
  if (!files.some((file) => file.endsWith('.safetensors'))) throw new Error(`${model} has no safetensors weights (only those are read)`);
  for (const path of files) {
    log(`downloading ${model}/${path}`);
    await hub.downloadFileToCacheDir({ ...common, repo: { type: 'model', name: model }, path, revision: commit, cacheDir });
  }
  const snapshot = join(cacheDir, `models--${model.replace(/\//g, '--')}`, 'snapshots', commit);
  if (revision !== commit) {
    // What huggingface_hub records so that the next lookup of this revision finds the snapshot offline.
    const refs = join(cacheDir, `models--${model.replace(/\//g, '--')}`, 'refs');
    mkdirSync(join(refs, revision, '..'), { recursive: true });
    writeFileSync(join(refs, revision), commit);
  }
  return snapshot;
}

/** A fetch that aborts when no response has started within `ms` (the body of a large file may take longer). */
function withConnectTimeout(base: typeof fetch, ms: number): typeof fetch {
  return async (input, init) => {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error(`no response within ${ms} ms`)), ms);
    const onAbort = () => controller.abort(init?.signal?.reason);
    init?.signal?.addEventListener('abort', onAbort);
    try {
      return await base(input, { ...init, signal: controller.signal });
    } catch (err) {
      const cause = (err as { cause?: { message?: string; code?: string } }).cause;
      throw new Error(cause?.code ?? cause?.message ?? (controller.signal.aborted ? String(controller.signal.reason?.message ?? controller.signal.reason) : (err as Error).message));
    } finally {
      clearTimeout(timer);
    }
  };
}

/** A reader over a model directory: whole files, or just their first bytes (safetensors headers). */
export function directoryReader(dir: string): ModelFileReader {
  return {
    where: dir,
    has: async (name) => existsSync(join(dir, name)),
    async read(name) {
      const path = join(dir, name);
      if (!existsSync(path)) throw new PretrainedError(`${dir}: missing ${name}`);
      return new Uint8Array(readFileSync(path));
    },
    async readPrefix(name, length) {
      const path = join(dir, name);
      if (!existsSync(path)) throw new PretrainedError(`${dir}: missing ${name}`);
      const fd = openSync(path, 'r');
      try {
        const size = fstatSync(fd).size;
        const bytes = new Uint8Array(Math.min(length, size));
        let filled = 0;
        while (filled < bytes.length) {
          const got = readSync(fd, bytes, filled, bytes.length - filled, filled);
          if (got === 0) break;
          filled += got;
        }
        return { bytes: bytes.subarray(0, filled), size };
      } finally {
        closeSync(fd);
      }
    },
  };
}

/**
 * Loads a pretrained model from a directory or a Hub id (see resolveModelDir). Options: maxSeqLen (the context to
 * run at; must fit a sliding window), revision, cacheDir, download, accessToken, connectTimeoutMs, fetch, hubUrl, log.
 */
export async function loadPretrained(model: string, opts: LoadPretrainedOptions = {}): Promise<PretrainedModel & { dir: string }> {
  const dir = await resolveModelDir(model, opts);
  const loaded = await loadPretrainedFromFiles(directoryReader(dir), { maxSeqLen: opts.maxSeqLen });
  return { ...loaded, dir };
}
