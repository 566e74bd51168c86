// The TF.js side-by-side peer of `dapo bench`, written with TF.js primitives, for the CLI and the browser page
// alike: matmul; attention = matMul + causal mask + softmax + matMul; log-softmax + gather; matmul forward +
// backward. Same shapes, FLOP and byte conventions as src/bench/*; backward passes use tf.grad / tf.grads.
// Browser-safe: the caller loads TF.js (cli/tfjs_peer.ts under Node, web/bench_tfjs.ts in the page) and passes it in.
//
// tf.grads always runs the forward again, so a TF.js backward time is (forward + backward) − forward, both
// medians of the same formulation; the record carries fwd_bwd_ms, the measured sum.
import { type AttentionShape, attentionFlops } from './attention_bench.js';
import { type LogitsShape, softmaxGatherBytes } from './softmax_gather_bench.js';
import { matmulTrainFlops } from './matmul_train_bench.js';
import { type BenchRecord, type TimingOptions, gbpsOf, gflopsOf, randomInts, timeAsync } from './common.js';

export type Tf = typeof import('@tensorflow/tfjs-core');
type TfTensor = import('@tensorflow/tfjs-core').Tensor;

export type PeerKind = 'tfjs-wasm' | 'tfjs-webgpu';

/** The TF.js peer measured next to each of our backends. */
export const PEER_OF: Record<string, PeerKind | undefined> = { webgpu: 'tfjs-webgpu', wasm: 'tfjs-wasm' };

/** TF.js's name for the peer's backend (tf.setBackend). */
export const TF_BACKEND: Record<PeerKind, string> = { 'tfjs-wasm': 'wasm', 'tfjs-webgpu': 'webgpu' };

/**
 * Waits until the tensors are computed by reading one element of each back (GPU queues run in order, so
 * this waits for all earlier work too) — without copying whole outputs to the host, which our side
 * (backend.sync) does not do either.
 */
export async function syncTf(tf: Tf, ts: readonly TfTensor[]): Promise<void> {
  const probe = tf.tidy(() => tf.addN(ts.map((t) => tf.slice(tf.reshape(t, [-1]), 0, 1))));
  await probe.data();
  probe.dispose();
}

/** Times run() (which returns the tensors it created), syncing on them and disposing them each time. */
export function timeTf(tf: Tf, run: () => TfTensor[], opts: TimingOptions): ReturnType<typeof timeAsync> {
  return timeAsync(async () => {
    const outs = run();
    await syncTf(tf, outs);
    tf.dispose(outs);
  }, opts);
}

export async function tfjsMatmul(tf: Tf, kind: PeerKind, [m, k, n]: readonly [number, number, number], opts: TimingOptions = {}): Promise<BenchRecord> {
  const a = tf.randomUniform([m, k], -1, 1, 'float32', 1);
  const b = tf.randomUniform([k, n], -1, 1, 'float32', 2);
  try {
    const { ms, runs } = await timeTf(tf, () => [tf.matMul(a, b)], opts);
    return { op: 'matmul', backend: kind, shape: [m, k, n], ms, gflops: gflopsOf(2 * m * n * k, ms), runs };
  } finally {
    tf.dispose([a, b]);
  }
}

/** A backward time from the measured forward + backward and forward medians (never below 1% of the sum). */
function backwardMs(fwdBwdMs: number, fwdMs: number): number {
  return Math.max(fwdBwdMs - fwdMs, fwdBwdMs / 100);
}

/** attention_fwd and attention_bwd. TF.js computes the full T×T scores (the FLOPs credited are the causal half, as ours). */
export async function tfjsAttention(tf: Tf, kind: PeerKind, shape: AttentionShape, opts: TimingOptions = {}): Promise<BenchRecord[]> {
  const [, , t, headDim] = shape;
  const scale = 1 / Math.sqrt(headDim);
  const q = tf.randomUniform([...shape], -1, 1, 'float32', 21);
  const k = tf.randomUniform([...shape], -1, 1, 'float32', 22);
  const v = tf.randomUniform([...shape], -1, 1, 'float32', 23);
  const dy = tf.randomUniform([...shape], -1, 1, 'float32', 24);
  // Additive causal mask [T, T]: 0 on and below the diagonal, −1e9 above, broadcast over batch and heads.
  const mask = tf.tidy(() => tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([t, t]), -1, 0)), -1e9));
  const attend = (qq: TfTensor, kk: TfTensor, vv: TfTensor) =>
    tf.matMul(tf.softmax(tf.add(tf.mul(tf.matMul(qq, kk, false, true), scale), mask)), vv);
  const grads = tf.grads(attend);
  try {
    const fwd = await timeTf(tf, () => [tf.tidy(() => attend(q, k, v))], opts);
    const both = await timeTf(tf, () => tf.tidy(() => grads([q, k, v], dy)), opts);
    const bwdMs = backwardMs(both.ms, fwd.ms);
    return [
      { op: 'attention_fwd', backend: kind, shape: [...shape], ms: fwd.ms, gflops: gflopsOf(attentionFlops(shape, 'forward'), fwd.ms), runs: fwd.runs },
      {
        op: 'attention_bwd', backend: kind, shape: [...shape], ms: bwdMs, gflops: gflopsOf(attentionFlops(shape, 'backward'), bwdMs),
        extra: { fwd_bwd_ms: both.ms }, runs: both.runs,
      },
    ];
  } finally {
    tf.dispose([q, k, v, dy, mask]);
  }
}

/**
 * softmax_gather_fwd: logSoftmax, then a gather of each row's target from the flattened [N·V] log-probs
 * (TF.js computes no entropy; ours does, in the same pass). softmax_gather_bwd: tf.grad of
 * Σ_c oneHot(targets)·logSoftmax along each row — the gather's own gradient needs UnsortedSegmentSum,
 * which tfjs-wasm lacks.
 */
export async function tfjsSoftmaxGather(tf: Tf, kind: PeerKind, shape: LogitsShape, opts: TimingOptions = {}): Promise<BenchRecord[]> {
  const [rows, cols] = shape;
  const logits = tf.randomUniform([rows, cols], -8, 8, 'float32', 31);
  const targetIds = randomInts(rows, cols, 32);
  const targets = tf.tensor1d(targetIds, 'int32');
  const flatIndex = tf.tensor1d(targetIds.map((t, r) => r * cols + t), 'int32');
  const gLogp = tf.randomUniform([rows], -1, 1, 'float32', 33);
  // Built once, as our targets are: a constant of the loss. (tfjs-wasm's oneHot ignores dtype 'float32'
  // and writes int bits, hence the cast.)
  const targetMask = tf.tidy(() => tf.cast(tf.oneHot(targets, cols), 'float32'));
  const oneHotLogp = (x: TfTensor) => tf.sum(tf.mul(targetMask, tf.logSoftmax(x)), 1);
  const grad = tf.grad(oneHotLogp);
  try {
    const fwd = await timeTf(tf, () => [tf.tidy(() => tf.gather(tf.reshape(tf.logSoftmax(logits), [-1]), flatIndex))], opts);
    const oneHotFwd = await timeTf(tf, () => [tf.tidy(() => oneHotLogp(logits))], opts);
    const both = await timeTf(tf, () => [tf.tidy(() => grad(logits, gLogp))], opts);
    const bwdMs = backwardMs(both.ms, oneHotFwd.ms);
    return [
      { op: 'softmax_gather_fwd', backend: kind, shape: [...shape], ms: fwd.ms, gbps: gbpsOf(softmaxGatherBytes(shape, 'forward'), fwd.ms), runs: fwd.runs },
      {
        op: 'softmax_gather_bwd', backend: kind, shape: [...shape], ms: bwdMs, gbps: gbpsOf(softmaxGatherBytes(shape, 'backward'), bwdMs),
        extra: { fwd_bwd_ms: both.ms }, runs: both.runs,
      },
    ];
  } finally {
    tf.dispose([logits, targets, flatIndex, gLogp, targetMask]);
  }
}

/** matmul_train: tf.grads of sum(A @ B) → dA, dB (the forward runs inside, as in ours). */
export async function tfjsMatmulTrain(tf: Tf, kind: PeerKind, n: number, opts: TimingOptions = {}): Promise<BenchRecord> {
  const a = tf.randomUniform([n, n], -1, 1, 'float32', 41);
  const b = tf.randomUniform([n, n], -1, 1, 'float32', 42);
  const grads = tf.grads((x: TfTensor, y: TfTensor) => tf.sum(tf.matMul(x, y)));
  try {
    const { ms, runs } = await timeTf(tf, () => tf.tidy(() => grads([a, b])), opts);
    return { op: 'matmul_train', backend: kind, shape: [n, n, n], ms, gflops: gflopsOf(matmulTrainFlops(n), ms), runs };
  } finally {
    tf.dispose([a, b]);
  }
}
