// The built-in verifiable-reward tasks: registry, defaults and validated construction.
import { ConfigError } from '../nn/config.js';
import { ADDITION } from './addition.js';
import { COUNTDOWN } from './countdown.js';
import { COMMON_KNOBS, type TaskDefinition, defaultKnobs, orderProblems, readKnobs } from './knobs.js';
import { MULTIPLICATION } from './multiplication.js';
import { SORTING } from './sorting.js';
import { isDatasetTask } from './math_task.js';
import { GeneratedTask, type TaskConfig } from './task.js';
import { TASK_TOKENIZER } from './tokenizer.js';

export type { Problem, ScoreResult, Split, Task, TaskConfig } from './task.js';
export { GeneratedTask } from './task.js';

const DEFINITIONS: readonly TaskDefinition[] = [ADDITION, MULTIPLICATION, COUNTDOWN, SORTING];
const BY_NAME = new Map(DEFINITIONS.map((d) => [d.name, d]));

/** Extra response budget beyond the longest solution + EOS (where a looping response gets truncated). */
const RESPONSE_SLACK = 6;

/** The default task first. */
export const TASK_NAMES: readonly string[] = DEFINITIONS.map((d) => d.name);

/** Every knob of every task with its default value. */
export const TASK_DEFAULTS: Record<string, TaskConfig> = Object.fromEntries(
  DEFINITIONS.map((d) => [d.name, { name: d.name, ...defaultKnobs({ ...COMMON_KNOBS, ...d.knobs }) }]),
);

/** Builds a built-in task; an unknown name, unknown knob or bad value throws one ConfigError listing all problems. */
export function makeTask(config: TaskConfig): GeneratedTask {
  if (typeof config !== 'object' || config === null) throw new ConfigError([`a task config must be an object, got ${JSON.stringify(config)}`], 'task config');
  if (isDatasetTask(config.name)) {
    throw new ConfigError([`task ${JSON.stringify(config.name)} reads its problems from a dataset file (task.path): build it with loadDatasetTask() ` +
      '(Node) or mathTask() over records you read'], 'task config');
  }
  const definition = BY_NAME.get(config.name);
  if (!definition) throw new ConfigError([`unknown task ${JSON.stringify(config.name)} (allowed: ${TASK_NAMES.join(', ')})`], 'task config');
  const problems: string[] = [];
  const { knobs, valuesOk } = readKnobs(definition.name, { ...COMMON_KNOBS, ...definition.knobs }, config, problems);
  if (valuesOk) problems.push(...orderProblems(definition.name, definition.ordered, knobs));
  if (problems.length) throw new ConfigError(problems, 'task config');
  const difficulty = Object.keys(definition.knobs).map((k) => `${k}=${knobs[k]}`).join(';');
  return new GeneratedTask(definition.generator(knobs), {
    name: definition.name,
    seed: knobs.seed as number,
    testSize: knobs.testSize as number,
    holdoutFraction: knobs.holdoutFraction as number,
    knobsKey: difficulty,
    responseSlack: RESPONSE_SLACK,
    tokenizer: TASK_TOKENIZER,
  });
}
