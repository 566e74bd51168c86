// Checkpoint directories on disk: atomic writes, round trip, clear errors for bad paths and corrupt files.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import * as T from '../../src/tensor/index.js';
import { TransformerLM } from '../../src/nn/transformer.js';
import { CHECKSUM_FILE, loadCheckpoint, saveCheckpoint, sha256Hex, writeFileAtomic } from '../../src/io/node_files.js';

const dir = mkdtempSync(join(tmpdir(), 'dapo-ckpt-'));
beforeAll(() => T.setBackend(new ReferenceBackend()));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('checkpoint files', () => {
  it('saves config.json + model.safetensors and loads them back, leaving no temp files', async () => {
    const model = new TransformerLM({ vocabSize: 5, dModel: 8, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 8, maxSeqLen: 8, tieEmbeddings: true }, 1);
    const out = join(dir, 'ok');
    await saveCheckpoint(out, model);
    expect(readdirSync(out).sort()).toEqual(['config.json', 'model.safetensors']);
    const back = loadCheckpoint(out);
    expect(back.config).toEqual(model.config);
    expect(back.params.has('lm_head.weight')).toBe(false);
    expect(await back.p('model.norm.weight').toArray()).toEqual(await model.p('model.norm.weight').toArray());
    model.dispose();
    back.dispose();
  });

  it('writeFileAtomic replaces a file whole', () => {
    const p = join(dir, 'a', 'b.txt');
    writeFileAtomic(p, 'one');
    writeFileAtomic(p, 'two');
    expect(readdirSync(join(dir, 'a'))).toEqual(['b.txt']);
  });

  it('names the problem: missing directory, corrupt config, truncated weights', async () => {
    expect(() => loadCheckpoint(join(dir, 'nope'))).toThrow(/checkpoint .*nope: missing .*config.json/);
    const model = new TransformerLM({ vocabSize: 5, dModel: 8, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 8, maxSeqLen: 8 }, 2);
    const bad = join(dir, 'bad');
    await saveCheckpoint(bad, model);
    model.dispose();
    writeFileSync(join(bad, 'config.json'), '{"vocab_size": ');
    expect(() => loadCheckpoint(bad)).toThrow(/config.json is not valid JSON/);
    const bad2 = join(dir, 'bad2');
    const m2 = new TransformerLM({ vocabSize: 5, dModel: 8, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 8, maxSeqLen: 8 }, 3);
    await saveCheckpoint(bad2, m2);
    m2.dispose();
    writeFileSync(join(bad2, 'model.safetensors'), Buffer.alloc(100, 1));
    expect(() => loadCheckpoint(bad2)).toThrow(/checkpoint .*bad2: safetensors: header length \d+ exceeds the file size 100/);
  });

  it('checks the files against checksums.sha256: changed finite bytes are named; without a manifest it still loads', async () => {
    const model = new TransformerLM({ vocabSize: 5, dModel: 8, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 8, maxSeqLen: 8 }, 4);
    const out = join(dir, 'sums');
    await saveCheckpoint(out, model);
    model.dispose();
    const files = ['config.json', 'model.safetensors'];
    writeFileSync(join(out, CHECKSUM_FILE), files.map((file) => `${sha256Hex(readFileSync(join(out, file)))}  ${file}\n`).join(''));
    loadCheckpoint(out).dispose();
    // One weight changed to another finite value: no NaN check can see it, the checksum does.
    const weights = readFileSync(join(out, 'model.safetensors'));
    const dataStart = 8 + Number(weights.readBigUInt64LE(0));
    weights.writeFloatLE(weights.readFloatLE(dataStart) + 1, dataStart);
    writeFileSync(join(out, 'model.safetensors'), weights);
    expect(() => loadCheckpoint(out)).toThrow(/sums: model\.safetensors does not match its SHA-256 checksum in checksums\.sha256/);
    writeFileSync(join(out, CHECKSUM_FILE), 'not a checksum line\n');
    expect(() => loadCheckpoint(out)).toThrow(/checksums\.sha256 line 1 is not "<sha256>  <file>"/);
    rmSync(join(out, CHECKSUM_FILE));
    loadCheckpoint(out).dispose();
  });
});
