// `dapo train --dry-run`: the memory plan table and the batch sizes it picks, exit 0, and no run directory; for a
// pretrained model at the 163 M SmolLM2 shape (config.json and tokenizer only: the plan reads no weights) with
// LoRA, the unset micro-batch is lowered to what fits WASM's 4 GiB, and a set one that does not fit fails up front;
// full-parameter, gradientCheckpointing 'auto' makes micro-batch 8 fit and the plan says so.
import { existsSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CharTokenizer } from '../../src/data/tokenizer.js';
import { tokenizerConfigForCharVocabulary, tokenizerJsonForCharVocabulary } from '../../src/data/tokenizer_export.js';
import { dapo } from '../support/cli.js';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;!?\'"()+-*/=$%#<>|_{}[]\\\n';
const SMOLLM2_CONFIG = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 49152, hidden_size: 576, intermediate_size: 1536,
  num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3, max_position_embeddings: 8192, rope_theta: 100000,
  rms_norm_eps: 1e-5, tie_word_embeddings: false, hidden_act: 'silu',
};
const RECORDS = [
  ['Tom has 3 apples and buys 4 more. How many apples does he have?', 'He has 3+4=7 apples.\n#### 7'],
  ['A box holds 6 pens. How many pens are in 2 boxes?', '2*6=12 pens.\n#### 12'],
];

describe('dapo train --dry-run', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dapo-dry-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prints the plan of the built-in run, keeps its batch sizes and creates no run directory', async () => {
    const out = join(dir, 'builtin');
    const r = await dapo(['train', '--dry-run', '--out', out, '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^memory plan \(wasm: 4\.00 GiB address space \(plan ≤ 95 %\), ≤ 4\.00 GiB per buffer\); model dModel 128, 4 layers, vocabulary 32$/m);
    for (const row of ['weights', 'gradients', 'optimizer', 'activations', 'logits', 'KV cache', 'update peak', 'generation peak', 'WASM address space']) {
      expect(r.stdout).toMatch(new RegExp(`^  ${row} +\\d+\\.\\d (MiB|GiB)`, 'm'));
    }
    expect(r.stdout).toMatch(/^micro-batch size: 64 \(kept\); generation: 128 of 128 sequences per call \(all at once\)$/m);
    expect(r.stdout).toMatch(/^gradient checkpointing: off \(gradientCheckpointing false\)$/m);
    expect(r.stdout).toMatch(/^fits$/m);
    expect(existsSync(out)).toBe(false);
  });

  const modelDir = join(dir, 'smollm2-shape');
  mkdirSync(modelDir);
  const tokenizer = new CharTokenizer(ALPHABET);
  writeFileSync(join(modelDir, 'config.json'), JSON.stringify({ ...SMOLLM2_CONFIG, eos_token_id: tokenizer.eosId, pad_token_id: tokenizer.padId }));
  writeFileSync(join(modelDir, 'tokenizer.json'), JSON.stringify(tokenizerJsonForCharVocabulary(tokenizer)));
  writeFileSync(join(modelDir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfigForCharVocabulary(tokenizer)));
  const data = join(dir, 'train.jsonl');
  writeFileSync(data, RECORDS.map(([question, answer]) => JSON.stringify({ question, answer })).join('\n') + '\n');
  const pretrained = (out: string, ...extra: string[]) => ['train', '--dry-run', '--model', modelDir, '--lora', '--task', 'gsm8k', '--set', `task.path=${data}`,
    '--set', `task.testPath=${data}`, '--out', out, '--quiet', ...extra];

  it('--model DIR --lora at the 163 M shape: the unset micro-batch is lowered to what fits, no folder', async () => {
    const out = join(dir, 'lora');
    const r = await dapo(pretrained(out));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/model dModel 576, 30 layers, vocabulary 49152/);
    expect(r.stdout).toMatch(/^ {2}weights +\d+\.\d+ MiB +162,826,560 parameters, frozen float32 \+ [\d,]+ LoRA float32$/m);
    const micro = Number(/^micro-batch size: (\d+) \(lowered to fit\)/m.exec(r.stdout)?.[1]);
    expect(micro, r.stdout).toBeLessThan(64);
    expect(64 % micro).toBe(0);
    expect(r.stdout).toMatch(/^fits$/m);
    expect(existsSync(out)).toBe(false);
  });

  it("full-parameter at the 163 M shape: micro-batch 8 fits only checkpointed; 'auto' turns it on and says so, false names the key", async () => {
    const full = (out: string, value: string) => ['train', '--dry-run', '--model', modelDir, '--task', 'gsm8k', '--set', `task.path=${data}`, '--set', `task.testPath=${data}`,
      '--set', 'rl.microBatchSize=8', '--set', `gradientCheckpointing=${value}`, '--out', out, '--quiet'];
    const auto = await dapo(full(join(dir, 'ckpt-auto'), 'auto'));
    expect(auto.code, auto.stderr).toBe(0);
    expect(auto.stdout).toMatch(/^ {2}activations +\d+\.\d (MiB|GiB) +checkpointed: 30 block inputs of micro-batch 8 × \d+ tokens$/m);
    expect(auto.stdout).toMatch(/^micro-batch size: 8 \(set\)/m);
    expect(auto.stdout).toMatch(/^gradient checkpointing: on \(auto: on, the micro-batch does not fit without it\); one more forward per block in backward$/m);
    expect(auto.stdout).toMatch(/^fits$/m);
    const off = await dapo(full(join(dir, 'ckpt-off'), 'false'));
    expect(off.code).not.toBe(0);
    expect(off.stdout).toMatch(/^gradient checkpointing: off \(gradientCheckpointing false\)$/m);
    expect(off.stderr).toMatch(/to fit: .*turn activation checkpointing on \(gradientCheckpointing true or 'auto': about \d+\.\d+ GiB\)/);
    expect(existsSync(join(dir, 'ckpt-auto'))).toBe(false);
  });

  it('a set micro-batch that does not fit fails before anything runs, naming what to change', async () => {
    const out = join(dir, 'too-big');
    const r = await dapo(pretrained(out, '--set', 'rl.microBatchSize=64'));
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/^micro-batch size: 64 \(set\)/m);
    expect(r.stderr).toMatch(/does not fit: the run needs about \d+\.\d+ GiB of WASM address space \(update peak .*\), over 3\.80 GiB \(95 % of the 4 GiB a WebAssembly instance can address\)/);
    expect(r.stderr).toMatch(/to fit: lower rl\.microBatchSize \(now 64; 1 needs about/);
    expect(existsSync(out)).toBe(false);
  });
});
