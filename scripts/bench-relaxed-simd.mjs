// Matmul GFLOP/s of the relaxed-SIMD engine build against the plain one, both loaded in this one process and timed
// interleaved (A, B, A, B, …). Needs relaxed SIMD: `node --experimental-wasm-relaxed-simd scripts/bench-relaxed-simd.mjs`
// on Node 20 (built dist/ first: npm run build). Args: [repeats=7] [threads=1].
import { createWasmBackend } from '../dist/src/backend/wasm/wasm_backend.js';
import { nodeWorkerFactory } from '../dist/src/backend/wasm/node_workers.js';

const repeats = Number(process.argv[2] ?? 7);
const threads = Number(process.argv[3] ?? 1);
const SHAPES = [
  { label: '512x576x1536 transB', m: 512, k: 576, n: 1536, transB: true },
  { label: '1024^3', m: 1024, k: 1024, n: 1024, transB: false },
  { label: '16x576x1536 transB', m: 16, k: 576, n: 1536, transB: true },
];
const opts = { threads, workerFactory: threads > 1 ? nodeWorkerFactory() : undefined };
const builds = { relaxed: await createWasmBackend({ ...opts, relaxedSimd: true }), plain: await createWasmBackend({ ...opts, relaxedSimd: false }) };
for (const [name, b] of Object.entries(builds)) if (b.describe().relaxedSimd !== (name === 'relaxed')) throw new Error(`${name}: wrong build`);
const rand = (n) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.5);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };
for (const s of SHAPES) {
  const flop = 2 * s.m * s.n * s.k;
  const calls = Math.max(1, Math.round(2e9 / flop)); // ~2 GFLOP per timed sample
  const io = Object.fromEntries(Object.entries(builds).map(([name, b]) => [name, {
    a: b.upload('float32', rand(s.m * s.k)), w: b.upload('float32', rand(s.k * s.n)), out: b.alloc('float32', s.m * s.n),
  }]));
  const args = { batch: 1, m: s.m, n: s.n, k: s.k, transA: false, transB: s.transB, strideA: 0, strideB: 0 };
  const sample = async (name) => {
    const b = builds[name], t = io[name];
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) b.matmul(t.a, t.w, t.out, args);
    await b.read(t.out);
    return flop * calls / ((performance.now() - t0) / 1e3) / 1e9;
  };
  await sample('relaxed'); await sample('plain'); // warm-up (compilation, packing buffers)
  const got = { relaxed: [], plain: [] };
  for (let r = 0; r < repeats; r++) {
    const order = r % 2 ? ['plain', 'relaxed'] : ['relaxed', 'plain'];
    for (const name of order) got[name].push(await sample(name));
  }
  const fmt = (xs) => `median ${median(xs).toFixed(1)} (min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)})`;
  console.log(`${s.label.padEnd(22)} ${threads}t  relaxed ${fmt(got.relaxed)}  plain ${fmt(got.plain)}  ratio ${(median(got.relaxed) / median(got.plain)).toFixed(3)}  GFLOP/s`);
}
for (const b of Object.values(builds)) b.destroy?.();
