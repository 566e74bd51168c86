// What a `dapo bench --json` / bench-page line must look like, shared by the CLI, page and compare tests.
import { expect } from 'vitest';

/** The ops each case records (src/bench/*_bench.ts). */
export const CASE_OPS: Record<string, string[]> = {
  matmul: ['matmul'],
  attention: ['attention_fwd', 'attention_bwd'],
  softmax_gather: ['softmax_gather_fwd', 'softmax_gather_bwd'],
  matmul_train: ['matmul_train'],
  train_step: ['train_step'],
  generate: ['generate_prefill', 'generate_decode', 'decode_vs_recompute', 'generate'],
  dapo_step: ['dapo_step'],
  smollm2_135m: ['smollm2_135m/generate_prefill', 'smollm2_135m/generate_decode', 'smollm2_135m/generate', 'smollm2_135m/train_step_full', 'smollm2_135m/train_step_lora', 'smollm2_135m/dapo_step_full', 'smollm2_135m/dapo_step_lora'],
  qwen25_05b: ['qwen25_05b/generate_prefill', 'qwen25_05b/generate_decode', 'qwen25_05b/generate', 'qwen25_05b/train_step_full', 'qwen25_05b/train_step_lora', 'qwen25_05b/dapo_step_full', 'qwen25_05b/dapo_step_lora'],
};

const THROUGHPUT_KEYS = ['gflops', 'gbps', 'tokens_per_s'];

/** A record line: op, backend, shape, ms first, exactly one finite throughput figure, finite numbers only. */
export function expectRecordLine(line: string): Record<string, unknown> {
  const obj = JSON.parse(line) as Record<string, unknown>;
  expect(Object.keys(obj).slice(0, 4), line).toEqual(['op', 'backend', 'shape', 'ms']);
  expect(typeof obj.op).toBe('string');
  expect(typeof obj.backend).toBe('string');
  expect(Array.isArray(obj.shape) && (obj.shape as unknown[]).every((d) => Number.isInteger(d) && (d as number) > 0), line).toBe(true);
  expect(THROUGHPUT_KEYS.filter((k) => k in obj), line).toHaveLength(1);
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v === 'number') expect(Number.isFinite(v) && v >= 0, `${k} in ${line}`).toBe(true);
  }
  expect(obj.ms as number, line).toBeGreaterThan(0);
  if ('vs' in obj) expect(Object.keys(obj).slice(-2)).toEqual(['vs', 'ratio']);
  return obj;
}
