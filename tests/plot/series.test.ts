import { describe, expect, it } from 'vitest';
import { extent } from '../../src/plot/series.js';
import { flatDomain } from '../../src/plot/charts.js';

describe('plot value ranges', () => {
  it('extent and flatDomain take series far longer than the call stack (no spread of every value)', () => {
    const values = Array.from({ length: 500_000 }, (_, i) => Math.sin(i) * 3);
    expect(() => Math.max(...values)).toThrow(RangeError); // what the loop avoids
    const [lo, hi] = extent(values);
    expect(lo).toBeCloseTo(-3, 3);
    expect(hi).toBeCloseTo(3, 3);
    expect(flatDomain(values)).toBeUndefined();
    expect(flatDomain(new Array(500_000).fill(-0.01))).toBeDefined();
    expect(extent([])).toEqual([Infinity, -Infinity]);
    expect(extent([1, NaN, 2])[1]).toBeNaN();
  });
});
