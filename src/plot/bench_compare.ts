// Grouped horizontal bars, one chart per group in a grid: the bench comparison (a chart per op, a bar per
// machine/browser/backend within each shape). Plain data in, SVG out; the bench layer builds the groups.
import type { TopLevelSpec } from 'vega-lite';
import { CHART_CONFIG, renderVegaLite } from './vega_svg.js';

export interface BarGroup {
  title: string;
  /** Axis title of the bar length, e.g. "GFLOP/s". */
  valueLabel: string;
  /** Category (a shape) → a bar per series (a run's backend) within it. */
  bars: { category: string; series: string; value: number }[];
}

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

/** The Vega-Lite spec: series keep one colour across every chart (one shared legend). */
export function groupedBarsSpec(groups: readonly BarGroup[], title: string, columns = 2): TopLevelSpec {
  if (groups.length === 0) throw new Error('groupedBarsSpec: no groups to draw');
  const series = [...new Set(groups.flatMap((g) => g.bars.map((b) => b.series)))];
  const color = {
    field: 'series', type: 'nominal', title: null, sort: series,
    scale: { domain: series, range: series.map((_, i) => PALETTE[i % PALETTE.length]) },
    legend: { orient: 'bottom', direction: 'vertical', labelLimit: 600, symbolType: 'square' },
  };
  const charts = groups.map((g) => {
    const categories = [...new Set(g.bars.map((b) => b.category))];
    return {
      title: g.title,
      width: 320,
      // With yOffset the step is one bar's: a shape's band holds a bar per series.
      height: { step: 14 },
      data: { values: g.bars },
      mark: { type: 'bar', tooltip: true },
      encoding: {
        y: { field: 'category', type: 'nominal', title: 'shape', sort: categories },
        yOffset: { field: 'series', type: 'nominal', sort: series },
        x: { field: 'value', type: 'quantitative', title: g.valueLabel },
        color,
      },
    };
  });
  return {
    config: CHART_CONFIG,
    title: { text: title, fontSize: 16 },
    columns,
    concat: charts,
    resolve: { scale: { x: 'independent', y: 'independent', yOffset: 'independent' } },
  } as unknown as TopLevelSpec;
}

export function groupedBarsSvg(groups: readonly BarGroup[], title: string, columns = 2): Promise<string> {
  return renderVegaLite(groupedBarsSpec(groups, title, columns));
}
