// `dapo eval` and `dapo sample`: load a policy from a run directory (its newest checkpoint) or a checkpoint
// directory, then measure held-out accuracy / pass@k, or show completions with their verdicts.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { initEngine, loadCheckpoint } from '../src/node.js';
import { makeTask } from '../src/data/tasks.js';
import { responseText } from '../src/data/tokenizer.js';
import type { Task } from '../src/data/tasks.js';
import type { TransformerLM } from '../src/nn/transformer.js';
import { resolveTrainConfig } from '../src/rl/config.js';
import { evaluate } from '../src/rl/evaluate.js';
import { callSeed, generateChunked } from '../src/rl/rollout.js';
import { RUN_FILES, checkpointModel, latestCheckpoint, readRunConfig } from '../src/rl/run_dir_node.js';
import { loadPretrainedModel, pretrainedSource, taskFromFiles } from '../src/rl/pretrained_run_node.js';
import { ADAPTER_CONFIG_FILE } from '../src/io/peft.js';
import { hasLora, removeLora } from '../src/nn/lora.js';

export interface PolicyFlags {
  backend?: string;
  task?: string;
  maxNewTokens?: number;
}

type RunConfig = ReturnType<typeof resolveTrainConfig>;

const isRunDir = (dir: string) => existsSync(join(dir, RUN_FILES.metrics)) || existsSync(join(dir, 'checkpoints'));

/** Where the policy's weights are and which run they belong to: a run directory (its newest checkpoint), a
 *  checkpoint inside a run (runs/X/checkpoints/step-N), a pretrained run's adapter/ or merged/ directory, or a
 *  bare checkpoint (no run config). */
function locatePolicy(path: string, abs: string): { weights: string; runConfig: RunConfig | null } {
  if (isRunDir(abs)) {
    const latest = latestCheckpoint(abs, (line) => process.stderr.write(`${line}\n`));
    if (!latest) throw new Error(`${path}: the run has no checkpoint yet`);
    return { weights: latest, runConfig: resolveTrainConfig(readRunConfig(abs)) };
  }
  const parent = join(abs, '..');
  if (isRunDir(parent) && existsSync(join(parent, RUN_FILES.config))) return { weights: abs, runConfig: resolveTrainConfig(readRunConfig(parent)) };
  const run = join(abs, '..', '..');
  if (existsSync(join(run, RUN_FILES.config))) return { weights: abs, runConfig: resolveTrainConfig(readRunConfig(run)) };
  return { weights: abs, runConfig: null };
}

/** A pretrained run's policy: the base model from model.path with a checkpoint's (or adapter/'s) LoRA adapter, a
 *  full fine-tuning checkpoint, or merged/ (a plain Hugging Face directory, read with its own tokenizer); the task
 *  built as `dapo train` builds it (tokenizer, chat template, dataset files, reward module). */
async function loadPretrainedPolicy(path: string, weights: string, config: RunConfig, backend: string | undefined): Promise<{ model: TransformerLM; task: Task }> {
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const adapter = existsSync(join(weights, ADAPTER_CONFIG_FILE));
  const checkpoint = existsSync(join(weights, 'trainer_state.json'));
  if (!adapter && !checkpoint && !existsSync(join(weights, 'model.safetensors')) && !existsSync(join(weights, 'model.safetensors.index.json'))) {
    throw new Error(`${path}: ${weights} holds no model (expected a checkpoint, adapter/ or merged/ directory)`);
  }
  // merged/ is a complete Hugging Face directory: it needs neither the base model nor its files.
  const merged = !adapter && !checkpoint;
  const source = (await pretrainedSource(config, log, merged ? weights : undefined))!;
  const task = (await taskFromFiles(config, source)) ?? makeTask(config.task);
  await initEngine({ backend: backend ?? config.backend });
  if (merged) return { model: await loadPretrainedModel(config, source, task), task };
  const base = adapter ? await loadPretrainedModel(config, source, task) : undefined;
  return { model: checkpointModel(weights, { base, loraSeed: config.seed }), task };
}

/** The model and task of a run directory or a checkpoint directory. */
export async function loadPolicy(path: string, f: PolicyFlags): Promise<{ model: TransformerLM; task: Task; maxNewTokens: number; seed: number; source: string }> {
  const abs = resolve(path);
  if (!existsSync(abs)) throw new Error(`${path} does not exist (expected a run directory or a checkpoint directory)`);
  const { weights, runConfig: located } = locatePolicy(path, abs);
  const runConfig = located && f.task ? { ...located, task: { ...located.task, name: f.task } } : located;
  let model: TransformerLM;
  let task: Task;
  if (runConfig && typeof runConfig.model.path === 'string') {
    ({ model, task } = await loadPretrainedPolicy(path, weights, runConfig, f.backend));
  } else {
    if (!existsSync(join(weights, 'model.safetensors'))) throw new Error(`${path}: no model.safetensors in ${weights}`);
    await initEngine({ backend: f.backend ?? runConfig?.backend ?? 'auto' });
    const taskConfig = f.task ? { name: f.task } : runConfig?.task;
    if (!taskConfig) throw new Error(`${path}: a bare checkpoint does not say its task; pass --task`);
    task = makeTask(taskConfig);
    model = loadCheckpoint(weights);
  }
  return { model, task, maxNewTokens: f.maxNewTokens ?? runConfig?.rl.maxNewTokens ?? task.maxResponseLength, seed: runConfig?.seed ?? 0, source: weights };
}

/** Frees a policy; LoRA adapters are not parameters of the model, so they go first. */
function disposePolicy(model: TransformerLM): void {
  if (hasLora(model)) removeLora(model);
  model.dispose();
}

export interface EvalFlags extends PolicyFlags {
  problems?: number;
  k: number;
  samples?: number;
  temperature: number;
  json?: boolean;
}

export async function runEval(path: string, f: EvalFlags, out: (l: string) => void = (l) => console.log(l)): Promise<void> {
  const { model, task, maxNewTokens, seed, source } = await loadPolicy(path, f);
  try {
    const r = await evaluate(model, task, {
      problems: f.problems ?? task.testSize, passK: f.k, samplesPerProblem: f.samples ?? f.k, temperature: f.temperature,
      maxNewTokens, seed: callSeed(seed, 3, 999_999),
    });
    if (f.json) out(JSON.stringify({ checkpoint: source, task: task.name, ...r }));
    else {
      out(`${source}`);
      out(`task ${task.name}: greedy accuracy ${(100 * r.accuracy).toFixed(1)}% on ${r.n} held-out problems` +
        (r.pass_at_k !== null ? `, pass@${r.k} ${(100 * r.pass_at_k).toFixed(1)}%` : '') +
        `, mean response length ${r.response_length_mean.toFixed(1)}, truncated ${(100 * r.truncation_rate).toFixed(1)}%`);
    }
  } finally {
    disposePolicy(model);
  }
}

export interface SampleFlags extends PolicyFlags {
  n: number;
  temperature: number;
  split: 'train' | 'test';
  start: number;
  seed: number;
  json?: boolean;
}

export async function runSample(path: string, f: SampleFlags, out: (l: string) => void = (l) => console.log(l)): Promise<void> {
  const { model, task, maxNewTokens } = await loadPolicy(path, f);
  try {
    const tok = task.tokenizer;
    const problems = Array.from({ length: f.n }, (_, i) => task.problem(f.split, f.start + i));
    const g = await generateChunked(model, problems.map((p) => tok.encode(p.prompt)), {
      maxNewTokens, temperature: f.temperature, stopTokens: tok.stopTokenIds, padId: tok.padId, seed: f.seed,
    }, 256);
    problems.forEach((p, i) => {
      const text = responseText(tok, g.tokens[i]);
      const score = g.truncated[i] ? { correct: false, extracted: null } : task.score(p, text);
      if (f.json) out(JSON.stringify({ prompt: p.prompt, response: text, answer: p.answer, correct: score.correct, truncated: g.truncated[i] }));
      else out(`${score.correct ? '✓' : '✗'} ${p.prompt}${text}${g.truncated[i] ? ' …(truncated)' : ''}   [answer ${p.answer}]`);
    });
  } finally {
    disposePolicy(model);
  }
}
