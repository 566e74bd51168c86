// Real-model bench cases (src/bench/real_shapes_bench.ts) at their --quick shape on the reference backend: every
// case yields a record through the same code as the full shape; a limit the shape cannot meet yields clean
// "does not fit" records; the stated peer pairs only with the full-parameter DAPO step at the 163 M shape on wasm.
// The profile wrapper times every kernel call by category and restores the backend afterwards.
import { afterAll, describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import { type BenchRecord, isFailure } from '../../src/bench/common.js';
import { REAL_SHAPES, STATED_SMOLLM2_DAPO_STEP, benchRealShape, quickShape, statedRealPeerFor } from '../../src/bench/real_shapes_bench.js';
import { BENCH_CASES, benchSizes } from '../../src/bench/cases.js';
import { recordJson, recordText } from '../../src/bench/format.js';
import { PROFILE_CATEGORIES, categoryOf, profileRun } from '../../src/bench/profile.js';
import { parameterCount, resolveModelConfig } from '../../src/nn/config.js';
import { WASM_ADDRESS_HEADROOM, estimateMemory, wasmAddressSpace } from '../../src/rl/memory_plan.js';
import { setBackend } from '../../src/tensor/engine.js';
import * as T from '../../src/tensor/index.js';

const backend = new ReferenceBackend();
afterAll(() => backend.destroy());

describe('real-shape bench cases', () => {
  it('the shapes are the models the issue names: 163 M untied and 494 M tied parameters', () => {
    expect(Math.round(parameterCount(resolveModelConfig(REAL_SHAPES.smollm2_135m.model)) / 1e6)).toBe(163);
    expect(Math.round(parameterCount(resolveModelConfig({ ...REAL_SHAPES.qwen25_05b.model })) / 1e6)).toBe(494);
    expect(BENCH_CASES).toContain('smollm2_135m');
    expect(benchSizes('quick').real.qwen25_05b.model.dModel).toBe(32);
    expect(benchSizes('full').real.qwen25_05b.model.dModel).toBe(896);
  });

  for (const name of ['smollm2_135m', 'qwen25_05b'] as const) {
    it(`${name} --quick: generation, full and LoRA train steps, full and LoRA DAPO steps, each a record with a profile`, async () => {
      const outcomes = await benchRealShape(backend, 'reference', quickShape(REAL_SHAPES[name]));
      const failures = outcomes.filter(isFailure);
      expect(failures, JSON.stringify(failures)).toEqual([]);
      const records = outcomes as BenchRecord[];
      expect(records.map((r) => r.op)).toEqual([
        `${name}/generate_prefill`, `${name}/generate_decode`, `${name}/generate`,
        `${name}/train_step_full`, `${name}/train_step_lora`, `${name}/dapo_step_full`, `${name}/dapo_step_lora`,
      ]);
      for (const r of records) {
        const obj = recordJson(r);
        expect(obj.ms as number).toBeGreaterThan(0);
        expect(obj.tokens_per_s as number).toBeGreaterThan(0);
      }
      for (const r of records.slice(3)) {
        expect(r.profile?.calls.matmul).toBeGreaterThan(0);
        expect(recordText(r)).toMatch(/\n {6}profile of .* s: matmul .*%, attention .*%, elementwise .*%, loss .*%, optimizer .*%, memory .*%, host .*%/);
      }
      const dapo = records[5];
      expect(dapo.extra!.micro_batch).toBe(4);
    }, 120_000);
  }

  it('train_step_full runs with activation checkpointing when that is what makes it fit, and its record says so', async () => {
    const shape = quickShape(REAL_SHAPES.smollm2_135m);
    const model = resolveModelConfig(shape.model);
    const space = (checkpointing: boolean) => wasmAddressSpace(estimateMemory(model, {
      microBatchSize: shape.train.batch, trainLength: shape.train.seqLen, generationBatch: 1, promptLength: 1, generationLength: 2, reference: false, checkpointing,
    }).trainPeak);
    expect(space(true)).toBeLessThan(space(false));
    const between = { backend: 'wasm' as const, totalBytes: (space(true) + space(false)) / 2 / WASM_ADDRESS_HEADROOM, bufferBytes: null };
    const [checkpointed] = await benchRealShape(backend, 'reference', shape, between, ['train_step_full']);
    expect(isFailure(checkpointed), JSON.stringify(checkpointed)).toBe(false);
    expect(recordJson(checkpointed as BenchRecord).checkpointing).toBe(true);
    expect(recordText(checkpointed as BenchRecord)).toMatch(/ checkpointing/);
    const [plain] = await benchRealShape(backend, 'reference', shape, undefined, ['train_step_full']);
    expect(recordJson(plain as BenchRecord).checkpointing).toBe(false);
  });

  it('a limit the shape cannot meet gives "does not fit" records naming the limit, never a raw error', async () => {
    const outcomes = await benchRealShape(backend, 'reference', REAL_SHAPES.qwen25_05b, { backend: 'wasm', totalBytes: 64 * 1024 ** 2, bufferBytes: null });
    expect(outcomes).toHaveLength(5);
    for (const o of outcomes) {
      expect(isFailure(o)).toBe(true);
      if (isFailure(o)) expect(o.error).toMatch(/^does not fit: the run needs about .* GiB of WASM address space .*, over 60\.8 MiB \(95 % of the 64\.0 MiB limit\)/);
    }
  });

  it('the stated peer pairs only with the wasm full-parameter DAPO step at the 163 M shape', () => {
    const ours: BenchRecord = { op: 'smollm2_135m/dapo_step_full', backend: 'wasm-2t', shape: [2, 8, 32, 32], ms: 20000, tokensPerS: 131.6, runs: 2 };
    expect(statedRealPeerFor(ours)).toBe(STATED_SMOLLM2_DAPO_STEP);
    expect(statedRealPeerFor({ ...ours, backend: 'webgpu' })).toBeUndefined();
    expect(statedRealPeerFor({ ...ours, op: 'smollm2_135m/dapo_step_lora' })).toBeUndefined();
    expect(recordJson(ours, STATED_SMOLLM2_DAPO_STEP)).toMatchObject({ vs: 'stated-eager-cpu', ratio: 2 });
    // The stated training figure: 16 sequences × 63 tokens in 15.3 s.
    expect(Math.abs((16 * 63) / 15.3 - 65.8)).toBeLessThan(0.1);
  });
});

describe('profileRun', () => {
  it('times each call by category, leaves the rest to host, and restores the backend', async () => {
    setBackend(backend);
    const ownBefore = Object.getOwnPropertyNames(backend).sort();
    const kernels = backend.kernels;
    const { profile } = await profileRun(backend, async () => {
      T.tidy(() => {
        const a = T.randNormal([32, 32], 1);
        T.matmul(a, a);
        T.add(a, 1);
      });
      await new Promise((resolve) => setTimeout(resolve, 20));
    });
    expect(profile.timed).toBe(true);
    expect(profile.calls.matmul).toBe(1);
    expect(profile.calls.elementwise).toBeGreaterThanOrEqual(1);
    expect(profile.ms.host).toBeGreaterThanOrEqual(15);
    const sum = PROFILE_CATEGORIES.reduce((acc, c) => acc + profile.ms[c], 0);
    expect(sum).toBeCloseTo(profile.wallMs, 6);
    expect(backend.kernels).toBe(kernels);
    expect(Object.getOwnPropertyNames(backend).sort()).toEqual(ownBefore);
  });

  it('sorts kernels into categories', () => {
    expect(['matmul', 'lowRankAdd'].map(categoryOf)).toEqual(['matmul', 'matmul']);
    expect(['attention', 'attentionBackward'].map(categoryOf)).toEqual(['attention', 'attention']);
    expect(['logSoftmaxGather', 'tokenLossBackward'].map(categoryOf)).toEqual(['loss', 'loss']);
    expect(['adamw', 'sumSquares'].map(categoryOf)).toEqual(['optimizer', 'optimizer']);
    expect(['rmsNorm', 'rope', 'swiglu', 'copy', 'binary'].map(categoryOf)).toEqual(Array(5).fill('elementwise'));
  });
});
