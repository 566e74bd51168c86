// The DAPO run panels (the seed's six plus accuracy) and their SVG rendering.
import { type ChartSpec, type Line, grid, lineChart, single } from './charts.js';
import { type MetricsRecord, fieldPoints, smoothPoints } from './series.js';
import { renderVegaLite } from './vega_svg.js';

export type { MetricsRecord } from './series.js';

export interface PanelSpec {
  /** Output name without extension, e.g. 'policy_loss'. */
  file: string;
  title: string;
  /** Field of the records plotted on the y axis. */
  y: string;
  yLabel: string;
  source: 'metrics' | 'eval';
  /** Draw an EMA-smoothed line over the faint raw values. */
  smooth?: boolean;
  /** For a metrics panel: also draw this field of the eval records (e.g. held-out accuracy next to train accuracy). */
  heldOut?: { y: string; label: string };
  /** d3-format string for the y axis labels. */
  yFormat?: string;
}

/** The seed's six panels plus accuracy (train accuracy from metrics, greedy held-out accuracy from eval). */
export const DAPO_PANELS: readonly PanelSpec[] = [
  { file: 'policy_loss', title: 'Policy loss', y: 'policy_loss', yLabel: 'loss', source: 'metrics', smooth: true },
  { file: 'entropy_loss', title: 'Entropy loss', y: 'entropy_loss', yLabel: 'loss', source: 'metrics', smooth: true },
  { file: 'reward', title: 'Reward', y: 'reward_mean', yLabel: 'mean reward', source: 'metrics', smooth: true },
  { file: 'entropy', title: 'Entropy', y: 'entropy', yLabel: 'nats / token', source: 'metrics', smooth: true },
  { file: 'resample_rate', title: 'Dynamic resample rate', y: 'resample_rate', yLabel: 'rate', source: 'metrics', smooth: true },
  { file: 'response_length', title: 'Average response length', y: 'response_length_mean', yLabel: 'tokens', source: 'metrics', smooth: true },
  {
    file: 'accuracy', title: 'Accuracy', y: 'accuracy', yLabel: 'accuracy', source: 'metrics', smooth: true,
    heldOut: { y: 'accuracy', label: 'held-out (greedy)' },
  },
];

/** Diagnostics drawn by runPlots only when the run recorded them. */
export const EXTRA_PANELS: readonly PanelSpec[] = [
  { file: 'grad_norm', title: 'Gradient norm (before clipping)', y: 'grad_norm', yLabel: 'L2 norm', source: 'metrics', smooth: true },
  { file: 'approx_kl', title: 'Approximate KL to the rollout policy', y: 'approx_kl', yLabel: 'KL', source: 'metrics', smooth: true },
  { file: 'ref_kl', title: 'KL to the reference policy', y: 'ref_kl', yLabel: 'KL', source: 'metrics', smooth: true },
  { file: 'clip_frac_high', title: 'Clip fraction (upper, 1 + ε_high)', y: 'clip_frac_high', yLabel: 'fraction of tokens', source: 'metrics', smooth: true },
  { file: 'clip_frac_low', title: 'Clip fraction (lower, 1 − ε_low)', y: 'clip_frac_low', yLabel: 'fraction of tokens', source: 'metrics', smooth: true },
  { file: 'truncation_rate', title: 'Truncation rate', y: 'truncation_rate', yLabel: 'fraction of responses', source: 'metrics', smooth: true },
  { file: 'lr', title: 'Learning rate', y: 'lr', yLabel: 'lr', source: 'metrics', yFormat: '.1e' },
  { file: 'gen_tokens_per_s', title: 'Generation throughput', y: 'gen_tokens_per_s', yLabel: 'tokens / s', source: 'metrics', smooth: true },
  { file: 'train_tokens_per_s', title: 'Training throughput', y: 'train_tokens_per_s', yLabel: 'tokens / s', source: 'metrics', smooth: true },
  { file: 'step_time', title: 'Step time', y: 'step_time_s', yLabel: 'seconds', source: 'metrics', smooth: true },
  { file: 'peak_memory', title: 'Peak device memory', y: 'peak_bytes', yLabel: 'bytes', source: 'metrics', yFormat: '~s' },
  { file: 'heldout_pass_at_k', title: 'Held-out pass@k', y: 'pass_at_k', yLabel: 'pass@k', source: 'eval' },
];

export interface PanelSeries {
  label: string;
  /** Records of the panel's source (metrics or eval). */
  records: MetricsRecord[];
  /** Eval records, used by panels with `heldOut`. */
  evals?: MetricsRecord[];
}

function panelLines(spec: PanelSpec, series: readonly PanelSeries[]): Line[] {
  const many = series.length > 1;
  const lines: Line[] = [];
  for (const one of series) {
    const points = fieldPoints(one.records, spec.y);
    const isEval = spec.source === 'eval';
    lines.push({
      label: many || !spec.heldOut ? one.label : 'train',
      points,
      smoothed: spec.smooth && !isEval ? smoothPoints(points) : undefined,
      markers: isEval,
    });
    if (spec.heldOut && one.evals) {
      const held = fieldPoints(one.evals, spec.heldOut.y);
      if (held.length > 0) lines.push({ label: many ? `${one.label} ${spec.heldOut.label}` : spec.heldOut.label, points: held, markers: true });
    }
  }
  return lines;
}

function panelChart(spec: PanelSpec, series: readonly PanelSeries[]): ChartSpec {
  const subtitle = spec.smooth && spec.source === 'metrics' ? 'faint: per step; solid: EMA (0.9)' : undefined;
  return lineChart({ title: spec.title, subtitle, yLabel: spec.yLabel, yFormat: spec.yFormat }, panelLines(spec, series));
}

/** One panel as SVG: a line per series (faint raw values under an EMA line when smooth), legend when > 1 line. */
export async function panelSvg(spec: PanelSpec, series: readonly PanelSeries[]): Promise<string> {
  return renderVegaLite(single(panelChart(spec, series)));
}

function hasField(records: readonly MetricsRecord[], field: string): boolean {
  return fieldPoints(records, field).length > 0;
}

/** Every DAPO panel, the extra diagnostics the run recorded, and an 'overview' grid of the DAPO panels. */
export async function runPlots(metrics: MetricsRecord[], evals: MetricsRecord[]): Promise<{ file: string; svg: string }[]> {
  const series = (spec: PanelSpec): PanelSeries[] =>
    [{ label: 'run', records: spec.source === 'eval' ? evals : metrics, evals }];
  const extras = EXTRA_PANELS.filter((p) => hasField(p.source === 'eval' ? evals : metrics, p.y));
  const out: { file: string; svg: string }[] = [];
  for (const spec of [...DAPO_PANELS, ...extras]) out.push({ file: spec.file, svg: await panelSvg(spec, series(spec)) });
  const overview = grid(DAPO_PANELS.map((spec) => panelChart(spec, series(spec))), 3, 'DAPO training');
  out.push({ file: 'overview', svg: await renderVegaLite(overview) });
  return out;
}
