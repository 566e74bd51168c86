// F16 / BF16 storage written by encodeSafetensors: round to nearest even, overflow to ±Inf, subnormals, NaN;
// decoding widens exactly.
import { describe, expect, it } from 'vitest';
import { decodeSafetensors, encodeSafetensors } from '../../src/io/safetensors.js';

function roundTrip(values: number[], floatDType: 'F16' | 'BF16'): number[] {
  const bytes = encodeSafetensors(new Map([['t', { shape: [values.length], data: Float32Array.from(values) }]]), {}, { floatDType });
  const { tensors } = decodeSafetensors(bytes);
  return Array.from(tensors.get('t')!.data);
}

describe('half-precision safetensors', () => {
  it('F16 rounds to nearest even and saturates to Inf', () => {
    const cases: [number, number][] = [
      [1.5, 1.5], [-2, -2], [65504, 65504], [70000, Infinity], [-65520, -Infinity], [0, 0],
      [1 + 2 ** -11, 1], [1 + 3 * 2 ** -11, 1 + 2 ** -9], [1 + 2 ** -11 + 2 ** -20, 1 + 2 ** -10],
      [2 ** -24, 2 ** -24], [2 ** -25, 0], [3 * 2 ** -25, 2 ** -23], [1e-9, 0], [2 ** -14, 2 ** -14],
    ];
    expect(roundTrip(cases.map(([x]) => x), 'F16')).toEqual(cases.map(([, want]) => want));
    expect(Number.isNaN(roundTrip([Number.NaN], 'F16')[0])).toBe(true);
  });

  it('BF16 rounds to nearest even and keeps NaN', () => {
    const cases: [number, number][] = [[1 + 2 ** -8, 1], [1 + 3 * 2 ** -8, 1 + 2 ** -6], [-2, -2], [Math.PI, 3.140625], [1 + 2 ** -8 + 2 ** -20, 1 + 2 ** -7]];
    expect(roundTrip(cases.map(([x]) => x), 'BF16')).toEqual(cases.map(([, want]) => want));
    expect(Number.isNaN(roundTrip([Number.NaN], 'BF16')[0])).toBe(true);
  });
});
