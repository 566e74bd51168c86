// Ctrl-C and SIGTERM during `dapo train` (the built CLI, as a user runs it): the run stops at a step boundary with no
// half-written checkpoint, says how to resume and from which step, exits 130 (SIGINT) or 143 (SIGTERM); a second
// Ctrl-C quits at once; `--resume` then finishes the run with the same metrics as an uninterrupted one.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dapo } from '../support/cli.js';
import { listenForInterrupts } from '../../cli/train.js';
import { repoPath } from '../support/paths.js';

const STEPS = 30;
const TINY = {
  model: { dModel: 32, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 64, maxSeqLen: 48 },
  sft: { steps: 4, batchSize: 8, warmupSteps: 1 },
  rl: { steps: STEPS, promptsPerStep: 2, groupSize: 4, maxGenerationBatches: 2, maxNewTokens: 16, microBatchSize: 4, warmupSteps: 1 },
  eval: { every: 0, problems: 4, passK: 2, samplesPerProblem: 2 },
  checkpoint: { every: 2, keep: 2 },
};

interface Exit { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Starts `dapo train`; `interrupt` runs once metrics.jsonl has `afterLines` lines. */
function trainAndInterrupt(args: string[], metricsPath: string, afterLines: number, interrupt: (child: ChildProcess) => void): Promise<Exit> {
  const child = spawn(process.execPath, [repoPath('dist/cli/main.js'), 'train', ...args], { env: { ...process.env, DAPO_BACKEND: 'wasm' } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => { stdout += chunk; });
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const poll = setInterval(() => {
    const lines = existsSync(metricsPath) ? readFileSync(metricsPath, 'utf8').split('\n').filter(Boolean).length : 0;
    if (lines >= afterLines) {
      clearInterval(poll);
      interrupt(child);
    }
  }, 20);
  return new Promise((resolve) => child.on('exit', (code, signal) => {
    clearInterval(poll);
    resolve({ code, signal, stdout, stderr });
  }));
}

const metricLines = (runDir: string) => readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line));
/** The fields of a metrics line that do not depend on timing. */
const deterministic = (record: Record<string, unknown>) => Object.fromEntries(Object.entries(record).filter(([key]) => !/(_s|_per_s|bytes)$/.test(key)));
const latestStep = (runDir: string) => Number(/step-(\d+)/.exec(JSON.parse(readFileSync(join(runDir, 'checkpoints', 'latest.json'), 'utf8')).checkpoint)![1]);
const leftovers = (runDir: string) => readdirSync(join(runDir, 'checkpoints')).filter((entry) => entry.includes('.tmp'));

describe('dapo train interrupted', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dapo-interrupt-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const configPath = join(dir, 'tiny.json');
  writeFileSync(configPath, JSON.stringify(TINY));
  const reference = join(dir, 'uninterrupted');

  it('SIGINT after the first metrics lines: exits 130 at a step boundary, names the checkpoint; --resume gives the uninterrupted metrics', async () => {
    const runDir = join(dir, 'sigint');
    const r = await trainAndInterrupt(['--config', configPath, '--out', runDir, '--no-plots'], join(runDir, 'metrics.jsonl'), 3, (child) => child.kill('SIGINT'));
    expect(r.code, r.stderr).toBe(130);
    const step = latestStep(runDir);
    expect(step).toBeGreaterThanOrEqual(2);
    expect(step).toBeLessThan(STEPS);
    expect(r.stderr).toContain(`dapo: interrupted — resume with dapo train --resume ${runDir} (last checkpoint: step ${step})`);
    expect(r.stderr).toMatch(/SIGINT: stopping after the current step/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(leftovers(runDir)).toEqual([]);
    const lines = metricLines(runDir);
    expect(lines.length).toBeLessThan(STEPS);

    const resumed = await dapo(['train', '--resume', runDir, '--quiet', '--no-plots']);
    expect(resumed.code, resumed.stderr).toBe(0);
    const after = metricLines(runDir);
    expect(after.map((record) => record.step)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));

    const full = await dapo(['train', '--config', configPath, '--out', reference, '--quiet', '--no-plots']);
    expect(full.code, full.stderr).toBe(0);
    expect(after.map(deterministic)).toEqual(metricLines(reference).map(deterministic));
  });

  it('SIGTERM exits 143 with the same message; before any checkpoint it says the resumed run starts over', async () => {
    const runDir = join(dir, 'sigterm');
    // SFT is long here, so the signal lands before the first checkpoint (it is written after the warm-up).
    const r = await trainAndInterrupt(['--config', configPath, '--set', 'sft.steps=400', '--out', runDir, '--no-plots', '--quiet'], join(runDir, 'sft.jsonl'), 1,
      (child) => child.kill('SIGTERM'));
    expect(r.code, r.stderr).toBe(143);
    expect(r.stderr).toContain(`dapo: interrupted — resume with dapo train --resume ${runDir} (no checkpoint yet: the resumed run starts over)`);
    expect(existsSync(join(runDir, 'checkpoints', 'latest.json'))).toBe(false);
  });

  it('the first signal hands SIGINT and SIGTERM back to their default action, so a second one ends the process at once', () => {
    const before = { int: process.listenerCount('SIGINT'), term: process.listenerCount('SIGTERM') };
    const lines: string[] = [];
    const interrupts = listenForInterrupts((line) => lines.push(line));
    try {
      expect(process.listenerCount('SIGINT')).toBe(before.int + 1);
      expect(process.listenerCount('SIGTERM')).toBe(before.term + 1);
      process.emit('SIGINT');
      expect(interrupts.signal.aborted).toBe(true);
      expect(interrupts.received).toBe('SIGINT');
      expect(lines).toEqual(['SIGINT: stopping after the current step (Ctrl-C again quits at once)']);
      // No listener of ours is left: the next signal takes the default action (the process ends), not a handler
      // that waits for the event loop.
      expect(process.listenerCount('SIGINT')).toBe(before.int);
      expect(process.listenerCount('SIGTERM')).toBe(before.term);
    } finally {
      interrupts.dispose();
    }
  });
});
