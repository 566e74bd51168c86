// The benchmark cases of `dapo bench` by name, each at its full and its small (--quick) size, and a tiny size
// (a tiny model too) that only proves every code path runs: the browser page's tests use it.
// --quick runs the small shapes (stated next to each *_QUICK constant) with a shorter time budget.
import type { Backend } from '../backend/backend.js';
import type { ModelConfig } from '../nn/config.js';
import type { BenchOutcome, BenchRecord, TimingOptions } from './common.js';
import { MATMUL_SHAPES, benchMatmul } from './matmul_bench.js';
import { ATTENTION_SHAPE, ATTENTION_SHAPE_QUICK, benchAttention } from './attention_bench.js';
import { SOFTMAX_GATHER_SHAPE, SOFTMAX_GATHER_SHAPE_QUICK, benchSoftmaxGather } from './softmax_gather_bench.js';
import { MATMUL_TRAIN_N, MATMUL_TRAIN_N_QUICK, benchMatmulTrain } from './matmul_train_bench.js';
import { TRAIN_STEP_SHAPE, TRAIN_STEP_SHAPE_QUICK, benchTrainStep } from './train_bench.js';
import { GENERATE_SHAPE, GENERATE_SHAPE_QUICK, benchGenerate } from './generate_bench.js';
import { DAPO_STEP_SHAPE, DAPO_STEP_SHAPE_QUICK, benchDapoStep } from './dapo_step_bench.js';
import { REAL_SHAPES, type RealShape, benchRealShape, quickShape } from './real_shapes_bench.js';

export const BENCH_CASES = [
  'matmul', 'attention', 'softmax_gather', 'matmul_train', 'train_step', 'generate', 'dapo_step', 'smollm2_135m', 'qwen25_05b',
] as const;
export type BenchCaseName = (typeof BENCH_CASES)[number];

/** full: the sizes of the README table; quick: `--quick`; tiny: seconds even on a software GPU. */
export const BENCH_SIZES = ['full', 'quick', 'tiny'] as const;
export type BenchSize = (typeof BENCH_SIZES)[number];

/** --quick matmul: the squares up to 512. */
export const matmulShapes = (small: boolean) => (small ? MATMUL_SHAPES.filter(([m]) => m <= 512) : MATMUL_SHAPES);

/** The tiny model of the tiny size (train_step, generate, dapo_step): one layer, 16 wide. */
export const TINY_MODEL: Partial<ModelConfig> = { vocabSize: 11, dModel: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 24, maxSeqLen: 16 };

export interface BenchSizes {
  matmul: readonly (readonly [number, number, number])[];
  attention: typeof ATTENTION_SHAPE;
  softmaxGather: typeof SOFTMAX_GATHER_SHAPE;
  matmulTrainN: number;
  trainStep: typeof TRAIN_STEP_SHAPE;
  generate: typeof GENERATE_SHAPE;
  dapoStep: typeof DAPO_STEP_SHAPE;
  /** The model of the model cases; absent → the default policy model. */
  model?: Partial<ModelConfig>;
  /** Real-model shapes (random weights); --quick: the same cases at a tiny shape. */
  real: Record<keyof typeof REAL_SHAPES, RealShape>;
}

export function benchSizes(size: BenchSize): BenchSizes {
  if (size === 'tiny') {
    return {
      matmul: [[64, 48, 40]],
      attention: [1, 2, 16, 8],
      softmaxGather: [16, 64],
      matmulTrainN: 32,
      trainStep: { batch: 2, seqLen: 8 },
      generate: { prompts: 2, promptLen: 4, newTokens: 3 },
      dapoStep: { prompts: 2, groupSize: 2, promptLen: 4, newTokens: 3, microBatchSize: 4 },
      model: TINY_MODEL,
      real: { smollm2_135m: quickShape(REAL_SHAPES.smollm2_135m), qwen25_05b: quickShape(REAL_SHAPES.qwen25_05b) },
    };
  }
  const small = size === 'quick';
  return {
    matmul: matmulShapes(small),
    attention: small ? ATTENTION_SHAPE_QUICK : ATTENTION_SHAPE,
    softmaxGather: small ? SOFTMAX_GATHER_SHAPE_QUICK : SOFTMAX_GATHER_SHAPE,
    matmulTrainN: small ? MATMUL_TRAIN_N_QUICK : MATMUL_TRAIN_N,
    trainStep: small ? TRAIN_STEP_SHAPE_QUICK : TRAIN_STEP_SHAPE,
    generate: small ? GENERATE_SHAPE_QUICK : GENERATE_SHAPE,
    dapoStep: small ? DAPO_STEP_SHAPE_QUICK : DAPO_STEP_SHAPE,
    real: {
      smollm2_135m: small ? quickShape(REAL_SHAPES.smollm2_135m) : REAL_SHAPES.smollm2_135m,
      qwen25_05b: small ? quickShape(REAL_SHAPES.qwen25_05b) : REAL_SHAPES.qwen25_05b,
    },
  };
}

/** Parses a comma list (or several) of case names; empty → every case. Throws naming unknown ones. */
export function parseCaseNames(lists: readonly string[] | undefined): BenchCaseName[] {
  const names = (lists ?? []).flatMap((l) => l.split(',')).map((n) => n.trim()).filter(Boolean);
  const unknown = names.filter((n) => !(BENCH_CASES as readonly string[]).includes(n));
  if (unknown.length) throw new Error(`bench: unknown case${unknown.length > 1 ? 's' : ''} '${unknown.join("', '")}' (choose from ${BENCH_CASES.join(', ')})`);
  return names.length ? BENCH_CASES.filter((c) => names.includes(c)) : [...BENCH_CASES];
}

/** Runs one case on `backend` at the given sizes, yielding its records (several per case) and failed passes. */
export async function runCase(name: BenchCaseName, backend: Backend, label: string, sizes: BenchSizes, timing: TimingOptions): Promise<BenchOutcome[]> {
  switch (name) {
    case 'matmul': {
      const out: BenchRecord[] = [];
      for (const shape of sizes.matmul) out.push(await benchMatmul(backend, label, shape, timing));
      return out;
    }
    case 'attention': return benchAttention(backend, label, sizes.attention, timing);
    case 'softmax_gather': return benchSoftmaxGather(backend, label, sizes.softmaxGather, timing);
    case 'matmul_train': return [await benchMatmulTrain(backend, label, sizes.matmulTrainN, timing)];
    case 'train_step': return [await benchTrainStep(backend, label, sizes.trainStep, timing, sizes.model, { profile: true })];
    case 'generate': return benchGenerate(backend, label, sizes.generate, timing, sizes.model);
    case 'dapo_step': return [await benchDapoStep(backend, label, sizes.dapoStep, timing, sizes.model)];
    case 'smollm2_135m':
    case 'qwen25_05b': return benchRealShape(backend, label, sizes.real[name]);
  }
}

/** Parses a size name, naming the allowed ones. */
export function parseBenchSize(value: string): BenchSize {
  if (!(BENCH_SIZES as readonly string[]).includes(value)) throw new Error(`bench: unknown size '${value}' (choose from ${BENCH_SIZES.join(', ')})`);
  return value as BenchSize;
}
