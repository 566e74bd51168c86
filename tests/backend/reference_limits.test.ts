// The reference backend (float64 test oracle) refuses a tensor past 2^28 elements before allocating, naming the
// shape and the bytes — never a raw "Invalid typed array length" or a minute-long multi-GB allocation.
import { describe, expect, it } from 'vitest';
import { REFERENCE_MAX_ELEMENTS, ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import * as T from '../../src/tensor/index.js';

describe('reference backend size limit', () => {
  it('refuses [1e9] and [1e5, 1e5] at once with the shape, the element count and the bytes', () => {
    T.setBackend(new ReferenceBackend());
    const started = performance.now();
    expect(() => T.randNormal([1e9], 1)).toThrow(/kernel 'alloc' \(tensor \[1000000000\] float32\): the reference backend holds at most 268435456 \(2\^28\) elements per tensor \(2\.00 GiB as float64\); this one has 1000000000 elements \(7\.45 GiB\)/);
    expect(() => T.randNormal([1e5, 1e5], 1)).toThrow(/tensor \[100000, 100000\] float32.*this one has 10000000000 elements \(74\.51 GiB\).*wasm or webgpu/);
    expect(() => T.full([REFERENCE_MAX_ELEMENTS + 1], 0)).toThrow(/this one has 268435457 elements/);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('smaller tensors still allocate, and the live count is unchanged by a refusal', () => {
    const backend = new ReferenceBackend();
    T.setBackend(backend);
    const live = backend.memory().liveBytes;
    expect(() => T.randNormal([3, 1e9], 2)).toThrow(/reference backend holds at most/);
    expect(backend.memory().liveBytes).toBe(live);
    const x = T.randNormal([7, 13], 3);
    expect(x.shape).toEqual([7, 13]);
    x.dispose();
  });
});
