// Browser smoke test page: the same engine (src/) in a tab. Runs a matmul and a backward pass on WebGPU and
// on WASM and checks both against the float64 reference; the result lands in window.__smoke.
import type { Backend } from '../src/backend/backend.js';
import { ReferenceBackend } from '../src/backend/reference/reference_backend.js';
import { createBackend } from '../src/backend/select.js';
import { browserPlatform } from '../src/browser_engine.js';
import { backward, setBackend, tidy } from '../src/tensor/index.js';
import * as T from '../src/tensor/index.js';

interface Outcome {
  backend: string;
  ok: boolean;
  detail: Record<string, unknown>;
  maxError?: number;
  error?: string;
}

async function compute(backend: Backend): Promise<{ out: number[]; ga: number[]; gb: number[] }> {
  setBackend(backend);
  const a = T.randUniform([37, 53], 11, -1, 1).requireGrad();
  const b = T.randUniform([53, 29], 12, -1, 1).requireGrad();
  const out = tidy(() => T.matmul(a, b));
  const loss = tidy(() => T.sum(T.tanh(T.matmul(a, b, {}))));
  backward(loss);
  const result = { out: await out.toArray(), ga: await a.grad!.toArray(), gb: await b.grad!.toArray() };
  for (const t of [a, b, out, loss]) t.dispose();
  return result;
}

function maxError(x: number[], y: number[]): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]) / (1 + Math.abs(y[i])));
  return m;
}

async function main(): Promise<void> {
  const want = await compute(new ReferenceBackend());
  const outcomes: Outcome[] = [];
  const platform = browserPlatform();
  for (const choice of ['webgpu', 'wasm'] as const) {
    try {
      const { backend } = await createBackend(choice, platform);
      const got = await compute(backend);
      const err = Math.max(maxError(got.out, want.out), maxError(got.ga, want.ga), maxError(got.gb, want.gb));
      outcomes.push({ backend: choice, ok: err < 1e-3, maxError: err, detail: backend.describe() });
      backend.destroy();
    } catch (e) {
      outcomes.push({ backend: choice, ok: false, detail: {}, error: String((e as Error).stack ?? e) });
    }
  }
  (globalThis as unknown as { __smoke: unknown }).__smoke = { crossOriginIsolated: globalThis.crossOriginIsolated, outcomes };
  document.body.textContent = JSON.stringify(outcomes, null, 2);
}

main().catch((e) => {
  (globalThis as unknown as { __smoke: unknown }).__smoke = { fatal: String((e as Error).stack ?? e) };
});
