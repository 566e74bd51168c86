// PEFT adapter files: adapter_config.json fields and adapter_model.safetensors tensor names/shapes as PEFT writes
// them, a round trip into a fresh model (same logits), merge-and-export, and a clear error for every mismatch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/backend/backend.js';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import * as T from '../../src/tensor/index.js';
import { applyLora, hasLora, loraAdapters, mergeLora, removeLora } from '../../src/nn/lora.js';
import type { Module } from '../../src/nn/module.js';
import { TransformerLM } from '../../src/nn/transformer.js';
import { encodeModel, modelFromCheckpoint, toHfConfig } from '../../src/io/checkpoint.js';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, type PeftAdapterFiles, loadLoraAdapter, saveLoraAdapter } from '../../src/io/peft.js';
import { decodeSafetensors, encodeSafetensors } from '../../src/io/safetensors.js';
import { type NamedBackend, productBackends } from '../support/backends.js';
import { assertClose } from '../support/close.js';
import { hostRandom } from '../support/random.js';

const reference = new ReferenceBackend();
beforeAll(() => T.setBackend(reference));

const tiny = { vocabSize: 13, dModel: 16, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 24, maxSeqLen: 16 };
const IDS = [1, 5, 2, 9, 12, 0, 3, 7, 4, 4, 11, 6];

function randomizeB(model: Module, seed = 31): void {
  for (const [i, adapter] of loraAdapters(model).entries()) {
    const fresh = T.keep(T.tensor(hostRandom(adapter.loraB.size, seed + i, -0.5, 0.5), adapter.loraB.shape).requireGrad());
    adapter.loraB.dispose();
    adapter.loraB = fresh;
  }
}

async function logitsOf(model: TransformerLM): Promise<number[]> {
  const ids = T.tensor(IDS, [2, 6], 'int32');
  const logits = T.noGrad(() => model.forward(ids));
  const out = await logits.toArray();
  for (const t of [ids, logits]) t.dispose();
  return out;
}

/** An adapted model (base seed 1) with non-zero B, its logits and its PEFT files. */
async function trainedAdapter(targetModules: string[] | string = ['q_proj', 'v_proj', 'down_proj']) {
  const model = new TransformerLM(tiny, 1);
  applyLora(model, { r: 4, alpha: 8, dropout: 0.05, targetModules, seed: 3 });
  randomizeB(model);
  const logits = await logitsOf(model);
  const files = await saveLoraAdapter(model, { baseModelNameOrPath: 'HuggingFaceTB/SmolLM2-135M-Instruct' });
  return { model, logits, files };
}

function withConfig(files: PeftAdapterFiles, edit: (config: Record<string, unknown>) => void): PeftAdapterFiles {
  const config = JSON.parse(files[ADAPTER_CONFIG_FILE]) as Record<string, unknown>;
  edit(config);
  return { ...files, [ADAPTER_CONFIG_FILE]: JSON.stringify(config) };
}

function withTensors(files: PeftAdapterFiles, edit: (tensors: Map<string, { shape: readonly number[]; data: Float32Array | Int32Array }>) => void): PeftAdapterFiles {
  const { tensors } = decodeSafetensors(files[ADAPTER_WEIGHTS_FILE]);
  edit(tensors);
  return { ...files, [ADAPTER_WEIGHTS_FILE]: encodeSafetensors(tensors, { format: 'pt' }) };
}

describe('saveLoraAdapter', () => {
  it("writes PEFT's adapter_config.json and tensor names", async () => {
    const { model, files } = await trainedAdapter();
    const config = JSON.parse(files[ADAPTER_CONFIG_FILE]);
    expect(config).toMatchObject({
      peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 4, lora_alpha: 8, lora_dropout: 0.05, bias: 'none', fan_in_fan_out: false,
      init_lora_weights: true, use_rslora: false, use_dora: false, target_modules: ['down_proj', 'q_proj', 'v_proj'],
      base_model_name_or_path: 'HuggingFaceTB/SmolLM2-135M-Instruct', modules_to_save: null, rank_pattern: {}, alpha_pattern: {},
    });
    expect(Object.keys(config)).toEqual([...Object.keys(config)].sort());
    const { tensors, metadata } = decodeSafetensors(files[ADAPTER_WEIGHTS_FILE]);
    expect(metadata).toEqual({ format: 'pt' });
    expect([...tensors.keys()].slice(0, 4)).toEqual([
      'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', 'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight',
      'base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight', 'base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight',
    ]);
    expect(tensors.size).toBe(2 * 3 * 2);
    expect(tensors.get('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight')!.shape).toEqual([4, 16]);
    expect(tensors.get('base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight')!.shape).toEqual([8, 4]);
    expect(tensors.get('base_model.model.model.layers.1.mlp.down_proj.lora_A.weight')!.shape).toEqual([4, 24]);
    removeLora(model);
    model.dispose();
  });

  it("lists 'all-linear' as the matched module names, and refuses a model without adapters", async () => {
    const { model, files } = await trainedAdapter('all-linear');
    expect(JSON.parse(files[ADAPTER_CONFIG_FILE]).target_modules).toEqual(['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj']);
    removeLora(model);
    await expect(saveLoraAdapter(model)).rejects.toThrow(/no LoRA adapters/);
    model.dispose();
  });
});

describe('loadLoraAdapter', () => {
  it('round-trips: a fresh base model with the loaded adapter gives the same logits', async () => {
    const { model, logits, files } = await trainedAdapter();
    const fresh = new TransformerLM(tiny, 1);
    const config = loadLoraAdapter(fresh, files);
    expect(config.r).toBe(4);
    expect(loraAdapters(fresh).map((a) => [a.path, a.r, a.alpha, a.dropout])).toEqual(loraAdapters(model).map((a) => [a.path, a.r, a.alpha, a.dropout]));
    // The file holds float32: the logits agree to float32 rounding of A (the reference computes in float64) …
    assertClose(await logitsOf(fresh), logits, 'logits with the loaded adapter', 1e-6, 1e-5);
    // … and saving the loaded adapter gives the same bytes.
    expect((await saveLoraAdapter(fresh, { baseModelNameOrPath: 'HuggingFaceTB/SmolLM2-135M-Instruct' }))).toEqual(files);
    const loaded = await logitsOf(fresh);
    // The config may also come as bytes or a parsed object.
    removeLora(fresh);
    loadLoraAdapter(fresh, { ...files, [ADAPTER_CONFIG_FILE]: new TextEncoder().encode(files[ADAPTER_CONFIG_FILE]) });
    removeLora(fresh);
    loadLoraAdapter(fresh, { ...files, [ADAPTER_CONFIG_FILE]: JSON.parse(files[ADAPTER_CONFIG_FILE]) });
    expect(await logitsOf(fresh)).toEqual(loaded);
    removeLora(fresh);
    fresh.dispose();
    removeLora(model);
    model.dispose();
  });

  it('honours use_rslora (scaling alpha/√r)', async () => {
    const { model, files } = await trainedAdapter();
    const fresh = new TransformerLM(tiny, 1);
    loadLoraAdapter(fresh, withConfig(files, (c) => { c.use_rslora = true; }));
    expect(loraAdapters(fresh)[0].scaling).toBe(8 / 2);
    removeLora(fresh);
    fresh.dispose();
    removeLora(model);
    model.dispose();
  });

  it('merged into the base and exported as a plain Hugging Face checkpoint, it gives the adapted logits', async () => {
    const { model, logits, files } = await trainedAdapter();
    removeLora(model);
    model.dispose();
    const base = new TransformerLM(tiny, 1);
    loadLoraAdapter(base, files);
    mergeLora(base);
    const exported = modelFromCheckpoint(toHfConfig(base.config), await encodeModel(base));
    // Float32 files on the way (adapter and merged weights): agreement to float32 rounding.
    assertClose(await logitsOf(exported), logits, 'exported merged model vs adapted', 1e-6, 1e-5);
    for (const m of [base, exported]) m.dispose();
  });

  it('refuses every mismatch with an error naming it, and leaves the model untouched', async () => {
    const { model, files } = await trainedAdapter();
    const fresh = new TransformerLM(tiny, 1);
    const fails = (input: Parameters<typeof loadLoraAdapter>[1], pattern: RegExp, into: TransformerLM = fresh) => {
      expect(() => loadLoraAdapter(into, input)).toThrow(pattern);
      expect(hasLora(into)).toBe(false);
    };
    fails(withConfig(files, (c) => { c.r = 8; }), /'base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight' has rank 4, adapter_config\.json says r = 8/);
    fails(withConfig(files, (c) => { c.target_modules = ['q_proj', 'v_proj', 'down_proj', 'k_proj']; }), /missing tensor 'base_model\.model\.model\.layers\.0\.self_attn\.k_proj\.lora_A\.weight'/);
    fails(withConfig(files, (c) => { c.target_modules = ['q_proj', 'v_proj']; }), /unexpected tensor 'base_model\.model\.model\.layers\.0\.mlp\.down_proj\.lora_A\.weight'/);
    fails(withConfig(files, (c) => { c.target_modules = ['c_attn']; }), /'c_attn' not found/);
    fails(withTensors(files, (t) => t.set('base_model.model.lm_head.lora_A.weight', { shape: [4, 16], data: new Float32Array(64) })), /unexpected tensor 'base_model\.model\.lm_head\.lora_A\.weight'/);
    fails(withConfig(files, (c) => { c.use_dora = true; }), /DoRA is not supported/);
    fails(withConfig(files, (c) => { c.rank_pattern = { q_proj: 8 }; }), /rank_pattern/);
    fails(withConfig(files, (c) => { c.bias = 'all'; }), /bias other than "none"/);
    fails(withConfig(files, (c) => { c.peft_type = 'IA3'; }), /only "LORA"/);
    fails(withConfig(files, (c) => { c.r = -1; }), /r must be a positive integer/);
    fails({ ...files, [ADAPTER_CONFIG_FILE]: '{ not json' }, /not valid JSON/);
    const wider = new TransformerLM({ ...tiny, dModel: 24, ffnDim: 32 }, 1);
    fails(files, /'base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight' has shape \[4, 16\], the model expects \[4, 24\]/, wider);
    wider.dispose();
    loadLoraAdapter(fresh, files);
    expect(() => loadLoraAdapter(fresh, files)).toThrow(/already has LoRA adapters/);
    removeLora(fresh);
    fresh.dispose();
    removeLora(model);
    model.dispose();
  });
});

describe('PEFT round trip on the product backends', () => {
  let backends: NamedBackend[] = [];
  beforeAll(async () => { backends = (await productBackends()).available; });
  afterAll(() => {
    T.setBackend(reference);
    backends.forEach((b) => b.backend.destroy());
  });

  it('save on the reference, load on each backend: the logits match', async () => {
    const { model, logits, files } = await trainedAdapter('all-linear');
    removeLora(model);
    model.dispose();
    const on = async (backend: Backend) => {
      T.setBackend(backend);
      const fresh = new TransformerLM(tiny, 1);
      loadLoraAdapter(fresh, files);
      const out = await logitsOf(fresh);
      const saved = await saveLoraAdapter(fresh);
      removeLora(fresh);
      fresh.dispose();
      return { out, saved };
    };
    for (const { name, backend } of backends) {
      const { out, saved } = await on(backend);
      assertClose(out, logits, `${name}: logits with the loaded adapter`, 1e-4, 1e-3);
      expect(saved[ADAPTER_WEIGHTS_FILE], `${name}: saved again, byte for byte`).toEqual(files[ADAPTER_WEIGHTS_FILE]);
      expect(backend.memory().liveBuffers, `${name}: buffers left`).toBe(0);
    }
  });
});
