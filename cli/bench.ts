// `dapo bench`: the benchmark cases (src/bench/cases.ts) per backend, each next to TF.js on the same
// adapter / in its WASM backend, run by the suite the browser page runs too (src/bench/suite.ts). --json
// prints the environment line, then one JSON object per record (format: src/bench/format.ts).
// `dapo bench --compare a.jsonl b.jsonl …` puts saved runs side by side instead (src/bench/compare.ts).
import { cpus } from 'node:os';
import { readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { nodePlatform } from '../src/node.js';
import type { BenchRecord } from '../src/bench/common.js';
import { parseCaseNames } from '../src/bench/cases.js';
import { benchEnvironment } from '../src/bench/environment.js';
import { failureJson, failureText, recordJson, recordText } from '../src/bench/format.js';
import { parseBackendNames, runSuite, sharedGpuPlatform } from '../src/bench/suite.js';
import { compareTables, parseBenchFile } from '../src/bench/compare.js';
import { benchComparePlot } from '../src/bench/compare_plot.js';
import { svgToPng } from '../src/plot/png_node.js';
import { writeFileAtomic } from '../src/io/node_files.js';
import { loadTfjs } from './tfjs_peer.js';

export interface BenchOptions {
  backend: string[];
  json: boolean;
  /** Small shapes and a 1 s budget per timing loop instead of 4 s (see src/bench/cases.ts). */
  quick: boolean;
  threads?: number;
  /** Also measure TF.js (tfjs-webgpu next to webgpu, tfjs-wasm next to wasm). */
  peers: boolean;
  /** Case names (comma lists); absent or empty → all. */
  only?: string[];
}

export async function runBench(opts: BenchOptions, print: (line: string) => void): Promise<BenchRecord[]> {
  const backends = parseBackendNames(opts.backend);
  const cases = parseCaseNames(opts.only);
  const size = opts.quick ? 'quick' : 'full';
  const platform = sharedGpuPlatform(nodePlatform({ threads: opts.threads }));
  if (opts.json) {
    const environment = await benchEnvironment(platform,
      { agent: `node ${process.version}`, os: `${process.platform}-${process.arch}`, cpu_cores: cpus().length }, { size, cases, backends });
    print(JSON.stringify({ environment }));
  }
  return runSuite({
    platform, backends, cases, size, threads: opts.threads,
    loadPeer: opts.peers ? loadTfjs : undefined,
    emit: (event) => {
      if (event.kind === 'backend') {
        if (!opts.json) print(`${event.label}: ${JSON.stringify(event.description)}`);
      } else if (event.kind === 'record') {
        print(opts.json ? JSON.stringify(recordJson(event.record, event.vs)) : recordText(event.record, event.vs));
      } else {
        print(opts.json ? JSON.stringify(failureJson(event.failure)) : failureText(event.failure));
      }
    },
  });
}

export interface BenchCompareOptions {
  files: string[];
  /** Where bench_compare.svg / .png go. */
  out: string;
}

/** `dapo bench --compare`: prints a side-by-side table per case and writes the comparison chart (SVG + PNG). */
export async function runBenchCompare(opts: BenchCompareOptions, print: (line: string) => void): Promise<{ files: string[] }> {
  if (opts.files.length === 0) throw new Error('bench --compare: give one or more JSON-lines files written by `dapo bench --json` or the bench page');
  const runs = opts.files.map((file) => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new Error(`bench --compare: cannot read ${file}: ${(e as Error).message}`);
    }
    return parseBenchFile(text, basename(file));
  });
  for (const table of compareTables(runs)) print(`${table.markdown}\n`);
  const svg = await benchComparePlot(runs);
  const dir = resolve(opts.out);
  const svgPath = join(dir, 'bench_compare.svg');
  const pngPath = join(dir, 'bench_compare.png');
  writeFileAtomic(svgPath, svg);
  writeFileAtomic(pngPath, await svgToPng(svg));
  print(`wrote ${svgPath} and ${pngPath}`);
  return { files: [svgPath, pngPath] };
}
