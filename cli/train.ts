// `dapo train`: resolve the config (defaults ← preset ← --config file ← flags), pick the backend, then run
// SFT warm-up → DAPO/GRPO → evaluation → plots into a run directory; `--resume` continues a run.
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { initEngine } from '../src/node.js';
import { type ConfigFlags, type TrainConfig, configLayersFrom, resolveTrainConfig } from '../src/rl/config.js';
import { TrainingStopped } from '../src/rl/run_store.js';
import { Trainer, type TrainerPhase, buildTaskAndModel, freshParts, optimizerForResume } from '../src/rl/trainer.js';
import { type PretrainedSource, loadPretrainedModel, pretrainedSource, taskFromFiles } from '../src/rl/pretrained_run_node.js';
import { type EvalResult, formatAccuracy, formatAccuracyGain } from '../src/rl/evaluate.js';
import { NodeRunStore, RUN_FILES, latestCheckpoint, readJsonl, readRunConfig, restoreOptimizer, restoreRun, writeDirectoryAtomic } from '../src/rl/run_dir_node.js';
import { type HfExportSource, adapterDirectoryFiles, declaredWeightsDtype, hfDirectoryFiles } from '../src/rl/hf_export.js';
import { HfTokenizer } from '../src/data/tokenizer_hf.js';
import { CharTokenizer } from '../src/data/tokenizer.js';
import {
  applyLora, formatTrainableParameters, hasLora, mergeLora, removeLora, resolveFrozenDType, storeFrozenWeights,
} from '../src/nn/lora.js';
import { checkpointWeightDType } from '../src/io/pretrained.js';
import { Progress } from './progress.js';
import { loadModelWeights } from '../src/io/checkpoint.js';
import type { TransformerLM } from '../src/nn/transformer.js';
import { plotRunDir } from './plot.js';
import type { Task } from '../src/data/task.js';
import { makeTask } from '../src/data/tasks.js';
import { isDatasetTask } from '../src/data/math_task.js';
import { KernelError } from '../src/backend/types.js';
import { Interrupted, SIGNAL_EXIT_CODE, withFileContext, withFileContextSync } from './errors.js';
import { createRunDirectory, removeRunStub } from './run_place.js';
import { explicitBatchKeys } from '../src/rl/memory_plan.js';
import { MemoryPlanError, planRun } from './train_plan.js';

/** The command's options: the config flags (see configLayersFrom), with --config as a file path. */
export interface TrainFlags extends Omit<ConfigFlags, 'configFile'> {
  config?: string;
  out?: string;
  resume?: string;
  force?: boolean;
  plots: boolean;
  json?: boolean;
  quiet?: boolean;
  /** Print the memory plan (and the batch sizes it picks) and exit: no run directory, no training. */
  dryRun?: boolean;
  /** Start even when the memory plan says the run does not fit. */
  skipMemoryCheck?: boolean;
}

function readConfigFile(path: string): unknown {
  if (!existsSync(path)) throw new Error(`--config: ${path} does not exist`);
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`--config: ${path} is not valid JSON (${(err as Error).message})`);
  }
}

function layersFromFlags(flags: TrainFlags): unknown[] {
  const configFile = flags.config ? readConfigFile(flags.config) : undefined;
  return configLayersFrom({ ...flags, configFile });
}

/** The resolved config of the flags (what --print-config prints), its built-in task checked too: an unknown task
 *  or a bad task knob fails here, before any GPU probe or run directory. */
export function configFromFlags(flags: TrainFlags): TrainConfig {
  const config = resolveTrainConfig(...layersFromFlags(flags));
  // A dataset task is checked when its files are read (taskFromFiles); a built-in task builds in microseconds.
  if (!isDatasetTask(config.task.name)) makeTask(config.task);
  return config;
}

/** The weights file of config.init (checked before the run directory is made). */
function initWeightsFile(dir: string): string {
  const path = join(dir, 'model.safetensors');
  if (!existsSync(path)) throw new Error(`init: ${path} does not exist (init must be a checkpoint directory)`);
  return path;
}

/** Loads a checkpoint directory's weights into a fresh model (config.init), naming what does not fit. */
function initWeights(model: TransformerLM, dir: string): void {
  const path = initWeightsFile(dir);
  try {
    loadModelWeights(model, new Uint8Array(readFileSync(path)));
  } catch (err) {
    model.dispose();
    throw new Error(`init: ${dir}: ${(err as Error).message}`);
  }
}

/** What makes checkpoints complete Hugging Face directories; null for a tokenizer that cannot be exported. */
function exportSource(task: Task, pretrained: PretrainedSource | null): HfExportSource | null {
  if (!(task.tokenizer instanceof CharTokenizer || task.tokenizer instanceof HfTokenizer)) return null;
  const generation = pretrained?.tokenizer.files.generationConfig;
  const baseConfigPath = pretrained ? join(pretrained.dir, 'config.json') : null;
  return {
    tokenizer: task.tokenizer,
    baseGenerationConfig: typeof generation === 'string' ? JSON.parse(generation) : generation ?? null,
    baseModelNameOrPath: pretrained?.name ?? null,
    weightsDtype: baseConfigPath ? declaredWeightsDtype(JSON.parse(readFileSync(baseConfigPath, 'utf8'))) : 'float32',
  };
}

/** A pretrained run's final outputs: adapter/ (PEFT, LoRA runs) and merged/ (the trained model, adapters folded in,
 *  as a complete Hugging Face directory). Merging ends the model's LoRA: call it last. */
async function writeFinalModel(runDir: string, model: TransformerLM, source: HfExportSource, log: (line: string) => void): Promise<void> {
  if (hasLora(model)) {
    writeDirectoryAtomic(join(runDir, 'adapter'), await adapterDirectoryFiles(model, source));
    mergeLora(model);
    log(`PEFT adapter: ${join(runDir, 'adapter')}`);
  }
  writeDirectoryAtomic(join(runDir, 'merged'), await hfDirectoryFiles(model, source));
  log(`merged Hugging Face model: ${join(runDir, 'merged')}`);
}

function defaultOutDir(config: TrainConfig): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 13);
  return join('runs', `${config.rl.algo}-${config.task.name}-s${config.seed}-${stamp}`);
}

export interface TrainOutcome {
  runDir: string;
  backend: string;
  sft: EvalResult | null;
  final: EvalResult | null;
  plots: string[];
  seconds: number;
}

/** What each phase of the trainer is called in an error. */
const PHASE_WORDS: Record<TrainerPhase, string> = {
  setup: 'setup (building the model)', sft: 'the SFT warm-up', generation: 'generation (rollouts)', update: 'the policy update',
  eval: 'evaluation', checkpoint: 'a checkpoint save',
};

/** An allocation failure said as one line with the phase that ran out; other errors unchanged. */
function withPhase(err: unknown, phase: TrainerPhase, backend: string): unknown {
  if (!(err instanceof KernelError) || err.kernel !== 'alloc') return err;
  const detail = err.message.replace(/^kernel 'alloc'(?: \((tensor [^)]*)\))?: (?:out of memory: )?/, (_, tensor?: string) => (tensor ? `${tensor}: ` : ''));
  return new Error(`out of memory during ${PHASE_WORDS[phase]} on the ${backend} backend: ${detail}`);
}

/** SIGINT / SIGTERM: the first asks the run to stop at the next step boundary (a checkpoint is never cut); it also
 *  gives the signals back to their default action, so a second one ends the process at once — even while a WASM
 *  kernel keeps JavaScript busy and no handler could run. */
export function listenForInterrupts(log: (line: string) => void) {
  const controller = new AbortController();
  let received: keyof typeof SIGNAL_EXIT_CODE | null = null;
  const onInt = () => onSignal('SIGINT');
  const onTerm = () => onSignal('SIGTERM');
  const dispose = () => {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  };
  function onSignal(name: keyof typeof SIGNAL_EXIT_CODE) {
    received = name;
    dispose();
    log(`${name}: stopping after the current step (Ctrl-C again quits at once)`);
    controller.abort(new Error(name));
  }
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return {
    signal: controller.signal,
    get received() { return received; },
    dispose,
  };
}

/** A path as a shell takes it back. */
function shellWord(path: string): string {
  return /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replace(/'/g, `'\\''`)}'`;
}

/** "interrupted — resume with dapo train --resume DIR (last checkpoint: step N)". */
function interruptedMessage(runDir: string): string {
  let last: string;
  try {
    const checkpoint = latestCheckpoint(runDir);
    const match = checkpoint ? /^step-(\d+)(-final)?$/.exec(basename(checkpoint)) : null;
    last = !checkpoint ? 'no checkpoint yet: the resumed run starts over'
      : match ? `last checkpoint: step ${Number(match[1])}${match[2] ? ', final' : ''}` : `last checkpoint: ${basename(checkpoint)}`;
  } catch (err) {
    last = `the last checkpoint could not be read: ${(err as Error).message}`;
  }
  return `interrupted — resume with dapo train --resume ${shellWord(runDir)} (${last})`;
}

/** The store's writes, with file errors that name the file and what was being written. */
export function namingFileErrors(store: NodeRunStore): void {
  const append = (method: 'appendMetrics' | 'appendEval' | 'appendSft', file: string) => {
    const write = store[method].bind(store);
    store[method] = (record) => withFileContextSync('append to', store.path(file), () => write(record));
  };
  append('appendMetrics', RUN_FILES.metrics);
  append('appendEval', RUN_FILES.eval);
  append('appendSft', RUN_FILES.sft);
  const saveCheckpoint = store.saveCheckpoint.bind(store);
  store.saveCheckpoint = (checkpoint) => {
    const name = `step-${String(checkpoint.state.rlStep).padStart(6, '0')}${checkpoint.state.finished ? '-final' : ''}`;
    return withFileContext('write checkpoint', join(store.path('checkpoints'), name), () => saveCheckpoint(checkpoint));
  };
  const saveReference = store.saveReference.bind(store);
  store.saveReference = (model) => withFileContext('write the reference policy', store.path(RUN_FILES.reference), () => saveReference(model));
}

export async function runTrain(flags: TrainFlags, out: (line: string) => void = (line) => console.log(line)): Promise<TrainOutcome> {
  const startedAt = performance.now();
  const progress = new Progress(process.stderr, !!flags.quiet);
  const log = (line: string) => progress.log(line);
  const interrupts = listenForInterrupts(log);
  try {
    return await trainWithInterrupts(flags, out, progress, interrupts, startedAt);
  } finally {
    interrupts.dispose();
  }
}

async function trainWithInterrupts(flags: TrainFlags, out: (line: string) => void, progress: Progress,
  interrupts: ReturnType<typeof listenForInterrupts>, startedAt: number): Promise<TrainOutcome> {
  const log = (line: string) => progress.log(line);
  const interrupted = () => new Interrupted(interruptedMessage(runDir), SIGNAL_EXIT_CODE[interrupts.received!]);
  let config: TrainConfig;
  let runDir: string;
  if (flags.resume) {
    runDir = flags.resume;
    if (flags.config || flags.set?.length || flags.algo || flags.quick || flags.steps !== undefined || flags.task || flags.seed !== undefined || flags.init || flags.reward || flags.model || flags.lora) {
      throw new Error('--resume continues a run with its own config.json; drop --config/--set/--algo/--quick/--steps/--task/--seed/--init/--reward/--model/--lora');
    }
    config = resolveTrainConfig(readRunConfig(runDir));
    if (flags.backend) config = { ...config, backend: flags.backend as TrainConfig['backend'] };
  } else {
    config = configFromFlags(flags);
    runDir = flags.out ?? defaultOutDir(config);
  }
  // A new run's directory first, one level at a time (an unwritable --out fails now, with its cause); if anything
  // below fails before training starts, the stub goes again, so the same --out works once the problem is fixed.
  let createdDir: string | null = null;
  let store: NodeRunStore | null = null;
  const setupFailed = (err: unknown): never => {
    if (!flags.resume && (store || createdDir)) removeRunStub(runDir, createdDir);
    if (interrupts.received) {
      throw flags.resume ? interrupted() : new Interrupted('interrupted before training started; nothing was kept', SIGNAL_EXIT_CODE[interrupts.received]);
    }
    throw withPhase(err, 'setup', selection?.backend.name ?? config.backend);
  };
  let trainer: Trainer;
  let selection: Awaited<ReturnType<typeof initEngine>> | null = null;
  let pretrained: PretrainedSource | null;
  try {
    // Files first (init weights, model directory, tokenizer, datasets, reward module), so a bad path fails before a
    // run directory exists or the engine starts.
    if (config.init) initWeightsFile(config.init);
    pretrained = await pretrainedSource(config, log);
    const taskOverride = await taskFromFiles(config, pretrained);
    interrupts.signal.throwIfAborted();
    // An unwritable --out fails here, before the GPU probe (a dry run creates nothing).
    if (!flags.resume && !flags.dryRun) createdDir = createRunDirectory(runDir);
    selection = await initEngine({ backend: config.backend });
    log(`backend: ${selection.backend.name} (${selection.reason})`);
    if (!flags.resume) {
      // Batch sizes left unset become the largest that fit; a plan that does not fit stops here, before any folder exists.
      const planned = planRun(config, explicitBatchKeys(layersFromFlags(flags)), selection.backend, pretrained?.dir ?? null, taskOverride);
      if (flags.dryRun) {
        for (const line of planned.lines) out(line);
        if (planned.plan.problems.length) throw new MemoryPlanError(planned.lines);
        selection.backend.destroy();
        return { runDir: '', backend: selection.backend.name, sft: null, final: null, plots: [], seconds: (performance.now() - startedAt) / 1000 };
      }
      if (planned.plan.problems.length) {
        if (!flags.skipMemoryCheck) throw new MemoryPlanError(planned.lines);
        log(`memory plan: the run may not fit (${planned.plan.problems.join('; ')}); starting anyway (--skip-memory-check)`);
      }
      config = planned.config;
      const planConfig = config;
      store = await withFileContext('create run directory', runDir, () => NodeRunStore.create(runDir, planConfig, { force: flags.force, log, progress: (...args) => progress.update(...args) }));
    } else if (flags.dryRun) {
      throw new Error('--dry-run plans a fresh run; drop --resume');
    }
    store ??= new NodeRunStore(runDir, config.checkpoint.keep, log, (...args) => progress.update(...args));
    let task: Task;
    let freshModel: TransformerLM | null;
    let restored: ReturnType<typeof restoreRun> = null;
    if (pretrained) {
      task = taskOverride!;
      const lora = config.lora.r > 0;
      const full = flags.resume && !lora ? restoreRun(runDir, config.rl.klBeta > 0, { config, log }) : null;
      // A fresh LoRA run loads its frozen base straight into lora.frozenDtype (no float32 copy of the whole model).
      const base = full ? null : await loadPretrainedModel(config, pretrained, task, lora && !flags.resume ? { frozenDtype: config.lora.frozenDtype } : {});
      restored = full ?? (flags.resume && base ? restoreRun(runDir, config.rl.klBeta > 0, { base, loraSeed: config.seed, config, log }) : null);
      freshModel = restored ? null : base;
      if (freshModel && lora) {
        const { r, alpha, dropout, targetModules } = config.lora;
        applyLora(freshModel, { r, alpha, dropout, targetModules, seed: config.seed });
      }
      log(`model ${pretrained.name}: ${formatTrainableParameters(restored?.model ?? freshModel!)}`);
      // Under LoRA the base is frozen: keep its weights 16-bit (lora.frozenDtype; auto = the checkpoint's dtype).
      const frozenDtype = resolveFrozenDType(config.lora.frozenDtype, { lora, checkpointDType: base ? checkpointWeightDType(base) : null });
      if (frozenDtype !== 'float32') {
        const stored = await storeFrozenWeights(restored?.model ?? freshModel!, frozenDtype);
        const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
        // A fresh run's base was loaded straight into 16 bits: count what the loader stored.
        const loaded = (restored?.model ?? freshModel!).parameters().filter((p) => p.dtype === frozenDtype);
        const weights = stored.weights || loaded.length;
        const before = stored.weights ? stored.bytesBefore : loaded.reduce((sum, p) => sum + p.size * 4, 0);
        const after = stored.weights ? stored.bytesAfter : loaded.reduce((sum, p) => sum + Math.ceil(p.size / 2) * 4, 0);
        log(`frozen base weights stored as ${frozenDtype}: ${weights} tensors, ${mb(before)} → ${mb(after)}${stored.weights ? '' : ' (loaded straight into 16 bits)'}`);
      }
    } else {
      restored = flags.resume ? restoreRun(runDir, config.rl.klBeta > 0, { config, log }) : null;
      ({ task, model: freshModel } = buildTaskAndModel(config, taskOverride));
    }
    store.hfExport = exportSource(task, pretrained);
    namingFileErrors(store);
    if (restored) {
      store.lastCheckpoint = restored.checkpoint;
      freshModel?.dispose();
      const optimizer = optimizerForResume(config, restored.model, restored.state);
      restoreOptimizer(optimizer, restored);
      trainer = new Trainer(config, task, { model: restored.model, optimizer, state: restored.state, reference: restored.reference }, store);
      log(`resuming ${runDir} after RL step ${restored.state.rlStep}${restored.state.sftDone ? '' : ' (SFT not finished)'}`);
    } else {
      if (flags.resume) log(`resuming ${runDir}: no checkpoint yet, starting over`);
      if (config.init) initWeights(freshModel!, config.init);
      trainer = new Trainer(config, task, freshParts(config, freshModel!), store);
      log(`run directory: ${store.dir}`);
      log(`task ${config.task.name}, algo ${config.rl.algo}, ${config.sft.steps} SFT steps, ${config.rl.steps} RL steps of ${config.rl.promptsPerStep} prompts × ${config.rl.groupSize}`);
    }
    interrupts.signal.throwIfAborted();
  } catch (err) {
    selection?.backend.destroy();
    return setupFailed(err);
  }
  const backendName = selection.backend.name;
  let result: { sft: EvalResult | null; final: EvalResult | null };
  try {
    result = await trainer.run({ signal: interrupts.signal });
    if (pretrained) await withFileContext('write the final model into', store.dir, () => writeFinalModel(store!.dir, trainer.model, store!.hfExport!, log));
  } catch (err) {
    progress.finishLine();
    if (interrupts.received && interrupts.signal.aborted && err === interrupts.signal.reason) throw interrupted();
    if (err instanceof TrainingStopped) {
      const kept = store.lastCheckpoint ? `its last checkpoint, ${store.lastCheckpoint}, is kept` : 'no checkpoint had been saved yet';
      throw new Error(`${err.message} (run directory ${store.dir}; ${kept})`);
    }
    throw withPhase(err, trainer.phase, backendName);
  } finally {
    // The adapters are not parameters of the model: free them before it.
    if (hasLora(trainer.model)) removeLora(trainer.model);
    trainer.dispose();
    selection.backend.destroy();
  }
  progress.finishLine();
  const plots = flags.plots ? await withFileContext('write plots into', join(store.dir, 'plots'), () => plotRunDir(store!.dir, () => {})) : [];
  const seconds = (performance.now() - startedAt) / 1000;
  // Read the evaluations back from the run: a resumed run did its SFT evaluation in an earlier process.
  const evals = readJsonl(join(store.dir, RUN_FILES.eval)) as unknown as (EvalResult & { phase: string })[];
  const sftEval = result.sft ?? evals.find((record) => record.phase === 'sft') ?? null;
  const finalEval = result.final ?? evals.filter((record) => record.phase === 'final').pop() ?? null;
  const outcome: TrainOutcome = { runDir: store.dir, backend: backendName, sft: sftEval, final: finalEval, plots, seconds };
  if (flags.json) {
    out(JSON.stringify(outcome));
  } else {
    const pct = (result: EvalResult | null) => (result ? formatAccuracy(result.accuracy) : 'n/a');
    if (config.rl.steps === 0) out(`held-out greedy accuracy after the warm-up (rl.steps 0): ${pct(sftEval)}`);
    else out(`held-out greedy accuracy: after SFT ${pct(sftEval)} → after ${config.rl.algo.toUpperCase()} ${pct(finalEval)}`
      + (sftEval && finalEval ? ` (${formatAccuracyGain(sftEval.accuracy, finalEval.accuracy)})` : ''));
    if (finalEval?.pass_at_k != null) out(`pass@${finalEval.k}: after SFT ${sftEval?.pass_at_k != null ? `${(100 * sftEval.pass_at_k).toFixed(1)}%` : 'n/a'} → ${(100 * finalEval.pass_at_k).toFixed(1)}%`);
    out(`run directory: ${store.dir} (${plots.length ? `plots in ${join(store.dir, 'plots')}, ` : ''}${seconds.toFixed(0)} s)`);
  }
  return outcome;
}
