// The `dapo` CLI as a user drives it (the built dist/cli/main.js): train a tiny run, evaluate, sample and plot it,
// resume a finished run, and get clear errors for bad flags, bad config values and bad paths.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dapo } from '../support/cli.js';

const TINY = {
  model: { dModel: 32, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 64, maxSeqLen: 48 },
  sft: { steps: 6, batchSize: 8, warmupSteps: 1 },
  rl: { steps: 2, promptsPerStep: 2, groupSize: 4, maxGenerationBatches: 2, maxNewTokens: 16, microBatchSize: 4, warmupSteps: 1 },
  eval: { every: 1, problems: 4, passK: 2, samplesPerProblem: 2 },
  checkpoint: { every: 1, keep: 2 },
};

describe('dapo CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dapo-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const configPath = join(dir, 'tiny.json');
  writeFileSync(configPath, JSON.stringify(TINY));
  const runDir = join(dir, 'run');

  it('dapo train writes a complete run directory with plots and prints both accuracies', async () => {
    const r = await dapo(['train', '--config', configPath, '--out', runDir, '--seed', '4', '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/after SFT \d+\.\d% → after DAPO \d+\.\d%/);
    for (const f of ['config.json', 'metrics.jsonl', 'eval.jsonl', 'sft.jsonl', 'checkpoints/latest.json']) expect(existsSync(join(runDir, f)), f).toBe(true);
    const config = JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8'));
    expect(config.seed).toBe(4);
    expect(config.rl.epsHigh).toBe(0.28);
    const plots = readdirSync(join(runDir, 'plots'));
    for (const p of ['policy_loss', 'entropy_loss', 'reward', 'entropy', 'resample_rate', 'response_length', 'accuracy']) {
      expect(plots.some((f) => f.startsWith(p) && f.endsWith('.svg')), `${p}.svg in ${plots.join(' ')}`).toBe(true);
      expect(plots.some((f) => f.startsWith(p) && f.endsWith('.png')), `${p}.png`).toBe(true);
    }
    const ckpts = readdirSync(join(runDir, 'checkpoints')).filter((d) => d.startsWith('step-'));
    expect(ckpts.length, ckpts.join(' ')).toBe(2);
  });

  it('dapo eval / sample / plot read the run; --resume of a finished run changes nothing', async () => {
    const e = await dapo(['eval', runDir, '--problems', '3', '-k', '2', '--json']);
    expect(e.code, e.stderr).toBe(0);
    const res = JSON.parse(e.stdout.trim().split('\n').pop()!);
    expect(res.n).toBe(3);
    expect(res.accuracy).toBeGreaterThanOrEqual(0);
    const s = await dapo(['sample', runDir, '-n', '2']);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout.trim().split('\n').filter((l) => /^[✓✗]/.test(l))).toHaveLength(2);
    const before = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8');
    const again = await dapo(['train', '--resume', runDir, '--quiet', '--no-plots']);
    expect(again.code, again.stderr).toBe(0);
    expect(readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')).toBe(before);
    const p = await dapo(['plot', runDir]);
    expect(p.code, p.stderr).toBe(0);
  });

  it('dapo compare: one shared warm-up per seed, DAPO and GRPO with the same sample budget, table and plots', async () => {
    const out = join(dir, 'cmp');
    const r = await dapo(['compare', '--seeds', '1,2', '--config', configPath, '--out', out, '--set', 'eval.every=0']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/sample budget per run: 16 responses/);
    for (const d of ['sft-s1', 'dapo-s1', 'grpo-s1', 'sft-s2', 'dapo-s2', 'grpo-s2']) expect(existsSync(join(out, d, 'config.json')), d).toBe(true);
    const grpo = JSON.parse(readFileSync(join(out, 'grpo-s1', 'config.json'), 'utf8'));
    expect([grpo.rl.epsHigh, grpo.rl.lossAggregation, grpo.rl.dynamicSampling, grpo.sft.steps]).toEqual([0.2, 'seq-mean-token-mean', 'off', 0]);
    expect(grpo.init).toContain(join('sft-s1', 'checkpoints'));
    // Both start from the same policy: the same step-0 evaluation.
    const evalAt0 = (d: string) => JSON.parse(readFileSync(join(out, d, 'eval.jsonl'), 'utf8').split('\n')[0]).accuracy;
    expect(evalAt0('dapo-s1')).toBe(evalAt0('grpo-s1'));
    const samples = (d: string) => readFileSync(join(out, d, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).samples_total as number).pop()!;
    expect(samples('grpo-s1')).toBe(16);
    expect(samples('dapo-s1')).toBeGreaterThanOrEqual(16);
    const table = readFileSync(join(out, 'compare.md'), 'utf8');
    expect(table).toContain('dapo');
    expect(table).toContain('grpo');
  });

  it('bad flags, config values and paths give clear errors that name the problem', async () => {
    const bad = await dapo(['train', '--set', 'rl.epsHigh=-1', '--set', 'rl.lossAggregation=mean', '--set', 'rl.clipHigh=3', '--out', join(dir, 'x')]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('rl.epsHigh');
    expect(bad.stderr).toContain('rl.lossAggregation');
    expect(bad.stderr).toContain('rl.clipHigh');
    const exists = await dapo(['train', '--config', configPath, '--out', runDir]);
    expect(exists.code).not.toBe(0);
    expect(exists.stderr).toContain('--resume');
    const missing = await dapo(['eval', join(dir, 'nope')]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('does not exist');
    const resumeBad = await dapo(['train', '--resume', join(dir, 'nope')]);
    expect(resumeBad.code).not.toBe(0);
    expect(resumeBad.stderr).toMatch(/not a run directory/);
  });
});
