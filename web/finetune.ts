// The fine-tuning page: a Hugging Face model directory picked from disk (nothing is uploaded), its tokenizer and chat
// template, a dataset task (a JSONL / Parquet file, or built-in arithmetic word problems) and LoRA settings; DAPO
// trains in the tab on the same engine (src/) as `dapo train --model DIR --lora`, with the live panels, the backend
// memory in use, a Stop that keeps what was trained, and the PEFT adapter and merged model as downloads. A lost GPU
// device is reported, and the run continues on WASM from its last in-memory checkpoint.
// Each Train click sets window.finetuneRun, a promise of the run's FinetuneResult that never rejects.
// Test hook: ?loseDeviceAfterCheckpoint=N destroys the WebGPU device once the in-memory checkpoint after RL step N is
// saved (N = 0: the one before the first RL step), as a driver reset or a lost GPU would.
import { initEngine } from '../src/browser_engine.js';
import type { Selection } from '../src/backend/select.js';
import type { WebGPUBackend } from '../src/backend/webgpu/webgpu_backend.js';
import * as T from '../src/tensor/index.js';
import { type TrainConfig, TrainConfigError, parseOverrides, resolveTrainConfig } from '../src/rl/config.js';
import { type TrainerCheckpoint, type TrainerState, TrainingStopped } from '../src/rl/run_store.js';
import { Trainer, checkTaskFitsModel, freshParts } from '../src/rl/trainer.js';
import { MemoryRunStore, type RecordKind, type RunRecord, partsFromMemoryCheckpoint } from '../src/rl/memory_store.js';
import { type ExportFiles, type HfExportSource, adapterDirectoryFiles, declaredWeightsDtype, hfDirectoryFiles } from '../src/rl/hf_export.js';
import { type ModelFileReader, loadPretrainedFromFiles } from '../src/io/pretrained.js';
import { fromHfConfig } from '../src/io/hf_config.js';
import { readSafetensorsHeader, safetensorsHeaderLength } from '../src/io/safetensors.js';
import { HF_TOKENIZER_FILE_NAMES, HfTokenizer, type HfTokenizerFiles } from '../src/data/tokenizer_hf.js';
import { type DatasetRow, datasetFormat, parseDataset } from '../src/data/datasets.js';
import { MATH_TASK_DEFAULTS, type MathTask, type MathTaskConfig, mathTaskFromRows } from '../src/data/math_task.js';
import { applyLora, formatTrainableParameters, hasLora, mergeLora, removeLora } from '../src/nn/lora.js';
import { TransformerLM } from '../src/nn/transformer.js';
import { Panels, byId, clock, collectPageErrors, downloadBytes, formatBytes, pct, yieldToBrowser } from './page_common.js';
import { zipStore } from './zip.js';

const errors = collectPageErrors();

/** What window.finetuneRun resolves to (tests read it). */
export interface FinetuneResult {
  ok: boolean;
  stopped: boolean;
  /** The backends the run used, in order (webgpu, then wasm after a device loss). */
  backends: string[];
  deviceLost: string | null;
  /** The RL step of the checkpoint a run continued from after a device loss. */
  resumedFromStep: number | null;
  config: TrainConfig | null;
  model: ModelSummary | null;
  trainableParams: string | null;
  rlSteps: number;
  metrics: RunRecord[];
  evals: RunRecord[];
  panels: number;
  /** File names of the downloads on offer. */
  adapterFiles: string[];
  peakBytes: number;
  seconds: number;
  errors: string[];
}

// ------------------------------------------------------------------------------------------------ model directory

/** The files directly inside the picked directory, by name. */
interface ModelDirectory {
  name: string;
  files: Map<string, File>;
}

/** The top-level files of a webkitdirectory selection (relative paths "dir/name"; files in subfolders are left out). */
function directoryFromInput(list: FileList): ModelDirectory {
  const files = new Map<string, File>();
  let name = 'model';
  for (const file of Array.from(list)) {
    const parts = (file.webkitRelativePath || file.name).split('/');
    if (parts.length > 2) continue;
    if (parts.length === 2) name = parts[0];
    files.set(parts.at(-1)!, file);
  }
  return { name, files };
}

interface DirectoryHandleLike {
  name: string;
  values(): AsyncIterable<{ kind: 'file' | 'directory'; name: string; getFile?(): Promise<File> }>;
}

async function directoryFromHandle(handle: DirectoryHandleLike): Promise<ModelDirectory> {
  const files = new Map<string, File>();
  for await (const entry of handle.values()) {
    if (entry.kind === 'file' && entry.getFile) files.set(entry.name, await entry.getFile());
  }
  return { name: handle.name, files };
}

/** The loader's view of the picked files: whole files, and headers through File.slice (no full read). */
function fileReader(dir: ModelDirectory): ModelFileReader {
  const file = (name: string) => {
    const found = dir.files.get(name);
    if (!found) throw new Error(`the picked directory '${dir.name}' has no ${name} (it has: ${[...dir.files.keys()].sort().join(', ') || 'nothing'})`);
    return found;
  };
  return {
    where: `model directory '${dir.name}'`,
    has: async (name) => dir.files.has(name),
    read: async (name) => new Uint8Array(await file(name).arrayBuffer()),
    readPrefix: async (name, length) => {
      const found = file(name);
      return { bytes: new Uint8Array(await found.slice(0, length).arrayBuffer()), size: found.size };
    },
  };
}

const readText = async (dir: ModelDirectory, name: string): Promise<string | null> => (dir.files.has(name) ? dir.files.get(name)!.text() : null);

function parseJsonText(text: string, name: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${name} is not valid JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${name} is not a JSON object`);
  return value as Record<string, unknown>;
}

export interface ModelSummary {
  name: string;
  family: string;
  architecture: string;
  params: number;
  dtype: string;
  layers: number;
  hidden: number;
  heads: string;
  vocab: number;
  context: number;
  weightFiles: string[];
  diskBytes: number;
  /** The weights as the engine holds them (float32). */
  weightsInMemoryBytes: number;
  chatTemplate: boolean;
}

/** Reads config.json and the safetensors headers (not the weights) of a picked directory; every missing file is named. */
async function summarizeModel(dir: ModelDirectory): Promise<ModelSummary> {
  const missing = ['config.json', 'tokenizer.json'].filter((name) => !dir.files.has(name));
  if (!dir.files.has('model.safetensors') && !dir.files.has('model.safetensors.index.json')) missing.push('model.safetensors (or model.safetensors.index.json and its shards)');
  if (missing.length) throw new Error(`the picked directory '${dir.name}' is not a Hugging Face model directory: missing ${missing.join(', ')}`);
  const hf = parseJsonText((await readText(dir, 'config.json'))!, 'config.json');
  const config = fromHfConfig(hf);
  const reader = fileReader(dir);
  let weightFiles = ['model.safetensors'];
  if (dir.files.has('model.safetensors.index.json')) {
    const index = parseJsonText((await readText(dir, 'model.safetensors.index.json'))!, 'model.safetensors.index.json');
    weightFiles = [...new Set(Object.values((index.weight_map ?? {}) as Record<string, string>))];
  }
  let params = 0;
  let diskBytes = 0;
  const dtypes = new Set<string>();
  for (const name of weightFiles) {
    const head = await reader.readPrefix!(name, 8);
    const header = readSafetensorsHeader((await reader.readPrefix!(name, 8 + safetensorsHeaderLength(head.bytes, head.size))).bytes, head.size);
    diskBytes += head.size;
    for (const [tensor, entry] of header.tensors) {
      if (config.tieEmbeddings && tensor === 'lm_head.weight') continue;
      params += entry.shape.reduce((a, b) => a * b, 1);
      dtypes.add(entry.dtype);
    }
  }
  const tokenizerConfig = await readText(dir, 'tokenizer_config.json');
  return {
    name: dir.name,
    family: String(hf.model_type),
    architecture: Array.isArray(hf.architectures) ? hf.architectures.join(', ') : String(hf.model_type),
    params, dtype: [...dtypes].join('/') + (hf.torch_dtype ?? hf.dtype ? ` (config: ${String(hf.torch_dtype ?? hf.dtype)})` : ''),
    layers: config.nLayers, hidden: config.dModel, heads: `${config.nHeads} query / ${config.nKvHeads ?? config.nHeads} key-value`,
    vocab: config.vocabSize, context: config.maxSeqLen, weightFiles, diskBytes, weightsInMemoryBytes: params * 4,
    chatTemplate: dir.files.has('chat_template.jinja') || (tokenizerConfig !== null && tokenizerConfig.includes('"chat_template"')),
  };
}

function describeModel(s: ModelSummary): string {
  const millions = (n: number) => (n >= 1e9 ? `${(n / 1e9).toPrecision(3)} B` : `${(n / 1e6).toPrecision(3)} M`);
  return [
    `${s.name}: ${s.family} (${s.architecture}), ${millions(s.params)} parameters, ${s.dtype}`,
    `${s.layers} layers, hidden ${s.hidden}, heads ${s.heads}, vocabulary ${s.vocab}, context ${s.context}`,
    `${s.weightFiles.length} weight file${s.weightFiles.length > 1 ? 's' : ''} (${formatBytes(s.diskBytes)} on disk); chat template: ${s.chatTemplate ? 'yes' : 'no (plain-text prompts)'}`,
    `memory estimate: ${formatBytes(s.weightsInMemoryBytes)} of weights in float32 for full fine-tuning; with LoRA a BF16/F16 base`
      + ` stays 16-bit (${formatBytes(s.weightsInMemoryBytes / 2)}), plus the adapters, their gradients and optimizer moments,`
      + ' plus activations (the output head works over row chunks, never batch × length × vocabulary logits)',
  ].join('\n');
}

async function loadTokenizer(dir: ModelDirectory): Promise<HfTokenizer> {
  const files: HfTokenizerFiles = { tokenizer: '' };
  for (const [field, name] of Object.entries(HF_TOKENIZER_FILE_NAMES) as [keyof HfTokenizerFiles, string][]) {
    const text = await readText(dir, name);
    if (text !== null) (files as unknown as Record<string, string>)[field] = text;
  }
  if (!files.tokenizer) throw new Error(`the picked directory '${dir.name}' has no tokenizer.json`);
  return new HfTokenizer(files);
}

// ------------------------------------------------------------------------------------------------ task and config

/** The built-in task: generated arithmetic word problems in GSM8K's layout (question, '… #### answer'). */
function arithmeticRows(count: number, seed: number): DatasetRow[] {
  let state = (seed * 2654435761 + 12345) >>> 0;
  const next = (n: number) => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state % n;
  };
  const names = ['Ada', 'Ben', 'Chen', 'Dina', 'Eli', 'Fatima', 'Gus', 'Hana'];
  const things = ['apples', 'pens', 'stickers', 'books', 'shells', 'coins'];
  const rows: DatasetRow[] = [];
  for (let i = 0; i < count; i++) {
    const [who, what] = [names[next(names.length)], things[next(things.length)]];
    const a = 2 + next(30);
    const b = 1 + next(20);
    const record = next(2) === 0
      ? { question: `${who} has ${a} ${what} and gets ${b} more. How many ${what} does ${who} have now?`, answer: `${a}+${b}=${a + b}\n#### ${a + b}` }
      : { question: `${who} has ${a + b} ${what} and gives away ${b}. How many ${what} are left?`, answer: `${a + b}-${b}=${a}\n#### ${a}` };
    rows.push({ record, where: `built-in arithmetic problem ${i}` });
  }
  return rows;
}

interface FormSettings {
  backend: string;
  taskSource: 'file' | 'arithmetic';
  /** The config layers (the form, then the overrides textarea). */
  layers: unknown[];
}

function readForm(modelName: string): FormSettings {
  const form = byId<HTMLFormElement>('settings');
  const value = (name: string) => (form.elements.namedItem(name) as HTMLInputElement).value.trim();
  const problems: string[] = [];
  const number = (name: string, label: string): number => {
    const text = value(name);
    const parsed = Number(text);
    if (text === '' || !Number.isFinite(parsed)) problems.push(`${label}: must be a number, got '${text}'`);
    return parsed;
  };
  const taskSource = value('taskSource') as FormSettings['taskSource'];
  const taskFile = byId<HTMLInputElement>('taskFile').files?.[0];
  if (taskSource === 'file' && !taskFile) problems.push('dataset file: pick a .jsonl, .json or .parquet file, or choose the built-in task');
  const targets = value('loraTargets');
  const steps = number('steps', 'RL steps');
  const layer = {
    seed: number('seed', 'seed'),
    backend: value('backend'),
    model: { path: modelName },
    task: {
      ...MATH_TASK_DEFAULTS.gsm8k, path: taskSource === 'file' ? taskFile?.name ?? '' : 'built-in arithmetic problems',
      promptField: value('promptField'), answerField: value('answerField'), solutionField: null, testFraction: number('testFraction', 'held-out fraction'),
    },
    lora: {
      r: number('loraR', 'LoRA rank'), alpha: number('loraAlpha', 'LoRA alpha'), dropout: number('loraDropout', 'LoRA dropout'),
      targetModules: targets === 'all-linear' ? targets : targets.split(',').map((t) => t.trim()).filter(Boolean),
    },
    rl: {
      steps, promptsPerStep: number('promptsPerStep', 'prompts per step'), generationBatchPrompts: number('promptsPerStep', 'prompts per step'),
      groupSize: number('groupSize', 'group size'), maxNewTokens: number('maxNewTokens', 'max new tokens'), lr: number('lr', 'learning rate'),
      warmupSteps: Math.min(10, Math.floor(steps / 10)),
    },
    // A few held-out problems before and after; the adapter is small, so every step is checkpointed in memory
    // (what a run continues from after a lost GPU device).
    eval: { every: 0, problems: 16, passK: 1, samplesPerProblem: 1 },
    checkpoint: { every: 1, keep: 1 },
  };
  const layers: unknown[] = [layer];
  const overrides = value('overrides').split('\n').map((line) => line.trim()).filter((line) => line && !line.startsWith('#'));
  try {
    if (overrides.length) layers.push(parseOverrides(overrides));
  } catch (err) {
    if (err instanceof TrainConfigError) problems.push(...err.problems);
    else throw err;
  }
  if (problems.length) throw new TrainConfigError(problems);
  return { backend: layer.backend, taskSource, layers };
}

async function taskRows(settings: FormSettings, config: TrainConfig): Promise<DatasetRow[]> {
  if (settings.taskSource === 'arithmetic') return arithmeticRows(200, config.seed);
  const file = byId<HTMLInputElement>('taskFile').files![0];
  const task = config.task as unknown as MathTaskConfig;
  return parseDataset(new Uint8Array(await file.arrayBuffer()), file.name, datasetFormat(file.name, task.format));
}

// ------------------------------------------------------------------------------------------------ the run

/** The base model as config.json and the safetensors describe it, capped at model.maxSeqLen, checked against the task. */
async function loadBase(dir: ModelDirectory, config: TrainConfig, task: MathTask): Promise<TransformerLM> {
  // Under LoRA the frozen base loads straight into its 16-bit storage (lora.frozenDtype; auto = the checkpoint's
  // BF16/F16), as `dapo train --lora` does: half the memory, which is what lets a 0.5 B model fit a tab's WASM.
  const frozenDtype = config.lora.r > 0 ? config.lora.frozenDtype : undefined;
  const { model } = await loadPretrainedFromFiles(fileReader(dir), { maxSeqLen: config.model.maxSeqLen as number | undefined, frozenDtype });
  checkTaskFitsModel(config, task, model);
  return model;
}

/** A trainer from the start (a device lost before the first checkpoint): the base reloaded, fresh adapters, the
 *  run's records dropped. */
async function freshTrainer(dir: ModelDirectory, config: TrainConfig, task: MathTask, store: MemoryRunStore): Promise<Trainer> {
  const model = await loadBase(dir, config, task);
  if (config.lora.r > 0) applyLora(model, { ...config.lora, seed: config.seed });
  for (const records of [store.metrics, store.evals, store.sft]) records.length = 0;
  return new Trainer(config, task, freshParts(config, model), store);
}

/** Resolves with the loss message once the WebGPU device of `selection` is lost (never for WASM). */
function deviceLoss(selection: Selection): { lost: Promise<string>; message: () => string | null } {
  let message: string | null = null;
  if (selection.backend.name !== 'webgpu') return { lost: new Promise(() => {}), message: () => null };
  const lost = (selection.backend as unknown as WebGPUBackend).device.lost.then((info) => {
    message = `the WebGPU device was lost (${info.reason}${info.message ? `: ${info.message}` : ''})`;
    return message;
  });
  return { lost, message: () => message };
}

/** The page's run store: a MemoryRunStore that tells the page when a checkpoint is saved (the device-loss test hook). */
class PageRunStore extends MemoryRunStore {
  constructor(private readonly afterCheckpoint: (state: TrainerState) => void, options: ConstructorParameters<typeof MemoryRunStore>[0]) {
    super(options);
  }

  override async saveCheckpoint(checkpoint: TrainerCheckpoint): Promise<void> {
    await super.saveCheckpoint(checkpoint);
    this.afterCheckpoint(checkpoint.state);
  }
}

let running = false;
let currentModel: { dir: ModelDirectory; summary: ModelSummary } | null = null;
/** The last run's trainer (its model backs the downloads) and backend, released when the next run starts. */
let previousRun: { trainer: Trainer; selection: Selection } | null = null;

/** Frees a trainer's tensors, the LoRA adapters first (they are not parameters of the model). */
function disposeTrainer(trainer: Trainer): void {
  if (hasLora(trainer.model)) removeLora(trainer.model);
  trainer.dispose();
}

async function runFinetune(result: FinetuneResult): Promise<FinetuneResult> {
  const startedAt = performance.now();
  const status = byId('status');
  const bar = byId<HTMLProgressElement>('bar');
  const logEl = byId('log');
  const log = (line: string) => { logEl.textContent += `${line}\n`; };
  for (const id of ['summary', 'errors', 'files', 'panels', 'log', 'config']) byId(id).textContent = '';
  if (!currentModel) throw new Error('pick a Hugging Face model directory first');
  const { dir, summary } = currentModel;
  result.model = summary;

  if (previousRun) {
    disposeTrainer(previousRun.trainer);
    previousRun.selection.backend.destroy();
    previousRun = null;
  }
  const settings = readForm(dir.name);
  const config = resolveTrainConfig(...settings.layers);
  result.config = config;
  byId('config').textContent = JSON.stringify(config, null, 1);

  // Files first, so a bad tokenizer or dataset fails before the engine starts.
  status.textContent = 'reading the tokenizer and the task…';
  const tokenizer = await loadTokenizer(dir);
  const renderChat = tokenizer.chatTemplate ? (messages: Parameters<HfTokenizer['applyChatTemplate']>[0]) => tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true }) : undefined;
  const task = mathTaskFromRows(config.task as unknown as MathTaskConfig, await taskRows(settings, config), null, { tokenizer, renderChat });
  log(`task: ${task.testSize} held-out problems; prompts up to ${task.maxPromptLength} tokens`);

  status.textContent = `starting the ${settings.backend} backend…`;
  let selection = await initEngine({ backend: settings.backend });
  result.backends.push(selection.backend.name);
  log(`backend ${selection.backend.name}: ${selection.reason}`);
  let loss = deviceLoss(selection);

  status.textContent = `loading ${dir.name} (${formatBytes(summary.diskBytes)})…`;
  const model = await loadBase(dir, config, task);
  if (config.lora.r > 0) applyLora(model, { ...config.lora, seed: config.seed });

  const memoryEl = byId('memory');
  const showMemory = () => {
    try {
      const memory = T.getBackend().memory();
      result.peakBytes = Math.max(result.peakBytes, memory.peakBytes);
      memoryEl.textContent = `${T.getBackend().name} memory in use: ${formatBytes(memory.liveBytes)} in ${memory.liveBuffers} buffers (peak ${formatBytes(memory.peakBytes)})`;
    } catch {
      // A destroyed backend has nothing to report.
    }
  };
  const memoryTimer = setInterval(showMemory, 500);

  const panels = new Panels(byId('panels'));
  // Stop lets the running step finish and record its metrics, then ends the run there: the model keeps every
  // step it recorded, and the downloads hold exactly that.
  let stopRequested = false;
  const loseAfter = Number(new URLSearchParams(location.search).get('loseDeviceAfterCheckpoint') ?? NaN);
  let lastYield = performance.now();
  const store = new PageRunStore((state) => {
    if (state.rlStep === loseAfter && T.getBackend().name === 'webgpu' && result.backends.length === 1) {
      log(`test hook: destroying the WebGPU device after the checkpoint of RL step ${loseAfter}`);
      (T.getBackend() as unknown as WebGPUBackend).device.destroy();
    }
  }, {
    onLog: log,
    onProgress: (phase, done, total, detail) => {
      status.textContent = `${T.getBackend().name} · ${phase} ${done}/${total} · ${detail} · ${clock((performance.now() - startedAt) / 1000)}`;
      bar.value = total > 0 ? done / total : 0;
      showMemory();
    },
    onRecord: async (kind: RecordKind, record: RunRecord) => {
      if (kind !== 'sft') await panels.draw(store);
      if (stopRequested) throw new TrainingStopped(`stopped by the user after ${kind === 'metrics' ? `RL step ${record.step}` : `the ${kind} record of step ${record.step}`}`);
      if (kind !== 'sft' || performance.now() - lastYield > 50) {
        await yieldToBrowser();
        lastYield = performance.now();
      }
    },
  });

  const stop = byId<HTMLButtonElement>('stop');
  stop.disabled = false;
  stop.onclick = () => {
    stopRequested = true;
    stop.disabled = true;
    status.textContent = 'stopping after the current step…';
  };

  let trainer = new Trainer(config, task, freshParts(config, model), store);
  result.trainableParams = formatTrainableParameters(model);
  log(`model ${dir.name}: ${result.trainableParams}`);
  try {
    for (;;) {
      try {
        await trainer.run();
        result.ok = true;
        break;
      } catch (err) {
        if (err instanceof TrainingStopped) {
          result.stopped = true;
          log(err.message);
          break;
        }
        // An error on WebGPU: was the device lost? (device.lost settles through the event loop.)
        const lostMessage = selection.backend.name === 'webgpu'
          ? loss.message() ?? await Promise.race([loss.lost, new Promise<null>((r) => setTimeout(() => r(null), 1000))]) : null;
        if (!lostMessage) throw err;
        result.deviceLost = lostMessage;
        const checkpoint = store.latest;
        const from = checkpoint ? `its last in-memory checkpoint (after RL step ${checkpoint.state.rlStep})` : 'the start';
        log(`${lostMessage} during RL step ${trainer.state.rlStep + 1}: ${(err as Error).message}`);
        byId('lostMessage').textContent = `${lostMessage[0].toUpperCase()}${lostMessage.slice(1)}. The run can continue on WASM from ${from}.`;
        byId('lost').hidden = false;
        status.textContent = 'the GPU device was lost';
        await new Promise<void>((resolve) => { byId<HTMLButtonElement>('continueWasm').onclick = () => resolve(); });
        byId('lost').hidden = true;
        // Free what lived on the lost device while it is still the active backend, then switch.
        try { disposeTrainer(trainer); } catch { /* the device is gone: its buffers went with it */ }
        selection.backend.destroy();
        selection = await initEngine({ backend: 'wasm' });
        loss = deviceLoss(selection);
        result.backends.push(selection.backend.name);
        log(`continuing on ${selection.backend.name} (${selection.reason}) from ${from}`);
        result.resumedFromStep = checkpoint?.state.rlStep ?? 0;
        trainer = checkpoint
          ? new Trainer(config, task, partsFromMemoryCheckpoint(store, config, await loadBase(dir, config, task)), store)
          : await freshTrainer(dir, config, task, store);
      }
    }
  } finally {
    previousRun = { trainer, selection };
    clearInterval(memoryTimer);
    showMemory();
    stop.disabled = true;
    await panels.draw(store);
    result.metrics = store.metrics;
    result.evals = store.evals;
    result.rlSteps = trainer.state.rlStep;
    result.panels = panels.count();
    result.seconds = (performance.now() - startedAt) / 1000;
  }

  await offerDownloads(trainer.model, {
    tokenizer,
    baseGenerationConfig: dir.files.has('generation_config.json') ? parseJsonText((await readText(dir, 'generation_config.json'))!, 'generation_config.json') : null,
    baseModelNameOrPath: dir.name,
    weightsDtype: declaredWeightsDtype(parseJsonText((await readText(dir, 'config.json'))!, 'config.json')),
  }, result);

  const first = store.evals.find((record) => record.phase === 'sft');
  const last = store.evals.filter((record) => record.phase === 'final').at(-1);
  const where = result.backends.join(' → ');
  byId('summary').textContent = result.stopped
    ? `stopped after ${result.rlSteps} RL steps (${where}, ${clock(result.seconds)}); what was trained is in the downloads`
    : `held-out greedy accuracy: before ${pct(first?.accuracy)} → after ${config.rl.algo.toUpperCase()} ${pct(last?.accuracy)}`
      + ` (${first?.n ?? '?'} problems, ${config.rl.steps} RL steps, ${where}, ${clock(result.seconds)})`;
  status.textContent = `${result.stopped ? 'stopped' : 'done'} · ${where} · ${clock(result.seconds)}`;
  bar.value = 1;
  return result;
}

/** The adapter files now (the model keeps its LoRA until the merged model is asked for: merging ends it). */
async function offerDownloads(model: TransformerLM, source: HfExportSource, result: FinetuneResult): Promise<void> {
  const stamp = `${currentModel!.dir.name}-dapo-step${result.rlSteps}`;
  const filesEl = byId('files');
  const links = (title: string, files: ExportFiles, prefix: string) => {
    const line = document.createElement('div');
    line.append(`${title}: `);
    for (const [name, contents] of files) {
      const link = document.createElement('a');
      link.href = '#';
      link.textContent = name;
      link.dataset.file = `${prefix}/${name}`;
      link.onclick = (event) => { event.preventDefault(); downloadBytes(name, contents); };
      line.append(link);
    }
    filesEl.append(line);
  };
  const adapterButton = byId<HTMLButtonElement>('downloadAdapter');
  if (hasLora(model)) {
    const adapter = await adapterDirectoryFiles(model, source);
    result.adapterFiles = [...adapter.keys()];
    links('PEFT adapter files', adapter, 'adapter');
    adapterButton.disabled = false;
    adapterButton.onclick = () => downloadBytes(`${stamp}-adapter.zip`, zipStore(adapter), 'application/zip');
  }
  let merged: ExportFiles | null = null;
  const mergedButton = byId<HTMLButtonElement>('downloadMerged');
  mergedButton.disabled = false;
  mergedButton.onclick = async () => {
    if (!merged) {
      mergedButton.disabled = true;
      byId('status').textContent = 'merging the adapter into the base model…';
      if (hasLora(model)) mergeLora(model);
      merged = await hfDirectoryFiles(model, source);
      links('merged model files', merged, 'merged');
      mergedButton.disabled = false;
      byId('status').textContent = `merged model ready (${formatBytes([...merged.values()].reduce((sum, c) => sum + (typeof c === 'string' ? c.length : c.length), 0))})`;
    }
    downloadBytes(`${stamp}-merged.zip`, zipStore(merged), 'application/zip');
  };
}

// ------------------------------------------------------------------------------------------------ wiring

async function pickModel(dir: ModelDirectory): Promise<void> {
  const summaryEl = byId('modelSummary');
  const errorsEl = byId('errors');
  errorsEl.textContent = '';
  try {
    const summary = await summarizeModel(dir);
    currentModel = { dir, summary };
    summaryEl.textContent = describeModel(summary);
    byId('status').textContent = 'ready: choose a task and press Train';
    (globalThis as unknown as { finetuneModel: ModelSummary }).finetuneModel = summary;
  } catch (err) {
    currentModel = null;
    summaryEl.textContent = '';
    errorsEl.textContent = String((err as Error).message ?? err);
    errors.push(errorsEl.textContent);
  }
}

byId<HTMLInputElement>('modelDir').addEventListener('change', (event) => {
  const list = (event.target as HTMLInputElement).files;
  if (list?.length) void pickModel(directoryFromInput(list));
});
const showDirectoryPicker = (globalThis as unknown as { showDirectoryPicker?: () => Promise<DirectoryHandleLike> }).showDirectoryPicker;
if (showDirectoryPicker) {
  const pick = byId<HTMLButtonElement>('pickDir');
  pick.hidden = false;
  pick.onclick = async () => {
    try {
      await pickModel(await directoryFromHandle(await showDirectoryPicker()));
    } catch (err) {
      if ((err as Error).name !== 'AbortError') byId('errors').textContent = String((err as Error).message ?? err);
    }
  };
}

byId<HTMLFormElement>('settings').addEventListener('submit', (event) => {
  event.preventDefault();
  if (running) return;
  running = true;
  const train = byId<HTMLButtonElement>('train');
  train.disabled = true;
  for (const id of ['downloadAdapter', 'downloadMerged']) byId<HTMLButtonElement>(id).disabled = true;
  const result: FinetuneResult = {
    ok: false, stopped: false, backends: [], deviceLost: null, resumedFromStep: null, config: null, model: null, trainableParams: null,
    rlSteps: 0, metrics: [], evals: [], panels: 0, adapterFiles: [], peakBytes: 0, seconds: 0, errors,
  };
  const run = runFinetune(result).catch((err: unknown) => {
    const message = err instanceof TrainConfigError ? err.message : String((err as Error)?.stack ?? err);
    errors.push(message);
    byId('errors').textContent = message;
    byId('status').textContent = 'failed';
    return result;
  }).finally(() => {
    running = false;
    train.disabled = false;
  });
  (globalThis as unknown as { finetuneRun: Promise<FinetuneResult> }).finetuneRun = run;
});
(globalThis as unknown as { finetuneReady: boolean }).finetuneReady = true;
