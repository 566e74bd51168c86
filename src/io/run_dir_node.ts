// Node adapter: a training run directory.
//   config.json          the fully resolved TrainConfig
//   sft.jsonl            one line per supervised warm-up step
//   metrics.jsonl        one line per RL step
//   eval.jsonl           one line per evaluation
//   reference.safetensors  the frozen reference policy (KL penalty on)
//   checkpoints/step-NNNNNN/{model.safetensors, config.json, optimizer.safetensors, trainer_state.json}
//   checkpoints/latest.json  which checkpoint is the newest complete one
// Every file is written atomically; a checkpoint directory is renamed into place only when complete, and
// resuming cuts the JSONL files back to the checkpoint so no line is lost or duplicated.
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as T from '../tensor/index.js';
import type { TransformerLM } from '../nn/transformer.js';
import type { AdamW } from '../optim/adamw.js';
import type { TrainConfig } from '../rl/config.js';
import type { RunStore, TrainerCheckpoint, TrainerState } from '../rl/trainer.js';
import { decodeSafetensors } from './safetensors.js';
import { encodeTensors, loadModelWeights } from './checkpoint.js';
import { type JsonlRecord, parseJsonl } from './jsonl.js';
import { loadCheckpoint, saveCheckpoint, writeFileAtomic } from './node_files.js';

export const RUN_FILES = { config: 'config.json', metrics: 'metrics.jsonl', eval: 'eval.jsonl', sft: 'sft.jsonl', reference: 'reference.safetensors' } as const;

export class RunDirError extends Error {}

/** Reads a JSONL file of the run (missing → no records), ignoring a torn last line (a run killed mid-write). */
export function readJsonl(path: string): JsonlRecord[] {
  return existsSync(path) ? parseJsonl(readFileSync(path, 'utf8'), path).records : [];
}

function writeJsonl(path: string, records: readonly Record<string, unknown>[]): void {
  writeFileAtomic(path, records.map((r) => `${JSON.stringify(r)}\n`).join(''));
}

export class NodeRunStore implements RunStore {
  readonly dir: string;

  constructor(dir: string, private readonly keep: number, readonly log: (line: string) => void = () => {},
    readonly progress?: RunStore['progress']) {
    this.dir = resolve(dir);
  }

  /** Creates a new run directory; refuses to mix with an existing run unless `force`. */
  static create(dir: string, config: TrainConfig, opts: { force?: boolean; log?: (l: string) => void; progress?: RunStore['progress'] } = {}): NodeRunStore {
    const store = new NodeRunStore(dir, config.checkpoint.keep, opts.log, opts.progress);
    if (existsSync(store.dir) && readdirSync(store.dir).length > 0) {
      if (!opts.force) throw new RunDirError(`run directory ${store.dir} already holds a run; continue it with --resume ${dir}, or pick another --out (or --force to overwrite)`);
      rmSync(store.dir, { recursive: true, force: true });
    }
    mkdirSync(join(store.dir, 'checkpoints'), { recursive: true });
    writeFileAtomic(join(store.dir, RUN_FILES.config), `${JSON.stringify(config, null, 2)}\n`);
    return store;
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  appendMetrics(record: Record<string, unknown>): void {
    appendFileSync(this.path(RUN_FILES.metrics), `${JSON.stringify(record)}\n`);
  }

  appendEval(record: Record<string, unknown>): void {
    appendFileSync(this.path(RUN_FILES.eval), `${JSON.stringify(record)}\n`);
  }

  appendSft(record: Record<string, unknown>): void {
    appendFileSync(this.path(RUN_FILES.sft), `${JSON.stringify(record)}\n`);
  }

  async saveReference(model: TransformerLM): Promise<void> {
    writeFileAtomic(this.path(RUN_FILES.reference), await encodeTensors(model.params, { format: 'pt', role: 'reference policy' }));
  }

  async saveCheckpoint(c: TrainerCheckpoint): Promise<void> {
    const name = `step-${String(c.state.rlStep).padStart(6, '0')}${c.state.finished ? '-final' : ''}`;
    const root = this.path('checkpoints');
    const tmp = join(root, `.tmp-${name}-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    await saveCheckpoint(tmp, c.model, { step: String(c.state.rlStep) });
    writeFileAtomic(join(tmp, 'optimizer.safetensors'), await encodeTensors(c.optimizer.state(), { format: 'pt', steps: String(c.optimizer.stepCount) }));
    writeFileAtomic(join(tmp, 'trainer_state.json'), `${JSON.stringify({ ...c.state, optimizerSteps: c.optimizer.stepCount }, null, 1)}\n`);
    const final = join(root, name);
    rmSync(final, { recursive: true, force: true });
    renameSync(tmp, final);
    writeFileAtomic(join(root, 'latest.json'), `${JSON.stringify({ checkpoint: name })}\n`);
    // Keep the newest `keep` checkpoints.
    const all = readdirSync(root).filter((d) => d.startsWith('step-')).sort();
    for (const old of all.slice(0, Math.max(0, all.length - Math.max(1, this.keep)))) rmSync(join(root, old), { recursive: true, force: true });
  }
}

/** The newest complete checkpoint directory of a run, or null. */
export function latestCheckpoint(runDir: string): string | null {
  const latest = join(runDir, 'checkpoints', 'latest.json');
  if (!existsSync(latest)) return null;
  let name: string;
  try {
    name = JSON.parse(readFileSync(latest, 'utf8')).checkpoint;
  } catch (e) {
    throw new RunDirError(`${latest} is not valid JSON (${(e as Error).message})`);
  }
  const dir = join(runDir, 'checkpoints', name);
  if (!existsSync(dir)) throw new RunDirError(`${latest} names ${name}, which does not exist`);
  return dir;
}

/** Reads a run's resolved config. */
export function readRunConfig(runDir: string): unknown {
  const path = join(resolve(runDir), RUN_FILES.config);
  if (!existsSync(path)) throw new RunDirError(`${resolve(runDir)} is not a run directory (no ${RUN_FILES.config})`);
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new RunDirError(`${path} is not valid JSON (${(e as Error).message})`);
  }
}

export interface Restored {
  model: TransformerLM;
  optimizerState: Map<string, T.Tensor>;
  optimizerSteps: number;
  state: TrainerState;
  reference: TransformerLM | null;
}

/** Loads the newest checkpoint of a run (null when the run has none yet) and cuts the logs back to it. */
export function restoreRun(runDir: string, withReference: boolean): Restored | null {
  const dir = resolve(runDir);
  const ckpt = latestCheckpoint(dir);
  const sftPath = join(dir, RUN_FILES.sft);
  if (!ckpt) {
    // Nothing durable yet: the run starts over, so its partial logs go.
    for (const f of [RUN_FILES.sft, RUN_FILES.metrics, RUN_FILES.eval]) rmSync(join(dir, f), { force: true });
    return null;
  }
  let state: TrainerState & { optimizerSteps: number };
  try {
    state = JSON.parse(readFileSync(join(ckpt, 'trainer_state.json'), 'utf8'));
  } catch (e) {
    throw new RunDirError(`checkpoint ${ckpt}: trainer_state.json is missing or invalid (${(e as Error).message})`);
  }
  const model = loadCheckpoint(ckpt);
  const optimizerState = new Map<string, T.Tensor>();
  try {
    const { tensors } = decodeSafetensors(new Uint8Array(readFileSync(join(ckpt, 'optimizer.safetensors'))));
    for (const [name, t] of tensors) optimizerState.set(name, T.tensor(t.data, t.shape));
  } catch (e) {
    model.dispose();
    throw new RunDirError(`checkpoint ${ckpt}: optimizer.safetensors: ${(e as Error).message}`);
  }
  let reference: TransformerLM | null = null;
  if (withReference) {
    const refPath = join(dir, RUN_FILES.reference);
    if (!existsSync(refPath)) throw new RunDirError(`${dir}: the KL penalty is on but ${RUN_FILES.reference} is missing`);
    reference = loadCheckpoint(ckpt);
    loadModelWeights(reference, new Uint8Array(readFileSync(refPath)));
  }
  // Cut the logs back to the checkpoint: the steps after it will be recomputed identically.
  const keepMetric = (r: Record<string, unknown>) => Number(r.step) <= state.rlStep;
  const keepEval = (r: Record<string, unknown>) => Number(r.step) <= state.rlStep && (r.phase !== 'final' || state.finished);
  writeJsonl(join(dir, RUN_FILES.metrics), readJsonl(join(dir, RUN_FILES.metrics)).filter(keepMetric));
  writeJsonl(join(dir, RUN_FILES.eval), readJsonl(join(dir, RUN_FILES.eval)).filter(keepEval));
  if (!state.sftDone) writeFileSync(sftPath, '');
  const { optimizerSteps, ...trainerState } = state;
  return { model, optimizerState, optimizerSteps, state: trainerState, reference };
}

/** Restores optimizer moments saved by NodeRunStore.saveCheckpoint. */
export function restoreOptimizer(opt: AdamW, restored: Restored): void {
  opt.loadState(restored.optimizerState, restored.optimizerSteps);
}
