// Multi-digit addition with a column-sum scratchpad, right to left:
//   prompt "957+68="   solution "15,12,10>1025"
// Each scratchpad entry is one column's total (digit + digit + carry in); its last digit is the answer digit
// and a two-digit total carries 1. Operand digit counts are drawn independently, so lengths vary per problem.
import type { Knobs, TaskDefinition } from './knobs.js';
import type { Rng } from './random.js';
import { type ProblemGenerator, scoreExactAnswer } from './task.js';

/** The column totals of a + b (decimal strings), right to left, comma separated. */
export function additionScratchpad(a: string, b: string): string {
  const totals: number[] = [];
  let carry = 0;
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const total = digitAt(a, i) + digitAt(b, i) + carry;
    totals.push(total);
    carry = total >= 10 ? 1 : 0;
  }
  return totals.join(',');
}

/** Digit i counted from the right (0 beyond the number's length). */
function digitAt(n: string, i: number): number {
  return i < n.length ? n.charCodeAt(n.length - 1 - i) - 48 : 0;
}

/** Orders two decimal strings by value (no leading zeros), so a+b and b+a share a canonical form. */
export function sortedOperands(a: string, b: string): [string, string] {
  const aFirst = a.length !== b.length ? a.length < b.length : a <= b;
  return aFirst ? [a, b] : [b, a];
}

/** Splits "a<op>b=" into its operands, or throws (prompts are always generated, so this is a bug guard). */
export function binaryOperands(prompt: string, op: string): [string, string] {
  const match = new RegExp(`^(\\d+)\\${op}(\\d+)=$`).exec(prompt);
  if (!match) throw new Error(`not a '${op}' prompt: ${JSON.stringify(prompt)}`);
  return [match[1], match[2]];
}

export const ADDITION: TaskDefinition = {
  name: 'addition',
  knobs: {
    minDigits: { kind: 'int', min: 1, max: 18, default: 1, doc: 'fewest digits of an operand' },
    maxDigits: { kind: 'int', min: 1, max: 18, default: 3, doc: 'most digits of an operand' },
  },
  ordered: [['minDigits', 'maxDigits']],
  generator(knobs: Knobs): ProblemGenerator {
    const minDigits = knobs.minDigits as number;
    const maxDigits = knobs.maxDigits as number;
    return {
      description: `a+b with ${minDigits}–${maxDigits}-digit operands; the response lists column totals right to left, then '>' and the sum`,
      maxPromptChars: 2 * maxDigits + 2,
      // maxDigits totals of ≤ 2 digits, commas between, '>', and a sum of ≤ maxDigits + 1 digits.
      maxSolutionChars: 3 * maxDigits - 1 + 1 + maxDigits + 1,
      sample(rng: Rng) {
        const a = rng.digits(rng.int(minDigits, maxDigits));
        const b = rng.digits(rng.int(minDigits, maxDigits));
        const answer = (BigInt(a) + BigInt(b)).toString();
        return { prompt: `${a}+${b}=`, answer, solution: `${additionScratchpad(a, b)}>${answer}` };
      },
      canonical: (prompt) => sortedOperands(...binaryOperands(prompt, '+')).join('+'),
      score: scoreExactAnswer,
    };
  },
};
