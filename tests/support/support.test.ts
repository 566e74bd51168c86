// The shared test helpers themselves: the generator is pinned (changing it changes every test's data), and
// the closeness checks fail where they should, including on the non-finite values a kernel bug produces.
import { describe, expect, it } from 'vitest';
import { assertClose, assertCloseToScale, maxAbs } from './close.js';
import { matmulVariants } from './matmul_cases.js';
import { SeededRandom, hostRandom, quantize } from './random.js';

describe('seeded random', () => {
  it('is mulberry32: pinned values, the same stream whether read at once or in pieces', () => {
    expect(Array.from(hostRandom(3, 1, 0, 1))).toEqual([Math.fround(0.6270739405881613), Math.fround(0.002735721180215478), Math.fround(0.5274470399599522)]);
    const stream = new SeededRandom(42);
    expect([...stream.floats(2), ...stream.floats(3)]).toEqual([...hostRandom(5, 42)]);
    const ints = new SeededRandom(7).ints(1000, 3, 10);
    expect(Math.min(...ints)).toBe(3);
    expect(Math.max(...ints)).toBe(9);
    expect(Array.from(quantize(Float32Array.from([0.26, -0.74]), 2))).toEqual([0.5, -0.5]);
  });
});

describe('closeness', () => {
  it('atol + rtol·|want|: passes inside, fails just outside, naming the worst element', () => {
    assertClose([1.0001, 10.001], [1, 10], 'inside', 0, 1.1e-4);
    expect(() => assertClose([1.0001, 10.01], [1, 10], 'outside', 0, 1.1e-4)).toThrow(/outside: element 1 is 10.01, expected 10 .*1 of 2 elements/);
    expect(() => assertClose([1, 2], [1], 'short')).toThrow(/length 2 ≠ expected 1/);
  });

  it('non-finite values must match exactly, whatever the tolerance', () => {
    assertClose([NaN, Infinity, -Infinity], [NaN, Infinity, -Infinity], 'same', 1, 1);
    expect(() => assertClose([1e30], [Infinity], 'finite for infinite', 1, 1)).toThrow(/element 0/);
    expect(() => assertClose([NaN], [0], 'NaN for finite', 1, 1)).toThrow(/element 0/);
    expect(() => assertClose([0], [NaN], 'finite for NaN', 1, 1)).toThrow(/element 0/);
  });

  it('to scale: relative to each element, floored at a hundredth of the scale', () => {
    expect(maxAbs([3, -7, NaN, Infinity])).toBe(7);
    // scale 100: tolerance 1e-2·max(|w|, 1) + 1e-2 = 2e-2 at w = 0
    assertCloseToScale([0.019], [0], 'floor', 1e-2, 100);
    expect(() => assertCloseToScale([0.021], [0], 'floor', 1e-2, 100)).toThrow(/rtol 0.01 at scale 100/);
    assertCloseToScale([50.5], [50], 'relative', 1e-2, 100);
    expect(() => assertCloseToScale([50.6], [50], 'relative', 1e-2, 100)).toThrow(/element 0/);
  });
});

describe('matmul variants', () => {
  it('sweeps transposes, and broadcasts only for a batch', () => {
    expect([...matmulVariants(1, 2, 3, 4)].map((v) => v.label)).toEqual([
      'b1 2x3x4 tA=false tB=false bc=0', 'b1 2x3x4 tA=false tB=true bc=0', 'b1 2x3x4 tA=true tB=false bc=0', 'b1 2x3x4 tA=true tB=true bc=0',
    ]);
    const shared = [...matmulVariants(3, 2, 3, 4)].filter((v) => !v.args.transA && !v.args.transB);
    expect(shared.map((v) => [v.args.strideA, v.args.strideB, v.sizeA, v.sizeB])).toEqual([[8, 12, 24, 36], [0, 12, 8, 36], [8, 0, 24, 12]]);
  });
});
