// Frozen 16-bit weights, measured (issue #10): matmul GFLOP/s with float32 vs bfloat16 weights [n, k] at model shapes
// (WASM, THREADS threads (default 2), interleaved repeats in one run; SHAPES=MxKxN,...), and the weight bytes of a
// Qwen2.5-0.5B-shaped LoRA model (r 16, all-linear) with float32 vs bfloat16 frozen weights. Run after npm run build:
//   node scripts/measure_frozen_weights.mjs
import { createWasmBackend } from '../dist/src/backend/wasm/wasm_backend.js';
import { nodeWorkerFactory } from '../dist/src/backend/wasm/node_workers.js';

const threads = Number(process.env.THREADS ?? 2);
const b = await createWasmBackend({ threads, workerFactory: nodeWorkerFactory() });
console.log(JSON.stringify(b.describe()));
const shapes = (process.env.SHAPES ?? '64x896x4864,64x4864x896,16x896x4864,1x896x4864').split(',').map((s) => s.split('x').map(Number));
for (const [m, k, n] of shapes) {
  const a = b.upload('float32', Float32Array.from({ length: m * k }, (_, i) => Math.sin(i)));
  const wv = Float32Array.from({ length: n * k }, (_, i) => Math.cos(i * 0.37) * 0.05);
  const wf = b.upload('float32', wv);
  const wh = b.upload('bfloat16', wv);
  const out = b.alloc('float32', m * n);
  const args = { batch: 1, m, n, k, transA: false, transB: true, strideA: 0, strideB: 0 };
  const time = (w) => {
    const reps = Math.max(3, Math.round(2e9 / (2 * m * n * k)));
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) b.matmul(a, w, out, args);
    return (2 * m * n * k * reps) / ((performance.now() - t0) / 1000) / 1e9;
  };
  time(wf); time(wh); // warm-up
  const f = [], h = [];
  for (let rep = 0; rep < 5; rep++) { f.push(time(wf)); h.push(time(wh)); }
  const med = (xs) => [...xs].sort((x, y) => x - y)[xs.length >> 1];
  console.log(`M=${m} K=${k} N=${n} (x·Wᵀ): f32 ${f.map((x) => x.toFixed(1)).join(' ')} (median ${med(f).toFixed(1)}) | bf16 ${h.map((x) => x.toFixed(1)).join(' ')} (median ${med(h).toFixed(1)}) GFLOP/s`);
  for (const s of [a, wf, wh, out]) b.free(s);
}
b.destroy();

// Weight memory of a Qwen2.5-0.5B-shaped model (dModel 896, 24 layers, 14/2 heads, head 64, ffn 4864, vocab 151936, tied)
const d = 896, L = 24, kv = 2 * 64, ffn = 4864, vocab = 151936;
const frozenMatrices = vocab * d + L * (d * d + 2 * kv * d + d * d + 3 * ffn * d);
const small = L * (2 * d + 2 * kv + d) + d; // norms + q/k/v biases (stay float32)
const r = 16, lora = L * r * ((d + d) * 2 + (d + kv) * 2 + (ffn + d) * 3); // q,o: d→d; k,v: d→kv; gate, up, down
const gib = (x) => (x / 2 ** 30).toFixed(3);
console.log(`Qwen2.5-0.5B shape: ${(frozenMatrices + small) / 1e6} M params; frozen matrices ${frozenMatrices / 1e6} M; LoRA r16 all-linear ${lora / 1e6} M`);
console.log(`weights f32: ${gib(4 * (frozenMatrices + small + lora))} GiB; bf16 frozen: ${gib(2 * frozenMatrices + 4 * (small + lora))} GiB`);
