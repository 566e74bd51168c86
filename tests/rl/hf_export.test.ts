// A merged model is exported in its base model's dtype, as PEFT's merge_and_unload + save_pretrained keep it: a
// BF16 checkpoint comes back out as BF16 (config.json torch_dtype and every safetensors tensor) and reloads with the
// same logits; checkpoints and built-in models stay float32.
import { beforeAll, describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import * as T from '../../src/tensor/index.js';
import { TASK_TOKENIZER } from '../../src/data/tokenizer.js';
import { loadPretrainedFromFiles } from '../../src/io/pretrained.js';
import { readSafetensorsHeader } from '../../src/io/safetensors.js';
import type { TransformerLM } from '../../src/nn/transformer.js';
import { declaredWeightsDtype, hfDirectoryFiles } from '../../src/rl/hf_export.js';
import { type HfConfig, fixtureFiles } from '../support/hf_fixture.js';

beforeAll(() => T.setBackend(new ReferenceBackend()));

const CONFIG: HfConfig = {
  model_type: 'llama', architectures: ['LlamaForCausalLM'], vocab_size: TASK_TOKENIZER.vocabSize, hidden_size: 16,
  num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, intermediate_size: 24, max_position_embeddings: 32,
  rms_norm_eps: 1e-6, hidden_act: 'silu', rope_theta: 10000, tie_word_embeddings: false, torch_dtype: 'bfloat16',
};

async function logitsOf(model: TransformerLM): Promise<number[]> {
  const input = T.tensor(Int32Array.from([3, 7, 1, 12, 5]), [1, 5], 'int32');
  const logits = T.noGrad(() => model.forward(input));
  const values = await logits.toArray();
  input.dispose();
  logits.dispose();
  return values;
}

const asBytes = (file: Uint8Array | string | undefined) => (typeof file === 'string' ? new TextEncoder().encode(file) : file!);

describe('exported Hugging Face directories', () => {
  it('reads the weights dtype a config.json declares (torch_dtype, or dtype in current transformers)', () => {
    expect(declaredWeightsDtype({ torch_dtype: 'bfloat16' })).toBe('bfloat16');
    expect(declaredWeightsDtype({ dtype: 'float16' })).toBe('float16');
    expect(declaredWeightsDtype({ torch_dtype: 'float32' })).toBe('float32');
    expect(declaredWeightsDtype({})).toBe('float32');
  });

  it('writes a BF16 base back as BF16 that reloads with the same logits', async () => {
    const base = await loadPretrainedFromFiles(fixtureFiles(CONFIG, { dtype: 'BF16', seed: 3 }));
    const files = await hfDirectoryFiles(base.model, { tokenizer: TASK_TOKENIZER, weightsDtype: declaredWeightsDtype(CONFIG) });
    expect(JSON.parse(files.get('config.json') as string).torch_dtype).toBe('bfloat16');
    const header = readSafetensorsHeader(asBytes(files.get('model.safetensors')));
    expect(new Set([...header.tensors.values()].map((entry) => entry.dtype))).toEqual(new Set(['BF16']));
    const reloaded = await loadPretrainedFromFiles(new Map([...files].map(([name, file]) => [name, asBytes(file)])));
    // BF16 weights are exactly representable in float32, so the round trip loses nothing.
    expect(await logitsOf(reloaded.model)).toEqual(await logitsOf(base.model));
    reloaded.model.dispose();
    base.model.dispose();
  });

  it('keeps float32 unless asked otherwise', async () => {
    const base = await loadPretrainedFromFiles(fixtureFiles({ ...CONFIG, torch_dtype: 'float32' }, { dtype: 'F32', seed: 4 }));
    const files = await hfDirectoryFiles(base.model, { tokenizer: TASK_TOKENIZER });
    expect(JSON.parse(files.get('config.json') as string).torch_dtype).toBe('float32');
    const header = readSafetensorsHeader(asBytes(files.get('model.safetensors')));
    expect(new Set([...header.tensors.values()].map((entry) => entry.dtype))).toEqual(new Set(['F32']));
    base.model.dispose();
  });
});
