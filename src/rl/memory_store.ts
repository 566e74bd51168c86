// A RunStore that keeps the run in memory: the training page's store (and a test double for the trainer).
// Browser-safe: no files, only arrays of records and the newest checkpoint as bytes.
import { encodeModel, encodeTensors } from '../io/checkpoint.js';
import { type PeftAdapterFiles, saveLoraAdapter } from '../io/peft.js';
import { hasLora, loraAdapters } from '../nn/lora.js';
import type { TransformerLM } from '../nn/transformer.js';
import { type RunStore, type TrainerCheckpoint, type TrainerState, TrainingStopped } from './run_store.js';

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
