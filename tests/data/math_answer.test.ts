// Final-answer extraction and comparison as the DAPO rule-based reward reads math completions: the last \boxed{…}
// (balanced braces), GSM8K's '#### n', "the answer is n" / "Answer: n"; normalised numbers compared exactly; +1/−1.
import { describe, expect, it } from 'vitest';
import { answersMatch, extractAnswer, lastBoxed, mathReward, normalizeAnswer, referenceAnswer } from '../../src/data/math_answer.js';

describe('lastBoxed', () => {
  it('reads the last box with balanced (nested) braces', () => {
    expect(lastBoxed('so \\boxed{3} or rather \\boxed{\\frac{1}{2}}.')).toBe('\\frac{1}{2}');
    expect(lastBoxed('\\boxed{\\{1, 2\\}}')).toBe('\\{1, 2\\}');
    expect(lastBoxed('\\fbox{7}')).toBe('7');
    expect(lastBoxed('\\boxed {12}')).toBe('12');
    expect(lastBoxed('\\boxed 5 is it')).toBe('5');
  });
  it('finds nothing without a box or in an unclosed (truncated) one', () => {
    expect(lastBoxed('the answer is 4')).toBeNull();
    expect(lastBoxed('\\boxed{\\frac{1}{2}')).toBeNull();
    expect(lastBoxed('\\boxed{3} then \\boxed{4')).toBeNull();
  });
});

describe('extractAnswer', () => {
  const cases: [string, string | null, string | null][] = [
    ['We get 3, so the answer is \\boxed{42}.', '42', 'boxed'],
    ['\\boxed{1} ... #### 7', '1', 'boxed'],
    ['Natalia sold 48/2 = 24 clips in May.\nShe sold 48+24 = 72 clips.\n#### 72', '72', 'hashes'],
    ['#### 1,000\n', '1,000', 'hashes'],
    ['#### $18.', '$18', 'hashes'],
    ['So the answer is 42 apples.', '42', 'answer-is'],
    ['The final answer is: -3.', '-3', 'answer-is'],
    ['Answer: 18\n', '18', 'answer-is'],
    ['answer is 5, no wait, the answer is 6.', '6', 'answer-is'],
    ['The answer is $\\frac{3}{4}$.', '\\frac{3}{4}', 'answer-is'],
    ['I think it is 12.', null, null],
    ['####\n', null, null],
  ];
  it.each(cases)('%j → %j (%s)', (completion, text, source) => {
    const extracted = extractAnswer(completion);
    if (text === null) expect(extracted).toBeNull();
    else expect(extracted).toEqual({ text, source });
  });
});

describe('normalizeAnswer and answersMatch', () => {
  it('puts numbers in one canonical decimal form', () => {
    expect(normalizeAnswer('1,000')).toBe('1000');
    expect(normalizeAnswer('$1,234.50')).toBe('1234.5');
    expect(normalizeAnswer('+7.0')).toBe('7');
    expect(normalizeAnswer('007')).toBe('7');
    expect(normalizeAnswer('−3')).toBe('-3');
    expect(normalizeAnswer('-0')).toBe('0');
    expect(normalizeAnswer('.50')).toBe('0.5');
    expect(normalizeAnswer('18.')).toBe('18');
    expect(normalizeAnswer('\\$5')).toBe('5');
  });
  it('drops LaTeX spacing, \\left/\\right, \\text{} and reads \\dfrac as \\frac', () => {
    expect(normalizeAnswer('\\dfrac{1}{2}')).toBe('\\frac{1}{2}');
    expect(normalizeAnswer('\\left( 1, 2 \\right)')).toBe('(1,2)');
    expect(normalizeAnswer('\\text{east}')).toBe('east');
    expect(normalizeAnswer('3\\,\\!')).toBe('3');
  });
  it('compares integers exactly (no tolerance) and other answers by their normal form', () => {
    expect(answersMatch('72', '72')).toBe(true);
    expect(answersMatch('1,000', '1000')).toBe(true);
    expect(answersMatch('7.00', '7')).toBe(true);
    expect(answersMatch('1000001', '1000000')).toBe(false);
    expect(answersMatch('72.0000001', '72')).toBe(false);
    expect(answersMatch('-5', '5')).toBe(false);
    expect(answersMatch('\\tfrac{3}{4}', '\\frac{3}{4}')).toBe(true);
    expect(answersMatch('', '')).toBe(false);
  });
});

describe('referenceAnswer and mathReward', () => {
  it('reads a reference from a bare answer, a GSM8K answer or a MATH solution', () => {
    expect(referenceAnswer(' 72 ')).toBe('72');
    expect(referenceAnswer('48/2 = <<48/2=24>>24\n#### 72')).toBe('72');
    expect(referenceAnswer('Thus $x = \\boxed{\\frac{3}{4}}$.')).toBe('\\frac{3}{4}');
  });
  it('gives +1 for the right final answer and −1 otherwise (none, wrong, truncated box)', () => {
    expect(mathReward('... so \\boxed{72}', '72')).toBe(1);
    expect(mathReward('She sold 72 clips.\n#### 72', '#### 72'.slice(5))).toBe(1);
    expect(mathReward('The answer is 1,000.', '1000')).toBe(1);
    expect(mathReward('The answer is 71.', '72')).toBe(-1);
    expect(mathReward('It is 72', '72')).toBe(-1);
    expect(mathReward('\\boxed{72', '72')).toBe(-1);
  });
});
