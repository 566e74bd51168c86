// The storage contract every backend shares: alloc is zero-filled even when the allocator hands back the
// memory of a freed storage; upload and read round-trip both dtypes exactly.
import { afterAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/backend/backend.js';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import { productBackends } from '../support/backends.js';

const { available } = await productBackends();
const backends: { name: string; backend: Backend }[] = [{ name: 'reference', backend: new ReferenceBackend() }, ...available];
afterAll(() => {
  for (const { backend } of available) backend.destroy();
});

describe.each(backends)('storage on $name', ({ backend }) => {
  it('alloc returns zeros after a same-sized storage full of data was freed', async () => {
    for (const size of [1, 7, 4096]) {
      const used = backend.upload('float32', Array.from({ length: size }, (_, i) => i + 0.5));
      await backend.read(used);
      backend.free(used);
      await backend.sync();
      const fresh = backend.alloc('float32', size);
      expect(Array.from(await backend.read(fresh)).every((v) => v === 0), `size ${size}`).toBe(true);
      backend.free(fresh);
    }
  });

  it('upload and read round-trip float32 and int32 exactly', async () => {
    const floats = new Float32Array([0, -1.5, 3.25e-8, 1e30, -0]);
    const ints = new Int32Array([0, -1, 2147483647, -2147483648, 42]);
    const f = backend.upload('float32', floats);
    const i = backend.upload('int32', ints);
    expect(Array.from(await backend.read(f))).toEqual(Array.from(floats));
    expect(Array.from(await backend.read(i))).toEqual(Array.from(ints));
    backend.free(f);
    backend.free(i);
  });
});
