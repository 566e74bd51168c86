// The training page (web/train.html) in real headless Chromium: SFT → DAPO → eval of the quick config on WASM and on
// WebGPU in the tab, through the same server script users run (scripts/serve-web.mjs, cross-origin isolated).
// Skipped without Chromium or the page bundle unless CI=true.
import { describe, expect, it } from 'vitest';
import { browserTestMissing, openTab, useBrowserSession } from '../support/chromium.js';
import { repoPath } from '../support/paths.js';

const missing = browserTestMissing('browser training test', repoPath('dist/web/train.js'));

/** What web/train.ts puts in window.dapoResult (the fields checked here). */
interface PageResult {
  ok: boolean;
  stopped: boolean;
  requested: string;
  backend: string | null;
  crossOriginIsolated: boolean;
  preset: string;
  config: { rl: { steps: number }; sft: { steps: number }; eval: { every: number } } | null;
  sftSteps: number;
  metrics: Record<string, unknown>[];
  metricsCount: number;
  evals: { step: number; phase: string; accuracy: number; n: number }[];
  sftAccuracy: number | null;
  finalAccuracy: number | null;
  panels: number;
  errors: string[];
}

const PAGE_TIMEOUT_MS = 100_000;

/** ?quick=1 made smaller for the test, so it takes seconds on WASM (about half a minute on a software WebGPU
 *  adapter) instead of the preset's half minute of learning: a 1-layer policy, 50 SFT steps, 4 RL steps. A smoke
 *  run of the pipeline, not of learning: its short warm-up leaves the policy rarely right, just often enough that
 *  groups of 8 are mixed and the DAPO steps have something to train on. */
const SMALL_QUICK = ['quick=1', ...[
  'model.dModel=64', 'model.nLayers=1', 'model.ffnDim=128', 'model.maxSeqLen=32',
  'sft.steps=50', 'sft.batchSize=64', 'sft.lr=1e-2', 'sft.warmupSteps=5',
  'rl.steps=4', 'rl.promptsPerStep=4', 'rl.maxNewTokens=12', 'rl.microBatchSize=32', 'rl.lr=3e-4',
  'eval.every=2', 'eval.problems=16', 'checkpoint.every=2',
].map((override) => `set=${override}`)].join('&');

describe.skipIf(missing !== null)('training page (headless Chromium)', () => {
  const session = useBrowserSession();

  async function openPage(query: string): Promise<{ result: PageResult; logs: string[]; svgs: number; summary: string; figures: string[] }> {
    const { tab, logs } = await openTab(session.browser);
    try {
      await tab.goto(`${session.origin}/train.html?${query}`);
      await tab.waitForFunction(() => 'dapoResult' in globalThis, undefined, { timeout: 20_000 });
      const result = await Promise.race([
        tab.evaluate(() => (globalThis as unknown as { dapoResult: Promise<unknown> }).dapoResult) as Promise<PageResult>,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no dapoResult within ${PAGE_TIMEOUT_MS} ms\n${logs.join('\n')}`)), PAGE_TIMEOUT_MS)),
      ]);
      const svgs = await tab.locator('#panels figure > svg').count();
      const figures = await tab.locator('#panels figure').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.panel ?? ''));
      const summary = (await tab.locator('#summary').textContent()) ?? '';
      return { result, logs, svgs, summary, figures };
    } finally {
      await tab.close();
    }
  }

  function checkRun(backend: 'wasm' | 'webgpu', out: Awaited<ReturnType<typeof openPage>>): void {
    const { result, logs } = out;
    const context = `${backend}: ${result.errors.join('\n')}\n${logs.join('\n')}`;
    expect(result.errors, context).toEqual([]);
    expect(logs.filter((l) => l.startsWith('pageerror') || l.startsWith('error')), context).toEqual([]);
    expect(result.ok, context).toBe(true);
    expect(result.stopped).toBe(false);
    expect(result.requested).toBe(backend);
    expect(result.backend, 'the page runs on the backend asked for').toBe(backend);
    expect(result.crossOriginIsolated).toBe(true);
    expect(result.preset).toBe('quick');

    const c = result.config!;
    expect(result.sftSteps).toBe(c.sft.steps);
    // One metrics line per RL step, in order, with finite losses.
    expect(result.metricsCount).toBe(c.rl.steps);
    expect(result.metrics.map((m) => m.step)).toEqual(Array.from({ length: c.rl.steps }, (_, i) => i + 1));
    for (const m of result.metrics) {
      for (const key of ['reward_mean', 'accuracy', 'response_length_mean', 'step_time_s']) {
        expect(Number.isFinite(m[key] as number), `${backend} step ${m.step}: ${key} = ${m[key]}`).toBe(true);
      }
      // A step with nothing to train on (every group all-right or all-wrong) has no loss; the others must be finite.
      if (!m.skipped) {
        for (const key of ['policy_loss', 'entropy', 'grad_norm']) {
          expect(Number.isFinite(m[key] as number), `${backend} step ${m.step}: ${key} = ${m[key]}`).toBe(true);
        }
      }
    }
    // The quick config is seeded so that groups are mixed: DAPO updates really run in the page.
    expect(result.metrics.some((m) => !m.skipped), `${backend}: every RL step was skipped`).toBe(true);
    // Held-out evaluation after SFT (step 0), every eval.every steps, and at the end.
    const phases = result.evals.map((e) => `${e.phase}@${e.step}`);
    expect(phases[0]).toBe('sft@0');
    expect(phases.at(-1)).toBe(`final@${c.rl.steps}`);
    for (const e of result.evals) {
      expect(e.accuracy).toBeGreaterThanOrEqual(0);
      expect(e.accuracy).toBeLessThanOrEqual(1);
    }
    expect(result.sftAccuracy).toBe(result.evals[0].accuracy);
    expect(result.finalAccuracy).toBe(result.evals.at(-1)!.accuracy);

    // The SFT loss panel and the seven DAPO panels, as inline SVG.
    expect(out.figures).toEqual(['sft_loss', 'policy_loss', 'entropy_loss', 'reward', 'entropy', 'resample_rate', 'response_length', 'accuracy']);
    expect(out.svgs).toBe(8);
    expect(result.panels).toBe(8);
    expect(out.summary).toContain('held-out greedy accuracy');
    expect(out.summary, 'the change after SFT, in points').toMatch(/SFT \d+\.\d% → DAPO \d+\.\d%, [+\-±]\d+\.\d pts/);
    expect(out.summary).toContain(backend);
  }

  it('trains a small quick config on WASM in the page', async () => {
    const out = await openPage(`${SMALL_QUICK}&backend=wasm`);
    console.log(`wasm: ${out.summary}`);
    checkRun('wasm', out);
  }, PAGE_TIMEOUT_MS + 30_000);

  it('trains a small quick config on WebGPU in the page', async () => {
    const out = await openPage(`${SMALL_QUICK}&backend=webgpu`);
    console.log(`webgpu: ${out.summary}`);
    checkRun('webgpu', out);
  }, PAGE_TIMEOUT_MS + 30_000);

  it('lists every bad query parameter at once', async () => {
    const { result } = await openPage('backend=cuda&quick=2&bogus=1&seed=-1&set=rl.epsHihg=0.3');
    expect(result.ok).toBe(false);
    const message = result.errors.join('\n');
    for (const part of ["unknown query parameter 'bogus'", "backend: must be one of auto, webgpu, wasm, got 'cuda'", "quick: must be 1 or 0, got '2'", "seed: must be a non-negative integer, got '-1'", 'rl.epsHihg']) {
      expect(message).toContain(part);
    }
  }, 30_000);

  it('reports config problems from ?set= with their dotted keys', async () => {
    const { result } = await openPage('quick=1&backend=wasm&set=rl.epsHihg=0.3&set=rl.groupSize=0');
    expect(result.ok).toBe(false);
    const message = result.errors.join('\n');
    expect(message).toContain('rl.epsHihg');
    expect(message).toContain('rl.groupSize');
    expect(result.metricsCount).toBe(0);
  }, 30_000);
});
