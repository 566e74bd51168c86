// `dapo bench` cases at tiny shapes on the float64 reference: every code path runs, the figures follow
// the stated FLOP/byte conventions, and records print as the documented JSON lines. The TF.js peers run
// at the same tiny shapes on tfjs-wasm and must line up with our records.
import { afterAll, describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../src/backend/reference/reference_backend.js';
import { type BenchOutcome, type BenchRecord, type TimingOptions, isFailure } from '../src/bench/common.js';
import { attentionFlops, benchAttention } from '../src/bench/attention_bench.js';
import { benchSoftmaxGather, softmaxGatherBytes } from '../src/bench/softmax_gather_bench.js';
import { benchMatmulTrain, matmulTrainFlops } from '../src/bench/matmul_train_bench.js';
import { benchTrainStep } from '../src/bench/train_bench.js';
import { benchGenerate } from '../src/bench/generate_bench.js';
import { BENCH_CASES, parseCaseNames } from '../src/bench/cases.js';
import { recordJson } from '../src/bench/format.js';
import { runBench } from '../cli/bench.js';
import { loadTfjs } from '../cli/tfjs_peer.js';
import { tfjsAttention, tfjsMatmulTrain, tfjsSoftmaxGather } from '../cli/tfjs_model_peer.js';

const backend = new ReferenceBackend();
afterAll(() => backend.destroy());

const once: TimingOptions = { warmup: 0, runs: 1, budgetMs: 0 };
const tinyModel = { vocabSize: 11, dModel: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 24, maxSeqLen: 16 };
const THROUGHPUT_KEYS = ['gflops', 'gbps', 'tokens_per_s'];

function records(outcomes: readonly BenchOutcome[]): BenchRecord[] {
  for (const o of outcomes) if (isFailure(o)) throw new Error(`${o.op} failed: ${o.error}`);
  return outcomes as BenchRecord[];
}

/** The documented line format: op, backend, shape, ms, exactly one throughput figure, all finite. */
function expectLineFormat(line: string): Record<string, unknown> {
  const obj = JSON.parse(line) as Record<string, unknown>;
  expect(Object.keys(obj).slice(0, 4)).toEqual(['op', 'backend', 'shape', 'ms']);
  expect(typeof obj.op).toBe('string');
  expect(typeof obj.backend).toBe('string');
  expect(Array.isArray(obj.shape) && (obj.shape as unknown[]).every((d) => Number.isInteger(d))).toBe(true);
  expect(obj.ms as number).toBeGreaterThan(0);
  const figures = THROUGHPUT_KEYS.filter((k) => k in obj);
  expect(figures, line).toHaveLength(1);
  for (const v of Object.values(obj)) if (typeof v === 'number') expect(Number.isFinite(v), line).toBe(true);
  return obj;
}

describe('bench cases on the reference backend', () => {
  it('attention forward and backward, FLOPs by the causal convention', async () => {
    const shape = [1, 2, 8, 4] as const;
    const [fwd, bwd] = records(await benchAttention(backend, 'reference', shape, once));
    expect([fwd.op, bwd.op]).toEqual(['attention_fwd', 'attention_bwd']);
    expect(attentionFlops(shape, 'forward')).toBe((4 * 1 * 2 * 8 * 8 * 4) / 2);
    expect(attentionFlops(shape, 'backward')).toBe(2.5 * attentionFlops(shape, 'forward'));
    expect(fwd.gflops).toBeCloseTo(attentionFlops(shape, 'forward') / (fwd.ms * 1e6), 9);
    expectLineFormat(JSON.stringify(recordJson(bwd)));
  });

  it('log-softmax + gather forward and backward, bytes read (+ written)', async () => {
    const shape = [6, 10] as const;
    const [fwd, bwd] = records(await benchSoftmaxGather(backend, 'reference', shape, once));
    expect([fwd.op, bwd.op]).toEqual(['softmax_gather_fwd', 'softmax_gather_bwd']);
    expect(softmaxGatherBytes(shape, 'forward')).toBe(6 * 10 * 4);
    expect(softmaxGatherBytes(shape, 'backward')).toBe(2 * 6 * 10 * 4);
    expect(bwd.gbps).toBeCloseTo(2 * 6 * 10 * 4 / (bwd.ms * 1e6), 9);
    expectLineFormat(JSON.stringify(recordJson(fwd)));
  });

  it('matmul forward + backward counts three matmuls', async () => {
    const r = await benchMatmulTrain(backend, 'reference', 8, once);
    expect(r.op).toBe('matmul_train');
    expect(matmulTrainFlops(8)).toBe(6 * 8 ** 3);
    expectLineFormat(JSON.stringify(recordJson(r)));
  });

  it('train step reports tokens/s and the peak allocation', async () => {
    const r = await benchTrainStep(backend, 'reference', { batch: 2, seqLen: 5 }, once, tinyModel);
    const obj = expectLineFormat(JSON.stringify(recordJson(r)));
    expect(obj.op).toBe('train_step');
    expect(obj.tokens_per_s as number).toBeCloseTo((2 * 5) / (r.ms / 1000), 3);
    expect(obj.peak_bytes as number).toBeGreaterThan(0);
    expect(Number.isInteger(obj.peak_bytes)).toBe(true);
  });

  it('generation: prefill, decode, decode vs recompute, whole generate()', async () => {
    const shape = { prompts: 2, promptLen: 3, newTokens: 4 };
    const rs = records(await benchGenerate(backend, 'reference', shape, once, tinyModel));
    expect(rs.map((r) => r.op)).toEqual(['generate_prefill', 'generate_decode', 'decode_vs_recompute', 'generate']);
    const vs = expectLineFormat(JSON.stringify(recordJson(rs[2])));
    expect(vs.recompute_ms as number).toBeGreaterThan(0);
    expect(vs.speedup as number).toBeCloseTo((vs.recompute_ms as number) / (vs.ms as number), 2);
    for (const r of rs) expectLineFormat(JSON.stringify(recordJson(r)));
  });

  it('adds vs and ratio = our throughput ÷ the peer\'s', () => {
    const ours: BenchRecord = { op: 'matmul_train', backend: 'wasm-2t', shape: [8, 8, 8], ms: 1, gflops: 6, runs: 5 };
    const peer: BenchRecord = { op: 'matmul_train', backend: 'tfjs-wasm', shape: [8, 8, 8], ms: 2, gflops: 3, runs: 5 };
    const line = JSON.stringify(recordJson(ours, peer));
    const obj = expectLineFormat(line);
    expect(Object.keys(obj).slice(-2)).toEqual(['vs', 'ratio']);
    expect(obj.ratio).toBe(2);
  });
});

describe('case selection', () => {
  it('parses comma lists and rejects unknown names', () => {
    expect(parseCaseNames(undefined)).toEqual([...BENCH_CASES]);
    expect(parseCaseNames(['generate,attention', 'matmul'])).toEqual(['matmul', 'attention', 'generate']);
    expect(() => parseCaseNames(['attention,flash'])).toThrow(/unknown case 'flash'/);
  });

  it('`dapo bench --backend reference --only matmul --json` prints JSON lines only', async () => {
    const lines: string[] = [];
    const rs = await runBench({ backend: ['reference'], json: true, quick: true, peers: false, only: ['matmul'] }, (l) => lines.push(l));
    expect(rs.length).toBeGreaterThan(0);
    expect(lines).toHaveLength(rs.length);
    for (const l of lines) expect(expectLineFormat(l).op).toBe('matmul');
  });
});

describe('TF.js peers (tfjs-wasm) at tiny shapes', () => {
  it('produce records that pair with ours', async () => {
    let tf;
    try {
      tf = await loadTfjs('tfjs-wasm');
    } catch (e) {
      console.warn(`[skip] tfjs-wasm unavailable: ${(e as Error).message}`);
      return;
    }
    const theirs = [
      ...await tfjsAttention(tf, 'tfjs-wasm', [1, 2, 8, 4], once),
      ...await tfjsSoftmaxGather(tf, 'tfjs-wasm', [6, 10], once),
      await tfjsMatmulTrain(tf, 'tfjs-wasm', 8, once),
    ];
    expect(theirs.map((r) => `${r.op} ${r.shape}`)).toEqual([
      'attention_fwd 1,2,8,4', 'attention_bwd 1,2,8,4', 'softmax_gather_fwd 6,10', 'softmax_gather_bwd 6,10', 'matmul_train 8,8,8',
    ]);
    for (const r of theirs) expectLineFormat(JSON.stringify(recordJson(r)));
  });
});
