// The training config: defaults, the GRPO preset, layering, validation listing every problem, CLI overrides.
import { describe, expect, it } from 'vitest';
import { DEFAULT_MODEL_CONFIG } from '../../src/nn/config.js';
import {
  DAPO_DEFAULTS, DEFAULT_TRAIN_CONFIG, GRPO_PRESET, PAGE_QUICK_PRESET, QUICK_PRESET, closestKey, configLayersFrom, modelConfigOf,
  parseOverrides, resolveTrainConfig,
} from '../../src/rl/config.js';
import { problemsOf } from '../support/config_problems.js';

describe('resolveTrainConfig', () => {
  it('resolves the defaults: DAPO as in the paper (arXiv 2503.14476) and the default model', () => {
    const cfg = resolveTrainConfig();
    expect(cfg).toEqual(DEFAULT_TRAIN_CONFIG);
    expect(cfg.model).toEqual(DEFAULT_MODEL_CONFIG);
    expect(cfg.rl).toMatchObject({
      algo: 'dapo', epsLow: 0.2, epsHigh: 0.28, lossAggregation: 'token-mean', dynamicSampling: 'filter',
      overlongFilter: true, overlongPenalty: true, klBeta: 0, groupSize: 8, promptsPerStep: 16, generationBatchPrompts: 16,
    });
    expect(cfg.task.name).toBe('addition');
    expect(modelConfigOf(cfg)).toEqual(DEFAULT_MODEL_CONFIG);
    // resolving does not hand out the defaults themselves
    cfg.rl.lr = 5;
    expect(DAPO_DEFAULTS.lr).toBe(3e-4);
  });

  it("applies the GRPO preset for rl.algo 'grpo'", () => {
    const cfg = resolveTrainConfig({ rl: { algo: 'grpo' } });
    expect(cfg.rl).toEqual({ ...DAPO_DEFAULTS, ...GRPO_PRESET, algo: 'grpo' });
    expect(cfg.rl).toMatchObject({
      epsLow: 0.2, epsHigh: 0.2, lossAggregation: 'seq-mean-token-mean', klBeta: 0.001,
      dynamicSampling: 'off', overlongFilter: false, overlongPenalty: false,
    });
  });

  it('lets user keys override the preset, whichever layer sets them', () => {
    const cfg = resolveTrainConfig({ rl: { klBeta: 0.04 } }, { rl: { algo: 'grpo', epsHigh: 0.25 } });
    expect(cfg.rl.algo).toBe('grpo');
    expect(cfg.rl.klBeta).toBe(0.04);
    expect(cfg.rl.epsHigh).toBe(0.25);
    expect(cfg.rl.lossAggregation).toBe('seq-mean-token-mean');
  });

  it('merges layers deeply, later wins', () => {
    const cfg = resolveTrainConfig(
      { seed: 7, model: { dModel: 64 }, rl: { steps: 10, lr: 3e-4 }, task: { name: 'addition', digits: 3 } },
      { model: { nLayers: 2 }, rl: { lr: 2e-4 }, task: { digits: 4 } },
    );
    expect(cfg.seed).toBe(7);
    expect(cfg.model).toEqual({ ...DEFAULT_MODEL_CONFIG, dModel: 64, nLayers: 2 });
    expect(cfg.rl.steps).toBe(10);
    expect(cfg.rl.lr).toBe(2e-4);
    expect(cfg.task).toEqual({ name: 'addition', digits: 4 });
  });

  it("drops an earlier task's knobs when a later layer names another task", () => {
    const cfg = resolveTrainConfig({ task: { name: 'addition', digits: 3 } }, { task: { name: 'multiplication' } });
    expect(cfg.task).toEqual({ name: 'multiplication' });
  });

  it('ties generationBatchPrompts to promptsPerStep unless given', () => {
    expect(resolveTrainConfig({ rl: { promptsPerStep: 8 } }).rl.generationBatchPrompts).toBe(8);
    expect(resolveTrainConfig({ rl: { promptsPerStep: 8, generationBatchPrompts: 12 } }).rl.generationBatchPrompts).toBe(12);
  });

  it('lists every problem at once with dotted paths', () => {
    const problems = problemsOf(() => resolveTrainConfig({
      seed: -1,
      backend: 'cuda',
      bogus: 1,
      task: { name: '' },
      model: { dModel: 0, nLayer: 2 },
      sft: { lr: 0, weightDecay: '0.1' },
      rl: { epsHigh: -1, epsLow: 1, lossAggregation: 'mean', overlongFilter: 'yes', topK: 1.5, epsHihg: 0.3 },
      eval: { passK: 16 },
      checkpoint: 'often',
    }));
    expect(problems).toEqual(expect.arrayContaining([
      'seed: must be an integer ≥ 0 and ≤ 4294967295, got -1',
      "backend: must be one of 'auto', 'webgpu', 'wasm', 'reference', got \"cuda\"",
      expect.stringMatching(/^bogus: unknown key \(allowed: seed, backend, gradientCheckpointing, task, model, sft, rl, eval, checkpoint, lora, init, reward\)$/),
      'task.name: must be a non-empty string, got ""',
      "model.nLayer: unknown key (did you mean 'nLayers'?)",
      expect.stringMatching(/^model: dModel must be a positive integer, got 0/),
      'sft.lr: must be > 0, got 0',
      'sft.weightDecay: must be a finite number ≥ 0, got "0.1"',
      'rl.epsHigh: must be ≥ 0, got -1',
      'rl.epsLow: must be in [0, 1), got 1',
      expect.stringMatching(/^rl\.lossAggregation: must be one of 'token-mean', .*got "mean"$/),
      'rl.overlongFilter: must be true or false, got "yes"',
      'rl.topK: must be an integer ≥ 0 (0 = off), got 1.5',
      "rl.epsHihg: unknown key (did you mean 'epsHigh'?)",
      'eval.passK: must be ≤ eval.samplesPerProblem (8), got 16',
      'checkpoint: must be an object, got "often"',
    ]));
    expect(problems).toHaveLength(16);
  });

  it('rejects inconsistent combinations and says what is allowed', () => {
    expect(problemsOf(() => resolveTrainConfig({ rl: { groupSize: 1, microBatchSize: 8 } }))).toEqual([
      "rl.groupSize: 1 makes every group all-correct or all-wrong, so dynamicSampling 'filter' can never fill a batch; use groupSize ≥ 2 or dynamicSampling 'off'",
    ]);
    const problems = problemsOf(() => resolveTrainConfig({
      model: { maxSeqLen: 32 },
      rl: { groupSize: 2, promptsPerStep: 6, miniBatches: 2, microBatchSize: 4, maxNewTokens: 40, overlongCache: 40 },
    }));
    expect(problems).toEqual([
      'rl.microBatchSize: must divide the mini-batch of promptsPerStep·groupSize/miniBatches = 6 sequences (allowed: 1, 2, 3, or ≥ 6), got 4',
      'rl.overlongCache: must be < rl.maxNewTokens (40) when overlongPenalty is on, got 40',
      'rl.maxNewTokens: must be < model.maxSeqLen (32) to leave room for the prompt, got 40',
    ]);
    expect(problemsOf(() => resolveTrainConfig({ rl: { miniBatches: 3 } }))).toEqual([
      'rl.miniBatches: must divide promptsPerStep·groupSize = 128 sequences (allowed: 1, 2, 4, 8, 16, 32, 64, 128), got 3',
    ]);
    expect(problemsOf(() => resolveTrainConfig({ rl: { algo: 'grpo', generationBatchPrompts: 32 } }))).toEqual([
      "rl.generationBatchPrompts: must equal rl.promptsPerStep (16) when dynamicSampling is 'off' (one generation batch is the training batch), got 32",
    ]);
    // the same group size is fine once dynamic sampling is off
    expect(resolveTrainConfig({ rl: { groupSize: 1, dynamicSampling: 'off', microBatchSize: 8 } }).rl.groupSize).toBe(1);
    // a micro-batch larger than the mini-batch is one pass per mini-batch
    expect(resolveTrainConfig({ rl: { groupSize: 1, dynamicSampling: 'off', microBatchSize: 64 } }).rl.microBatchSize).toBe(64);
  });

  it('refuses absurd counts (a run with no end) naming the key, and still takes large sane ones', () => {
    expect(problemsOf(() => resolveTrainConfig({ rl: { steps: 1e300 }, sft: { steps: 2.5 }, checkpoint: { every: 20_000_000 } }))).toEqual([
      'rl.steps: must be ≤ 10000000 (0 = supervised warm-up only): a count this large never ends, got 1e+300',
      'sft.steps: must be an integer ≥ 0 (0 = skip SFT), got 2.5',
      'checkpoint.every: must be ≤ 10000000 (0 = off): a count this large never ends, got 20000000',
    ]);
    expect(resolveTrainConfig({ rl: { steps: 10_000_000, sampleBudget: 10_000_000 } }).rl.steps).toBe(10_000_000);
  });

  it('does not pile follow-up problems on an invalid field', () => {
    expect(problemsOf(() => resolveTrainConfig({ rl: { promptsPerStep: 'x' } }))).toEqual([
      'rl.promptsPerStep: must be an integer ≥ 1, got "x"',
    ]);
    expect(problemsOf(() => resolveTrainConfig({ rl: { algo: 'ppo' } }))).toEqual([
      "rl.algo: must be one of 'dapo', 'grpo', got \"ppo\"",
    ]);
  });

  it('rejects layers that are not objects and keeps __proto__ a plain (unknown) key', () => {
    expect(problemsOf(() => resolveTrainConfig(3, null, { rl: 5 }))).toEqual([
      'layer 1: must be an object, got 3',
      'rl: must be an object, got 5',
    ]);
    const problems = problemsOf(() => resolveTrainConfig(JSON.parse('{"rl": {"__proto__": {"lr": 9}}}')));
    expect(problems).toEqual([expect.stringMatching(/^rl\.__proto__: unknown key/)]);
    expect(({} as Record<string, unknown>).lr).toBeUndefined();
  });

  it('--quick and the page\'s ?quick=1 are one run: a small policy on 1–2-digit addition that changes nothing else', () => {
    const cli = resolveTrainConfig(...configLayersFrom({ quick: true }));
    const page = resolveTrainConfig(...configLayersFrom({ quick: true }, { quickPreset: PAGE_QUICK_PRESET }));
    expect(page).toEqual(cli);
    expect(cli.model).toMatchObject({ dModel: 64, nLayers: 2, ffnDim: 256 });
    expect(cli.task).toMatchObject({ name: 'addition', maxDigits: 2 });
    // Only what the preset names moves away from the defaults (the full run stays as it is).
    expect(cli.rl).toEqual({ ...DAPO_DEFAULTS, ...QUICK_PRESET.rl, generationBatchPrompts: QUICK_PRESET.rl.promptsPerStep });
    expect(resolveTrainConfig(...configLayersFrom({}))).toEqual(resolveTrainConfig());
  });

  it('closestKey suggests only near misses', () => {
    expect(closestKey('epslow', ['epsLow', 'epsHigh'])).toBe('epsLow');
    expect(closestKey('microBatch', ['microBatchSize', 'miniBatches'])).toBeUndefined();
    expect(closestKey('stpes', ['steps', 'seed'])).toBe('steps');
  });

  it('model.path: a pretrained model keeps only path and a maxSeqLen cap, skips the warm-up, and takes lora.*', () => {
    const cfg = resolveTrainConfig({ model: { path: 'models/smol', maxSeqLen: 512 }, task: { name: 'gsm8k', path: 'train.jsonl' }, lora: { r: 16 } });
    expect(cfg.model).toEqual({ path: 'models/smol', maxSeqLen: 512 });
    expect(cfg.sft.steps).toBe(0);
    expect(cfg.lora).toEqual({ r: 16, alpha: 32, dropout: 0.05, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], frozenDtype: 'auto' });
    expect(resolveTrainConfig({ model: { path: 'm' }, task: { name: 'gsm8k', path: 't.jsonl' }, sft: { steps: 5 } }).sft.steps).toBe(5);
    expect(resolveTrainConfig({}).lora.r).toBe(0);
  });

  it('model.path: refuses architecture keys, built-in tasks, init; lora keys are checked', () => {
    const problems = problemsOf(() => resolveTrainConfig({
      model: { path: 'm', nLayers: 2, maxSeqLen: 1, bogus: 1 }, init: 'ckpt', lora: { r: -1, rank: 3, dropout: 1, targetModules: [] },
    }));
    expect(problems).toHaveLength(9);
    expect(problemsOf(() => resolveTrainConfig({
      model: { path: 'm', nLayers: 2, maxSeqLen: 1, bogus: 1 }, init: 'ckpt', lora: { r: -1, rank: 3, dropout: 1, targetModules: [] },
    }))).toEqual(expect.arrayContaining([
      'init: a pretrained run starts from model.path; drop init',
      "model.nLayers: the architecture comes from the config.json of model.path \"m\"; drop model.nLayers (only model.maxSeqLen, a cap on the context, may be set)",
      expect.stringMatching(/^model\.bogus: unknown key/),
      expect.stringMatching(/^model\.maxSeqLen: must be an integer ≥ 2/),
      expect.stringMatching(/^lora\.rank: unknown key \(allowed: r, alpha, dropout, targetModules, frozenDtype\)/),
      expect.stringMatching(/^lora\.r: must be an integer ≥ 0/),
      'lora.dropout: must be in [0, 1), got 1',
      expect.stringMatching(/^lora\.targetModules: must be a non-empty list/),
      expect.stringMatching(/^task\.name: 'addition' is a built-in character-level task/),
    ]));
    expect(problemsOf(() => resolveTrainConfig({ lora: { r: 8 } }))).toEqual(['lora.r: LoRA adapts a pretrained model; set model.path (--model DIR) or lora.r 0']);
  });
});

describe('parseOverrides', () => {
  it('parses numbers, booleans and strings into a nested object', () => {
    expect(parseOverrides(['rl.epsHigh=0.3', 'rl.overlongFilter=false', 'rl.lr=1e-4', 'seed=-2', 'backend=wasm', 'task.name=addition', 'task.digits=3']))
      .toEqual({ rl: { epsHigh: 0.3, overlongFilter: false, lr: 1e-4 }, seed: -2, backend: 'wasm', task: { name: 'addition', digits: 3 } });
    expect(parseOverrides(['task.label="007"', 'task.ops=["+","-"]', 'rl.steps=5', 'rl.steps=6'])).toEqual({
      task: { label: '007', ops: ['+', '-'] }, rl: { steps: 6 },
    });
  });

  it('feeds resolveTrainConfig', () => {
    const cfg = resolveTrainConfig({ rl: { algo: 'grpo' } }, parseOverrides(['rl.epsHigh=0.28', 'rl.dynamicSampling=filter']));
    expect(cfg.rl).toMatchObject({ algo: 'grpo', epsHigh: 0.28, dynamicSampling: 'filter', klBeta: 0.001 });
  });

  it('names every bad flag', () => {
    const problems = problemsOf(() => parseOverrides(['rl.epsHigh', 'rl..lr=1', 'rl=3', 'rl.steps=4', 'task.ops=[1,', '__proto__.x=1']));
    expect(problems).toEqual([
      'override "rl.epsHigh": expected key=value (e.g. rl.epsHigh=0.3)',
      'override "rl..lr=1": the key has an empty part (use dotted names like rl.epsHigh)',
      'override "rl.steps=4": \'rl\' was already set to a value, not a section',
      expect.stringMatching(/^override "task\.ops=\[1,": value is not valid JSON/),
      'override "__proto__.x=1": \'__proto__\' is not a config key',
    ]);
  });
});
