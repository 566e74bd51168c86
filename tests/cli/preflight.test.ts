// Everything `dapo train` can check is checked before a run directory exists (or the stub goes again), so the same
// --out works once the problem is fixed: unknown task (before the GPU probe, and with --print-config too), bad task
// knobs, a vocabulary too small, a missing --init, a bad --model directory, a model too big for memory, absurd step
// counts, and an --out where nothing can be written (/proc: no recursive-mkdir hang).
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dapo } from '../support/cli.js';

const TINY = {
  model: { dModel: 32, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 64, maxSeqLen: 48 },
  sft: { steps: 2, batchSize: 8, warmupSteps: 1 },
  rl: { steps: 1, promptsPerStep: 2, groupSize: 4, maxGenerationBatches: 2, maxNewTokens: 16, microBatchSize: 4, warmupSteps: 1 },
  eval: { every: 0, problems: 2, passK: 2, samplesPerProblem: 2 },
  checkpoint: { every: 1, keep: 2 },
};

describe('dapo train pre-flight checks', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dapo-preflight-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const configPath = join(dir, 'tiny.json');
  writeFileSync(configPath, JSON.stringify(TINY));
  const out = join(dir, 'run');
  const train = (...args: string[]) => dapo(['train', '--config', configPath, '--out', out, '--quiet', '--no-plots', ...args]);

  it('an unknown task fails before the GPU probe, and --print-config fails with it', async () => {
    const r = await train('--task', 'foo');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('unknown task "foo" (allowed: addition');
    expect(r.stderr).not.toMatch(/backend:|artificially reduced/);
    expect(existsSync(out)).toBe(false);
    const printed = await dapo(['train', '--task', 'nope', '--print-config']);
    expect(printed.code).toBe(1);
    expect(printed.stdout).toBe('');
    expect(printed.stderr).toContain('unknown task "nope"');
  });

  it('bad values leave no run directory behind; the same --out then works without --resume', async () => {
    const cases: [string[], RegExp][] = [
      [['--set', 'task.maxDigits=50'], /maxDigits must be an integer in \[1, 18\], got 50/],
      [['--set', 'model.vocabSize=10'], /model\.vocabSize 10 is smaller than the task tokenizer's 32/],
      [['--init', join(dir, 'no-such-checkpoint')], /init: .*no-such-checkpoint\/model\.safetensors does not exist/],
      [['--set', 'model.dModel=65536', '--set', 'model.ffnDim=65536'], /^dapo: the run does not fit in memory:[^]*use a smaller model: its weights, gradients and optimizer state alone take/m],
      [['--set', 'rl.steps=1e300'], /rl\.steps: must be ≤ 10000000 .*: a count this large never ends, got 1e\+300/],
      [['--set', 'sft.steps=2.5', '--set', 'eval.every=20000000'], /sft\.steps: must be an integer ≥ 0 .*got 2\.5[^]*eval\.every: must be ≤ 10000000/],
    ];
    for (const [args, message] of cases) {
      const r = await train(...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr, args.join(' ')).not.toMatch(/\n\s+at /);
      expect(existsSync(out), `${args.join(' ')} left ${out}`).toBe(false);
    }
    const ok = await train();
    expect(ok.code, ok.stderr).toBe(0);
    expect(existsSync(join(out, 'checkpoints', 'latest.json'))).toBe(true);
  });

  it('a bad --model directory leaves nothing behind', async () => {
    const data = join(dir, 'train.jsonl');
    writeFileSync(data, `${JSON.stringify({ question: 'What is 1+1?', answer: '#### 2' })}\n`);
    const target = join(dir, 'pretrained-run');
    const r = await dapo(['train', '--task', 'gsm8k', '--set', `task.path=${data}`, '--model', join(dir, 'no-such-model'), '--out', target, '--quiet']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no-such-model');
    expect(existsSync(target)).toBe(false);
  });

  it('a failure after the run directory was made empties a directory the user made, and removes one it made', async () => {
    const mine = join(dir, 'made-by-me');
    mkdirSync(mine);
    const r = await dapo(['train', '--config', configPath, '--out', mine, '--set', 'model.vocabSize=10', '--quiet']);
    expect(r.code).toBe(1);
    expect(readdirSync(mine)).toEqual([]);
    const nested = join(dir, 'a', 'b', 'c');
    const n = await dapo(['train', '--config', configPath, '--out', nested, '--set', 'model.vocabSize=10', '--quiet']);
    expect(n.code).toBe(1);
    expect(existsSync(join(dir, 'a'))).toBe(false);
  });

  it('an --out where nothing can be written fails at once with the cause (no recursive-mkdir hang on /proc)', async () => {
    const cases: [string, string][] = [
      ['/proc/dapo-run', 'cannot create run directory /proc/dapo-run (/proc does not take new directories: ENOENT)'],
      ['/dev/null/run', 'cannot create run directory /dev/null/run (/dev/null is a file, not a directory: ENOTDIR)'],
    ];
    if (existsSync('/sys/kernel')) cases.push(['/sys/dapo-run', 'cannot create run directory /sys/dapo-run (operation not permitted: EPERM)']);
    for (const [place, message] of cases) {
      const started = performance.now();
      const r = await dapo(['train', '--config', configPath, '--out', place, '--quiet']);
      expect(r.code, place).toBe(1);
      expect(r.stderr.trim(), place).toBe(`dapo: ${message}`);
      expect(performance.now() - started, place).toBeLessThan(60_000);
    }
  });
});
