// How the CLI and the training page state a run's held-out accuracy and its change.
import { describe, expect, it } from 'vitest';
import { formatAccuracy, formatAccuracyGain } from '../../src/rl/evaluate.js';

describe('accuracy summary', () => {
  it('formats an accuracy as a percentage with one decimal', () => {
    expect(formatAccuracy(0.415)).toBe('41.5%');
    expect(formatAccuracy(0)).toBe('0.0%');
    expect(formatAccuracy(1)).toBe('100.0%');
  });

  it('signs the change in percentage points', () => {
    expect(formatAccuracyGain(0.41, 0.72)).toBe('+31.0 pts');
    expect(formatAccuracyGain(0.06, 0.04)).toBe('-2.0 pts');
    expect(formatAccuracyGain(0.5, 0.5)).toBe('±0.0 pts');
    // A change that rounds to zero reads as none, not as '-0.0'.
    expect(formatAccuracyGain(0.5, 0.4999)).toBe('±0.0 pts');
  });
});
