// Tiny random checkpoints in the real Hugging Face layouts (config.json + model.safetensors, or
// model.safetensors.index.json + shards; F32 / F16 / BF16), and an independent float64 forward of a
// Llama / Qwen2 / Mistral decoder written from transformers' modeling code, reading the raw tensors.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type NamedArray, decodeSafetensors, encodeSafetensors } from '../../src/io/safetensors.js';
import { hostRandom } from './random.js';

export type HfConfig = Record<string, unknown>;

export interface FixtureOptions {
  dtype?: 'F32' | 'F16' | 'BF16';
  /** Split the weights into this many shards with an index (default 1: a single model.safetensors). */
  shards?: number;
  seed?: number;
  /** Also store lm_head.weight when embeddings are tied (some exports do). */
  storeTiedHead?: boolean;
}

const num = (cfg: HfConfig, key: string) => cfg[key] as number;

/** head_dim as transformers reads it: explicit, else hidden_size / num_attention_heads. */
export function fixtureHeadDim(cfg: HfConfig): number {
  return (cfg.head_dim as number | undefined) ?? num(cfg, 'hidden_size') / num(cfg, 'num_attention_heads');
}

/** The checkpoint's tensors (name → shape) as transformers' LlamaForCausalLM / Qwen2 / Mistral would save them. */
export function checkpointShapes(cfg: HfConfig): Map<string, number[]> {
  const d = num(cfg, 'hidden_size');
  const hd = fixtureHeadDim(cfg);
  const heads = num(cfg, 'num_attention_heads');
  const kv = (cfg.num_key_value_heads as number | undefined) ?? heads;
  const ffn = num(cfg, 'intermediate_size');
  const qkvBias = cfg.model_type === 'qwen2' || cfg.attention_bias === true;
  const oBias = cfg.model_type === 'llama' && cfg.attention_bias === true;
  const shapes = new Map<string, number[]>([['model.embed_tokens.weight', [num(cfg, 'vocab_size'), d]]]);
  for (let i = 0; i < num(cfg, 'num_hidden_layers'); i++) {
    const p = `model.layers.${i}.`;
    shapes.set(`${p}input_layernorm.weight`, [d]);
    shapes.set(`${p}self_attn.q_proj.weight`, [heads * hd, d]);
    shapes.set(`${p}self_attn.k_proj.weight`, [kv * hd, d]);
    shapes.set(`${p}self_attn.v_proj.weight`, [kv * hd, d]);
    if (qkvBias) {
      shapes.set(`${p}self_attn.q_proj.bias`, [heads * hd]);
      shapes.set(`${p}self_attn.k_proj.bias`, [kv * hd]);
      shapes.set(`${p}self_attn.v_proj.bias`, [kv * hd]);
    }
    shapes.set(`${p}self_attn.o_proj.weight`, [d, heads * hd]);
    if (oBias) shapes.set(`${p}self_attn.o_proj.bias`, [d]);
    shapes.set(`${p}post_attention_layernorm.weight`, [d]);
    shapes.set(`${p}mlp.gate_proj.weight`, [ffn, d]);
    shapes.set(`${p}mlp.up_proj.weight`, [ffn, d]);
    shapes.set(`${p}mlp.down_proj.weight`, [d, ffn]);
  }
  shapes.set('model.norm.weight', [d]);
  if (cfg.tie_word_embeddings !== true) shapes.set('lm_head.weight', [num(cfg, 'vocab_size'), d]);
  return shapes;
}

/** The files of a random checkpoint for `cfg`, by name. */
export function fixtureFiles(cfg: HfConfig, opts: FixtureOptions = {}): Map<string, Uint8Array> {
  const shapes = checkpointShapes(cfg);
  if (cfg.tie_word_embeddings === true && opts.storeTiedHead) shapes.set('lm_head.weight', shapes.get('model.embed_tokens.weight')!);
  const arrays = new Map<string, NamedArray>();
  let seed = opts.seed ?? 1;
  for (const [name, shape] of shapes) {
    const count = shape.reduce((a, b) => a * b, 1);
    // Norm weights near 1, everything else small, so the logits stay O(1) through the layers.
    const values = name.endsWith('norm.weight') ? hostRandom(count, seed++, 0.7, 1.3) : hostRandom(count, seed++, -0.4, 0.4);
    arrays.set(name, { shape, data: values });
  }
  if (opts.storeTiedHead) arrays.set('lm_head.weight', arrays.get('model.embed_tokens.weight')!);
  const files = new Map<string, Uint8Array>([['config.json', new TextEncoder().encode(JSON.stringify(cfg, null, 2))]]);
  const shards = opts.shards ?? 1;
  const encode = (part: Map<string, NamedArray>) => encodeSafetensors(part, { format: 'pt' }, { floatDType: opts.dtype ?? 'F32' });
  if (shards === 1) {
    files.set('model.safetensors', encode(arrays));
    return files;
  }
  const names = [...arrays.keys()];
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const part = new Map(names.filter((_, i) => i % shards === s).map((name) => [name, arrays.get(name)!]));
    for (const name of part.keys()) weightMap[name] = file;
    files.set(file, encode(part));
  }
  files.set('model.safetensors.index.json', new TextEncoder().encode(JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap })));
  return files;
}

export function writeFixture(dir: string, files: ReadonlyMap<string, Uint8Array>): string {
  mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of files) writeFileSync(join(dir, name), bytes);
  return dir;
}

/** Every tensor of the files' safetensors, as float64 (exactly the stored values). */
export function rawTensors(files: ReadonlyMap<string, Uint8Array>): Map<string, { shape: readonly number[]; data: Float64Array }> {
  const out = new Map<string, { shape: readonly number[]; data: Float64Array }>();
  for (const [name, bytes] of files) {
    if (!name.endsWith('.safetensors')) continue;
    for (const [tensor, array] of decodeSafetensors(bytes).tensors) out.set(tensor, { shape: array.shape, data: Float64Array.from(array.data) });
  }
  return out;
}

/**
 * transformers' inverse frequencies, written from modeling_rope_utils.py (default, linear, llama3), in float64:
 * rope_parameters (current) or rope_theta + rope_scaling (older).
 */
export function fixtureInverseFrequencies(cfg: HfConfig): Float64Array {
  const spec = (cfg.rope_parameters ?? cfg.rope_scaling ?? {}) as Record<string, number | string>;
  const base = (spec.rope_theta as number | undefined) ?? (cfg.rope_theta as number | undefined) ?? 10000;
  const dim = fixtureHeadDim(cfg);
  const inv = Float64Array.from({ length: dim / 2 }, (_, i) => 1 / base ** ((2 * i) / dim));
  const type = spec.rope_type ?? spec.type ?? 'default';
  if (type === 'linear') return inv.map((f) => f / (spec.factor as number));
  if (type !== 'llama3') return inv;
  const factor = spec.factor as number;
  const low = spec.low_freq_factor as number;
  const high = spec.high_freq_factor as number;
  const oldContext = spec.original_max_position_embeddings as number;
  const lowWavelen = oldContext / low;
  const highWavelen = oldContext / high;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    const scaled = wavelen > lowWavelen ? f / factor : f;
    const smooth = (oldContext / wavelen - low) / (high - low);
    const medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
    return medium ? (1 - smooth) * scaled / factor + smooth * scaled : scaled;
  });
}

/** Logits [ids.length, vocab] of one sequence (positions 0…T−1), float64, straight from the raw tensors. */
export function referenceLogits(cfg: HfConfig, tensors: ReadonlyMap<string, { data: Float64Array }>, ids: number[]): Float64Array {
  const W = (name: string) => {
    const t = tensors.get(name);
    if (!t) throw new Error(`reference forward: no tensor ${name}`);
    return t.data;
  };
  const has = (name: string) => tensors.has(name);
  const d = num(cfg, 'hidden_size');
  const heads = num(cfg, 'num_attention_heads');
  const kvHeads = (cfg.num_key_value_heads as number | undefined) ?? heads;
  const hd = fixtureHeadDim(cfg);
  const ffn = num(cfg, 'intermediate_size');
  const vocab = num(cfg, 'vocab_size');
  const eps = (cfg.rms_norm_eps as number | undefined) ?? 1e-6;
  const T = ids.length;
  const inv = fixtureInverseFrequencies(cfg);

  // y[t] = W x[t] + b, W [out, in]
  const linear = (x: Float64Array, w: Float64Array, out: number, inn: number, b?: Float64Array) => {
    const y = new Float64Array(T * out);
    for (let t = 0; t < T; t++) {
      for (let o = 0; o < out; o++) {
        let s = b ? b[o] : 0;
        for (let i = 0; i < inn; i++) s += w[o * inn + i] * x[t * inn + i];
        y[t * out + o] = s;
      }
    }
    return y;
  };
  const rmsNorm = (x: Float64Array, w: Float64Array) => {
    const y = new Float64Array(x.length);
    for (let t = 0; t < T; t++) {
      let ss = 0;
      for (let i = 0; i < d; i++) ss += x[t * d + i] ** 2;
      const r = 1 / Math.sqrt(ss / d + eps);
      for (let i = 0; i < d; i++) y[t * d + i] = x[t * d + i] * r * w[i];
    }
    return y;
  };
  // rotate_half: (x1, x2) → (x1 cos − x2 sin, x2 cos + x1 sin) with the first and second half of each head.
  const rope = (x: Float64Array, n: number) => {
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < n; h++) {
        const base = (t * n + h) * hd;
        for (let j = 0; j < hd / 2; j++) {
          const a = t * inv[j];
          const x1 = x[base + j];
          const x2 = x[base + j + hd / 2];
          x[base + j] = x1 * Math.cos(a) - x2 * Math.sin(a);
          x[base + j + hd / 2] = x2 * Math.cos(a) + x1 * Math.sin(a);
        }
      }
    }
  };

  let x = new Float64Array(T * d);
  const emb = W('model.embed_tokens.weight');
  ids.forEach((id, t) => x.set(emb.subarray(id * d, (id + 1) * d), t * d));
  for (let l = 0; l < num(cfg, 'num_hidden_layers'); l++) {
    const p = `model.layers.${l}.`;
    const bias = (name: string) => (has(`${p}${name}.bias`) ? W(`${p}${name}.bias`) : undefined);
    const h = rmsNorm(x, W(`${p}input_layernorm.weight`));
    const q = linear(h, W(`${p}self_attn.q_proj.weight`), heads * hd, d, bias('self_attn.q_proj'));
    const k = linear(h, W(`${p}self_attn.k_proj.weight`), kvHeads * hd, d, bias('self_attn.k_proj'));
    const v = linear(h, W(`${p}self_attn.v_proj.weight`), kvHeads * hd, d, bias('self_attn.v_proj'));
    rope(q, heads);
    rope(k, kvHeads);
    const attn = new Float64Array(T * heads * hd);
    const group = heads / kvHeads;
    for (let hq = 0; hq < heads; hq++) {
      const hk = Math.floor(hq / group); // repeat_kv
      for (let t = 0; t < T; t++) {
        const scores = new Float64Array(t + 1);
        for (let s = 0; s <= t; s++) {
          let dot = 0;
          for (let i = 0; i < hd; i++) dot += q[(t * heads + hq) * hd + i] * k[(s * kvHeads + hk) * hd + i];
          scores[s] = dot / Math.sqrt(hd);
        }
        const max = Math.max(...scores);
        let sum = 0;
        for (let s = 0; s <= t; s++) sum += (scores[s] = Math.exp(scores[s] - max));
        for (let i = 0; i < hd; i++) {
          let acc = 0;
          for (let s = 0; s <= t; s++) acc += (scores[s] / sum) * v[(s * kvHeads + hk) * hd + i];
          attn[(t * heads + hq) * hd + i] = acc;
        }
      }
    }
    const o = linear(attn, W(`${p}self_attn.o_proj.weight`), d, heads * hd, bias('self_attn.o_proj'));
    x = x.map((value, i) => value + o[i]);
    const h2 = rmsNorm(x, W(`${p}post_attention_layernorm.weight`));
    const gate = linear(h2, W(`${p}mlp.gate_proj.weight`), ffn, d);
    const up = linear(h2, W(`${p}mlp.up_proj.weight`), ffn, d);
    const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]);
    const down = linear(act, W(`${p}mlp.down_proj.weight`), d, ffn);
    x = x.map((value, i) => value + down[i]);
  }
  const final = rmsNorm(x, W('model.norm.weight'));
  const head = cfg.tie_word_embeddings === true ? emb : W('lm_head.weight');
  return linear(final, head, vocab, d);
}
