// Matmul GFLOP/s of the relaxed-SIMD engine build against the plain one, both loaded in this one process and timed
// interleaved (A, B, A, B, …). Needs relaxed SIMD: `node --experimental-wasm-relaxed-simd scripts/bench-relaxed-simd.mjs`
// on Node 20 (built dist/ first: npm run build). Args: [repeats=7] [threads=1]. With one thread the rates are per
// second of process CPU time (robust to a shared machine), with more per second of wall time.
import { createWasmBackend } from '../dist/src/backend/wasm/wasm_backend.js';
import { nodeWorkerFactory } from '../dist/src/backend/wasm/node_workers.js';

const repeats = Number(process.argv[2] ?? 7);
const threads = Number(process.argv[3] ?? 1);
const SHAPES = [
  { label: '512x576x1536 transB', m: 512, k: 576, n: 1536, transB: true },
  { label: '1024^3', m: 1024, k: 1024, n: 1024, transB: false },
  { label: '16x576x1536 transB', m: 16, k: 576, n: 1536, transB: true },
  // small enough that the packed panels stay in L1/L2: closest to the micro-kernel's own peak
  { label: '128x256x128', m: 128, k: 256, n: 128, transB: false },
];
const opts = { threads, workerFactory: threads > 1 ? nodeWorkerFactory() : undefined };
const builds = { relaxed: await createWasmBackend({ ...opts, relaxedSimd: true }), plain: await createWasmBackend({ ...opts, relaxedSimd: false }) };
for (const [name, b] of Object.entries(builds)) if (b.describe().relaxedSimd !== (name === 'relaxed')) throw new Error(`${name}: wrong build`);
const rand = (n) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.5);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };
for (const s of SHAPES) {
  const flop = 2 * s.m * s.n * s.k;
  const calls = Math.max(1, Math.round(1e9 / flop)); // ~1 GFLOP per timed sample
  const io = Object.fromEntries(Object.entries(builds).map(([name, b]) => [name, {
    a: b.upload('float32', rand(s.m * s.k)), w: b.upload('float32', rand(s.k * s.n)), out: b.alloc('float32', s.m * s.n),
  }]));
  const args = { batch: 1, m: s.m, n: s.n, k: s.k, transA: false, transB: s.transB, strideA: 0, strideB: 0 };
  const sample = async (name) => {
    const b = builds[name], t = io[name];
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    for (let i = 0; i < calls; i++) b.matmul(t.a, t.w, t.out, args);
    await b.read(t.out);
    const wall = (performance.now() - t0) / 1e3;
    const c1 = process.cpuUsage(c0);
    // One thread: the process's CPU time (user + system), which time slices lost to other processes do not inflate.
    const seconds = threads === 1 ? (c1.user + c1.system) / 1e6 : wall;
    return flop * calls / seconds / 1e9;
  };
  await sample('relaxed'); await sample('plain'); // warm-up (compilation, packing buffers)
  const got = { relaxed: [], plain: [] };
  for (let r = 0; r < repeats; r++) {
    const order = r % 2 ? ['plain', 'relaxed'] : ['relaxed', 'plain'];
    for (const name of order) got[name].push(await sample(name));
  }
  // The machine may be shared: each repeat's relaxed/plain ratio (samples taken back to back) drifts less than either.
  const ratios = got.relaxed.map((x, i) => x / got.plain[i]);
  const fmt = (xs, digits = 1) => `${median(xs).toFixed(digits)} [${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}]`;
  console.log(`${s.label.padEnd(20)} ${threads}t GFLOP/s median [min–max]: relaxed ${fmt(got.relaxed)}  plain ${fmt(got.plain)}  `
    + `paired ratio ${fmt(ratios, 3)}  (${repeats} pairs)`);
}
for (const b of Object.values(builds)) b.destroy?.();
