// A RunStore that keeps the run in memory: the training page's store (and a test double for the trainer).
// Browser-safe: no files, only arrays of records and the newest checkpoint as bytes.
import * as T from '../tensor/index.js';
import { encodeModel, encodeTensors, loadModelWeights } from '../io/checkpoint.js';
import { type PeftAdapterFiles, loadLoraAdapter, saveLoraAdapter } from '../io/peft.js';
import { decodeSafetensors } from '../io/safetensors.js';
import { hasLora, loraAdapters } from '../nn/lora.js';
import { TransformerLM } from '../nn/transformer.js';
import type { TrainConfig } from './config.js';
import { type RunStore, type TrainerCheckpoint, type TrainerState, TrainingStopped } from './run_store.js';
import { type TrainerParts, optimizerForResume } from './trainer.js';

export type RunRecord = Record<string, unknown>;
export type RecordKind = 'metrics' | 'eval' | 'sft';

/** The newest checkpoint: a copy of the trainer state, and (with keepWeights) safetensors bytes. */
export interface MemoryCheckpoint {
  state: TrainerState;
  optimizerSteps: number;
  /** The policy's weights (Hugging Face Llama names), or null when keepWeights is off or the model has LoRA adapters
   *  (its base does not change: the adapter is what a resumed run needs, as in a run directory's checkpoints). */
  weights: Uint8Array | null;
  /** A LoRA model's PEFT adapter files (with keepWeights), else null. */
  adapter: PeftAdapterFiles | null;
  /** A LoRA model's dropout-mask counters, one per adapter, so a resumed run draws the same masks. */
  loraDropoutCalls: number[] | null;
  /** AdamW moments, or null when keepWeights is off. */
  optimizer: Uint8Array | null;
}

export interface MemoryRunStoreOptions {
  /** Read the weights and optimizer moments back at each checkpoint (default true; costs a readback). */
  keepWeights?: boolean;
  /** Called after every appended record (e.g. to refresh plots); a returned promise is awaited by the trainer, so a
   *  page can yield to the event loop here and keep its UI live between steps. */
  onRecord?(kind: RecordKind, record: RunRecord): void | Promise<void>;
  onLog?(line: string): void;
  onProgress?(phase: string, done: number, total: number, detail: string): void;
  /** Aborting stops the run at the next record or progress report with TrainingStopped. */
  signal?: AbortSignal;
}

export class MemoryRunStore implements RunStore {
  readonly metrics: RunRecord[] = [];
  readonly evals: RunRecord[] = [];
  readonly sft: RunRecord[] = [];
  readonly logs: string[] = [];
  /** Newest checkpoint (older ones are dropped). */
  latest: MemoryCheckpoint | null = null;
  /** Checkpoints saved so far. */
  checkpoints = 0;
  /** Frozen reference policy (KL penalty on), as safetensors bytes. */
  reference: Uint8Array | null = null;

  constructor(private readonly options: MemoryRunStoreOptions = {}) {}

  private checkAbort(): void {
    if (this.options.signal?.aborted) throw new TrainingStopped('stopped: the run was aborted');
  }

  private append(kind: RecordKind, into: RunRecord[], record: RunRecord): void | Promise<void> {
    this.checkAbort();
    const copy = { ...record };
    into.push(copy);
    return this.options.onRecord?.(kind, copy);
  }

  appendMetrics(record: RunRecord): void | Promise<void> { return this.append('metrics', this.metrics, record); }
  appendEval(record: RunRecord): void | Promise<void> { return this.append('eval', this.evals, record); }
  appendSft(record: RunRecord): void | Promise<void> { return this.append('sft', this.sft, record); }

  async saveCheckpoint(checkpoint: TrainerCheckpoint): Promise<void> {
    const keepWeights = this.options.keepWeights ?? true;
    const { model, optimizer } = checkpoint;
    // A deep copy: the trainer keeps mutating its state (carried groups included) after this call.
    const state = structuredClone(checkpoint.state);
    const step = String(checkpoint.state.rlStep);
    const lora = hasLora(model);
    this.latest = {
      state,
      optimizerSteps: optimizer.stepCount,
      weights: keepWeights && !lora ? await encodeModel(model, { step }) : null,
      adapter: keepWeights && lora ? await saveLoraAdapter(model) : null,
      loraDropoutCalls: lora ? loraAdapters(model).map((adapter) => adapter.dropoutCalls) : null,
      optimizer: keepWeights ? await encodeTensors(optimizer.state(), { format: 'pt', steps: String(optimizer.stepCount) }) : null,
    };
    this.checkpoints++;
  }

  async saveReference(model: TransformerLM): Promise<void> {
    if (this.options.keepWeights ?? true) this.reference = await encodeTensors(model.params, { format: 'pt', role: 'reference policy' });
  }

  log(line: string): void {
    this.logs.push(line);
    this.options.onLog?.(line);
  }

  progress(phase: string, done: number, total: number, detail: string): void {
    this.checkAbort();
    this.options.onProgress?.(phase, done, total, detail);
  }
}

/**
 * What a run continues from after the store's newest checkpoint, on the backend active now (a page whose GPU device
 * was lost continues on WASM): `base` is a fresh model as the run began (a LoRA run: its base without adapters, which
 * gets the checkpoint's adapter and dropout counters; otherwise its weights are replaced by the checkpoint's), the
 * optimizer moments and trainer state are the checkpoint's, and the store's records are cut back to it, as resuming a
 * run directory does. Throws when the store kept no checkpoint, or one without weights (keepWeights off).
 */
export function partsFromMemoryCheckpoint(store: MemoryRunStore, config: TrainConfig, base: TransformerLM): TrainerParts {
  const checkpoint = store.latest;
  if (!checkpoint) throw new Error('the run has no in-memory checkpoint yet: start it over');
  if (checkpoint.adapter) {
    loadLoraAdapter(base, checkpoint.adapter, { seed: config.seed });
    loraAdapters(base).forEach((adapter, i) => { adapter.dropoutCalls = checkpoint.loraDropoutCalls?.[i] ?? 0; });
  } else if (checkpoint.weights) {
    loadModelWeights(base, checkpoint.weights);
  } else {
    throw new Error('the in-memory checkpoint holds no weights (the store was made with keepWeights: false)');
  }
  const state = structuredClone(checkpoint.state);
  const optimizer = optimizerForResume(config, base, state);
  if (checkpoint.optimizer) {
    const moments = new Map<string, T.Tensor>();
    for (const [name, moment] of decodeSafetensors(checkpoint.optimizer).tensors) moments.set(name, T.tensor(moment.data, moment.shape));
    optimizer.loadState(moments, checkpoint.optimizerSteps);
  }
  let reference: TransformerLM | null = null;
  if (config.rl.klBeta > 0 && state.sftDone) {
    if (!store.reference) throw new Error('the KL penalty is on but the store kept no reference policy');
    reference = new TransformerLM(base.config, 0);
    loadModelWeights(reference, store.reference);
  }
  // The steps after the checkpoint will be recomputed identically: their records go.
  const cut = (records: RunRecord[], keep: (record: RunRecord) => boolean) => records.splice(0, records.length, ...records.filter(keep));
  cut(store.metrics, (record) => Number(record.step) <= state.rlStep);
  cut(store.evals, (record) => Number(record.step) <= state.rlStep && (record.phase !== 'final' || state.finished));
  if (!state.sftDone) cut(store.sft, () => false);
  return { model: base, optimizer, state, reference };
}
