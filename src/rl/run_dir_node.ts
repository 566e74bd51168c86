// Node adapter: a training run directory.
//   config.json          the fully resolved TrainConfig
//   sft.jsonl            one line per supervised warm-up step
//   metrics.jsonl        one line per RL step
//   eval.jsonl           one line per evaluation
//   reference.safetensors  the frozen reference policy (KL penalty on)
//   checkpoints/step-NNNNNN/{model.safetensors, config.json, optimizer.safetensors, trainer_state.json}, plus (when
//       the store has an hfExport source) generation_config.json and the tokenizer files: a complete Hugging Face
//       directory; a LoRA run's checkpoint holds the PEFT adapter (adapter_config.json, adapter_model.safetensors)
//       and the adapter's optimizer state instead of the full weights
//   adapter/, merged/    a pretrained run's final PEFT adapter (LoRA) and its trained model as a complete Hugging
//       Face directory (adapters merged in)
//   checkpoints/latest.json  which checkpoint is the newest complete one
// Every file is written atomically; a checkpoint directory is renamed into place only when complete, and
// resuming cuts the JSONL files back to the checkpoint so no line is lost or duplicated.
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as T from '../tensor/index.js';
import { TransformerLM } from '../nn/transformer.js';
import { hasLora, loraAdapters } from '../nn/lora.js';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, loadLoraAdapter } from '../io/peft.js';
import { type ExportFiles, type HfExportSource, adapterDirectoryFiles, hfDirectoryMetadataFiles } from './hf_export.js';
import type { AdamW } from '../optim/adamw.js';
import { decodeSafetensors } from '../io/safetensors.js';
import { encodeTensors, loadModelWeights } from '../io/checkpoint.js';
import { type JsonlRecord, parseJsonl } from '../io/jsonl.js';
import { loadCheckpoint, saveCheckpoint, writeFileAtomic } from '../io/node_files.js';
import type { TrainConfig } from './config.js';
import type { RunStore, TrainerCheckpoint, TrainerState } from './run_store.js';

export const RUN_FILES = { config: 'config.json', metrics: 'metrics.jsonl', eval: 'eval.jsonl', sft: 'sft.jsonl', reference: 'reference.safetensors' } as const;

export class RunDirError extends Error {}

/** Reads a JSONL file of the run (missing → no records), ignoring a torn last line (a run killed mid-write). */
export function readJsonl(path: string): JsonlRecord[] {
  return existsSync(path) ? parseJsonl(readFileSync(path, 'utf8'), path).records : [];
}

function writeJsonl(path: string, records: readonly Record<string, unknown>[]): void {
  writeFileAtomic(path, records.map((record) => `${JSON.stringify(record)}\n`).join(''));
}

/** Writes a directory's files into `dir` atomically: a staging directory renamed into place when complete. */
export function writeDirectoryAtomic(dir: string, files: ExportFiles): void {
  const staging = `${dir}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  for (const [name, contents] of files) writeFileAtomic(join(staging, name), contents);
  rmSync(dir, { recursive: true, force: true });
  renameSync(staging, dir);
}

export class NodeRunStore implements RunStore {
  readonly dir: string;
  /** When set, every checkpoint is a complete Hugging Face directory (token ids, generation config, tokenizer). */
  hfExport: HfExportSource | null = null;

  constructor(dir: string, private readonly keep: number, readonly log: (line: string) => void = () => {},
    readonly progress?: RunStore['progress']) {
    this.dir = resolve(dir);
  }

  /** Creates a new run directory; refuses to mix with an existing run unless `force`. */
  static create(dir: string, config: TrainConfig, options: { force?: boolean; log?: (line: string) => void; progress?: RunStore['progress'] } = {}): NodeRunStore {
    const store = new NodeRunStore(dir, config.checkpoint.keep, options.log, options.progress);
    if (existsSync(store.dir) && readdirSync(store.dir).length > 0) {
      if (!options.force) throw new RunDirError(`run directory ${store.dir} already holds a run; continue it with --resume ${dir}, or pick another --out (or --force to overwrite)`);
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

  async saveCheckpoint(checkpoint: TrainerCheckpoint): Promise<void> {
    const { state, model, optimizer } = checkpoint;
    const name = `step-${String(state.rlStep).padStart(6, '0')}${state.finished ? '-final' : ''}`;
    const root = this.path('checkpoints');
    const staging = join(root, `.tmp-${name}-${process.pid}`);
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { recursive: true });
    const lora = hasLora(model);
    if (lora) {
      // The base stays as loaded from model.path: the adapter is all a resumed run needs.
      const files = await adapterDirectoryFiles(model, { baseModelNameOrPath: this.hfExport?.baseModelNameOrPath });
      for (const [file, contents] of files) writeFileAtomic(join(staging, file), contents);
    } else {
      await saveCheckpoint(staging, model, { step: String(state.rlStep) });
      if (this.hfExport) for (const [file, contents] of hfDirectoryMetadataFiles(model, this.hfExport)) writeFileAtomic(join(staging, file), contents);
    }
    writeFileAtomic(join(staging, 'optimizer.safetensors'), await encodeTensors(optimizer.state(), { format: 'pt', steps: String(optimizer.stepCount) }));
    const dropout = lora ? { loraDropoutCalls: loraAdapters(model).map((adapter) => adapter.dropoutCalls) } : {};
    writeFileAtomic(join(staging, 'trainer_state.json'), `${JSON.stringify({ ...state, optimizerSteps: optimizer.stepCount, ...dropout }, null, 1)}\n`);
    const target = join(root, name);
    rmSync(target, { recursive: true, force: true });
    renameSync(staging, target);
    writeFileAtomic(join(root, 'latest.json'), `${JSON.stringify({ checkpoint: name })}\n`);
    // Keep the newest `keep` checkpoints.
    const kept = readdirSync(root).filter((entry) => entry.startsWith('step-')).sort();
    for (const old of kept.slice(0, Math.max(0, kept.length - Math.max(1, this.keep)))) rmSync(join(root, old), { recursive: true, force: true });
  }
}

/** The newest complete checkpoint directory of a run, or null. */
export function latestCheckpoint(runDir: string): string | null {
  const latest = join(runDir, 'checkpoints', 'latest.json');
  if (!existsSync(latest)) return null;
  let name: string;
  try {
    name = JSON.parse(readFileSync(latest, 'utf8')).checkpoint;
  } catch (err) {
    throw new RunDirError(`${latest} is not valid JSON (${(err as Error).message})`);
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
  } catch (err) {
    throw new RunDirError(`${path} is not valid JSON (${(err as Error).message})`);
  }
}

export interface Restored {
  model: TransformerLM;
  optimizerState: Map<string, T.Tensor>;
  optimizerSteps: number;
  state: TrainerState;
  reference: TransformerLM | null;
}

export interface RestoreOptions {
  /** A pretrained LoRA run: its base model as loaded from model.path (no adapters); the checkpoint's adapter is
   *  applied to it. */
  base?: TransformerLM;
  /** Seed of the adapters' dropout masks (the run seed). */
  loraSeed?: number;
}

/** The model of a checkpoint: its full weights, or (a LoRA run, or a run's adapter/ directory) the base with the
 *  checkpoint's adapter applied. `state` (trainer_state.json) carries the dropout-mask counters a resumed run needs. */
export function checkpointModel(checkpointDir: string, options: RestoreOptions, state: { loraDropoutCalls?: number[] } = {}): TransformerLM {
  if (!existsSync(join(checkpointDir, ADAPTER_CONFIG_FILE))) return loadCheckpoint(checkpointDir);
  const base = options.base;
  if (!base) throw new RunDirError(`checkpoint ${checkpointDir} holds a LoRA adapter: loading it needs the base model (model.path)`);
  loadLoraAdapter(base, {
    [ADAPTER_CONFIG_FILE]: new Uint8Array(readFileSync(join(checkpointDir, ADAPTER_CONFIG_FILE))),
    [ADAPTER_WEIGHTS_FILE]: new Uint8Array(readFileSync(join(checkpointDir, ADAPTER_WEIGHTS_FILE))),
  }, { seed: options.loraSeed ?? 0 });
  const adapters = loraAdapters(base);
  state.loraDropoutCalls?.forEach((calls, i) => { if (adapters[i]) adapters[i].dropoutCalls = calls; });
  return base;
}

/** Loads the newest checkpoint of a run (null when the run has none yet) and cuts the logs back to it. */
export function restoreRun(runDir: string, withReference: boolean, options: RestoreOptions = {}): Restored | null {
  const dir = resolve(runDir);
  const checkpointDir = latestCheckpoint(dir);
  const sftPath = join(dir, RUN_FILES.sft);
  if (!checkpointDir) {
    // Nothing durable yet: the run starts over, so its partial logs go.
    for (const file of [RUN_FILES.sft, RUN_FILES.metrics, RUN_FILES.eval]) rmSync(join(dir, file), { force: true });
    return null;
  }
  let state: TrainerState & { optimizerSteps: number; loraDropoutCalls?: number[] };
  try {
    state = JSON.parse(readFileSync(join(checkpointDir, 'trainer_state.json'), 'utf8'));
  } catch (err) {
    throw new RunDirError(`checkpoint ${checkpointDir}: trainer_state.json is missing or invalid (${(err as Error).message})`);
  }
  const model = checkpointModel(checkpointDir, options, state);
  const optimizerState = new Map<string, T.Tensor>();
  try {
    const { tensors } = decodeSafetensors(new Uint8Array(readFileSync(join(checkpointDir, 'optimizer.safetensors'))));
    for (const [name, moment] of tensors) optimizerState.set(name, T.tensor(moment.data, moment.shape));
  } catch (err) {
    model.dispose();
    throw new RunDirError(`checkpoint ${checkpointDir}: optimizer.safetensors: ${(err as Error).message}`);
  }
  let reference: TransformerLM | null = null;
  if (withReference) {
    const referencePath = join(dir, RUN_FILES.reference);
    if (!existsSync(referencePath)) throw new RunDirError(`${dir}: the KL penalty is on but ${RUN_FILES.reference} is missing`);
    reference = new TransformerLM(model.config, 0);
    loadModelWeights(reference, new Uint8Array(readFileSync(referencePath)));
  }
  // Cut the logs back to the checkpoint: the steps after it will be recomputed identically.
  const keepMetric = (record: Record<string, unknown>) => Number(record.step) <= state.rlStep;
  const keepEval = (record: Record<string, unknown>) => Number(record.step) <= state.rlStep && (record.phase !== 'final' || state.finished);
  writeJsonl(join(dir, RUN_FILES.metrics), readJsonl(join(dir, RUN_FILES.metrics)).filter(keepMetric));
  writeJsonl(join(dir, RUN_FILES.eval), readJsonl(join(dir, RUN_FILES.eval)).filter(keepEval));
  if (!state.sftDone) writeFileSync(sftPath, '');
  const { optimizerSteps, loraDropoutCalls: _dropoutCalls, ...trainerState } = state;
  return { model, optimizerState, optimizerSteps, state: trainerState, reference };
}

/** Restores optimizer moments saved by NodeRunStore.saveCheckpoint. */
export function restoreOptimizer(optimizer: AdamW, restored: Restored): void {
  optimizer.loadState(restored.optimizerState, restored.optimizerSteps);
}
