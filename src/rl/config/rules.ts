// Field rules and the generic check behind every config problem message ("must be an integer ≥ 1, got 0").

export type Rule =
  | { kind: 'int'; min: number; max?: number; note?: string; limit?: number }
  | { kind: 'number'; min?: number; minOpen?: boolean; max?: number; maxOpen?: boolean; note?: string }
  | { kind: 'bool' }
  | { kind: 'enum'; values: readonly string[] };

export const int = (min: number, note?: string, max?: number): Rule => ({ kind: 'int', min, max, note });
/** Every count (steps, sizes, intervals) stays below this: 1e300 steps is a typo, not a run. */
export const MAX_COUNT = 10_000_000;
/** An integer count ≥ min; above MAX_COUNT it is refused as a typo (said only then, so the usual message stays short). */
export const count = (min: number, note?: string): Rule => ({ kind: 'int', min, note, limit: MAX_COUNT });
export const atLeast = (min: number, note?: string): Rule => ({ kind: 'number', min, note });
export const above = (min: number): Rule => ({ kind: 'number', min, minOpen: true });
export const range = (min: number, max: number, minOpen = false, maxOpen = false): Rule => ({ kind: 'number', min, max, minOpen, maxOpen });
export const bool: Rule = { kind: 'bool' };
export const oneOf = (values: readonly string[]): Rule => ({ kind: 'enum', values });

/** A value as a problem message quotes it. */
export function formatValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined) return 'undefined';
  if (typeof value === 'number') return String(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function bounds(rule: Extract<Rule, { kind: 'number' }>): string {
  if (rule.min !== undefined && rule.max !== undefined) return `in ${rule.minOpen ? '(' : '['}${rule.min}, ${rule.max}${rule.maxOpen ? ')' : ']'}`;
  if (rule.min !== undefined) return `${rule.minOpen ? '>' : '≥'} ${rule.min}`;
  if (rule.max !== undefined) return `${rule.maxOpen ? '<' : '≤'} ${rule.max}`;
  return 'a finite number';
}

/** The problem with one value, or undefined when it follows its rule. */
export function checkValue(rule: Rule, value: unknown): string | undefined {
  switch (rule.kind) {
    case 'bool':
      return typeof value === 'boolean' ? undefined : `must be true or false, got ${formatValue(value)}`;
    case 'enum':
      return typeof value === 'string' && rule.values.includes(value) ? undefined
        : `must be one of ${rule.values.map((allowed) => `'${allowed}'`).join(', ')}, got ${formatValue(value)}`;
    case 'int': {
      const want = `an integer ≥ ${rule.min}${rule.max !== undefined ? ` and ≤ ${rule.max}` : ''}${rule.note ? ` (${rule.note})` : ''}`;
      const ok = typeof value === 'number' && Number.isInteger(value) && value >= rule.min && (rule.max === undefined || value <= rule.max);
      if (!ok) return `must be ${want}, got ${formatValue(value)}`;
      if (rule.limit !== undefined && (value as number) > rule.limit) {
        return `must be ≤ ${rule.limit}${rule.note ? ` (${rule.note})` : ''}: a count this large never ends, got ${formatValue(value)}`;
      }
      return undefined;
    }
    case 'number': {
      const note = rule.note ? ` (${rule.note})` : '';
      if (typeof value !== 'number' || !Number.isFinite(value)) return `must be a finite number ${bounds(rule)}${note}, got ${formatValue(value)}`;
      const low = rule.min !== undefined && (rule.minOpen ? value <= rule.min : value < rule.min);
      const high = rule.max !== undefined && (rule.maxOpen ? value >= rule.max : value > rule.max);
      return low || high ? `must be ${bounds(rule)}${note}, got ${formatValue(value)}` : undefined;
    }
  }
}
