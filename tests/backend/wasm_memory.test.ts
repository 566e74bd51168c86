// WASM storages past the first 2 GiB of the 4 GiB address space: byte addresses ≥ 2^31 must not turn negative
// in the host's index arithmetic (a signed shift made upload/read fail with a raw RangeError at real-model sizes).
import { afterAll, describe, expect, it } from 'vitest';
import { createWasmBackend } from '../../src/backend/wasm/wasm_backend.js';

const backend = await createWasmBackend({ threads: 1 });
afterAll(() => backend.destroy());

describe('WASM memory above 2 GiB', () => {
  it('uploads, computes on and reads storages placed past 2^31 bytes', async () => {
    const filler = backend.allocUninitialized!('float32', (2 ** 31 + 2 ** 20) / 4);
    const values = Float32Array.from({ length: 1000 }, (_, i) => i - 500.25);
    const high = backend.upload('float32', values);
    const ids = backend.upload('int32', [3, 1, 4]);
    const doubled = backend.alloc('float32', values.length);
    backend.binary('add', high, { strides: [1], offset: 0 }, high, { strides: [1], offset: 0 }, doubled, [values.length]);
    expect(Array.from(await backend.read(high))).toEqual(Array.from(values));
    expect(Array.from(await backend.read(ids))).toEqual([3, 1, 4]);
    expect(Array.from(await backend.read(doubled))).toEqual(Array.from(values, (v) => 2 * v));
    expect(backend.memory().liveBytes).toBeGreaterThan(2 ** 31);
    for (const storage of [filler, high, ids, doubled]) backend.free(storage);
  });

  it('says what was asked, what is live and what to change when 4 GiB are not enough', () => {
    const live = backend.upload('float32', [1, 2, 3]);
    expect(() => backend.alloc('float32', 2 ** 30 + 1)).toThrow(/out of memory: this allocation would end at \d+\.\d\d GiB, past the 4 GiB .*live: 0\.\d\d GiB in \d+ storages.*rl\.microBatchSize.*--lora.*--backend webgpu/);
    backend.free(live);
  });
});
