// `dapo train --model DIR --lora --task gsm8k --set task.path=FILE.jsonl` as a new user runs it, on a tiny random
// Llama checkpoint with a character-vocabulary tokenizer.json and a ChatML chat template: the run writes a PEFT
// adapter and a merged Hugging Face directory; the merged model reloads (loadPretrained + loadHfTokenizer) with the
// logits of base + adapter; a LoRA run resumes exactly. A built-in run's checkpoints are complete Hugging Face
// directories whose tokenizer and model reproduce the character tokenizer and the model.
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as T from '../../src/tensor/index.js';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import { loadPretrained } from '../../src/io/pretrained_node.js';
import { loadHfTokenizer } from '../../src/data/tokenizer_node.js';
import { CharTokenizer, TASK_TOKENIZER } from '../../src/data/tokenizer.js';
import { tokenizerConfigForCharVocabulary, tokenizerJsonForCharVocabulary } from '../../src/data/tokenizer_export.js';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, loadLoraAdapter } from '../../src/io/peft.js';
import { removeLora } from '../../src/nn/lora.js';
import type { TransformerLM } from '../../src/nn/transformer.js';
import { loadCheckpoint } from '../../src/io/node_files.js';
import { fixtureFiles, writeFixture } from '../support/hf_fixture.js';
import { assertClose } from '../support/close.js';
import { dapo } from '../support/cli.js';

/** Wide enough for GSM8K text and the ChatML markers. */
const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;!?\'"()+-*/=$%#<>|_{}[]\\\n';
const CHATML = "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}" +
  '{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}';

const RECORDS = [
  ['Tom has 3 apples and buys 4 more. How many apples does he have?', 'He has 3+4=7 apples.\n#### 7'],
  ['A box holds 6 pens. How many pens are in 2 boxes?', '2*6=12 pens.\n#### 12'],
  ['Sara reads 5 pages a day for 3 days. How many pages?', '5*3=15 pages.\n#### 15'],
  ['There are 10 birds and 4 fly away. How many are left?', '10-4=6 birds.\n#### 6'],
  ['Ben earns $8 an hour for 2 hours. How much does he earn?', '8*2=16 dollars.\n#### 16'],
  ['A class has 9 boys and 9 girls. How many children?', '9+9=18 children.\n#### 18'],
];

const jsonl = (rows: string[][]) => rows.map(([question, answer]) => JSON.stringify({ question, answer })).join('\n') + '\n';

/** A tiny Llama with a character tokenizer (tokenizer.json + tokenizer_config.json with a chat template). */
function writeModelDir(dir: string): CharTokenizer {
  const tokenizer = new CharTokenizer(ALPHABET);
  const config = {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: tokenizer.vocabSize, hidden_size: 32, intermediate_size: 48,
    num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 256, rope_theta: 10000,
    rms_norm_eps: 1e-5, tie_word_embeddings: false, hidden_act: 'silu', bos_token_id: null, eos_token_id: tokenizer.eosId, pad_token_id: tokenizer.padId,
  };
  writeFixture(dir, fixtureFiles(config, { seed: 5 }));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJsonForCharVocabulary(tokenizer)));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ ...tokenizerConfigForCharVocabulary(tokenizer), chat_template: CHATML }));
  writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: tokenizer.eosId, pad_token_id: tokenizer.padId, temperature: 0.7 }));
  return tokenizer;
}

// Two SFT steps (a pretrained run's default is none) so the adapter surely moves: random-weight policies rarely
// earn a mixed group, and flat groups give no policy gradient.
const TRAIN = {
  task: { template: 'Q: {question}' },
  sft: { steps: 2, batchSize: 2, lr: 1e-2, warmupSteps: 0 },
  rl: { steps: 2, promptsPerStep: 2, groupSize: 2, maxNewTokens: 6, microBatchSize: 4, warmupSteps: 0, dynamicSampling: 'off', overlongCache: 2 },
  eval: { every: 0, problems: 2, passK: 1, samplesPerProblem: 1 },
  checkpoint: { every: 1, keep: 3 },
};

const IDS = [3, 14, 15, 9, 26, 5, 35, 8, 9, 7];

async function logitsOf(model: TransformerLM): Promise<number[]> {
  const ids = T.tensor(IDS, [1, IDS.length], 'int32');
  const logits = T.noGrad(() => model.forward(ids));
  const out = await logits.toArray();
  for (const t of [ids, logits]) t.dispose();
  return out;
}

/** Greedy decoding by hand (full forward per token, float64 reference backend): what `dapo sample` must print. */
async function greedyResponse(model: TransformerLM, tokenizer: CharTokenizer, prompt: string, maxNewTokens: number): Promise<string> {
  const ids = tokenizer.encode(prompt);
  const response: number[] = [];
  while (response.length < maxNewTokens) {
    const sequence = [...ids, ...response];
    const input = T.tensor(sequence, [1, sequence.length], 'int32');
    const logits = T.noGrad(() => model.forward(input));
    const values = await logits.toArray();
    input.dispose(); logits.dispose();
    const last = values.slice((sequence.length - 1) * model.config.vocabSize, sequence.length * model.config.vocabSize);
    const next = last.indexOf(Math.max(...last));
    if (tokenizer.stopTokenIds.includes(next)) break;
    response.push(next);
  }
  return tokenizer.decode(response);
}

describe('dapo train --model (pretrained, LoRA)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dapo-pretrained-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const modelDir = join(dir, 'model');
  const tokenizer = writeModelDir(modelDir);
  writeFileSync(join(dir, 'train.jsonl'), jsonl(RECORDS.slice(0, 4)));
  writeFileSync(join(dir, 'test.jsonl'), jsonl(RECORDS.slice(4)));
  writeFileSync(join(dir, 'train.json'), JSON.stringify(TRAIN));
  const args = (out: string, steps: number) => ['train', '--model', modelDir, '--lora', '--task', 'gsm8k', '--set', `task.path=${join(dir, 'train.jsonl')}`,
    '--set', `task.testPath=${join(dir, 'test.jsonl')}`, '--config', join(dir, 'train.json'), '--steps', String(steps), '--out', out, '--no-plots', '--quiet', '--backend', 'wasm'];
  const runDir = join(dir, 'run');
  beforeAll(() => T.setBackend(new ReferenceBackend()));

  it('writes adapter/ (PEFT) and merged/ (a complete Hugging Face directory)', async () => {
    const r = await dapo(args(runDir, 2));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/trainable params: [\d,]+ \|\| all params/);
    const config = JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8'));
    expect(config.model).toEqual({ path: modelDir });
    expect(config.lora.r).toBe(16);
    const adapterConfig = JSON.parse(readFileSync(join(runDir, 'adapter', ADAPTER_CONFIG_FILE), 'utf8'));
    expect(adapterConfig.base_model_name_or_path).toBe(modelDir);
    expect(adapterConfig.target_modules).toEqual(['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj']);
    expect(readdirSync(join(runDir, 'merged')).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    const mergedConfig = JSON.parse(readFileSync(join(runDir, 'merged', 'config.json'), 'utf8'));
    expect([mergedConfig.bos_token_id, mergedConfig.eos_token_id, mergedConfig.pad_token_id]).toEqual([null, tokenizer.eosId, tokenizer.padId]);
    expect(JSON.parse(readFileSync(join(runDir, 'merged', 'generation_config.json'), 'utf8')).temperature).toBe(0.7);
    // LoRA checkpoints hold the adapter, not the base weights.
    const checkpoint = join(runDir, 'checkpoints', 'step-000002-final');
    expect(existsSync(join(checkpoint, ADAPTER_WEIGHTS_FILE))).toBe(true);
    expect(existsSync(join(checkpoint, 'model.safetensors'))).toBe(false);
  }, 300_000);

  it('the merged model reloads with the logits of base + adapter, and its tokenizer with the chat template', async () => {
    const merged = await loadPretrained(join(runDir, 'merged'));
    const mergedTokenizer = await loadHfTokenizer(join(runDir, 'merged'));
    const base = await loadPretrained(modelDir);
    const adapterDir = join(runDir, 'adapter');
    loadLoraAdapter(base.model, {
      [ADAPTER_CONFIG_FILE]: readFileSync(join(adapterDir, ADAPTER_CONFIG_FILE), 'utf8'),
      [ADAPTER_WEIGHTS_FILE]: new Uint8Array(readFileSync(join(adapterDir, ADAPTER_WEIGHTS_FILE))),
    });
    const withAdapter = await logitsOf(base.model);
    assertClose(await logitsOf(merged.model), withAdapter, 'merged vs base + adapter logits', 1e-4, 1e-4);
    // The adapter trained: base + adapter differs from the base.
    removeLora(base.model);
    expect(Math.max(...(await logitsOf(base.model)).map((v, i) => Math.abs(v - withAdapter[i])))).toBeGreaterThan(1e-6);
    expect(mergedTokenizer.encode('How many? #### 7')).toEqual(tokenizer.encode('How many? #### 7'));
    expect(mergedTokenizer.applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true })).toBe('<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');
    merged.model.dispose();
    base.model.dispose();
  }, 60_000);

  it('a LoRA run resumes exactly (adapter, its optimizer state and dropout masks) from its step-1 checkpoint', async () => {
    const resumedDir = join(dir, 'resumed');
    cpSync(runDir, resumedDir, { recursive: true });
    const checkpoints = join(resumedDir, 'checkpoints');
    for (const name of readdirSync(checkpoints)) if (name.startsWith('step-000002')) rmSync(join(checkpoints, name), { recursive: true });
    rmSync(join(resumedDir, 'adapter'), { recursive: true });
    rmSync(join(resumedDir, 'merged'), { recursive: true });
    writeFileSync(join(checkpoints, 'latest.json'), JSON.stringify({ checkpoint: 'step-000001' }));
    const r = await dapo(['train', '--resume', resumedDir, '--no-plots', '--quiet', '--backend', 'wasm']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/resuming .* after RL step 1/);
    const adapterOf = (run: string) => readFileSync(join(run, 'checkpoints', 'step-000002-final', ADAPTER_WEIGHTS_FILE));
    expect(Buffer.compare(adapterOf(resumedDir), adapterOf(runDir))).toBe(0);
    expect(Buffer.compare(readFileSync(join(resumedDir, 'adapter', ADAPTER_WEIGHTS_FILE)), readFileSync(join(runDir, 'adapter', ADAPTER_WEIGHTS_FILE)))).toBe(0);
    expect(Buffer.compare(readFileSync(join(resumedDir, 'merged', 'model.safetensors')), readFileSync(join(runDir, 'merged', 'model.safetensors')))).toBe(0);
  }, 300_000);

  it('full fine-tuning (no --lora) writes merged/ and complete HF checkpoints; GRPO with LoRA keeps a merged reference', async () => {
    const full = join(dir, 'full');
    const withFlags = (out: string) => args(out, 1).filter((arg) => arg !== '--lora');
    const r = await dapo(withFlags(full));
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(full, 'adapter'))).toBe(false);
    for (const file of ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) {
      expect(existsSync(join(full, 'merged', file)), file).toBe(true);
      expect(existsSync(join(full, 'checkpoints', 'step-000001-final', file)), file).toBe(true);
    }
    const grpo = join(dir, 'grpo');
    // with the frozen base in bfloat16 (lora.frozenDtype): the KL reference copies it, merged/ widens it back
    const g = await dapo([...args(grpo, 1), '--algo', 'grpo', '--set', 'lora.frozenDtype=bfloat16']);
    expect(g.code, g.stderr).toBe(0);
    expect(`${g.stdout}${g.stderr}`).toMatch(/frozen base weights stored as bfloat16: 9 tensors/);
    expect(existsSync(join(grpo, 'reference.safetensors'))).toBe(true);
    expect(existsSync(join(grpo, 'adapter', ADAPTER_WEIGHTS_FILE))).toBe(true);
  }, 300_000);

  const finalEval = (run: string) => {
    const records = readFileSync(join(run, 'eval.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    const { accuracy, n, response_length_mean, truncation_rate } = records.filter((record) => record.phase === 'final').pop();
    return { accuracy, n, response_length_mean, truncation_rate };
  };
  const evalOf = async (path: string) => {
    const r = await dapo(['eval', path, '-k', '1', '--json', '--backend', 'wasm']);
    expect(r.code, r.stderr).toBe(0);
    const { accuracy, n, response_length_mean, truncation_rate, checkpoint } = JSON.parse(r.stdout);
    return { greedy: { accuracy, n, response_length_mean, truncation_rate }, checkpoint };
  };

  it('dapo eval of a LoRA run (run, adapter/, merged/) reproduces its final evaluation; dapo sample renders the chat template', async () => {
    const expected = finalEval(runDir);
    expect(expected.n).toBe(2);
    const fromRun = await evalOf(runDir);
    expect(fromRun.checkpoint).toBe(join(runDir, 'checkpoints', 'step-000002-final'));
    expect(fromRun.greedy).toEqual(expected);
    expect((await evalOf(join(runDir, 'adapter'))).greedy).toEqual(expected);
    // merged/ folds the adapter into the weights (rounding differs, the greedy answers do not).
    const merged = (await evalOf(join(runDir, 'merged'))).greedy;
    expect([merged.n, merged.accuracy]).toEqual([expected.n, expected.accuracy]);
    const s = await dapo(['sample', runDir, '-n', '2', '--json', '--backend', 'wasm']);
    expect(s.code, s.stderr).toBe(0);
    const lines = s.stdout.trim().split('\n').map((line) => JSON.parse(line));
    expect(lines.map((line) => line.answer)).toEqual(['16', '18']);
    for (const line of lines) expect(line.prompt).toMatch(/^<\|im_start\|>user\n[\s\S]*<\|im_start\|>assistant\n$/);
    expect(lines.filter((line) => line.correct).length / 2).toBe(expected.accuracy);
    // The completions are the trained policy's (base + the final adapter), decoded greedily.
    const policy = await loadPretrained(modelDir);
    loadLoraAdapter(policy.model, {
      [ADAPTER_CONFIG_FILE]: readFileSync(join(runDir, 'adapter', ADAPTER_CONFIG_FILE), 'utf8'),
      [ADAPTER_WEIGHTS_FILE]: new Uint8Array(readFileSync(join(runDir, 'adapter', ADAPTER_WEIGHTS_FILE))),
    });
    for (const line of lines) expect(line.response).toBe(await greedyResponse(policy.model, tokenizer, line.prompt, TRAIN.rl.maxNewTokens));
    removeLora(policy.model);
    policy.model.dispose();
    // merged/ and adapter/ sample the same completions.
    for (const path of [join(runDir, 'adapter'), join(runDir, 'merged')]) {
      const other = await dapo(['sample', path, '-n', '2', '--json', '--backend', 'wasm']);
      expect(other.stdout, path).toBe(s.stdout);
    }
  }, 120_000);

  it('dapo eval of a full fine-tuning run (run, checkpoint, merged/) reproduces its final evaluation', async () => {
    const full = join(dir, 'full');
    const expected = finalEval(full);
    expect((await evalOf(full)).greedy).toEqual(expected);
    expect((await evalOf(join(full, 'checkpoints', 'step-000001-final'))).greedy).toEqual(expected);
    expect((await evalOf(join(full, 'merged'))).greedy).toEqual(expected);
    // A LoRA checkpoint needs its base model: a moved base model is named.
    const moved = join(dir, 'moved-run');
    cpSync(runDir, moved, { recursive: true });
    const config = JSON.parse(readFileSync(join(moved, 'config.json'), 'utf8'));
    writeFileSync(join(moved, 'config.json'), JSON.stringify({ ...config, model: { path: join(dir, 'no-such-model') } }));
    const missing = await dapo(['eval', moved, '--backend', 'wasm']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('no-such-model');
  }, 120_000);

  it('refuses architecture keys next to --model, and LoRA without a pretrained model', async () => {
    const r = await dapo(['train', '--print-config', '--model', modelDir, '--task', 'gsm8k', '--set', 'model.dModel=64']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/model\.dModel: the architecture comes from the config\.json of model\.path/);
    const defaults = await dapo(['train', '--print-config', '--model', modelDir, '--lora', '--task', 'gsm8k', '--set', 'task.path=train.jsonl']);
    expect(JSON.parse(defaults.stdout).sft.steps).toBe(0);
    const lora = await dapo(['train', '--print-config', '--lora']);
    expect(lora.stderr).toMatch(/lora\.r: LoRA adapts a pretrained model/);
  }, 60_000);
});

describe('built-in runs: every checkpoint is a complete Hugging Face directory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dapo-builtin-hf-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const tiny = {
    model: { dModel: 32, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 64, maxSeqLen: 48 },
    sft: { steps: 2, batchSize: 4, warmupSteps: 0 },
    rl: { steps: 1, promptsPerStep: 2, groupSize: 2, maxNewTokens: 8, microBatchSize: 4, warmupSteps: 0, dynamicSampling: 'off', overlongCache: 2 },
    eval: { every: 0, problems: 2, passK: 1, samplesPerProblem: 1 },
  };
  writeFileSync(join(dir, 'tiny.json'), JSON.stringify(tiny));
  beforeAll(() => T.setBackend(new ReferenceBackend()));

  it('config.json has the token ids; tokenizer.json and the weights reproduce CharTokenizer and the model', async () => {
    const runDir = join(dir, 'run');
    const r = await dapo(['train', '--config', join(dir, 'tiny.json'), '--out', runDir, '--no-plots', '--quiet', '--backend', 'wasm']);
    expect(r.code, r.stderr).toBe(0);
    const checkpoint = join(runDir, 'checkpoints', 'step-000001-final');
    const config = JSON.parse(readFileSync(join(checkpoint, 'config.json'), 'utf8'));
    expect([config.bos_token_id, config.eos_token_id, config.pad_token_id]).toEqual([null, TASK_TOKENIZER.eosId, TASK_TOKENIZER.padId]);
    expect(JSON.parse(readFileSync(join(checkpoint, 'generation_config.json'), 'utf8'))).toEqual({ eos_token_id: TASK_TOKENIZER.eosId, pad_token_id: TASK_TOKENIZER.padId });
    const hfTokenizer = await loadHfTokenizer(checkpoint);
    for (const text of ['12+34=46', '(3*4)-5=7', '9 ? 8 : 7']) expect(hfTokenizer.encode(text)).toEqual(TASK_TOKENIZER.encode(text));
    expect(hfTokenizer.stopTokenIds).toEqual([TASK_TOKENIZER.eosId]);
    const loaded = await loadPretrained(checkpoint);
    const own = loadCheckpoint(checkpoint);
    const ids = [2, 3, 4, 5, 1, 0];
    const logits = async (model: TransformerLM) => {
      const t = T.tensor(ids, [1, ids.length], 'int32');
      const out = T.noGrad(() => model.forward(t));
      const values = await out.toArray();
      t.dispose(); out.dispose();
      return values;
    };
    expect(await logits(loaded.model)).toEqual(await logits(own));
    loaded.model.dispose();
    own.dispose();
  }, 120_000);
});
