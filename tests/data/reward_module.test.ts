// User rewards as modules: the function a module exports (default or `reward`), imported by path in Node; every
// value checked finite, with errors naming the module and the sample; float rewards through the trainer (dynamic
// sampling keeps groups whose rewards differ, DAPO's per-prompt criterion), and the +1/−1 rule left as it was.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import { parseJsonlRecords } from '../../src/data/datasets.js';
import { MATH_TASK_DEFAULTS, mathRecordsFromRows, mathTask } from '../../src/data/math_task.js';
import { type RewardFunction, checkedReward, rewardFromModule, withReward } from '../../src/data/reward_module.js';
import { loadRewardModule } from '../../src/data/reward_module_node.js';
import { makeTask } from '../../src/data/tasks.js';
import type { Task } from '../../src/data/task.js';
import { CharTokenizer } from '../../src/data/tokenizer.js';
import { GroupFilter } from '../../src/rl/dynamic_sampling.js';
import { resolveTrainConfig, configLayersFrom } from '../../src/rl/config.js';
import { MemoryRunStore } from '../../src/rl/memory_store.js';
import { type RolloutGroup, type Response, flatnessRewards, groupKindOf } from '../../src/rl/rollout.js';
import { Trainer, buildTaskAndModel, freshParts } from '../../src/rl/trainer.js';
import * as T from '../../src/tensor/index.js';
import { runTrain } from '../../cli/train.js';

const dirs: string[] = [];
const tmp = () => { const dir = mkdtempSync(join(tmpdir(), 'dapo-reward-')); dirs.push(dir); return dir; };
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function moduleFile(name: string, source: string): string {
  const path = join(tmp(), name);
  writeFileSync(path, source);
  return path;
}

describe('reward modules', () => {
  it('takes the default export, else the named `reward`, and says what a module exports when it has neither', () => {
    const f: RewardFunction = () => 1;
    const g: RewardFunction = () => 2;
    expect(rewardFromModule({ default: f, reward: g }, 'm.mjs')).toBe(f);
    expect(rewardFromModule({ reward: g, other: 1 }, 'm.mjs')).toBe(g);
    expect(() => rewardFromModule({ score: f, helper: 3 }, 'my_reward.mjs'))
      .toThrow("reward module my_reward.mjs: export the reward function as default or as 'reward' ((prompt, completion, record) => number); it exports 'score', 'helper'");
  });

  it('imports a module by path in Node: default, named, async and CommonJS exports', async () => {
    const defaultExport = await loadRewardModule(moduleFile('a.mjs', 'export default (prompt, completion) => completion.length / 10;'));
    expect(defaultExport('p', 'abc', {})).toBeCloseTo(0.3);
    const named = await loadRewardModule(moduleFile('b.mjs', 'export async function reward(prompt, completion, record) { return record.answer === completion ? 1 : -0.5; }'));
    expect(await named('p', '7', { answer: '7' })).toBe(1);
    const common = await loadRewardModule(moduleFile('c.cjs', 'module.exports = () => 0.25;'));
    expect(common('p', 'c', {})).toBe(0.25);
  });

  it('names the file when a module is missing, TypeScript, broken or exports no function', async () => {
    await expect(loadRewardModule(join(tmp(), 'nope.mjs'))).rejects.toThrow(/reward module .*nope\.mjs does not exist/);
    await expect(loadRewardModule(moduleFile('r.ts', 'export default () => 1;'))).rejects.toThrow(/r\.ts: Node cannot import TypeScript directly; compile it to \.mjs first/);
    await expect(loadRewardModule(moduleFile('bad.mjs', 'export default (=> 1;'))).rejects.toThrow(/reward module .*bad\.mjs failed to load: /);
    await expect(loadRewardModule(moduleFile('none.mjs', 'export const weight = 2;'))).rejects.toThrow(/none\.mjs: export the reward function .*it exports 'weight'/);
  });

  it('checks every value: a non-finite or non-number reward, or a throw, names the module and the sample', async () => {
    const problem = { id: 'math:train:4', prompt: 'What is 2+2?', answer: '4', solution: '\\boxed{4}', record: { question: 'What is 2+2?' } };
    const seen: unknown[] = [];
    expect(await checkedReward((p, c, r) => { seen.push([p, c, r]); return 0.5; }, 'r.mjs', problem, '\\boxed{4}')).toBe(0.5);
    expect(seen).toEqual([['What is 2+2?', '\\boxed{4}', { question: 'What is 2+2?' }]]);
    await expect(checkedReward(() => NaN, 'my_reward.mjs', problem, 'so 5'))
      .rejects.toThrow('reward module my_reward.mjs returned NaN on problem math:train:4, completion "so 5": a reward must be a finite number');
    await expect(checkedReward(() => Infinity, 'm.mjs', problem, 'x')).rejects.toThrow(/returned Infinity on problem math:train:4/);
    await expect(checkedReward((() => '1') as unknown as RewardFunction, 'm.mjs', problem, 'x')).rejects.toThrow(/returned "1" on problem/);
    await expect(checkedReward(async () => undefined as unknown as number, 'm.mjs', problem, 'x')).rejects.toThrow(/returned undefined on problem/);
    await expect(checkedReward(() => { throw new Error('no key'); }, 'm.mjs', problem, 'x')).rejects.toThrow('reward module m.mjs threw on problem math:train:4, completion "x": no key');
  });

  it('wraps a task: same problems, checker and sizes, the reward from the function; a built-in problem is its own record', async () => {
    const base = makeTask({ name: 'addition', maxDigits: 2 });
    const records: unknown[] = [];
    const task = withReward(base, (prompt, completion, record) => { records.push(record); return completion.length; }, 'len.mjs');
    const problem = task.problem('train', 3);
    expect(problem).toEqual(base.problem('train', 3));
    expect([task.name, task.testSize, task.maxPromptLength, task.tokenizer]).toEqual([base.name, base.testSize, base.maxPromptLength, base.tokenizer]);
    expect(task.score(problem, `>${problem.answer}`)).toEqual(base.score(problem, `>${problem.answer}`));
    expect(await task.reward!(problem, 'abc')).toBe(3);
    expect(records[0]).toEqual({ id: problem.id, prompt: problem.prompt, answer: problem.answer, solution: problem.solution });
    expect((base as Task).reward).toBeUndefined();
  });
});

describe('float rewards in dynamic sampling', () => {
  const response = (correct: boolean, reward: number, rawReward?: number): Response =>
    ({ ids: [], logprobs: [], text: '', truncated: false, correct, reward, ...(rawReward !== undefined ? { rawReward } : {}) });
  const group = (...responses: Response[]): RolloutGroup => ({ promptIndex: 0, problem: { id: 'p', prompt: '', answer: '', solution: '' }, promptIds: [], responses });

  it('classifies +1/−1 groups by correctness (length-shaped rewards do not count) and float groups by reward spread', () => {
    expect(groupKindOf(group(response(true, 1), response(true, 0.7)))).toBe('all-correct');
    expect(groupKindOf(group(response(true, 1), response(false, -1)))).toBe('mixed');
    expect(groupKindOf(group(response(false, 0.3, 0.3), response(false, 0.9, 0.9)))).toBe('mixed');
    expect(groupKindOf(group(response(true, 0.5, 0.5), response(true, 0.5, 0.5)))).toBe('all-correct');
    expect(groupKindOf(group(response(true, 0, 0), response(false, -0.2, 0)))).toBe('all-wrong');
    expect(flatnessRewards(group(response(true, 0.8), response(false, -1.1)))).toEqual([1, -1]);
    expect(flatnessRewards(group(response(true, 0.8, 0.25), response(false, -1.1, 0.5)))).toEqual([0.25, 0.5]);
  });

  it('GroupFilter takes a group kind as well as per-response correctness', async () => {
    const filter = new GroupFilter<RolloutGroup>({ trainGroups: 1, maxGenerationBatches: 1, mode: 'filter' });
    const flat = group(response(false, 0.5, 0.5), response(false, 0.5, 0.5));
    const spread = group(response(false, 0.1, 0.1), response(false, 0.5, 0.5));
    const { groups, report } = await filter.fill(async () => [flat, spread], groupKindOf);
    expect(groups).toEqual([spread]);
    expect(report.droppedAllCorrect).toBe(1);
  });
});

describe('training with a reward module', () => {
  const backend = new ReferenceBackend();
  beforeAll(() => T.setBackend(backend));
  afterAll(() => backend.destroy());

  it('trains a dataset task on float rewards from a module; the metrics carry them', async () => {
    const rows = parseJsonlRecords(Array.from({ length: 12 }, (_, i) => JSON.stringify({ question: `${i}+1`, answer: `#### ${i + 1}` })).join('\n'), 'tiny.jsonl');
    const records = mathRecordsFromRows(rows, { ...MATH_TASK_DEFAULTS.gsm8k, solutionField: null }, 'tiny.jsonl');
    const tokenizer = CharTokenizer.fromTexts(['0123456789+=\n\\boxed{}Theanswris .', ...records.map((r) => r.prompt as string)]);
    const base = mathTask(records, { tokenizer, template: '{question}=', testFraction: 0.2, seed: 1 });
    const calls: [string, string, Record<string, unknown>][] = [];
    const lengthReward: RewardFunction = (prompt, completion, record) => { calls.push([prompt, completion, record]); return completion.length / 8; };
    const task = withReward(base, lengthReward, 'length.mjs');
    const config = resolveTrainConfig({
      seed: 2, model: { vocabSize: tokenizer.vocabSize, dModel: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 32, maxSeqLen: 32 },
      sft: { steps: 0 }, eval: { every: 0, problems: 2, passK: 1, samplesPerProblem: 1 }, checkpoint: { every: 0 },
      rl: { steps: 2, promptsPerStep: 2, groupSize: 4, maxNewTokens: 8, overlongPenalty: false, microBatchSize: 8, miniBatches: 1, maxGenerationBatches: 2 },
    });
    const { task: built, model } = buildTaskAndModel(config, task);
    const store = new MemoryRunStore({ keepWeights: false });
    const trainer = new Trainer(config, built, freshParts(config, model), store);
    try {
      await trainer.run();
    } finally {
      trainer.dispose();
    }
    expect(store.metrics).toHaveLength(2);
    expect(calls.length).toBeGreaterThanOrEqual(2 * 2 * 4);
    expect(calls[0][0]).toMatch(/^\d+\+1=\n$/);
    expect(calls[0][2]).toHaveProperty('question');
    const first = store.metrics[0] as Record<string, number>;
    const firstStepCalls = calls.slice(0, first.samples);
    const mean = firstStepCalls.reduce((sum, [, completion]) => sum + completion.length / 8, 0) / firstStepCalls.length;
    expect(first.reward_mean).toBeCloseTo(mean, 12);
    // Float rewards that differ within a group make it informative: dynamic sampling kept groups and the policy trained.
    expect(store.metrics.map((m) => (m as Record<string, number>).groups_trained)).toEqual([2, 2]);
    expect(first.policy_loss).not.toBeNull();
  });

  it('stops with the module and sample named when a reward is not finite', async () => {
    const task = withReward(makeTask({ name: 'addition', maxDigits: 2 }), () => NaN, 'nan_reward.mjs');
    const config = resolveTrainConfig({
      model: { dModel: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 32, maxSeqLen: 32 }, task: { name: 'addition', maxDigits: 2 },
      sft: { steps: 0 }, eval: { every: 0, problems: 1, passK: 1, samplesPerProblem: 1 }, checkpoint: { every: 0 },
      rl: { steps: 1, promptsPerStep: 1, groupSize: 2, maxNewTokens: 6, overlongCache: 2, microBatchSize: 2, miniBatches: 1 },
    });
    const { task: built, model } = buildTaskAndModel(config, task);
    const trainer = new Trainer(config, built, freshParts(config, model), new MemoryRunStore({ keepWeights: false }));
    try {
      await expect(trainer.run()).rejects.toThrow(/reward module nan_reward\.mjs returned NaN on problem addition:train:\d+, completion ".*": a reward must be a finite number/);
    } finally {
      trainer.dispose();
    }
  });
});

describe('dapo train --reward', () => {
  it('puts the module path in the config (shown by --print-config) and checks it', () => {
    expect(resolveTrainConfig(...configLayersFrom({ reward: './my_reward.mjs' })).reward).toBe('./my_reward.mjs');
    expect(resolveTrainConfig({}).reward).toBeNull();
    expect(() => resolveTrainConfig({ reward: 3 })).toThrow(/reward: must be a reward module path \(\.mjs\) or null, got 3/);
    expect(() => resolveTrainConfig({ rewrad: 'x.mjs' })).toThrow(/rewrad: unknown key \(did you mean 'reward'\?\)/);
    // The library never drops a configured reward silently: the caller imports the module and wraps the task.
    expect(() => buildTaskAndModel(resolveTrainConfig({ reward: 'r.mjs' }))).toThrow(/reward: r\.mjs is a module to import .*withReward/);
  });

  it('fails before the engine starts or a run directory exists when the module is missing', async () => {
    const out = join(tmp(), 'run');
    await expect(runTrain({ reward: join(tmp(), 'missing.mjs'), out, plots: false, quiet: true })).rejects.toThrow(/reward module .*missing\.mjs does not exist/);
    await expect(runTrain({ task: 'gsm8k', set: ['task.path=train.jsonl'], out, plots: false, quiet: true })).rejects.toThrow(/task 'gsm8k' is natural-language text/);
    const { existsSync } = await import('node:fs');
    expect(existsSync(out)).toBe(false);
  });
});
