// The DAPO/GRPO algorithm pieces on plain numbers, against hand-computed values.
import { describe, expect, it } from 'vitest';
import { uniformAt } from '../../src/backend/rng.js';
import { groupAdvantages, groupKind } from '../../src/rl/advantages.js';
import { LOSS_AGGREGATIONS, type LossAggregation, tokenWeights } from '../../src/rl/aggregation.js';
import { GroupFilter, resampleFlatGroups } from '../../src/rl/dynamic_sampling.js';
import { overlongPenalty } from '../../src/rl/overlong.js';
import { learningRate } from '../../src/rl/schedule.js';

describe('groupAdvantages', () => {
  it('normalises by the Bessel-corrected std (hand-computed group of 4)', () => {
    // mean −0.5; deviations 1.5, −0.5, −0.5, −0.5; Σd² = 3; unbiased var = 3/3 = 1 → std 1
    const a = groupAdvantages([1, -1, -1, -1]);
    const d = 1 + 1e-6;
    expect(a[0]).toBeCloseTo(1.5 / d, 12);
    for (const x of a.slice(1)) expect(x).toBeCloseTo(-0.5 / d, 12);
    // a population std (√0.75) would give 1.732 here instead
    expect(a[0]).not.toBeCloseTo(1.5 / Math.sqrt(0.75), 3);
  });

  it('uses eps in the denominator', () => {
    // [2, 0]: mean 1, unbiased std √2
    const a = groupAdvantages([2, 0], 0.5);
    expect(a[0]).toBeCloseTo(1 / (Math.SQRT2 + 0.5), 12);
    expect(a[1]).toBeCloseTo(-1 / (Math.SQRT2 + 0.5), 12);
  });

  it('gives zeros (not NaN) for a group of one and for equal rewards, even with float noise in the mean', () => {
    expect(groupAdvantages([0.7])).toEqual([0]);
    expect(groupAdvantages([1, 1, 1, 1])).toEqual([0, 0, 0, 0]);
    expect(groupAdvantages([0.1, 0.1, 0.1], 0)).toEqual([0, 0, 0]);
    expect(groupAdvantages([])).toEqual([]);
  });

  it('rejects non-finite rewards by index', () => {
    expect(() => groupAdvantages([1, NaN, 0])).toThrow(/\[1\]=NaN/);
  });
});

describe('groupKind', () => {
  it('classifies on correctness', () => {
    expect(groupKind([true, true, true])).toBe('all-correct');
    expect(groupKind([false, false])).toBe('all-wrong');
    expect(groupKind([true, false, true])).toBe('mixed');
    expect(groupKind([true])).toBe('all-correct');
    expect(() => groupKind([])).toThrow(/at least one/);
  });
});

describe('overlongPenalty', () => {
  it('is 0 up to maxLen − cacheLen, ramps linearly in the buffer, and −1 beyond maxLen', () => {
    // maxLen 24, cache 4: safe up to 20
    expect(overlongPenalty(0, 24, 4)).toBe(0);
    expect(overlongPenalty(20, 24, 4)).toBe(0);
    expect(overlongPenalty(21, 24, 4)).toBeCloseTo(-0.25, 12);
    expect(overlongPenalty(22, 24, 4)).toBeCloseTo(-0.5, 12);
    expect(overlongPenalty(24, 24, 4)).toBeCloseTo(-1, 12);
    expect(overlongPenalty(25, 24, 4)).toBe(-1);
    expect(overlongPenalty(100, 24, 4)).toBe(-1);
  });

  it('with cacheLen 0 is a hard cliff after maxLen', () => {
    expect(overlongPenalty(24, 24, 0)).toBe(0);
    expect(overlongPenalty(25, 24, 0)).toBe(-1);
  });

  it('rejects bad arguments', () => {
    expect(() => overlongPenalty(3, 4, 5)).toThrow(/cacheLen/);
    expect(() => overlongPenalty(-1, 0, 0)).toThrow(/length.*maxLen/);
  });
});

describe('tokenWeights', () => {
  // seq A: 3 valid of 4, seq B: 1 valid, seq C: none (e.g. truncated and filtered out)
  const mask = [[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]];
  const loss = [[3, 6, 9, 100], [12, 50, 50, 50], [7, 7, 7, 7]];
  const total = (w: number[][]) => w.reduce((a, row, s) => a + row.reduce((b, x, t) => b + x * loss[s][t], 0), 0);

  it('token-mean: every valid token weighs 1/(valid tokens in the step)', () => {
    const w = tokenWeights('token-mean', mask, 4);
    expect(w).toEqual([[0.25, 0.25, 0.25, 0], [0.25, 0, 0, 0], [0, 0, 0, 0]]);
    expect(total(w)).toBeCloseTo((3 + 6 + 9 + 12) / 4, 12); // 7.5
  });

  it('seq-mean-token-mean: each non-empty sequence weighs 1/S, split over its own tokens', () => {
    const w = tokenWeights('seq-mean-token-mean', mask, 4);
    expect(w[0][0]).toBeCloseTo(1 / 6, 15);
    expect(w[0][3]).toBe(0);
    expect(w[1]).toEqual([0.5, 0, 0, 0]);
    expect(w[2]).toEqual([0, 0, 0, 0]);
    expect(total(w)).toBeCloseTo((6 + 12) / 2, 12); // mean of A is 6, of B 12 → 9, not token-mean's 7.5
  });

  it('seq-mean-token-sum and the Dr.GRPO constant normaliser', () => {
    expect(tokenWeights('seq-mean-token-sum', mask, 4)).toEqual([[0.5, 0.5, 0.5, 0], [0.5, 0, 0, 0], [0, 0, 0, 0]]);
    expect(tokenWeights('seq-mean-token-sum-norm', mask, 4)).toEqual([[0.125, 0.125, 0.125, 0], [0.125, 0, 0, 0], [0, 0, 0, 0]]);
    expect(total(tokenWeights('seq-mean-token-sum-norm', mask, 4))).toBeCloseTo((18 + 12) / (2 * 4), 12);
  });

  it('is all zeros when no token is valid', () => {
    for (const mode of LOSS_AGGREGATIONS) expect(tokenWeights(mode, [[0, 0], [0, 0]], 2)).toEqual([[0, 0], [0, 0]]);
  });

  it('rejects bad masks, modes and maxLen', () => {
    expect(() => tokenWeights('token-mean', [[1, 0.5]], 2)).toThrow(/\[0\]\[1\]=0.5/);
    expect(() => tokenWeights('mean' as LossAggregation, [[1]], 2)).toThrow(/allowed: token-mean/);
    expect(() => tokenWeights('seq-mean-token-sum-norm', [[1]], 0)).toThrow(/maxLen/);
  });

  it('stays exact under any split of the step into micro-batches', () => {
    const seqs = 13;
    const width = 9;
    const rand = (i: number) => uniformAt(1234, i);
    const m: number[][] = Array.from({ length: seqs }, (_, s) => {
      const len = s === 5 ? 0 : 1 + Math.floor(rand(s) * width); // unequal lengths, one empty sequence
      return Array.from({ length: width }, (_, t) => (t < len ? 1 : 0));
    });
    const l = m.map((row, s) => row.map((_, t) => rand(1000 + s * width + t) * 4 - 2));

    // the aggregate written directly from its definition
    const valid = m.map((row) => row.reduce((a, x) => a + x, 0));
    const sums = l.map((row, s) => row.reduce((a, x, t) => a + x * m[s][t], 0));
    const S = valid.filter((n) => n > 0).length;
    const direct: Record<LossAggregation, number> = {
      'token-mean': sums.reduce((a, x) => a + x, 0) / valid.reduce((a, x) => a + x, 0),
      'seq-mean-token-mean': sums.reduce((a, x, s) => a + (valid[s] > 0 ? x / valid[s] : 0), 0) / S,
      'seq-mean-token-sum': sums.reduce((a, x) => a + x, 0) / S,
      'seq-mean-token-sum-norm': sums.reduce((a, x) => a + x, 0) / (S * width),
    };

    const splits: number[][][] = [
      [Array.from({ length: seqs }, (_, s) => s)], // one batch
      Array.from({ length: seqs }, (_, s) => [s]), // one sequence each
      [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12]],
      [[12, 0, 7], [3, 5], [1, 2, 4, 6, 8, 9, 10, 11]], // uneven, out of order
    ];
    for (const mode of LOSS_AGGREGATIONS) {
      const w = tokenWeights(mode, m, width); // computed once for the whole step
      for (const split of splits) {
        const accumulated = split.reduce(
          (acc, micro) => acc + micro.reduce((a, s) => a + w[s].reduce((b, x, t) => b + x * l[s][t], 0), 0),
          0,
        );
        expect(accumulated).toBeCloseTo(direct[mode], 12);
      }
    }

    // the bug this guards against: token-mean per micro-batch, averaged over accumulation steps, is another number
    const split = splits[2];
    const naive = split.reduce((acc, micro) => {
      const tokens = micro.reduce((a, s) => a + valid[s], 0);
      return acc + micro.reduce((a, s) => a + sums[s], 0) / tokens;
    }, 0) / split.length;
    expect(Math.abs(naive - direct['token-mean'])).toBeGreaterThan(1e-3);
  });
});

describe('learningRate', () => {
  const base = { lr: 1, warmupSteps: 4, totalSteps: 14, minLrRatio: 0.1 };

  it('warms up linearly from lr/warmup', () => {
    const o = { ...base, schedule: 'constant' as const };
    expect([0, 1, 2, 3].map((s) => learningRate(s, o))).toEqual([0.25, 0.5, 0.75, 1]);
  });

  it('then stays constant', () => {
    const o = { ...base, schedule: 'constant' as const };
    expect(learningRate(4, o)).toBe(1);
    expect(learningRate(500, o)).toBe(1);
    expect(learningRate(0, { ...o, warmupSteps: 0 })).toBe(1);
  });

  it('or follows a cosine to lr·minLrRatio at totalSteps', () => {
    const o = { ...base, lr: 2, schedule: 'cosine' as const };
    expect(learningRate(3, o)).toBe(2);
    expect(learningRate(4, o)).toBeCloseTo(2, 12); // start of decay
    expect(learningRate(9, o)).toBeCloseTo(2 * (0.1 + 0.9 * 0.5), 12); // half-way: 1.1
    expect(learningRate(14, o)).toBeCloseTo(0.2, 12);
    expect(learningRate(40, o)).toBeCloseTo(0.2, 12);
    // a quarter of the way (2 of 8 decay steps): 0.5·(1 + cos(π/4)) = 0.8536
    const quarter = 0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI / 4));
    expect(learningRate(6, { ...o, totalSteps: 12 })).toBeCloseTo(2 * quarter, 12);
  });

  it('names bad options', () => {
    expect(() => learningRate(-1, { ...base, schedule: 'cosine', minLrRatio: 2 })).toThrow(/step.*minLrRatio/);
  });
});

// Scripted groups: correctness known up front.
interface Grp { id: string; correct: boolean[] }
const mixed = (id: string): Grp => ({ id, correct: [true, false, false, true] });
const allRight = (id: string): Grp => ({ id, correct: [true, true, true, true] });
const allWrong = (id: string): Grp => ({ id, correct: [false, false, false, false] });

function script(batches: Grp[][]) {
  let calls = 0;
  return {
    generate: async () => {
      if (calls >= batches.length) throw new Error('script exhausted');
      return batches[calls++];
    },
    get calls() { return calls; },
  };
}
const correctness = (g: Grp) => g.correct;
const ids = (gs: Grp[]) => gs.map((g) => g.id);

describe('GroupFilter', () => {
  it('keeps mixed groups only, refills until trainGroups, and carries the surplus FIFO into the next fill', async () => {
    const filter = new GroupFilter<Grp>({ trainGroups: 3, maxGenerationBatches: 4, mode: 'filter' });
    const gen = script([
      [mixed('a'), allRight('x'), allWrong('y'), mixed('b')],
      [allWrong('z'), mixed('c'), mixed('d'), mixed('e')],
      [mixed('f'), allRight('w'), mixed('g'), mixed('h')],
    ]);
    const first = await filter.fill(gen.generate, correctness);
    expect(ids(first.groups)).toEqual(['a', 'b', 'c']);
    expect(first.report).toEqual({
      generationBatches: 2, keptGroups: 3, droppedAllCorrect: 1, droppedAllWrong: 2, carriedIn: 0, carriedOut: 2, capReached: false,
    });
    expect(ids(filter.carried())).toEqual(['d', 'e']);

    const second = await filter.fill(gen.generate, correctness);
    expect(ids(second.groups)).toEqual(['d', 'e', 'f']); // carried first, then new
    expect(second.report).toMatchObject({ generationBatches: 1, carriedIn: 2, carriedOut: 2, droppedAllCorrect: 1, droppedAllWrong: 0 });
    expect(ids(filter.carried())).toEqual(['g', 'h']);
    expect(gen.calls).toBe(3);
  });

  it('a fill served entirely from the carry costs no batch', async () => {
    const filter = new GroupFilter<Grp>({ trainGroups: 2, maxGenerationBatches: 1, mode: 'filter' });
    filter.setCarried([mixed('p'), mixed('q'), mixed('r')]);
    const gen = script([]);
    const out = await filter.fill(gen.generate, correctness);
    expect(ids(out.groups)).toEqual(['p', 'q']);
    expect(out.report).toMatchObject({ generationBatches: 0, carriedIn: 2, carriedOut: 1, capReached: false });
    expect(gen.calls).toBe(0);
  });

  it('respects the cap and reports capReached with what was kept', async () => {
    const filter = new GroupFilter<Grp>({ trainGroups: 4, maxGenerationBatches: 2, mode: 'filter' });
    const gen = script([
      [allRight('1'), mixed('a'), allRight('2')],
      [allWrong('3'), allWrong('4'), mixed('b')],
      [mixed('never'), mixed('never'), mixed('never'), mixed('never')],
    ]);
    const out = await filter.fill(gen.generate, correctness);
    expect(ids(out.groups)).toEqual(['a', 'b']);
    expect(out.report).toEqual({
      generationBatches: 2, keptGroups: 2, droppedAllCorrect: 2, droppedAllWrong: 2, carriedIn: 0, carriedOut: 0, capReached: true,
    });
    expect(gen.calls).toBe(2);
    expect(filter.carried()).toEqual([]);
  });

  it("mode 'off' makes exactly one call and keeps every group", async () => {
    const filter = new GroupFilter<Grp>({ trainGroups: 3, maxGenerationBatches: 4, mode: 'off' });
    const gen = script([[allRight('x'), allWrong('y'), mixed('a')], [mixed('b')]]);
    const out = await filter.fill(gen.generate, correctness);
    expect(ids(out.groups)).toEqual(['x', 'y', 'a']);
    expect(out.report).toEqual({
      generationBatches: 1, keptGroups: 3, droppedAllCorrect: 0, droppedAllWrong: 0, carriedIn: 0, carriedOut: 0, capReached: false,
    });
    expect(gen.calls).toBe(1);
    expect(() => filter.setCarried([mixed('c')])).toThrow(/carries no groups/);
  });

  it('keeps accepted groups when a generation fails mid-fill', async () => {
    const filter = new GroupFilter<Grp>({ trainGroups: 3, maxGenerationBatches: 4, mode: 'filter' });
    const gen = script([[mixed('a'), allRight('x')]]);
    await expect(filter.fill(gen.generate, correctness)).rejects.toThrow(/exhausted/);
    expect(ids(filter.carried())).toEqual(['a']);
  });

  it('rejects bad options', () => {
    expect(() => new GroupFilter({ trainGroups: 0, maxGenerationBatches: 1.5, mode: 'filter' })).toThrow(/trainGroups.*maxGenerationBatches/);
  });
});

describe('resampleFlatGroups', () => {
  interface RG { id: string; rewards: number[] }
  const g = (id: string, ...rewards: number[]): RG => ({ id, rewards });

  it('resamples flat groups by index, round after round, up to maxRounds', async () => {
    const asked: number[][] = [];
    const rounds = [
      [g('b1', 1, 1), g('d1', -1, 1)], // b still flat, d fixed
      [g('b2', -1, -1)], // b still flat
      [g('b3', 1, -1)],
    ];
    const resample = async (indices: number[]) => {
      asked.push(indices);
      return rounds[asked.length - 1];
    };
    const start = [g('a', 1, -1), g('b', -1, -1), g('c', 0.5, -1), g('d', 1, 1)];
    const out = await resampleFlatGroups(start, (x) => x.rewards, resample, 3);
    expect(asked).toEqual([[1, 3], [1], [1]]);
    expect(out.groups.map((x) => x.id)).toEqual(['a', 'b3', 'c', 'd1']);
    expect(out).toMatchObject({ rounds: 3, resampledPrompts: 2, resampleRate: 0.5, stillFlat: 0 });
    expect(start[1].id).toBe('b'); // the input array is not modified
  });

  it('stops at maxRounds and keeps still-flat groups', async () => {
    let calls = 0;
    const out = await resampleFlatGroups(
      [g('a', 1, 1, 1), g('b', 0, 1, 0)],
      (x) => x.rewards,
      async (indices) => { calls++; return indices.map(() => g('flat', -1, -1, -1)); },
      2,
    );
    expect(calls).toBe(2);
    expect(out).toMatchObject({ rounds: 2, resampledPrompts: 1, resampleRate: 0.5, stillFlat: 1 });
    expect(out.groups.map((x) => x.id)).toEqual(['flat', 'b']);
  });

  it('does nothing when no group is flat or maxRounds is 0, and checks the resampler', async () => {
    const never = async (): Promise<RG[]> => { throw new Error('should not be called'); };
    expect(await resampleFlatGroups([g('a', 1, 0)], (x) => x.rewards, never, 3)).toMatchObject({ rounds: 0, resampleRate: 0, stillFlat: 0 });
    expect(await resampleFlatGroups([g('a', 1, 1)], (x) => x.rewards, never, 0)).toMatchObject({ rounds: 0, resampleRate: 0, stillFlat: 1 });
    await expect(resampleFlatGroups([g('a', 1, 1)], (x) => x.rewards, async () => [], 1)).rejects.toThrow(/one per index/);
  });
});
