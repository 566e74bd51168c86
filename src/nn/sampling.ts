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
 * Every probability is computed once into a scratch array (one exp per token for the normaliser, one for the
 * probability) and candidates are ordered by a numeric sort of packed keys, not a comparator: the same values in the
 * same order as the direct formulas, so a seed picks the same token; a vocabulary of 49 152 costs ~1 ms, not ~7.
 */
export function sampleToken(logits: ArrayLike<number>, opts: SamplingOptions, u: number): { token: number; logprob: number } {
  const V = logits.length;
  const temperature = opts.temperature ?? 1;
  const t = temperature > 0 ? temperature : 1;
  const scaled = scratch('scaled', V);
  let mx = -Infinity;
  for (let i = 0; i < V; i++) {
    const s = logits[i] / t;
    scaled[i] = s;
    mx = Math.max(mx, s);
  }
  let z = 0;
  for (let i = 0; i < V; i++) z += Math.exp(scaled[i] - mx);
  const logZ = mx + Math.log(z);

  if (temperature === 0) {
    let best = 0;
    for (let i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
    return { token: best, logprob: scaled[best] - logZ };
  }
  const probability = scratch('probability', V);
  for (let i = 0; i < V; i++) probability[i] = Math.exp(scaled[i] - logZ);
  const topK = opts.topK ?? 0;
  const topP = opts.topP ?? 1;
  if (topK <= 0 && topP >= 1) {
    // Every token, in index order.
    let total = 0;
    for (let i = 0; i < V; i++) total += probability[i];
    const target = u * total;
    let acc = 0;
    for (let i = 0; i < V; i++) {
      acc += probability[i];
      if (target < acc) return { token: i, logprob: scaled[i] - logZ };
    }
    return { token: V - 1, logprob: scaled[V - 1] - logZ };
  }
  // Candidates by descending probability (ties by index, for determinism), truncated by top-k and top-p.
  let order = descendingOrder(logits);
  if (topK > 0) order = order.subarray(0, Math.min(topK, V));
  if (topP < 1) {
    let mass = 0;
    let keep = 0;
    while (keep < order.length && mass < topP) mass += probability[order[keep++]];
    order = order.subarray(0, Math.max(1, keep));
  }
  let total = 0;
  for (const i of order) total += probability[i];
  let acc = 0;
  const target = u * total;
  for (const i of order) {
    acc += probability[i];
    if (target < acc) return { token: i, logprob: scaled[i] - logZ };
  }
  const last = order[order.length - 1];
  return { token: last, logprob: scaled[last] - logZ };
}

const scratchArrays = new Map<string, Float64Array>();

/** A reused Float64Array of at least n elements (sampling runs once per token: no allocation per call). */
function scratch(name: string, n: number): Float64Array {
  let array = scratchArrays.get(name);
  if (!array || array.length < n) scratchArrays.set(name, array = new Float64Array(n));
  return array;
}

/** Bits of float32 x, so that unsigned order = numeric order (−0 counts as +0, as comparisons do). */
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function orderedBits(x: number): number {
  f32[0] = x === 0 ? 0 : x;
  const bits = u32[0];
  return bits & 0x80000000 ? ~bits >>> 0 : (bits | 0x80000000) >>> 0;
}

/**
 * Token indices by descending logit, ties by ascending index. Float32 logits (what a backend reads back) sort as one
 * float64 key each — (2³² − 1 − ordered bits) · 2^18 + index, exact below 2⁵³ — with the native numeric sort; other
 * inputs (float64 values, vocabularies over 2^18) fall back to a comparator sort with the same order.
 */
function descendingOrder(logits: ArrayLike<number>): Uint32Array {
  const V = logits.length;
  const order = new Uint32Array(V);
  if (logits instanceof Float32Array && V <= INDEX_SPAN) {
    const keys = new Float64Array(V);
    for (let i = 0; i < V; i++) keys[i] = (0xffffffff - orderedBits(logits[i])) * INDEX_SPAN + i;
    keys.sort();
    for (let i = 0; i < V; i++) order[i] = keys[i] % INDEX_SPAN;
    return order;
  }
  const indices = Array.from({ length: V }, (_, i) => i);
  indices.sort((a, b) => logits[b] - logits[a] || a - b);
  order.set(indices);
  return order;
}
const INDEX_SPAN = 2 ** 18;
