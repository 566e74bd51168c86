// The training page: SFT warm-up → DAPO → held-out evaluation in a browser tab, on the same engine (src/) as
// `dapo train`, with an in-memory run store and the DAPO panels redrawn as SVG while it trains.
// Settings come from the query string (?backend=auto|webgpu|wasm&quick=1&algo=dapo|grpo&seed=N&steps=N&set=key=value);
// the form reloads the page with new ones. The outcome lands in window.dapoResult (a promise that never rejects).
import { initEngine } from '../src/browser_engine.js';
import { PAGE_QUICK_PRESET, type TrainConfig, TrainConfigError, configLayersFrom, resolveTrainConfig } from '../src/rl/config.js';
import { formatAccuracy, formatAccuracyGain } from '../src/rl/evaluate.js';
import { TrainingStopped } from '../src/rl/run_store.js';
import { Trainer, buildTaskAndModel, freshParts } from '../src/rl/trainer.js';
import { MemoryRunStore, type RecordKind, type RunRecord } from '../src/rl/memory_store.js';
import { Panels, byId, clock, collectPageErrors, pct, yieldToBrowser } from './page_common.js';

const PAGE_BACKENDS = ['auto', 'webgpu', 'wasm'] as const;
const QUERY_KEYS = ['backend', 'quick', 'algo', 'seed', 'steps', 'set'] as const;

interface PageSettings {
  backend: (typeof PAGE_BACKENDS)[number];
  quick: boolean;
  config: TrainConfig;
}

export interface PageResult {
  ok: boolean;
  stopped: boolean;
  /** The backend asked for and the one that ran (Backend.name), with the selection's reason. */
  requested: string;
  backend: string | null;
  reason: string | null;
  crossOriginIsolated: boolean;
  preset: 'quick' | 'page';
  config: TrainConfig | null;
  sftSteps: number;
  metrics: RunRecord[];
  metricsCount: number;
  evals: RunRecord[];
  sftAccuracy: number | null;
  finalAccuracy: number | null;
  /** SVG panels in the page at the end. */
  panels: number;
  seconds: number;
  errors: string[];
}

const errors = collectPageErrors();

/** Settings from the query string; every bad parameter is listed at once, config problems included. */
function readSettings(params: URLSearchParams): PageSettings {
  const problems: string[] = [];
  for (const key of new Set(params.keys())) {
    if (!(QUERY_KEYS as readonly string[]).includes(key)) problems.push(`unknown query parameter '${key}' (allowed: ${QUERY_KEYS.join(', ')})`);
  }
  const backend = params.get('backend') ?? 'auto';
  const backendOk = (PAGE_BACKENDS as readonly string[]).includes(backend);
  if (!backendOk) problems.push(`backend: must be one of ${PAGE_BACKENDS.join(', ')}, got '${backend}'`);
  const quickText = params.get('quick') ?? '0';
  if (!['0', '1', 'true', 'false'].includes(quickText)) problems.push(`quick: must be 1 or 0, got '${quickText}'`);
  const quick = quickText === '1' || quickText === 'true';
  const integer = (key: string): number | undefined => {
    const text = params.get(key);
    if (text === null || text === '') return undefined;
    if (!/^\d+$/.test(text)) {
      problems.push(`${key}: must be a non-negative integer, got '${text}'`);
      return undefined;
    }
    return Number(text);
  };
  // Without ?quick=1 the page runs exactly `npx dapo train`'s defaults (about 4 minutes on 2 CPU cores with WASM).
  const layers = configLayersFrom({
    algo: params.get('algo') ?? undefined, quick, backend: backendOk ? backend : undefined,
    seed: integer('seed'), steps: integer('steps'), set: params.getAll('set'),
  }, { quickPreset: PAGE_QUICK_PRESET, problems });
  // Resolved even when a parameter was bad, so its problems are listed together with the config's.
  let config: TrainConfig | null = null;
  try {
    config = resolveTrainConfig(...layers);
  } catch (err) {
    if (err instanceof TrainConfigError) problems.push(...err.problems);
    else problems.push((err as Error).message);
  }
  if (problems.length) throw new TrainConfigError(problems);
  return { backend: backend as PageSettings['backend'], quick, config: config! };
}

function fillForm(params: URLSearchParams, settings: PageSettings | null): void {
  const form = byId<HTMLFormElement>('settings');
  const setField = (name: string, value: string) => { (form.elements.namedItem(name) as HTMLInputElement).value = value; };
  setField('backend', settings?.backend ?? params.get('backend') ?? 'auto');
  setField('quick', settings?.quick ? '1' : '0');
  setField('algo', settings?.config.rl.algo ?? 'dapo');
  setField('seed', String(settings?.config.seed ?? params.get('seed') ?? 0));
  setField('steps', String(settings?.config.rl.steps ?? params.get('steps') ?? ''));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const key of ['backend', 'quick', 'algo', 'seed', 'steps']) {
      const value = (form.elements.namedItem(key) as HTMLInputElement).value;
      if (value !== '') next.set(key, value);
    }
    for (const override of params.getAll('set')) next.append('set', override);
    location.search = next.toString();
  });
}

/** Fills `result` as the run goes, so a failure still reports what was known (backend, records so far). */
async function main(params: URLSearchParams, result: PageResult): Promise<PageResult> {
  const startedAt = performance.now();
  const status = byId('status');
  const bar = byId<HTMLProgressElement>('bar');
  const logEl = byId('log');
  const log = (line: string) => { logEl.textContent += `${line}\n`; };

  let settings: PageSettings;
  try {
    settings = readSettings(params);
  } catch (err) {
    fillForm(params, null);
    throw err;
  }
  fillForm(params, settings);
  const config = settings.config;
  result.config = config;
  byId('config').textContent = JSON.stringify(config, null, 1);

  status.textContent = `starting the ${settings.backend} backend…`;
  const selection = await initEngine({ backend: settings.backend });
  result.backend = selection.backend.name;
  result.reason = selection.reason;
  log(`backend ${selection.backend.name}: ${selection.reason}`);

  const panels = new Panels(byId('panels'));
  const controller = new AbortController();
  // About 40 redraws of the DAPO panels a run (every 5 steps of the default 200): drawing costs time too.
  const plotEvery = Math.max(1, Math.ceil(config.rl.steps / 40));
  const sftPlotEvery = Math.max(1, Math.ceil(config.sft.steps / 5));
  let lastYield = performance.now();
  let phaseLine = '';
  const store = new MemoryRunStore({
    signal: controller.signal,
    onLog: log,
    onProgress: (phase, done, total, detail) => {
      phaseLine = `${phase} ${done}/${total} · ${detail}`;
      status.textContent = `${selection.backend.name} · ${phaseLine} · ${clock((performance.now() - startedAt) / 1000)}`;
      bar.value = total > 0 ? done / total : 0;
    },
    onRecord: async (kind: RecordKind, record: RunRecord) => {
      const step = record.step as number;
      const redraw = kind === 'eval' || (kind === 'metrics' && (step % plotEvery === 0 || step === config.rl.steps))
        || (kind === 'sft' && (step % sftPlotEvery === 0 || step === config.sft.steps));
      if (redraw) await panels.draw(store);
      if (redraw || performance.now() - lastYield > 50) {
        await yieldToBrowser();
        lastYield = performance.now();
      }
    },
  });

  const stop = byId<HTMLButtonElement>('stop');
  stop.disabled = false;
  stop.onclick = () => { controller.abort(); stop.disabled = true; };

  const { task, model } = buildTaskAndModel(config);
  const trainer = new Trainer(config, task, freshParts(config, model), store);
  try {
    const outcome = await trainer.run();
    result.sftAccuracy = outcome.sft?.accuracy ?? null;
    result.finalAccuracy = outcome.final?.accuracy ?? outcome.sft?.accuracy ?? null;
    result.ok = true;
  } catch (err) {
    if (!(err instanceof TrainingStopped)) throw err;
    result.stopped = true;
    log(err.message);
  } finally {
    trainer.dispose();
    stop.disabled = true;
    await panels.draw(store);
    result.metrics = store.metrics;
    result.metricsCount = store.metrics.length;
    result.evals = store.evals;
    result.sftSteps = store.sft.length;
    result.panels = panels.count();
    result.seconds = (performance.now() - startedAt) / 1000;
  }

  const weights = store.latest?.weights;
  if (weights) {
    const download = byId<HTMLButtonElement>('download');
    download.disabled = false;
    download.onclick = () => {
      const link = document.createElement('a');
      link.href = URL.createObjectURL(new Blob([weights as BlobPart], { type: 'application/octet-stream' }));
      link.download = `dapo-${config.task.name}-s${config.seed}-step${store.latest!.state.rlStep}.safetensors`;
      link.click();
      URL.revokeObjectURL(link.href);
    };
  }
  const sftEval = store.evals.find((record) => record.phase === 'sft');
  const finalEval = store.evals.find((record) => record.phase === 'final');
  byId('summary').textContent = result.stopped
    ? `stopped after ${store.metrics.length} RL steps; held-out greedy accuracy after SFT ${pct(sftEval?.accuracy)}`
    : `held-out greedy accuracy: SFT ${pct(sftEval?.accuracy)} → ${config.rl.algo.toUpperCase()} ${pct(finalEval?.accuracy)}`
      + (typeof sftEval?.accuracy === 'number' && typeof finalEval?.accuracy === 'number' ? `, ${formatAccuracyGain(sftEval.accuracy, finalEval.accuracy)}` : '')
      + ` (${sftEval?.n ?? '?'} problems, ${config.rl.steps} RL steps, ${selection.backend.name}, ${clock(result.seconds)})`;
  status.textContent = `${result.stopped ? 'stopped' : 'done'} · ${selection.backend.name} · ${clock(result.seconds)}`;
  bar.value = 1;
  return result;
}

const query = new URLSearchParams(location.search);
const pageResult: PageResult = {
  ok: false, stopped: false, requested: query.get('backend') ?? 'auto', backend: null, reason: null,
  crossOriginIsolated: globalThis.crossOriginIsolated === true, preset: ['1', 'true'].includes(query.get('quick') ?? '') ? 'quick' : 'page',
  config: null, sftSteps: 0, metrics: [], metricsCount: 0, evals: [], sftAccuracy: null, finalAccuracy: null, panels: 0, seconds: 0, errors,
};
const dapoResult: Promise<PageResult> = main(query, pageResult).catch((err: unknown) => {
  const message = err instanceof TrainConfigError ? err.message : String((err as Error)?.stack ?? err);
  errors.push(message);
  byId('errors').textContent = message;
  byId('status').textContent = 'failed';
  return pageResult;
});
(globalThis as unknown as { dapoResult: Promise<PageResult> }).dapoResult = dapoResult;
