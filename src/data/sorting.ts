// Sort a list of numbers ascending:   prompt "42,7,19,7="   solution ">7,7,19,42"
// No scratchpad (the answer is the work); lists are multisets, so one list and its permutations share a split.
import type { Knobs, TaskDefinition } from './knobs.js';
import { digitCount } from './knobs.js';
import type { Rng } from './random.js';
import { type ProblemGenerator, scoreExactAnswer } from './task.js';

function sortAscending(values: readonly number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

export const SORTING: TaskDefinition = {
  name: 'sorting',
  knobs: {
    minLength: { kind: 'int', min: 1, max: 16, default: 3, doc: 'fewest numbers in a list' },
    maxLength: { kind: 'int', min: 1, max: 16, default: 5, doc: 'most numbers in a list' },
    maxValue: { kind: 'int', min: 1, max: 999_999, default: 99, doc: 'largest number (the smallest is 0)' },
  },
  ordered: [['minLength', 'maxLength']],
  generator(knobs: Knobs): ProblemGenerator {
    const [minLength, maxLength, maxValue] = [knobs.minLength, knobs.maxLength, knobs.maxValue] as number[];
    const listChars = maxLength * digitCount(maxValue) + maxLength - 1;
    return {
      description: `sort ${minLength}–${maxLength} numbers in [0, ${maxValue}] ascending; the response is '>' and the sorted list`,
      maxPromptChars: listChars + 1,
      maxSolutionChars: 1 + listChars,
      sample(rng: Rng) {
        const values = Array.from({ length: rng.int(minLength, maxLength) }, () => rng.int(0, maxValue));
        const answer = sortAscending(values).join(',');
        return { prompt: `${values.join(',')}=`, answer, solution: `>${answer}` };
      },
      canonical: (prompt) => sortAscending(prompt.slice(0, -1).split(',').map(Number)).join(','),
      score: scoreExactAnswer,
    };
  },
};
