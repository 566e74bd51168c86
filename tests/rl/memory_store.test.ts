// The in-memory RunStore (the browser page's store): the same run through it and through the run-directory store
// gives the same records; its newest checkpoint holds a state copy and weights that load back into a model equal
// to the trained one; aborting stops the run with TrainingStopped at the next record; a run cut off after a checkpoint
// (a page's lost GPU device) and continued from it on a fresh model gives the uninterrupted run's records and weights.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import * as T from '../../src/tensor/index.js';
import { TransformerLM } from '../../src/nn/transformer.js';
import { loadModelWeights } from '../../src/io/checkpoint.js';
import { decodeSafetensors } from '../../src/io/safetensors.js';
import { resolveTrainConfig } from '../../src/rl/config.js';
import { type RunStore, TrainingStopped } from '../../src/rl/run_store.js';
import { Trainer, buildTaskAndModel, freshParts } from '../../src/rl/trainer.js';
import { MemoryRunStore, type RecordKind, partsFromMemoryCheckpoint } from '../../src/rl/memory_store.js';
import { applyLora, loraAdapters } from '../../src/nn/lora.js';
import type { TrainerCheckpoint } from '../../src/rl/run_store.js';
import type { Backend } from '../../src/backend/backend.js';
import { createBackend } from '../../src/backend/select.js';
import { nodePlatform } from '../../src/node.js';
import { NodeRunStore, readJsonl } from '../../src/rl/run_dir_node.js';

const TINY = {
  seed: 5,
  model: { dModel: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 32, maxSeqLen: 40 },
  task: { name: 'addition', maxDigits: 2 },
  sft: { steps: 3, batchSize: 4, lr: 3e-3, warmupSteps: 1 },
  rl: { steps: 2, promptsPerStep: 2, groupSize: 3, dynamicSampling: 'off', maxNewTokens: 12, microBatchSize: 6, lr: 1e-3, warmupSteps: 1 },
  eval: { every: 0, problems: 4, passK: 1, samplesPerProblem: 1 },
  checkpoint: { every: 1, keep: 1 },
};

async function run(store: RunStore): Promise<Trainer> {
  const cfg = resolveTrainConfig(TINY);
  const { task, model } = buildTaskAndModel(cfg);
  const trainer = new Trainer(cfg, task, freshParts(cfg, model), store);
  await trainer.run();
  return trainer;
}

/** Records without wall-clock fields and the backend's peak memory (a lifetime maximum, so it carries over from the
 *  first run into the second). */
function timeless(records: readonly Record<string, unknown>[]): Record<string, unknown>[] {
  const clock = new Set(['time_s', 'step_time_s', 'gen_tokens_per_s', 'train_tokens_per_s', 'peak_bytes']);
  return records.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !clock.has(k))));
}

describe('MemoryRunStore', () => {
  const backend = new ReferenceBackend();
  const dirs: string[] = [];
  beforeAll(() => T.setBackend(backend));
  afterAll(() => {
    backend.destroy();
    dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
  });

  it('keeps the same records as the run directory, callbacks in order, and a loadable newest checkpoint', async () => {
    const seen: RecordKind[] = [];
    const phases: string[] = [];
    const mem = new MemoryRunStore({ onRecord: (kind) => { seen.push(kind); }, onProgress: (phase, done, total) => { phases.push(`${phase} ${done}/${total}`); } });
    const trainer = await run(mem);
    const want = new Map<string, Float32Array>();
    for (const [name, p] of trainer.model.params) want.set(name, Float32Array.from(await p.read())); // the checkpoint is F32
    const finalState = structuredClone(trainer.state);
    trainer.dispose();

    const dir = mkdtempSync(join(tmpdir(), 'dapo-mem-'));
    dirs.push(dir);
    (await run(NodeRunStore.create(dir, resolveTrainConfig(TINY), { force: true }))).dispose();

    expect(timeless(mem.sft)).toEqual(timeless(readJsonl(join(dir, 'sft.jsonl'))));
    expect(timeless(mem.metrics)).toEqual(timeless(readJsonl(join(dir, 'metrics.jsonl'))));
    expect(timeless(mem.evals)).toEqual(timeless(readJsonl(join(dir, 'eval.jsonl'))));
    expect(mem.metrics.map((m) => m.step)).toEqual([1, 2]);
    expect(mem.evals.map((e) => e.phase)).toEqual(['sft', 'final']);
    expect(seen).toEqual(['sft', 'sft', 'sft', 'eval', 'metrics', 'metrics', 'eval']);
    expect(phases).toEqual(['sft 1/3', 'sft 2/3', 'sft 3/3', 'eval 0/1', 'rl 1/2', 'rl 2/2', 'eval 0/1']);
    expect(mem.logs.some((l) => l.startsWith('eval (final, step 2)'))).toBe(true);

    // Checkpoints: after SFT, after each RL step, and the finished one; only the newest is kept.
    expect(mem.checkpoints).toBe(4);
    const latest = mem.latest!;
    expect(latest.state).toEqual({ ...finalState, elapsed: latest.state.elapsed }); // the checkpoint adds this process's time
    expect(latest.state.elapsed).toBeGreaterThan(0);
    expect(latest.state.finished).toBe(true);
    // The RL optimizer (fresh after SFT): 2 mini-batches per step × 2 steps, less any skipped non-finite step.
    const skipped = mem.metrics.reduce((a, m) => a + (m.skipped_optimizer_steps as number), 0);
    expect(latest.optimizerSteps).toBe(4 - skipped);
    const model = new TransformerLM(resolveTrainConfig(TINY).model as never, 99);
    loadModelWeights(model, latest.weights!);
    for (const [name, p] of model.params) expect(Array.from(Float32Array.from(await p.read())), name).toEqual(Array.from(want.get(name)!));
    model.dispose();
    const moments = decodeSafetensors(latest.optimizer!).tensors;
    expect(moments.size).toBeGreaterThan(0);
    for (const [, t] of moments) expect(Array.from(t.data).every(Number.isFinite)).toBe(true);
  });

  it('copies the state it keeps (later trainer mutations do not leak in) and skips weights when asked', async () => {
    const mem = new MemoryRunStore({ keepWeights: false });
    const trainer = await run(mem);
    const kept = mem.latest!;
    trainer.state.carried.push({ promptIndex: -1, problem: { id: 'x', prompt: '', answer: '', solution: '' }, promptIds: [], responses: [] });
    trainer.state.rlStep = 1000;
    expect(kept.state.rlStep).toBe(2);
    expect(kept.state.carried.some((g) => g.promptIndex === -1)).toBe(false);
    expect(kept.weights).toBeNull();
    expect(kept.optimizer).toBeNull();
    trainer.dispose();
  });

  it('awaits a promise returned by onRecord before the trainer goes on', async () => {
    const order: string[] = [];
    const mem = new MemoryRunStore({
      keepWeights: false,
      onRecord: async (kind, r) => {
        await new Promise((resolve) => setTimeout(resolve, 1));
        order.push(`${kind} ${r.step} done`);
      },
      onProgress: (phase, done) => order.push(`${phase} ${done}`),
    });
    (await run(mem)).dispose();
    expect(order.slice(0, 4)).toEqual(['sft 1 done', 'sft 1', 'sft 2 done', 'sft 2']);
  });

  it('an aborted signal stops the run with TrainingStopped at the next record', async () => {
    const controller = new AbortController();
    const mem = new MemoryRunStore({ keepWeights: false, signal: controller.signal, onRecord: (kind) => { if (kind === 'metrics') controller.abort(); } });
    const cfg = resolveTrainConfig(TINY);
    const { task, model } = buildTaskAndModel(cfg);
    const trainer = new Trainer(cfg, task, freshParts(cfg, model), mem);
    await expect(trainer.run()).rejects.toBeInstanceOf(TrainingStopped);
    expect(mem.metrics).toHaveLength(1);
    trainer.dispose();
  });

  describe('continuing from the newest checkpoint (partsFromMemoryCheckpoint)', () => {
    // On a float32 backend: checkpoints are float32, so only there is the continuation bit-identical (the float64
    // reference would round at the checkpoint).
    let wasm: Backend;
    beforeAll(async () => {
      wasm = (await createBackend('wasm', nodePlatform({ threads: 1 }), { threads: 1 })).backend;
      T.setBackend(wasm);
    });
    afterAll(() => {
      T.setBackend(backend);
      wasm.destroy();
    });
    const cfg = resolveTrainConfig({ ...TINY, rl: { ...TINY.rl, steps: 3 } });
    /** The TINY model as a run begins, with seeded LoRA adapters (dropout on: the mask counters must carry over). */
    const freshModel = (lora: boolean) => {
      const { task, model } = buildTaskAndModel(cfg);
      if (lora) applyLora(model, { r: 2, alpha: 4, dropout: 0.1, targetModules: ['q_proj', 'v_proj', 'down_proj'], seed: cfg.seed });
      return { task, model };
    };
    async function weightsOf(trainer: Trainer): Promise<number[][]> {
      const tensors = loraAdapters(trainer.model).length ? loraAdapters(trainer.model).flatMap((a) => [a.loraA, a.loraB]) : [...trainer.model.params.values()];
      return Promise.all(tensors.map(async (t) => Array.from(await t.read())));
    }

    /** A store whose device "is lost" right after the checkpoint of RL step `lostAfter`. */
    class LosingStore extends MemoryRunStore {
      constructor(private readonly lostAfter: number) { super(); }
      override async saveCheckpoint(checkpoint: TrainerCheckpoint): Promise<void> {
        await super.saveCheckpoint(checkpoint);
        if (checkpoint.state.rlStep === this.lostAfter && checkpoint.state.sftDone) throw new Error('device lost (simulated)');
      }
    }

    for (const lora of [true, false]) {
      it(`${lora ? 'a LoRA run (adapter, dropout counters)' : 'a full fine-tuning run (weights)'}: same records and weights as the uninterrupted run`, async () => {
        const whole = new MemoryRunStore();
        const first = freshModel(lora);
        const uninterrupted = new Trainer(cfg, first.task, freshParts(cfg, first.model), whole);
        await uninterrupted.run();
        const want = await weightsOf(uninterrupted);
        uninterrupted.dispose();

        const store = new LosingStore(1);
        const start = freshModel(lora);
        const cut = new Trainer(cfg, start.task, freshParts(cfg, start.model), store);
        await expect(cut.run()).rejects.toThrow('device lost (simulated)');
        expect(store.latest!.state.rlStep).toBe(1);
        expect(store.latest!.weights === null).toBe(lora);
        expect(store.latest!.adapter === null).toBe(!lora);
        if (lora) expect(store.latest!.loraDropoutCalls!.some((calls) => calls > 0)).toBe(true);
        cut.dispose();

        const again = freshModel(false); // the base as loaded; the checkpoint brings the adapter back
        const continued = new Trainer(cfg, again.task, partsFromMemoryCheckpoint(store, cfg, again.model), store);
        await continued.run();
        // Memory in use is no part of the run's math (the cut-off run's tensors differ from a fresh process's).
        const math = (records: readonly Record<string, unknown>[]) => timeless(records).map(({ live_bytes: _live, ...rest }) => rest);
        expect(math(store.metrics)).toEqual(math(whole.metrics));
        expect(timeless(store.evals)).toEqual(timeless(whole.evals));
        expect(timeless(store.sft)).toEqual(timeless(whole.sft));
        expect(await weightsOf(continued)).toEqual(want);
        continued.dispose();
      });
    }

    it('refuses a store without a checkpoint or without weights', () => {
      const { model } = freshModel(false);
      expect(() => partsFromMemoryCheckpoint(new MemoryRunStore(), cfg, model)).toThrow('the run has no in-memory checkpoint yet');
      model.dispose();
    });
  });
});
