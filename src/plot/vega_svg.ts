// Vega-Lite spec → SVG string, headless (no DOM, no canvas): the same code runs in Node and in browsers.
import { View, parse } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** Shared look: white background, sans-serif text (the PNG adapter maps sans-serif to a bundled DejaVu Sans). */
export const CHART_CONFIG = {
  background: 'white',
  font: 'sans-serif',
  title: { fontSize: 14, anchor: 'start' as const, offset: 8 },
  axis: { labelFontSize: 11, titleFontSize: 12, grid: true, gridOpacity: 0.5 },
  legend: { labelFontSize: 11, titleFontSize: 11, orient: 'bottom' as const },
  view: { stroke: '#ccc' },
};

export async function renderVegaLite(spec: TopLevelSpec): Promise<string> {
  const vgSpec = compile(spec).spec;
  const view = new View(parse(vgSpec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
