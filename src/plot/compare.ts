// Comparison of algorithms (e.g. DAPO vs GRPO) over several seeds each: band charts and a markdown table.
// The table reports numbers only; it does not pick a winner.
import { type Band, type ChartSpec, bandChart, grid, single } from './charts.js';
import type { PanelSpec } from './panels.js';
import { EMA_WEIGHT, type MeanStd, type MetricsRecord, type Point, aggregateSeries, extent, fieldPoints, meanStd, smoothPoints } from './series.js';
import { renderVegaLite } from './vega_svg.js';

export interface CompareRun {
  algo: string;
  seed: number;
  metrics: MetricsRecord[];
  evals: MetricsRecord[];
}

export const COMPARE_PANELS: readonly PanelSpec[] = [
  { file: 'compare_policy_loss', title: 'Policy loss', y: 'policy_loss', yLabel: 'loss', source: 'metrics', smooth: true },
  { file: 'compare_reward', title: 'Reward', y: 'reward_mean', yLabel: 'mean reward', source: 'metrics', smooth: true },
  { file: 'compare_entropy', title: 'Entropy', y: 'entropy', yLabel: 'nats / token', source: 'metrics', smooth: true },
  { file: 'compare_accuracy', title: 'Train accuracy', y: 'accuracy', yLabel: 'accuracy', source: 'metrics', smooth: true },
  { file: 'compare_heldout_accuracy', title: 'Held-out accuracy (greedy)', y: 'accuracy', yLabel: 'accuracy', source: 'eval' },
];

/** Fraction of the best smoothed train accuracy (over all runs) that defines "steps to reach". */
export const REACH_FRACTION = 0.8;

function checkRuns(runs: readonly CompareRun[], who: string): void {
  if (runs.length === 0) throw new Error(`${who}: no runs to compare`);
  const seen = new Set<string>();
  const duplicates: string[] = [];
  for (const run of runs) {
    const key = `${run.algo} seed ${run.seed}`;
    if (seen.has(key)) duplicates.push(key);
    seen.add(key);
  }
  if (duplicates.length) throw new Error(`${who}: duplicate runs: ${duplicates.join(', ')}`);
}

/** Runs grouped by algorithm, in order of first appearance. */
function byAlgo(runs: readonly CompareRun[]): [string, CompareRun[]][] {
  const groups = new Map<string, CompareRun[]>();
  for (const run of runs) {
    const group = groups.get(run.algo);
    if (group) group.push(run);
    else groups.set(run.algo, [run]);
  }
  return [...groups.entries()];
}

function runPoints(spec: PanelSpec, run: CompareRun): Point[] {
  const points = fieldPoints(spec.source === 'eval' ? run.evals : run.metrics, spec.y);
  return spec.smooth ? smoothPoints(points) : points;
}

function compareChart(spec: PanelSpec, groups: [string, CompareRun[]][]): ChartSpec {
  const bands: Band[] = groups.map(([algo, algoRuns]) => ({
    label: `${algo} (${algoRuns.length} seed${algoRuns.length === 1 ? '' : 's'})`,
    points: aggregateSeries(algoRuns.map((run) => runPoints(spec, run))),
    markers: spec.source === 'eval',
  }));
  const subtitle = `mean over seeds, band = min–max${spec.smooth ? `; EMA (${EMA_WEIGHT}) per seed` : ''}`;
  return bandChart({ title: spec.title, subtitle, yLabel: spec.yLabel, yFormat: spec.yFormat }, bands);
}

/** Loss, reward, entropy, train and held-out accuracy: per algorithm the mean over seeds and a min–max band. */
export async function comparePlots(runs: readonly CompareRun[]): Promise<{ file: string; svg: string }[]> {
  checkRuns(runs, 'comparePlots');
  const groups = byAlgo(runs);
  const charts = COMPARE_PANELS.map((spec) => ({ file: spec.file, chart: compareChart(spec, groups) }));
  const out: { file: string; svg: string }[] = [];
  for (const { file, chart } of charts) out.push({ file, svg: await renderVegaLite(single(chart)) });
  out.push({ file: 'compare_overview', svg: await renderVegaLite(grid(charts.map((c) => c.chart), 3, 'Algorithm comparison')) });
  return out;
}

export interface RunSummary {
  algo: string;
  seed: number;
  /** Accuracy of the last eval with phase 'final', else of the last eval; NaN without evals. */
  finalHeldOut: number;
  /** Accuracy of the eval with phase 'sft'; NaN when absent. */
  afterSft: number;
  /** Mean entropy of the last 10 steps that recorded it. */
  finalEntropy: number;
  meanResponseLength: number;
  /** Highest RL step recorded. */
  steps: number;
  genBatches: number;
  /** Sum of `samples` (responses generated per step) when recorded; NaN otherwise. */
  genSamples: number;
  /** EMA-smoothed train accuracy per step. */
  smoothedAccuracy: Point[];
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : NaN;
}

function sumField(records: readonly MetricsRecord[], field: string): number {
  const ps = fieldPoints(records, field);
  return ps.length ? ps.reduce((a, p) => a + p.value, 0) : NaN;
}

export function summarizeRun(run: CompareRun): RunSummary {
  const finals = run.evals.filter((e) => e.phase === 'final');
  const lastEval = finals.length ? finals[finals.length - 1] : run.evals[run.evals.length - 1];
  const sft = run.evals.filter((e) => e.phase === 'sft');
  const entropy = fieldPoints(run.metrics, 'entropy').slice(-10);
  const steps = run.metrics.reduce((m, r) => Math.max(m, num(r.step) || 0), 0);
  return {
    algo: run.algo,
    seed: run.seed,
    finalHeldOut: num(lastEval?.accuracy),
    afterSft: num(sft[sft.length - 1]?.accuracy),
    finalEntropy: meanStd(entropy.map((p) => p.value)).mean,
    meanResponseLength: meanStd(fieldPoints(run.metrics, 'response_length_mean').map((p) => p.value)).mean,
    steps,
    genBatches: sumField(run.metrics, 'gen_batches'),
    genSamples: sumField(run.metrics, 'samples'),
    smoothedAccuracy: smoothPoints(fieldPoints(run.metrics, 'accuracy')),
  };
}

/** First step at which the smoothed accuracy reaches `threshold`; NaN when it never does. */
export function stepsToReach(smoothed: readonly Point[], threshold: number): number {
  for (const point of smoothed) if (point.value >= threshold) return point.step;
  return NaN;
}

function cell(stats: MeanStd, of: number, digits: number): string {
  if (stats.n === 0) return 'n/a';
  const body = stats.n < 2 ? stats.mean.toFixed(digits) : `${stats.mean.toFixed(digits)} ± ${stats.std.toFixed(digits)}`;
  return stats.n < of ? `${body} (${stats.n}/${of})` : body;
}

/**
 * Markdown table, one row per algorithm: mean ± sample std over seeds of final held-out accuracy, accuracy after
 * SFT, final entropy, mean response length, steps, generation batches (and samples when recorded), and the steps
 * the smoothed train accuracy took to reach REACH_FRACTION of the best value any run attained.
 */
export function compareTable(runs: readonly CompareRun[]): string {
  checkRuns(runs, 'compareTable');
  const summaries = runs.map(summarizeRun);
  const best = extent(summaries.flatMap((summary) => summary.smoothedAccuracy.map((point) => point.value)))[1];
  const threshold = Number.isFinite(best) ? REACH_FRACTION * best : NaN;
  const withSamples = summaries.some((summary) => Number.isFinite(summary.genSamples));
  const reachHeader = Number.isFinite(threshold) ? `steps to train acc ≥ ${threshold.toFixed(3)}` : 'steps to reach';

  const header = ['algo', 'seeds', 'final held-out acc', 'acc after SFT', 'final entropy', 'mean response length', 'steps',
    'gen batches', ...(withSamples ? ['generated samples'] : []), reachHeader];
  const rows: string[][] = [];
  for (const [algo, algoRuns] of byAlgo(runs)) {
    const algoSummaries = summaries.filter((summary) => summary.algo === algo);
    const seeds = algoRuns.length;
    /** The table cell of one summary field over this algorithm's seeds. */
    const column = (field: (summary: RunSummary) => number, digits: number) => cell(meanStd(algoSummaries.map(field)), seeds, digits);
    rows.push([
      algo,
      `${seeds} (${algoRuns.map((run) => run.seed).join(', ')})`,
      column((summary) => summary.finalHeldOut, 3),
      column((summary) => summary.afterSft, 3),
      column((summary) => summary.finalEntropy, 3),
      column((summary) => summary.meanResponseLength, 1),
      column((summary) => summary.steps, 1),
      column((summary) => summary.genBatches, 1),
      ...(withSamples ? [column((summary) => summary.genSamples, 1)] : []),
      Number.isFinite(threshold) ? column((summary) => stepsToReach(summary.smoothedAccuracy, threshold), 1) : 'n/a',
    ]);
  }
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [
    line(header),
    line(header.map(() => '---')),
    ...rows.map(line),
    '',
    'mean ± sample standard deviation over seeds; "(k/n)" means only k of n runs had the value.',
    'final held-out acc: greedy accuracy of the last eval with phase "final" (else the last eval). final entropy: mean of the last 10 steps.',
    Number.isFinite(threshold)
      ? `steps to reach: first RL step at which the EMA-smoothed (${EMA_WEIGHT}) train accuracy reaches ${REACH_FRACTION} × ${best.toFixed(3)} (best smoothed value over all runs); runs that never reach it are left out.`
      : 'steps to reach: no run recorded train accuracy.',
    '',
  ].join('\n');
}
