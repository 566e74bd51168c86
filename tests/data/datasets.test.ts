// Dataset files and the dataset tasks built on them: JSONL / JSON / Parquet records (tests/fixtures/datasets holds two
// small Parquet files written by hyparquet-writer: verl's math layout with chat-message prompts and nested
// reward_model, and GSM8K's flat question/answer columns), dotted field paths, errors that name the file, the
// line or row and the field; MathTask's prompts, splits and checker; the `task` config keys of gsm8k and math.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DatasetError, datasetFormat, fieldAt, parseDataset, parseJsonRecords, parseJsonlRecords, parseParquetRecords, splitByHash,
} from '../../src/data/datasets.js';
import { loadDatasetTask, readDatasetFile } from '../../src/data/datasets_node.js';
import { gsm8kMathRecords, parseGsm8kJsonl } from '../../src/data/gsm8k.js';
import {
  DEFAULT_MATH_TEMPLATE, MATH_TASK_DEFAULTS, type MathTaskConfig, mathMessages, mathRecordsFromRows, mathTask, mathTaskFromRows, plainPrompt,
} from '../../src/data/math_task.js';
import { makeTask } from '../../src/data/tasks.js';
import { CharTokenizer, TASK_TOKENIZER } from '../../src/data/tokenizer.js';
import { configLayersFrom, resolveTrainConfig } from '../../src/rl/config.js';

const FIXTURES = join(__dirname, '..', 'fixtures', 'datasets');
const VERL_PARQUET = join(FIXTURES, 'verl_math.parquet');
const GSM8K_PARQUET = join(FIXTURES, 'gsm8k_flat.parquet');

/** Every printable ASCII character and the newline: enough to spell the fixtures (a stand-in for a model's tokenizer). */
const ASCII_TOKENIZER = new CharTokenizer(`\n${Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('')}`);

const GSM8K_JSONL = [
  '{"question": "Tom has 3 apples and buys 4 more. How many apples does he have?", "answer": "3 + 4 = <<3+4=7>>7\\n#### 7"}',
  '',
  '{"question": "A pen costs $2. How much do 6 pens cost?", "answer": "6 * 2 = <<6*2=12>>12\\n#### 12"}',
  '{"question": "What is 10 - 4?", "answer": "#### 6"}',
].join('\n');

const config = (name: 'gsm8k' | 'math', over: Partial<MathTaskConfig> = {}): MathTaskConfig => ({ ...MATH_TASK_DEFAULTS[name], path: 'x', ...over });

describe('dataset files', () => {
  it('reads JSONL records with their lines (blank lines and a BOM skipped)', () => {
    const rows = parseJsonlRecords(`\uFEFF${GSM8K_JSONL}`, 'train.jsonl');
    expect(rows.map((row) => row.where)).toEqual(['train.jsonl:1', 'train.jsonl:3', 'train.jsonl:4']);
    expect(rows[1].record.question).toBe('A pen costs $2. How much do 6 pens cost?');
  });

  it('lists every bad JSONL line with the file and line number', () => {
    const bad = '{"question": "a"}\n{oops\n[1, 2]\n\n"text"\n';
    const error = (() => { try { parseJsonlRecords(bad, 'data/train.jsonl'); } catch (err) { return err as DatasetError; } })()!;
    expect(error).toBeInstanceOf(DatasetError);
    expect(error.problems).toHaveLength(3);
    expect(error.message).toMatch(/^dataset data\/train\.jsonl: 3 problems:/);
    expect(error.problems[0]).toMatch(/^line 2: invalid JSON/);
    expect(error.problems[1]).toBe('line 3: expected a JSON object, got an array');
    expect(error.problems[2]).toBe('line 5: expected a JSON object, got "text"');
    expect(() => parseJsonlRecords('\n\n', 'empty.jsonl')).toThrow('dataset empty.jsonl: no records (the file is empty)');
  });

  it('reads a JSON array of records, 0-based rows', () => {
    const rows = parseJsonRecords('[{"q": 1}, {"q": 2}]', 'd.json');
    expect(rows).toEqual([{ record: { q: 1 }, where: 'd.json row 0' }, { record: { q: 2 }, where: 'd.json row 1' }]);
    expect(() => parseJsonRecords('{"q": 1}', 'd.json')).toThrow(/expected a JSON array of records, got an object/);
    expect(() => parseJsonRecords('[{"q": 1}, 3]', 'd.json')).toThrow(/row 1: expected an object, got 3/);
  });

  it('reads Parquet in verl\'s layout: chat-message prompts, nested structs, INT64 as numbers', async () => {
    const rows = await parseParquetRecords(new Uint8Array(readFileSync(VERL_PARQUET)), 'verl_math.parquet');
    expect(rows).toHaveLength(3);
    expect(rows[1].where).toBe('verl_math.parquet row 1');
    expect(rows[1].record).toEqual({
      data_source: 'math_dapo',
      prompt: [{ content: 'Natalia sold 48 clips in April and half as many in May. How many clips did she sell in total?', role: 'user' }],
      ability: 'MATH',
      reward_model: { ground_truth: '72', style: 'rule-lighteval/MATH_v2' },
      extra_info: { index: 1, split: 'train' },
    });
    expect(JSON.parse(JSON.stringify(rows))).toEqual(rows); // plain JSON: problems can be saved in checkpoints
    await expect(parseParquetRecords(new Uint8Array([1, 2, 3, 4]), 'broken.parquet')).rejects.toThrow(/dataset broken\.parquet: cannot read Parquet/);
  });

  it('reads flat Parquet columns and picks the parser from the file name', async () => {
    expect(datasetFormat('a/train.JSONL')).toBe('jsonl');
    expect(datasetFormat('x.ndjson')).toBe('jsonl');
    expect(datasetFormat('x.json')).toBe('json');
    expect(datasetFormat('x.parquet')).toBe('parquet');
    expect(datasetFormat('x.txt', 'jsonl')).toBe('jsonl');
    expect(() => datasetFormat('x.csv')).toThrow(/dataset x\.csv: cannot tell the format from the file name \(expected \.jsonl, \.json or \.parquet\)/);
    const rows = await parseDataset(new Uint8Array(readFileSync(GSM8K_PARQUET)), 'gsm8k.parquet', 'parquet');
    expect(rows.map((row) => row.record.answer)).toEqual(['Tom has 3 + 4 = <<3+4=7>>7 apples.\n#### 7', 'It costs 1200 - 200 = <<1200-200=1000>>1000 dollars.\n#### 1,000']);
    expect((await readDatasetFile(GSM8K_PARQUET)).length).toBe(2);
    await expect(readDatasetFile(join(FIXTURES, 'missing.jsonl'))).rejects.toThrow(/missing\.jsonl: the file does not exist/);
  });

  it('addresses fields by dotted path, array indices included', () => {
    const record = { reward_model: { ground_truth: '5' }, prompt: [{ role: 'user', content: 'hi' }], 'a.b': 1 };
    expect(fieldAt(record, 'reward_model.ground_truth')).toBe('5');
    expect(fieldAt(record, 'prompt.0.content')).toBe('hi');
    expect(fieldAt(record, 'prompt.1.content')).toBeUndefined();
    expect(fieldAt(record, 'reward_model.missing')).toBeUndefined();
    expect(fieldAt(record, 'toString')).toBeUndefined();
  });

  it('splits deterministically by a seeded hash of the key', () => {
    const items = Array.from({ length: 400 }, (_, i) => `q${i}`);
    const a = splitByHash(items, (item) => item, 7, 0.25);
    expect(splitByHash([...items].reverse(), (item) => item, 7, 0.25).test.sort()).toEqual([...a.test].sort());
    expect(a.test.length).toBeGreaterThan(60);
    expect(a.test.length).toBeLessThan(140);
    expect(splitByHash(items, (item) => item, 8, 0.25).test).not.toEqual(a.test);
    expect(splitByHash(items, (item) => item, 7, 0).test).toEqual([]);
  });
});

describe('field mapping into math records', () => {
  it('maps GSM8K JSONL: question, final answer after ####, worked solution as the SFT target', () => {
    const records = mathRecordsFromRows(parseJsonlRecords(GSM8K_JSONL, 'g.jsonl'), config('gsm8k'), 'g.jsonl');
    expect(records[0]).toMatchObject({ prompt: 'Tom has 3 apples and buys 4 more. How many apples does he have?', answer: '7', solution: '3 + 4 = <<3+4=7>>7\n#### 7', where: 'g.jsonl:1' });
    expect(records.map((record) => record.answer)).toEqual(['7', '12', '6']);
  });

  it('maps verl Parquet: chat prompts and reward_model.ground_truth, a boxed SFT target', async () => {
    const records = mathRecordsFromRows(await readDatasetFile(VERL_PARQUET), config('math'), VERL_PARQUET);
    expect(records[2].prompt).toEqual([{ role: 'user', content: 'Compute $\\frac{1}{2} + \\frac{1}{4}$.' }]);
    expect(records[2].answer).toBe('\\frac{3}{4}');
    expect(records[2].solution).toBe('The answer is \\boxed{\\frac{3}{4}}.');
    expect(records[0].record.data_source).toBe('math_dapo');
  });

  it('names the file, line, missing field, the keys the record has and the setting to change', async () => {
    const rows = parseJsonlRecords('{"question": "q", "answer": "#### 1"}\n{"question": "q2", "answr": "#### 2"}\n{"question": 5, "answer": "#### 3"}', 'train.jsonl');
    expect(() => mathRecordsFromRows(rows, config('gsm8k'), 'train.jsonl')).toThrow(DatasetError);
    try {
      mathRecordsFromRows(rows, config('gsm8k'), 'train.jsonl');
    } catch (err) {
      const { problems } = err as DatasetError;
      expect(problems).toEqual([
        "train.jsonl:2: no answer field 'answer' (the record has 'question', 'answr'); set task.answerField to the field that holds it",
        "train.jsonl:2: no solution field 'answer' (the record has 'question', 'answr'); set task.solutionField to the field that holds it",
        "train.jsonl:3: the prompt field 'question' must be a non-empty string, got 5",
      ]);
    }
    const parquetRows = await readDatasetFile(VERL_PARQUET);
    expect(() => mathRecordsFromRows(parquetRows, config('math', { answerField: 'reward_model.answer' }), VERL_PARQUET))
      .toThrow(/verl_math\.parquet row 0: no answer field 'reward_model\.answer' \('reward_model' has 'ground_truth', 'style'\); set task\.answerField/);
    const numeric = parseJsonlRecords('{"problem": "2+2", "answer": 4}', 'n.jsonl');
    expect(mathRecordsFromRows(numeric, { promptField: 'problem', answerField: 'answer' }, 'n.jsonl')[0].answer).toBe('4');
    expect(() => mathRecordsFromRows(parseJsonlRecords('{"problem": 4, "answer": "4"}', 'n.jsonl'), { promptField: 'problem', answerField: 'answer' }, 'n.jsonl'))
      .toThrow(/n\.jsonl:1: the prompt field 'problem' must be a non-empty string, got 4/);
    const badChat = parseJsonlRecords('{"prompt": [{"role": "user"}], "answer": "1"}', 'chat.jsonl');
    expect(() => mathRecordsFromRows(badChat, { promptField: 'prompt', answerField: 'answer' }, 'chat.jsonl'))
      .toThrow(/chat\.jsonl:1: the prompt field 'prompt' must be a string or a non-empty array of \{role, content\} messages \(message 0 is an object\)/);
  });
});

describe('MathTask', () => {
  const rows = parseJsonlRecords(Array.from({ length: 40 }, (_, i) => JSON.stringify({ question: `What is ${i} + 1?`, answer: `${i} + 1 = ${i + 1}\n#### ${i + 1}` })).join('\n'), 'n.jsonl');
  const records = mathRecordsFromRows(rows, config('gsm8k'), 'n.jsonl');

  it('renders prompts as plain text and as chat messages (template for string questions, chat prompts as they are)', () => {
    expect(mathMessages('What is 2+2?')).toEqual([{ role: 'user', content: 'What is 2+2?\nPlease reason step by step, and put your final answer within \\boxed{}.' }]);
    expect(mathMessages('Q', 'Question: {question}\nAnswer:', 'Be brief.')).toEqual([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Question: Q\nAnswer:' }]);
    const chat = [{ role: 'user', content: 'Solve x.' }];
    expect(mathMessages(chat, DEFAULT_MATH_TEMPLATE, 'Sys')).toEqual([{ role: 'system', content: 'Sys' }, ...chat]);
    expect(mathMessages([{ role: 'system', content: 'Own' }, ...chat], DEFAULT_MATH_TEMPLATE, 'Sys')).toEqual([{ role: 'system', content: 'Own' }, ...chat]);
    expect(plainPrompt([{ role: 'system', content: 'S' }, { role: 'user', content: 'U' }])).toBe('S\n\nU\n');

    const task = mathTask(records, { tokenizer: ASCII_TOKENIZER, name: 'gsm8k', template: 'Q: {question}\nA:' });
    const problem = task.problem('train', 0);
    expect(problem.prompt).toBe(`Q: ${problem.record.question}\nA:\n`);
    expect(problem.messages).toEqual([{ role: 'user', content: `Q: ${problem.record.question}\nA:` }]);
    const rendered = mathTask(records, { tokenizer: ASCII_TOKENIZER, renderChat: (messages) => `<|user|>${messages[0].content}<|assistant|>` });
    expect(rendered.problem('test', 0).prompt).toMatch(/^<\|user\|>What is \d+ \+ 1\?\nPlease reason.*<\|assistant\|>$/s);
  });

  it('holds out a seeded, disjoint test split; train runs epoch after epoch in seeded orders', () => {
    const task = mathTask(records, { tokenizer: ASCII_TOKENIZER, testFraction: 0.25, seed: 3 });
    const test = Array.from({ length: task.testSize }, (_, i) => task.problem('test', i).prompt);
    const trainSize = records.length - task.testSize;
    const epoch0 = Array.from({ length: trainSize }, (_, i) => task.problem('train', i).prompt);
    const epoch1 = Array.from({ length: trainSize }, (_, i) => task.problem('train', trainSize + i).prompt);
    expect(task.testSize).toBeGreaterThan(3);
    expect(new Set(epoch0).size).toBe(trainSize);
    expect(epoch0.filter((prompt) => test.includes(prompt))).toEqual([]);
    expect([...epoch1].sort()).toEqual([...epoch0].sort());
    expect(epoch1).not.toEqual(epoch0);
    const again = mathTask(records, { tokenizer: ASCII_TOKENIZER, testFraction: 0.25, seed: 3 });
    expect(again.problem('train', 5)).toEqual(task.problem('train', 5));
    expect(mathTask(records, { tokenizer: ASCII_TOKENIZER, testFraction: 0.25, seed: 4 }).problem('test', 0)).not.toEqual(task.problem('test', 0));
    expect(() => task.problem('test', task.testSize)).toThrow(/out of range/);
    const given = mathTask(records.slice(0, 30), { tokenizer: ASCII_TOKENIZER, testRecords: records.slice(30) });
    expect(given.testSize).toBe(10);
    expect(given.problem('test', 0).answer).toBe('31');
  });

  it('measures lengths in tokens and checks answers as the DAPO reward does', () => {
    const task = mathTask(records, { tokenizer: ASCII_TOKENIZER, testFraction: 0 });
    const longestPrompt = Math.max(...Array.from({ length: records.length }, (_, i) => task.problem('train', i).prompt.length));
    expect(task.maxPromptLength).toBe(longestPrompt);
    const problem = task.problem('train', 0);
    expect(task.score(problem, `so \\boxed{${problem.answer}}`)).toEqual({ correct: true, extracted: problem.answer });
    expect(task.score(problem, problem.solution).correct).toBe(true);
    expect(task.score(problem, 'The answer is 1000.')).toEqual({ correct: false, extracted: '1000' });
    expect(task.score(problem, 'no idea')).toEqual({ correct: false, extracted: null });
  });

  it('says a word problem needs a real tokenizer, not the built-in character one', async () => {
    expect(() => mathTask(records, { tokenizer: TASK_TOKENIZER })).toThrow(/n\.jsonl:\d+ cannot be tokenized .*word problems need the tokenizer of a pretrained model/);
    await expect(loadDatasetTask(config('gsm8k', { path: 'does-not-matter.jsonl' }), {})).rejects.toThrow(/task 'gsm8k' is natural-language text.*--model DIR/);
    expect(() => makeTask({ name: 'gsm8k' })).toThrow(/task "gsm8k" reads its problems from a dataset file \(task\.path\)/);
  });

  it('loads a dataset task from files: the GSM8K parquet, or verl parquet with a separate test file', async () => {
    const gsm = await loadDatasetTask(config('gsm8k', { path: GSM8K_PARQUET, testFraction: 0 }), { tokenizer: ASCII_TOKENIZER });
    expect(gsm.name).toBe('gsm8k');
    expect([0, 1].map((i) => gsm.problem('train', i).answer).sort()).toEqual(['1,000', '7']);
    const math = await loadDatasetTask(config('math', { path: VERL_PARQUET, testPath: VERL_PARQUET }), { tokenizer: ASCII_TOKENIZER });
    expect(math.testSize).toBe(3);
    expect(math.problem('test', 1).prompt).toBe('Natalia sold 48 clips in April and half as many in May. How many clips did she sell in total?\n');
    expect(math.problem('test', 1).record.reward_model).toEqual({ ground_truth: '72', style: 'rule-lighteval/MATH_v2' });
    const viaRows = mathTaskFromRows(config('math', { testFraction: 0 }), await readDatasetFile(VERL_PARQUET), null, { tokenizer: ASCII_TOKENIZER });
    expect(viaRows.testSize).toBe(0);
  });

  it('takes GSM8K records from the GSM8K loader through the same path', () => {
    const parsed = parseGsm8kJsonl(GSM8K_JSONL, 'g.jsonl');
    const task = mathTask(gsm8kMathRecords(parsed, 'g.jsonl'), { tokenizer: ASCII_TOKENIZER, name: 'gsm8k', testFraction: 0 });
    const problem = task.problem('train', 0);
    expect(task.score(problem, problem.solution).correct).toBe(true);
    expect(problem.record).toHaveProperty('question');
  });
});

describe('dataset task config', () => {
  it('fills every key of a dataset task and validates them, with "did you mean"', () => {
    const resolved = resolveTrainConfig(...configLayersFrom({ task: 'gsm8k', set: ['task.path=train.jsonl'] }));
    expect(resolved.task).toEqual({ ...MATH_TASK_DEFAULTS.gsm8k, path: 'train.jsonl' });
    const math = resolveTrainConfig({ task: { name: 'math', path: 'd.parquet', answerField: 'answer', systemPrompt: 'Think.' } });
    expect(math.task).toMatchObject({ promptField: 'prompt', answerField: 'answer', systemPrompt: 'Think.', testPath: null });
    expect(() => resolveTrainConfig(...configLayersFrom({ task: 'gsm8k', set: ['task.pth=x.jsonl', 'task.testFraction=1', 'task.template=no placeholder', 'task.answerField=a..b'] })))
      .toThrow(new RegExp([
        "task\\.pth: unknown key \\(did you mean 'path'\\?\\)",
        'task\\.path: the gsm8k task reads its problems from a dataset file .*--set task\\.path=train\\.jsonl',
      ].join('[^]*')));
    try {
      resolveTrainConfig(...configLayersFrom({ task: 'gsm8k', set: ['task.path=x.jsonl', 'task.testFraction=1', 'task.template=no placeholder', 'task.answerField=a..b', 'task.format=csv'] }));
      expect.unreachable();
    } catch (err) {
      expect((err as { problems: string[] }).problems).toEqual([
        "task.format: must be one of 'auto', 'jsonl', 'json', 'parquet', got \"csv\"",
        'task.answerField: must be a field name or dotted path (e.g. reward_model.ground_truth), got "a..b"',
        'task.template: must be a string containing {question}, got "no placeholder"',
        'task.testFraction: must be a number in [0, 1), got 1',
      ]);
    }
  });

  it('leaves the built-in tasks\' config as it was and switching task drops the other task\'s keys', () => {
    expect(resolveTrainConfig({}).task).toEqual({ name: 'addition' });
    expect(resolveTrainConfig({ task: { name: 'addition', maxDigits: 2 } }).task).toEqual({ name: 'addition', maxDigits: 2 });
    expect(resolveTrainConfig({ task: { name: 'gsm8k', path: 'a.jsonl' } }, { task: { name: 'addition' } }).task).toEqual({ name: 'addition' });
  });
});
