// JSON Lines of a run directory (metrics, evaluations, warm-up losses): one object with a numeric `step` per line.
// Platform-neutral text parsing; reading the file is the caller's (Node adapter's) business.

export interface JsonlRecord {
  step: number;
  [key: string]: unknown;
}

/**
 * Parses JSON Lines text. Blank lines are skipped; an unparsable *last* line is treated as a write cut short
 * (the trainer was stopped mid-line) and dropped, reported through `truncated`; an unparsable line elsewhere,
 * or a record without a numeric `step`, is an error naming the source and line.
 */
export function parseJsonl<R extends JsonlRecord = JsonlRecord>(text: string, source: string): { records: R[]; truncated: boolean } {
  const lines = text.split('\n');
  let last = lines.length - 1;
  while (last >= 0 && lines[last]!.trim() === '') last--;
  const records: R[] = [];
  let truncated = false;
  for (let i = 0; i <= last; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      if (i === last) {
        truncated = true;
        break;
      }
      throw new Error(`${source}:${i + 1}: not valid JSON (${(err as Error).message})`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new Error(`${source}:${i + 1}: expected a JSON object per line`);
    }
    const step = (value as { step?: unknown }).step;
    if (typeof step !== 'number' || !Number.isFinite(step)) {
      throw new Error(`${source}:${i + 1}: record has no numeric "step"`);
    }
    records.push(value as R);
  }
  return { records, truncated };
}
