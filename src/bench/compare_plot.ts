// The bench comparison chart: per op a grouped bar chart (a band per shape, a bar per machine/browser/backend).
// Separate from compare.ts so the page loads the plot libraries only when it draws.
import { groupedBarsSvg } from '../plot/bench_compare.js';
import { type BenchRun, compareTables } from './compare.js';

export function benchComparePlot(runs: readonly BenchRun[], title = 'dapo bench: throughput side by side (higher is faster)'): Promise<string> {
  const groups = compareTables(runs).map((table) => ({
    title: table.op,
    valueLabel: table.unit,
    bars: table.rows.flatMap((row) => table.columns.flatMap((category, i) => {
      const value = row.values[i];
      return value === null ? [] : [{ category, series: row.label, value }];
    })),
  }));
  return groupedBarsSvg(groups, title);
}
