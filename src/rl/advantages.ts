// Group-relative advantages (GRPO/DAPO): every response is scored against the other responses to its prompt.

/** Below this reward std a group counts as flat: its advantages are zero and dynamic sampling treats it as uninformative. */
export const FLAT_STD_TOLERANCE = 1e-6;

function mean(values: readonly number[]): number {
  let sum = 0;
  for (const value of values) sum += value;
  return sum / values.length;
}

/** Unbiased (Bessel-corrected) sample std, as verl and TRL use; 0 for fewer than two values. */
export function groupStd(rewards: readonly number[]): number {
  if (rewards.length < 2) return 0;
  const rewardMean = mean(rewards);
  let squares = 0;
  for (const reward of rewards) squares += (reward - rewardMean) * (reward - rewardMean);
  return Math.sqrt(squares / (rewards.length - 1));
}

function checkRewards(rewards: readonly number[]): void {
  const bad = rewards.flatMap((reward, i) => (Number.isFinite(reward) ? [] : [`[${i}]=${reward}`]));
  if (bad.length) throw new Error(`groupAdvantages: rewards must be finite numbers, got ${bad.join(', ')}`);
}

/** A_i = (R_i − mean)/(std + eps) within one group; std is the unbiased (Bessel) sample std like verl/TRL; a group of
 *  one response or zero std gives all zeros (never NaN). */
export function groupAdvantages(rewards: readonly number[], eps = 1e-6): number[] {
  checkRewards(rewards);
  if (!(eps >= 0)) throw new Error(`groupAdvantages: eps must be ≥ 0, got ${eps}`);
  const std = groupStd(rewards);
  // A flat group (within float noise) carries no signal; without this, rounding in the mean would give ±tiny/eps.
  if (std < FLAT_STD_TOLERANCE) return rewards.map(() => 0);
  const rewardMean = mean(rewards);
  return rewards.map((reward) => (reward - rewardMean) / (std + eps));
}

export type GroupKind = 'all-correct' | 'all-wrong' | 'mixed';

/** Classifies a group by correctness (not by the length-shaped reward, which the overlong penalty makes vary). */
export function groupKind(correct: readonly boolean[]): GroupKind {
  if (correct.length === 0) throw new Error('groupKind: a group needs at least one response');
  const right = correct.filter(Boolean).length;
  if (right === correct.length) return 'all-correct';
  if (right === 0) return 'all-wrong';
  return 'mixed';
}
