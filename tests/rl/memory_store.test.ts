// The in-memory RunStore (the browser page's store): the same run through it and through the run-directory store
// gives the same records; its newest checkpoint holds a state copy and weights that load back into a model equal
// to the trained one; aborting stops the run with TrainingStopped at the next record.
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
import { MemoryRunStore, type RecordKind } from '../../src/rl/memory_store.js';
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
});
