// The benchmark cases of `dapo bench` by name, each at its full and its small (--quick) size.
// --quick runs the small shapes (stated next to each *_QUICK constant) with a shorter time budget.
import type { Backend } from '../backend/backend.js';
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

/** --quick matmul: the squares up to 512. */
export const matmulShapes = (small: boolean) => (small ? MATMUL_SHAPES.filter(([m]) => m <= 512) : MATMUL_SHAPES);

export interface BenchSizes {
  matmul: readonly (readonly [number, number, number])[];
  attention: typeof ATTENTION_SHAPE;
  softmaxGather: typeof SOFTMAX_GATHER_SHAPE;
  matmulTrainN: number;
  trainStep: typeof TRAIN_STEP_SHAPE;
  generate: typeof GENERATE_SHAPE;
  dapoStep: typeof DAPO_STEP_SHAPE;
  /** Real-model shapes (random weights); --quick: the same cases at a tiny shape. */
  real: Record<keyof typeof REAL_SHAPES, RealShape>;
}

export function benchSizes(small: boolean): BenchSizes {
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
    case 'train_step': return [await benchTrainStep(backend, label, sizes.trainStep, timing, undefined, { profile: true })];
    case 'generate': return benchGenerate(backend, label, sizes.generate, timing);
    case 'dapo_step': return [await benchDapoStep(backend, label, sizes.dapoStep, timing)];
    case 'smollm2_135m':
    case 'qwen25_05b': return benchRealShape(backend, label, sizes.real[name]);
  }
}
