// DAPO soft overlong punishment: a length-aware reward term that ramps from 0 to −1 over the last cacheLen tokens.

/** DAPO soft overlong punishment: 0 if len ≤ maxLen − cacheLen; ((maxLen − cacheLen) − len)/cacheLen in the buffer;
 *  −1 beyond maxLen (len > maxLen). cacheLen 0 → 0 up to maxLen, −1 beyond. */
export function overlongPenalty(length: number, maxLen: number, cacheLen: number): number {
  const problems: string[] = [];
  if (!(Number.isInteger(length) && length >= 0)) problems.push(`length must be an integer ≥ 0, got ${length}`);
  if (!(Number.isInteger(maxLen) && maxLen >= 1)) problems.push(`maxLen must be an integer ≥ 1, got ${maxLen}`);
  if (!(Number.isInteger(cacheLen) && cacheLen >= 0 && cacheLen <= maxLen)) {
    problems.push(`cacheLen must be an integer in [0, maxLen=${maxLen}], got ${cacheLen}`);
  }
  if (problems.length) throw new Error(`overlongPenalty: ${problems.join('; ')}`);
  const safeLen = maxLen - cacheLen;
  if (length <= safeLen) return 0;
  if (length <= maxLen) return (safeLen - length) / cacheLen;
  return -1;
}
