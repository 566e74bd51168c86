// The relaxed-SIMD engine build (build/engine_relaxed.wasm: f32x4.relaxed_madd in the matmul micro-kernel) and its
// choice at run time. In this process: the probe, the choice rules, the fallback to the plain build where the runtime
// lacks relaxed SIMD, and forcing. In a child `node --experimental-wasm-relaxed-simd` (Node 20 ships relaxed SIMD
// behind that flag; Node ≥ 22 and Chromium ≥ 114 have it on), through the built dist/: the relaxed build is picked,
// can be forced off, runs on unshared memory too, and its matmul matches the float64 reference on odd shapes (1 and 2 threads), with the LoRA
// epilogue equal bit for bit to matmul + lowRankAdd on that build.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { ENGINE_WASM_BASE64 } from '../../src/backend/wasm/engine_wasm.gen.js';
import { ENGINE_WASM_RELAXED_BASE64 } from '../../src/backend/wasm/engine_wasm_relaxed.gen.js';
import { hasRelaxedSimd, wasmFeatures } from '../../src/backend/wasm/features.js';
import { decodeBase64 } from '../../src/backend/wasm/wasm_binary.js';
import { createWasmBackend, useRelaxedSimd } from '../../src/backend/wasm/wasm_backend.js';
import { repoPath } from '../support/paths.js';

const run = promisify(execFile);

/** Occurrences of the f32x4.relaxed_madd opcode (0xfd 0x105) in a binary. */
function relaxedMadds(bytes: Uint8Array): number {
  let count = 0;
  for (let i = 0; i + 2 < bytes.length; i++) if (bytes[i] === 0xfd && bytes[i + 1] === 0x85 && bytes[i + 2] === 0x02) count++;
  return count;
}

describe('relaxed SIMD engine build: choice in this process', () => {
  const saved = process.env.DAPO_WASM_RELAXED;
  afterEach(() => {
    if (saved === undefined) delete process.env.DAPO_WASM_RELAXED;
    else process.env.DAPO_WASM_RELAXED = saved;
  });

  it('the relaxed build uses relaxed_madd (the plain one does not), and validates exactly where the probe says so', async () => {
    const plain = decodeBase64(ENGINE_WASM_BASE64);
    const relaxed = decodeBase64(ENGINE_WASM_RELAXED_BASE64);
    expect(relaxedMadds(plain)).toBe(0);
    expect(relaxedMadds(relaxed)).toBeGreaterThanOrEqual(8); // the 8 accumulators of micro()'s k loop
    expect(WebAssembly.validate(plain as BufferSource)).toBe(true);
    expect(WebAssembly.validate(relaxed as BufferSource)).toBe(hasRelaxedSimd());
    expect((await wasmFeatures()).relaxedSimd).toBe(hasRelaxedSimd());
  });

  it('the choice: the option first, then DAPO_WASM_RELAXED=0/false/off/no, then what the runtime has', () => {
    expect(useRelaxedSimd(undefined, undefined, true)).toBe(true);
    expect(useRelaxedSimd(undefined, undefined, false)).toBe(false);
    for (const off of ['0', 'false', 'OFF', ' no ']) expect(useRelaxedSimd(undefined, off, true), off).toBe(false);
    expect(useRelaxedSimd(undefined, '1', true)).toBe(true);
    expect(useRelaxedSimd(undefined, '1', false)).toBe(false);
    expect(useRelaxedSimd(false, undefined, true)).toBe(false);
    expect(useRelaxedSimd(true, '0', true)).toBe(true);
    expect(() => useRelaxedSimd(true, undefined, false)).toThrow(/no relaxed SIMD.*--experimental-wasm-relaxed-simd/);
  });

  it('the backend runs the build the runtime has, falls back to the plain one, and can be forced to it', async () => {
    delete process.env.DAPO_WASM_RELAXED;
    const auto = await createWasmBackend({ threads: 1 });
    expect(auto.describe().relaxedSimd).toBe(hasRelaxedSimd());
    const forced = await createWasmBackend({ threads: 1, relaxedSimd: false });
    expect(forced.describe().relaxedSimd).toBe(false);
    process.env.DAPO_WASM_RELAXED = '0';
    expect((await createWasmBackend({ threads: 1 })).describe().relaxedSimd).toBe(false);
    if (!hasRelaxedSimd()) await expect(createWasmBackend({ threads: 1, relaxedSimd: true })).rejects.toThrow(/no relaxed SIMD/);
  });
});

// The child's script: ESM importing the built backend, printing one JSON line.
const CHILD = (dist: string) => `
import { createWasmBackend } from ${JSON.stringify(`${dist}/src/backend/wasm/wasm_backend.js`)};
import { hasRelaxedSimd } from ${JSON.stringify(`${dist}/src/backend/wasm/features.js`)};
import { nodeWorkerFactory } from ${JSON.stringify(`${dist}/src/backend/wasm/node_workers.js`)};
let seed = 7;
const rand = (n) => Float32Array.from({ length: n }, () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 2 ** 31 - 1; });
const out = { probe: hasRelaxedSimd(), auto: null, forcedOff: null, envOff: null, worst: 0, cases: 0, loraEqual: true, differsFromPlain: false };
out.auto = (await createWasmBackend({ threads: 1 })).describe().relaxedSimd;
out.forcedOff = (await createWasmBackend({ threads: 1, relaxedSimd: false })).describe().relaxedSimd;
process.env.DAPO_WASM_RELAXED = '0';
out.envOff = (await createWasmBackend({ threads: 1 })).describe().relaxedSimd;
delete process.env.DAPO_WASM_RELAXED;
const plain = await createWasmBackend({ threads: 1, relaxedSimd: false });
for (const threads of [1, 2]) {
  const b = await createWasmBackend({ threads, relaxedSimd: true, workerFactory: threads > 1 ? nodeWorkerFactory() : undefined });
  if (!b.describe().relaxedSimd) throw new Error('relaxedSimd: true did not run the relaxed build');
  // m > 16 takes the packed path (micro()); k > 256 crosses a KC block; n, m not multiples of NR, MR
  for (const [m, n, k] of [[17, 9, 5], [37, 29, 61], [67, 45, 300], [130, 70, 259]]) {
    for (const transA of [false, true]) for (const transB of [false, true]) {
      const a = rand(m * k), w = rand(k * n);
      const args = { batch: 1, m, n, k, transA, transB, strideA: 0, strideB: 0 };
      const run = async (be) => {
        const sa = be.upload('float32', a), sw = be.upload('float32', w), so = be.alloc('float32', m * n);
        be.matmul(sa, sw, so, args);
        const r = await be.read(so);
        be.free(sa); be.free(sw); be.free(so);
        return r;
      };
      const got = await run(b);
      const base = await run(plain);
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += (transA ? a[p * m + i] : a[i * k + p]) * (transB ? w[j * k + p] : w[p * n + j]);
        const err = Math.abs(got[i * n + j] - s) / (1e-6 * (k + 1) + 1e-5 * Math.abs(s));
        out.worst = Math.max(out.worst, err);
        if (got[i * n + j] !== base[i * n + j]) out.differsFromPlain = true;
      }
      out.cases++;
    }
    // the LoRA epilogue on this build: fused equals matmul + lowRankAdd bit for bit
    const rank = 5, la = { rows: m, cols: n, inner: k, rank, scale: 0.75, transL: false, transB: true };
    const x = b.upload('float32', rand(m * k)), w = b.upload('float32', rand(n * k));
    const u = b.upload('float32', rand(m * rank)), l = b.upload('float32', rand(rank * n));
    const fused = b.alloc('float32', m * n), twoPass = b.alloc('float32', m * n);
    b.kernels.matmulLowRank(x, w, u, l, fused, la);
    b.matmul(x, w, twoPass, { batch: 1, m, n, k, transA: false, transB: true, strideA: 0, strideB: 0 });
    b.kernels.lowRankAdd(u, l, twoPass, la);
    const f = await b.read(fused), t = await b.read(twoPass);
    for (let i = 0; i < f.length; i++) if (f[i] !== t[i] && !(Number.isNaN(f[i]) && Number.isNaN(t[i]))) out.loraEqual = false;
    for (const s of [x, w, u, l, fused, twoPass]) b.free(s);
  }
  b.destroy();
}
// without SharedArrayBuffer (a page that is not cross-origin isolated) the relaxed build runs on unshared memory
const SAB = globalThis.SharedArrayBuffer;
delete globalThis.SharedArrayBuffer;
try {
  const b = await createWasmBackend({ threads: 1, relaxedSimd: true });
  const d = b.describe();
  const x = b.upload('float32', [1, 2, 3, 4, 5, 6]), y = b.upload('float32', [1, 0, 0, 1, 1, 1]), o = b.alloc('float32', 4);
  b.matmul(x, y, o, { batch: 1, m: 2, n: 2, k: 3, transA: false, transB: false, strideA: 0, strideB: 0 });
  out.unshared = { relaxedSimd: d.relaxedSimd, sharedMemory: d.sharedMemory, product: Array.from(await b.read(o)) };
} finally {
  globalThis.SharedArrayBuffer = SAB;
}
console.log(JSON.stringify(out));
process.exit(0);
`;

const DIST_BACKEND = repoPath('dist/src/backend/wasm/wasm_backend.js');

describe.skipIf(!existsSync(DIST_BACKEND))('relaxed SIMD engine build: in node --experimental-wasm-relaxed-simd (built dist/)', () => {
  it('is picked, can be forced off, matches the float64 reference on odd shapes, and keeps the LoRA epilogue bit-exact', async () => {
    const dist = pathToFileURL(repoPath('dist')).href;
    const env = { ...process.env };
    delete env.DAPO_WASM_RELAXED;
    // a script file, not `--input-type=module -e` (the workers inherit that flag and their eval'd CommonJS shim fails)
    const dir = mkdtempSync(join(tmpdir(), 'dapo-relaxed-'));
    const script = join(dir, 'child.mjs');
    writeFileSync(script, CHILD(dist));
    let stdout: string;
    try {
      ({ stdout } = await run(process.execPath, ['--experimental-wasm-relaxed-simd', script], { env, timeout: 120_000 }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const r = JSON.parse(stdout.trim().split('\n').at(-1)!);
    expect(r.probe).toBe(true);
    expect(r.auto).toBe(true);
    expect(r.forcedOff).toBe(false);
    expect(r.envOff).toBe(false);
    expect(r.cases).toBe(2 * 4 * 4);
    // worst |error| in units of the usual matmul tolerance (1e-6·(k+1) + 1e-5·|want|)
    expect(r.worst).toBeLessThanOrEqual(1);
    expect(r.loraEqual).toBe(true);
    expect(r.unshared).toEqual({ relaxedSimd: true, sharedMemory: false, product: [4, 5, 10, 11] });
    // differsFromPlain is true where the runtime fuses relaxed_madd into FMA (x64 with FMA3), false where it runs
    // mul then add: implementation-defined, so only reported.
    console.log(`relaxed SIMD child: worst error ${r.worst.toFixed(3)} of tolerance; relaxed differs from plain: ${r.differsFromPlain}`);
  });
});

const META = repoPath('dist/web/meta.json');

describe.skipIf(!existsSync(META))('relaxed SIMD engine build: page bundles (dist/web/meta.json)', () => {
  it('a page loads neither engine binary up front, and can fetch each on first use (only the one that runs)', () => {
    const meta = JSON.parse(readFileSync(META, 'utf8')) as {
      outputs: Record<string, { entryPoint?: string; inputs: Record<string, unknown>; imports: { path: string; kind: string }[] }>;
    };
    const reach = (start: string, kinds: string[]) => {
      const seen = new Set([start]);
      for (const file of seen) for (const edge of meta.outputs[file].imports) if (kinds.includes(edge.kind) && meta.outputs[edge.path]) seen.add(edge.path);
      return [...seen].flatMap((file) => Object.keys(meta.outputs[file].inputs));
    };
    const binaries = ['src/backend/wasm/engine_wasm.gen.ts', 'src/backend/wasm/engine_wasm_relaxed.gen.ts'];
    const pages = Object.entries(meta.outputs).filter(([file, o]) => o.entryPoint?.startsWith('web/') && file.endsWith('.js')).map(([file]) => file);
    expect(pages).toContain('dist/web/train.js');
    for (const page of pages) {
      const upFront = reach(page, ['import-statement']);
      for (const binary of binaries) expect(upFront, `${page} loads ${binary} up front`).not.toContain(binary);
    }
    const lazy = reach('dist/web/train.js', ['import-statement', 'dynamic-import']);
    for (const binary of binaries) expect(lazy, binary).toContain(binary);
  });
});
