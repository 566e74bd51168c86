#!/usr/bin/env node
// The `dapo` command line.
import { Command, InvalidArgumentError } from 'commander';
import { collectInfo, formatInfo } from './info.js';
import { runBench } from './bench.js';
import { BENCH_CASES } from '../src/bench/cases.js';

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got '${v}'`);
  return n;
}

const program = new Command()
  .name('dapo')
  .description('DAPO policy training on a WebGPU + WebAssembly engine')
  .version('0.1.0')
  .showHelpAfterError();

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
  .action(async (o: { backend: string[]; json?: boolean; quick?: boolean; only?: string[]; threads?: number; peers: boolean }) => {
    await runBench({ backend: o.backend, json: !!o.json, quick: !!o.quick, only: o.only, threads: o.threads, peers: o.peers }, (l) => console.log(l));
  });

program.parseAsync(process.argv).then(
  // Dawn and worker pools can keep the event loop alive; a finished command exits.
  () => process.exit(0),
  (e: Error) => {
    console.error(`dapo: ${e.message}`);
    process.exit(1);
  },
);
