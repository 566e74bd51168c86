// DAPO dynamic sampling: train only on groups whose responses disagree (a flat group has zero advantage and
// contributes no gradient), refilling the batch with more generation and keeping surplus groups for the next step.
import { FLAT_STD_TOLERANCE, type GroupKind, groupKind, groupStd } from './advantages.js';

export type DynamicSamplingMode = 'filter' | 'resample' | 'off';
export const DYNAMIC_SAMPLING_MODES: readonly DynamicSamplingMode[] = ['filter', 'resample', 'off'];

export interface FillReport {
  /** generate() calls made in this fill. */
  generationBatches: number;
  /** Groups returned for training (carried-in ones included). */
  keptGroups: number;
  droppedAllCorrect: number;
  droppedAllWrong: number;
  /** Groups taken from the previous fill's surplus. */
  carriedIn: number;
  /** Surplus groups kept for the next fill. */
  carriedOut: number;
  /** The generation cap stopped the fill before trainGroups groups were kept. */
  capReached: boolean;
}

export interface GroupFilterOptions {
  trainGroups: number;
  maxGenerationBatches: number;
  mode: 'filter' | 'off';
}

/**
 * DAPO dynamic sampling, mode 'filter': drop groups whose correctness is all equal (`classify` returns each response's
 * correctness, or the group's kind directly — the trainer classifies float-reward groups by reward spread, see
 * rollout.ts groupKindOf), call `generate()` for more batches
 * until `trainGroups` groups are kept, at most `maxGenerationBatches` calls per fill (carried-in groups from the
 * previous fill count first and do not cost a batch). Surplus kept groups beyond trainGroups are carried to the next
 * fill (FIFO). If the cap is reached with fewer groups, return what was kept (capReached true; the trainer applies its
 * policy: train on what was kept, or stop). Mode 'off': exactly one generate() call, every group kept (no carry).
 */
export class GroupFilter<G> {
  private readonly options: GroupFilterOptions;
  private queue: G[] = [];

  constructor(options: GroupFilterOptions) {
    const problems: string[] = [];
    if (!(Number.isInteger(options.trainGroups) && options.trainGroups >= 1)) problems.push(`trainGroups must be an integer ≥ 1, got ${options.trainGroups}`);
    if (!(Number.isInteger(options.maxGenerationBatches) && options.maxGenerationBatches >= 1)) {
      problems.push(`maxGenerationBatches must be an integer ≥ 1, got ${options.maxGenerationBatches}`);
    }
    if (options.mode !== 'filter' && options.mode !== 'off') problems.push(`mode must be 'filter' or 'off', got ${JSON.stringify(options.mode)}`);
    if (problems.length) throw new Error(`GroupFilter: ${problems.join('; ')}`);
    this.options = { ...options };
  }

  async fill(generate: () => Promise<G[]>, classify: (g: G) => readonly boolean[] | GroupKind): Promise<{ groups: G[]; report: FillReport }> {
    const report: FillReport = {
      generationBatches: 0, keptGroups: 0, droppedAllCorrect: 0, droppedAllWrong: 0, carriedIn: 0, carriedOut: 0, capReached: false,
    };
    if (this.options.mode === 'off') {
      const groups = await generate();
      report.generationBatches = 1;
      report.keptGroups = groups.length;
      return { groups, report };
    }

    const kept = this.queue;
    this.queue = [];
    report.carriedIn = Math.min(kept.length, this.options.trainGroups);
    try {
      while (kept.length < this.options.trainGroups && report.generationBatches < this.options.maxGenerationBatches) {
        const batch = await generate();
        report.generationBatches++;
        for (const group of batch) {
          const verdict = classify(group);
          const kind = typeof verdict === 'string' ? verdict : groupKind(verdict);
          if (kind === 'mixed') kept.push(group);
          else if (kind === 'all-correct') report.droppedAllCorrect++;
          else report.droppedAllWrong++;
        }
      }
    } catch (err) {
      this.queue = kept; // keep what was already accepted, so a retried fill loses nothing
      throw err;
    }
    const groups = kept.slice(0, this.options.trainGroups);
    this.queue = kept.slice(this.options.trainGroups);
    report.keptGroups = groups.length;
    report.carriedOut = this.queue.length;
    report.capReached = groups.length < this.options.trainGroups;
    return { groups, report };
  }

  /** Groups carried over (for checkpoints); restore with setCarried. */
  carried(): G[] {
    return [...this.queue];
  }

  setCarried(groups: G[]): void {
    if (this.options.mode === 'off' && groups.length > 0) {
      throw new Error(`GroupFilter: mode 'off' carries no groups, got ${groups.length} to restore`);
    }
    this.queue = [...groups];
  }
}

/**
 * Mode 'resample' (the DAPO seed's per-prompt variant): for every group whose reward std < 1e-6, ask for a fresh group
 * for the same prompt (`resample(indices)` returns replacements for those indices, in order), repeat while flat, at most
 * maxRounds rounds. Returns the final groups, the number of rounds, and resampleRate = prompts resampled at least once /
 * prompts; still-flat groups are kept (they carry zero advantage).
 */
export async function resampleFlatGroups<G>(
  groups: G[],
  rewards: (g: G) => readonly number[],
  resample: (indices: number[]) => Promise<G[]>,
  maxRounds: number,
): Promise<{ groups: G[]; rounds: number; resampledPrompts: number; resampleRate: number; stillFlat: number }> {
  if (!(Number.isInteger(maxRounds) && maxRounds >= 0)) throw new Error(`resampleFlatGroups: maxRounds must be an integer ≥ 0, got ${maxRounds}`);
  const current = [...groups];
  const isFlat = (group: G) => groupStd(rewards(group)) < FLAT_STD_TOLERANCE;
  const flatIndices = () => current.flatMap((group, i) => (isFlat(group) ? [i] : []));
  const resampled = new Set<number>();
  let rounds = 0;
  for (let flat = flatIndices(); flat.length > 0 && rounds < maxRounds; flat = flatIndices()) {
    const fresh = await resample(flat);
    if (fresh.length !== flat.length) {
      throw new Error(`resampleFlatGroups: resample(${flat.length} indices) returned ${fresh.length} groups; it must return one per index, in order`);
    }
    flat.forEach((index, k) => {
      current[index] = fresh[k];
      resampled.add(index);
    });
    rounds++;
  }
  return {
    groups: current,
    rounds,
    resampledPrompts: resampled.size,
    resampleRate: current.length > 0 ? resampled.size / current.length : 0,
    stillFlat: flatIndices().length,
  };
}
