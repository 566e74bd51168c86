// Bench cases at the shapes of real small models, with seeded random weights (nothing is downloaded): generation, a
// full-parameter and a LoRA train step, and a DAPO step full and LoRA, through the same code as the toy cases
// (generate_bench.ts, train_bench.ts, dapo_step_bench.ts). Before each case the memory plan (src/rl/memory_plan.ts)
// picks the largest micro-batch that fits the backend; a case that cannot fit at all yields a "does not fit: …"
// record instead of running into a raw allocation error. --quick runs the same cases at a tiny shape.
import type { Backend } from '../backend/backend.js';
import { setBackend } from '../tensor/engine.js';
import { type ModelConfig, resolveModelConfig } from '../nn/config.js';
import { TransformerLM } from '../nn/transformer.js';
import { LORA_TARGET_MODULES, applyLora, removeLora, trainableParameters } from '../nn/lora.js';
import { AdamW } from '../optim/adamw.js';
import { mix32 } from '../backend/rng.js';
import { DAPO_DEFAULTS } from '../rl/config.js';
import {
  type LoraShape, type MemoryLimits, backendMemoryLimits, estimateMemory, memoryProblems, wasmAddressSpace,
} from '../rl/memory_plan.js';
import { type BenchFailure, type BenchOutcome, type BenchRecord, type TimingOptions, attempt, median, randomInts, repeatAsync, tokensPerSOf } from './common.js';
import { type DapoStepShape, runDapoStep } from './dapo_step_bench.js';
import { benchGenerate } from './generate_bench.js';
import { benchTrainStep } from './train_bench.js';
import { profileRun } from './profile.js';

export interface RealShape {
  name: string;
  model: Partial<ModelConfig>;
  /** The DAPO step: prompts × G sequences of promptLen + newTokens; microBatchSize is the most the plan may pick. */
  dapo: DapoStepShape;
  generate: { prompts: number; promptLen: number; newTokens: number };
  train: { batch: number; seqLen: number };
}

const SMOLLM2_135M: Partial<ModelConfig> = {
  vocabSize: 49152, dModel: 576, nLayers: 30, nHeads: 9, nKvHeads: 3, ffnDim: 1536, maxSeqLen: 128, ropeTheta: 100000, tieEmbeddings: false,
};
const QWEN25_05B: Partial<ModelConfig> = {
  vocabSize: 151936, dModel: 896, nLayers: 24, nHeads: 14, nKvHeads: 2, ffnDim: 4864, maxSeqLen: 128, ropeTheta: 1000000, tieEmbeddings: true, attentionBias: true,
};
/** The issue's work at these shapes: 2 prompts × G 8 = 16 sequences of 32 prompt + 32 new tokens. */
const ISSUE_DAPO: DapoStepShape = { prompts: 2, groupSize: 8, promptLen: 32, newTokens: 32, microBatchSize: 16 };

export const REAL_SHAPES: Record<'smollm2_135m' | 'qwen25_05b', RealShape> = {
  smollm2_135m: { name: 'smollm2_135m', model: SMOLLM2_135M, dapo: ISSUE_DAPO, generate: { prompts: 16, promptLen: 32, newTokens: 32 }, train: { batch: 16, seqLen: 64 } },
  qwen25_05b: { name: 'qwen25_05b', model: QWEN25_05B, dapo: ISSUE_DAPO, generate: { prompts: 16, promptLen: 32, newTokens: 32 }, train: { batch: 16, seqLen: 64 } },
};

/** --quick: the same cases (and code paths: untied/tied head, GQA, biases) at a shape CI runs in seconds. */
export function quickShape(shape: RealShape): RealShape {
  const m = shape.model;
  return {
    name: shape.name,
    model: { ...m, vocabSize: 97, dModel: 32, nLayers: 2, nHeads: 4, nKvHeads: m.nKvHeads === 2 ? 2 : 1, ffnDim: 48, maxSeqLen: 32 },
    dapo: { prompts: 2, groupSize: 2, promptLen: 4, newTokens: 4, microBatchSize: 4 },
    generate: { prompts: 2, promptLen: 4, newTokens: 4 },
    train: { batch: 2, seqLen: 8 },
  };
}

/** Steps at these shapes take up to minutes: one timed run each, whatever the case list's timing says. */
const ONE_RUN: TimingOptions = { warmup: 0, runs: 1, maxRuns: 1, budgetMs: 0 };

/** LoRA as `dapo train --lora` sets it: r 16, alpha 32, every projection; dropout off so steps are comparable. */
const BENCH_LORA = { r: 16, alpha: 32, dropout: 0, targetModules: [...LORA_TARGET_MODULES] };
const loraShape: LoraShape = { r: BENCH_LORA.r, targets: BENCH_LORA.targetModules, dropout: BENCH_LORA.dropout };

/** The stated peer of the issue at the 163 M shape, WASM 2 threads: quoted, never measured here. */
export const STATED_REAL_PEER_LABEL = 'stated-eager-cpu';
export const STATED_SMOLLM2_DAPO_STEP: BenchRecord = {
  op: 'smollm2_135m/dapo_step_full', backend: STATED_REAL_PEER_LABEL, shape: [2, 8, 32, 32], ms: 28200, tokensPerS: 65.8,
  extra: { gen_tokens_per_s: 39.6, train_tokens_per_s: 65.8 }, runs: 0,
};

/** The stated peer for a wasm record of the full-parameter DAPO step at the 163 M shape. */
export function statedRealPeerFor(r: BenchRecord): BenchRecord | undefined {
  const p = STATED_SMOLLM2_DAPO_STEP;
  return r.op === p.op && r.backend.startsWith('wasm') && r.shape.join() === p.shape.join() ? p : undefined;
}

function doesNotFit(op: string, label: string, shape: readonly number[], problems: string[]): BenchFailure {
  return { op, backend: label, shape: [...shape], error: `does not fit: ${problems.join('; ')}` };
}

/** Any failure worded as a memory limit becomes "does not fit"; others keep their message. */
async function guarded(op: string, label: string, shape: readonly number[], measure: () => Promise<BenchRecord>): Promise<BenchOutcome> {
  const outcome = await attempt(op, label, shape, measure);
  if ('error' in outcome && /out of memory|memory\.grow|out of bounds|maxBufferSize|maxStorageBufferBindingSize|Array buffer allocation/i.test(outcome.error)) {
    return { ...outcome, error: `does not fit: ${outcome.error}` };
  }
  return outcome;
}

/**
 * The micro-batch of a DAPO step: the largest ≤ `most` dividing `sequences` whose update fits without activation
 * checkpointing, unless checkpointing lets `most` itself fit (then `most` with checkpointing: the issue's shape, one
 * micro-batch per step; see fittingMicroBatch's callers); null when not even 1 fits.
 */
function fittingMicroBatch(model: ModelConfig, lora: LoraShape | null, sequences: number, length: number, most: number, generation: { batch: number; prompts: number; prompt: number; total: number }, limits: MemoryLimits, preferCheckpointing: boolean): { micro: number | null; checkpointing: boolean; problems: string[] } {
  const problemsAt = (k: number, checkpointing: boolean) => memoryProblems(estimateMemory(model, {
    microBatchSize: k, trainLength: length, responseLength: generation.total - generation.prompt, generationBatch: generation.batch, generationPrompts: generation.prompts, promptLength: generation.prompt, generationLength: generation.total,
    reference: false, microBatchesPerStep: sequences / k, checkpointing,
  }, { lora, limits }), limits);
  const top = Math.min(most, sequences);
  let last: string[] = [];
  if (problemsAt(top, false).length === 0) return { micro: top, checkpointing: false, problems: [] };
  if (preferCheckpointing && problemsAt(top, true).length === 0) return { micro: top, checkpointing: true, problems: [] };
  for (let k = top; k >= 1; k--) {
    if (sequences % k !== 0) continue;
    last = problemsAt(k, false);
    if (!last.length) return { micro: k, checkpointing: false, problems: [] };
  }
  for (let k = top; k >= 1; k--) {
    if (sequences % k !== 0 || problemsAt(k, true).length) continue;
    return { micro: k, checkpointing: true, problems: [] };
  }
  return { micro: null, checkpointing: false, problems: last };
}

/** A model of `shape` with AdamW over what trains (every weight, or the LoRA adapters). */
function modelAndOptimizer(shape: RealShape, lora: boolean): { model: TransformerLM; opt: AdamW } {
  const model = new TransformerLM(shape.model, 1);
  if (lora) applyLora(model, { ...BENCH_LORA, seed: 1 });
  const d = DAPO_DEFAULTS;
  const opt = new AdamW(lora ? trainableParameters(model) : model.params, { lr: d.lr, weightDecay: d.weightDecay, beta1: d.beta1, beta2: d.beta2, maxGradNorm: d.maxGradNorm });
  return { model, opt };
}

function disposeModel(model: TransformerLM, opt: AdamW): void {
  opt.dispose();
  removeLora(model);
  model.dispose();
}

/**
 * Whether the DAPO step takes its whole micro-batch (shape.dapo.microBatchSize) with activation checkpointing over a
 * smaller one without, when only the former fits. No: this step is on-policy (1 epoch, 1 mini-batch), so it has no
 * old-log-prob pass (oldLogprobsNeeded), where the larger micro-batch used to win back what checkpointing's extra
 * forward costs (163 M, WASM 2 threads, with that pass: micro-batch 8 plain 81.5 s vs 16 checkpointed 81.1 s, medians
 * of 5 alternated runs); without it the extra forward is pure cost. The bench now does what `gradientCheckpointing:
 * 'auto'` does in dapo train: the largest micro-batch that fits without, checkpointing only when nothing fits.
 */
const DAPO_PREFERS_CHECKPOINTING = false;

/** One DAPO step record at `shape` (full or LoRA), with the micro-batch the plan picked and the step's profile. */
async function benchRealDapoStep(backend: Backend, label: string, shape: RealShape, lora: boolean, limits: MemoryLimits): Promise<BenchOutcome> {
  const op = `${shape.name}/dapo_step_${lora ? 'lora' : 'full'}`;
  const { prompts: B, groupSize: G, promptLen: P, newTokens: N } = shape.dapo;
  const dims = [B, G, P, N];
  const config = resolveModelConfig(shape.model);
  const sequences = B * G;
  const fit = fittingMicroBatch(config, lora ? loraShape : null, sequences, P + N - 1, shape.dapo.microBatchSize, { batch: sequences, prompts: shape.dapo.prompts, prompt: P, total: P + N }, limits,
    DAPO_PREFERS_CHECKPOINTING);
  if (fit.micro === null) return doesNotFit(op, label, dims, fit.problems);
  return guarded(op, label, dims, async () => {
    setBackend(backend);
    const liveBefore = backend.memory().liveBytes;
    const { model, opt } = modelAndOptimizer(shape, lora);
    model.checkpointActivations = fit.checkpointing;
    try {
      const ids = randomInts(B * P, config.vocabSize, 71);
      const prompts = Array.from({ length: B }, (_, b) => ids.slice(b * P, (b + 1) * P));
      const step = { ...shape.dapo, microBatchSize: fit.micro! };
      let seed = 0;
      // A step takes up to minutes at these shapes: one timed step (the first also compiles/JITs), then one profiled.
      const repeat = ONE_RUN;
      const runs = await repeatAsync(() => runDapoStep(model, opt, prompts, step, mix32(0xda90 + seed++)), repeat);
      const profiled = await profileRun(backend, () => runDapoStep(model, opt, prompts, step, mix32(0xda90 + seed++)));
      const all = [...runs, profiled.result];
      const genMs = median(all.map((r) => r.genMs));
      const trainMs = median(all.map((r) => r.trainMs));
      const trainTokensPerS = tokensPerSOf(sequences * (P + N), trainMs);
      return {
        op, backend: label, shape: dims, ms: median(all.map((r) => r.totalMs)), tokensPerS: trainTokensPerS,
        extra: {
          gen_tokens_per_s: tokensPerSOf(sequences * N, genMs), train_tokens_per_s: trainTokensPerS, gen_ms: genMs, train_ms: trainMs,
          micro_batch: fit.micro!, peak_bytes: backend.memory().peakBytes - liveBefore,
        },
        profile: profiled.profile,
        checkpointing: fit.checkpointing,
        runs: all.length,
      };
    } finally {
      disposeModel(model, opt);
    }
  });
}

/** A train step (forward, cross-entropy, backward, AdamW) at `shape`, full or LoRA, profiled once. */
async function benchRealTrainStep(backend: Backend, label: string, shape: RealShape, lora: boolean, limits: MemoryLimits): Promise<BenchOutcome> {
  const op = `${shape.name}/train_step_${lora ? 'lora' : 'full'}`;
  const { batch, seqLen } = shape.train;
  const config = resolveModelConfig(shape.model);
  const problemsAt = (checkpointing: boolean) => {
    const e = estimateMemory(config, { microBatchSize: batch, trainLength: seqLen, generationBatch: 1, promptLength: 1, generationLength: 2, reference: false, checkpointing },
      { lora: lora ? loraShape : null });
    // A train step generates nothing: only the update's peak counts.
    return memoryProblems({ ...e, generationPeak: 0, addressSpace: wasmAddressSpace(e.trainPeak, limits.threads) }, limits);
  };
  // Without activation checkpointing when that fits (no extra forward); with it when that is what makes the step fit.
  const plain = problemsAt(false);
  const checkpointing = plain.length > 0 && problemsAt(true).length === 0;
  if (plain.length && !checkpointing) return doesNotFit(op, label, [batch, seqLen], plain);
  return guarded(op, label, [batch, seqLen], async () => {
    const r = await benchTrainStep(backend, label, shape.train, ONE_RUN, shape.model, {
      lora: lora ? { ...BENCH_LORA, seed: 1 } : null, profile: true, checkpointActivations: checkpointing, fusedHead: true,
    });
    return { ...r, op, checkpointing };
  });
}

/** Generation at `shape` (prefill, decode, the whole generate()). */
async function benchRealGenerate(backend: Backend, label: string, shape: RealShape, limits: MemoryLimits): Promise<BenchOutcome[]> {
  const { prompts, promptLen, newTokens } = shape.generate;
  const config = resolveModelConfig(shape.model);
  const e = estimateMemory(config, { microBatchSize: 1, trainLength: 1, generationBatch: prompts, promptLength: promptLen, generationLength: promptLen + newTokens, reference: false }, {});
  // Generation alone: no gradients or moments.
  const generationPeak = e.weights + e.kvCache + e.generationScratch;
  // Nothing trains: the embedding is a frozen table (WebGPU binds it in windows); what kernels bind whole is the
  // decode's logits or an MLP weight.
  const bound = [
    { what: `logits [${prompts}, ${config.vocabSize}]`, bytes: prompts * config.vocabSize * 4 },
    { what: `MLP weight [${config.ffnDim}, ${config.dModel}]`, bytes: config.ffnDim * config.dModel * 4 },
  ].reduce((a, b) => (b.bytes > a.bytes ? b : a));
  const problems = memoryProblems({
    ...e, trainPeak: 0, generationPeak, addressSpace: wasmAddressSpace(generationPeak, limits.threads),
    largestTensor: { what: `embedding [${config.vocabSize}, ${config.dModel}]`, bytes: config.vocabSize * config.dModel * 4 }, largestBound: bound,
  }, limits);
  const op = `${shape.name}/generate`;
  const dims = [prompts, promptLen, newTokens];
  if (problems.length) return [doesNotFit(op, label, dims, problems)];
  try {
    const records = await benchGenerate(backend, label, shape.generate, ONE_RUN, shape.model, { skipRecompute: true });
    return records.map((r) => ({ ...r, op: `${shape.name}/${r.op}` }));
  } catch (err) {
    return [await guarded(op, label, dims, () => Promise.reject(err))];
  }
}

export const REAL_CASES = ['generate', 'train_step_full', 'train_step_lora', 'dapo_step_full', 'dapo_step_lora'] as const;
export type RealCase = (typeof REAL_CASES)[number];

/** The real-shape cases of `shape` on `backend` (default all, in REAL_CASES order); `limits` (default: the backend's)
 *  decide what fits. */
export async function benchRealShape(
  backend: Backend, label: string, shape: RealShape, limits: MemoryLimits = backendMemoryLimits(backend), cases: readonly RealCase[] = REAL_CASES,
): Promise<BenchOutcome[]> {
  const out: BenchOutcome[] = [];
  for (const c of REAL_CASES.filter((name) => cases.includes(name))) {
    if (c === 'generate') out.push(...await benchRealGenerate(backend, label, shape, limits));
    else if (c === 'train_step_full' || c === 'train_step_lora') out.push(await benchRealTrainStep(backend, label, shape, c === 'train_step_lora', limits));
    else out.push(await benchRealDapoStep(backend, label, shape, c === 'dapo_step_lora', limits));
  }
  return out;
}
