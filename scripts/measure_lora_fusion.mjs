// The LoRA low-rank product fused into the matmul (issue #9 point 4), measured: one LoRA linear forward + backward
// (T.lowRankLinear, y = x·Wᵀ + (α/r)·(x·Aᵀ)·Bᵀ, gradients for x, A and B; W frozen) with the fused kernel
// (matmulLowRank: the low-rank term is the matmul's epilogue) vs the two-pass kernels it replaced (matmul, then
// lowRankAdd), on the same backend in one run, interleaved, W float32 and bfloat16. WASM, THREADS threads (default 2);
// SHAPES=MxKxN,... (default 256x896x4864 and 256x4864x896, Qwen2.5-0.5B's MLP), RANK (default 16), REPS (default 7).
// Then the kernel alone (matmulLowRank vs matmul + lowRankAdd), 3·REPS interleaved calls. Run after npm run build:   node scripts/measure_lora_fusion.mjs
import { createWasmBackend } from '../dist/src/backend/wasm/wasm_backend.js';
import { nodeWorkerFactory } from '../dist/src/backend/wasm/node_workers.js';
import * as T from '../dist/src/tensor/index.js';

const threads = Number(process.env.THREADS ?? 2);
const rank = Number(process.env.RANK ?? 16);
const reps = Number(process.env.REPS ?? 7);
const b = await createWasmBackend({ threads, workerFactory: nodeWorkerFactory() });
console.log(JSON.stringify({ ...b.describe(), rank, reps }));

// The same backend with matmulLowRank computed as before the fusion: matmul, then the separate lowRankAdd pass.
const twoPassKernels = {
  ...b.kernels,
  matmulLowRank: (x, w, u, l, out, a) => {
    b.matmul(x, w, out, { batch: 1, m: a.rows, n: a.cols, k: a.inner, transA: false, transB: a.transB, strideA: 0, strideB: 0 });
    b.kernels.lowRankAdd(u, l, out, a);
  },
};
const fusedKernels = b.kernels;

const shapes = (process.env.SHAPES ?? '256x896x4864,256x4864x896').split(',').map((s) => s.split('x').map(Number));
const rand = (n, seed, scale) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + seed) * scale);
for (const [m, k, n] of shapes) {
  for (const dtype of ['float32', 'bfloat16']) {
    T.setBackend(b);
    const x = T.keep(T.tensor(rand(m * k, 1, 1), [m, k]).requireGrad());
    const w = T.keep(T.tensor(rand(n * k, 2, 0.05), [n, k], dtype));
    const A = T.keep(T.tensor(rand(rank * k, 3, 0.05), [rank, k]).requireGrad());
    const B = T.keep(T.tensor(rand(n * rank, 4, 0.05), [n, rank]).requireGrad());
    const gy = T.keep(T.tensor(rand(m * n, 5, 1), [m, n]));
    // kernels: the backend's own (fused) or twoPassKernels; the tensors stay on the one backend
    const step = (kernels) => {
      b.kernels = kernels;
      for (const p of [x, A, B]) { p.grad?.dispose(); p.grad = null; }
      const t0 = performance.now();
      T.tidy(() => {
        const y = T.lowRankLinear(x, w, A, B, 2);
        T.backward(y, { grad: gy });
      });
      return performance.now() - t0;
    };
    step(fusedKernels); step(twoPassKernels); // warm-up (scratch, workers, arena)
    const fused = [], unfused = [];
    for (let r = 0; r < reps; r++) { fused.push(step(fusedKernels)); unfused.push(step(twoPassKernels)); }
    const sorted = (xs) => [...xs].sort((p, q) => p - q);
    const fmt = (xs) => { const s = sorted(xs); return `median ${s[s.length >> 1].toFixed(1)} ms (min ${s[0].toFixed(1)}, max ${s[s.length - 1].toFixed(1)})`; };
    const ratio = sorted(unfused)[reps >> 1] / sorted(fused)[reps >> 1];
    console.log(`M=${m} K=${k} N=${n} r=${rank} W ${dtype}: fused ${fmt(fused)} | two-pass ${fmt(unfused)} | two-pass/fused ${ratio.toFixed(3)}`);
    b.kernels = fusedKernels;
    for (const t of [x, w, A, B, gy]) { t.grad?.dispose(); t.dispose(); }
  }
}

// The kernels alone (no autograd, no dA/dB products): the forward layout (w [N, K] with transB, l = B [N, r]) and the
// input-gradient layout (w [K, N]... read as [inner, cols] = [N, K]ᵀ, l = A [r, K] with transL), minimum of REPS.
for (const [m, k, n] of shapes) {
  for (const [what, rows, cols, inner, transB, transL] of [['forward', m, n, k, true, false], ['input gradient', m, k, n, false, true]]) {
    const x = b.upload('float32', rand(rows * inner, 1, 1));
    const w = b.upload('float32', rand(inner * cols, 2, 0.05));
    const u = b.upload('float32', rand(rows * rank, 3, 1));
    const l = b.upload('float32', rand(cols * rank, 4, 0.05));
    const out = b.alloc('float32', rows * cols);
    const args = { rows, cols, inner, rank, scale: 2, transL, transB };
    const time = (kernels) => { const t0 = performance.now(); kernels.matmulLowRank(x, w, u, l, out, args); return performance.now() - t0; };
    time(fusedKernels); time(twoPassKernels);
    const fused = [], unfused = [];
    for (let r = 0; r < 3 * reps; r++) { fused.push(time(fusedKernels)); unfused.push(time(twoPassKernels)); }
    const s1 = [...fused].sort((p, q) => p - q), s2 = [...unfused].sort((p, q) => p - q);
    const h = s1.length >> 1;
    console.log(`kernel ${what} ${rows}x${cols} (inner ${inner}, r ${rank}): fused min ${s1[0].toFixed(1)} median ${s1[h].toFixed(1)} ms | two-pass min ${s2[0].toFixed(1)} median ${s2[h].toFixed(1)} ms | min ratio ${(s2[0] / s1[0]).toFixed(3)}`);
    for (const t of [x, w, u, l, out]) b.free(t);
  }
}
b.destroy();
