// Vega-Lite spec → SVG string, headless (no DOM, no canvas): the same code runs in Node and in browsers.
// vega and vega-lite are most of a page bundle's weight, so they are imported on the first render, not with this
// module: the page bundler (scripts/build.mjs, esbuild --splitting) puts them in a chunk a page fetches only
// when it draws its first chart.
import type { TopLevelSpec } from 'vega-lite';

/** Shared look: white background, sans-serif text (the PNG adapter maps sans-serif to a bundled DejaVu Sans). */
export const CHART_CONFIG = {
  background: 'white',
  font: 'sans-serif',
  title: { fontSize: 14, anchor: 'start' as const, offset: 8 },
  axis: { labelFontSize: 11, titleFontSize: 12, grid: true, gridOpacity: 0.5 },
  legend: { labelFontSize: 11, titleFontSize: 11, orient: 'bottom' as const },
  view: { stroke: '#ccc' },
};

type PlotLibraries = [typeof import('vega'), typeof import('vega-lite')];
let plotLibraries: Promise<PlotLibraries> | null = null;

/** vega and vega-lite, imported once; a failed import (a chunk that did not load) is retried on the next call. */
export function loadPlotLibraries(): Promise<PlotLibraries> {
  plotLibraries ??= Promise.all([import('vega'), import('vega-lite')]).catch((err: unknown) => {
    plotLibraries = null;
    throw err;
  });
  return plotLibraries;
}

export async function renderVegaLite(spec: TopLevelSpec): Promise<string> {
  const [{ View, parse }, { compile }] = await loadPlotLibraries();
  const vgSpec = compile(spec).spec;
  const view = new View(parse(vgSpec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
