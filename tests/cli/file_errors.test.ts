// File errors at the CLI boundary name the path, the phase and the cause in words: disk full (a real ENOSPC from
// /dev/full), read-only file system, permission denied — never a bare "ENOSPC: no space left on device, write".
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import * as T from '../../src/tensor/index.js';
import { TransformerLM } from '../../src/nn/transformer.js';
import { AdamW } from '../../src/optim/adamw.js';
import { NodeRunStore } from '../../src/rl/run_dir_node.js';
import { initialState } from '../../src/rl/run_store.js';
import { FileError, Interrupted, describeFailure, errnoWords, withFileContext, withFileContextSync } from '../../cli/errors.js';
import { namingFileErrors } from '../../cli/train.js';

/** An fs error as Node makes them (code, syscall, path). */
function fsError(code: string, syscall: string, path?: string): Error {
  return Object.assign(new Error(`${code}: something, ${syscall}${path ? ` '${path}'` : ''}`), { code, syscall, ...(path ? { path } : {}) });
}

describe('file errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dapo-file-errors-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('errno codes in plain words', () => {
    expect(errnoWords('ENOSPC')).toBe('disk full: ENOSPC');
    expect(errnoWords('EROFS')).toBe('read-only file system: EROFS');
    expect(errnoWords('EACCES')).toBe('permission denied: EACCES');
    expect(errnoWords('EWHATEVER')).toBe('EWHATEVER');
  });

  it('a real disk-full write names the phase and the path it was writing, not the bare errno', () => {
    const checkpoint = join(dir, 'checkpoints', 'step-000004');
    let caught: unknown;
    try {
      withFileContextSync('write checkpoint', checkpoint, () => writeFileSync('/dev/full', 'weights'));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(FileError);
    expect((caught as Error).message).toMatch(new RegExp(`^cannot write checkpoint ${checkpoint} \\(disk full: ENOSPC`));
    expect(describeFailure(caught)).toEqual({ message: (caught as Error).message, exitCode: 1 });
  });

  it('the failing file inside a directory is named after the directory', async () => {
    await expect(withFileContext('write checkpoint', '/run/checkpoints/step-000004', () => { throw fsError('EROFS', 'open', '/run/checkpoints/.tmp-step-000004-1/model.safetensors'); }))
      .rejects.toThrow('cannot write checkpoint /run/checkpoints/step-000004 (read-only file system: EROFS; failed on /run/checkpoints/.tmp-step-000004-1/model.safetensors)');
    // Not a file error: unchanged.
    await expect(withFileContext('write checkpoint', '/x', () => { throw new RangeError('bad shape'); })).rejects.toThrow(/^bad shape$/);
  });

  it('a file error that reached the top without context still names its path and cause', () => {
    let enoent: unknown;
    try {
      readFileSync(join(dir, 'missing.json'));
    } catch (err) {
      enoent = err;
    }
    expect(describeFailure(enoent).message).toBe(`cannot open ${join(dir, 'missing.json')} (no such file or directory: ENOENT)`);
    expect(describeFailure(fsError('EROFS', 'mkdir', '/ro/run')).message).toBe('cannot create directory /ro/run (read-only file system: EROFS)');
    expect(describeFailure(fsError('EACCES', 'open', '/root/x')).message).toBe('cannot open /root/x (permission denied: EACCES)');
    expect(describeFailure(new Interrupted('interrupted — …', 143))).toEqual({ message: 'interrupted — …', exitCode: 143 });
    expect(describeFailure(new Error('plain'))).toEqual({ message: 'plain', exitCode: 1 });
  });

  it("the run store's writes name the file and the phase: a metrics line on a full disk, a checkpoint that cannot be made", async () => {
    T.setBackend(new ReferenceBackend());
    const runDir = join(dir, 'run');
    const store = new NodeRunStore(runDir, 2);
    // metrics.jsonl on a full disk; checkpoints/ a file where a directory belongs.
    mkdirSync(runDir);
    symlinkSync('/dev/full', join(runDir, 'metrics.jsonl'));
    writeFileSync(join(runDir, 'checkpoints'), 'not a directory');
    namingFileErrors(store);
    expect(() => store.appendMetrics({ step: 1 })).toThrow(`cannot append to ${join(runDir, 'metrics.jsonl')} (disk full: ENOSPC)`);

    const model = new TransformerLM({ vocabSize: 8, dModel: 8, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 16, maxSeqLen: 8 }, 1);
    const optimizer = new AdamW(model.params, { lr: 1e-3 });
    try {
      await expect(store.saveCheckpoint({ state: { ...initialState(), rlStep: 4 }, model, optimizer }))
        .rejects.toThrow(new RegExp(`^cannot write checkpoint ${join(runDir, 'checkpoints', 'step-000004')} \\(a part of the path is not a directory: ENOTDIR`));
    } finally {
      optimizer.dispose();
      model.dispose();
    }
  });
});
