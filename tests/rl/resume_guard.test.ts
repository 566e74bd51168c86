// A run's data survives damaged run files and diverged training, end to end through the `dapo` CLI: --resume checks
// the whole run before it changes a file, falls back to the newest checkpoint that loads (and says which and why),
// finds checkpoints without latest.json, refuses an edited config or a deleted log, removes what a killed run left
// half-written; every checkpoint file has a SHA-256 checked on load; non-finite or exploded weights stop the run
// before anything saves them, and the post-SFT checkpoint stays loadable.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dapo } from '../support/cli.js';

const TINY = {
  seed: 5,
  model: { dModel: 32, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 64, maxSeqLen: 48 },
  sft: { steps: 6, batchSize: 8, warmupSteps: 1 },
  // Dynamic sampling off: a policy this small rarely makes a mixed group, and every step must update the weights.
  rl: { steps: 4, promptsPerStep: 2, groupSize: 4, dynamicSampling: 'off', maxNewTokens: 16, microBatchSize: 4, warmupSteps: 1 },
  eval: { every: 2, problems: 4, passK: 2, samplesPerProblem: 2 },
  checkpoint: { every: 2, keep: 4 },
};

const sha256 = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex');

/** Every file under `dir` with its SHA-256: equal snapshots mean nothing was changed, added or removed. */
function snapshot(dir: string, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readdirSync(join(dir, prefix)).sort()) {
    const rel = join(prefix, entry);
    if (statSync(join(dir, rel)).isDirectory()) Object.assign(out, snapshot(dir, rel));
    else out[rel] = sha256(readFileSync(join(dir, rel)));
  }
  return out;
}

/** Metrics without the wall-clock fields: what an exact resume must reproduce. */
function metrics(dir: string): Record<string, unknown>[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((line) => {
    const { step, policy_loss, reward_mean, accuracy, grad_norm, entropy, samples_total } = JSON.parse(line);
    return { step, policy_loss, reward_mean, accuracy, grad_norm, entropy, samples_total };
  });
}

/** Rewrites a checkpoint's checksum manifest after an edit, so the check under test is the one past the checksum. */
function rechecksum(checkpointDir: string): void {
  const manifest = join(checkpointDir, 'checksums.sha256');
  const files = readFileSync(manifest, 'utf8').trim().split('\n').map((line) => line.slice(66));
  writeFileSync(manifest, files.map((file) => `${sha256(readFileSync(join(checkpointDir, file)))}  ${file}\n`).join(''));
}

function editState(checkpointDir: string, edit: (state: Record<string, unknown>) => void): void {
  const path = join(checkpointDir, 'trainer_state.json');
  const state = JSON.parse(readFileSync(path, 'utf8'));
  edit(state);
  writeFileSync(path, JSON.stringify(state));
  rechecksum(checkpointDir);
}

/** Overwrites the first value of the first tensor with another finite number (damage no NaN check can see). */
function damageFinite(safetensorsPath: string): void {
  const bytes = readFileSync(safetensorsPath);
  const dataStart = 8 + Number(bytes.readBigUInt64LE(0));
  bytes.writeFloatLE(bytes.readFloatLE(dataStart) + 0.5, dataStart);
  writeFileSync(safetensorsPath, bytes);
}

describe('resume, checkpoints and divergence lose no data', () => {
  const root = mkdtempSync(join(tmpdir(), 'dapo-resume-guard-'));
  const configPath = join(root, 'tiny.json');
  const whole = join(root, 'whole');
  const killed = join(root, 'killed');
  let copies = 0;
  /** A fresh copy of the killed run to damage. */
  const copyOfKilled = () => { const dir = join(root, `case-${copies++}`); cpSync(killed, dir, { recursive: true }); return dir; };
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  beforeAll(async () => {
    writeFileSync(configPath, JSON.stringify(TINY));
    const r = await dapo(['train', '--config', configPath, '--out', whole, '--quiet', '--no-plots']);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(join(whole, 'checkpoints')).sort()).toEqual(['latest.json', 'step-000000', 'step-000002', 'step-000004', 'step-000004-final']);
    // What `kill -9` during RL step 4 leaves: the step-2 checkpoint newest, metrics of step 3 written past it, a
    // half-written checkpoint directory and a temp file of latest.json.
    cpSync(whole, killed, { recursive: true });
    for (const name of ['step-000004', 'step-000004-final']) rmSync(join(killed, 'checkpoints', name), { recursive: true });
    writeFileSync(join(killed, 'checkpoints', 'latest.json'), `${JSON.stringify({ checkpoint: 'step-000002' })}\n`);
    writeFileSync(join(killed, 'metrics.jsonl'), readFileSync(join(whole, 'metrics.jsonl'), 'utf8').split('\n').slice(0, 3).join('\n') + '\n');
    writeFileSync(join(killed, 'eval.jsonl'), readFileSync(join(whole, 'eval.jsonl'), 'utf8').split('\n').filter((l) => l && JSON.parse(l).step <= 2).join('\n') + '\n');
    const deadPid = spawnSync(process.execPath, ['-e', '0']).pid;
    mkdirSync(join(killed, 'checkpoints', `.tmp-step-000004-${deadPid}`));
    writeFileSync(join(killed, 'checkpoints', `.tmp-step-000004-${deadPid}`, 'model.safetensors'), 'half');
    writeFileSync(join(killed, 'checkpoints', `latest.json.tmp-${deadPid}-1`), '{"check');
  }, 300_000);

  it('every checkpoint file has a SHA-256 in checksums.sha256 (the sha256sum format)', () => {
    const dir = join(whole, 'checkpoints', 'step-000002');
    const lines = readFileSync(join(dir, 'checksums.sha256'), 'utf8').trim().split('\n');
    const listed = lines.map((line) => line.slice(66)).sort();
    expect(listed).toEqual(readdirSync(dir).filter((file) => file !== 'checksums.sha256').sort());
    for (const line of lines) expect(line.slice(0, 64), line).toBe(sha256(readFileSync(join(dir, line.slice(66)))));
  });

  it('a checkpoint with finite garbage in its weights is detected by its checksum; resume falls back, says so, and stays exact', async () => {
    const run = copyOfKilled();
    damageFinite(join(run, 'checkpoints', 'step-000002', 'model.safetensors'));
    const r = await dapo(['train', '--resume', run, '--quiet', '--no-plots']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/checkpoint step-000002: model\.safetensors does not match its SHA-256 checksum/);
    expect(r.stderr).toContain('using checkpoint step-000000, the newest one that loads');
    expect(r.stderr).toMatch(/resuming .* after RL step 0/);
    // The leftovers of the killed process are gone, and the output said so.
    expect(r.stderr).toMatch(/removed what an interrupted run left half-written: .*\.tmp-step-000004-\d+.*latest\.json\.tmp-/);
    expect(readdirSync(join(run, 'checkpoints')).filter((entry) => entry.includes('.tmp-'))).toEqual([]);
    // Recomputed from step 0: the same lines and weights as the uninterrupted run.
    expect(metrics(run)).toEqual(metrics(whole));
    const final = (dir: string) => readFileSync(join(dir, 'checkpoints', 'step-000004-final', 'model.safetensors'));
    expect(Buffer.compare(final(run), final(whole))).toBe(0);
  });

  it('latest.json deleted: eval and --resume find the newest checkpoint by scanning checkpoints/step-*', async () => {
    const run = copyOfKilled();
    rmSync(join(run, 'checkpoints', 'latest.json'));
    const e = await dapo(['eval', run, '--json']);
    expect(e.code, e.stderr).toBe(0);
    expect(e.stderr).toMatch(/latest\.json is missing; looking for checkpoints/);
    expect(e.stdout).toContain('step-000002');
    const r = await dapo(['train', '--resume', run, '--quiet', '--no-plots']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/resuming .* after RL step 2/);
    expect(metrics(run)).toEqual(metrics(whole));
    expect(readdirSync(join(run, 'checkpoints'))).toContain('step-000000');
  });

  it('when no checkpoint loads the error lists each one and its problem, and not one file changes', async () => {
    const run = copyOfKilled();
    editState(join(run, 'checkpoints', 'step-000002'), (state) => { state.rlStep = 'four'; });
    editState(join(run, 'checkpoints', 'step-000000'), (state) => { state.carried = 5; state.rlStep = -3; });
    writeFileSync(join(run, 'checkpoints', 'latest.json'), '{"checkpoint":7}');
    const before = snapshot(run);
    const r = await dapo(['train', '--resume', run, '--quiet', '--no-plots']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/latest\.json: field "checkpoint" must name a checkpoint directory .* got 7/);
    expect(r.stderr).toContain('no checkpoint loads (nothing was changed)');
    expect(r.stderr).toMatch(/step-000002: trainer_state\.json: "rlStep" must be a non-negative integer, got "four"/);
    expect(r.stderr).toMatch(/step-000000: trainer_state\.json: "rlStep" must be a non-negative integer, got -3; "carried" must be an array of rollout groups, got 5/);
    expect(snapshot(run)).toEqual(before);
    const e = await dapo(['eval', run]);
    expect(e.code).not.toBe(0);
    expect(e.stderr).toContain('no checkpoint loads');
  });

  it('refuses, naming the problem and changing nothing: rlStep beyond rl.steps, an edited dModel, a deleted metrics.jsonl, NaN moments', async () => {
    const beyond = copyOfKilled();
    editState(join(beyond, 'checkpoints', 'step-000002'), (state) => { state.rlStep = 9; });
    rmSync(join(beyond, 'checkpoints', 'step-000000'), { recursive: true });
    let before = snapshot(beyond);
    let r = await dapo(['train', '--resume', beyond, '--quiet', '--no-plots']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('"rlStep" is 9, beyond the run\'s rl.steps 4');
    expect(snapshot(beyond)).toEqual(before);

    const edited = copyOfKilled();
    const config = JSON.parse(readFileSync(join(edited, 'config.json'), 'utf8'));
    writeFileSync(join(edited, 'config.json'), JSON.stringify({ ...config, model: { ...config.model, dModel: 64 } }));
    before = snapshot(edited);
    r = await dapo(['train', '--resume', edited, '--quiet', '--no-plots']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/step-000002: the run's config\.json says model\.dModel 64, but the checkpoint holds dModel 32/);
    expect(snapshot(edited)).toEqual(before);

    const noMetrics = copyOfKilled();
    rmSync(join(noMetrics, 'metrics.jsonl'));
    before = snapshot(noMetrics);
    r = await dapo(['train', '--resume', noMetrics, '--quiet', '--no-plots']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/metrics\.jsonl is missing, but the checkpoint says the run has logged to it \(2 RL steps\)/);
    expect(snapshot(noMetrics)).toEqual(before);

    // NaN in the optimizer moments of the newest checkpoint (checksum rewritten): it is skipped, the older one used.
    const nanMoments = copyOfKilled();
    const optimizerPath = join(nanMoments, 'checkpoints', 'step-000002', 'optimizer.safetensors');
    const bytes = readFileSync(optimizerPath);
    bytes.writeFloatLE(Number.NaN, 8 + Number(bytes.readBigUInt64LE(0)));
    writeFileSync(optimizerPath, bytes);
    rechecksum(join(nanMoments, 'checkpoints', 'step-000002'));
    r = await dapo(['train', '--resume', nanMoments, '--quiet', '--no-plots']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/checkpoint step-000002: optimizer\.safetensors: tensor '.*' holds NaN/);
    expect(metrics(nanMoments)).toEqual(metrics(whole));
  });

  it('a checkpoint written before checksums existed still loads, and the output says it has no checksum', async () => {
    const run = copyOfKilled();
    rmSync(join(run, 'checkpoints', 'step-000002', 'checksums.sha256'));
    const r = await dapo(['train', '--resume', run, '--quiet', '--no-plots']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('checkpoint step-000002: no checksum');
    expect(metrics(run)).toEqual(metrics(whole));
  });

  it('rl.lr=1e38: a clear non-zero exit, nothing non-finite saved, the post-SFT checkpoint loads in eval and --resume', async () => {
    const run = join(root, 'lr38');
    const r = await dapo(['train', '--config', configPath, '--set', 'rl.lr=1e38', '--out', run, '--quiet', '--no-plots']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/RL step 1 made the weights non-finite \(NaN\/Inf\) at rl\.lr 1e\+38; they were not saved/);
    expect(r.stderr).toContain('its last checkpoint, step-000000, is kept');
    expect(readdirSync(join(run, 'checkpoints')).filter((entry) => entry.startsWith('step-'))).toEqual(['step-000000']);
    const e = await dapo(['eval', run, '--json']);
    expect(e.code, e.stderr).toBe(0);
    const resumed = await dapo(['train', '--resume', run, '--quiet', '--no-plots']);
    expect(resumed.stderr).toMatch(/resuming .* after RL step 0/);
    expect(resumed.code).not.toBe(0);
    expect(readdirSync(join(run, 'checkpoints')).filter((entry) => entry.startsWith('step-'))).toEqual(['step-000000']);
  });

  it('rl.lr=1e6 (weights exploded but finite) stops the run instead of saving a wrecked model', async () => {
    const run = join(root, 'lr6');
    const r = await dapo(['train', '--config', configPath, '--set', 'rl.lr=1e6', '--out', run, '--quiet', '--no-plots']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/RL step 1 grew the weights' norm .*-fold .* at rl\.lr 1000000: the weights exploded and were not saved/);
    expect(readdirSync(join(run, 'checkpoints')).filter((entry) => entry.startsWith('step-'))).toEqual(['step-000000']);
  });

  it('sft.lr=1e4: every skipped SFT step is in sft.jsonl, and the stop message does not claim a checkpoint', async () => {
    const run = join(root, 'sft4');
    const r = await dapo(['train', '--config', configPath, '--set', 'sft.lr=1e4', '--set', 'sft.steps=40', '--out', run, '--quiet', '--no-plots']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('no checkpoint had been saved yet');
    expect(r.stderr).not.toContain('checkpoint is kept');
    const lines = readFileSync(join(run, 'sft.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    const stoppedAt = Number(/SFT step (\d+)/.exec(r.stderr.split('\n').filter((l) => l.includes('stopping')).pop()!)![1]);
    expect(lines.map((line) => line.step)).toEqual(Array.from({ length: stoppedAt }, (_, i) => i + 1));
    expect(existsSync(join(run, 'checkpoints', 'latest.json'))).toBe(false);
  });
});
