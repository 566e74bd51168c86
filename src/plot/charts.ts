// Vega-Lite chart builders shared by the run panels and the comparison panels. They return plain spec
// objects (a layer per visual role) so callers can render one chart or put several in a grid.
import type { TopLevelSpec } from 'vega-lite';
import { type BandPoint, type Point, extent } from './series.js';
import { CHART_CONFIG } from './vega_svg.js';

/** A Vega-Lite unit or layer spec, kept loosely typed: the builders below are its only producers. */
export type ChartSpec = Record<string, unknown>;

export interface ChartFrame {
  title: string;
  subtitle?: string;
  yLabel: string;
  xLabel?: string;
  /** d3-format string for the y axis labels (e.g. '~s' for bytes). */
  yFormat?: string;
  width?: number;
  height?: number;
}

export interface Line {
  label: string;
  /** Values as recorded. */
  points: Point[];
  /** Drawn on top of faint raw values when present. */
  smoothed?: Point[];
  /** Point markers on the line (for sparse series such as evaluations). */
  markers?: boolean;
}

export interface Band {
  label: string;
  points: BandPoint[];
  markers?: boolean;
}

// Colour-blind-safe (Tableau 10), assigned in line order so a label keeps its colour in every panel.
const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

function colorEncoding(labels: string[], legendTitle: string | null) {
  return {
    field: 'line',
    type: 'nominal',
    sort: labels,
    scale: { domain: labels, range: labels.map((_, i) => PALETTE[i % PALETTE.length]) },
    // Stroke symbols at full opacity: otherwise the legend copies the faint raw layer or the band.
    legend: labels.length > 1 ? { title: legendTitle, symbolType: 'stroke', symbolOpacity: 1, symbolStrokeWidth: 3 } : null,
  };
}

function titleOf(frame: ChartFrame, empty: boolean) {
  const subtitle = empty ? 'no data recorded' : frame.subtitle;
  return subtitle ? { text: frame.title, subtitle } : frame.title;
}

/**
 * A fixed y domain when the values (nearly) do not vary: otherwise the axis zooms into rounding noise
 * (a constant −0.01 through the EMA gets labels like −0.0099999999999).
 */
export function flatDomain(values: readonly number[]): [number, number] | undefined {
  if (values.length === 0) return undefined;
  const [lo, hi] = extent(values);
  const magnitude = Math.max(Math.abs(lo), Math.abs(hi));
  if (hi - lo > 1e-9 * magnitude && magnitude > 0) return undefined;
  const pad = magnitude > 0 ? 0.1 * magnitude : 1;
  return [lo - pad, hi + pad];
}

function axes(frame: ChartFrame, values: readonly number[]) {
  const domain = flatDomain(values);
  return {
    x: { field: 'step', type: 'quantitative', title: frame.xLabel ?? 'RL step', axis: { tickMinStep: 1 } },
    y: {
      field: 'value', type: 'quantitative', title: frame.yLabel,
      scale: domain ? { domain } : { zero: false },
      axis: frame.yFormat ? { format: frame.yFormat } : {},
    },
  };
}

/** Title (with a 'no data recorded' subtitle when there are no rows), size, data rows and layers. */
function framedChart(frame: ChartFrame, rows: Record<string, unknown>[], layer: ChartSpec[]): ChartSpec {
  return {
    title: titleOf(frame, rows.length === 0),
    width: frame.width ?? 420,
    height: frame.height ?? 240,
    data: { values: rows },
    layer,
  };
}

/** Lines over RL steps; smoothed lines are drawn over their faint raw values. */
export function lineChart(frame: ChartFrame, lines: readonly Line[]): ChartSpec {
  const rows: Record<string, unknown>[] = [];
  for (const line of lines) {
    const kind = line.markers ? 'marked' : 'solid';
    if (line.smoothed) {
      for (const point of line.points) rows.push({ step: point.step, value: point.value, line: line.label, kind: 'faint' });
      for (const point of line.smoothed) rows.push({ step: point.step, value: point.value, line: line.label, kind });
    } else {
      for (const point of line.points) rows.push({ step: point.step, value: point.value, line: line.label, kind });
    }
  }
  const labels = lines.map((line) => line.label);
  const { x, y } = axes(frame, rows.map((row) => row.value as number));
  const color = colorEncoding(labels, null);
  const layer = (kind: string, mark: Record<string, unknown>) => ({
    transform: [{ filter: { field: 'kind', equal: kind } }],
    mark: { type: 'line', clip: true, ...mark },
    encoding: { x, y, color, detail: { field: 'line' } },
  });
  return framedChart(frame, rows, [
    layer('faint', { strokeWidth: 1, opacity: 0.3 }),
    layer('solid', { strokeWidth: 2 }),
    layer('marked', { strokeWidth: 2, point: { size: 30 } }),
  ]);
}

/** Per label a mean line over a shaded min–max band. */
export function bandChart(frame: ChartFrame, bands: readonly Band[]): ChartSpec {
  const rows: Record<string, unknown>[] = [];
  for (const band of bands) {
    for (const point of band.points) {
      rows.push({ step: point.step, value: point.mean, min: point.min, max: point.max, n: point.n, line: band.label, marked: !!band.markers });
    }
  }
  const labels = bands.map((band) => band.label);
  const { x, y } = axes(frame, bands.flatMap((band) => band.points.flatMap((point) => [point.min, point.max])));
  const color = colorEncoding(labels, null);
  const tooltip = [{ field: 'line' }, { field: 'step' }, { field: 'value', title: 'mean' }, { field: 'min' }, { field: 'max' }, { field: 'n', title: 'seeds' }];
  const meanLine = (marked: boolean, mark: Record<string, unknown>) => ({
    transform: [{ filter: { field: 'marked', equal: marked } }],
    mark: { type: 'line', strokeWidth: 2, clip: true, ...mark },
    encoding: { x, y, color, tooltip },
  });
  return framedChart(frame, rows, [
    { mark: { type: 'area', opacity: 0.2, clip: true }, encoding: { x, y: { ...y, field: 'min' }, y2: { field: 'max' }, color } },
    meanLine(false, {}),
    meanLine(true, { point: { size: 30 } }),
  ]);
}

/** One chart as a renderable top-level spec. */
export function single(chart: ChartSpec): TopLevelSpec {
  return { config: CHART_CONFIG, ...chart } as unknown as TopLevelSpec;
}

/** Several charts in a grid, each with its own scales and legend. */
export function grid(charts: readonly ChartSpec[], columns = 3, title?: string): TopLevelSpec {
  return {
    config: CHART_CONFIG,
    ...(title ? { title: { text: title, fontSize: 16 } } : {}),
    columns,
    concat: charts.map((chart) => ({ ...chart, width: 300, height: 170 })),
    resolve: { scale: { color: 'independent', x: 'independent', y: 'independent' }, legend: { color: 'independent' } },
  } as unknown as TopLevelSpec;
}
