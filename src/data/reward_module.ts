// User rewards as functions (TRL's reward_funcs, verl's custom_reward_function): `(prompt, completion, record) =>
// number | Promise<number>`, float values allowed. A module exports it as default or as `reward`; Node imports the
// module by path (reward_module_node.ts), a page imports it however it likes and hands the namespace here.
import type { Problem, ScoreResult, Split, Task } from './task.js';
import type { Tokenizer } from './tokenizer.js';

/** A reward for one completion: `prompt` is the text the policy saw, `completion` the decoded response (before EOS),
 *  `record` the dataset row of a dataset task (for a built-in task: the problem's id, prompt, answer and solution). */
export type RewardFunction = (prompt: string, completion: string, record: Readonly<Record<string, unknown>>) => number | Promise<number>;

/** The reward function a module exports: `export default` or `export function reward`. */
export function rewardFromModule(namespace: Readonly<Record<string, unknown>>, source: string): RewardFunction {
  const candidate = typeof namespace.default === 'function' ? namespace.default : namespace.reward;
  if (typeof candidate !== 'function') {
    const exported = Object.keys(namespace);
    throw new Error(`reward module ${source}: export the reward function as default or as 'reward' ` +
      `((prompt, completion, record) => number); it exports ${exported.length ? exported.map((name) => `'${name}'`).join(', ') : 'nothing'}`);
  }
  return candidate as RewardFunction;
}

function preview(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text);
}

/** The reward of one completion, checked: a throw or a value that is not a finite number becomes an error naming the
 *  module and the sample. */
export async function checkedReward(reward: RewardFunction, source: string, problem: Problem, completion: string): Promise<number> {
  const record = problem.record ?? { id: problem.id, prompt: problem.prompt, answer: problem.answer, solution: problem.solution };
  const sample = `problem ${problem.id}, completion ${preview(completion)}`;
  let value: unknown;
  try {
    value = await reward(problem.prompt, completion, record);
  } catch (err) {
    throw new Error(`reward module ${source} threw on ${sample}: ${(err as Error).message}`);
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new Error(`reward module ${source} returned ${typeof value === 'number' ? value : JSON.stringify(value) ?? String(value)} on ${sample}: a reward must be a finite number`);
  }
  return value;
}

/** The task with its +1/−1 training reward replaced by `reward` (its checker still decides correctness: accuracy,
 *  evaluation). */
export function withReward(task: Task, reward: RewardFunction, source: string): Task {
  if (typeof reward !== 'function') throw new Error(`withReward: the reward of ${source} must be a function, got ${typeof reward}`);
  return new RewardedTask(task, reward, source);
}

class RewardedTask implements Task {
  constructor(private readonly base: Task, private readonly rewardFunction: RewardFunction, readonly rewardSource: string) {}
  get name(): string { return this.base.name; }
  get description(): string { return `${this.base.description}; rewards from ${this.rewardSource}`; }
  get tokenizer(): Tokenizer { return this.base.tokenizer; }
  get maxPromptLength(): number { return this.base.maxPromptLength; }
  get maxResponseLength(): number { return this.base.maxResponseLength; }
  get testSize(): number { return this.base.testSize; }
  problem(split: Split, index: number): Problem { return this.base.problem(split, index); }
  score(problem: Problem, response: string): ScoreResult { return this.base.score(problem, response); }
  reward(problem: Problem, response: string): Promise<number> {
    return checkedReward(this.rewardFunction, this.rewardSource, problem, response);
  }
}
