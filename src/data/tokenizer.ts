// Character-level tokenizers: id 0 = pad, id 1 = eos, then one id per alphabet character.

export interface Tokenizer {
  readonly vocabSize: number;
  /** Never produced by encode. */
  readonly padId: number;
  /** Ends a response (the sampler's stop token). */
  readonly eosId: number;
  /** Throws a clear error naming the first unknown character and its position. */
  encode(text: string): number[];
  /** Pad and eos decode to ''; an id outside the vocabulary throws. */
  decode(ids: readonly number[]): string;
}

const PAD_ID = 0;
const EOS_ID = 1;
const FIRST_CHAR_ID = 2;

/** Shows a character unambiguously in an error message (whitespace and control characters by code point). */
function describeChar(ch: string): string {
  const code = ch.codePointAt(0)!;
  const hex = `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  return code > 0x20 && code !== 0x7f ? `'${ch}' (${hex})` : hex;
}

export class CharTokenizer implements Tokenizer {
  readonly padId = PAD_ID;
  readonly eosId = EOS_ID;
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

  encode(text: string): number[] {
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

  decode(ids: readonly number[]): string {
    let text = '';
    ids.forEach((id, position) => {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new RangeError(`cannot decode token ${id} at position ${position}: outside the vocabulary of size ${this.vocabSize}`);
      }
      if (id >= FIRST_CHAR_ID) text += this.alphabet[id - FIRST_CHAR_ID];
    });
    return text;
  }
}

/**
 * The one tokenizer of every built-in task. Digits, the four operators, '=', parentheses, ',' and ':' build
 * prompts; '>' separates a response's scratchpad from its final answer. The last ten characters are spare
 * (for custom tasks), filling the vocabulary to exactly 32 = DEFAULT_MODEL_CONFIG.vocabSize.
 */
export const TASK_TOKENIZER = new CharTokenizer('0123456789+-*/=(),:> .#$%<;?!^');
