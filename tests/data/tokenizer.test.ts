// The Tokenizer interface on the character tokenizer, the character vocabulary exported as a tokenizer.json that
// @huggingface/tokenizers (and so transformers' fast tokenizer format) reads back identically, how HfTokenizer
// resolves eos / pad / bos / stop tokens / chat templates from a model directory's files, and task lengths in tokens.
import { Tokenizer as TokenizerCore } from '@huggingface/tokenizers';
import { describe, expect, it } from 'vitest';
import { gsm8kTokenizer, parseGsm8kJsonl } from '../../src/data/gsm8k.js';
import { ADDITION } from '../../src/data/addition.js';
import { COUNTDOWN } from '../../src/data/countdown.js';
import type { Knobs } from '../../src/data/knobs.js';
import { MULTIPLICATION } from '../../src/data/multiplication.js';
import { SORTING } from '../../src/data/sorting.js';
import { TASK_DEFAULTS, TASK_NAMES, makeTask } from '../../src/data/tasks.js';
import { CHAR_EOS_TOKEN, CHAR_PAD_TOKEN, CharTokenizer, TASK_TOKENIZER, type Tokenizer, responseText, tokenBound } from '../../src/data/tokenizer.js';
import {
  configTokenIds, generationConfigTokenIds, tokenizerConfigForCharVocabulary, tokenizerExportFiles, tokenizerJsonForCharVocabulary,
} from '../../src/data/tokenizer_export.js';
import { HfTokenizer, type HfTokenizerFiles } from '../../src/data/tokenizer_hf.js';

/** Every prompt and solution of the first problems of each built-in task, and some of each test split. */
function taskStrings(perTask = 60): string[] {
  const strings: string[] = [];
  for (const name of TASK_NAMES) {
    const task = makeTask({ name });
    for (let i = 0; i < perTask; i++) {
      for (const problem of [task.problem('train', i), task.problem('test', i % task.testSize)]) strings.push(problem.prompt, problem.solution, problem.answer);
    }
  }
  return strings;
}

/** The exported files of a character tokenizer, loaded back as an HfTokenizer (with overrides for the resolution tests). */
function exported(tokenizer: CharTokenizer, overrides: Partial<HfTokenizerFiles> = {}): HfTokenizer {
  const files = tokenizerExportFiles(tokenizer);
  return new HfTokenizer({ tokenizer: files['tokenizer.json'], tokenizerConfig: files['tokenizer_config.json'], ...overrides });
}

describe('CharTokenizer through the Tokenizer interface', () => {
  it('has pad 0, eos 1 (its only stop token), no bos and no chat template', () => {
    const tok: Tokenizer = TASK_TOKENIZER;
    expect([tok.padId, tok.eosId, tok.bosId]).toEqual([0, 1, null]);
    expect(tok.stopTokenIds).toEqual([1]);
    expect(tok.specialTokenIds).toEqual([0, 1]);
    expect(tok.chatTemplate).toBeNull();
    expect(() => tok.applyChatTemplate([{ role: 'user', content: '1+1' }])).toThrow(/no chat template/);
  });

  it('encodes the same with or without special tokens, and decodes specials only on request', () => {
    expect(TASK_TOKENIZER.encode('12+3', { addSpecialTokens: true })).toEqual(TASK_TOKENIZER.encode('12+3'));
    const ids = [0, ...TASK_TOKENIZER.encode('7>7'), 1];
    expect(TASK_TOKENIZER.decode(ids)).toBe('7>7');
    expect(TASK_TOKENIZER.decode(ids, { skipSpecialTokens: true })).toBe('7>7');
    expect(TASK_TOKENIZER.decode(ids, { skipSpecialTokens: false })).toBe(`${CHAR_PAD_TOKEN}7>7${CHAR_EOS_TOKEN}`);
  });

  it('maps special tokens and characters to ids and back', () => {
    expect(TASK_TOKENIZER.tokenToId(CHAR_EOS_TOKEN)).toBe(1);
    expect(TASK_TOKENIZER.tokenToId(CHAR_PAD_TOKEN)).toBe(0);
    expect(TASK_TOKENIZER.tokenToId('0')).toBe(2);
    expect(TASK_TOKENIZER.tokenToId('x')).toBeUndefined();
    expect(TASK_TOKENIZER.idToToken(1)).toBe(CHAR_EOS_TOKEN);
    expect(TASK_TOKENIZER.idToToken(31)).toBe('^');
    expect(TASK_TOKENIZER.idToToken(32)).toBeUndefined();
  });

  it('gives a response its text before the stop token', () => {
    expect(responseText(TASK_TOKENIZER, [...TASK_TOKENIZER.encode('3,1>13'), 1])).toBe('3,1>13');
    expect(responseText(TASK_TOKENIZER, TASK_TOKENIZER.encode('3,1>1'))).toBe('3,1>1');
    expect(responseText(TASK_TOKENIZER, [])).toBe('');
  });
});

describe('task lengths in tokens', () => {
  it('are the character bounds for the character tokenizer (one token per character)', () => {
    expect(tokenBound(TASK_TOKENIZER, 17, TASK_TOKENIZER.alphabet)).toBe(17);
    // The built-in tasks' bounds are their generators' character bounds, as before lengths went through the tokenizer.
    for (const definition of [ADDITION, MULTIPLICATION, COUNTDOWN, SORTING]) {
      const generator = definition.generator(TASK_DEFAULTS[definition.name] as Knobs);
      const task = makeTask({ name: definition.name });
      expect([task.maxPromptLength, task.maxResponseLength]).toEqual([generator.maxPromptChars, generator.maxSolutionChars + 1 + 6]);
    }
  });

  it('count the most tokens any alphabet character takes, and skip characters the tokenizer cannot encode', () => {
    const twoTokenDigits = { ...TASK_TOKENIZER, encode: (text: string) => [...text].flatMap((c) => (/\d/.test(c) ? [2, 2] : [3])) } as unknown as Tokenizer;
    expect(tokenBound(twoTokenDigits, 5, '+1')).toBe(10);
    expect(tokenBound(new CharTokenizer('12'), 4, '12x')).toBe(4);
  });
});

describe('tokenizer.json for a character vocabulary', () => {
  const strings = taskStrings();

  it('is a BPE with the characters as vocabulary, no merges, pad and eos as special added tokens', () => {
    const json = tokenizerJsonForCharVocabulary(TASK_TOKENIZER) as { model: { type: string; vocab: Record<string, number>; merges: unknown[] }; added_tokens: { id: number; content: string; special: boolean }[]; normalizer: unknown; pre_tokenizer: unknown };
    expect(json.model.type).toBe('BPE');
    expect(json.model.merges).toEqual([]);
    expect(Object.keys(json.model.vocab)).toHaveLength(TASK_TOKENIZER.vocabSize);
    expect(json.model.vocab['0']).toBe(2);
    expect(json.added_tokens.map((t) => [t.id, t.content, t.special])).toEqual([[0, CHAR_PAD_TOKEN, true], [1, CHAR_EOS_TOKEN, true]]);
    expect([json.normalizer, json.pre_tokenizer]).toEqual([null, null]);
  });

  it('loads in @huggingface/tokenizers and encodes and decodes every task string as CharTokenizer does', () => {
    const core = new TokenizerCore(tokenizerJsonForCharVocabulary(TASK_TOKENIZER), tokenizerConfigForCharVocabulary(TASK_TOKENIZER));
    for (const text of strings) {
      const ids = core.encode(text, { add_special_tokens: true }).ids;
      expect(ids).toEqual(TASK_TOKENIZER.encode(text));
      if (ids.length) expect(core.decode(ids, { skip_special_tokens: true })).toBe(text);
    }
    expect(core.encode(CHAR_EOS_TOKEN).ids).toEqual([1]);
    expect(core.decode([0, 3, 1])).toBe(`${CHAR_PAD_TOKEN}1${CHAR_EOS_TOKEN}`);
  });

  it('keeps spaces before punctuation (no tokenization-space cleanup) and every character of a larger vocabulary', () => {
    const records = parseGsm8kJsonl('{"question": "Ann has 3 apples, and Bob 2 . How many ? Ünïcödé 🙂 數", "answer": "3 + 2 = 5 .\\n#### 5"}');
    const tok = gsm8kTokenizer(records);
    const back = exported(tok);
    const text = 'How many ? 3 , 2 . Ünïcödé 🙂 數\n#### 5';
    expect(back.encode(text)).toEqual(tok.encode(text));
    expect(back.decode(back.encode(text))).toBe(text);
    expect(back.vocabSize).toBe(tok.vocabSize);
  });

  it('loads back as an HfTokenizer with the same special tokens, vocabulary and behaviour', () => {
    const back = exported(TASK_TOKENIZER);
    expect([back.vocabSize, back.padId, back.eosId, back.bosId]).toEqual([32, 0, 1, null]);
    expect(back.stopTokenIds).toEqual([1]);
    expect(back.specialTokenIds).toEqual([0, 1]);
    for (const text of strings.slice(0, 200)) expect(back.encode(text)).toEqual(TASK_TOKENIZER.encode(text));
    const ids = [0, ...TASK_TOKENIZER.encode('12>3'), 1];
    expect(back.decode(ids)).toBe(TASK_TOKENIZER.decode(ids));
    expect(back.decode(ids, { skipSpecialTokens: false })).toBe(TASK_TOKENIZER.decode(ids, { skipSpecialTokens: false }));
  });

  it('comes with config.json and generation_config.json token ids and a tokenizer_config.json transformers reads', () => {
    expect(configTokenIds(TASK_TOKENIZER)).toEqual({ bos_token_id: null, eos_token_id: 1, pad_token_id: 0 });
    expect(generationConfigTokenIds(TASK_TOKENIZER)).toEqual({ eos_token_id: 1, pad_token_id: 0 });
    const config = tokenizerConfigForCharVocabulary(TASK_TOKENIZER, { modelMaxLength: 64 });
    expect(config).toMatchObject({
      tokenizer_class: 'PreTrainedTokenizerFast', eos_token: CHAR_EOS_TOKEN, pad_token: CHAR_PAD_TOKEN, bos_token: null,
      clean_up_tokenization_spaces: false, model_max_length: 64,
      added_tokens_decoder: { 0: { content: CHAR_PAD_TOKEN, special: true }, 1: { content: CHAR_EOS_TOKEN, special: true } },
    });
    expect(Object.keys(tokenizerExportFiles(TASK_TOKENIZER)).sort()).toEqual(['tokenizer.json', 'tokenizer_config.json']);
    expect(() => JSON.parse(tokenizerExportFiles(TASK_TOKENIZER)['tokenizer.json'])).not.toThrow();
  });
});

describe('HfTokenizer special tokens from a model directory', () => {
  const char = new CharTokenizer('abc<>|/');
  const files = tokenizerExportFiles(char);
  const config = JSON.parse(files['tokenizer_config.json']) as Record<string, unknown>;
  const withConfig = (changes: Record<string, unknown>) => ({ ...config, ...changes });

  it('stops at generation_config.json eos_token_id (a list), else config.json, always with the tokenizer eos first', () => {
    expect(exported(char, { generationConfig: { eos_token_id: [3, 1] } }).stopTokenIds).toEqual([1, 3]);
    expect(exported(char, { generationConfig: '{"eos_token_id": 4}', modelConfig: { eos_token_id: 5 } }).stopTokenIds).toEqual([1, 4]);
    expect(exported(char, { modelConfig: { eos_token_id: 5 } }).stopTokenIds).toEqual([1, 5]);
    expect(generationConfigTokenIds(exported(char, { generationConfig: { eos_token_id: [3, 1] } }))).toEqual({ eos_token_id: [1, 3], pad_token_id: 0 });
  });

  it('pads with eos when the tokenizer has no pad token (as TRL does)', () => {
    const tok = exported(char, { tokenizerConfig: withConfig({ pad_token: null }) });
    expect([tok.padId, tok.eosId]).toEqual([1, 1]);
    expect(configTokenIds(tok)).toEqual({ bos_token_id: null, eos_token_id: 1, pad_token_id: 1 });
  });

  it('reads special tokens as strings or AddedToken objects, and from special_tokens_map.json when the config has none', () => {
    const bos = exported(char, { tokenizerConfig: withConfig({ bos_token: { content: '<', __type: 'AddedToken' } }) });
    expect(bos.bosId).toBe(char.tokenToId('<'));
    expect(generationConfigTokenIds(bos).bos_token_id).toBe(char.tokenToId('<'));
    const mapped = exported(char, { tokenizerConfig: withConfig({ eos_token: undefined }), specialTokensMap: { eos_token: '>' } });
    expect(mapped.eosId).toBe(char.tokenToId('>'));
  });

  it('takes eos from generation_config.json when no tokenizer file names one', () => {
    const tok = exported(char, { tokenizerConfig: withConfig({ eos_token: undefined }), generationConfig: { eos_token_id: [4, 1] } });
    expect(tok.eosId).toBe(4);
    expect(tok.stopTokenIds).toEqual([4, 1]);
  });

  it('refuses a tokenizer without any eos, an unknown special token and malformed files, naming the problem', () => {
    expect(() => exported(char, { tokenizerConfig: withConfig({ eos_token: undefined }) })).toThrow(/no eos token/);
    expect(() => exported(char, { tokenizerConfig: withConfig({ eos_token: '</s>' }) })).toThrow(/eos_token "<\/s>" is not in tokenizer.json's vocabulary/);
    expect(() => exported(char, { tokenizerConfig: withConfig({ pad_token: 7 }) })).toThrow(/tokenizer_config.json pad_token: expected a token string/);
    expect(() => exported(char, { generationConfig: { eos_token_id: 'x' } })).toThrow(/generation_config.json eos_token_id: expected a token id/);
    expect(() => exported(char, { modelConfig: '{"eos' })).toThrow(/config.json: invalid JSON/);
    expect(() => new HfTokenizer({ tokenizer: '[]' })).toThrow(/tokenizer.json: expected a JSON object/);
  });

  it('adds a post-processor BOS only with addSpecialTokens, as transformers tokenizer(text) does', () => {
    const json = JSON.parse(files['tokenizer.json']);
    json.post_processor = {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [], special_tokens: { '<': { id: '<', ids: [char.tokenToId('<')], tokens: ['<'] } },
    };
    const tok = new HfTokenizer({ tokenizer: json, tokenizerConfig: withConfig({ bos_token: '<' }) });
    expect(tok.encode('ab')).toEqual(char.encode('ab'));
    expect(tok.encode('ab', { addSpecialTokens: true })).toEqual(char.encode('<ab'));
    expect(tok.decode(char.encode('<ab'))).toBe('ab'); // bos is special: skipped
  });

  it('uses chat_template.jinja over tokenizer_config.json, and picks named templates as transformers does', () => {
    const chat = [{ role: 'user', content: 'ab' }];
    const plain = exported(char, { tokenizerConfig: withConfig({ chat_template: '{{ messages[0].content }}|' }) });
    expect(plain.applyChatTemplate(chat)).toBe('ab|');
    const jinja = exported(char, { tokenizerConfig: withConfig({ chat_template: 'x' }), chatTemplate: '<{{ messages[0].content }}>{{ eos_token }}' });
    expect(jinja.applyChatTemplate(chat)).toBe(`<ab>${CHAR_EOS_TOKEN}`);
    expect(jinja.chatTemplate).toBe('<{{ messages[0].content }}>{{ eos_token }}');
    const named = exported(char, { tokenizerConfig: withConfig({ chat_template: [{ name: 'default', template: 'd' }, { name: 'tool_use', template: 't{{ tools | length }}' }] }) });
    expect(named.applyChatTemplate(chat)).toBe('d');
    expect(named.applyChatTemplate(chat, { tools: [{ name: 'f' }] })).toBe('t1');
    expect(() => exported(char).applyChatTemplate(chat)).toThrow(/has no chat template/);
    expect(tokenizerExportFiles(jinja)['chat_template.jinja']).toBe('<{{ messages[0].content }}>{{ eos_token }}');
  });
});
