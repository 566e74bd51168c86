// The engine in real headless Chromium (Debian's, through playwright-core): a matmul and a backward pass on
// WebGPU and on WASM in the page, checked against the reference. Skipped without Chromium unless CI=true.
import { describe, expect, it } from 'vitest';
import { browserTestMissing, openTab, useBrowserSession } from '../support/chromium.js';
import { repoPath } from '../support/paths.js';

const missing = browserTestMissing('browser smoke test', repoPath('dist/web/smoke.js'));

describe.skipIf(missing !== null)('browser (headless Chromium)', () => {
  const session = useBrowserSession();

  it('runs matmul + backward on WebGPU and WASM in the page, matching the reference', async () => {
    const { tab, logs } = await openTab(session.browser);
    await tab.goto(`${session.origin}/smoke.html`);
    const handle = await tab.waitForFunction(() => (globalThis as unknown as { __smoke?: unknown }).__smoke, undefined, { timeout: 90_000 });
    const result = (await handle.jsonValue()) as { fatal?: string; crossOriginIsolated: boolean; outcomes: { backend: string; ok: boolean; error?: string; maxError?: number; detail: Record<string, unknown> }[] };
    console.log(JSON.stringify(result, null, 1));
    expect(result.fatal, logs.join('\n')).toBeUndefined();
    expect(result.crossOriginIsolated).toBe(true);
    for (const o of result.outcomes) {
      expect(o.ok, `${o.backend}: ${o.error ?? `max error ${o.maxError}`}\n${logs.join('\n')}`).toBe(true);
    }
    expect(result.outcomes.map((o) => o.backend)).toEqual(['webgpu', 'wasm']);
    const wasm = result.outcomes.find((o) => o.backend === 'wasm')!;
    expect(Number(wasm.detail.threads)).toBeGreaterThan(1);
  });
});
