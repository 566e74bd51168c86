// What the browser pages share (web/train.ts, web/finetune.ts): element lookup, uncaught-error collection, yielding
// to the browser between training steps, the live SVG panels of a run held in a MemoryRunStore, and number formats.
import type { MemoryRunStore, RunRecord } from '../src/rl/memory_store.js';
import { DAPO_PANELS, type MetricsRecord, type PanelSpec, panelSvg } from '../src/plot/panels.js';
import { lineChart, single } from '../src/plot/charts.js';
import { fieldPoints, smoothPoints } from '../src/plot/series.js';
import { renderVegaLite } from '../src/plot/vega_svg.js';
import { formatAccuracy } from '../src/rl/evaluate.js';

/** The page element with this id. */
export const byId = <E extends HTMLElement>(id: string) => document.getElementById(id) as E;

/** Uncaught errors and unhandled rejections of the page, as lines (a page result reports them). */
export function collectPageErrors(): string[] {
  const errors: string[] = [];
  addEventListener('error', (event) => errors.push(`page error: ${event.message}`));
  addEventListener('unhandledrejection', (event) => errors.push(`unhandled rejection: ${String((event.reason as Error)?.stack ?? event.reason)}`));
  return errors;
}

/** Lets the browser paint and handle input between training steps (a macrotask; MessageChannel is not throttled
 *  in background tabs the way setTimeout is). */
export function yieldToBrowser(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });
}

const SFT_PANEL = 'sft_loss';

/** The trainer writes a numeric `step` into every record it stores. */
const series = (records: readonly RunRecord[]) => records as readonly MetricsRecord[] as MetricsRecord[];

async function sftLossSvg(records: readonly RunRecord[]): Promise<string> {
  const points = fieldPoints(series(records), 'loss');
  return renderVegaLite(single(lineChart(
    { title: 'SFT loss (warm-up)', subtitle: 'faint: per step; solid: EMA (0.9)', yLabel: 'cross-entropy', xLabel: 'SFT step' },
    [{ label: 'sft', points, smoothed: smoothPoints(points) }],
  )));
}

/** The SFT loss and the DAPO panels, one <figure> each, redrawn in place. */
export class Panels {
  constructor(private readonly root: HTMLElement) {}

  private figure(name: string): HTMLElement {
    let figure = this.root.querySelector<HTMLElement>(`figure[data-panel="${name}"]`);
    if (!figure) {
      figure = document.createElement('figure');
      figure.dataset.panel = name;
      this.root.append(figure);
    }
    return figure;
  }

  async draw(store: MemoryRunStore): Promise<void> {
    if (store.sft.length) this.figure(SFT_PANEL).innerHTML = await sftLossSvg(store.sft);
    if (!store.metrics.length) return;
    for (const spec of DAPO_PANELS as readonly PanelSpec[]) {
      const records = spec.source === 'eval' ? store.evals : store.metrics;
      this.figure(spec.file).innerHTML = await panelSvg(spec, [{ label: 'run', records: series(records), evals: series(store.evals) }]);
    }
  }

  count(): number {
    return this.root.querySelectorAll('figure > svg').length;
  }
}

export function pct(x: unknown): string {
  return typeof x === 'number' ? formatAccuracy(x) : '—';
}

export function clock(seconds: number): string {
  const whole = Math.round(seconds);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, '0')}`;
}

/** 1536 → '1.5 KiB'. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

/** Saves bytes as a file through a temporary link (nothing leaves the machine). */
export function downloadBytes(name: string, bytes: Uint8Array | string, type = 'application/octet-stream'): void {
  const link = document.createElement('a');
  link.href = URL.createObjectURL(new Blob([bytes as BlobPart], { type }));
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  // Revoked after the click has been handled: revoking at once can cancel the download in some browsers.
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}
