// Long multiplication with a partial-product scratchpad, one per multiplier digit from the right, each
// already shifted:   prompt "123*45="   solution "615+4920>5535"
import { binaryOperands, sortedOperands } from './addition.js';
import type { Knobs, TaskDefinition } from './knobs.js';
import type { Rng } from './random.js';
import { type ProblemGenerator, scoreExactAnswer } from './task.js';

/** a × (each digit of b, right to left) × 10^position, joined by '+'. */
export function multiplicationScratchpad(a: string, b: string): string {
  const partials: string[] = [];
  for (let i = 0; i < b.length; i++) {
    const digit = BigInt(b.charCodeAt(b.length - 1 - i) - 48);
    partials.push((BigInt(a) * digit * 10n ** BigInt(i)).toString());
  }
  return partials.join('+');
}

export const MULTIPLICATION: TaskDefinition = {
  name: 'multiplication',
  knobs: {
    minDigitsA: { kind: 'int', min: 1, max: 12, default: 1, doc: 'fewest digits of the multiplicand' },
    maxDigitsA: { kind: 'int', min: 1, max: 12, default: 3, doc: 'most digits of the multiplicand' },
    minDigitsB: { kind: 'int', min: 1, max: 12, default: 1, doc: 'fewest digits of the multiplier' },
    maxDigitsB: { kind: 'int', min: 1, max: 12, default: 2, doc: 'most digits of the multiplier' },
  },
  ordered: [['minDigitsA', 'maxDigitsA'], ['minDigitsB', 'maxDigitsB']],
  generator(knobs: Knobs): ProblemGenerator {
    const [minA, maxA, minB, maxB] = [knobs.minDigitsA, knobs.maxDigitsA, knobs.minDigitsB, knobs.maxDigitsB] as number[];
    let partialChars = 0;
    for (let i = 0; i < maxB; i++) partialChars += maxA + 1 + i; // a × digit has ≤ maxA + 1 digits, then i zeros
    return {
      description: `a*b with ${minA}–${maxA}-digit a and ${minB}–${maxB}-digit b; the response lists the shifted partial products, then '>' and the product`,
      maxPromptChars: maxA + maxB + 2,
      maxSolutionChars: partialChars + (maxB - 1) + 1 + maxA + maxB,
      sample(rng: Rng) {
        const a = rng.digits(rng.int(minA, maxA));
        const b = rng.digits(rng.int(minB, maxB));
        const answer = (BigInt(a) * BigInt(b)).toString();
        return { prompt: `${a}*${b}=`, answer, solution: `${multiplicationScratchpad(a, b)}>${answer}` };
      },
      canonical: (prompt) => sortedOperands(...binaryOperands(prompt, '*')).join('*'),
      score: scoreExactAnswer,
    };
  },
};
