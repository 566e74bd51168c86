// Single-thread A/B of engine builds on the packed matmul path (GEBP), without the thread pool: each build is
// instantiated in this process on its own memory and called directly (engine `matmul`, one grid-sized tile of
// the SmolLM2-135M training products: a quarter of the columns, or of the rows where n is small), builds
// alternating within every repeat. Also checks that the builds' outputs agree bitwise on the tile.
//   node scripts/bench-gemm-engine.mjs build/engine.wasm /tmp/other.wasm [repeats] [f=0,3,…] ; COLD=1 evicts the
//   caches (a 64 MB write) before every call and times the call alone.
// Prints per build: median/best GFLOP/s, and each build's best against the first's.
import { readFileSync } from 'node:fs';

const argv = process.argv.slice(2);
const files = argv.filter((s) => s.endsWith('.wasm'));
const reps = Number(argv.find((s) => /^\d+$/.test(s)) ?? 7);
const only = argv.find((s) => s.startsWith('f='))?.slice(2).split(',');
if (files.length === 0) { console.error('usage: bench-gemm-engine.mjs a.wasm [b.wasm …] [repeats] [f=i,j]'); process.exit(1); }
// m, n, k, transA, transB: forward (weights [n, k]), dX, dW at 504 token rows (the head at 252)
const shapes = [
  [504, 1536, 576, 0, 1], [504, 576, 1536, 0, 1], [504, 576, 576, 0, 1], [504, 192, 576, 0, 1], [252, 49152, 576, 0, 1],
  [504, 576, 1536, 0, 0], [504, 1536, 576, 0, 0], [504, 576, 576, 0, 0], [252, 576, 49152, 0, 0],
  [1536, 576, 504, 1, 0], [576, 1536, 504, 1, 0], [576, 576, 504, 1, 0], [192, 576, 504, 1, 0], [49152, 576, 252, 1, 0],
].filter((_, i) => !only || only.includes(String(i)));
const base = 1 << 24;
const engines = files.map((file) => {
  const memory = new WebAssembly.Memory({ initial: 8192, maximum: 65536, shared: true });
  const e = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(file)), { env: { memory, abort() {} } }).exports;
  const f = new Float32Array(memory.buffer);
  for (let i = base / 4; i < base / 4 + 60e6; i++) f[i] = (i % 7) * 0.1 - 0.3;
  return { e, memory, flush: new Float64Array(8 << 20) };
});
const res = shapes.map(() => engines.map(() => []));
for (let r = 0; r < reps; r++) {
  for (let si = 0; si < shapes.length; si++) {
    const [m, n, k, tA, tB] = shapes[si];
    const a = base, b = a + m * k * 4 + 4096, o = b + k * n * 4 + 4096, scratch = o + m * n * 4 + 4096;
    const colTile = n >= 256;
    const end = colTile ? Math.round(n / 4 / 8) * 8 : Math.round(m / 4 / 4) * 4;
    const flops = 2 * (colTile ? m * end : end * n) * k;
    const iters = Math.max(1, Math.round(3e8 / flops));
    const order = engines.map((_, i) => (r % 2 ? engines.length - 1 - i : i));
    for (const ei of order) {
      const { e, flush } = engines[ei];
      const call = () => e.matmul(a, b, o, 1, m, n, k, tA, tB, 0, 0, colTile ? 1 : 0, scratch, 0, end);
      call();
      let ms = 0;
      if (process.env.COLD) {
        for (let it = 0; it < iters; it++) { flush.fill(it); const t0 = performance.now(); call(); ms += performance.now() - t0; }
      } else {
        const t0 = performance.now();
        for (let it = 0; it < iters; it++) call();
        ms = performance.now() - t0;
      }
      res[si][ei].push(flops * iters / ms / 1e6);
    }
    if (r === 0) {
      const outs = engines.map(({ memory }) => new Uint32Array(memory.buffer, o, m * n));
      const rows = colTile ? m : end, cols = colTile ? end : n;
      for (let ei = 1; ei < engines.length; ei++) {
        let differ = 0;
        for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) if (outs[ei][i * n + j] !== outs[0][i * n + j]) differ++;
        if (differ) console.log(`  ${files[ei]}: ${differ} outputs differ bitwise from ${files[0]} at ${shapes[si].join('x')}`);
      }
    }
  }
}
const med = (xs) => [...xs].sort((x, y) => x - y)[xs.length >> 1];
const best = (xs) => Math.max(...xs);
console.log(`GFLOP/s median/best over ${reps} repeats, one thread${process.env.COLD ? ', cold caches' : ''}: ${files.join('  ')}`);
for (let si = 0; si < shapes.length; si++) {
  const [m, n, k, tA, tB] = shapes[si];
  const cols = res[si].map((xs) => `${med(xs).toFixed(1)}/${best(xs).toFixed(1)}`);
  const vs = res[si].slice(1).map((xs) => `${((best(xs) / best(res[si][0]) - 1) * 100).toFixed(1)}%`);
  console.log(`${m}x${n}x${k}${tA ? ' tA' : ''}${tB ? ' tB' : ''}`.padEnd(20), cols.join('   '), vs.length ? ` best vs first: ${vs.join(' ')}` : '');
}
