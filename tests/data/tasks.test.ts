// The data side of the trainer: tokenizer, built-in verifiable-reward tasks, countdown checker, GSM8K loader.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/nn/config.js';
import { additionScratchpad } from '../../src/data/addition.js';
import { checkCountdown } from '../../src/data/countdown.js';
import { extractFinalNumber, gsm8kTask, gsm8kTokenizer, numericEqual, parseGsm8kJsonl } from '../../src/data/gsm8k.js';
import { multiplicationScratchpad } from '../../src/data/multiplication.js';
import { type Problem, TASK_DEFAULTS, TASK_NAMES, makeTask } from '../../src/data/tasks.js';
import { CharTokenizer, TASK_TOKENIZER } from '../../src/data/tokenizer.js';

const problemOf = (prompt: string, answer: string): Problem => ({ id: 'hand', prompt, answer, solution: '' });

describe('CharTokenizer', () => {
  it('round-trips text, reserves pad 0 / eos 1, and fits the default model vocabulary', () => {
    const tok = new CharTokenizer('ab+');
    expect(tok.vocabSize).toBe(5);
    expect(tok.encode('ba+a')).toEqual([3, 2, 4, 2]);
    expect(tok.decode([0, 3, 1, 2, 4, 0])).toBe('ba+');
    const text = '957+68=15,12,10>1025';
    expect(TASK_TOKENIZER.decode(TASK_TOKENIZER.encode(text))).toBe(text);
    expect(TASK_TOKENIZER.vocabSize).toBe(32);
    expect([TASK_TOKENIZER.padId, TASK_TOKENIZER.eosId]).toEqual([0, 1]);
    expect(TASK_TOKENIZER.encode(TASK_TOKENIZER.alphabet.join(''))).not.toContain(TASK_TOKENIZER.padId);
  });

  it('names the first unknown character and its position, and rejects ids outside the vocabulary', () => {
    expect(() => TASK_TOKENIZER.encode('12+x4=y')).toThrow(/'x' \(U\+0078\) at position 3/);
    expect(() => TASK_TOKENIZER.encode('1\n')).toThrow(/U\+000A at position 1/);
    expect(() => TASK_TOKENIZER.decode([2, 32])).toThrow(/token 32 at position 1: outside the vocabulary of size 32/);
    expect(() => new CharTokenizer('abca')).toThrow(/repeats 'a'/);
    expect(() => new CharTokenizer('')).toThrow(/empty/);
  });

  it('builds an alphabet from texts with stable ids', () => {
    const tok = CharTokenizer.fromTexts(['ba', 'c a']);
    expect(tok.alphabet.join('')).toBe(' abc');
    expect(tok.decode(tok.encode('a cab'))).toBe('a cab');
  });
});

describe('built-in tasks', () => {
  for (const name of TASK_NAMES) {
    describe(name, () => {
      const task = makeTask({ name });

      it('is deterministic in its config and seed', () => {
        const again = makeTask({ ...TASK_DEFAULTS[name] });
        const other = makeTask({ name, seed: 7 });
        const ids = [0, 1, 2, 17, 999, 123_456];
        expect(ids.map((i) => again.problem('train', i))).toEqual(ids.map((i) => task.problem('train', i)));
        expect(again.problem('test', task.testSize - 1)).toEqual(task.problem('test', task.testSize - 1));
        const differs = ids.filter((i) => other.problem('train', i).prompt !== task.problem('train', i).prompt);
        expect(differs.length).toBeGreaterThanOrEqual(4);
      });

      it('keeps the test split disjoint from train (by canonical form) and distinct', () => {
        expect(task.testSize).toBe(200);
        const test = new Set(Array.from({ length: task.testSize }, (_, i) => task.canonical(task.problem('test', i))));
        expect(test.size).toBe(task.testSize);
        for (let i = 0; i < 3000; i++) expect(test.has(task.canonical(task.problem('train', i)))).toBe(false);
        expect(() => task.problem('test', task.testSize)).toThrow(/out of range/);
        expect(() => task.problem('train', -1)).toThrow(/integer ≥ 0/);
      });

      it('scores every solution correct and fits it in the length limits', () => {
        const problems = [...Array.from({ length: 1500 }, (_, i) => task.problem('train', i)),
          ...Array.from({ length: task.testSize }, (_, i) => task.problem('test', i))];
        for (const p of problems) {
          const result = task.score(p, p.solution);
          if (!result.correct) throw new Error(`${p.id} ${p.prompt} ${p.solution} scored wrong`);
          expect(task.tokenizer.encode(p.prompt).length).toBeLessThanOrEqual(task.maxPromptLength);
          expect(task.tokenizer.encode(p.solution).length + 1).toBeLessThanOrEqual(task.maxResponseLength);
        }
        expect(task.maxPromptLength + task.maxResponseLength).toBeLessThanOrEqual(64);
      });

      it('scores malformed responses wrong', () => {
        const p = task.problem('train', 3);
        const answer = p.solution.slice(p.solution.indexOf('>') + 1);
        expect(task.score(p, answer)).toEqual({ correct: false, extracted: null }); // no marker
        expect(task.score(p, `${p.solution}>${answer}`).correct).toBe(false); // two markers
        expect(task.score(p, '').correct).toBe(false);
        expect(task.score(p, `${p.solution}9`).correct).toBe(false);
      });
    });
  }

  it('addition: column totals right to left, hand cases scored on the final answer only', () => {
    expect(additionScratchpad('957', '68')).toBe('15,12,10');
    expect(additionScratchpad('5', '7')).toBe('12');
    expect(additionScratchpad('1000', '9')).toBe('9,0,0,1');
    const task = makeTask({ name: 'addition' });
    const p = problemOf('957+68=', '1025');
    expect(task.score(p, '15,12,10>1025')).toEqual({ correct: true, extracted: '1025' });
    expect(task.score(p, '>1025').correct).toBe(true);
    expect(task.score(p, '15,12,10>1024')).toEqual({ correct: false, extracted: '1024' });
    expect(task.score(p, '15,12,10>01025').correct).toBe(false);
    expect(task.score(p, '15,12,10>1025,')).toEqual({ correct: false, extracted: '1025,' });
    expect(task.canonical(problemOf('68+957=', ''))).toBe(task.canonical(p));
  });

  it('addition default: prompt ≤ 12, response ≤ 20 tokens incl. EOS, response length varies', () => {
    const task = makeTask({ name: 'addition' });
    expect(task.maxPromptLength).toBeLessThanOrEqual(12);
    expect(task.maxResponseLength).toBe(20);
    const lengths = Array.from({ length: 4000 }, (_, i) => task.tokenizer.encode(task.problem('train', i).solution).length + 1);
    const min = Math.min(...lengths);
    const max = Math.max(...lengths);
    const mean = lengths.reduce((a, b) => a + b, 0) / lengths.length;
    console.log(`addition default response length (incl. EOS) over 4000 train problems: min ${min}, mean ${mean.toFixed(2)}, max ${max}, distinct ${new Set(lengths).size}`);
    expect(min).toBe(4); // "d>d" + EOS
    expect(max).toBe(14); // three two-digit totals, 4-digit sum
    expect(new Set(lengths).size).toBeGreaterThanOrEqual(10);
    expect(mean).toBeGreaterThan(7);
    expect(mean).toBeLessThan(12);
  });

  it('multiplication: shifted partial products', () => {
    expect(multiplicationScratchpad('123', '45')).toBe('615+4920');
    expect(multiplicationScratchpad('7', '10')).toBe('0+70');
    const task = makeTask({ name: 'multiplication' });
    expect(task.score(problemOf('123*45=', '5535'), '615+4920>5535').correct).toBe(true);
    expect(task.score(problemOf('123*45=', '5535'), '615+492>1107').correct).toBe(false);
  });

  it('countdown: the task accepts any valid expression, not only the reference', () => {
    const task = makeTask({ name: 'countdown' });
    const p = problemOf('3,7,25:82=', '25*3+7');
    expect(task.score(p, '25*3=75,75+7=82>25*3+7')).toEqual({ correct: true, extracted: '25*3+7' });
    expect(task.score(p, '>7+3*25').correct).toBe(true);
    expect(task.score(p, '>(25+7)*3').correct).toBe(false);
    expect(task.score(p, '>25*3+7+0').correct).toBe(false);
  });

  it('sorting: exact ascending list', () => {
    const task = makeTask({ name: 'sorting' });
    const p = problemOf('42,7,19,7=', '7,7,19,42');
    expect(task.score(p, '>7,7,19,42').correct).toBe(true);
    expect(task.score(p, '>7,19,42').correct).toBe(false);
    expect(task.canonical(problemOf('7,42,7,19=', ''))).toBe(task.canonical(p));
  });
});

describe('countdown checker', () => {
  const reason = (nums: number[], target: number, e: string) => checkCountdown(nums, target, e).reason;

  it('evaluates with precedence, left associativity and parentheses', () => {
    expect(checkCountdown([2, 3, 4], 14, '2+3*4')).toEqual({ ok: true, value: 14, reason: null });
    expect(checkCountdown([2, 3, 4], 14, '(2+3)*4')).toEqual({ ok: false, value: 20, reason: 'value 20 is not the target 14' });
    expect(checkCountdown([2, 3, 4], 20, ' ( 2 + 3 ) * 4 ').ok).toBe(true);
    expect(checkCountdown([8, 4, 2], 1, '8/4/2').ok).toBe(true);
    expect(checkCountdown([8, 4, 2], 4, '8/(4/2)').ok).toBe(true);
    expect(checkCountdown([8, 4, 2], 2, '8-4-2').ok).toBe(true);
    expect(checkCountdown([8, 4, 2], 6, '8-(4-2)').ok).toBe(true);
    expect(checkCountdown([3, 7, 25, 50], 75, '50+25').ok).toBe(true); // a subset is fine
    expect(checkCountdown([5, 5], 0, '5-5').ok).toBe(true);
  });

  it('rejects reused and unknown numbers, division by zero, inexact division and malformed text', () => {
    expect(reason([3, 7, 25], 75, '25+25+25')).toBe('25 is used more often than it is given');
    expect(checkCountdown([25, 25, 25], 75, '25+25+25').ok).toBe(true);
    expect(reason([3, 7, 25], 100, '4*25')).toBe('4 is not one of the given numbers');
    expect(reason([2, 2, 5], 0, '5/(2-2)')).toBe('division by zero');
    expect(reason([7, 2], 3, '7/2')).toBe('inexact division 7/2');
    expect(reason([2, 3], 5, '2+')).toBe('expression ends early');
    expect(reason([2, 3], 5, '(2+3')).toMatch(/missing '\)'/);
    expect(reason([2, 3], 5, '2+3)')).toMatch(/unexpected '\)'/);
    expect(reason([2, 3], 5, '2 3')).toMatch(/unexpected '3'/);
    expect(reason([2, 3], 1, '-2+3')).toMatch(/expected a number/);
    expect(reason([2, 3], 5, '02+3')).toBe('number 02 has a leading zero');
    expect(reason([2, 3], 5, '')).toBe('expression ends early');
    expect(reason([2, 3], 5, `${'('.repeat(200)}2+3${')'.repeat(200)}`)).toMatch(/longer than 256/);
  });
});

describe('task configs', () => {
  it('lists every problem at once: unknown knobs, bad values', () => {
    let error: unknown;
    try {
      makeTask({ name: 'addition', minDigits: 0, maxDigitz: 3, seed: -1, holdoutFraction: 1 });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(4);
    expect(problems[0]).toMatch(/unknown knob 'maxDigitz' \(allowed: seed, testSize, holdoutFraction, minDigits, maxDigits\)/);
    expect((error as Error).message).toMatch(/minDigits must be an integer in \[1, 18\], got 0/);
    expect((error as Error).message).toMatch(/seed must be an integer in \[0, 4294967295\], got -1/);
    expect((error as Error).message).toMatch(/holdoutFraction must be a number in \(0, 1\), got 1/);
  });

  it('checks knobs against each other, names unknown tasks, and refuses a too-small problem space', () => {
    expect(() => makeTask({ name: 'multiplication', minDigitsA: 3, maxDigitsA: 2, minDigitsB: 2, maxDigitsB: 1 }))
      .toThrow(/minDigitsA 3 must be ≤ maxDigitsA 2\n.*minDigitsB 2 must be ≤ maxDigitsB 1/);
    expect(() => makeTask({ name: 'countdown', allowDivision: 'yes' })).toThrow(/allowDivision must be true or false, got "yes"/);
    expect(() => makeTask({ name: 'division' })).toThrow(/unknown task "division" \(allowed: addition, multiplication, countdown, sorting\)/);
    expect(() => makeTask({ name: 'addition', maxDigits: 1 })).toThrow(/too small.*lower testSize/);
    const small = makeTask({ name: 'addition', maxDigits: 1, testSize: 5, holdoutFraction: 0.2 });
    expect(small.testSize).toBe(5);
    expect(() => makeTask({ name: 'countdown', count: 2, minValue: 50, maxValue: 50, maxTarget: 10, allowDivision: false }))
      .toThrow(/countdown: no problem/);
  });

  it('TASK_DEFAULTS holds every knob and builds the same task as the bare name', () => {
    expect(TASK_NAMES[0]).toBe('addition');
    expect(TASK_DEFAULTS.addition).toEqual({ name: 'addition', seed: 0, testSize: 200, holdoutFraction: 0.05, minDigits: 1, maxDigits: 3 });
    for (const name of TASK_NAMES) expect(makeTask(TASK_DEFAULTS[name]).problem('train', 5)).toEqual(makeTask({ name }).problem('train', 5));
  });
});

describe('GSM8K', () => {
  const jsonl = [
    JSON.stringify({ question: 'Tom has 3 apples and buys 4. How many?', answer: '3+4=<<3+4=7>>7\n#### 7' }),
    '',
    JSON.stringify({ question: 'A car costs $12,500 and a bike $1,250. Total?', answer: '12500+1250=13750\n#### 13,750' }),
    JSON.stringify({ question: 'It is 5 degrees and drops 8. Temperature?', answer: '5-8=-3\n#### -3' }),
    JSON.stringify({ question: 'Half of 7?', answer: '7/2=3.5\n#### $3.5' }),
  ].join('\r\n');

  it('parses answers with commas, negatives, decimals and $; skips blank lines', () => {
    const records = parseGsm8kJsonl(jsonl, 'mini.jsonl');
    expect(records.map((r) => r.final)).toEqual(['7', '13750', '-3', '3.5']);
    expect(records[0].answer).toBe('3+4=<<3+4=7>>7\n#### 7');
  });

  it('reports every bad line as source:line with the problem', () => {
    const bad = ['{"question": "q", "answer": "#### 1"}', '{"question": "q", "answer": ', '{"question": "q", "answer": "no final"}',
      '{"question": "q", "answer": "#### twelve"}', '[1]', '{"answer": "#### 2"}'].join('\n');
    let message = '';
    try {
      parseGsm8kJsonl(bad, 'train.jsonl');
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/5 bad lines/);
    expect(message).toMatch(/train\.jsonl:2: invalid JSON/);
    expect(message).toMatch(/train\.jsonl:3: the answer has no '#### <number>' final answer/);
    expect(message).toMatch(/train\.jsonl:4: the final answer after '####' is not a number: "twelve"/);
    expect(message).toMatch(/train\.jsonl:5: expected an object/);
    expect(message).toMatch(/train\.jsonl:6: "question" must be a non-empty string/);
    expect(message).not.toMatch(/train\.jsonl:1:/);
  });

  it('extracts the final number ("####" preferred) and compares numerically', () => {
    expect(extractFinalNumber('So 3+4=7 apples.\n#### 7')).toBe('7');
    expect(extractFinalNumber('#### 1,234 then 99')).toBe('1234');
    expect(extractFinalNumber('the total is $12,500.50, not 3')).toBe('3');
    expect(extractFinalNumber('the total is $12,500.50')).toBe('12500.50');
    expect(extractFinalNumber('it drops to -3 degrees')).toBe('-3');
    expect(extractFinalNumber('values 1,2,3')).toBe('3');
    expect(extractFinalNumber('#### none; earlier 5')).toBe('5');
    expect(extractFinalNumber('no digits here')).toBeNull();
    expect(numericEqual('3.0', '3')).toBe(true);
    expect(numericEqual('1,000', '1000')).toBe(true);
    expect(numericEqual('1000000', '1000000.5')).toBe(true); // 5e-7 relative
    expect(numericEqual('1000', '1000.5')).toBe(false);
    expect(numericEqual('-3', '3')).toBe(false);
    expect(numericEqual('0', '0')).toBe(true);
    expect(numericEqual('', '0')).toBe(false);
    expect(numericEqual('abc', 'abc')).toBe(false);
  });

  it('makes a task: disjoint deterministic splits, unbounded train epochs, scoring on the final number', () => {
    const records = Array.from({ length: 40 }, (_, i) => ({ question: `What is ${i} plus ${i}?`, answer: `${i}+${i}=${2 * i}\n#### ${2 * i}`, final: String(2 * i) }));
    const tok = gsm8kTokenizer(records);
    const task = gsm8kTask(records, tok, { testFraction: 0.25, seed: 3 });
    expect(task.testSize).toBeGreaterThan(3);
    expect(task.testSize).toBeLessThan(20);
    const trainCount = records.length - task.testSize;
    const testIds = new Set(Array.from({ length: task.testSize }, (_, i) => task.problem('test', i).id));
    for (let epoch = 0; epoch < 3; epoch++) {
      const ids = Array.from({ length: trainCount }, (_, i) => task.problem('train', epoch * trainCount + i).id);
      expect(new Set(ids).size).toBe(trainCount); // each epoch visits every train record once
      for (const id of ids) expect(testIds.has(id)).toBe(false);
    }
    const again = gsm8kTask(records, tok, { testFraction: 0.25, seed: 3 });
    expect(again.problem('train', 57)).toEqual(task.problem('train', 57));
    const p = task.problem('test', 0);
    expect(p.prompt).toMatch(/^Question: What is \d+ plus \d+\?\nAnswer: $/);
    expect(task.score(p, p.solution)).toEqual({ correct: true, extracted: p.answer });
    expect(task.score(p, 'I think #### 1,000,001').correct).toBe(false);
    expect(task.maxResponseLength).toBe(Math.max(...records.map((r) => r.answer.length)) + 1);
    expect(() => gsm8kTask(records, TASK_TOKENIZER)).toThrow(/record 0 cannot be tokenized: cannot encode character 'Q'/);
    expect(() => gsm8kTask([], tok, { testFraction: 1 })).toThrow(/records must be a non-empty array; testFraction must be in \[0, 1\), got 1/);
  });
});
