// `dapo eval` and `dapo sample`: load a policy from a run directory (its newest checkpoint) or a checkpoint
// directory, then measure held-out accuracy / pass@k, or show completions with their verdicts.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { initEngine, loadCheckpoint } from '../src/node.js';
import { makeTask } from '../src/data/tasks.js';
import type { Task } from '../src/data/tasks.js';
import type { TransformerLM } from '../src/nn/transformer.js';
import { resolveTrainConfig } from '../src/rl/config.js';
import { evaluate } from '../src/rl/evaluate.js';
import { callSeed, generateChunked } from '../src/rl/rollout.js';
import { RUN_FILES, latestCheckpoint, readRunConfig } from '../src/rl/run_dir_node.js';

export interface PolicyFlags {
  backend?: string;
  task?: string;
  maxNewTokens?: number;
}

/** The model and task of a run directory or a checkpoint directory. */
export async function loadPolicy(path: string, f: PolicyFlags): Promise<{ model: TransformerLM; task: Task; maxNewTokens: number; seed: number; source: string }> {
  const abs = resolve(path);
  if (!existsSync(abs)) throw new Error(`${path} does not exist (expected a run directory or a checkpoint directory)`);
  let ckpt = abs;
  let runConfig: ReturnType<typeof resolveTrainConfig> | null = null;
  if (existsSync(join(abs, RUN_FILES.metrics)) || existsSync(join(abs, 'checkpoints'))) {
    runConfig = resolveTrainConfig(readRunConfig(abs));
    const latest = latestCheckpoint(abs);
    if (!latest) throw new Error(`${path}: the run has no checkpoint yet`);
    ckpt = latest;
  } else if (existsSync(join(abs, '..', '..', RUN_FILES.config))) {
    // A checkpoint inside a run: runs/X/checkpoints/step-N.
    runConfig = resolveTrainConfig(readRunConfig(join(abs, '..', '..')));
  }
  if (!existsSync(join(ckpt, 'model.safetensors'))) throw new Error(`${path}: no model.safetensors in ${ckpt}`);
  await initEngine({ backend: f.backend ?? runConfig?.backend ?? 'auto' });
  const taskConfig = f.task ? { name: f.task } : runConfig?.task;
  if (!taskConfig) throw new Error(`${path}: a bare checkpoint does not say its task; pass --task`);
  const task = makeTask(taskConfig);
  const model = loadCheckpoint(ckpt);
  return { model, task, maxNewTokens: f.maxNewTokens ?? runConfig?.rl.maxNewTokens ?? task.maxResponseLength, seed: runConfig?.seed ?? 0, source: ckpt };
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
    model.dispose();
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
      maxNewTokens, temperature: f.temperature, stopTokens: [tok.eosId], padId: tok.padId, seed: f.seed,
    }, 256);
    problems.forEach((p, i) => {
      const text = tok.decode(g.tokens[i].filter((t) => t !== tok.eosId));
      const score = g.truncated[i] ? { correct: false, extracted: null } : task.score(p, text);
      if (f.json) out(JSON.stringify({ prompt: p.prompt, response: text, answer: p.answer, correct: score.correct, truncated: g.truncated[i] }));
      else out(`${score.correct ? '✓' : '✗'} ${p.prompt}${text}${g.truncated[i] ? ' …(truncated)' : ''}   [answer ${p.answer}]`);
    });
  } finally {
    model.dispose();
  }
}
