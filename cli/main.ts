#!/usr/bin/env node
// The `dapo` command line.
import { Command, InvalidArgumentError } from 'commander';
import { collectInfo, formatInfo } from './info.js';
import { runBench, runBenchCompare } from './bench.js';
import { BENCH_CASES } from '../src/bench/cases.js';
import { describeFailure } from './errors.js';

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got '${v}'`);
  return n;
}

function nonNegativeInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected an integer ≥ 0, got '${v}'`);
  return n;
}

function nonNegativeNumber(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`expected a number ≥ 0, got '${v}'`);
  return n;
}

function intList(v: string): number[] {
  const xs = v.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (!xs.length || xs.some((x) => !Number.isInteger(x) || x < 0)) throw new InvalidArgumentError(`expected comma-separated integers ≥ 0, got '${v}'`);
  return xs;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

const program = new Command()
  .name('dapo')
  .description('DAPO policy training on a WebGPU + WebAssembly engine')
  .version('0.1.0')
  .showHelpAfterError();

program.command('train')
  .description('train a policy: SFT warm-up → DAPO (or GRPO) → held-out evaluation → plots, into a run directory')
  .option('--config <file>', 'JSON config (any subset of the full config; see `dapo train --print-config`)')
  .option('--set <key=value>', 'override one config key, e.g. --set rl.epsHigh=0.28 (repeatable)', collect)
  .option('--algo <algo>', 'dapo (default) or grpo (preset: symmetric clip, seq-mean loss, KL β, no dynamic sampling)')
  .option('--task <name>', 'built-in task (addition, multiplication, countdown, …), or a dataset task: gsm8k, math (with --set task.path=FILE.jsonl|.parquet)')
  .option('--model <dirOrHubId>', 'train a pretrained Hugging Face model (llama, qwen2, mistral families): a local directory or a Hub id (sets model.path; its tokenizer and chat template come along)')
  .option('--lora', 'LoRA instead of full fine-tuning: r 16, alpha 32, dropout 0.05 on q/k/v/o/gate/up/down (lora.* keys); writes RUN/adapter (PEFT) and RUN/merged')
  .option('--reward <file>', 'reward module (.mjs) exporting (prompt, completion, record) => number as default or `reward`; replaces the task\'s +1/−1 reward')
  .option('--steps <n>', 'RL steps (0: warm-up only)', nonNegativeInt)
  .option('--seed <n>', 'run seed (init, sampling, data order)', nonNegativeInt)
  .option('--backend <name>', 'auto (default), webgpu, wasm or reference')
  .option('--out <dir>', 'run directory (default runs/<algo>-<task>-s<seed>-<time>)')
  .option('--resume <runDir>', 'continue an interrupted run from its newest checkpoint')
  .option('--init <checkpointDir>', 'start from these weights instead of a seeded init (combine with --set sft.steps=0 to skip the warm-up)')
  .option('--quick', 'a smoke configuration that finishes in about a minute')
  .option('--force', 'overwrite an existing run directory')
  .option('--no-plots', 'skip writing plots at the end')
  .option('--print-config', 'print the fully resolved config as JSON and exit')
  .option('--dry-run', 'print the memory plan (weights, gradients, optimizer, activations, logits, KV cache) and the batch sizes it picks, then exit; creates no run directory')
  .option('--skip-memory-check', 'start even when the memory plan says the run does not fit (the plan is an estimate; an allocation that really fails still stops the run with an out-of-memory message)')
  .option('--json', 'print a JSON summary at the end')
  .option('--quiet', 'no progress lines')
  .action(async (o) => {
    if (o.printConfig) {
      const { configFromFlags } = await import('./train.js');
      console.log(JSON.stringify(configFromFlags(o), null, 2));
      return;
    }
    const { runTrain } = await import('./train.js');
    await runTrain(o);
  });

program.command('eval')
  .description('held-out greedy accuracy and pass@k of a run (newest checkpoint) or a checkpoint directory; a --model run loads its base model, tokenizer, chat template and dataset')
  .argument('<path>', "run directory, checkpoint directory, or a --model run's adapter/ or merged/ directory")
  .option('--problems <n>', 'held-out problems (default: the whole test split)', positiveInt)
  .option('-k, --k <n>', 'k of pass@k', positiveInt, 8)
  .option('--samples <n>', 'samples per problem for pass@k (default k; 0 skips pass@k)', nonNegativeInt)
  .option('--temperature <t>', 'sampling temperature for pass@k', nonNegativeNumber, 1)
  .option('--task <name>', 'task of a bare checkpoint')
  .option('--backend <name>', 'auto, webgpu, wasm or reference')
  .option('--json', 'print JSON')
  .action(async (path: string, o) => (await import('./eval.js')).runEval(path, o));

program.command('sample')
  .description('show completions of a run (newest checkpoint) or a checkpoint on task problems, with verdicts')
  .argument('<path>', "run directory, checkpoint directory, or a --model run's adapter/ or merged/ directory")
  .option('-n, --n <n>', 'problems', positiveInt, 8)
  .option('--temperature <t>', 'sampling temperature (0 = greedy)', nonNegativeNumber, 0)
  .option('--split <split>', 'train or test', 'test')
  .option('--start <i>', 'index of the first problem', nonNegativeInt, 0)
  .option('--seed <n>', 'sampling seed', nonNegativeInt, 0)
  .option('--task <name>', 'task of a bare checkpoint')
  .option('--backend <name>', 'auto, webgpu, wasm or reference')
  .option('--json', 'one JSON object per completion')
  .action(async (path: string, o) => {
    if (o.split !== 'train' && o.split !== 'test') throw new Error(`--split must be train or test, got '${o.split}'`);
    await (await import('./eval.js')).runSample(path, o);
  });

program.command('plot')
  .description('write the DAPO panels (SVG and PNG) of a run into RUN_DIR/plots')
  .argument('<runDir>', 'run directory')
  .action(async (runDir: string) => {
    const files = await (await import('./plot.js')).plotRunDir(runDir, (l) => console.log(l));
    console.log(`wrote ${files.length} files to ${runDir}/plots`);
  });

program.command('compare')
  .description('DAPO vs GRPO from the same seeds and sample budget → comparison plots and a markdown table')
  .option('--seeds <list>', 'comma-separated seeds', intList, [1, 2, 3])
  .option('--algos <list>', 'algorithms to compare', (v: string) => v.split(','), ['dapo', 'grpo'])
  .option('--config <file>', 'JSON config shared by every run')
  .option('--set <key=value>', 'override one config key for every run (repeatable)', collect)
  .option('--quick', 'smoke configuration')
  .option('--backend <name>', 'auto, webgpu, wasm or reference')
  .option('--out <dir>', 'output directory', 'runs/compare')
  .option('--force', 'overwrite existing run directories')
  .action(async (o) => { await (await import('./compare.js')).runCompare(o); });

program.command('info')
  .description('show the backends on this machine, the GPU adapter, WASM SIMD/threads, and what auto-selection picks')
  .option('--json', 'print JSON')
  .action(async (o: { json?: boolean }) => {
    const info = await collectInfo();
    console.log(o.json ? JSON.stringify(info, null, 2) : formatInfo(info));
  });

program.command('bench')
  .description('benchmark kernels, a train step and generation on each backend (median of ≥ 5 runs after warm-up within a time budget, GPU work awaited)')
  .option('--backend <names...>', 'backends to measure: webgpu, wasm, reference', ['webgpu', 'wasm'])
  .option('--json', 'one JSON object per line: {"op","backend","shape","ms","gflops"|"gbps"|"tokens_per_s",...,"vs","ratio"}')
  .option('--quick', 'small shapes and a shorter time budget per case')
  .option('--only <cases...>', `cases to run, comma-separated: ${BENCH_CASES.join(', ')} (default: all)`)
  .option('--threads <n>', 'WASM worker threads (default: all cores)', positiveInt)
  .option('--no-peers', 'skip the TF.js side-by-side figures')
  .option('--compare <files...>', 'measure nothing: put saved runs side by side (JSON lines of `dapo bench --json` or the bench page\'s download): a table per op, and bench_compare.svg/.png in --out')
  .option('--out <dir>', 'where --compare writes its chart', 'runs/bench-compare')
  .action(async (o: { backend: string[]; json?: boolean; quick?: boolean; only?: string[]; threads?: number; peers: boolean; compare?: string[]; out: string }) => {
    if (o.compare) {
      await runBenchCompare({ files: o.compare, out: o.out }, (l) => console.log(l));
      return;
    }
    await runBench({ backend: o.backend, json: !!o.json, quick: !!o.quick, only: o.only, threads: o.threads, peers: o.peers }, (l) => console.log(l));
  });

program.parseAsync(process.argv).then(
  // Dawn and worker pools can keep the event loop alive; a finished command exits.
  () => process.exit(0),
  (err: unknown) => {
    // One line: file errors name the path and the cause in words; an interrupt exits 130 (SIGINT) or 143 (SIGTERM).
    const { message, exitCode } = describeFailure(err);
    console.error(`dapo: ${message}`);
    process.exit(exitCode);
  },
);
