// The one Tokenizer interface of every task and model (character vocabularies and Hugging Face tokenizer.json
// tokenizers), and the character-level tokenizer of the built-in tasks: id 0 = pad, id 1 = eos, then one id per
// alphabet character.
import type { ChatMessage, ChatTemplateOptions } from './chat_template.js';

export type { ChatMessage, ChatTemplateOptions } from './chat_template.js';

export interface EncodeOptions {
  /**
   * Add the tokenizer's own special tokens (e.g. Llama's BOS), as transformers' `tokenizer(text)` does. Default false:
   * prompts are chat-templated text that already holds them, and TRL tokenizes them with add_special_tokens=False.
   */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Leave special tokens (pad, eos, chat markers, …) out of the text. Default true: responses are scored as text. */
  skipSpecialTokens?: boolean;
}

export interface Tokenizer {
  /** Every id encode() can produce is below it (transformers' len(tokenizer)); a model's vocabulary may be larger. */
  readonly vocabSize: number;
  /** Fills prompts on the left and sequences after they stopped; the eos id when the tokenizer has no pad (as TRL). */
  readonly padId: number;
  /** Ends a response: appended to SFT targets, and always one of stopTokenIds. */
  readonly eosId: number;
  /** Beginning of sequence, or null when the tokenizer has none (Qwen, the character tokenizers). */
  readonly bosId: number | null;
  /** Generation ends at any of these (generation_config.json's eos_token_id list, plus eosId); eosId first. */
  readonly stopTokenIds: readonly number[];
  /** Ids of every special token (skipped by decode unless skipSpecialTokens is false). */
  readonly specialTokenIds: readonly number[];
  /** The Jinja chat template, or null when the tokenizer has none. */
  readonly chatTemplate: string | null;
  /** Throws a clear error when the text cannot be encoded (e.g. a character outside a character vocabulary). */
  encode(text: string, options?: EncodeOptions): number[];
  /** A negative or non-integer id, or one outside the vocabulary of a character tokenizer, throws. */
  decode(ids: readonly number[], options?: DecodeOptions): string;
  /** The id of a token string (special tokens by their content, e.g. '<|im_end|>'), or undefined. */
  tokenToId(token: string): number | undefined;
  /** The token string of an id, or undefined outside the vocabulary. */
  idToToken(id: number): string | undefined;
  /** The conversation as transformers' apply_chat_template(..., tokenize=False) renders it; throws without a template. */
  applyChatTemplate(messages: readonly ChatMessage[], options?: ChatTemplateOptions): string;
}

const PAD_ID = 0;
const EOS_ID = 1;
const FIRST_CHAR_ID = 2;
/** How the character tokenizers' special tokens are written (in exported tokenizer.json files and by decode). */
export const CHAR_PAD_TOKEN = '<|pad|>';
export const CHAR_EOS_TOKEN = '<|endoftext|>';

/** Shows a character unambiguously in an error message (whitespace and control characters by code point). */
function describeChar(ch: string): string {
  const code = ch.codePointAt(0)!;
  const hex = `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  return code > 0x20 && code !== 0x7f ? `'${ch}' (${hex})` : hex;
}

export class CharTokenizer implements Tokenizer {
  readonly padId = PAD_ID;
  readonly eosId = EOS_ID;
  readonly bosId = null;
  readonly stopTokenIds: readonly number[] = [EOS_ID];
  readonly specialTokenIds: readonly number[] = [PAD_ID, EOS_ID];
  readonly chatTemplate = null;
  readonly vocabSize: number;
  /** The characters in id order (alphabet[i] has id i + 2). Code points, so astral characters are one token. */
  readonly alphabet: readonly string[];
  private readonly idOf = new Map<string, number>();

  constructor(alphabet: string) {
    const chars = Array.from(alphabet);
    if (chars.length === 0) throw new Error('CharTokenizer: the alphabet is empty');
    const duplicates = [...new Set(chars.filter((c, i) => chars.indexOf(c) !== i))];
    if (duplicates.length) throw new Error(`CharTokenizer: the alphabet repeats ${duplicates.map(describeChar).join(', ')}`);
    chars.forEach((c, i) => this.idOf.set(c, FIRST_CHAR_ID + i));
    this.alphabet = chars;
    this.vocabSize = FIRST_CHAR_ID + chars.length;
  }

  /** A tokenizer whose alphabet is every character occurring in `texts` (sorted by code point, for stable ids). */
  static fromTexts(texts: Iterable<string>): CharTokenizer {
    const seen = new Set<string>();
    for (const text of texts) for (const char of text) seen.add(char);
    return new CharTokenizer([...seen].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!).join(''));
  }

  /** One id per character; there are no special tokens to add, so addSpecialTokens changes nothing. */
  encode(text: string, _options: EncodeOptions = {}): number[] {
    const ids: number[] = [];
    let position = 0;
    for (const ch of text) {
      const id = this.idOf.get(ch);
      if (id === undefined) {
        const shown = text.length > 60 ? `${text.slice(0, 57)}...` : text;
        throw new Error(`cannot encode character ${describeChar(ch)} at position ${position} of ${JSON.stringify(shown)}: not in the tokenizer alphabet`);
      }
      ids.push(id);
      position++;
    }
    return ids;
  }

  /** Pad and eos decode to '' (or to their token strings with skipSpecialTokens: false). */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const skipSpecial = options.skipSpecialTokens ?? true;
    let text = '';
    ids.forEach((id, position) => {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new RangeError(`cannot decode token ${id} at position ${position}: outside the vocabulary of size ${this.vocabSize}`);
      }
      if (id >= FIRST_CHAR_ID) text += this.alphabet[id - FIRST_CHAR_ID];
      else if (!skipSpecial) text += id === PAD_ID ? CHAR_PAD_TOKEN : CHAR_EOS_TOKEN;
    });
    return text;
  }

  tokenToId(token: string): number | undefined {
    if (token === CHAR_PAD_TOKEN) return PAD_ID;
    if (token === CHAR_EOS_TOKEN) return EOS_ID;
    return this.idOf.get(token);
  }

  idToToken(id: number): string | undefined {
    if (id === PAD_ID) return CHAR_PAD_TOKEN;
    if (id === EOS_ID) return CHAR_EOS_TOKEN;
    return Number.isInteger(id) && id >= FIRST_CHAR_ID && id < this.vocabSize ? this.alphabet[id - FIRST_CHAR_ID] : undefined;
  }

  applyChatTemplate(): string {
    throw new Error('this character tokenizer has no chat template: give prompts as plain text');
  }
}

/**
 * The one tokenizer of every built-in task. Digits, the four operators, '=', parentheses, ',' and ':' build
 * prompts; '>' separates a response's scratchpad from its final answer. The last ten characters are spare
 * (for custom tasks), filling the vocabulary to exactly 32 = DEFAULT_MODEL_CONFIG.vocabSize.
 */
export const TASK_TOKENIZER = new CharTokenizer('0123456789+-*/=(),:> .#$%<;?!^');

/** The text of a generated response: the ids before its stop token, special tokens skipped. */
export function responseText(tokenizer: Tokenizer, ids: readonly number[]): string {
  const stopped = ids.length > 0 && tokenizer.stopTokenIds.includes(ids[ids.length - 1]);
  return tokenizer.decode(stopped ? ids.slice(0, -1) : ids, { skipSpecialTokens: true });
}

/**
 * An upper bound on the tokens of any text of `characters` characters drawn from `alphabet` (no special tokens
 * added): characters × the most tokens one alphabet character takes alone. Exact for a character tokenizer
 * (1 per character); for BPE a character's pieces are its starting symbols, and merges only lower the count.
 * Characters the tokenizer cannot encode are left out: no text it encodes contains them.
 */
export function tokenBound(tokenizer: Tokenizer, characters: number, alphabet: Iterable<string>): number {
  let perCharacter = 0;
  for (const ch of alphabet) {
    let tokens: number;
    try {
      tokens = tokenizer.encode(ch).length;
    } catch {
      continue;
    }
    perCharacter = Math.max(perCharacter, tokens);
  }
  return characters * perCharacter;
}
