// Loss aggregation as per-token weights fixed once per optimizer step, so that splitting the step's sequences into
// micro-batches (each summing w·ℓ, gradients accumulating) gives exactly the whole-batch loss. Normalising inside
// each micro-batch, or dividing again by the number of accumulation steps, is the bug verl #5625 / TRL #5619 had.

export type LossAggregation = 'token-mean' | 'seq-mean-token-mean' | 'seq-mean-token-sum' | 'seq-mean-token-sum-norm';
export const LOSS_AGGREGATIONS: readonly LossAggregation[] = [
  'token-mean',
  'seq-mean-token-mean',
  'seq-mean-token-sum',
  'seq-mean-token-sum-norm',
];

/**
 * Per-token weights for ALL sequences of one optimizer step, so that Σ_seq Σ_t w[seq][t]·ℓ[seq][t] is the aggregated
 * loss whichever way the sequences are later split into micro-batches (each micro-batch just sums w·ℓ; the gradients
 * accumulate; nothing is divided again). mask[seq][t] ∈ {0,1} marks valid response tokens (after overlong filtering).
 *  token-mean: w = m / Σ_all m        seq-mean-token-mean: w = m / (S·Σ_t m_seq)
 *  seq-mean-token-sum: w = m / S       seq-mean-token-sum-norm (Dr.GRPO): w = m / (S·maxLen)
 * where S = number of sequences with ≥ 1 valid token. Sequences with no valid token get all-zero weights. If no
 * token is valid at all, every weight is 0.
 */
export function tokenWeights(mode: LossAggregation, mask: readonly (readonly number[])[], maxLen: number): number[][] {
  if (!LOSS_AGGREGATIONS.includes(mode)) {
    throw new Error(`tokenWeights: unknown loss aggregation ${JSON.stringify(mode)} (allowed: ${LOSS_AGGREGATIONS.join(', ')})`);
  }
  // maxLen only matters for the Dr.GRPO constant normaliser.
  if (mode === 'seq-mean-token-sum-norm' && !(Number.isFinite(maxLen) && maxLen > 0)) {
    throw new Error(`tokenWeights: maxLen must be a positive number for ${mode}, got ${maxLen}`);
  }
  const bad: string[] = [];
  mask.forEach((row, sequence) => row.forEach((bit, token) => {
    if (bit !== 0 && bit !== 1) bad.push(`[${sequence}][${token}]=${bit}`);
  }));
  if (bad.length) throw new Error(`tokenWeights: mask entries must be 0 or 1, got ${bad.slice(0, 8).join(', ')}${bad.length > 8 ? ` (+${bad.length - 8} more)` : ''}`);

  const validPerSeq = mask.map((row) => row.reduce((sum, bit) => sum + bit, 0));
  const totalValid = validPerSeq.reduce((sum, valid) => sum + valid, 0);
  const sequences = validPerSeq.filter((valid) => valid > 0).length;
  if (totalValid === 0) return mask.map((row) => row.map(() => 0));

  return mask.map((row, sequence) => {
    const valid = validPerSeq[sequence];
    if (valid === 0) return row.map(() => 0);
    let weight: number;
    switch (mode) {
      case 'token-mean': weight = 1 / totalValid; break;
      case 'seq-mean-token-mean': weight = 1 / (sequences * valid); break;
      case 'seq-mean-token-sum': weight = 1 / sequences; break;
      case 'seq-mean-token-sum-norm': weight = 1 / (sequences * maxLen); break;
    }
    return row.map((bit) => bit * weight);
  });
}
