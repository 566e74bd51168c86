// Countdown: reach the target from the given numbers with + - * and exact /, each number used at most once.
//   prompt "7,25,3:82="   solution "25*3=75,75+7=82>25*3+7"
// The scratchpad lists the generating steps; only the expression after '>' is checked, by a small parser
// (never eval) that rejects unknown or reused numbers, division by zero and inexact division.
import type { Knobs, TaskDefinition } from './knobs.js';
import { digitCount } from './knobs.js';
import type { Rng } from './random.js';
import { type Problem, type ProblemGenerator, type ScoreResult, markedAnswer } from './task.js';

export interface CountdownCheck {
  /** The expression is well formed, uses only given numbers (each at most once) and equals the target. */
  ok: boolean;
  /** Its value when it parsed and evaluated; null otherwise. */
  value: number | null;
  /** Why it is not ok; null when ok. */
  reason: string | null;
}

/** Longer expressions are rejected before parsing (bounds the recursion depth). */
const MAX_EXPRESSION_CHARS = 256;

class CountdownError extends Error {}

/** Recursive-descent evaluation of expr := term (('+'|'-') term)*, term := factor (('*'|'/') factor)*, factor := number | '(' expr ')'. */
class ExpressionEvaluator {
  private pos = 0;
  private readonly remaining = new Map<number, number>();

  constructor(private readonly text: string, numbers: readonly number[]) {
    for (const n of numbers) this.remaining.set(n, (this.remaining.get(n) ?? 0) + 1);
  }

  evaluate(): number {
    const value = this.expr();
    this.skipSpaces();
    if (this.pos < this.text.length) throw new CountdownError(`unexpected '${this.text[this.pos]}' at position ${this.pos}`);
    return value;
  }

  private skipSpaces(): void {
    while (this.text[this.pos] === ' ') this.pos++;
  }

  private peek(): string | undefined {
    this.skipSpaces();
    return this.text[this.pos];
  }

  private expr(): number {
    let value = this.term();
    for (let op = this.peek(); op === '+' || op === '-'; op = this.peek()) {
      this.pos++;
      value = checked(op === '+' ? value + this.term() : value - this.term());
    }
    return value;
  }

  private term(): number {
    let value = this.factor();
    for (let op = this.peek(); op === '*' || op === '/'; op = this.peek()) {
      this.pos++;
      const rhs = this.factor();
      if (op === '*') value = checked(value * rhs);
      else {
        if (rhs === 0) throw new CountdownError('division by zero');
        if (value % rhs !== 0) throw new CountdownError(`inexact division ${value}/${rhs}`);
        value = value / rhs;
      }
    }
    return value;
  }

  private factor(): number {
    const ch = this.peek();
    if (ch === '(') {
      this.pos++;
      const value = this.expr();
      if (this.peek() !== ')') throw new CountdownError(`missing ')' at position ${this.pos}`);
      this.pos++;
      return value;
    }
    const digits = /^\d+/.exec(this.text.slice(this.pos))?.[0];
    if (digits === undefined) throw new CountdownError(ch === undefined ? 'expression ends early' : `expected a number or '(' at position ${this.pos}, got '${ch}'`);
    if (digits.length > 1 && digits[0] === '0') throw new CountdownError(`number ${digits} has a leading zero`);
    this.pos += digits.length;
    const number = Number(digits);
    const left = this.remaining.get(number);
    if (left === undefined) throw new CountdownError(`${digits} is not one of the given numbers`);
    if (left === 0) throw new CountdownError(`${digits} is used more often than it is given`);
    this.remaining.set(number, left - 1);
    return number;
  }
}

function checked(value: number): number {
  if (!Number.isSafeInteger(value)) throw new CountdownError('an intermediate value is out of range');
  return value;
}

/** Checks a Countdown expression against the given numbers and target. */
export function checkCountdown(numbers: readonly number[], target: number, expression: string): CountdownCheck {
  if (expression.length > MAX_EXPRESSION_CHARS) return { ok: false, value: null, reason: `expression longer than ${MAX_EXPRESSION_CHARS} characters` };
  let value: number;
  try {
    value = new ExpressionEvaluator(expression, numbers).evaluate();
  } catch (e) {
    if (e instanceof CountdownError) return { ok: false, value: null, reason: e.message };
    throw e;
  }
  return value === target ? { ok: true, value, reason: null } : { ok: false, value, reason: `value ${value} is not the target ${target}` };
}

/** Reads the numbers and target back from a countdown prompt "n1,n2,...:target=". */
export function parseCountdownPrompt(prompt: string): { numbers: number[]; target: number } {
  const match = /^(\d+(?:,\d+)*):(\d+)=$/.exec(prompt);
  if (!match) throw new Error(`not a countdown prompt: ${JSON.stringify(prompt)}`);
  return { numbers: match[1].split(',').map(Number), target: Number(match[2]) };
}

interface Node {
  value: number;
  text: string;
  /** 1 for + -, 2 for * /, 3 for a number: decides where parentheses are needed. */
  precedence: number;
}

/** a op b with the fewest parentheses that keep the left-to-right evaluation order. */
function combine(a: Node, op: string, b: Node, value: number): Node {
  const precedence = op === '+' || op === '-' ? 1 : 2;
  const left = a.precedence < precedence ? `(${a.text})` : a.text;
  const rightNeedsParens = b.precedence < precedence || (b.precedence === precedence && (op === '-' || op === '/'));
  const right = rightNeedsParens ? `(${b.text})` : b.text;
  return { value, text: `${left}${op}${right}`, precedence };
}

const MAX_SAMPLE_ATTEMPTS = 10_000;

export const COUNTDOWN: TaskDefinition = {
  name: 'countdown',
  knobs: {
    count: { kind: 'int', min: 2, max: 6, default: 3, doc: 'how many numbers are given (the generating solution uses all)' },
    minValue: { kind: 'int', min: 1, max: 999, default: 1, doc: 'smallest given number' },
    maxValue: { kind: 'int', min: 1, max: 999, default: 25, doc: 'largest given number' },
    maxTarget: { kind: 'int', min: 1, max: 9999, default: 100, doc: 'largest target (the smallest is 1)' },
    allowDivision: { kind: 'bool', default: true, doc: 'whether solutions may divide (always exactly)' },
  },
  ordered: [['minValue', 'maxValue']],
  generator(knobs: Knobs): ProblemGenerator {
    const [count, minValue, maxValue, maxTarget] = [knobs.count, knobs.minValue, knobs.maxValue, knobs.maxTarget] as number[];
    const ops = knobs.allowDivision ? ['+', '-', '*', '/'] : ['+', '-', '*'];
    // Intermediate values stay positive integers with no more digits than the target or the given numbers.
    const intermediateDigits = Math.max(digitCount(maxTarget), digitCount(maxValue));
    const maxIntermediate = 10 ** intermediateDigits - 1;
    const stepChars = 3 * intermediateDigits + 2; // "x op y=z"
    const expressionChars = count * digitCount(maxValue) + (count - 1) + 2 * (count - 2);
    return {
      description: `reach a target ≤ ${maxTarget} from ${count} numbers in [${minValue}, ${maxValue}] with + - *${knobs.allowDivision ? ' /' : ''}, ` +
        "each at most once; the response lists steps, then '>' and one expression",
      maxPromptChars: count * digitCount(maxValue) + (count - 1) + 1 + digitCount(maxTarget) + 1,
      maxSolutionChars: (count - 1) * stepChars + (count - 2) + 1 + expressionChars,
      sample(rng: Rng) {
        for (let attempt = 0; attempt < MAX_SAMPLE_ATTEMPTS; attempt++) {
          const numbers = Array.from({ length: count }, () => rng.int(minValue, maxValue));
          const pool: Node[] = numbers.map((n) => ({ value: n, text: String(n), precedence: 3 }));
          const steps: string[] = [];
          while (pool.length > 1) {
            const i = rng.int(0, pool.length - 1);
            let j = rng.int(0, pool.length - 2);
            if (j >= i) j++;
            const op = rng.pick(ops);
            let [a, b] = [pool[i], pool[j]];
            if ((op === '-' || op === '/') && a.value < b.value) [a, b] = [b, a];
            const value = op === '+' ? a.value + b.value : op === '-' ? a.value - b.value : op === '*' ? a.value * b.value
              : a.value % b.value === 0 ? a.value / b.value : 0;
            if (value < 1 || value > maxIntermediate) break;
            steps.push(`${a.value}${op}${b.value}=${value}`);
            pool.splice(Math.max(i, j), 1);
            pool.splice(Math.min(i, j), 1);
            pool.push(combine(a, op, b, value));
          }
          const root = pool[0];
          if (pool.length !== 1 || root.value > maxTarget) continue;
          return { prompt: `${numbers.join(',')}:${root.value}=`, answer: root.text, solution: `${steps.join(',')}>${root.text}` };
        }
        throw new Error(`countdown: no problem with every intermediate value in [1, ${maxIntermediate}] and target ≤ ${maxTarget} ` +
          `in ${MAX_SAMPLE_ATTEMPTS} tries; widen the value range or raise maxTarget`);
      },
      canonical(prompt) {
        const { numbers, target } = parseCountdownPrompt(prompt);
        return `${[...numbers].sort((x, y) => x - y).join(',')}:${target}`;
      },
      score(problem: Problem, response: string): ScoreResult {
        const extracted = markedAnswer(response);
        if (extracted === null) return { correct: false, extracted };
        const { numbers, target } = parseCountdownPrompt(problem.prompt);
        return { correct: checkCountdown(numbers, target, extracted).ok, extracted };
      },
    };
  },
};
