// The engine in real headless Chromium (Debian's, through playwright-core): a matmul and a backward pass on
// WebGPU and on WASM in the page, checked against the reference. Skipped without Chromium unless CI=true.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type BrowserContext } from 'playwright-core';

const CHROMIUM = process.env.DAPO_CHROMIUM ?? '/usr/bin/chromium';
const inCI = process.env.CI === 'true' || process.env.CI === '1';
const bundle = join(import.meta.dirname, '../dist/web/smoke.js');
const page = join(import.meta.dirname, '../web/smoke.html');
const missing = !existsSync(CHROMIUM) ? `no Chromium at ${CHROMIUM}` : !existsSync(bundle) ? `no page bundle at ${bundle} (run npm run build)` : null;
if (missing && inCI) throw new Error(`CI=true requires the browser test: ${missing}`);
if (missing) console.warn(`[skip] browser smoke test: ${missing}`);

describe.skipIf(missing !== null)('browser (headless Chromium)', () => {
  let server: Server;
  let browser: BrowserContext;
  let userDir: string;
  let origin: string;

  beforeAll(async () => {
    // Cross-origin isolation headers enable SharedArrayBuffer, hence WASM threads in the page.
    server = createServer((req, res) => {
      const file = req.url === '/smoke.js' ? bundle : req.url === '/' || req.url === '/smoke.html' ? page : null;
      if (!file) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, {
        'Content-Type': file.endsWith('.js') ? 'text/javascript' : 'text/html',
        'Cross-Origin-Opener-Policy': 'same-origin',
        'Cross-Origin-Embedder-Policy': 'require-corp',
      });
      res.end(readFileSync(file));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address();
    origin = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    userDir = mkdtempSync(join(tmpdir(), 'dapo-chromium-'));
    // Playwright owns the profile directory through launchPersistentContext.
    browser = await chromium.launchPersistentContext(userDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless=new', '--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--enable-unsafe-webgpu',
        // Mesa llvmpipe through ANGLE/GLES: a faster software adapter than SwiftShader, in compatibility mode.
        '--use-angle=gl-egl', '--use-webgpu-adapter=opengles', '--force-webgpu-compat',
      ],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => server?.close(r));
    if (userDir) rmSync(userDir, { recursive: true, force: true });
  });

  it('runs matmul + backward on WebGPU and WASM in the page, matching the reference', async () => {
    const tab = await browser.newPage();
    const logs: string[] = [];
    tab.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    tab.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    await tab.goto(`${origin}/smoke.html`);
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
