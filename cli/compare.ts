// `dapo compare`: DAPO and GRPO from the same seeds with the same sample budget, one run each per seed, then
// comparison plots and a markdown table (mean ± spread over seeds) in the output directory.
import { join } from 'node:path';
import { readCompareRun, writeComparePlots } from './plot.js';
import type { CompareRun } from '../src/plot/compare.js';
import { type TrainFlags, configFromFlags, runTrain } from './train.js';
import { latestCheckpoint } from '../src/rl/run_dir_node.js';

export interface CompareFlags {
  seeds: number[];
  algos: string[];
  config?: string;
  set?: string[];
  quick?: boolean;
  backend?: string;
  out: string;
  force?: boolean;
}

export async function runCompare(f: CompareFlags, out: (l: string) => void = (l) => console.log(l)): Promise<{ outDir: string; files: string[] }> {
  if (f.seeds.length < 1) throw new Error('--seeds: give at least one seed');
  const runs: CompareRun[] = [];
  // The same sample budget for every algorithm: what the plain algorithm (one generation batch per step)
  // consumes in rl.steps steps, unless the config sets one. Dynamic sampling spends it in fewer steps.
  const probe = configFromFlags({ config: f.config, set: f.set, quick: f.quick, plots: false });
  const budget = probe.rl.sampleBudget || probe.rl.steps * probe.rl.promptsPerStep * probe.rl.groupSize;
  out(`sample budget per run: ${budget} responses (${probe.rl.steps} steps × ${probe.rl.promptsPerStep} prompts × ${probe.rl.groupSize})`);
  for (const seed of f.seeds) {
    // One warm-up per seed, shared by every algorithm: each starts RL from the same policy.
    const sftDir = join(f.out, `sft-s${seed}`);
    out(`=== supervised warm-up, seed ${seed} → ${sftDir}`);
    await runTrain({
      seed, config: f.config, set: [...(f.set ?? []), 'rl.steps=0'], quick: f.quick, backend: f.backend, out: sftDir, force: f.force, plots: false,
    }, out);
    const init = latestCheckpoint(sftDir);
    if (!init) throw new Error(`${sftDir}: the warm-up left no checkpoint`);
    for (const algo of f.algos) {
      const runDir = join(f.out, `${algo}-s${seed}`);
      out(`=== ${algo} seed ${seed} → ${runDir}`);
      const flags: TrainFlags = {
        algo, seed, init, config: f.config, set: [...(f.set ?? []), 'sft.steps=0', `rl.sampleBudget=${budget}`], quick: f.quick,
        backend: f.backend, out: runDir, force: f.force, plots: true,
      };
      const r = await runTrain(flags, out);
      runs.push(readCompareRun(r.runDir));
    }
  }
  const files = await writeComparePlots(f.out, runs);
  out(`comparison written to ${f.out}: ${files.map((p) => p.split('/').pop()).join(', ')}`);
  return { outDir: f.out, files };
}
