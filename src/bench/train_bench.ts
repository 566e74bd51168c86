// One full training step of the policy model: forward, mean token cross-entropy, backward, AdamW update
// (with gradient clipping, as the trainer runs it) on a batch of random tokens. The cross-entropy comes from full
// [tokens, vocabulary] logits (the toy case, as its TF.js peer computes it) or, with fusedHead, from the output head
// fused with the log-softmax over row chunks (TransformerLM.tokenLogprobs: how SFT and the RL update train).
import type { Backend } from '../backend/backend.js';
import { setBackend, tidy } from '../tensor/engine.js';
import { tensor } from '../tensor/creation.js';
import { reshape } from '../tensor/layout.js';
import { crossEntropy } from '../tensor/model_ops.js';
import { neg } from '../tensor/elementwise.js';
import { mean } from '../tensor/reduce.js';
import { backward } from '../autograd/backward.js';
import { DEFAULT_MODEL_CONFIG, type ModelConfig } from '../nn/config.js';
import { TransformerLM } from '../nn/transformer.js';
import { AdamW } from '../optim/adamw.js';
import { type LoraOptions, applyLora, removeLora, trainableParameters } from '../nn/lora.js';
import { type BenchRecord, type TimingOptions, disposeAll, randomInts, timeIt, tokensPerSOf } from './common.js';
import { profileRun } from './profile.js';

export interface TrainStepOptions {
  /** Train LoRA adapters on the frozen model instead of every weight. */
  lora?: LoraOptions | null;
  /** Profile one more step after the timed ones (record.profile and profile_* extras). */
  profile?: boolean;
  /** Activation checkpointing per decoder block (TransformerLM.checkpointActivations). */
  checkpointActivations?: boolean;
  /** The loss from the fused head (tokenLogprobs: no [tokens, vocabulary] logits) instead of full logits. */
  fusedHead?: boolean;
}

export interface TrainStepShape {
  batch: number;
  seqLen: number;
}

export const TRAIN_STEP_SHAPE: TrainStepShape = { batch: 16, seqLen: 64 };
/** --quick: 4 sequences instead of 16. */
export const TRAIN_STEP_SHAPE_QUICK: TrainStepShape = { batch: 4, seqLen: 64 };

/**
 * Record train_step: ms per step, tokens/s (batch·seqLen per step) and peak_bytes, the backend's peak
 * allocation above what was live when the case started (exact on a fresh backend, which `dapo bench` uses;
 * on a used one an earlier, higher peak would hide this case's).
 */
export async function benchTrainStep(
  backend: Backend, label: string, { batch, seqLen }: TrainStepShape, opts: TimingOptions = {},
  config: Partial<ModelConfig> = DEFAULT_MODEL_CONFIG, options: TrainStepOptions = {},
): Promise<BenchRecord> {
  setBackend(backend);
  const liveBefore = backend.memory().liveBytes;
  const tokens = batch * seqLen;
  const model = new TransformerLM({ ...config, maxSeqLen: Math.max(config.maxSeqLen ?? DEFAULT_MODEL_CONFIG.maxSeqLen, seqLen) }, 1);
  const vocab = model.config.vocabSize;
  if (options.lora) applyLora(model, options.lora);
  model.checkpointActivations = options.checkpointActivations ?? false;
  const optimizer = new AdamW(options.lora ? trainableParameters(model) : model.params, { lr: 1e-3, maxGradNorm: 1 });
  const ids = tensor(randomInts(tokens, vocab, 51), [batch, seqLen], 'int32');
  const targets = tensor(randomInts(tokens, vocab, 52), [tokens], 'int32');
  try {
    const step = () => {
      const loss = tidy(() => (options.fusedHead ? neg(mean(model.tokenLogprobs(ids, targets).logp))
        : crossEntropy(reshape(model.forward(ids), [tokens, vocab]), targets)));
      backward(loss);
      optimizer.step().gradNorm.dispose();
      loss.dispose();
    };
    const { ms, runs } = await timeIt(backend, step, opts);
    const profiled = options.profile ? (await profileRun(backend, async () => { step(); await backend.sync(); })).profile : undefined;
    const peakBytes = backend.memory().peakBytes - liveBefore;
    return {
      op: 'train_step', backend: label, shape: [batch, seqLen], ms, tokensPerS: tokensPerSOf(tokens, ms),
      extra: { peak_bytes: peakBytes }, ...(profiled ? { profile: profiled } : {}), runs,
    };
  } finally {
    disposeAll([ids, targets]);
    optimizer.dispose();
    removeLora(model);
    model.dispose();
  }
}
