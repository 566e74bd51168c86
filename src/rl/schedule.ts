// Learning-rate schedules: linear warm-up, then constant or cosine decay.

export type LrSchedule = 'constant' | 'cosine';
export const LR_SCHEDULES: readonly LrSchedule[] = ['constant', 'cosine'];

export interface LrScheduleOptions {
  lr: number;
  warmupSteps: number;
  totalSteps: number;
  schedule: LrSchedule;
  minLrRatio: number;
}

/** step is 0-based; linear warm-up from lr/warmupSteps to lr over warmupSteps steps (step < warmup: lr·(step+1)/warmup),
 *  then constant, or cosine decay to lr·minLrRatio at totalSteps (held there afterwards). */
export function learningRate(step: number, o: LrScheduleOptions): number {
  const problems: string[] = [];
  if (!(Number.isInteger(step) && step >= 0)) problems.push(`step must be an integer ≥ 0, got ${step}`);
  if (!(o.lr >= 0 && Number.isFinite(o.lr))) problems.push(`lr must be a finite number ≥ 0, got ${o.lr}`);
  if (!(Number.isInteger(o.warmupSteps) && o.warmupSteps >= 0)) problems.push(`warmupSteps must be an integer ≥ 0, got ${o.warmupSteps}`);
  if (!(Number.isInteger(o.totalSteps) && o.totalSteps >= 1)) problems.push(`totalSteps must be an integer ≥ 1, got ${o.totalSteps}`);
  if (!LR_SCHEDULES.includes(o.schedule)) problems.push(`schedule must be one of ${LR_SCHEDULES.join(', ')}, got ${JSON.stringify(o.schedule)}`);
  if (!(o.minLrRatio >= 0 && o.minLrRatio <= 1)) problems.push(`minLrRatio must be in [0, 1], got ${o.minLrRatio}`);
  if (problems.length) throw new Error(`learningRate: ${problems.join('; ')}`);

  if (step < o.warmupSteps) return (o.lr * (step + 1)) / o.warmupSteps;
  if (o.schedule === 'constant') return o.lr;
  const decaySteps = o.totalSteps - o.warmupSteps;
  const progress = decaySteps > 0 ? Math.min(1, (step - o.warmupSteps) / decaySteps) : 1;
  const cosine = 0.5 * (1 + Math.cos(Math.PI * progress));
  return o.lr * (o.minLrRatio + (1 - o.minLrRatio) * cosine);
}
