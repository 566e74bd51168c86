// Sequences that share a prompt (a DAPO group's G responses) compute it once: the distinct prompts of a batch, and
// row selection that hands each sequence its prompt's rows (KV cache, logits, keys/values), differentiably.
import * as T from '../tensor/index.js';
import type { Tensor } from '../tensor/index.js';

/** The distinct prompts in order of first appearance, and each sequence's index among them. */
export function distinctPrompts(prompts: readonly (readonly number[])[]): { distinct: (readonly number[])[]; rows: number[] } {
  const seen = new Map<string, number>();
  const distinct: (readonly number[])[] = [];
  const rows = prompts.map((p) => {
    const key = p.join(',');
    let row = seen.get(key);
    if (row === undefined) {
      row = distinct.length;
      seen.set(key, row);
      distinct.push(p);
    }
    return row;
  });
  return { distinct, rows };
}

/** Row rows[b] of a [U, ...] tensor for every b: [rows.length, ...] (gather over the flattened rest). */
export function pickRows(t: Tensor, rows: Tensor): Tensor {
  const [U, ...rest] = t.shape;
  return T.reshape(T.gather(T.reshape(t, [U, t.size / U]), rows), [rows.size, ...rest]);
}
