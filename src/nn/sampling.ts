// Host-side token sampling from one row of logits: temperature, top-k, top-p (nucleus), greedy.

export interface SamplingOptions {
  /** 0 = greedy (argmax); default 1. */
  temperature?: number;
  /** Keep the k most likely tokens (0 = all). */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p (1 = all). */
  topP?: number;
}

export function checkSamplingOptions(o: SamplingOptions): void {
  const problems: string[] = [];
  if (o.temperature !== undefined && !(o.temperature >= 0)) problems.push(`temperature must be ≥ 0, got ${o.temperature}`);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) problems.push(`topK must be an integer ≥ 0, got ${o.topK}`);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) problems.push(`topP must be in (0, 1], got ${o.topP}`);
  if (problems.length) throw new RangeError(`sampling options: ${problems.join('; ')}`);
}

/**
 * Picks a token from `logits` with the uniform number u ∈ [0, 1). Returns the token and its log-probability
 * under softmax(logits / temperature) before top-k/top-p truncation (the policy's own distribution, what
 * RL ratios need); greedy decoding reports the temperature-1 log-probability.
 */
export function sampleToken(logits: ArrayLike<number>, opts: SamplingOptions, u: number): { token: number; logprob: number } {
  const V = logits.length;
  const temperature = opts.temperature ?? 1;
  const t = temperature > 0 ? temperature : 1;
  let mx = -Infinity;
  for (let i = 0; i < V; i++) mx = Math.max(mx, logits[i] / t);
  let z = 0;
  for (let i = 0; i < V; i++) z += Math.exp(logits[i] / t - mx);
  const logZ = mx + Math.log(z);
  const logprobOf = (i: number) => logits[i] / t - logZ;

  if (temperature === 0) {
    let best = 0;
    for (let i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
    return { token: best, logprob: logprobOf(best) };
  }
  // Candidates by descending probability (ties by index, for determinism), truncated by top-k and top-p.
  let order = Array.from({ length: V }, (_, i) => i);
  const topK = opts.topK ?? 0;
  const topP = opts.topP ?? 1;
  if (topK > 0 || topP < 1) {
    order.sort((a, b) => logits[b] - logits[a] || a - b);
    if (topK > 0) order = order.slice(0, topK);
    if (topP < 1) {
      let mass = 0;
      let keep = 0;
      while (keep < order.length && mass < topP) mass += Math.exp(logprobOf(order[keep++]));
      order = order.slice(0, Math.max(1, keep));
    }
  }
  let total = 0;
  for (const i of order) total += Math.exp(logprobOf(i));
  let acc = 0;
  const target = u * total;
  for (const i of order) {
    acc += Math.exp(logprobOf(i));
    if (target < acc) return { token: i, logprob: logprobOf(i) };
  }
  const last = order[order.length - 1];
  return { token: last, logprob: logprobOf(last) };
}
