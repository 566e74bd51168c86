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
//   checkpoints/step-NNNNNN/checksums.sha256  SHA-256 of each file of the checkpoint, verified on load
//   checkpoints/latest.json  which checkpoint is the newest complete one
// Every file is written atomically; a checkpoint directory is renamed into place only when complete, and
// resuming cuts the JSONL files back to the checkpoint so no line is lost or duplicated. Resuming checks the whole
// run before it changes any file, and falls back to the newest checkpoint that loads.
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as T from '../tensor/index.js';
import { TransformerLM } from '../nn/transformer.js';
import { hasLora, loraAdapters, removeLora, trainableParameters } from '../nn/lora.js';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, loadLoraAdapter } from '../io/peft.js';
import { type ExportFiles, type HfExportSource, adapterDirectoryFiles, hfDirectoryMetadataFiles } from './hf_export.js';
import type { AdamW } from '../optim/adamw.js';
import { type NamedArray, decodeSafetensors } from '../io/safetensors.js';
import { encodeTensors, fromHfConfig, loadModelWeights } from '../io/checkpoint.js';
import { type JsonlRecord, parseJsonl } from '../io/jsonl.js';
import { CHECKSUM_FILE, checkpointFiles, loadCheckpoint, sha256Hex, verifyChecksums, writeFileAtomic } from '../io/node_files.js';
import type { TrainConfig } from './config.js';
import { type RunStore, type TrainerCheckpoint, type TrainerState, TrainingStopped } from './run_store.js';

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
  /** The newest checkpoint this run has (saved by this process or resumed from), or null. */
  lastCheckpoint: string | null = null;

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
    // By file name: a later write of the same file (the Hugging Face config.json) replaces the earlier one.
    const checksums = new Map<string, string>();
    const write = (file: string, contents: Uint8Array | string) => {
      // The last line of defence of "never save diverged weights": every tensor file is checked on the host.
      const bad = file.endsWith('.safetensors') && typeof contents !== 'string' ? firstNonFiniteTensor(contents) : null;
      if (bad) {
        rmSync(staging, { recursive: true, force: true });
        throw new TrainingStopped(`stopping: refusing to save checkpoint ${name}: ${file}: ${bad}`);
      }
      writeFileAtomic(join(staging, file), contents);
      checksums.set(file, sha256Hex(contents));
    };
    const lora = hasLora(model);
    if (lora) {
      // The base stays as loaded from model.path: the adapter is all a resumed run needs.
      const files = await adapterDirectoryFiles(model, { baseModelNameOrPath: this.hfExport?.baseModelNameOrPath });
      for (const [file, contents] of files) write(file, contents);
    } else {
      for (const [file, contents] of await checkpointFiles(model, { step: String(state.rlStep) })) write(file, contents);
      if (this.hfExport) for (const [file, contents] of hfDirectoryMetadataFiles(model, this.hfExport)) write(file, contents);
    }
    write('optimizer.safetensors', await encodeTensors(optimizer.state(), { format: 'pt', steps: String(optimizer.stepCount) }));
    const dropout = lora ? { loraDropoutCalls: loraAdapters(model).map((adapter) => adapter.dropoutCalls) } : {};
    write('trainer_state.json', `${JSON.stringify({ ...state, optimizerSteps: optimizer.stepCount, ...dropout }, null, 1)}\n`);
    writeFileAtomic(join(staging, CHECKSUM_FILE), [...checksums].map(([file, hash]) => `${hash}  ${file}\n`).join(''));
    const target = join(root, name);
    rmSync(target, { recursive: true, force: true });
    renameSync(staging, target);
    writeFileAtomic(join(root, 'latest.json'), `${JSON.stringify({ checkpoint: name })}\n`);
    this.lastCheckpoint = name;
    // Keep the newest `keep` checkpoints up to this one (the trainer never saves non-finite weights, so these are
    // good ones). A directory beyond it (a damaged one a resume fell back from) never counts: it is replaced when the
    // run gets there, and cannot push a good checkpoint out.
    const upToThis = checkpointNames(root).filter((entry) => checkpointOrder(entry) <= checkpointOrder(name));
    for (const old of upToThis.slice(0, Math.max(0, upToThis.length - Math.max(1, this.keep)))) rmSync(join(root, old), { recursive: true, force: true });
  }
}

const CHECKPOINT_NAME = /^step-(\d{6,})(-final)?$/;

/** Sort key of a checkpoint name: its step, the -final one of a step after the other. */
function checkpointOrder(name: string): number {
  const [, step, final] = CHECKPOINT_NAME.exec(name)!;
  return Number(step) * 2 + (final ? 1 : 0);
}

/** The checkpoint directories under `root`, oldest first (by step number: step-1000000 comes after step-999999). */
function checkpointNames(root: string): string[] {
  return readdirSync(root).filter((entry) => CHECKPOINT_NAME.test(entry)).sort((a, b) => checkpointOrder(a) - checkpointOrder(b));
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** What a checkpoint's trainer_state.json holds. */
type SavedState = TrainerState & { optimizerSteps: number; loraDropoutCalls?: number[] };

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
const isIntArray = (value: unknown): boolean => Array.isArray(value) && value.every((v) => typeof v === 'number' && Number.isSafeInteger(v));

/** Problems of one carried group (dynamic sampling's surplus), '' when it has the shape the trainer reads. */
function carriedGroupProblem(group: unknown): string {
  if (typeof group !== 'object' || group === null || Array.isArray(group)) return 'is not an object';
  const g = group as Record<string, unknown>;
  if (!isCount(g.promptIndex)) return `promptIndex must be a non-negative integer, got ${JSON.stringify(g.promptIndex)}`;
  if (typeof g.problem !== 'object' || g.problem === null) return 'problem must be an object';
  if (!isIntArray(g.promptIds)) return 'promptIds must be an array of token ids';
  if (!Array.isArray(g.responses) || g.responses.length === 0) return 'responses must be a non-empty array';
  for (const [j, response] of g.responses.entries()) {
    const r = response as Record<string, unknown>;
    if (typeof r !== 'object' || r === null) return `responses[${j}] is not an object`;
    if (!isIntArray(r.ids)) return `responses[${j}].ids must be an array of token ids`;
    if (!Array.isArray(r.logprobs) || !r.logprobs.every((v) => typeof v === 'number')) return `responses[${j}].logprobs must be an array of numbers`;
    if (typeof r.reward !== 'number' || !Number.isFinite(r.reward)) return `responses[${j}].reward must be a finite number`;
    if (typeof r.correct !== 'boolean' || typeof r.truncated !== 'boolean') return `responses[${j}].correct and .truncated must be booleans`;
    if (typeof r.text !== 'string') return `responses[${j}].text must be a string`;
  }
  return '';
}

/** Validates trainer_state.json field by field (types and ranges; rlStep within rl.steps when the config is known),
 *  naming every field that is wrong. */
export function validateTrainerState(raw: unknown, config?: TrainConfig): SavedState {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new RunDirError('trainer_state.json must hold a JSON object');
  const s = raw as Record<string, unknown>;
  const problems: string[] = [];
  for (const key of ['sftDone', 'finished'] as const) if (typeof s[key] !== 'boolean') problems.push(`"${key}" must be true or false, got ${JSON.stringify(s[key])}`);
  for (const key of ['rlStep', 'nextPromptIndex', 'rolloutCalls', 'badInARow', 'samples', 'optimizerSteps'] as const) {
    if (!isCount(s[key])) problems.push(`"${key}" must be a non-negative integer, got ${JSON.stringify(s[key])}`);
  }
  if (typeof s.elapsed !== 'number' || !Number.isFinite(s.elapsed) || s.elapsed < 0) problems.push(`"elapsed" must be a non-negative number of seconds, got ${JSON.stringify(s.elapsed)}`);
  if (isCount(s.rlStep) && config && s.rlStep > config.rl.steps) problems.push(`"rlStep" is ${s.rlStep}, beyond the run's rl.steps ${config.rl.steps}`);
  if (isCount(s.rlStep) && s.rlStep > 0 && s.sftDone === false) problems.push(`"rlStep" is ${s.rlStep} but "sftDone" is false (RL starts after the warm-up)`);
  if (!Array.isArray(s.carried)) problems.push(`"carried" must be an array of rollout groups, got ${JSON.stringify(s.carried)}`);
  else s.carried.forEach((group, i) => { const problem = carriedGroupProblem(group); if (problem) problems.push(`"carried"[${i}] ${problem}`); });
  if (s.loraDropoutCalls !== undefined && !(Array.isArray(s.loraDropoutCalls) && s.loraDropoutCalls.every(isCount))) {
    problems.push('"loraDropoutCalls" must be an array of non-negative integers');
  }
  if (problems.length) throw new RunDirError(`trainer_state.json: ${problems.join('; ')}`);
  return s as unknown as SavedState;
}

/** The first tensor of a safetensors file that holds NaN or ±Inf, or null. */
function firstNonFiniteTensor(bytes: Uint8Array): string | null {
  for (const [name, tensor] of decodeSafetensors(bytes).tensors) {
    const data = tensor.data;
    if (data instanceof Int32Array) continue;
    for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return `tensor '${name}' holds ${data[i]} at index ${i}`;
  }
  return null;
}

/** A checkpoint whose files passed the checks that need no model: checksums, trainer_state.json, finite tensors. */
interface InspectedCheckpoint {
  name: string;
  dir: string;
  state: SavedState;
  checksum: 'verified' | 'no checksum';
}

/** Checks one checkpoint directory's files (throws naming the file and the problem). */
function inspectCheckpoint(runDir: string, name: string, config?: TrainConfig): InspectedCheckpoint {
  const dir = join(runDir, 'checkpoints', name);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new RunDirError('the directory does not exist');
  const checksum = verifyChecksums(dir);
  const statePath = join(dir, 'trainer_state.json');
  if (!existsSync(statePath)) throw new RunDirError('trainer_state.json is missing');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(statePath, 'utf8'));
  } catch (err) {
    throw new RunDirError(`trainer_state.json is not valid JSON (${message(err)})`);
  }
  const state = validateTrainerState(raw, config);
  const named = CHECKPOINT_NAME.exec(name);
  if (named && (Number(named[1]) !== state.rlStep || !!named[2] !== state.finished)) {
    throw new RunDirError(`trainer_state.json says rlStep ${state.rlStep}${state.finished ? ', finished' : ''}, which does not match the directory name ${name}`);
  }
  const weightFiles = [existsSync(join(dir, ADAPTER_CONFIG_FILE)) ? ADAPTER_WEIGHTS_FILE : 'model.safetensors', 'optimizer.safetensors'];
  for (const file of weightFiles) {
    const path = join(dir, file);
    if (!existsSync(path)) throw new RunDirError(`${file} is missing`);
    let bad: string | null;
    try {
      bad = firstNonFiniteTensor(new Uint8Array(readFileSync(path)));
    } catch (err) {
      throw new RunDirError(`${file}: ${message(err)}`);
    }
    if (bad) throw new RunDirError(`${file}: ${bad} (a diverged step's weights; never resume from them)`);
  }
  return { name, dir, state, checksum };
}

/** The checkpoint names to try, best first: the one checkpoints/latest.json names, then every checkpoints/step-*
 *  directory newest first (a missing or damaged latest.json is reported through `log`, never fatal). */
function checkpointCandidates(runDir: string, log: (line: string) => void): string[] {
  const root = join(runDir, 'checkpoints');
  if (!existsSync(root)) return [];
  const scanned = checkpointNames(root).reverse();
  const latest = join(root, 'latest.json');
  let named: string | null = null;
  if (existsSync(latest)) {
    try {
      const pointer = JSON.parse(readFileSync(latest, 'utf8')) as unknown;
      const checkpoint = (pointer as { checkpoint?: unknown } | null)?.checkpoint;
      if (typeof pointer !== 'object' || pointer === null || Array.isArray(pointer)) throw new Error('it must hold an object like {"checkpoint": "step-000004"}');
      if (typeof checkpoint !== 'string' || !CHECKPOINT_NAME.test(checkpoint)) {
        throw new Error(`field "checkpoint" must name a checkpoint directory like "step-000004", got ${JSON.stringify(checkpoint)}`);
      }
      if (!scanned.includes(checkpoint)) throw new Error(`it names ${checkpoint}, which does not exist`);
      named = checkpoint;
    } catch (err) {
      log(`${latest}: ${message(err)}; looking for checkpoints in ${root}/step-*`);
    }
  } else if (scanned.length) {
    log(`${latest} is missing; looking for checkpoints in ${root}/step-*`);
  }
  return named ? [named, ...scanned.filter((name) => name !== named)] : scanned;
}

/** Tries the candidates best first with `load`; says which were skipped and why. Null when the run has no
 *  checkpoint at all; throws listing every checkpoint and its problem when none loads. */
function firstLoadable<T>(runDir: string, log: (line: string) => void, load: (name: string) => T): { name: string; value: T } | null {
  const candidates = checkpointCandidates(runDir, log);
  if (!candidates.length) return null;
  const problems: string[] = [];
  for (const name of candidates) {
    try {
      const value = load(name);
      for (const problem of problems) log(`checkpoint ${problem}`);
      if (problems.length) log(`using checkpoint ${name}, the newest one that loads`);
      return { name, value };
    } catch (err) {
      problems.push(`${name}: ${message(err)}`);
    }
  }
  throw new RunDirError(`${runDir}: no checkpoint loads (nothing was changed):\n  - ${problems.join('\n  - ')}`);
}

/** The newest checkpoint directory of a run whose files check out (checksums, trainer_state.json, finite weights
 *  and moments), or null when the run has none; a damaged newer one is skipped and reported through `log`. */
export function latestCheckpoint(runDir: string, log: (line: string) => void = () => {}): string | null {
  const dir = resolve(runDir);
  return firstLoadable(dir, log, (name) => inspectCheckpoint(dir, name))?.value.dir ?? null;
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
  /** The checkpoint directory's name (step-NNNNNN). */
  checkpoint: string;
}

export interface RestoreOptions {
  /** A pretrained LoRA run: its base model as loaded from model.path (no adapters); the checkpoint's adapter is
   *  applied to it. */
  base?: TransformerLM;
  /** Seed of the adapters' dropout masks (the run seed). */
  loraSeed?: number;
  /** The run's config: checkpoints are checked against it (architecture, rlStep within rl.steps, logs). */
  config?: TrainConfig;
  /** Where the fallbacks and clean-ups are said. */
  log?: (line: string) => void;
}

/** The model of a checkpoint: its full weights, or (a LoRA run, or a run's adapter/ directory) the base with the
 *  checkpoint's adapter applied. `state` (trainer_state.json) carries the dropout-mask counters a resumed run needs. */
export function checkpointModel(checkpointDir: string, options: RestoreOptions, state: { loraDropoutCalls?: number[] } = {}): TransformerLM {
  if (!existsSync(join(checkpointDir, ADAPTER_CONFIG_FILE))) return loadCheckpoint(checkpointDir);
  const base = options.base;
  if (!base) throw new RunDirError(`checkpoint ${checkpointDir} holds a LoRA adapter: loading it needs the base model (model.path)`);
  try {
    verifyChecksums(checkpointDir, [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE]);
  } catch (err) {
    throw new RunDirError(`checkpoint ${checkpointDir}: ${message(err)}`);
  }
  loadLoraAdapter(base, {
    [ADAPTER_CONFIG_FILE]: new Uint8Array(readFileSync(join(checkpointDir, ADAPTER_CONFIG_FILE))),
    [ADAPTER_WEIGHTS_FILE]: new Uint8Array(readFileSync(join(checkpointDir, ADAPTER_WEIGHTS_FILE))),
  }, { seed: options.loraSeed ?? 0 });
  const adapters = loraAdapters(base);
  state.loraDropoutCalls?.forEach((calls, i) => { if (adapters[i]) adapters[i].dropoutCalls = calls; });
  return base;
}

/** Model keys that define the architecture: a run's config.json must still say what its checkpoints hold. */
const ARCHITECTURE_KEYS = ['vocabSize', 'dModel', 'nLayers', 'nHeads', 'nKvHeads', 'ffnDim', 'maxSeqLen', 'ropeTheta', 'tieEmbeddings', 'normEps', 'headDim', 'attentionBias', 'attentionOutBias'] as const;

/** Refuses a checkpoint whose model differs from the run's config.json (edited after the run started). */
function checkArchitecture(checkpointDir: string, config: TrainConfig): void {
  const hfConfigPath = join(checkpointDir, 'config.json');
  if (typeof config.model.path === 'string' || !existsSync(hfConfigPath)) return;
  let saved: Record<string, unknown>;
  try {
    saved = fromHfConfig(JSON.parse(readFileSync(hfConfigPath, 'utf8'))) as unknown as Record<string, unknown>;
  } catch (err) {
    throw new RunDirError(`config.json: ${message(err)}`);
  }
  const run = config.model as unknown as Record<string, unknown>;
  const differ = ARCHITECTURE_KEYS.filter((key) => JSON.stringify(run[key] ?? null) !== JSON.stringify(saved[key] ?? null));
  if (differ.length) {
    throw new RunDirError(`the run's config.json says ${differ.map((key) => `model.${key} ${JSON.stringify(run[key])}`).join(', ')}, but the checkpoint holds ` +
      `${differ.map((key) => `${key} ${JSON.stringify(saved[key])}`).join(', ')} (was config.json edited after the run started? resume needs the config it was made with)`);
  }
}

/** Optimizer moments that fit the model's trainable parameters (names and shapes) and are finite. */
function loadOptimizerMoments(checkpointDir: string, model: TransformerLM): Map<string, T.Tensor> {
  let tensors: Map<string, NamedArray>;
  try {
    ({ tensors } = decodeSafetensors(new Uint8Array(readFileSync(join(checkpointDir, 'optimizer.safetensors')))));
  } catch (err) {
    throw new RunDirError(`optimizer.safetensors: ${message(err)}`);
  }
  const params = hasLora(model) ? trainableParameters(model) : model.params;
  const problems: string[] = [];
  for (const [name, moment] of tensors) {
    const param = params.get(name.replace(/\.exp_avg(_sq)?$/, ''));
    if (!/\.exp_avg(_sq)?$/.test(name) || !param) problems.push(`unexpected tensor '${name}' (not a moment of a trainable parameter)`);
    else if (moment.shape.length !== param.shape.length || moment.shape.some((size, i) => size !== param.shape[i])) {
      problems.push(`tensor '${name}' has shape [${moment.shape.join(', ')}], the parameter has [${param.shape.join(', ')}]`);
    }
  }
  if (problems.length) throw new RunDirError(`optimizer.safetensors does not fit the model: ${problems.join('; ')}`);
  const moments = new Map<string, T.Tensor>();
  for (const [name, moment] of tensors) moments.set(name, T.tensor(moment.data, moment.shape));
  return moments;
}

/** Refuses to resume when a log the checkpoint says has lines is gone; warns when it has fewer lines than it should. */
function checkLogs(runDir: string, state: SavedState, config: TrainConfig | undefined, log: (line: string) => void): void {
  const expected: [string, number][] = [[RUN_FILES.metrics, state.rlStep]];
  if (state.sftDone) expected.push([RUN_FILES.sft, config?.sft.steps ?? 0], [RUN_FILES.eval, 1]);
  for (const [file, lines] of expected) {
    if (lines === 0) continue;
    const path = join(runDir, file);
    if (!existsSync(path)) {
      throw new RunDirError(`${path} is missing, but the checkpoint says the run has logged to it (${file === RUN_FILES.metrics ? `${lines} RL steps` : file === RUN_FILES.sft ? `${lines} SFT steps` : 'the SFT evaluation'}); ` +
        `restore the file, or create it empty to continue without those lines (nothing was changed)`);
    }
    if (file === RUN_FILES.metrics) {
      const steps = new Set(readJsonl(path).map((record) => Number(record.step)));
      const missing = Array.from({ length: lines }, (_, i) => i + 1).filter((step) => !steps.has(step));
      if (missing.length) log(`warning: ${path} lacks the lines of RL step${missing.length > 1 ? 's' : ''} ${missing.length > 8 ? `${missing.slice(0, 8).join(', ')}, …` : missing.join(', ')} (the checkpoint is at step ${lines}); continuing without them`);
    }
  }
}

const isProcessAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Removes what a killed run left half-written (checkpoint staging directories, temp files of atomic writes),
 *  unless the process that wrote it still runs. Saying what went and how big it was. */
function removeLeftovers(runDir: string, log: (line: string) => void): void {
  const removed: string[] = [];
  for (const folder of [runDir, join(runDir, 'checkpoints')]) {
    if (!existsSync(folder)) continue;
    for (const entry of readdirSync(folder)) {
      const leftover = /^\.tmp-step-\d+(?:-final)?-(\d+)$/.exec(entry) ?? /\.tmp-(\d+)(?:-\d+)?$/.exec(entry);
      if (!leftover) continue;
      const pid = Number(leftover[1]);
      const path = join(folder, entry);
      if (pid !== process.pid && isProcessAlive(pid)) {
        log(`left ${path} in place: process ${pid}, which wrote it, is still running (is another dapo on this run?)`);
        continue;
      }
      const bytes = sizeOf(path);
      rmSync(path, { recursive: true, force: true });
      removed.push(`${entry} (${(bytes / 1e6).toFixed(1)} MB)`);
    }
  }
  if (removed.length) log(`removed what an interrupted run left half-written: ${removed.join(', ')}`);
}

function sizeOf(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.size;
  return readdirSync(path).reduce((total, entry) => total + sizeOf(join(path, entry)), 0);
}

/** A checkpoint loaded for resuming: the model, its optimizer moments and trainer state. */
interface LoadedCheckpoint {
  inspected: InspectedCheckpoint;
  model: TransformerLM;
  optimizerState: Map<string, T.Tensor>;
}

function loadForResume(runDir: string, name: string, options: RestoreOptions): LoadedCheckpoint {
  const inspected = inspectCheckpoint(runDir, name, options.config);
  if (options.config) checkArchitecture(inspected.dir, options.config);
  const model = checkpointModel(inspected.dir, options, inspected.state);
  try {
    return { inspected, model, optimizerState: loadOptimizerMoments(inspected.dir, model) };
  } catch (err) {
    // A LoRA checkpoint's model is the caller's base with this adapter applied: take the adapter off again.
    if (model === options.base) removeLora(model);
    else model.dispose();
    throw err;
  }
}

/**
 * Loads the newest checkpoint of a run that checks out and cuts the logs back to it; null when the run has no
 * checkpoint at all (its partial logs go: it starts over). Everything is checked before any file changes: the
 * checkpoint pointer, each checkpoint's checksums, trainer_state.json, finite weights and moments that fit the
 * model, the architecture against the run's config, the logs the state says exist, the reference policy. A damaged
 * checkpoint is skipped for the next newest one (and said so through options.log); when none loads, the error lists
 * each one and its problem.
 */
export function restoreRun(runDir: string, withReference: boolean, options: RestoreOptions = {}): Restored | null {
  const dir = resolve(runDir);
  const log = options.log ?? (() => {});
  const found = firstLoadable(dir, log, (name) => loadForResume(dir, name, options));
  if (!found) {
    // Nothing durable yet: the run starts over, so its partial logs go.
    removeLeftovers(dir, log);
    for (const file of [RUN_FILES.sft, RUN_FILES.metrics, RUN_FILES.eval]) rmSync(join(dir, file), { force: true });
    return null;
  }
  const { inspected, model, optimizerState } = found.value;
  const { state } = inspected;
  let reference: TransformerLM | null = null;
  try {
    if (inspected.checksum === 'no checksum') log(`checkpoint ${inspected.name}: no checksum (written by an older version); its tensors were checked for NaN/Inf only`);
    checkLogs(dir, state, options.config, log);
    if (withReference) {
      const referencePath = join(dir, RUN_FILES.reference);
      if (!existsSync(referencePath)) throw new RunDirError(`${dir}: the KL penalty is on but ${RUN_FILES.reference} is missing`);
      reference = new TransformerLM(model.config, 0);
      try {
        loadModelWeights(reference, new Uint8Array(readFileSync(referencePath)));
      } catch (err) {
        throw new RunDirError(`${referencePath}: ${message(err)}`);
      }
    }
  } catch (err) {
    reference?.dispose();
    for (const moment of optimizerState.values()) moment.dispose();
    if (model === options.base) removeLora(model);
    else model.dispose();
    throw err;
  }
  // Everything checked out: only now may files change.
  removeLeftovers(dir, log);
  // Cut the logs back to the checkpoint: the steps after it will be recomputed identically.
  const sftPath = join(dir, RUN_FILES.sft);
  const keepMetric = (record: Record<string, unknown>) => Number(record.step) <= state.rlStep;
  const keepEval = (record: Record<string, unknown>) => Number(record.step) <= state.rlStep && (record.phase !== 'final' || state.finished);
  writeJsonl(join(dir, RUN_FILES.metrics), readJsonl(join(dir, RUN_FILES.metrics)).filter(keepMetric));
  writeJsonl(join(dir, RUN_FILES.eval), readJsonl(join(dir, RUN_FILES.eval)).filter(keepEval));
  if (!state.sftDone) writeFileSync(sftPath, '');
  const { optimizerSteps, loraDropoutCalls: _dropoutCalls, ...trainerState } = state;
  return { model, optimizerState, optimizerSteps, state: trainerState, reference, checkpoint: inspected.name };
}
/** Restores optimizer moments saved by NodeRunStore.saveCheckpoint. */
export function restoreOptimizer(optimizer: AdamW, restored: Restored): void {
  optimizer.loadState(restored.optimizerState, restored.optimizerSteps);
}
