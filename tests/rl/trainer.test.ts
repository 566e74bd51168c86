// The DAPO trainer end to end on a tiny model: a few steps on every product backend; loss aggregation exact under
// micro-batching (1 micro-batch vs 4 give the same loss and gradients); a killed run resumed from its checkpoint
// gives the same metrics as an uninterrupted run, with no line lost or duplicated; non-finite steps are skipped and
// stop the run after the configured count.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import * as T from '../../src/tensor/index.js';
import { TransformerLM } from '../../src/nn/transformer.js';
import { AdamW } from '../../src/optim/adamw.js';
import { resolveTrainConfig } from '../../src/rl/config.js';
import { type TrainSequence } from '../../src/rl/sequences.js';
import { updatePolicy } from '../../src/rl/policy_update.js';
import { TrainingStopped } from '../../src/rl/run_store.js';
import { Trainer, buildTaskAndModel, freshParts, optimizerForResume } from '../../src/rl/trainer.js';
import { NodeRunStore, readJsonl, restoreOptimizer, restoreRun } from '../../src/rl/run_dir_node.js';
import { type NamedBackend, productBackends } from '../support/backends.js';

const TINY = {
  seed: 3,
  model: { dModel: 32, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 64, maxSeqLen: 48 },
  task: { name: 'addition' },
  sft: { steps: 4, batchSize: 8, lr: 3e-3, warmupSteps: 1 },
  rl: { steps: 3, promptsPerStep: 2, groupSize: 4, generationBatchPrompts: 2, maxGenerationBatches: 2, maxNewTokens: 16, microBatchSize: 4, miniBatches: 2, lr: 1e-3, warmupSteps: 1 },
  eval: { every: 2, problems: 6, passK: 2, samplesPerProblem: 2 },
  checkpoint: { every: 1, keep: 2 },
};

const silentStore = (dir: string, cfg: ReturnType<typeof resolveTrainConfig>) => NodeRunStore.create(dir, cfg, { force: true });

async function runTo(dir: string, overrides: Record<string, unknown> = {}) {
  const cfg = resolveTrainConfig(TINY, overrides);
  const { task, model } = buildTaskAndModel(cfg);
  const trainer = new Trainer(cfg, task, freshParts(cfg, model), silentStore(dir, cfg));
  try {
    return await trainer.run();
  } finally {
    trainer.dispose();
  }
}

function lines(dir: string, file: string): string[] {
  return readFileSync(join(dir, file), 'utf8').trim().split('\n');
}

describe('DAPO trainer', () => {
  let backends: NamedBackend[] = [];
  const dirs: string[] = [];
  const tmp = () => { const d = mkdtempSync(join(tmpdir(), 'dapo-run-')); dirs.push(d); return d; };
  beforeAll(async () => { backends = (await productBackends()).available; });
  afterAll(() => {
    backends.forEach((b) => b.backend.destroy());
    dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
  });

  it('runs SFT → DAPO → eval on every product backend and writes a complete run directory', async () => {
    for (const { name, backend } of backends) {
      T.setBackend(backend);
      const dir = tmp();
      const r = await runTo(dir);
      expect(r.sft, name).not.toBeNull();
      expect(r.final, name).not.toBeNull();
      const metrics = readJsonl(join(dir, 'metrics.jsonl'));
      expect(metrics.map((m) => m.step), name).toEqual([1, 2, 3]);
      for (const m of metrics) {
        for (const key of ['policy_loss', 'entropy', 'reward_mean', 'accuracy', 'response_length_mean', 'clip_frac_low', 'clip_frac_high', 'approx_kl', 'grad_norm', 'lr', 'gen_tokens_per_s', 'peak_bytes']) {
          if (!m.skipped) expect(Number.isFinite(m[key] as number), `${name}: ${key} = ${m[key]}`).toBe(true);
        }
        expect((m.groups_all_correct as number) + (m.groups_all_wrong as number) + (m.groups_mixed as number)).toBeGreaterThanOrEqual(TINY.rl.promptsPerStep);
        expect(m.ref_kl, 'KL is off for DAPO').toBeNull();
      }
      const evals = readJsonl(join(dir, 'eval.jsonl'));
      expect(evals.map((e) => `${e.phase}@${e.step}`), name).toEqual(['sft@0', 'rl@2', 'final@3']);
      expect(lines(dir, 'sft.jsonl')).toHaveLength(TINY.sft.steps);
      expect(backend.memory().liveBuffers, `${name}: buffers left after the run`).toBe(0);
    }
  });

  it('GRPO preset: KL to the frozen reference is logged and finite', async () => {
    T.setBackend(backends[backends.length - 1].backend);
    const dir = tmp();
    await runTo(dir, { rl: { algo: 'grpo', steps: 2 } });
    const metrics = readJsonl(join(dir, 'metrics.jsonl'));
    for (const m of metrics) expect(Number.isFinite(m.ref_kl as number)).toBe(true);
  });

  it("dynamic sampling 'resample' and 'off', seq-mean aggregation, dual-clip and cosine LR run end to end", async () => {
    T.setBackend(backends[backends.length - 1].backend);
    for (const rl of [
      { dynamicSampling: 'resample', maxResampleRounds: 2, dualClip: 3, schedule: 'cosine' },
      { dynamicSampling: 'off', lossAggregation: 'seq-mean-token-sum-norm', overlongFilter: false, ppoEpochs: 2 },
    ]) {
      const dir = tmp();
      await runTo(dir, { rl: { ...rl, steps: 2 }, eval: { every: 0 } });
      const metrics = readJsonl(join(dir, 'metrics.jsonl'));
      expect(metrics.map((m) => m.step), JSON.stringify(rl)).toEqual([1, 2]);
      for (const m of metrics) {
        expect(m.gen_batches, JSON.stringify(rl)).toBe(1);
        expect(m.resample_rate as number).toBeGreaterThanOrEqual(0);
        if (rl.dynamicSampling === 'off') expect(m.resample_rate).toBe(0);
        // 'resample' may generate extra groups for flat prompts; 'off' exactly one batch.
        const groups = (m.groups_all_correct as number) + (m.groups_all_wrong as number) + (m.groups_mixed as number);
        if (rl.dynamicSampling === 'off') expect(groups).toBe(TINY.rl.promptsPerStep);
        else expect(groups).toBeGreaterThanOrEqual(TINY.rl.promptsPerStep);
      }
    }
  });

  it('loss and gradients are the same with 1 micro-batch and with 4 (token-mean and seq-mean-token-mean)', async () => {
    T.setBackend(new ReferenceBackend());
    const cfg = { vocabSize: 16, dModel: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 32, maxSeqLen: 24 };
    const lens = [3, 7, 1, 5, 6, 2, 4, 8];
    const seqs = (): TrainSequence[] => lens.map((L, i) => ({
      promptIds: [1 + (i % 3), 2, 3], responseIds: Array.from({ length: L }, (_, j) => 2 + ((i + j) % 13)),
      advantage: (i % 2 ? 1 : -1) * (0.5 + i / 10), mask: Array.from({ length: L }, (_, j) => (i === 2 ? 0 : 1) * (j < L ? 1 : 0)),
      weights: [], oldLogp: Array.from({ length: L }, (_, j) => -2.5 - 0.1 * j), refLogp: null,
    }));
    for (const mode of ['token-mean', 'seq-mean-token-mean'] as const) {
      const grads: Float64Array[][] = [];
      const losses: number[] = [];
      for (const micro of [8, 2]) {
        const model = new TransformerLM(cfg, 5);
        // lr 0: the update leaves the weights alone; we read the gradients through a hook on the optimizer.
        const opt = new AdamW(model.params, { lr: 0, weightDecay: 0 });
        const step = opt.step.bind(opt);
        const gradsNow: Promise<Float64Array>[] = [];
        opt.step = (lr?: number) => {
          for (const p of model.parameters()) gradsNow.push(p.grad!.read().then((a) => Float64Array.from(a)));
          return step(lr);
        };
        const s = await updatePolicy(model, opt, seqs(), {
          epochs: 1, miniBatches: 1, microBatchSize: micro, lossAggregation: mode, maxLen: 8, epsLow: 0.2, epsHigh: 0.28,
          dualClip: 0, klBeta: 0, padId: 0, seed: 1, lr: 0,
        }, { onSkip: () => { throw new Error('unexpected skip'); }, onApplied: () => {} });
        grads.push(await Promise.all(gradsNow));
        losses.push(s.loss);
        opt.dispose();
        model.dispose();
      }
      expect(losses[1], mode).toBeCloseTo(losses[0], 10);
      grads[0].forEach((g, i) => g.forEach((v, j) => expect(grads[1][i][j], `${mode} grad ${i}[${j}]`).toBeCloseTo(v, 10)));
    }
  });

  it('a run killed after a checkpoint and resumed gives the same metrics as an uninterrupted run, no line lost or duplicated', async () => {
    T.setBackend(backends[backends.length - 1].backend);
    const whole = tmp();
    await runTo(whole, { rl: { steps: 4 }, checkpoint: { every: 2 }, eval: { every: 0 } });
    const cut = tmp();
    const cfg = resolveTrainConfig(TINY, { rl: { steps: 4 }, checkpoint: { every: 2 }, eval: { every: 0 } });
    // First process: dies during step 3 (after the step-2 checkpoint and after writing a metrics line past it).
    {
      const { task, model } = buildTaskAndModel(cfg);
      const store = silentStore(cut, cfg);
      const appendMetrics = store.appendMetrics.bind(store);
      store.appendMetrics = (r) => { appendMetrics(r); if (r.step === 3) throw new Error('killed'); };
      const trainer = new Trainer(cfg, task, freshParts(cfg, model), store);
      await expect(trainer.run()).rejects.toThrow('killed');
      trainer.dispose();
    }
    expect(readJsonl(join(cut, 'metrics.jsonl')).map((m) => m.step)).toEqual([1, 2, 3]);
    // Second process: --resume.
    {
      const restored = restoreRun(cut, false)!;
      expect(restored.state.rlStep).toBe(2);
      const { task, model } = buildTaskAndModel(cfg);
      model.dispose();
      const optimizer = optimizerForResume(cfg, restored.model, restored.state);
      restoreOptimizer(optimizer, restored);
      const trainer = new Trainer(cfg, task, { model: restored.model, optimizer, state: restored.state, reference: null }, new NodeRunStore(cut, 2));
      await trainer.run();
      trainer.dispose();
    }
    const strip = (rs: Record<string, unknown>[]) => rs.map(({ step, policy_loss, reward_mean, accuracy, grad_norm, entropy, clip_frac_high }) =>
      ({ step, policy_loss, reward_mean, accuracy, grad_norm, entropy, clip_frac_high }));
    expect(strip(readJsonl(join(cut, 'metrics.jsonl')))).toEqual(strip(readJsonl(join(whole, 'metrics.jsonl'))));
    const evals = (d: string) => readJsonl(join(d, 'eval.jsonl')).map(({ step, phase, accuracy }) => ({ step, phase, accuracy }));
    expect(evals(cut)).toEqual(evals(whole));
  });

  it('non-finite losses skip the step, are logged, and stop the run after rl.maxBadSteps in a row', async () => {
    T.setBackend(backends[backends.length - 1].backend);
    const dir = tmp();
    const cfg = resolveTrainConfig(TINY, { rl: { lr: 1e30, maxBadSteps: 2, dynamicSampling: 'off', warmupSteps: 0 }, sft: { steps: 1 } });
    const { task, model } = buildTaskAndModel(cfg);
    const logs: string[] = [];
    const store = NodeRunStore.create(dir, cfg, { force: true, log: (l) => logs.push(l) });
    const trainer = new Trainer(cfg, task, freshParts(cfg, model), store);
    await expect(trainer.run()).rejects.toBeInstanceOf(TrainingStopped);
    trainer.dispose();
    expect(logs.some((l) => l.includes('skipped a non-finite step'))).toBe(true);
  });

  it('a skipped SFT step that stops the run is in sft.jsonl too, and non-finite weights are never checkpointed', async () => {
    T.setBackend(backends[backends.length - 1].backend);
    const dir = tmp();
    const cfg = resolveTrainConfig(TINY, { sft: { steps: 5 }, rl: { maxBadSteps: 3 } });
    const { task, model } = buildTaskAndModel(cfg);
    // A NaN weight: every SFT loss is NaN, every step skipped.
    const [name, weight] = [...model.params][0];
    const poisoned = T.keep(T.tensor(new Float32Array(weight.size).fill(Number.NaN), weight.shape).requireGrad());
    poisoned.name = name;
    model.params.set(name, poisoned);
    weight.dispose();
    const store = NodeRunStore.create(dir, cfg, { force: true });
    const trainer = new Trainer(cfg, task, freshParts(cfg, model), store);
    await expect(trainer.run()).rejects.toThrow(/3 non-finite steps in a row/);
    trainer.dispose();
    expect(readJsonl(join(dir, 'sft.jsonl')).map((line) => [line.step, line.skipped])).toEqual([[1, true], [2, true], [3, true]]);
    expect(store.lastCheckpoint).toBeNull();
  });

  it('rotation keeps the newest good checkpoints: a damaged directory beyond the run cannot push them out', async () => {
    T.setBackend(backends[backends.length - 1].backend);
    const dir = tmp();
    const cfg = resolveTrainConfig(TINY, { rl: { steps: 2 }, checkpoint: { every: 1, keep: 1 }, eval: { every: 0 } });
    const { task, model } = buildTaskAndModel(cfg);
    const store = silentStore(dir, cfg);
    // Left by an earlier history of the run (a resume fell back from it): a checkpoint newer than anything this run has.
    mkdirSync(join(dir, 'checkpoints', 'step-000009'));
    const saved: string[][] = [];
    const save = store.saveCheckpoint.bind(store);
    store.saveCheckpoint = async (checkpoint) => {
      await save(checkpoint);
      saved.push(readdirSync(join(dir, 'checkpoints')).filter((entry) => entry.startsWith('step-')).sort());
    };
    const trainer = new Trainer(cfg, task, freshParts(cfg, model), store);
    await trainer.run();
    trainer.dispose();
    expect(saved).toEqual([
      ['step-000000', 'step-000009'], ['step-000001', 'step-000009'], ['step-000002', 'step-000009'], ['step-000002-final', 'step-000009'],
    ]);
  });

  it('a step that makes the weights non-finite stops the run before anything saves them', async () => {
    T.setBackend(backends[backends.length - 1].backend);
    const dir = tmp();
    const cfg = resolveTrainConfig(TINY, { rl: { lr: 1e38, warmupSteps: 0, dynamicSampling: 'off' }, sft: { steps: 1 } });
    const { task, model } = buildTaskAndModel(cfg);
    const store = NodeRunStore.create(dir, cfg, { force: true });
    const trainer = new Trainer(cfg, task, freshParts(cfg, model), store);
    await expect(trainer.run()).rejects.toThrow(/RL step 1 made the weights non-finite/);
    trainer.dispose();
    expect(store.lastCheckpoint).toBe('step-000000');
    expect(readdirSync(join(dir, 'checkpoints')).filter((entry) => entry.startsWith('step-'))).toEqual(['step-000000']);
    const restored = restoreRun(dir, false)!;
    expect(restored.state.rlStep).toBe(0);
    restored.model.dispose();
    restored.optimizerState.forEach((moment) => moment.dispose());
  });
});
