// `dapo plot` / `dapo compare`: read run directories, write SVG + PNG charts (and compare.md).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../src/io/node_files.js';
import { type CompareRun, comparePlots, compareTable } from '../src/plot/compare.js';
import { runPlots } from '../src/plot/panels.js';
import { svgToPng } from '../src/plot/png_node.js';
import { type MetricsRecord, parseJsonl } from '../src/plot/series.js';

export const METRICS_FILE = 'metrics.jsonl';
export const EVAL_FILE = 'eval.jsonl';

function requireDir(dir: string, what: string): string {
  const abs = resolve(dir);
  if (!existsSync(abs)) throw new Error(`${what} not found: ${abs}`);
  if (!statSync(abs).isDirectory()) throw new Error(`${what} is not a directory: ${abs}`);
  return abs;
}

function readRecords(path: string, log: (line: string) => void): MetricsRecord[] {
  const { records, truncated } = parseJsonl<MetricsRecord>(readFileSync(path, 'utf8'), path);
  if (truncated) log(`note: ignored a truncated last line in ${path} (run still writing or stopped mid-line)`);
  return records;
}

/**
 * Reads runDir/metrics.jsonl (required) and runDir/eval.jsonl (optional: a run stopped before its first
 * evaluation has none; its absence is logged and the held-out lines are left out).
 */
export function readRunRecords(runDir: string, log: (line: string) => void = () => {}): { metrics: MetricsRecord[]; evals: MetricsRecord[] } {
  const dir = requireDir(runDir, 'run directory');
  const metricsPath = join(dir, METRICS_FILE);
  if (!existsSync(metricsPath)) throw new Error(`${METRICS_FILE} not found in run directory ${dir} (has the run finished its first RL step?)`);
  const metrics = readRecords(metricsPath, log);
  const evalPath = join(dir, EVAL_FILE);
  let evals: MetricsRecord[] = [];
  if (existsSync(evalPath)) evals = readRecords(evalPath, log);
  else log(`note: no ${EVAL_FILE} in ${dir}; plotting without held-out accuracy`);
  return { metrics, evals };
}

/**
 * Reads a run directory for `dapo compare`: the records plus algo and seed from its config.json
 * (`rl.algo`, `seed`), either of which `override` may supply instead.
 */
export function readCompareRun(runDir: string, override: { algo?: string; seed?: number } = {}, log: (line: string) => void = () => {}): CompareRun {
  const dir = requireDir(runDir, 'run directory');
  let algo = override.algo;
  let seed = override.seed;
  const configPath = join(dir, 'config.json');
  if ((algo === undefined || seed === undefined) && existsSync(configPath)) {
    let config: { seed?: unknown; rl?: { algo?: unknown } };
    try {
      config = JSON.parse(readFileSync(configPath, 'utf8'));
    } catch (e) {
      throw new Error(`${configPath}: not valid JSON (${(e as Error).message})`);
    }
    if (algo === undefined && typeof config.rl?.algo === 'string') algo = config.rl.algo;
    if (seed === undefined && typeof config.seed === 'number') seed = config.seed;
  }
  const missing = [...(algo === undefined ? ['rl.algo'] : []), ...(seed === undefined ? ['seed'] : [])];
  if (missing.length) throw new Error(`run directory ${dir}: cannot tell ${missing.join(' and ')} (no ${configPath} with those keys)`);
  return { algo: algo!, seed: seed!, ...readRunRecords(dir, log) };
}

export interface PlotWriteOptions {
  /** PNG width in pixels (default: twice each chart's SVG width). */
  pngWidth?: number;
}

async function writeCharts(outDir: string, charts: { file: string; svg: string }[], opts: PlotWriteOptions): Promise<string[]> {
  const written: string[] = [];
  for (const { file, svg } of charts) {
    const svgPath = join(outDir, `${file}.svg`);
    const pngPath = join(outDir, `${file}.png`);
    writeFileAtomic(svgPath, svg);
    writeFileAtomic(pngPath, await svgToPng(svg, { width: opts.pngWidth }));
    written.push(svgPath, pngPath);
  }
  return written;
}

/** Writes runDir/plots/<panel>.svg and .png for every panel; returns the written paths. */
export async function plotRunDir(runDir: string, log: (line: string) => void = () => {}, opts: PlotWriteOptions = {}): Promise<string[]> {
  const { metrics, evals } = readRunRecords(runDir, log);
  if (metrics.length === 0) log(`note: ${METRICS_FILE} has no records yet; the charts will be empty`);
  const outDir = join(resolve(runDir), 'plots');
  const written = await writeCharts(outDir, await runPlots(metrics, evals), opts);
  log(`wrote ${written.length} files to ${outDir}`);
  return written;
}

/** Writes the comparison charts (SVG + PNG) and compare.md into outDir; returns the written paths. */
export async function writeComparePlots(outDir: string, runs: CompareRun[], log: (line: string) => void = () => {},
  opts: PlotWriteOptions = {}): Promise<string[]> {
  const dir = resolve(outDir);
  const table = compareTable(runs);
  const written = await writeCharts(dir, await comparePlots(runs), opts);
  const mdPath = join(dir, 'compare.md');
  writeFileAtomic(mdPath, `# Algorithm comparison\n\n${table}`);
  written.push(mdPath);
  log(`wrote ${written.length} files to ${dir}`);
  return written;
}
