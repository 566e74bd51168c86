// A/B of the WASM matmul on the batched-decode shapes (16 rows against [n, k] weights, transB) between two builds,
// interleaved in one process so that both see the same machine load:
//   cp -r dist /tmp/dist-old   # before the change; rebuild after it
//   node scripts/bench-decode-matmul.mjs /tmp/dist-old ./dist [reps]
// Env: SHAPES (mxnxk,… default the SmolLM2-135M decode shapes), DT (float32,bfloat16), TA / TB (threads of A / B,
// default 2), COLD=1 (rotate over ≥ 96 MB of weight copies, so B comes from memory as in generate()), ADAPT=0
// (no adaptive solo mode). Prints median [min–max] GFLOP/s of wall time and of process CPU time (less sensitive
// to the process being descheduled), and the largest difference between the two outputs.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [distA, distB] = [process.argv[2], process.argv[3]].map((d) => pathToFileURL(resolve(d)).href);
if (!process.argv[3]) throw new Error('usage: node scripts/bench-decode-matmul.mjs <distA> <distB> [reps]');
const REPS = Number(process.argv[4] ?? 7);
const dtypes = (process.env.DT ?? 'float32,bfloat16').split(',');
const shapes = (process.env.SHAPES ?? '16x1536x576,16x576x1536,16x576x576,16x192x576,16x49152x576').split(',').map((s) => s.split('x').map(Number));

async function backend(dist, threads) {
  const { createWasmBackend } = await import(`${dist}/src/backend/wasm/wasm_backend.js`);
  const { nodeWorkerFactory } = await import(`${dist}/src/backend/wasm/node_workers.js`);
  return createWasmBackend({ threads, workerFactory: nodeWorkerFactory(), adaptiveThreads: process.env.ADAPT !== '0' });
}
const backs = { A: await backend(distA, Number(process.env.TA ?? 2)), B: await backend(distB, Number(process.env.TB ?? 2)) };
const random = (n) => Float32Array.from({ length: n }, () => Math.random() - 0.5);
const median = (x) => [...x].sort((a, b) => a - b)[x.length >> 1];
const fmt = (x) => `${median(x).toFixed(1)} [${Math.min(...x).toFixed(1)}–${Math.max(...x).toFixed(1)}]`;

for (const dt of dtypes) {
  for (const [m, n, k] of shapes) {
    const a = random(m * k), b = random(n * k);
    const copies = process.env.COLD ? Math.max(1, Math.ceil(96e6 / (n * k * (dt === 'float32' ? 4 : 2)))) : 1;
    const st = {};
    for (const [name, be] of Object.entries(backs)) {
      st[name] = { a: be.upload('float32', a), bs: Array.from({ length: copies }, () => be.upload(dt, b)), o: be.alloc('float32', m * n), i: 0 };
    }
    const args = { batch: 1, m, n, k, transA: false, transB: true, strideA: 0, strideB: 0 };
    const flop = 2 * m * n * k;
    const iters = Math.max(3, Math.round(2e8 / flop));
    const wall = { A: [], B: [] }, cpu = { A: [], B: [] };
    const run = (name) => { const s = st[name]; for (let i = 0; i < iters; i++) backs[name].matmul(s.a, s.bs[s.i++ % copies], s.o, args); };
    run('A'); run('B');
    for (let r = 0; r < REPS; r++) {
      for (const name of r & 1 ? ['B', 'A'] : ['A', 'B']) {
        const c0 = process.cpuUsage(), t0 = performance.now();
        run(name);
        const t = performance.now() - t0, c = process.cpuUsage(c0);
        wall[name].push(flop * iters / t / 1e6);
        cpu[name].push(flop * iters / ((c.user + c.system) / 1e3) / 1e6);
      }
    }
    const [oa, ob] = [await backs.A.read(st.A.o), await backs.B.read(st.B.o)];
    let diff = 0;
    for (let i = 0; i < oa.length; i++) diff = Math.max(diff, Math.abs(oa[i] - ob[i]));
    console.log(`${dt} ${m}x${n}x${k}: wall A ${fmt(wall.A)} B ${fmt(wall.B)} B/A ${(median(wall.B) / median(wall.A)).toFixed(2)}`
      + ` | cpu A ${fmt(cpu.A)} B ${fmt(cpu.B)} B/A ${(median(cpu.B) / median(cpu.A)).toFixed(2)} | max diff ${diff.toExponential(1)}`);
    for (const name of ['A', 'B']) for (const s of [st[name].a, st[name].o, ...st[name].bs]) backs[name].free(s);
  }
}
for (const be of Object.values(backs)) be.destroy();
process.exit(0);
