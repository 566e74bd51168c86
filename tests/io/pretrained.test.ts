// Loading Hugging Face model directories (issue #9, point 1): tiny random checkpoints in the real layouts give
// the logits of an independent float64 forward (reference backend to 1e-10, product backends to float32
// tolerance); every config that would change the math without being implemented is refused by name; weight
// problems are listed together; Hub ids resolve through the Hugging Face cache and fail clearly offline.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import type { Backend } from '../../src/backend/backend.js';
import * as T from '../../src/tensor/index.js';
import { fromHfConfig, toHfConfig } from '../../src/io/hf_config.js';
import { type ModelFiles, checkpointWeightDType, loadPretrainedFromFiles } from '../../src/io/pretrained.js';
import { applyLora, removeLora, resolveFrozenDType, storeFrozenWeights } from '../../src/nn/lora.js';
import { loadPretrained, resolveModelDir } from '../../src/io/pretrained_node.js';
import { encodeSafetensors } from '../../src/io/safetensors.js';
import { TransformerLM } from '../../src/nn/transformer.js';
import { productBackends } from '../support/backends.js';
import { assertClose } from '../support/close.js';
import { type HfConfig, type FixtureOptions, fixtureFiles, rawTensors, referenceLogits, writeFixture } from '../support/hf_fixture.js';

const tmp = mkdtempSync(join(tmpdir(), 'dapo-hf-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const base = { vocab_size: 37, num_hidden_layers: 2, max_position_embeddings: 64, rms_norm_eps: 1e-6, hidden_act: 'silu', torch_dtype: 'float32' };

/** Each layout of the issue, with how its files are written. */
const CASES: { name: string; config: HfConfig; files: FixtureOptions }[] = [
  {
    name: 'llama, head_dim ≠ hidden/heads, attention_bias (q/k/v/o), GQA, F32 single file',
    config: { ...base, model_type: 'llama', architectures: ['LlamaForCausalLM'], hidden_size: 24, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 8, intermediate_size: 40, rope_theta: 10000, attention_bias: true, mlp_bias: false, tie_word_embeddings: false, bos_token_id: 1, eos_token_id: [2, 5] },
    files: { dtype: 'F32' },
  },
  {
    name: 'qwen2 (implicit q/k/v biases), tied embeddings, one KV head, BF16 in 3 shards',
    config: { ...base, model_type: 'qwen2', hidden_size: 24, num_attention_heads: 3, num_key_value_heads: 1, intermediate_size: 32, rope_theta: 1000000, tie_word_embeddings: true, use_sliding_window: false, sliding_window: 16, max_window_layers: 1, bos_token_id: 0, eos_token_id: 3, pad_token_id: 4 },
    files: { dtype: 'BF16', shards: 3 },
  },
  {
    name: 'mistral with a sliding window covering the context, F16 in 2 shards',
    config: { ...base, model_type: 'mistral', hidden_size: 16, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 24, rope_theta: 10000, sliding_window: 4096, tie_word_embeddings: false },
    files: { dtype: 'F16', shards: 2 },
  },
  {
    name: 'llama3 rope scaling in rope_parameters (current transformers), head_dim 16',
    config: { ...base, model_type: 'llama', hidden_size: 32, num_attention_heads: 2, num_key_value_heads: 1, intermediate_size: 24, max_position_embeddings: 64, tie_word_embeddings: true,
      rope_parameters: { rope_type: 'llama3', rope_theta: 500000, factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 256 } },
    files: { dtype: 'F32', storeTiedHead: true },
  },
  {
    name: 'linear rope scaling (older rope_scaling with "type")',
    config: { ...base, model_type: 'llama', hidden_size: 16, num_attention_heads: 2, intermediate_size: 24, rope_theta: 10000, rope_scaling: { type: 'linear', factor: 4 } },
    files: { dtype: 'F32' },
  },
];

const SEQUENCE = [3, 17, 0, 36, 5, 5, 22, 9, 1, 30, 14];

async function modelLogits(model: TransformerLM, ids: number[]): Promise<number[]> {
  const input = T.tensor(Int32Array.from(ids), [1, ids.length], 'int32');
  const logits = T.noGrad(() => model.forward(input));
  const values = await logits.toArray();
  input.dispose();
  logits.dispose();
  return values;
}

describe('loaded checkpoints compute what transformers computes (reference backend, float64)', () => {
  beforeAll(() => T.setBackend(new ReferenceBackend()));

  for (const { name, config, files: options } of CASES) {
    it(name, async () => {
      const files = fixtureFiles(config, options);
      const want = referenceLogits(config, rawTensors(files), SEQUENCE);
      const loaded = await loadPretrainedFromFiles(files);
      assertClose(await modelLogits(loaded.model, SEQUENCE), want, `${config.model_type} logits`, 1e-10, 1e-10);
      loaded.model.dispose();
    });
  }

  it('keeps a BF16 / F16 checkpoint 16-bit under LoRA (frozenDtype auto): exactly the same logits, half the bytes', async () => {
    const dtypes = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' } as const;
    for (const { config, files: options } of CASES) {
      const files = fixtureFiles(config, options);
      const loaded = await loadPretrainedFromFiles(files);
      expect(checkpointWeightDType(loaded.model)).toBe(dtypes[options.dtype ?? 'F32']);
      const frozen = resolveFrozenDType('auto', { lora: true, checkpointDType: checkpointWeightDType(loaded.model) });
      if (frozen === 'float32') {
        loaded.model.dispose();
        continue;
      }
      const want = await modelLogits(loaded.model, SEQUENCE);
      applyLora(loaded.model, { r: 2, targetModules: 'all-linear' });
      const stored = await storeFrozenWeights(loaded.model, frozen);
      expect(stored.weights).toBeGreaterThan(0);
      expect(stored.bytesAfter).toBeLessThanOrEqual(stored.bytesBefore / 2 + 2 * stored.weights); // odd sizes pad one element
      expect(loaded.model.p('model.embed_tokens.weight').dtype).toBe(frozen);
      expect(await modelLogits(loaded.model, SEQUENCE), `${config.model_type} ${frozen}`).toEqual(want); // B = 0: the base model, exactly
      removeLora(loaded.model);
      loaded.model.dispose();
    }
  });

  it('loads a LoRA base straight into 16 bits (frozenDtype): the same weights and logits as converting after a float32 load, no float32 copy', async () => {
    for (const { config, files: options } of CASES) {
      const files = fixtureFiles(config, options);
      for (const setting of ['auto', 'bfloat16', 'float16'] as const) {
        const converted = await loadPretrainedFromFiles(files);
        const frozen = resolveFrozenDType(setting, { lora: true, checkpointDType: checkpointWeightDType(converted.model) });
        applyLora(converted.model, { r: 2, targetModules: 'all-linear' });
        if (frozen !== 'float32') await storeFrozenWeights(converted.model, frozen);

        const direct = await loadPretrainedFromFiles(files, { frozenDtype: setting });
        expect(checkpointWeightDType(direct.model)).toBe(checkpointWeightDType(converted.model));
        for (const [name, p] of direct.model.params) {
          const want = converted.model.params.get(name)!;
          // Linear and Embedding weights in the frozen dtype, frozen; norms and biases float32 and (before LoRA) trainable.
          expect(p.dtype, `${name} ${setting}`).toBe(want.dtype);
          if (p.dtype !== 'float32') expect(p.requiresGrad).toBe(false);
          else expect(p.requiresGrad).toBe(true);
          expect(Array.from(await p.read()), name).toEqual(Array.from(await want.read()));
        }
        applyLora(direct.model, { r: 2, targetModules: 'all-linear' });
        if (frozen === 'float32') {
          direct.model.dispose();
          removeLora(converted.model);
          converted.model.dispose();
          continue;
        }
        // Already stored: nothing left to convert.
        expect((await storeFrozenWeights(direct.model, frozen)).weights).toBe(0);
        expect(await modelLogits(direct.model, SEQUENCE)).toEqual(await modelLogits(converted.model, SEQUENCE));
        // Removing the adapters gives back trainable float32 weights, as after storeFrozenWeights.
        removeLora(direct.model);
        expect(direct.model.p('model.embed_tokens.weight').dtype).toBe('float32');
        expect(direct.model.p('model.embed_tokens.weight').requiresGrad).toBe(true);
        removeLora(converted.model);
        converted.model.dispose();
        direct.model.dispose();
      }
    }
  });

  it('loads a 16-bit LoRA base without ever holding the float32 model: the peak stays below half of it plus one tensor', async () => {
    const { config } = CASES[0];
    const files = fixtureFiles({ ...config, hidden_size: 64, head_dim: 16, intermediate_size: 96, vocab_size: 300 }, { dtype: 'BF16' });
    const reference = T.getBackend() as ReferenceBackend;
    const peakOf = async (opts: { frozenDtype?: 'auto' }) => {
      const backend = new ReferenceBackend();
      T.setBackend(backend);
      try {
        const loaded = await loadPretrainedFromFiles(files, opts);
        const peak = backend.memory().peakBytes;
        const float32Bytes = loaded.model.parameters().reduce((sum, p) => sum + p.size * 4, 0);
        const largest = Math.max(...loaded.model.parameters().map((p) => p.size * 4));
        loaded.model.dispose();
        return { peak, float32Bytes, largest };
      } finally {
        T.setBackend(reference);
      }
    };
    const full = await peakOf({});
    const half = await peakOf({ frozenDtype: 'auto' });
    expect(full.peak).toBeGreaterThanOrEqual(full.float32Bytes);
    expect(half.peak).toBeLessThan(half.float32Bytes / 2 + full.largest);
  });

  it('reads a directory (Node), a Map and an async reader alike; keeps the token ids; exports them back', async () => {
    const { config, files: options } = CASES[1];
    const files = fixtureFiles(config, options);
    const dir = writeFixture(join(tmp, 'qwen2'), files);
    const fromDir = await loadPretrained(dir);
    const reader: ModelFiles = async (name) => {
      const bytes = files.get(name);
      if (!bytes) throw new Error('404');
      return bytes;
    };
    const fromReader = await loadPretrainedFromFiles(reader);
    expect(fromDir.dir).toBe(dir);
    expect(fromDir.weightFiles).toHaveLength(3);
    expect(fromReader.config).toEqual(fromDir.config);
    expect(fromDir.config).toMatchObject({ attentionBias: true, attentionOutBias: false, tieEmbeddings: true, bosTokenId: 0, eosTokenId: 3, padTokenId: 4, headDim: null, maxSeqLen: 64 });
    expect(await modelLogits(fromReader.model, SEQUENCE)).toEqual(await modelLogits(fromDir.model, SEQUENCE));
    const exported = toHfConfig(fromDir.config);
    expect(exported).toMatchObject({ model_type: 'qwen2', bos_token_id: 0, eos_token_id: 3, pad_token_id: 4, tie_word_embeddings: true });
    expect(fromHfConfig(exported)).toEqual(fromDir.config);
    for (const m of [fromDir, fromReader]) m.model.dispose();
  });

  it('exports head_dim, attention_bias and rope_scaling so that they load back the same', () => {
    for (const { config } of CASES) {
      const ours = fromHfConfig(config);
      expect(fromHfConfig(toHfConfig(ours)), String(config.model_type)).toEqual(ours);
    }
    const llama3 = toHfConfig(fromHfConfig(CASES[3].config));
    expect(llama3.rope_scaling).toEqual({ rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 256 });
    expect(llama3.rope_theta).toBe(500000);
    expect(toHfConfig(fromHfConfig(CASES[0].config))).toMatchObject({ head_dim: 8, attention_bias: true, model_type: 'llama', eos_token_id: [2, 5] });
    // The built-in model's config.json is unchanged: no new keys.
    expect(Object.keys(toHfConfig(new TransformerLM({ vocabSize: 5, dModel: 8, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 8, maxSeqLen: 8 }).config))).not.toContain('head_dim');
  });
});

describe('loaded checkpoints on the product backends (float32)', async () => {
  const { available } = await productBackends();
  for (const { name: backendName, backend } of available) {
    describe(backendName, () => {
      let previous: Backend | undefined;
      beforeAll(() => {
        previous = T.getBackend();
        T.setBackend(backend);
      });
      afterAll(() => {
        if (previous) T.setBackend(previous);
      });
      for (const { name, config, files: options } of CASES) {
        it(name, async () => {
          const files = fixtureFiles(config, options);
          const want = referenceLogits(config, rawTensors(files), SEQUENCE);
          const loaded = await loadPretrainedFromFiles(files);
          assertClose(await modelLogits(loaded.model, SEQUENCE), want, `${backendName} ${config.model_type} logits`, 2e-4, 2e-4);
          loaded.model.dispose();
        });
      }
    });
  }
});

describe('refused configs name the field and value', () => {
  beforeAll(() => T.setBackend(new ReferenceBackend()));
  const llama = CASES[0].config;
  const refuse = (change: HfConfig, message: RegExp, opts = {}) => expect(() => fromHfConfig({ ...llama, ...change }, opts)).toThrow(message);

  it('unknown model types, activations, MLP biases, dropout, partial rotary', () => {
    refuse({ model_type: 'qwen3' }, /model_type "qwen3" is not supported \(supported: llama, qwen2, mistral/);
    refuse({ model_type: undefined }, /model_type undefined is not supported/);
    refuse({ hidden_act: 'gelu' }, /hidden_act "gelu" is not supported/);
    refuse({ mlp_bias: true }, /mlp_bias true is not supported/);
    refuse({ attention_dropout: 0.1 }, /attention_dropout 0.1 is not supported/);
    refuse({ partial_rotary_factor: 0.5 }, /partial_rotary_factor 0.5 is not supported/);
    refuse({ hidden_size: undefined, intermediate_size: 0 }, /hidden_size is missing[\s\S]*intermediate_size must be a positive integer, got 0/);
  });

  it('rope types other than default / linear / llama3, in either field', () => {
    for (const type of ['yarn', 'dynamic', 'longrope', 'su']) {
      refuse({ rope_scaling: { type, factor: 2 } }, new RegExp(`rope_scaling rope type "${type}" is not supported`));
      refuse({ rope_parameters: { rope_type: type, rope_theta: 10000, factor: 2 } }, new RegExp(`rope_parameters rope type "${type}" is not supported`));
    }
    refuse({ rope_scaling: { rope_type: 'llama3', factor: 8 } }, /original_max_position_embeddings must be a positive number for rope type "llama3", got undefined[\s\S]*rope_scaling.low_freq_factor must be a positive number/);
    refuse({ rope_scaling: { type: 'linear' } }, /rope_scaling.factor must be a positive number for rope type "linear", got undefined/);
    // rope_theta from rope_parameters wins over the top-level field (what current transformers writes).
    expect(fromHfConfig({ ...llama, rope_theta: 1, rope_parameters: { rope_type: 'default', rope_theta: 123456 } }).ropeTheta).toBe(123456);
  });

  it('a sliding window smaller than the context, unless the context is capped', () => {
    const mistral = { ...CASES[2].config, sliding_window: 16 };
    expect(() => fromHfConfig(mistral)).toThrow(/sliding_window 16 is smaller than the context of 64 positions \(max_position_embeddings\).*maxSeqLen ≤ 16/);
    expect(() => fromHfConfig(mistral, { maxSeqLen: 32 })).toThrow(/sliding_window 16 is smaller than the context of 32 positions/);
    expect(fromHfConfig(mistral, { maxSeqLen: 16 }).maxSeqLen).toBe(16);
    const qwen = { ...CASES[1].config, sliding_window: 16 };
    expect(fromHfConfig(qwen).maxSeqLen).toBe(64); // use_sliding_window false: Qwen2 attends fully
    expect(() => fromHfConfig({ ...qwen, use_sliding_window: true })).toThrow(/sliding_window 16 is smaller than the context/);
    expect(() => fromHfConfig({ ...qwen, layer_types: ['full_attention', 'sliding_attention'] })).toThrow(/sliding_window 16/);
  });
});

describe('weight problems are listed together', () => {
  beforeAll(() => T.setBackend(new ReferenceBackend()));

  it('missing, unexpected, wrong shape and integer tensors in one error', async () => {
    const { config } = CASES[2];
    const files = fixtureFiles(config);
    const tensors = rawTensors(files);
    const arrays = new Map([...tensors].map(([name, t]) => [name, { shape: t.shape, data: Float32Array.from(t.data) }]));
    arrays.delete('model.layers.1.mlp.up_proj.weight');
    arrays.set('model.layers.0.self_attn.q_proj.bias', { shape: [16], data: new Float32Array(16) });
    arrays.set('model.norm.weight', { shape: [15], data: new Float32Array(15) });
    const bad = new Map<string, { shape: readonly number[]; data: Float32Array | Int32Array }>(arrays);
    bad.set('model.layers.0.input_layernorm.weight', { shape: [16], data: new Int32Array(16) });
    files.set('model.safetensors', encodeSafetensors(bad));
    const error = await loadPretrainedFromFiles(files).then(() => null, (err: Error) => err.message);
    expect(error).toMatch(/the weights do not fit config.json/);
    expect(error).toMatch(/missing tensor 'model.layers.1.mlp.up_proj.weight' \[24, 16\]/);
    expect(error).toMatch(/unexpected tensor 'model.layers.0.self_attn.q_proj.bias' \(model.safetensors\) \[16\].*qwen2 has them/);
    expect(error).toMatch(/tensor 'model.norm.weight' \(model.safetensors\) has shape \[15\], config.json implies \[16\]/);
    expect(error).toMatch(/tensor 'model.layers.0.input_layernorm.weight' \(model.safetensors\) is I32, expected a float type/);
  });

  it('an index pointing at the wrong shard, a missing shard, no weights at all', async () => {
    const { config, files: options } = CASES[1];
    const files = fixtureFiles(config, options);
    const index = JSON.parse(new TextDecoder().decode(files.get('model.safetensors.index.json')));
    const first = Object.keys(index.weight_map)[0];
    const otherShard = Object.values(index.weight_map).find((file) => file !== index.weight_map[first]);
    index.weight_map[first] = otherShard;
    files.set('model.safetensors.index.json', new TextEncoder().encode(JSON.stringify(index)));
    await expect(loadPretrainedFromFiles(files)).rejects.toThrow(new RegExp(`model.safetensors.index.json lists '${first.replace(/\./g, '\\.')}' in model-0000\\d-of-00003.safetensors, but it is in model-00001-of-00003.safetensors`));
    index.weight_map['model.extra.weight'] = otherShard;
    files.set('model.safetensors.index.json', new TextEncoder().encode(JSON.stringify(index)));
    await expect(loadPretrainedFromFiles(files)).rejects.toThrow(/lists 'model.extra.weight' in model-0000\d-of-00003.safetensors, which does not hold it/);
    const shardless = new Map(fixtureFiles(config, options));
    shardless.delete('model-00002-of-00003.safetensors');
    await expect(loadPretrainedFromFiles(shardless)).rejects.toThrow(/no file model-00002-of-00003.safetensors/);
    const dir = writeFixture(join(tmp, 'noweights'), new Map([['config.json', fixtureFiles(config).get('config.json')!]]));
    await expect(loadPretrained(dir)).rejects.toThrow(/no weights: expected model.safetensors or model.safetensors.index.json/);
  });

  it('a stored head of a tied model must be the embedding; NaN weights are named', async () => {
    const { config } = CASES[3];
    const files = fixtureFiles(config, { storeTiedHead: true });
    const tensors = rawTensors(files);
    const arrays = new Map([...tensors].map(([name, t]) => [name, { shape: t.shape, data: Float32Array.from(t.data) }]));
    arrays.get('lm_head.weight')!.data[3] += 1;
    arrays.get('model.norm.weight')!.data[0] = Number.NaN;
    files.set('model.safetensors', encodeSafetensors(arrays));
    const error = await loadPretrainedFromFiles(files).then(() => null, (err: Error) => err.message);
    expect(error).toMatch(/tensor 'model.norm.weight' \(model.safetensors\) contains NaN or Inf/);
    expect(error).toMatch(/'lm_head.weight' \(model.safetensors\) differs from model.embed_tokens.weight, but tie_word_embeddings is true/);
  });
});

describe('Hub ids', () => {
  const id = 'HuggingFaceTB/SmolLM2-135M-Instruct';

  it('a local directory wins; then the Hugging Face cache (refs/main → snapshots/<commit>)', async () => {
    const cacheDir = join(tmp, 'hub');
    const commit = 'a'.repeat(40);
    const snapshot = join(cacheDir, 'models--HuggingFaceTB--SmolLM2-135M-Instruct', 'snapshots', commit);
    writeFixture(snapshot, fixtureFiles(CASES[2].config));
    mkdirSync(join(cacheDir, 'models--HuggingFaceTB--SmolLM2-135M-Instruct', 'refs'), { recursive: true });
    writeFileSync(join(cacheDir, 'models--HuggingFaceTB--SmolLM2-135M-Instruct', 'refs', 'main'), commit);
    const failing = async () => { throw new Error('the network must not be used'); };
    expect(await resolveModelDir(id, { cacheDir, fetch: failing })).toBe(snapshot);
    expect(await resolveModelDir(id, { cacheDir, revision: commit, fetch: failing })).toBe(snapshot);
    const loaded = await loadPretrained(id, { cacheDir, fetch: failing });
    expect(loaded.dir).toBe(snapshot);
    loaded.model.dispose();
    expect(await resolveModelDir(snapshot, { fetch: failing })).toBe(snapshot);
  });

  // The first import of the Hub client is slow under vitest's module loader; the timing below is of the call.
  beforeAll(async () => { await import('@huggingface/hub'); }, 60_000);

  it('offline, a missing model fails quickly saying how to get the files', async () => {
    const cacheDir = join(tmp, 'empty-hub');
    const offline = (async () => { throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ENOTFOUND' } }); }) as unknown as typeof fetch;
    const started = Date.now();
    const error = await resolveModelDir(id, { cacheDir, fetch: offline }).then(() => null, (err: Error) => err.message);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(error).toMatch(/could not download HuggingFaceTB\/SmolLM2-135M-Instruct from the Hugging Face Hub \(ENOTFOUND\)/);
    expect(error).toMatch(/hf download HuggingFaceTB\/SmolLM2-135M-Instruct/);
    expect(error).toMatch(/pass the model directory/);
    // A request that never answers is cut off by the connect timeout.
    const hanging = ((_: unknown, init?: RequestInit) => new Promise((_, reject) => init?.signal?.addEventListener('abort', () => reject(new Error('aborted'))))) as unknown as typeof fetch;
    await expect(resolveModelDir(id, { cacheDir, fetch: hanging, connectTimeoutMs: 50 })).rejects.toThrow(/no response within 50 ms/);
    await expect(resolveModelDir(id, { cacheDir, download: false })).rejects.toThrow(/not in the Hugging Face cache .*downloading is off/);
    await expect(resolveModelDir('./no/such/dir', { cacheDir })).rejects.toThrow(/no model directory .*no\/such\/dir/);
  });
});
