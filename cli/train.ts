// `dapo train`: resolve the config (defaults ← preset ← --config file ← flags), pick the backend, then run
// SFT warm-up → DAPO/GRPO → evaluation → plots into a run directory; `--resume` continues a run.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { initEngine } from '../src/node.js';
import { type ConfigFlags, type TrainConfig, configLayersFrom, resolveTrainConfig } from '../src/rl/config.js';
import { TrainingStopped } from '../src/rl/run_store.js';
import { Trainer, buildTaskAndModel, freshParts, optimizerForResume } from '../src/rl/trainer.js';
import { type PretrainedSource, loadPretrainedModel, pretrainedSource, taskFromFiles } from '../src/rl/pretrained_run_node.js';
import type { EvalResult } from '../src/rl/evaluate.js';
import { NodeRunStore, RUN_FILES, readJsonl, readRunConfig, restoreOptimizer, restoreRun, writeDirectoryAtomic } from '../src/rl/run_dir_node.js';
import { type HfExportSource, adapterDirectoryFiles, declaredWeightsDtype, hfDirectoryFiles } from '../src/rl/hf_export.js';
import { HfTokenizer } from '../src/data/tokenizer_hf.js';
import { CharTokenizer } from '../src/data/tokenizer.js';
import { applyLora, formatTrainableParameters, hasLora, mergeLora, removeLora } from '../src/nn/lora.js';
import { Progress } from './progress.js';
import { loadModelWeights } from '../src/io/checkpoint.js';
import type { TransformerLM } from '../src/nn/transformer.js';
import { plotRunDir } from './plot.js';
import type { Task } from '../src/data/task.js';
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

/** The resolved config of the flags (what --print-config prints). */
export function configFromFlags(flags: TrainFlags): TrainConfig {
  return resolveTrainConfig(...layersFromFlags(flags));
}

/** Loads a checkpoint directory's weights into a fresh model (config.init), naming what does not fit. */
function initWeights(model: TransformerLM, dir: string): void {
  const path = join(dir, 'model.safetensors');
  if (!existsSync(path)) throw new Error(`init: ${path} does not exist (init must be a checkpoint directory)`);
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

export async function runTrain(flags: TrainFlags, out: (line: string) => void = (line) => console.log(line)): Promise<TrainOutcome> {
  const startedAt = performance.now();
  const progress = new Progress(process.stderr, !!flags.quiet);
  const log = (line: string) => progress.log(line);
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
  // Files first (model directory, tokenizer, datasets, reward module), so a bad path fails before the engine starts
  // or a run directory exists.
  const pretrained = await pretrainedSource(config, log);
  const taskOverride = await taskFromFiles(config, pretrained);
  const selection = await initEngine({ backend: config.backend });
  log(`backend: ${selection.backend.name} (${selection.reason})`);
  if (!flags.resume) {
    // Batch sizes left unset become the largest that fit; a plan that does not fit stops here, before any folder exists.
    const planned = planRun(config, explicitBatchKeys(layersFromFlags(flags)), selection.backend, pretrained?.dir ?? null, taskOverride);
    if (flags.dryRun) {
      selection.backend.destroy();
      for (const line of planned.lines) out(line);
      if (planned.plan.problems.length) throw new MemoryPlanError(planned.lines);
      return { runDir: '', backend: selection.backend.name, sft: null, final: null, plots: [], seconds: (performance.now() - startedAt) / 1000 };
    }
    if (planned.plan.problems.length) {
      selection.backend.destroy();
      throw new MemoryPlanError(planned.lines);
    }
    config = planned.config;
  } else if (flags.dryRun) {
    selection.backend.destroy();
    throw new Error('--dry-run plans a fresh run; drop --resume');
  }

  const store = flags.resume
    ? new NodeRunStore(runDir, config.checkpoint.keep, log, (...args) => progress.update(...args))
    : NodeRunStore.create(runDir, config, { force: flags.force, log, progress: (...args) => progress.update(...args) });
  let task: Task;
  let freshModel: TransformerLM | null;
  let restored: ReturnType<typeof restoreRun> = null;
  if (pretrained) {
    task = taskOverride!;
    const lora = config.lora.r > 0;
    const full = flags.resume && !lora ? restoreRun(runDir, config.rl.klBeta > 0) : null;
    const base = full ? null : await loadPretrainedModel(config, pretrained, task);
    restored = full ?? (flags.resume && base ? restoreRun(runDir, config.rl.klBeta > 0, { base, loraSeed: config.seed }) : null);
    freshModel = restored ? null : base;
    if (freshModel && lora) {
      const { r, alpha, dropout, targetModules } = config.lora;
      applyLora(freshModel, { r, alpha, dropout, targetModules, seed: config.seed });
    }
    log(`model ${pretrained.name}: ${formatTrainableParameters(restored?.model ?? freshModel!)}`);
  } else {
    restored = flags.resume ? restoreRun(runDir, config.rl.klBeta > 0) : null;
    ({ task, model: freshModel } = buildTaskAndModel(config, taskOverride));
  }
  store.hfExport = exportSource(task, pretrained);
  let trainer: Trainer;
  if (restored) {
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
  let result: { sft: EvalResult | null; final: EvalResult | null };
  try {
    result = await trainer.run();
    if (pretrained) await writeFinalModel(store.dir, trainer.model, store.hfExport!, log);
  } catch (err) {
    progress.finishLine();
    if (err instanceof TrainingStopped) throw new Error(`${err.message} (run directory ${store.dir}; the last checkpoint is kept)`);
    throw err;
  } finally {
    // The adapters are not parameters of the model: free them before it.
    if (hasLora(trainer.model)) removeLora(trainer.model);
    trainer.dispose();
    selection.backend.destroy();
  }
  progress.finishLine();
  const plots = flags.plots ? await plotRunDir(store.dir, () => {}) : [];
  const seconds = (performance.now() - startedAt) / 1000;
  // Read the evaluations back from the run: a resumed run did its SFT evaluation in an earlier process.
  const evals = readJsonl(join(store.dir, RUN_FILES.eval)) as unknown as (EvalResult & { phase: string })[];
  const sftEval = result.sft ?? evals.find((record) => record.phase === 'sft') ?? null;
  const finalEval = result.final ?? evals.filter((record) => record.phase === 'final').pop() ?? null;
  const outcome: TrainOutcome = { runDir: store.dir, backend: selection.backend.name, sft: sftEval, final: finalEval, plots, seconds };
  if (flags.json) {
    out(JSON.stringify(outcome));
  } else {
    const pct = (result: EvalResult | null) => (result ? `${(100 * result.accuracy).toFixed(1)}%` : 'n/a');
    if (config.rl.steps === 0) out(`held-out greedy accuracy after the warm-up (rl.steps 0): ${pct(sftEval)}`);
    else out(`held-out greedy accuracy: after SFT ${pct(sftEval)} → after ${config.rl.algo.toUpperCase()} ${pct(finalEval)}`);
    if (finalEval?.pass_at_k != null) out(`pass@${finalEval.k}: after SFT ${sftEval?.pass_at_k != null ? `${(100 * sftEval.pass_at_k).toFixed(1)}%` : 'n/a'} → ${(100 * finalEval.pass_at_k).toFixed(1)}%`);
    out(`run directory: ${store.dir} (${plots.length ? `plots in ${join(store.dir, 'plots')}, ` : ''}${seconds.toFixed(0)} s)`);
  }
  return outcome;
}
