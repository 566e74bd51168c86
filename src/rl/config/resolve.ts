// Resolution: defaults ← preset (rl.algo) ← user layers, every key validated, every problem listed at once with its
// dotted path.
import type { BackendChoice } from '../../backend/select.js';
import { ConfigError, DEFAULT_MODEL_CONFIG, type ModelConfig, resolveModelConfig } from '../../nn/config.js';
import { MATH_TASK_DEFAULTS, type MathTaskConfig, isDatasetTask, mathTaskConfigProblems } from '../../data/math_task.js';
import { DAPO_DEFAULTS, DEFAULT_TRAIN_CONFIG, GRPO_PRESET } from './defaults.js';
import { closestKey } from './edit_distance.js';
import { type PlainObject, clone, isPlainObject, mergeLayers } from './merge.js';
import { type Rule, checkValue, formatValue } from './rules.js';
import { CHECKPOINT_RULES, EVAL_RULES, LORA_RULES, RL_RULES, SFT_RULES, TOP_KEYS, TOP_RULES } from './schema.js';
import { GRADIENT_CHECKPOINTING_CHOICES, type GradientCheckpointing, type LoraTrainConfig, type RLConfig, type TrainConfig, TrainConfigError } from './types.js';
import { LORA_DEFAULTS } from './defaults.js';

function unknownKeyProblem(path: string, key: string, allowed: readonly string[]): string {
  const near = closestKey(key, allowed);
  return `${path}${key}: unknown key (${near ? `did you mean '${near}'?` : `allowed: ${allowed.join(', ')}`})`;
}

/** One section of the merged layers: missing → empty, not an object → a problem. */
function section(merged: PlainObject, name: string, problems: string[]): PlainObject {
  const value = merged[name];
  if (value === undefined) return {};
  if (isPlainObject(value)) return value;
  problems.push(`${name}: must be an object, got ${formatValue(value)}`);
  return {};
}

/** Fills a section from its defaults and user keys, listing unknown keys and bad values. */
function resolveSection<T extends object>(path: string, defaults: T, user: PlainObject, rules: Record<keyof T, Rule>, problems: string[]): T {
  const allowed = Object.keys(rules);
  for (const key of Object.keys(user)) if (!allowed.includes(key)) problems.push(unknownKeyProblem(`${path}.`, key, allowed));
  const out = { ...defaults } as Record<string, unknown>;
  for (const key of allowed) {
    if (user[key] !== undefined) out[key] = user[key];
    const bad = checkValue(rules[key as keyof T], out[key]);
    if (bad) problems.push(`${path}.${key}: ${bad}`);
  }
  return out as T;
}

const divisors = (n: number) => Array.from({ length: n }, (_, i) => i + 1).filter((divisor) => n % divisor === 0);
/** No problem was reported yet for any of these dotted paths (cross-checks only look at values that passed their rule). */
const valid = (problems: string[], ...paths: string[]) => !problems.some((problem) => paths.some((path) => problem.startsWith(`${path}:`)));

function crossCheckRl(rl: RLConfig, model: ModelConfig | undefined, problems: string[]): void {
  const ok = (...keys: (keyof RLConfig)[]) => valid(problems, ...keys.map((key) => `rl.${key}`));
  if (ok('groupSize', 'dynamicSampling') && rl.groupSize === 1 && rl.dynamicSampling !== 'off') {
    problems.push(`rl.groupSize: 1 makes every group all-correct or all-wrong, so dynamicSampling '${rl.dynamicSampling}' can never fill a batch; use groupSize ≥ 2 or dynamicSampling 'off'`);
  }
  if (ok('generationBatchPrompts', 'promptsPerStep', 'dynamicSampling') && rl.dynamicSampling !== 'filter' && rl.generationBatchPrompts !== rl.promptsPerStep) {
    problems.push(`rl.generationBatchPrompts: must equal rl.promptsPerStep (${rl.promptsPerStep}) when dynamicSampling is '${rl.dynamicSampling}' (one generation batch is the training batch), got ${rl.generationBatchPrompts}`);
  }
  if (ok('promptsPerStep', 'groupSize', 'miniBatches', 'microBatchSize')) {
    const sequences = rl.promptsPerStep * rl.groupSize;
    if (sequences % rl.miniBatches !== 0) {
      problems.push(`rl.miniBatches: must divide promptsPerStep·groupSize = ${sequences} sequences (allowed: ${divisors(sequences).join(', ')}), got ${rl.miniBatches}`);
    } else {
      const perMini = sequences / rl.miniBatches;
      // A micro-batch at least as large as the mini-batch just means one pass per mini-batch.
      if (rl.microBatchSize < perMini && perMini % rl.microBatchSize !== 0) {
        const smaller = divisors(perMini).slice(0, -1).join(', ');
        problems.push(`rl.microBatchSize: must divide the mini-batch of promptsPerStep·groupSize/miniBatches = ${perMini} sequences (allowed: ${smaller ? `${smaller}, or ` : ''}≥ ${perMini}), got ${rl.microBatchSize}`);
      }
    }
  }
  if (ok('overlongPenalty', 'overlongCache', 'maxNewTokens') && rl.overlongPenalty && rl.overlongCache >= rl.maxNewTokens) {
    problems.push(`rl.overlongCache: must be < rl.maxNewTokens (${rl.maxNewTokens}) when overlongPenalty is on, got ${rl.overlongCache}`);
  }
  if (model && ok('maxNewTokens') && rl.maxNewTokens >= model.maxSeqLen) {
    problems.push(`rl.maxNewTokens: must be < model.maxSeqLen (${model.maxSeqLen}) to leave room for the prompt, got ${rl.maxNewTokens}`);
  }
}

/** A dataset task's section (gsm8k, math): every key filled from its defaults, unknown keys and bad values listed. */
function resolveDatasetTask(user: PlainObject, problems: string[]): MathTaskConfig {
  const defaults = MATH_TASK_DEFAULTS[user.name as MathTaskConfig['name']];
  const allowed = Object.keys(defaults);
  const out: PlainObject = { ...defaults };
  for (const [key, value] of Object.entries(user)) {
    if (!allowed.includes(key)) problems.push(unknownKeyProblem('task.', key, allowed));
    else if (value !== undefined) out[key] = value;
  }
  problems.push(...mathTaskConfigProblems(out as unknown as MathTaskConfig));
  return out as unknown as MathTaskConfig;
}

/** The model section of a pretrained run: its path and an optional context cap; the architecture is config.json's. */
function resolvePretrainedModel(user: PlainObject, problems: string[]): { path: string; maxSeqLen?: number } {
  const allowed = [...Object.keys(DEFAULT_MODEL_CONFIG), 'path'];
  const { path, maxSeqLen, ...rest } = user;
  if (typeof path !== 'string' || path.trim() === '') problems.push(`model.path: must be a model directory or Hugging Face Hub id, got ${formatValue(path)}`);
  for (const key of Object.keys(rest)) {
    if (!allowed.includes(key)) problems.push(unknownKeyProblem('model.', key, allowed));
    else problems.push(`model.${key}: the architecture comes from the config.json of model.path ${formatValue(path)}; drop model.${key} (only model.maxSeqLen, a cap on the context, may be set)`);
  }
  if (maxSeqLen !== undefined) {
    const bad = checkValue({ kind: 'int', min: 2, note: 'a cap on the context; default max_position_embeddings' }, maxSeqLen);
    if (bad) problems.push(`model.maxSeqLen: ${bad}`);
  }
  return { path: path as string, ...(maxSeqLen !== undefined ? { maxSeqLen: maxSeqLen as number } : {}) };
}

/** The lora section: r 0 (off) or a rank, alpha, dropout, and target modules as PEFT takes them. */
function resolveLora(user: PlainObject, problems: string[]): LoraTrainConfig {
  const allowed = Object.keys(LORA_DEFAULTS);
  for (const key of Object.keys(user)) if (!allowed.includes(key)) problems.push(unknownKeyProblem('lora.', key, allowed));
  const { r, alpha, dropout, frozenDtype, targetModules } = user;
  const lora = resolveSection('lora', { r: LORA_DEFAULTS.r, alpha: LORA_DEFAULTS.alpha, dropout: LORA_DEFAULTS.dropout, frozenDtype: LORA_DEFAULTS.frozenDtype },
    { r, alpha, dropout, frozenDtype }, LORA_RULES, problems);
  const targets = targetModules ?? LORA_DEFAULTS.targetModules;
  const okList = Array.isArray(targets) && targets.length > 0 && targets.every((name) => typeof name === 'string' && name.trim() !== '');
  if (!okList && !(typeof targets === 'string' && targets.trim() !== '')) {
    problems.push(`lora.targetModules: must be a non-empty list of module names (e.g. ["q_proj","v_proj"]), 'all-linear', or a regular expression, got ${formatValue(targets)}`);
  }
  return { ...lora, targetModules: Array.isArray(targets) ? [...targets] as string[] : targets as string };
}

function resolveModel(user: PlainObject, problems: string[]): ModelConfig | undefined {
  const allowed = Object.keys(DEFAULT_MODEL_CONFIG);
  const known: PlainObject = {};
  for (const [key, value] of Object.entries(user)) {
    if (allowed.includes(key)) known[key] = value;
    else problems.push(unknownKeyProblem('model.', key, allowed));
  }
  try {
    return resolveModelConfig(known as Partial<ModelConfig>);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems.map((problem) => `model: ${problem}`));
    return undefined;
  }
}

/** Deep-merges layers (later wins; `rl.algo` selects the preset applied under the user's rl keys), validates every
 *  key (unknown keys — with a "did you mean" when close —, wrong types, out-of-range values, inconsistent combos such
 *  as groupSize 1 with dynamic sampling filter, epsLow ≥ 1, microBatchSize not dividing… say what is allowed) and
 *  throws ONE TrainConfigError listing all problems with their dotted paths (e.g. "rl.epsHigh: must be ≥ 0, got -1").
 *  The built-in defaults sit under the layers: pass only what differs (passing DEFAULT_TRAIN_CONFIG as a layer would
 *  pin every rl key and so hide the GRPO preset). */
export function resolveTrainConfig(...layers: unknown[]): TrainConfig {
  const problems: string[] = [];
  const merged = mergeLayers(layers, problems);
  for (const key of Object.keys(merged)) {
    if (!(TOP_KEYS as readonly string[]).includes(key)) problems.push(unknownKeyProblem('', key, TOP_KEYS));
  }

  const top = { seed: merged.seed ?? DEFAULT_TRAIN_CONFIG.seed, backend: merged.backend ?? DEFAULT_TRAIN_CONFIG.backend };
  for (const key of ['seed', 'backend'] as const) {
    const bad = checkValue(TOP_RULES[key], top[key]);
    if (bad) problems.push(`${key}: ${bad}`);
  }

  const gradientCheckpointing = merged.gradientCheckpointing ?? DEFAULT_TRAIN_CONFIG.gradientCheckpointing;
  if (!(GRADIENT_CHECKPOINTING_CHOICES as readonly unknown[]).includes(gradientCheckpointing)) {
    problems.push(`gradientCheckpointing: must be true, false or 'auto' (on only when the run would not fit otherwise), got ${formatValue(gradientCheckpointing)}`);
  }

  const init = merged.init ?? null;
  if (init !== null && (typeof init !== 'string' || init.trim() === '')) problems.push(`init: must be a checkpoint directory path or null, got ${formatValue(init)}`);

  const reward = merged.reward ?? null;
  if (reward !== null && (typeof reward !== 'string' || reward.trim() === '')) problems.push(`reward: must be a reward module path (.mjs) or null, got ${formatValue(reward)}`);

  const userTask = section(merged, 'task', problems);
  const task = isDatasetTask(userTask.name) ? resolveDatasetTask(userTask, problems) : { ...clone(DEFAULT_TRAIN_CONFIG.task), ...userTask };
  if (typeof task.name !== 'string' || task.name.trim() === '') problems.push(`task.name: must be a non-empty string, got ${formatValue(task.name)}`);

  const userModel = section(merged, 'model', problems);
  const pretrained = userModel.path !== undefined ? resolvePretrainedModel(userModel, problems) : null;
  const model = pretrained ? undefined : resolveModel(userModel, problems);
  const lora = resolveLora(section(merged, 'lora', problems), problems);
  if (pretrained) {
    if (init !== null) problems.push('init: a pretrained run starts from model.path; drop init');
    if (!isDatasetTask(task.name)) problems.push(`task.name: '${String(task.name)}' is a built-in character-level task; a pretrained model (model.path) trains on a dataset task: gsm8k or math (--task gsm8k --set task.path=FILE.jsonl)`);
  } else if (valid(problems, 'lora.r') && lora.r > 0) {
    problems.push('lora.r: LoRA adapts a pretrained model; set model.path (--model DIR) or lora.r 0');
  }

  // A checkpointed block is recomputed in backward: LoRA dropout would draw a different mask the second time.
  if (gradientCheckpointing === true && valid(problems, 'lora.r', 'lora.dropout') && lora.r > 0 && lora.dropout > 0) {
    problems.push(`gradientCheckpointing: true recomputes each decoder block in backward, where LoRA dropout would draw a different random mask; set lora.dropout 0 (--set lora.dropout=0) or gradientCheckpointing false, got lora.dropout ${lora.dropout}`);
  }

  const userRl = section(merged, 'rl', problems);
  const algo = userRl.algo ?? DAPO_DEFAULTS.algo;
  const preset = algo === 'grpo' ? GRPO_PRESET : {};
  const rlDefaults: RLConfig = { ...DAPO_DEFAULTS, ...preset };
  // One generation batch is one training batch unless the user says otherwise.
  if (userRl.generationBatchPrompts === undefined && checkValue(RL_RULES.promptsPerStep, userRl.promptsPerStep) === undefined) {
    rlDefaults.generationBatchPrompts = userRl.promptsPerStep as number;
  }
  const rl = resolveSection('rl', rlDefaults, userRl, RL_RULES, problems);
  crossCheckRl(rl, model, problems);

  // A pretrained model needs no warm-up on the task's reference solutions (TRL's GRPOTrainer has none).
  const sftDefaults = pretrained ? { ...DEFAULT_TRAIN_CONFIG.sft, steps: 0 } : DEFAULT_TRAIN_CONFIG.sft;
  const sft = resolveSection('sft', sftDefaults, section(merged, 'sft', problems), SFT_RULES, problems);
  const evalCfg = resolveSection('eval', DEFAULT_TRAIN_CONFIG.eval, section(merged, 'eval', problems), EVAL_RULES, problems);
  if (valid(problems, 'eval.passK', 'eval.samplesPerProblem') && evalCfg.passK > evalCfg.samplesPerProblem) {
    problems.push(`eval.passK: must be ≤ eval.samplesPerProblem (${evalCfg.samplesPerProblem}), got ${evalCfg.passK}`);
  }
  const checkpoint = resolveSection('checkpoint', DEFAULT_TRAIN_CONFIG.checkpoint, section(merged, 'checkpoint', problems), CHECKPOINT_RULES, problems);

  if (problems.length) throw new TrainConfigError(problems);
  return {
    seed: top.seed as number,
    backend: top.backend as BackendChoice,
    gradientCheckpointing: gradientCheckpointing as GradientCheckpointing,
    task: task as TrainConfig['task'],
    model: pretrained ?? { ...model! },
    sft,
    rl,
    eval: evalCfg,
    checkpoint,
    lora,
    init: init as string | null,
    reward: reward as string | null,
  };
}

/** The resolved model section as a ModelConfig (validated again, so it also accepts a hand-built TrainConfig). */
export function modelConfigOf(config: TrainConfig): ModelConfig {
  return resolveModelConfig(config.model as Partial<ModelConfig>);
}
