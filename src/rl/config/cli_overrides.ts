// `--set rl.epsHigh=0.3`-style overrides (the CLI's flags, the training page's ?set=) as a config layer.
import { type PlainObject, isPlainObject } from './merge.js';
import { TrainConfigError } from './types.js';

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
const FORBIDDEN_KEYS = new Set(['__proto__', 'prototype', 'constructor']);

function parseValue(text: string): unknown {
  const trimmed = text.trim();
  if (trimmed === 'true') return true;
  if (trimmed === 'false') return false;
  if (NUMBER.test(trimmed)) return Number(trimmed);
  if (trimmed.startsWith('[') || trimmed.startsWith('{') || trimmed.startsWith('"')) return JSON.parse(trimmed);
  return text;
}

/** "rl.epsHigh=0.3"-style overrides from the CLI: parses numbers/booleans/strings into a nested object (errors name the flag).
 *  Values: true/false, decimal numbers, JSON for arrays/objects/quoted strings ("\"123\"" stays a string), else the raw
 *  string. A repeated key: the later one wins. */
export function parseOverrides(pairs: readonly string[]): Record<string, unknown> {
  const out: PlainObject = {};
  const problems: string[] = [];
  for (const pair of pairs) {
    const equals = pair.indexOf('=');
    if (equals < 0) {
      problems.push(`override ${JSON.stringify(pair)}: expected key=value (e.g. rl.epsHigh=0.3)`);
      continue;
    }
    const path = pair.slice(0, equals).trim().split('.');
    if (path.some((part) => part.trim() === '')) {
      problems.push(`override ${JSON.stringify(pair)}: the key has an empty part (use dotted names like rl.epsHigh)`);
      continue;
    }
    if (path.some((part) => FORBIDDEN_KEYS.has(part))) {
      problems.push(`override ${JSON.stringify(pair)}: '${path.find((part) => FORBIDDEN_KEYS.has(part))}' is not a config key`);
      continue;
    }
    let value: unknown;
    try {
      value = parseValue(pair.slice(equals + 1));
    } catch (err) {
      problems.push(`override ${JSON.stringify(pair)}: value is not valid JSON (${(err as Error).message})`);
      continue;
    }
    let node = out;
    let clash: string | undefined;
    for (let i = 0; i < path.length - 1; i++) {
      const part = path[i];
      if (node[part] === undefined) node[part] = {};
      else if (!isPlainObject(node[part])) {
        clash = path.slice(0, i + 1).join('.');
        break;
      }
      node = node[part] as PlainObject;
    }
    if (clash) {
      problems.push(`override ${JSON.stringify(pair)}: '${clash}' was already set to a value, not a section`);
      continue;
    }
    const last = path[path.length - 1];
    if (isPlainObject(node[last]) && !isPlainObject(value)) {
      problems.push(`override ${JSON.stringify(pair)}: '${path.join('.')}' already has keys set under it`);
      continue;
    }
    node[last] = value;
  }
  if (problems.length) throw new TrainConfigError(problems);
  return out;
}
