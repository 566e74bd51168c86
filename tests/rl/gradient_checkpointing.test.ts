// gradientCheckpointing (HF's gradient_checkpointing): the config key's values and its refusal with LoRA dropout, and a
// whole tiny run (SFT warm-up and DAPO updates) that gives the same losses, gradient norms and final weights with it
// on as off — checkpointing changes only what is kept between forward and backward.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import * as T from '../../src/tensor/index.js';
import { resolveTrainConfig } from '../../src/rl/config.js';
import { Trainer, buildTaskAndModel, freshParts } from '../../src/rl/trainer.js';
import { NodeRunStore, readJsonl } from '../../src/rl/run_dir_node.js';
import { problemsOf } from '../support/config_problems.js';

describe('gradientCheckpointing config key', () => {
  it("is off by default and takes true, false or 'auto' (also as --set gradientCheckpointing=…)", () => {
    expect(resolveTrainConfig().gradientCheckpointing).toBe(false);
    for (const value of [true, false, 'auto'] as const) expect(resolveTrainConfig({ gradientCheckpointing: value }).gradientCheckpointing).toBe(value);
    expect(problemsOf(() => resolveTrainConfig({ gradientCheckpointing: 'yes' }))).toEqual([
      "gradientCheckpointing: must be true, false or 'auto' (on only when the run would not fit otherwise), got \"yes\"",
    ]);
    expect(problemsOf(() => resolveTrainConfig({ gradient_checkpointing: true }))[0]).toMatch(/^gradient_checkpointing: unknown key \(did you mean 'gradientCheckpointing'\?\)/);
  });

  it('true with LoRA dropout > 0 is refused up front, saying what to change; dropout 0 or auto is accepted', () => {
    const lora = { model: { path: 'm' }, task: { name: 'gsm8k', path: 't.jsonl' }, lora: { r: 8 } };
    expect(problemsOf(() => resolveTrainConfig(lora, { gradientCheckpointing: true }))).toEqual([
      'gradientCheckpointing: true recomputes each decoder block in backward, where LoRA dropout would draw a different random mask; set lora.dropout 0 (--set lora.dropout=0) or gradientCheckpointing false, got lora.dropout 0.05',
    ]);
    expect(resolveTrainConfig(lora, { gradientCheckpointing: true, lora: { dropout: 0 } }).gradientCheckpointing).toBe(true);
    expect(resolveTrainConfig(lora, { gradientCheckpointing: 'auto' }).gradientCheckpointing).toBe('auto');
  });
});

describe('a run with gradientCheckpointing', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const TINY = {
    seed: 5,
    model: { dModel: 16, nLayers: 3, nHeads: 2, nKvHeads: 1, ffnDim: 32, maxSeqLen: 40 },
    task: { name: 'addition' },
    sft: { steps: 3, batchSize: 4, lr: 3e-3, warmupSteps: 1 },
    rl: { steps: 2, promptsPerStep: 2, groupSize: 4, maxNewTokens: 12, microBatchSize: 4, miniBatches: 2, lr: 1e-3, warmupSteps: 1, dynamicSampling: 'off' },
    eval: { every: 0, problems: 4, passK: 1, samplesPerProblem: 1 },
    checkpoint: { every: 0, keep: 1 },
  };

  async function run(gradientCheckpointing: boolean) {
    const dir = mkdtempSync(join(tmpdir(), 'dapo-ckpt-'));
    dirs.push(dir);
    const cfg = resolveTrainConfig(TINY, { gradientCheckpointing });
    const { task, model } = buildTaskAndModel(cfg);
    const trainer = new Trainer(cfg, task, freshParts(cfg, model), NodeRunStore.create(dir, cfg, { force: true }));
    expect(trainer.model.checkpointActivations).toBe(gradientCheckpointing);
    await trainer.run();
    const weights = await Promise.all([...trainer.model.params].map(async ([name, p]) => [name, await p.toArray()] as const));
    trainer.dispose();
    return { sft: readJsonl(join(dir, 'sft.jsonl')), metrics: readJsonl(join(dir, 'metrics.jsonl')), weights };
  }

  it('gives the same SFT losses, DAPO losses, gradient norms and final weights as without (reference backend)', async () => {
    const backend = new ReferenceBackend();
    T.setBackend(backend);
    const off = await run(false);
    const on = await run(true);
    expect(on.sft).toHaveLength(3);
    expect(on.metrics.map((m) => m.step)).toEqual([1, 2]);
    on.sft.forEach((r, i) => {
      expect(r.loss as number).toBeCloseTo(off.sft[i].loss as number, 10);
      expect(r.grad_norm as number).toBeCloseTo(off.sft[i].grad_norm as number, 10);
    });
    on.metrics.forEach((m, i) => {
      for (const key of ['policy_loss', 'grad_norm', 'entropy', 'reward_mean']) expect(m[key] as number, `step ${i + 1} ${key}`).toBeCloseTo(off.metrics[i][key] as number, 10);
    });
    on.weights.forEach(([name, w], i) => w.forEach((v, j) => { if (Math.abs(v - off.weights[i][1][j]) > 1e-10) throw new Error(`${name}[${j}]: ${v} vs ${off.weights[i][1][j]}`); }));
    expect(backend.memory().liveBuffers).toBe(0);
  });
});
