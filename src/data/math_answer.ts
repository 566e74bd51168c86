// Final answers of math completions, read and compared as the DAPO paper's rule-based reward does: the answer is
// the last \boxed{…}, else the text after the last GSM8K '####', else what follows the last "the answer is" /
// "Answer:"; numbers are normalised (thousands commas, '$', '+', trailing zeros) and compared exactly; the reward
// is +1 for a correct final answer and −1 otherwise.

/** Where the final answer was found. */
export type AnswerSource = 'boxed' | 'hashes' | 'answer-is';

export interface ExtractedAnswer {
  /** The answer text as written (not normalised). */
  text: string;
  source: AnswerSource;
}

const BOXED_COMMANDS = ['\\boxed', '\\fbox'];

/** The content of the last `\boxed{…}` (or `\fbox{…}`), braces balanced; `\boxed 5` (no braces) reads one token.
 *  Null when there is none, or the last one is never closed (a truncated completion has no answer). */
export function lastBoxed(text: string): string | null {
  let start = -1;
  let command = '';
  for (const name of BOXED_COMMANDS) {
    const at = text.lastIndexOf(name);
    if (at > start) [start, command] = [at, name];
  }
  if (start < 0) return null;
  let i = start + command.length;
  while (text[i] === ' ') i++;
  if (text[i] !== '{') {
    // `\boxed 5`: the argument is the next whitespace-delimited token.
    const token = i > start + command.length ? /^[^\s$]+/.exec(text.slice(i)) : null;
    return token ? token[0] : null;
  }
  let depth = 0;
  for (let j = i; j < text.length; j++) {
    if (text[j] === '\\' && j + 1 < text.length) {
      j++; // an escaped brace (\{ or \}) does not open or close the box
      continue;
    }
    if (text[j] === '{') depth++;
    else if (text[j] === '}' && --depth === 0) return text.slice(i + 1, j);
  }
  return null;
}

const ANSWER_PHRASE = /(?:final answer|answer)\s*(?:is|:)\s*:?/gi;

/** The answer text after a marker: the rest of its line, with a leading number taken alone ("42 apples." → "42"). */
function answerAfterMarker(rest: string): string | null {
  const line = rest.split('\n').find((part) => part.trim() !== '');
  if (line === undefined) return null;
  let text = line.trim().replace(/[.。]+$/, '').trim();
  if (text === '') return null;
  if (isNumber(text)) return text;
  const leadingNumber = /^\$?\s*([-+−]?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)(?=$|[\s,;!?)]|\.(?!\d))/.exec(text);
  if (leadingNumber) return leadingNumber[1];
  text = text.replace(/^\$(.*)\$$/, '$1').trim();
  return text === '' ? null : text;
}

/** The completion's final answer: the last `\boxed{…}`, else after the last '####', else after the last "the answer
 *  is" / "Answer:"; null when there is none. */
export function extractAnswer(completion: string): ExtractedAnswer | null {
  const boxed = lastBoxed(completion);
  if (boxed !== null) return { text: boxed, source: 'boxed' };
  const hashes = completion.lastIndexOf('####');
  if (hashes >= 0) {
    const text = answerAfterMarker(completion.slice(hashes + 4));
    if (text !== null) return { text, source: 'hashes' };
  }
  let last: RegExpExecArray | null = null;
  for (const match of completion.matchAll(ANSWER_PHRASE)) last = match;
  if (last) {
    const text = answerAfterMarker(completion.slice(last.index + last[0].length));
    if (text !== null) return { text, source: 'answer-is' };
  }
  return null;
}

const GROUPED_NUMBER = /^[-+]?(?:\d{1,3}(?:,\d{3})+)(?:\.\d*)?$/;
const PLAIN_NUMBER = /^[-+]?(?:\d+\.?\d*|\.\d+)$/;

function isNumber(text: string): boolean {
  const bare = text.replace(/\\?\$/g, '').replace(/−/g, '-').trim();
  return GROUPED_NUMBER.test(bare) || PLAIN_NUMBER.test(bare);
}

/** A decimal in canonical form: no '+', no leading zeros, no trailing fractional zeros, '-0' → '0'. */
function canonicalDecimal(text: string): string {
  let sign = '';
  let digits = text.replace(/,/g, '');
  if (digits[0] === '+' || digits[0] === '-') [sign, digits] = [digits[0] === '-' ? '-' : '', digits.slice(1)];
  let [whole, fraction = ''] = digits.split('.');
  whole = whole.replace(/^0+(?=\d)/, '') || '0';
  fraction = fraction.replace(/0+$/, '');
  const body = fraction ? `${whole}.${fraction}` : whole;
  return body === '0' ? '0' : sign + body;
}

/** The comparable form of an answer: LaTeX spacing, `\left`/`\right`, `$`, `\text{…}` wrappers, a trailing period and
 *  whitespace dropped, `\dfrac`/`\tfrac` read as `\frac`, the Unicode minus as '-'; a number in canonical decimal form
 *  ("1,000" → "1000", "+3.50" → "3.5", "7.0" → "7", "$18" → "18"). */
export function normalizeAnswer(answer: string): string {
  let text = answer.trim()
    .replace(/\\(?:left|right)\b/g, '')
    .replace(/\\[!,;:]|\\ /g, '')
    .replace(/\\[dt]frac/g, '\\frac')
    .replace(/\\text\{([^{}]*)\}/g, '$1')
    .replace(/\\?\$/g, '')
    .replace(/−/g, '-')
    .replace(/\s+/g, '');
  text = text.replace(/\.+$/, '');
  if (GROUPED_NUMBER.test(text) || PLAIN_NUMBER.test(text)) return canonicalDecimal(text);
  return text;
}

/** True when the two answers are equal after normalisation (numbers exactly: no tolerance, so integers must match). */
export function answersMatch(predicted: string, reference: string): boolean {
  const p = normalizeAnswer(predicted);
  return p !== '' && p === normalizeAnswer(reference);
}

/** The reference answer of a dataset field: the last `\boxed{…}` of a worked solution (MATH), the text after the last
 *  '####' (GSM8K), else the whole value. */
export function referenceAnswer(value: string): string {
  const boxed = lastBoxed(value);
  if (boxed !== null) return boxed.trim();
  const hashes = value.lastIndexOf('####');
  if (hashes >= 0) return value.slice(hashes + 4).trim();
  return value.trim();
}

/** DAPO's rule-based reward: +1 when the completion's final answer equals the reference, −1 otherwise. */
export function mathReward(completion: string, reference: string): 1 | -1 {
  const extracted = extractAnswer(completion);
  return extracted !== null && answersMatch(extracted.text, reference) ? 1 : -1;
}
