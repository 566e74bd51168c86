// Shared set-up of the browser tests: the page server users run (scripts/serve-web.mjs: cross-origin isolated,
// so WASM threads work in the page) and Debian's Chromium through playwright-core with the flags from DEVELOPERS.md.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
// @ts-expect-error -- a plain ESM script without type declarations
import { createWebServer } from '../../scripts/serve-web.mjs';

export const CHROMIUM = process.env.DAPO_CHROMIUM ?? '/usr/bin/chromium';
const inCI = process.env.CI === 'true' || process.env.CI === '1';

/** Why a browser test cannot run here (no Chromium, page bundle not built), or null. Throws under CI=true. */
export function browserTestMissing(what: string, bundle: string): string | null {
  const missing = !existsSync(CHROMIUM) ? `no Chromium at ${CHROMIUM}` : !existsSync(bundle) ? `no page bundle at ${bundle} (run npm run build)` : null;
  if (missing && inCI) throw new Error(`CI=true requires the ${what}: ${missing}`);
  if (missing) console.warn(`[skip] ${what}: ${missing}`);
  return missing;
}

export interface BrowserSession {
  /** http://127.0.0.1:<port> serving web/*.html and dist/web/*.js. */
  origin: string;
  browser: BrowserContext;
  close(): Promise<void>;
}

export async function startBrowserSession(): Promise<BrowserSession> {
  const server = createWebServer() as Server;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const origin = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  const userDir = mkdtempSync(join(tmpdir(), 'dapo-chromium-'));
  // Playwright owns the profile directory through launchPersistentContext.
  const browser = await chromium.launchPersistentContext(userDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless=new', '--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--enable-unsafe-webgpu',
      // Mesa llvmpipe through ANGLE/GLES: a faster software adapter than SwiftShader, in compatibility mode.
      '--use-angle=gl-egl', '--use-webgpu-adapter=opengles', '--force-webgpu-compat',
    ],
  });
  return {
    origin, browser,
    async close() {
      await browser.close();
      await new Promise((r) => server.close(r));
      rmSync(userDir, { recursive: true, force: true });
    },
  };
}

/** A page with its console output and uncaught errors collected as "type: text" lines. */
export async function openTab(browser: BrowserContext): Promise<{ tab: Page; logs: string[] }> {
  const tab = await browser.newPage();
  const logs: string[] = [];
  tab.on('console', (message) => logs.push(`${message.type()}: ${message.text()}`));
  tab.on('pageerror', (error) => logs.push(`pageerror: ${error.message}`));
  return { tab, logs };
}

/**
 * One browser session for the enclosing describe block: started in its beforeAll, closed in its afterAll.
 * Read origin and browser inside the tests, once the session has started.
 */
export function useBrowserSession(): Pick<BrowserSession, 'origin' | 'browser'> {
  let session: BrowserSession | undefined;
  beforeAll(async () => {
    session = await startBrowserSession();
  });
  afterAll(async () => {
    await session?.close();
  });
  const started = (): BrowserSession => {
    if (!session) throw new Error('the browser session starts in beforeAll; use it inside a test');
    return session;
  };
  return {
    get origin() { return started().origin; },
    get browser() { return started().browser; },
  };
}

/** With DAPO_SCREENSHOT_DIR set, saves a full-page screenshot of the tab as <dir>/<name>.png (the README's pictures
 *  come from the browser tests themselves); otherwise does nothing. */
export async function saveScreenshot(tab: Page, name: string): Promise<void> {
  const dir = process.env.DAPO_SCREENSHOT_DIR;
  if (dir) await tab.screenshot({ path: join(dir, `${name}.png`), fullPage: true });
}
