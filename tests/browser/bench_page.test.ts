// The bench page (web/bench.html) in real headless Chromium, through the server users run: every bench case at
// the tiny size (?size=tiny) on threaded WASM with the tfjs-wasm peer and on WebGPU, each producing JSON lines in
// `dapo bench --json`'s schema (and the download holding exactly those lines); the compare view rendering two
// saved files side by side. Skipped without Chromium or the page bundle unless CI=true.
import { existsSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { describe, expect, it } from 'vitest';
// @ts-expect-error -- a plain ESM script without type declarations
import { createWebServer, resolveWebPath } from '../../scripts/serve-web.mjs';
import { browserTestMissing, openTab, useBrowserSession } from '../support/chromium.js';
import { repoPath } from '../support/paths.js';
import { CASE_OPS, expectRecordLine } from '../support/bench_lines.js';

const missing = browserTestMissing('browser bench page test', repoPath('dist/web/bench.js'));

/** What web/bench.ts puts in window.dapoBenchResult (the fields checked here). */
interface BenchPageResult {
  ok: boolean;
  crossOriginIsolated: boolean;
  lines: string[];
  records: number;
  failures: string[];
  chart: boolean;
  seconds: number;
  caseSeconds: Record<string, number>;
  errors: string[];
}

interface CompareSummary {
  runs: string[];
  tables: { op: string; rows: string[] }[];
  chart: boolean;
  errors: string[];
}

const RUN_TIMEOUT_MS = 240_000;

describe('serving TF.js\'s WASM binaries to the bench page', () => {
  it('maps /tfjs/<name>.wasm into the tfjs-backend-wasm package and nothing else', () => {
    const threaded = resolveWebPath('/tfjs/tfjs-backend-wasm-threaded-simd.wasm') as string;
    expect(threaded).toMatch(/node_modules\/@tensorflow\/tfjs-backend-wasm\/dist\/tfjs-backend-wasm-threaded-simd\.wasm$/);
    expect(existsSync(threaded)).toBe(true);
    for (const bad of ['/tfjs/../package.json', '/tfjs/%2e%2e/x.wasm', '/tfjs/other.wasm', '/tfjs/tfjs-backend-wasm.js', '/node_modules/x.wasm']) {
      expect(resolveWebPath(bad), bad).toBeNull();
    }
  });

  it('sends them as application/wasm with the cross-origin isolation headers', async () => {
    const server = createWebServer() as Server;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as { port: number };
      const res = await fetch(`http://127.0.0.1:${port}/tfjs/tfjs-backend-wasm-simd.wasm`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/wasm');
      expect(res.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
      const bytes = new Uint8Array(await res.arrayBuffer());
      expect([...bytes.subarray(0, 4)]).toEqual([0, 0x61, 0x73, 0x6d]); // \0asm
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe.skipIf(missing !== null)('bench page (headless Chromium)', () => {
  const session = useBrowserSession();

  async function runPage(query: string): Promise<{ result: BenchPageResult; logs: string[]; download: string; tableRows: number }> {
    const { tab, logs } = await openTab(session.browser);
    try {
      await tab.goto(`${session.origin}/bench.html?${query}`);
      await tab.waitForFunction(() => 'dapoBenchResult' in globalThis, undefined, { timeout: 20_000 });
      const result = await Promise.race([
        tab.evaluate(() => (globalThis as unknown as { dapoBenchResult: Promise<unknown> }).dapoBenchResult) as Promise<BenchPageResult>,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no dapoBenchResult within ${RUN_TIMEOUT_MS} ms\n${logs.join('\n')}`)), RUN_TIMEOUT_MS)),
      ]);
      let download = '';
      if (result.ok) {
        const [file] = await Promise.all([tab.waitForEvent('download'), tab.click('#download')]);
        download = readFileSync((await file.path())!, 'utf8');
      }
      const tableRows = await tab.locator('#results tbody tr').count();
      return { result, logs, download, tableRows };
    } finally {
      await tab.close();
    }
  }

  /** Every line parses; the environment first; then a record of every op of every case on `ours`, no failures. */
  function checkRun(out: Awaited<ReturnType<typeof runPage>>, ours: RegExp): Record<string, unknown>[] {
    const { result, logs } = out;
    const context = `${result.errors.join('\n')}\n${result.failures.join('\n')}\n${logs.join('\n')}`;
    expect(result.errors, context).toEqual([]);
    expect(logs.filter((l) => l.startsWith('pageerror') || l.startsWith('error')), context).toEqual([]);
    expect(result.ok, context).toBe(true);
    expect(result.failures, context).toEqual([]);
    expect(result.crossOriginIsolated).toBe(true);
    expect(out.download, 'the download holds exactly the lines of the run').toBe(`${result.lines.join('\n')}\n`);

    const [envLine, ...recordLines] = result.lines;
    const { environment } = JSON.parse(envLine);
    expect(environment).toMatchObject({ runtime: 'browser', size: 'tiny', cases: Object.keys(CASE_OPS), cross_origin_isolated: true });
    expect(environment.agent).toMatch(/Chrom/);
    expect(environment.os).toMatch(/Linux/);
    expect(environment.cpu_cores).toBeGreaterThan(0);
    expect(environment.user_agent).toContain('Mozilla');
    expect(typeof environment.label).toBe('string');

    const records = recordLines.map(expectRecordLine);
    expect(records).toHaveLength(result.records);
    expect(out.tableRows, 'a table row per record').toBe(records.length);
    expect(result.chart, 'the results chart is drawn').toBe(true);
    expect(Object.keys(result.caseSeconds).map((k) => k.split(' ')[1]), 'a wall time per case').toEqual(Object.keys(CASE_OPS));
    for (const [name, ops] of Object.entries(CASE_OPS)) {
      for (const op of ops) expect(records.some((r) => r.op === op && ours.test(r.backend as string)), `${name}: no ${op} record on ${ours}`).toBe(true);
    }
    return [environment, ...records];
  }

  it('runs every case on threaded WASM with the tfjs-wasm peer, as JSON lines in the dapo bench schema', async () => {
    const out = await runPage('size=tiny&backends=wasm&run=1');
    console.log(`wasm: ${out.result.records} records in ${out.result.seconds.toFixed(1)} s ${JSON.stringify(out.result.caseSeconds)}`);
    const [environment, ...records] = checkRun(out, /^wasm-\d+t$/);
    expect((environment as { wasm_threads: number }).wasm_threads).toBeGreaterThan(1);
    // Threads in the page: our label says how many.
    expect(Number(/^wasm-(\d+)t$/.exec(records[0].backend as string)![1])).toBeGreaterThan(1);
    // TF.js (threaded wasm, binaries served under /tfjs/) next to ours in every case it has a counterpart for.
    for (const op of ['matmul', 'attention_fwd', 'attention_bwd', 'softmax_gather_fwd', 'softmax_gather_bwd', 'matmul_train']) {
      const mine = records.find((r) => r.op === op && r.backend !== 'tfjs-wasm')!;
      expect(mine.vs, op).toBe('tfjs-wasm');
      expect(records.some((r) => r.op === op && r.backend === 'tfjs-wasm'), op).toBe(true);
    }
  }, RUN_TIMEOUT_MS + 30_000);

  it('runs every case on WebGPU and names the adapter', async () => {
    // No TF.js peer here: compiling its pipelines on a software adapter doubles the time.
    const out = await runPage('size=tiny&backends=webgpu&peers=0&run=1');
    console.log(`webgpu: ${out.result.records} records in ${out.result.seconds.toFixed(1)} s ${JSON.stringify(out.result.caseSeconds)}`);
    const [environment] = checkRun(out, /^webgpu$/);
    const adapter = (environment as { adapter: Record<string, unknown> }).adapter;
    expect(adapter.feature_level).toMatch(/^(core|compatibility)$/);
    expect(Array.isArray(adapter.features)).toBe(true);
    expect((adapter.limits as Record<string, number>).maxComputeInvocationsPerWorkgroup).toBeGreaterThan(0);
  }, RUN_TIMEOUT_MS + 30_000);

  it('compare view: two files side by side (a table per op with rows from both, and the chart); a bad file is named', async () => {
    const file = (label: string, scale: number) => [
      JSON.stringify({ environment: { runtime: 'browser', label, agent: label, os: 'test', cpu_cores: 4, wasm_threads: 4, size: 'quick', cases: ['matmul', 'generate'], backends: ['webgpu', 'wasm'], date: '2026-12-01T00:00:00.000Z' } }),
      JSON.stringify({ op: 'matmul', backend: 'webgpu', shape: [256, 256, 256], ms: 1 / scale, gflops: 33 * scale, vs: 'tfjs-webgpu', ratio: 2 }),
      JSON.stringify({ op: 'matmul', backend: 'tfjs-webgpu', shape: [256, 256, 256], ms: 2 / scale, gflops: 16.7 * scale }),
      JSON.stringify({ op: 'matmul', backend: 'wasm-4t', shape: [512, 512, 512], ms: 3 / scale, gflops: 89 * scale }),
      JSON.stringify({ op: 'generate', backend: 'wasm-4t', shape: [4, 12, 8], ms: 20 / scale, tokens_per_s: 1600 * scale }),
      '',
    ].join('\n');
    const { tab, logs } = await openTab(session.browser);
    try {
      await tab.goto(`${session.origin}/bench.html`);
      await tab.setInputFiles('#files', [
        { name: 'laptop.jsonl', mimeType: 'application/x-ndjson', buffer: Buffer.from(file('Laptop · Chrome 131 · Apple M2', 1)) },
        { name: 'desktop.jsonl', mimeType: 'application/x-ndjson', buffer: Buffer.from(file('Desktop · Firefox 133 · RTX 4090', 3)) },
        { name: 'broken.jsonl', mimeType: 'application/x-ndjson', buffer: Buffer.from('{"op":"matmul"}\n') },
      ]);
      await tab.waitForFunction(() => 'dapoCompare' in globalThis, undefined, { timeout: 20_000 });
      const summary = (await tab.evaluate(() => (globalThis as unknown as { dapoCompare: Promise<unknown> }).dapoCompare)) as CompareSummary;
      const context = `${summary.errors.join('\n')}\n${logs.join('\n')}`;
      expect(summary.runs, context).toEqual(['Laptop · Chrome 131 · Apple M2', 'Desktop · Firefox 133 · RTX 4090']);
      expect(summary.tables.map((t) => t.op)).toEqual(['matmul', 'generate']);
      expect(summary.tables[0].rows).toEqual([
        'Laptop · Chrome 131 · Apple M2 · webgpu', 'Laptop · Chrome 131 · Apple M2 · tfjs-webgpu', 'Laptop · Chrome 131 · Apple M2 · wasm-4t',
        'Desktop · Firefox 133 · RTX 4090 · webgpu', 'Desktop · Firefox 133 · RTX 4090 · tfjs-webgpu', 'Desktop · Firefox 133 · RTX 4090 · wasm-4t',
      ]);
      expect(summary.chart).toBe(true);
      expect(summary.errors).toHaveLength(1);
      expect(summary.errors[0]).toContain('broken.jsonl:1');
      // The DOM: a table per op, a row per machine and backend, the figures in the cells, the chart as SVG.
      expect(await tab.locator('#compare-tables table').count()).toBe(2);
      const matmulRows = tab.locator('#compare-tables table[data-op="matmul"] tbody tr');
      expect(await matmulRows.count()).toBe(6);
      expect(await matmulRows.nth(3).textContent()).toContain('99.0 (0.33 ms)'); // 33 × 3 GFLOP/s
      expect(await tab.locator('#compare-chart svg').count()).toBe(1);
      expect(await tab.locator('#compare-chart svg').textContent()).toContain('Desktop · Firefox 133 · RTX 4090 · webgpu');
      expect(await tab.locator('#compare-errors').textContent()).toContain('broken.jsonl:1');
    } finally {
      await tab.close();
    }
  }, 60_000);

  it('lists every bad query parameter at once', async () => {
    const { tab } = await openTab(session.browser);
    try {
      await tab.goto(`${session.origin}/bench.html?size=huge&cases=matmul,flash&backends=cuda&peers=2&bogus=1&run=1`);
      await tab.waitForFunction(() => 'dapoBenchResult' in globalThis, undefined, { timeout: 20_000 });
      const result = (await tab.evaluate(() => (globalThis as unknown as { dapoBenchResult: Promise<unknown> }).dapoBenchResult)) as BenchPageResult;
      expect(result.ok).toBe(false);
      const message = result.errors.join('\n');
      for (const part of ["unknown query parameter 'bogus'", "unknown size 'huge'", "unknown case 'flash'", "unknown backend 'cuda'", "peers: must be 1 or 0, got '2'"]) {
        expect(message).toContain(part);
      }
      expect(await tab.locator('#errors').textContent()).toContain("unknown size 'huge'");
    } finally {
      await tab.close();
    }
  }, 30_000);
});
