// Running out of memory inside `dapo train` is one `dapo:` line that says which phase ran out (generation, update,
// evaluation, building the model), on which backend, which tensor, and the allocator's need/live/peak and advice.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dapo } from '../support/cli.js';

describe('dapo train out of memory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dapo-oom-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a generation batch past the 4 GiB of WASM names the generation phase, the tensor and the advice', async () => {
    const configPath = join(dir, 'wide.json');
    // 1024 prompts × 64 responses of a 2048-wide model: the first activation of the batch is past 4 GiB.
    writeFileSync(configPath, JSON.stringify({
      model: { dModel: 2048, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 64, maxSeqLen: 48 },
      sft: { steps: 0 },
      rl: { steps: 1, promptsPerStep: 1024, groupSize: 64, maxNewTokens: 16, microBatchSize: 64, generationChunk: 65536 },
      eval: { every: 0, problems: 2, passK: 1, samplesPerProblem: 1 },
    }));
    // The memory plan refuses this run up front; --skip-memory-check lets it reach the allocation that fails.
    const planned = await dapo(['train', '--config', configPath, '--out', join(dir, 'run'), '--quiet', '--no-plots']);
    expect(planned.code).toBe(1);
    expect(planned.stderr).toMatch(/^dapo: the run does not fit in memory:[^]*lower rl\.generationChunk/m);
    const r = await dapo(['train', '--config', configPath, '--out', join(dir, 'run'), '--quiet', '--no-plots', '--skip-memory-check']);
    expect(r.code).toBe(1);
    const last = r.stderr.trim().split('\n').pop()!;
    expect(last).toMatch(/^dapo: out of memory during generation \(rollouts\) on the wasm backend: tensor \[65536, [\d, ]+\] float32: this allocation would end at \d+\.\d\d GiB, past the 4 GiB .*\(live: \d+\.\d\d GiB in \d+ storages, peak \d+\.\d\d GiB\)\. Lower the batch sizes/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
