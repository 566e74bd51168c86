// The whole run's configuration: DAPO defaults, a GRPO preset, layered merging and validation that lists every
// problem at once with its dotted path. All tunable numbers live in the DEFAULTS below.
import { BACKEND_CHOICES, type BackendChoice } from '../backend/select.js';
import { ConfigError, DEFAULT_MODEL_CONFIG, type ModelConfig, resolveModelConfig } from '../nn/config.js';
import { LOSS_AGGREGATIONS, type LossAggregation } from './aggregation.js';
import { DYNAMIC_SAMPLING_MODES, type DynamicSamplingMode } from './dynamic_sampling.js';
import { LR_SCHEDULES, type LrSchedule } from './schedule.js';

export type Algo = 'dapo' | 'grpo';
export const ALGOS: readonly Algo[] = ['dapo', 'grpo'];

export interface RLConfig {
  algo: Algo;
  /** RL steps (rollout + updates). */
  steps: number;
  /** Groups (prompts) in the training batch. */
  promptsPerStep: number;
  /** Responses per prompt (G). */
  groupSize: number;
  /** Prompts per generation batch (defaults to promptsPerStep). */
  generationBatchPrompts: number;
  /** L_max: response tokens including EOS. */
  maxNewTokens: number;
  temperature: number;
  topP: number;
  /** 0 = off. */
  topK: number;
  epsLow: number;
  epsHigh: number;
  /** Dual-clip constant c for A < 0; 0 = off (3 is the usual value when on). */
  dualClip: number;
  lossAggregation: LossAggregation;
  dynamicSampling: DynamicSamplingMode;
  /** Cap on generation batches per step ('filter'). */
  maxGenerationBatches: number;
  /** Cap on resampling rounds per step ('resample'). */
  maxResampleRounds: number;
  /** What the trainer does when the generation cap leaves the batch short. */
  onSamplingCap: 'train' | 'stop';
  /** Mask truncated responses (no EOS within maxNewTokens) out of the loss. */
  overlongFilter: boolean;
  /** Add the soft overlong punishment to the reward. */
  overlongPenalty: boolean;
  /** L_cache: the length of the punishment buffer before maxNewTokens. */
  overlongCache: number;
  /** KL-to-reference coefficient; 0 = off (no reference model). */
  klBeta: number;
  /** Updates per rollout: ppoEpochs × miniBatches optimizer steps. */
  ppoEpochs: number;
  miniBatches: number;
  /** Sequences per forward/backward: divides the mini-batch, or ≥ it (one pass per mini-batch). */
  microBatchSize: number;
  lr: number;
  warmupSteps: number;
  schedule: LrSchedule;
  minLrRatio: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  /** Global gradient-norm clip; 0 = off. */
  maxGradNorm: number;
  /** Stop after this many NaN/Inf steps in a row. */
  maxBadSteps: number;
  /** Stop RL once this many responses were generated (0 = no budget): equal-budget comparisons. */
  sampleBudget: number;
}

export interface SFTConfig { steps: number; batchSize: number; lr: number; warmupSteps: number; weightDecay: number; maxGradNorm: number }
export interface EvalConfig { every: number; problems: number; passK: number; samplesPerProblem: number; temperature: number }
export interface CheckpointConfig { every: number; keep: number }

export interface TrainConfig {
  seed: number;
  backend: BackendChoice;
  /** Validated later by the data layer; here only 'name' is checked. */
  task: { name: string; [knob: string]: unknown };
  /** Partial<ModelConfig> in layers; after resolveTrainConfig, the full resolved ModelConfig. */
  model: Record<string, unknown>;
  sft: SFTConfig;
  rl: RLConfig;
  eval: EvalConfig;
  checkpoint: CheckpointConfig;
  /** Start from the weights of this checkpoint directory instead of a seeded init (e.g. a shared SFT policy); null = fresh. */
  init: string | null;
}

// ---------------------------------------------------------------------------------------------------------------
// Defaults (DESIGN.md §3; numbers sized for the small character-level policy).

export const DAPO_DEFAULTS: RLConfig = {
  algo: 'dapo',
  steps: 200,
  promptsPerStep: 16,
  groupSize: 8,
  generationBatchPrompts: 16,
  maxNewTokens: 20,
  temperature: 1,
  topP: 1,
  topK: 0,
  epsLow: 0.2,
  epsHigh: 0.28,
  dualClip: 0,
  lossAggregation: 'token-mean',
  dynamicSampling: 'filter',
  maxGenerationBatches: 4,
  maxResampleRounds: 3,
  onSamplingCap: 'train',
  overlongFilter: true,
  overlongPenalty: true,
  overlongCache: 4,
  klBeta: 0,
  ppoEpochs: 1,
  miniBatches: 2, // more than one update per rollout, so the ratio leaves 1 and the clip acts
  microBatchSize: 64,
  lr: 3e-4,
  warmupSteps: 10,
  schedule: 'constant',
  minLrRatio: 0.1,
  weightDecay: 0.01,
  beta1: 0.9,
  beta2: 0.999,
  maxGradNorm: 1,
  maxBadSteps: 3,
  sampleBudget: 0,
};

/** The GRPO baseline: symmetric clip, per-sequence mean, a small KL to the reference, no DAPO extras. */
export const GRPO_PRESET: Partial<RLConfig> = {
  epsHigh: 0.2,
  lossAggregation: 'seq-mean-token-mean',
  klBeta: 0.001,
  dynamicSampling: 'off',
  overlongFilter: false,
  overlongPenalty: false,
};

export const DEFAULT_TRAIN_CONFIG: TrainConfig = {
  seed: 0,
  backend: 'auto',
  task: { name: 'addition' },
  model: { ...DEFAULT_MODEL_CONFIG },
  sft: { steps: 1500, batchSize: 32, lr: 3e-3, warmupSteps: 20, weightDecay: 0.01, maxGradNorm: 1 },
  rl: DAPO_DEFAULTS,
  eval: { every: 25, problems: 200, passK: 8, samplesPerProblem: 8, temperature: 1 },
  checkpoint: { every: 25, keep: 2 },
  init: null,
};

export class TrainConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid training config:\n  - ${problems.join('\n  - ')}`);
    this.name = 'TrainConfigError';
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Field rules.

type Rule =
  | { kind: 'int'; min: number; max?: number; note?: string }
  | { kind: 'number'; min?: number; minOpen?: boolean; max?: number; maxOpen?: boolean; note?: string }
  | { kind: 'bool' }
  | { kind: 'enum'; values: readonly string[] };

const int = (min: number, note?: string, max?: number): Rule => ({ kind: 'int', min, max, note });
const atLeast = (min: number, note?: string): Rule => ({ kind: 'number', min, note });
const above = (min: number): Rule => ({ kind: 'number', min, minOpen: true });
const range = (min: number, max: number, minOpen = false, maxOpen = false): Rule => ({ kind: 'number', min, max, minOpen, maxOpen });
const bool: Rule = { kind: 'bool' };
const oneOf = (values: readonly string[]): Rule => ({ kind: 'enum', values });

const RL_RULES: Record<keyof RLConfig, Rule> = {
  algo: oneOf(ALGOS),
  steps: int(0, '0 = supervised warm-up only'),
  promptsPerStep: int(1),
  groupSize: int(1),
  generationBatchPrompts: int(1),
  maxNewTokens: int(1),
  temperature: above(0),
  topP: range(0, 1, true, false),
  topK: int(0, '0 = off'),
  epsLow: range(0, 1, false, true),
  epsHigh: atLeast(0),
  dualClip: atLeast(0, '0 = off'),
  lossAggregation: oneOf(LOSS_AGGREGATIONS),
  dynamicSampling: oneOf(DYNAMIC_SAMPLING_MODES),
  maxGenerationBatches: int(1),
  maxResampleRounds: int(0),
  onSamplingCap: oneOf(['train', 'stop']),
  overlongFilter: bool,
  overlongPenalty: bool,
  overlongCache: int(0),
  klBeta: atLeast(0, '0 = off'),
  ppoEpochs: int(1),
  miniBatches: int(1),
  microBatchSize: int(1),
  lr: above(0),
  warmupSteps: int(0),
  schedule: oneOf(LR_SCHEDULES),
  minLrRatio: range(0, 1),
  weightDecay: atLeast(0),
  beta1: range(0, 1, false, true),
  beta2: range(0, 1, false, true),
  maxGradNorm: atLeast(0, '0 = off'),
  maxBadSteps: int(1),
  sampleBudget: int(0, '0 = no budget'),
};
const SFT_RULES: Record<keyof SFTConfig, Rule> = {
  steps: int(0, '0 = skip SFT'),
  batchSize: int(1),
  lr: above(0),
  warmupSteps: int(0),
  weightDecay: atLeast(0),
  maxGradNorm: atLeast(0, '0 = off'),
};
const EVAL_RULES: Record<keyof EvalConfig, Rule> = {
  every: int(0, '0 = off'),
  problems: int(1),
  passK: int(1),
  samplesPerProblem: int(1),
  temperature: atLeast(0, '0 = greedy'),
};
const CHECKPOINT_RULES: Record<keyof CheckpointConfig, Rule> = { every: int(0, '0 = off'), keep: int(1) };
const TOP_RULES = { seed: int(0, undefined, 0xffffffff), backend: oneOf(BACKEND_CHOICES) } satisfies Record<string, Rule>;
const TOP_KEYS = ['seed', 'backend', 'task', 'model', 'sft', 'rl', 'eval', 'checkpoint', 'init'] as const;

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === undefined) return 'undefined';
  if (typeof v === 'number') return String(v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function bounds(r: Extract<Rule, { kind: 'number' }>): string {
  if (r.min !== undefined && r.max !== undefined) return `in ${r.minOpen ? '(' : '['}${r.min}, ${r.max}${r.maxOpen ? ')' : ']'}`;
  if (r.min !== undefined) return `${r.minOpen ? '>' : '≥'} ${r.min}`;
  if (r.max !== undefined) return `${r.maxOpen ? '<' : '≤'} ${r.max}`;
  return 'a finite number';
}

/** The problem with one value, or undefined when it follows its rule. */
function check(rule: Rule, v: unknown): string | undefined {
  switch (rule.kind) {
    case 'bool':
      return typeof v === 'boolean' ? undefined : `must be true or false, got ${show(v)}`;
    case 'enum':
      return typeof v === 'string' && rule.values.includes(v) ? undefined
        : `must be one of ${rule.values.map((x) => `'${x}'`).join(', ')}, got ${show(v)}`;
    case 'int': {
      const want = `an integer ≥ ${rule.min}${rule.max !== undefined ? ` and ≤ ${rule.max}` : ''}${rule.note ? ` (${rule.note})` : ''}`;
      const ok = typeof v === 'number' && Number.isInteger(v) && v >= rule.min && (rule.max === undefined || v <= rule.max);
      return ok ? undefined : `must be ${want}, got ${show(v)}`;
    }
    case 'number': {
      const note = rule.note ? ` (${rule.note})` : '';
      if (typeof v !== 'number' || !Number.isFinite(v)) return `must be a finite number ${bounds(rule)}${note}, got ${show(v)}`;
      const low = rule.min !== undefined && (rule.minOpen ? v <= rule.min : v < rule.min);
      const high = rule.max !== undefined && (rule.maxOpen ? v >= rule.max : v > rule.max);
      return low || high ? `must be ${bounds(rule)}${note}, got ${show(v)}` : undefined;
    }
  }
}

/** Edit distance counting an adjacent swap as one edit (optimal string alignment): "stpes" is 1 from "steps". */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The closest allowed key when it is close enough to be a typo. */
export function closestKey(key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const cand of allowed) {
    const d = cand.toLowerCase() === key.toLowerCase() ? 0 : editDistance(key, cand);
    if (d < bestDist) [best, bestDist] = [cand, d];
  }
  return bestDist <= Math.max(1, Math.floor(Math.max(key.length, 3) / 3)) ? best : undefined;
}

function unknownKey(path: string, key: string, allowed: readonly string[]): string {
  const near = closestKey(key, allowed);
  return `${path}${key}: unknown key (${near ? `did you mean '${near}'?` : `allowed: ${allowed.join(', ')}`})`;
}

// ---------------------------------------------------------------------------------------------------------------
// Merging.

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function clone<T>(v: T): T {
  if (Array.isArray(v)) return v.map(clone) as T;
  if (isObj(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, clone(x)])) as T;
  return v;
}

/** Later wins; plain objects merge key by key, everything else (arrays included) is replaced. */
function deepMerge(base: Obj, over: Obj): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const value = isObj(v) && Object.hasOwn(out, k) && isObj(out[k]) ? deepMerge(out[k] as Obj, v) : clone(v);
    // defineProperty, so a JSON "__proto__" key stays a plain (and then reported unknown) key
    Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** Merges the user layers; a layer that names a different task drops the earlier task's knobs (they belong to it). */
function mergeLayers(layers: readonly unknown[], problems: string[]): Obj {
  let merged: Obj = {};
  layers.forEach((layer, i) => {
    if (layer === undefined || layer === null) return;
    if (!isObj(layer)) {
      problems.push(`layer ${i + 1}: must be an object, got ${show(layer)}`);
      return;
    }
    const task = layer.task;
    if (isObj(task) && isObj(merged.task) && task.name !== undefined && task.name !== merged.task.name) {
      merged = { ...merged, task: {} };
    }
    merged = deepMerge(merged, layer);
  });
  return merged;
}

// ---------------------------------------------------------------------------------------------------------------
// Resolution.

function section(merged: Obj, name: string, problems: string[]): Obj {
  const v = merged[name];
  if (v === undefined) return {};
  if (isObj(v)) return v;
  problems.push(`${name}: must be an object, got ${show(v)}`);
  return {};
}

/** Fills a section from its defaults and user keys, listing unknown keys and bad values. */
function resolveSection<T extends object>(path: string, defaults: T, user: Obj, rules: Record<keyof T, Rule>, problems: string[]): T {
  const allowed = Object.keys(rules);
  for (const key of Object.keys(user)) if (!allowed.includes(key)) problems.push(unknownKey(`${path}.`, key, allowed));
  const out = { ...defaults } as Record<string, unknown>;
  for (const key of allowed) {
    if (user[key] !== undefined) out[key] = user[key];
    const bad = check(rules[key as keyof T], out[key]);
    if (bad) problems.push(`${path}.${key}: ${bad}`);
  }
  return out as T;
}

const divisors = (n: number) => Array.from({ length: n }, (_, i) => i + 1).filter((d) => n % d === 0);
const valid = (problems: string[], ...paths: string[]) => !problems.some((p) => paths.some((path) => p.startsWith(`${path}:`)));

function crossCheckRl(rl: RLConfig, model: ModelConfig | undefined, problems: string[]): void {
  const ok = (...keys: (keyof RLConfig)[]) => valid(problems, ...keys.map((k) => `rl.${k}`));
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

function resolveModel(user: Obj, problems: string[]): ModelConfig | undefined {
  const allowed = Object.keys(DEFAULT_MODEL_CONFIG);
  const known: Obj = {};
  for (const [k, v] of Object.entries(user)) {
    if (allowed.includes(k)) known[k] = v;
    else problems.push(unknownKey('model.', k, allowed));
  }
  try {
    return resolveModelConfig(known as Partial<ModelConfig>);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems.map((p) => `model: ${p}`));
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
    if (!(TOP_KEYS as readonly string[]).includes(key)) problems.push(unknownKey('', key, TOP_KEYS));
  }

  const top = { seed: merged.seed ?? DEFAULT_TRAIN_CONFIG.seed, backend: merged.backend ?? DEFAULT_TRAIN_CONFIG.backend };
  for (const key of ['seed', 'backend'] as const) {
    const bad = check(TOP_RULES[key], top[key]);
    if (bad) problems.push(`${key}: ${bad}`);
  }

  const init = merged.init ?? null;
  if (init !== null && (typeof init !== 'string' || init.trim() === '')) problems.push(`init: must be a checkpoint directory path or null, got ${show(init)}`);

  const task = { ...clone(DEFAULT_TRAIN_CONFIG.task), ...section(merged, 'task', problems) };
  if (typeof task.name !== 'string' || task.name.trim() === '') problems.push(`task.name: must be a non-empty string, got ${show(task.name)}`);

  const model = resolveModel(section(merged, 'model', problems), problems);

  const userRl = section(merged, 'rl', problems);
  const algo = userRl.algo ?? DAPO_DEFAULTS.algo;
  const preset = algo === 'grpo' ? GRPO_PRESET : {};
  const rlDefaults: RLConfig = { ...DAPO_DEFAULTS, ...preset };
  // One generation batch is one training batch unless the user says otherwise.
  if (userRl.generationBatchPrompts === undefined && check(RL_RULES.promptsPerStep, userRl.promptsPerStep) === undefined) {
    rlDefaults.generationBatchPrompts = userRl.promptsPerStep as number;
  }
  const rl = resolveSection('rl', rlDefaults, userRl, RL_RULES, problems);
  crossCheckRl(rl, model, problems);

  const sft = resolveSection('sft', DEFAULT_TRAIN_CONFIG.sft, section(merged, 'sft', problems), SFT_RULES, problems);
  const evalCfg = resolveSection('eval', DEFAULT_TRAIN_CONFIG.eval, section(merged, 'eval', problems), EVAL_RULES, problems);
  if (valid(problems, 'eval.passK', 'eval.samplesPerProblem') && evalCfg.passK > evalCfg.samplesPerProblem) {
    problems.push(`eval.passK: must be ≤ eval.samplesPerProblem (${evalCfg.samplesPerProblem}), got ${evalCfg.passK}`);
  }
  const checkpoint = resolveSection('checkpoint', DEFAULT_TRAIN_CONFIG.checkpoint, section(merged, 'checkpoint', problems), CHECKPOINT_RULES, problems);

  if (problems.length) throw new TrainConfigError(problems);
  return {
    seed: top.seed as number,
    backend: top.backend as BackendChoice,
    task: task as TrainConfig['task'],
    model: { ...model! },
    sft,
    rl,
    eval: evalCfg,
    checkpoint,
    init: init as string | null,
  };
}

/** The resolved model section as a ModelConfig (validated again, so it also accepts a hand-built TrainConfig). */
export function modelConfigOf(cfg: TrainConfig): ModelConfig {
  return resolveModelConfig(cfg.model as Partial<ModelConfig>);
}

// ---------------------------------------------------------------------------------------------------------------
// CLI overrides.

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
const FORBIDDEN_KEYS = new Set(['__proto__', 'prototype', 'constructor']);

function parseValue(text: string): unknown {
  const t = text.trim();
  if (t === 'true') return true;
  if (t === 'false') return false;
  if (NUMBER.test(t)) return Number(t);
  if (t.startsWith('[') || t.startsWith('{') || t.startsWith('"')) return JSON.parse(t);
  return text;
}

/** "rl.epsHigh=0.3"-style overrides from the CLI: parses numbers/booleans/strings into a nested object (errors name the flag).
 *  Values: true/false, decimal numbers, JSON for arrays/objects/quoted strings ("\"123\"" stays a string), else the raw
 *  string. A repeated key: the later one wins. */
export function parseOverrides(pairs: readonly string[]): Record<string, unknown> {
  const out: Obj = {};
  const problems: string[] = [];
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq < 0) {
      problems.push(`override ${JSON.stringify(pair)}: expected key=value (e.g. rl.epsHigh=0.3)`);
      continue;
    }
    const path = pair.slice(0, eq).trim().split('.');
    if (path.some((k) => k.trim() === '')) {
      problems.push(`override ${JSON.stringify(pair)}: the key has an empty part (use dotted names like rl.epsHigh)`);
      continue;
    }
    if (path.some((k) => FORBIDDEN_KEYS.has(k))) {
      problems.push(`override ${JSON.stringify(pair)}: '${path.find((k) => FORBIDDEN_KEYS.has(k))}' is not a config key`);
      continue;
    }
    let value: unknown;
    try {
      value = parseValue(pair.slice(eq + 1));
    } catch (err) {
      problems.push(`override ${JSON.stringify(pair)}: value is not valid JSON (${(err as Error).message})`);
      continue;
    }
    let node = out;
    let clash: string | undefined;
    for (let i = 0; i < path.length - 1; i++) {
      const k = path[i];
      if (node[k] === undefined) node[k] = {};
      else if (!isObj(node[k])) {
        clash = path.slice(0, i + 1).join('.');
        break;
      }
      node = node[k] as Obj;
    }
    if (clash) {
      problems.push(`override ${JSON.stringify(pair)}: '${clash}' was already set to a value, not a section`);
      continue;
    }
    const last = path[path.length - 1];
    if (isObj(node[last]) && !isObj(value)) {
      problems.push(`override ${JSON.stringify(pair)}: '${path.join('.')}' already has keys set under it`);
      continue;
    }
    node[last] = value;
  }
  if (problems.length) throw new TrainConfigError(problems);
  return out;
}
