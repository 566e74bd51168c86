// The bench page: the `dapo bench` cases (src/bench, the CLI's own code) in a browser tab on WebGPU and on
// multi-threaded WASM, TF.js in the same page as the peer, the adapter and browser named; results as a table
// and a chart, a download in `dapo bench --json`'s JSON-lines schema, and a compare view over saved files.
// Settings come from the query string (?size=quick|full|tiny or full=1, cases=matmul,generate,
// backends=webgpu,wasm, peers=0|1, threads=N, run=1 to start at once); the form reloads the page with new ones.
// A run's outcome lands in window.dapoBenchResult (a promise that never rejects), the compare view's in
// window.dapoCompare.
import { browserPlatform } from '../src/browser_engine.js';
import { BENCH_CASES, type BenchCaseName, type BenchSize, parseBenchSize, parseCaseNames } from '../src/bench/cases.js';
import { type BenchEnvironment, adapterName, benchEnvironment, browserFromUserAgent, osFromUserAgent } from '../src/bench/environment.js';
import { failureJson, recordJson } from '../src/bench/format.js';
import { type SuiteEvent, parseBackendNames, runSuite, sharedGpuPlatform } from '../src/bench/suite.js';
import { type BenchLineRecord, type BenchRun, compareTables, figureOf, parseBenchFile } from '../src/bench/compare.js';
import { browserTfjsLoader } from './bench_tfjs.js';

const PAGE_BACKENDS = ['webgpu', 'wasm'] as const;
const QUERY_KEYS = ['size', 'full', 'cases', 'backends', 'peers', 'threads', 'run'] as const;

interface PageSettings {
  size: BenchSize;
  cases: BenchCaseName[];
  backends: string[];
  peers: boolean;
  threads?: number;
  run: boolean;
}

export interface BenchPageResult {
  ok: boolean;
  settings: PageSettings | null;
  crossOriginIsolated: boolean;
  environment: BenchEnvironment | null;
  /** What the download holds: the environment line, then one line per record or failure. */
  lines: string[];
  records: number;
  failures: string[];
  /** The results chart was drawn. */
  chart: boolean;
  seconds: number;
  /** Wall seconds per "backend case" (our run and its TF.js peer), in run order. */
  caseSeconds: Record<string, number>;
  errors: string[];
}

export interface CompareSummary {
  runs: string[];
  tables: { op: string; rows: string[] }[];
  chart: boolean;
  errors: string[];
}

const byId = <E extends HTMLElement>(id: string) => document.getElementById(id) as E;
const errors: string[] = [];
addEventListener('error', (event) => errors.push(`page error: ${event.message}`));
addEventListener('unhandledrejection', (event) => errors.push(`unhandled rejection: ${String((event.reason as Error)?.stack ?? event.reason)}`));

/** Settings from the query string; every bad parameter is listed at once. */
function readSettings(params: URLSearchParams): PageSettings {
  const problems: string[] = [];
  for (const key of new Set(params.keys())) {
    if (!(QUERY_KEYS as readonly string[]).includes(key)) problems.push(`unknown query parameter '${key}' (allowed: ${QUERY_KEYS.join(', ')})`);
  }
  const flag = (key: string, fallback: boolean): boolean => {
    const text = params.get(key);
    if (text === null || text === '') return fallback;
    if (!['0', '1', 'true', 'false'].includes(text)) problems.push(`${key}: must be 1 or 0, got '${text}'`);
    return text === '1' || text === 'true';
  };
  const guard = <T>(read: () => T, fallback: T): T => {
    try {
      return read();
    } catch (e) {
      problems.push((e as Error).message);
      return fallback;
    }
  };
  let size: BenchSize = guard(() => parseBenchSize(params.get('size') ?? 'quick'), 'quick');
  if (flag('full', false)) {
    if (params.has('size') && size !== 'full') problems.push(`full=1 and size=${size} disagree (give one)`);
    size = 'full';
  }
  const cases = guard(() => parseCaseNames(params.getAll('cases')), [...BENCH_CASES]);
  const backends = guard(() => parseBackendNames(params.getAll('backends').length ? params.getAll('backends') : [...PAGE_BACKENDS]), [...PAGE_BACKENDS]);
  for (const b of backends) if (!(PAGE_BACKENDS as readonly string[]).includes(b)) problems.push(`backends: the page runs ${PAGE_BACKENDS.join(' and ')}, not '${b}'`);
  let threads: number | undefined;
  const threadsText = params.get('threads');
  if (threadsText !== null && threadsText !== '') {
    if (!/^[1-9]\d*$/.test(threadsText)) problems.push(`threads: must be a positive integer, got '${threadsText}'`);
    else threads = Number(threadsText);
  }
  const settings = { size, cases, backends, peers: flag('peers', true), threads, run: flag('run', false) };
  if (problems.length) throw new Error(`bad query parameters:\n  ${problems.join('\n  ')}`);
  return settings;
}

/** Fills the form from the settings; submitting reloads the page with the form's choices and run=1. */
function fillForm(settings: PageSettings): void {
  const form = byId<HTMLFormElement>('settings');
  (form.elements.namedItem('size') as HTMLSelectElement).value = settings.size;
  (form.elements.namedItem('peers') as HTMLInputElement).checked = settings.peers;
  const boxes = (fieldset: string, name: string, all: readonly string[], on: readonly string[]) => {
    const root = byId(fieldset);
    for (const value of all) {
      const label = document.createElement('label');
      const box = Object.assign(document.createElement('input'), { type: 'checkbox', name, value, checked: on.includes(value) });
      label.append(box, ` ${value} `);
      root.append(label);
    }
  };
  boxes('backends', 'backend', PAGE_BACKENDS, settings.backends);
  boxes('cases', 'case', BENCH_CASES, settings.cases);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const checked = (name: string) => [...form.querySelectorAll<HTMLInputElement>(`input[name=${name}]:checked`)].map((b) => b.value);
    const next = new URLSearchParams({ size: (form.elements.namedItem('size') as HTMLSelectElement).value });
    if (checked('case').length && checked('case').length < BENCH_CASES.length) next.set('cases', checked('case').join(','));
    if (checked('backend').length) next.set('backends', checked('backend').join(','));
    if (!(form.elements.namedItem('peers') as HTMLInputElement).checked) next.set('peers', '0');
    if (settings.threads) next.set('threads', String(settings.threads));
    next.set('run', '1');
    location.search = next.toString();
  });
}

/** Lets the browser paint between cases (MessageChannel: not throttled in background tabs like setTimeout). */
function yieldToBrowser(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });
}

/** Browser, OS and cores as the page can see them (userAgentData where the browser has it). */
async function hostFacts(): Promise<{ agent: string; os: string; user_agent: string; cpu_cores: number }> {
  type UAData = { brands?: { brand: string; version: string }[]; platform?: string; getHighEntropyValues?(hints: string[]): Promise<Record<string, unknown>> };
  const data = (navigator as Navigator & { userAgentData?: UAData }).userAgentData;
  let os = osFromUserAgent(navigator.userAgent, data?.platform || undefined);
  let brands = data?.brands ?? [];
  try {
    const high = await data?.getHighEntropyValues?.(['platformVersion', 'architecture', 'fullVersionList']);
    if (high) {
      os = [os, high.platformVersion, high.architecture].filter(Boolean).join(' ');
      if (Array.isArray(high.fullVersionList)) brands = high.fullVersionList as typeof brands;
    }
  } catch {
    // Hints refused: the low-entropy brand and platform stay.
  }
  return { agent: browserFromUserAgent(navigator.userAgent, brands), os, user_agent: navigator.userAgent, cpu_cores: navigator.hardwareConcurrency || 1 };
}

function showEnvironment(env: BenchEnvironment): void {
  const rows: [string, string][] = [
    ['browser', env.agent], ['OS', env.os], ['CPU cores', String(env.cpu_cores)],
    ['WASM threads', `${env.wasm_threads}${env.cross_origin_isolated ? ' (cross-origin isolated)' : ' (not cross-origin isolated: one thread)'}`],
  ];
  const a = env.adapter;
  if (!a) rows.push(['WebGPU adapter', 'not probed (no webgpu backend selected)']);
  else if ('error' in a) rows.push(['WebGPU adapter', `none: ${a.error}`]);
  else {
    rows.push(
      ['WebGPU adapter', `${adapterName(a)}${a.software ? ' — software rasterizer' : ''}${a.fallback ? ' (fallback adapter)' : ''}`],
      ['vendor / architecture', `${a.vendor || '—'} / ${a.architecture || '—'}`],
      ['feature level', a.feature_level],
      ['features', a.features.join(', ') || '—'],
      ...Object.entries(a.limits).map(([k, v]) => [k, String(v)] as [string, string]),
    );
  }
  rows.push(['user agent', env.user_agent ?? '']);
  const dl = byId('env');
  dl.replaceChildren(...rows.flatMap(([k, v]) => [Object.assign(document.createElement('dt'), { textContent: k }), Object.assign(document.createElement('dd'), { textContent: v })]));
}

function cell(text: string, numeric = false): HTMLTableCellElement {
  const td = document.createElement('td');
  td.textContent = text;
  if (numeric) td.className = 'num';
  return td;
}

const fmt = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2));

/** One results-table row per JSON line (the record as the download has it). */
function addResultRow(line: Record<string, unknown>): void {
  const body = byId<HTMLTableElement>('results').tBodies[0];
  byId('results').hidden = false;
  const tr = document.createElement('tr');
  const shape = Array.isArray(line.shape) ? (line.shape as number[]).join('×') : '';
  if ('error' in line) {
    tr.className = 'failure';
    tr.append(cell(String(line.op)), cell(shape), cell(String(line.backend)), cell('—'), cell(`failed: ${line.error}`), cell(''), cell(''));
  } else {
    const r = line as BenchLineRecord;
    const { unit, value } = figureOf(r);
    if (r.backend.startsWith('tfjs') || r.backend.startsWith('stated')) tr.className = 'peer';
    const known = new Set(['op', 'backend', 'shape', 'ms', 'gflops', 'gbps', 'tokens_per_s', 'vs', 'ratio']);
    const extras = Object.entries(r).filter(([k]) => !known.has(k)).map(([k, v]) => `${k}=${typeof v === 'number' ? fmt(v) : v}`).join(' ');
    tr.append(cell(r.op), cell(shape), cell(r.backend), cell(fmt(r.ms), true), cell(`${fmt(value)} ${unit}`, true),
      cell(r.vs ? `${fmt(r.ratio ?? NaN)}× ${r.vs}` : ''), cell(extras));
  }
  body.append(tr);
}

function clock(seconds: number): string {
  const whole = Math.round(seconds);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, '0')}`;
}

/** The download: the lines as a .jsonl file. */
function enableDownload(lines: readonly string[], env: BenchEnvironment): void {
  const button = byId<HTMLButtonElement>('download');
  button.disabled = false;
  button.onclick = () => {
    const link = document.createElement('a');
    link.href = URL.createObjectURL(new Blob([`${lines.join('\n')}\n`], { type: 'application/x-ndjson' }));
    const who = `${env.agent}-${env.os}`.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
    link.download = `dapo-bench-${who}-${env.size}.jsonl`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 0);
  };
}

let ownRun: BenchRun | null = null;
const loadedRuns: BenchRun[] = [];

async function runBenchmarks(settings: PageSettings, result: BenchPageResult): Promise<BenchPageResult> {
  const startedAt = performance.now();
  const status = byId('status');
  const bar = byId<HTMLProgressElement>('bar');
  byId<HTMLButtonElement>('run').disabled = true;
  const platform = sharedGpuPlatform(browserPlatform({ threads: settings.threads }));
  const env = await benchEnvironment(platform, await hostFacts(), { size: settings.size, cases: settings.cases, backends: settings.backends });
  result.environment = env;
  showEnvironment(env);
  const lines = result.lines;
  const push = (json: Record<string, unknown>) => {
    lines.push(JSON.stringify(json));
    byId('lines').textContent = `${lines.join('\n')}\n`;
    if (!('environment' in json)) addResultRow(json);
  };
  push({ environment: env });
  const onEvent = (event: SuiteEvent) => {
    if (event.kind === 'record') {
      push(recordJson(event.record, event.vs));
      result.records++;
    } else if (event.kind === 'failure') {
      push(failureJson(event.failure));
      result.failures.push(`${event.failure.op} ${event.failure.backend}: ${event.failure.error}`);
    }
  };
  let current: { key: string; since: number } | null = null;
  const closeCase = () => {
    if (current) result.caseSeconds[current.key] = (performance.now() - current.since) / 1000;
  };
  await runSuite({
    platform, backends: settings.backends, cases: settings.cases, size: settings.size, threads: settings.threads,
    loadPeer: settings.peers ? browserTfjsLoader(platform.wasmThreads) : undefined,
    emit: onEvent,
    progress: (p) => {
      const key = `${p.backend} ${p.case}`;
      if (p.stage === 'ours' && current?.key !== key) {
        closeCase();
        current = { key, since: performance.now() };
      }
      status.textContent = `${p.backend} · ${p.case}${p.stage === 'peer' ? ' (TF.js peer)' : ''} · case ${p.done + 1}/${p.total} · ${clock((performance.now() - startedAt) / 1000)}`;
      bar.value = p.total ? p.done / p.total : 0;
    },
    between: yieldToBrowser,
  });
  closeCase();
  enableDownload(lines, env);
  result.seconds = (performance.now() - startedAt) / 1000;
  status.textContent = `done · ${result.records} records${result.failures.length ? `, ${result.failures.length} failed` : ''} · ${clock(result.seconds)}`;
  bar.value = 1;
  ownRun = parseBenchFile(lines.join('\n'), 'this tab');
  const { benchComparePlot } = await import('../src/bench/compare_plot.js');
  byId('chart').innerHTML = await benchComparePlot([{ ...ownRun, label: 'this tab' }], `dapo bench in this tab (${settings.size}; higher is faster)`);
  result.chart = byId('chart').querySelector('svg') !== null;
  result.ok = true;
  byId<HTMLButtonElement>('run').disabled = false;
  if (loadedRuns.length) await showCompare();
  return result;
}

// ---------------------------------------------------------------------------------------------- compare view

/** Renders the tables (one per op: a row per machine/browser/backend) and the chart of every loaded run. */
async function renderCompare(): Promise<CompareSummary> {
  const runs = [...(ownRun ? [ownRun] : []), ...loadedRuns];
  const summary: CompareSummary = { runs: runs.map((r) => r.label), tables: [], chart: false, errors: [] };
  const root = byId('compare-tables');
  root.replaceChildren();
  byId('compare-chart').replaceChildren();
  if (!runs.length) return summary;
  for (const table of compareTables(runs)) {
    const heading = Object.assign(document.createElement('h3'), { textContent: `${table.op} — ${table.unit} (ms per run in parentheses)` });
    const el = document.createElement('table');
    el.dataset.op = table.op;
    const head = el.createTHead().insertRow();
    for (const text of ['machine · browser · backend', ...table.columns]) head.append(Object.assign(document.createElement('th'), { textContent: text }));
    const body = el.createTBody();
    for (const row of table.rows) {
      const tr = body.insertRow();
      tr.dataset.label = row.label;
      tr.append(cell(row.label), ...row.values.map((v, i) => cell(v === null ? '—' : `${fmt(v)} (${fmt(row.ms[i]!)} ms)`, true)));
    }
    root.append(heading, el);
    summary.tables.push({ op: table.op, rows: table.rows.map((r) => r.label) });
  }
  const { benchComparePlot } = await import('../src/bench/compare_plot.js');
  byId('compare-chart').innerHTML = await benchComparePlot(runs);
  summary.chart = byId('compare-chart').querySelector('svg') !== null;
  return summary;
}

function showCompare(): Promise<CompareSummary> {
  const done = renderCompare().catch((err: unknown) => {
    const message = String((err as Error)?.message ?? err);
    byId('compare-errors').textContent += `${message}\n`;
    return { runs: [], tables: [], chart: false, errors: [message] };
  });
  (globalThis as unknown as { dapoCompare: Promise<CompareSummary> }).dapoCompare = done;
  return done;
}

/** Reads the files; a file that does not parse is reported and left out, the others still load. */
async function addFiles(files: readonly File[]): Promise<CompareSummary> {
  const problems: string[] = [];
  for (const file of files) {
    try {
      const run = parseBenchFile(await file.text(), file.name);
      const same = loadedRuns.findIndex((r) => r.source === run.source);
      if (same >= 0) loadedRuns[same] = run; // loading a file again replaces it
      else loadedRuns.push(run);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  byId('compare-errors').textContent = problems.join('\n');
  const summary = await showCompare();
  summary.errors.unshift(...problems);
  return summary;
}

function setUpCompareInputs(): void {
  const input = byId<HTMLInputElement>('files');
  input.addEventListener('change', () => {
    const done = addFiles([...(input.files ?? [])]);
    (globalThis as unknown as { dapoCompare: Promise<CompareSummary> }).dapoCompare = done;
  });
  const drop = byId('drop');
  drop.addEventListener('dragover', (event) => { event.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    const done = addFiles([...(event.dataTransfer?.files ?? [])]);
    (globalThis as unknown as { dapoCompare: Promise<CompareSummary> }).dapoCompare = done;
  });
}

// ---------------------------------------------------------------------------------------------- start

function fail(result: BenchPageResult, err: unknown): BenchPageResult {
  const message = String((err as Error)?.stack ?? err);
  errors.push(message);
  byId('errors').textContent = (err as Error)?.message ?? message;
  byId('status').textContent = 'failed';
  byId<HTMLButtonElement>('run').disabled = false;
  return result;
}

const query = new URLSearchParams(location.search);
setUpCompareInputs();
const emptyResult = (settings: PageSettings | null): BenchPageResult => ({
  ok: false, settings, crossOriginIsolated: globalThis.crossOriginIsolated === true, environment: null,
  lines: [], records: 0, failures: [], chart: false, seconds: 0, caseSeconds: {}, errors,
});
let pageSettings: PageSettings | null = null;
try {
  pageSettings = readSettings(query);
  fillForm(pageSettings);
} catch (err) {
  (globalThis as unknown as { dapoBenchResult: Promise<BenchPageResult> }).dapoBenchResult = Promise.resolve(fail(emptyResult(null), err));
}
if (pageSettings) {
  const settings = pageSettings;
  // Name the machine before any run.
  hostFacts()
    .then((host) => benchEnvironment(browserPlatform({ threads: settings.threads }), host, { size: settings.size, cases: settings.cases, backends: settings.backends }))
    .then((env) => { if (!settings.run) showEnvironment(env); })
    .catch((err: unknown) => errors.push(`environment: ${String(err)}`));
  if (settings.run) {
    const result = emptyResult(settings);
    (globalThis as unknown as { dapoBenchResult: Promise<BenchPageResult> }).dapoBenchResult = runBenchmarks(settings, result).catch((err) => fail(result, err));
  }
}
