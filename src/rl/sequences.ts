// Training sequences (prompt + response) packed into right-padded batches, and per-token log-probs of
// response tokens under a model, computed without a tape (old log-probs, reference log-probs).
import * as T from '../tensor/index.js';
import type { Tensor } from '../tensor/index.js';
import type { TransformerLM } from '../nn/transformer.js';
import { distinctPrompts } from '../nn/prompt_rows.js';

export interface TrainSequence {
  promptIds: readonly number[];
  responseIds: readonly number[];
  /** Group-normalised advantage, the same for every token of the response. */
  advantage: number;
  /** 1 for response tokens that take part in the loss (0: overlong-filtered). */
  mask: readonly number[];
  /** Aggregation weight per response token (see aggregation.ts); set per optimizer step. */
  weights: number[];
  /**
   * Log-probs of the response tokens under the rollout policy, recorded before any update; null when the sequence
   * trains before the update's first optimizer step, while the policy still is the rollout policy: its current
   * log-probs, detached, are then the old ones (see oldLogprobsNeeded in policy_update.ts).
   */
  oldLogp: number[] | null;
  /** Log-probs under the frozen reference policy (KL penalty), or null when the KL is off. */
  refLogp: number[] | null;
}

/**
 * Right-padded inputs [B, L] and next-token targets [B·L] (−1 outside the responses), where L is the longest
 * prompt+response minus one. Response token j of sequence b is predicted at position b·L + (prompt length − 1 + j).
 * Only those positions go through the output head: the response tokens, sequence by sequence, are the batch's
 * `rows` (log-probs, advantages, weights and masks are all laid out that way).
 */
export interface PackedBatch {
  batch: number;
  length: number;
  ids: number[];
  targets: number[];
  /** Response tokens in the batch. */
  rows: number;
  /** Position in [0, B·L) that predicts each response token (row order). */
  positions: number[];
  /** The response token of each row. */
  responseTargets: number[];
  /** Row of response token j of sequence b. */
  row(b: number, j: number): number;
}

export function pack(sequences: readonly Pick<TrainSequence, 'promptIds' | 'responseIds'>[], padId: number): PackedBatch {
  const length = Math.max(1, ...sequences.map((sequence) => sequence.promptIds.length + sequence.responseIds.length - 1));
  const ids: number[] = [];
  const targets: number[] = [];
  const positions: number[] = [];
  const responseTargets: number[] = [];
  const firstRow: number[] = [];
  sequences.forEach((sequence, b) => {
    const full = [...sequence.promptIds, ...sequence.responseIds];
    const promptLength = sequence.promptIds.length;
    firstRow.push(positions.length);
    for (let t = 0; t < length; t++) {
      ids.push(t < full.length ? full[t] : padId);
      // Position t predicts token t+1; only response tokens are targets.
      const response = t + 1 >= promptLength && t + 1 < full.length;
      targets.push(response ? full[t + 1] : -1);
      if (response) {
        positions.push(b * length + t);
        responseTargets.push(full[t + 1]);
      }
    }
  });
  return {
    batch: sequences.length, length, ids, targets, rows: positions.length, positions, responseTargets,
    row: (b, j) => firstRow[b] + j,
  };
}

/**
 * The same response-token rows as pack(), laid out for TransformerLM.sharedPromptLogprobs: distinct prompts once,
 * left-padded [U, P]; each sequence's response inputs (all but its last token) right-padded [B, R]. Null when no two
 * sequences share a prompt or no response has a second token (then pack() is the layout).
 */
export interface SharedPromptBatch {
  rows: number;
  row(b: number, j: number): number;
  prompts: number;
  promptLength: number;
  responseLength: number;
  promptIds: number[];
  promptPositions: number[];
  promptKeyStart: number[];
  responseIds: number[];
  responsePositions: number[];
  responseKeyStart: number[];
  /** Prompt of each sequence. */
  promptRow: number[];
  pick: number[];
  targets: number[];
}

export function packSharedPrompts(sequences: readonly Pick<TrainSequence, 'promptIds' | 'responseIds'>[], padId: number): SharedPromptBatch | null {
  const { distinct, rows: promptRow } = distinctPrompts(sequences.map((sequence) => sequence.promptIds));
  const R = Math.max(0, ...sequences.map((sequence) => sequence.responseIds.length - 1));
  if (distinct.length === sequences.length || R === 0 || distinct.some((p) => p.length === 0)) return null;
  const U = distinct.length;
  const P = Math.max(...distinct.map((p) => p.length));
  const promptIds: number[] = [], promptPositions: number[] = [], promptKeyStart: number[] = [];
  for (const p of distinct) {
    const start = P - p.length;
    promptKeyStart.push(start);
    for (let t = 0; t < P; t++) {
      promptIds.push(t < start ? padId : p[t - start]);
      promptPositions.push(Math.max(0, t - start));
    }
  }
  const responseIds: number[] = [], responsePositions: number[] = [], responseKeyStart: number[] = [];
  const pick: number[] = [], targets: number[] = [], firstRow: number[] = [];
  sequences.forEach((sequence, b) => {
    const u = promptRow[b];
    const length = distinct[u].length;
    responseKeyStart.push(promptKeyStart[u]);
    for (let j = 0; j < R; j++) {
      responseIds.push(j < sequence.responseIds.length ? sequence.responseIds[j] : padId);
      responsePositions.push(length + j);
    }
    firstRow.push(pick.length);
    sequence.responseIds.forEach((token, j) => {
      // token j is predicted by the prompt's last position (j = 0) or by response input j − 1
      pick.push(j === 0 ? u * P + P - 1 : U * P + b * R + j - 1);
      targets.push(token);
    });
  });
  return {
    rows: pick.length, row: (b, j) => firstRow[b] + j, prompts: U, promptLength: P, responseLength: R,
    promptIds, promptPositions, promptKeyStart, responseIds, responsePositions, responseKeyStart, promptRow, pick, targets,
  };
}

/** Host values per response token, in row order. */
export function scatterRows(packed: Pick<LogprobBatch, 'rows' | 'row'>, sequences: readonly { responseIds: readonly number[] }[], value: (b: number, j: number) => number): Float32Array {
  const out = new Float32Array(packed.rows);
  sequences.forEach((sequence, b) => { for (let j = 0; j < sequence.responseIds.length; j++) out[packed.row(b, j)] = value(b, j); });
  return out;
}

/**
 * Token log-probs and entropies of the batch's response tokens [rows]: hidden states of the model at the positions
 * that predict them → the head fused with log-softmax-gather in row chunks, so no [rows, V] logits exist
 * (TransformerLM.tokenLogprobs).
 */
export function tokenLogprobs(model: TransformerLM, p: PackedBatch): { logp: Tensor; entropy: Tensor } {
  const ids = T.tensor(p.ids, [p.batch, p.length], 'int32');
  const positions = T.tensor(p.positions, [p.rows], 'int32');
  const targets = T.tensor(p.responseTargets, [p.rows], 'int32');
  try {
    return model.tokenLogprobs(ids, targets, { rows: positions });
  } finally {
    ids.dispose();
    positions.dispose();
    targets.dispose();
  }
}

/** tokenLogprobs over a packSharedPrompts layout: each shared prompt's positions run once. */
export function sharedPromptTokenLogprobs(model: TransformerLM, s: SharedPromptBatch, batch: number): { logp: Tensor; entropy: Tensor } {
  const int = (values: number[], shape: number[]) => T.tensor(values, shape, 'int32');
  const tensors = {
    promptIds: int(s.promptIds, [s.prompts, s.promptLength]), promptPositions: int(s.promptPositions, [s.prompts, s.promptLength]),
    promptKeyStart: int(s.promptKeyStart, [s.prompts]),
    responseIds: int(s.responseIds, [batch, s.responseLength]), responsePositions: int(s.responsePositions, [batch, s.responseLength]),
    responseKeyStart: int(s.responseKeyStart, [batch]), rows: int(s.promptRow, [batch]), pick: int(s.pick, [s.rows]), targets: int(s.targets, [s.rows]),
  };
  try {
    return model.sharedPromptLogprobs(tensors);
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
}

/** A micro-batch's response-token rows and the pass that gives their log-probs and entropies, in row order. */
export interface LogprobBatch {
  rows: number;
  row(b: number, j: number): number;
  logprobs(): { logp: Tensor; entropy: Tensor };
}

/**
 * The layout for `sequences`: responses that share a prompt (a group's) run its positions once (packSharedPrompts)
 * when `share` and lm_head carries no adapter; otherwise each sequence is packed whole (pack).
 */
export function logprobBatch(model: TransformerLM, sequences: readonly Pick<TrainSequence, 'promptIds' | 'responseIds'>[], padId: number, share = true): LogprobBatch {
  const shared = share && model.headWeight() ? packSharedPrompts(sequences, padId) : null;
  if (shared) return { rows: shared.rows, row: shared.row, logprobs: () => sharedPromptTokenLogprobs(model, shared, sequences.length) };
  const packed = pack(sequences, padId);
  return { rows: packed.rows, row: packed.row, logprobs: () => tokenLogprobs(model, packed) };
}

/**
 * Log-probs of every response token, without a tape, in micro-batches of `microBatch` sequences (logprobBatch: a
 * shared prompt runs once).
 */
export async function responseLogprobs(
  model: TransformerLM, sequences: readonly Pick<TrainSequence, 'promptIds' | 'responseIds'>[], padId: number, microBatch: number,
): Promise<number[][]> {
  const out: number[][] = [];
  for (let start = 0; start < sequences.length; start += microBatch) {
    const micro = sequences.slice(start, start + microBatch);
    const packed = logprobBatch(model, micro, padId);
    const { logp, entropy } = T.noGrad(() => packed.logprobs());
    entropy.dispose();
    const host = await logp.read();
    logp.dispose();
    micro.forEach((sequence, b) => out.push(Array.from({ length: sequence.responseIds.length }, (_, j) => host[packed.row(b, j)])));
  }
  return out;
}
