import { TrainConfigError } from '../../src/rl/config.js';

/** The problems a config call reports through TrainConfigError (fails when it throws nothing or something else). */
export function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof TrainConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a TrainConfigError');
}
