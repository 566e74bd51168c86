// The training pipeline: supervised warm-up → DAPO (or GRPO) steps → evaluation, persisted through a RunStore
// (files in Node, anything in a browser). Every random choice derives from the run seed and a counter kept in
// the checkpoint, so a resumed run continues exactly where the checkpoint left it.
//
// One RL step (rlStep) reads top to bottom: collectGroups (rollout + dynamic sampling) → buildSequences (advantages,
// overlong mask) → update (old/reference log-probs, then the policy update) → stepMetrics (one metrics.jsonl line).
import * as T from '../tensor/index.js';
import type { Task } from '../data/tasks.js';
import { makeTask } from '../data/tasks.js';
import { TransformerLM } from '../nn/transformer.js';
import { hasLora, loraAdapters, trainableParameters } from '../nn/lora.js';
import { AdamW } from '../optim/adamw.js';
import { groupAdvantages } from './advantages.js';
import type { TrainConfig } from './config.js';
import { GroupFilter, type FillReport, resampleFlatGroups } from './dynamic_sampling.js';
import { type EvalResult, evaluate } from './evaluate.js';
import { type UpdateOptions, type UpdateStats, recordOldLogprobs, updatePolicy } from './policy_update.js';
import { type RolloutGroup, callSeed, flatnessRewards, groupKindOf, rollout } from './rollout.js';
import { type RunStore, type TrainerState, TrainingStopped, initialState } from './run_store.js';
import { learningRate } from './schedule.js';
import { type TrainSequence, responseLogprobs } from './sequences.js';
import { sftStep } from './sft.js';
import { stepMetrics } from './step_metrics.js';

/** Growth of the weights' norm in one optimizer step that is warned about, and that stops the run as diverged. */
const SUSPICIOUS_GROWTH = 10;
const EXPLODED_GROWTH = 1000;

/** Seed streams (the `kind` of callSeed). */
const SEED_STREAM = { rollout: 1, shuffle: 2, eval: 3 } as const;

export type TrainerPhase = 'setup' | 'sft' | 'generation' | 'update' | 'eval' | 'checkpoint';

export interface TrainerParts {
  model: TransformerLM;
  optimizer: AdamW;
  state: TrainerState;
  /** Frozen reference policy (KL penalty on), restored on resume. */
  reference?: TransformerLM | null;
}

/** The groups one RL step trains on, and how dynamic sampling got them. */
interface CollectedGroups {
  groups: RolloutGroup[];
  /** The filter's report ('filter' and 'off'); null for 'resample'. */
  fillReport: FillReport | null;
  resampleRate: number;
}

/** What the generation calls of one RL step produced (kept or dropped), for its metrics. */
interface StepRollouts {
  groups: RolloutGroup[];
  seconds: number;
  tokens: number;
}

function optimizerFor(model: TransformerLM, config: TrainConfig, phase: 'sft' | 'rl'): AdamW {
  const phaseConfig = phase === 'sft' ? config.sft : config.rl;
  // With LoRA only the adapters train: the frozen base has no gradients and gets no optimizer state.
  return new AdamW(hasLora(model) ? trainableParameters(model) : model.params, {
    lr: phaseConfig.lr, weightDecay: phaseConfig.weightDecay, maxGradNorm: phaseConfig.maxGradNorm,
    ...(phase === 'rl' ? { beta1: config.rl.beta1, beta2: config.rl.beta2 } : {}),
  });
}

/** Checks that the task fits the model (vocabulary, context) and returns both; `task` defaults to the built-in task
 *  of config.task (a dataset task or a task with a reward module is built by the caller, which reads files). */
export function buildTaskAndModel(config: TrainConfig, given?: Task): { task: Task; model: TransformerLM } {
  if (!given && config.reward) {
    throw new Error(`reward: ${config.reward} is a module to import (loadRewardModule in Node, import() in a page); ` +
      'pass withReward(task, reward, name) to buildTaskAndModel');
  }
  const task = given ?? makeTask(config.task);
  const model = new TransformerLM(config.model, config.seed);
  checkTaskFitsModel(config, task, model);
  return { task, model };
}

/** Throws (disposing the model) when the task's tokenizer or lengths do not fit the model. */
export function checkTaskFitsModel(config: TrainConfig, task: Task, model: TransformerLM): void {
  const problems: string[] = [];
  if (model.config.vocabSize < task.tokenizer.vocabSize) {
    problems.push(`model.vocabSize ${model.config.vocabSize} is smaller than the task tokenizer's ${task.tokenizer.vocabSize}`);
  }
  if (task.maxPromptLength + config.rl.maxNewTokens > model.config.maxSeqLen) {
    problems.push(`task prompts (≤ ${task.maxPromptLength} tokens) + rl.maxNewTokens ${config.rl.maxNewTokens} exceed model.maxSeqLen ${model.config.maxSeqLen}`);
  }
  if (problems.length) {
    model.dispose();
    throw new RangeError(`config: ${problems.join('; ')}`);
  }
}

/** A fresh run's parts (seeded model, optimizer for the first phase). */
export function freshParts(config: TrainConfig, model: TransformerLM): TrainerParts {
  return { model, optimizer: optimizerFor(model, config, 'sft'), state: initialState(), reference: null };
}

/** The optimizer a resumed run needs for its phase. */
export function optimizerForResume(config: TrainConfig, model: TransformerLM, state: TrainerState): AdamW {
  return optimizerFor(model, config, state.sftDone ? 'rl' : 'sft');
}

/** One training sequence per response with its group-normalised advantage; overlong-filtered responses are masked. */
function buildSequences(groups: readonly RolloutGroup[], overlongFilter: boolean): TrainSequence[] {
  const sequences: TrainSequence[] = [];
  for (const group of groups) {
    const advantages = groupAdvantages(group.responses.map((response) => response.reward));
    group.responses.forEach((response, i) => {
      const masked = overlongFilter && response.truncated;
      sequences.push({
        promptIds: group.promptIds, responseIds: response.ids, advantage: advantages[i],
        mask: response.ids.map(() => (masked ? 0 : 1)), weights: [], oldLogp: [], refLogp: null,
      });
    });
  }
  return sequences;
}

export class Trainer {
  /** When this process took the run over (the checkpoint's elapsed time counts what came before). */
  private readonly startedAt = performance.now();
  /** Dynamic sampling ('filter'): keeps the surplus groups of one step for the next. */
  private readonly groupFilter: GroupFilter<RolloutGroup>;
  /** Every group generated in the current RL step, for its metrics. */
  private stepRollouts: StepRollouts = { groups: [], seconds: 0, tokens: 0 };
  /** Aborting it stops the run at the next step or generation call; what was saved stays consistent. */
  private signal: AbortSignal | undefined;
  /** What the run is doing now, so an error (out of memory, a file) can say where it happened. */
  phase: TrainerPhase = 'setup';
  /** L2 norm of the trainable weights after the last optimizer step (null before the first check). */
  private weightNorm: number | null = null;
  /** Phases whose exploding weight norm was already warned about (once each, not every step). */
  private readonly warnedExplosion = new Set<string>();
  /** RL steps in a row that had no group to train on. */
  private emptyInARow = 0;

  constructor(readonly config: TrainConfig, readonly task: Task, private parts: TrainerParts, private readonly store: RunStore) {
    const rl = config.rl;
    this.groupFilter = new GroupFilter<RolloutGroup>({
      trainGroups: rl.promptsPerStep, maxGenerationBatches: rl.maxGenerationBatches, mode: rl.dynamicSampling === 'filter' ? 'filter' : 'off',
    });
    this.groupFilter.setCarried(parts.state.carried);
    // gradientCheckpointing: the training passes (SFT, the RL update) recompute each block in backward; generation
    // (KV cache) and the no-grad log-prob passes never checkpoint. An unresolved 'auto' (no memory plan ran) is off.
    parts.model.checkpointActivations = config.gradientCheckpointing === true;
  }

  get model(): TransformerLM { return this.parts.model; }
  get state(): TrainerState { return this.parts.state; }

  /** Runs (or continues) the whole pipeline. An aborted `signal` throws its reason between steps or generation
   *  calls (never inside a checkpoint write): the run on disk stays at its last checkpoint. */
  async run(options: { signal?: AbortSignal } = {}): Promise<{ sft: EvalResult | null; final: EvalResult | null }> {
    this.signal = options.signal;
    const config = this.config;
    let sftEval: EvalResult | null = null;
    this.weightNorm = await this.trainableWeightNorm();
    if (!this.state.sftDone) {
      await this.runSft();
      sftEval = await this.evaluate(0, 'sft');
      this.state.sftDone = true;
      this.parts.optimizer.dispose();
      this.parts.optimizer = optimizerFor(this.model, config, 'rl');
      if (config.rl.klBeta > 0) await this.freezeReference();
      await this.checkpoint();
    } else if (config.rl.klBeta > 0 && !this.parts.reference) {
      throw new Error('resume: the KL penalty is on but the run has no reference policy (reference.safetensors)');
    }
    const budgetLeft = () => config.rl.sampleBudget === 0 || this.state.samples < config.rl.sampleBudget;
    while (this.state.rlStep < config.rl.steps && budgetLeft()) {
      await this.stopIfAborted();
      await this.rlStep();
      const step = this.state.rlStep;
      const lastStep = step === config.rl.steps || !budgetLeft();
      if (config.eval.every > 0 && step % config.eval.every === 0 && !lastStep) await this.evaluate(step, 'rl');
      if ((config.checkpoint.every > 0 && step % config.checkpoint.every === 0) || lastStep) await this.checkpoint();
    }
    if (!budgetLeft() && this.state.rlStep < config.rl.steps && !this.state.finished) {
      this.store.log(`sample budget of ${config.rl.sampleBudget} responses reached after ${this.state.rlStep} RL steps`);
    }
    let final: EvalResult | null = null;
    if (!this.state.finished) {
      // With rl.steps 0 (warm-up only) the SFT evaluation is the final word.
      if (this.state.rlStep > 0) final = await this.evaluate(this.state.rlStep, 'final');
      this.state.finished = true;
      await this.checkpoint();
    }
    return { sft: sftEval, final };
  }

  private async runSft(): Promise<void> {
    const sft = this.config.sft;
    for (let step = 0; step < sft.steps; step++) {
      await this.stopIfAborted();
      this.phase = 'sft';
      const lr = learningRate(step, { lr: sft.lr, warmupSteps: sft.warmupSteps, totalSteps: sft.steps, schedule: 'constant', minLrRatio: 1 });
      const result = await sftStep(this.model, this.parts.optimizer, this.task, step, sft.batchSize, lr);
      // The line goes in first: a skipped step that stops the run is logged too.
      await this.store.appendSft({ step: step + 1, loss: result.loss, grad_norm: result.gradNorm, lr, skipped: result.skipped, time_s: this.elapsedSeconds() });
      if (result.skipped) this.noteBadStep(`SFT step ${step + 1}: loss ${result.loss}, grad norm ${result.gradNorm}`);
      else {
        this.state.badInARow = 0;
        await this.checkWeights(`SFT step ${step + 1}`, 'sft.lr', lr);
      }
      this.store.progress?.('sft', step + 1, sft.steps, `loss ${result.loss.toFixed(3)}`);
    }
    // The RL prompt stream starts after the problems SFT has seen.
    this.state.nextPromptIndex = sft.steps * sft.batchSize;
  }

  /** One RL step: collect groups → sequences → policy update → metrics. */
  private async rlStep(): Promise<void> {
    const rl = this.config.rl;
    const stepStart = performance.now();
    const step = this.state.rlStep + 1;
    this.stepRollouts = { groups: [], seconds: 0, tokens: 0 };

    const collected = await this.collectGroups(step);
    const sequences = buildSequences(collected.groups, rl.overlongFilter);
    const lr = learningRate(step - 1, { lr: rl.lr, warmupSteps: rl.warmupSteps, totalSteps: rl.steps, schedule: rl.schedule, minLrRatio: rl.minLrRatio });
    const trainStart = performance.now();
    const update = await this.update(step, sequences, lr);
    const trainSeconds = (performance.now() - trainStart) / 1000;

    const metrics = stepMetrics({
      step, generated: this.stepRollouts.groups, trainedGroups: collected.groups.length, fillReport: collected.fillReport,
      resampleRate: collected.resampleRate, update, lr, klPenalty: rl.klBeta > 0, carriedGroups: this.state.carried.length,
      samplesBefore: this.state.samples, generationSeconds: this.stepRollouts.seconds, generationTokens: this.stepRollouts.tokens,
      trainSeconds, stepSeconds: (performance.now() - stepStart) / 1000, memory: T.getBackend().memory(), elapsedSeconds: this.elapsedSeconds(),
    });
    this.state.samples = metrics.samples_total;
    this.state.rlStep = step;
    await this.store.appendMetrics(metrics);
    if (update && update.optimizerSteps > 0) await this.checkWeights(`RL step ${step}`, 'rl.lr', lr);
    this.store.progress?.('rl', step, rl.steps,
      `reward ${metrics.reward_mean.toFixed(2)} acc ${metrics.accuracy.toFixed(2)} len ${metrics.response_length_mean.toFixed(1)}`);
  }

  /** The step's training groups; the groups dynamic sampling carries to the next step go into the state. */
  private async collectGroups(step: number): Promise<CollectedGroups> {
    const collected = this.config.rl.dynamicSampling === 'resample' ? await this.resampleFlat() : await this.fillBatch(step);
    this.state.carried = this.groupFilter.carried();
    return collected;
  }

  /** 'resample': one generation batch, then fresh groups for the prompts whose group came out flat. */
  private async resampleFlat(): Promise<CollectedGroups> {
    const rl = this.config.rl;
    const first = await this.generateBatch(rl.promptsPerStep);
    const resampled = await resampleFlatGroups(first, flatnessRewards,
      (indices) => this.sample(indices.map((i) => ({ index: first[i].promptIndex, problem: first[i].problem }))), rl.maxResampleRounds);
    return { groups: resampled.groups, fillReport: null, resampleRate: resampled.resampleRate };
  }

  /** 'filter': generation batches until the batch holds promptsPerStep mixed groups (or the cap); 'off': one batch. */
  private async fillBatch(step: number): Promise<CollectedGroups> {
    const rl = this.config.rl;
    const { groups, report } = await this.groupFilter.fill(() => this.generateBatch(rl.generationBatchPrompts), groupKindOf);
    const generatedGroups = report.generationBatches * rl.generationBatchPrompts;
    const resampleRate = rl.dynamicSampling === 'filter' && generatedGroups > 0 ? (report.droppedAllCorrect + report.droppedAllWrong) / generatedGroups : 0;
    if (report.capReached) {
      const message = `step ${step}: dynamic sampling cap reached (${report.generationBatches} generation batches, ${report.keptGroups} of ${rl.promptsPerStep} groups kept)`;
      if (rl.onSamplingCap === 'stop') throw new TrainingStopped(`${message}; rl.onSamplingCap is 'stop'`);
      this.store.log(`${message}; training on what was kept`);
    }
    return { groups, fillReport: report, resampleRate };
  }

  /** Groups for the next `prompts` problems of the training stream. */
  private async generateBatch(prompts: number): Promise<RolloutGroup[]> {
    const items = Array.from({ length: prompts }, (_, i) => {
      const index = this.state.nextPromptIndex + i;
      return { index, problem: this.task.problem('train', index) };
    });
    this.state.nextPromptIndex += prompts;
    return this.sample(items);
  }

  /** One generation call (its own seed), scored; every group it makes counts in the step's metrics. */
  private async sample(items: { index: number; problem: RolloutGroup['problem'] }[]): Promise<RolloutGroup[]> {
    const rl = this.config.rl;
    await this.stopIfAborted();
    this.phase = 'generation';
    const seed = callSeed(this.config.seed, SEED_STREAM.rollout, this.state.rolloutCalls++);
    const { groups, stats } = await rollout(this.model, this.task, items, {
      groupSize: rl.groupSize, maxNewTokens: rl.maxNewTokens, temperature: rl.temperature, topP: rl.topP, topK: rl.topK, seed,
      overlong: rl.overlongPenalty ? { maxLen: rl.maxNewTokens, cacheLen: rl.overlongCache } : null,
      ...(rl.generationChunk > 0 ? { chunk: rl.generationChunk } : {}),
    });
    this.stepRollouts.seconds += stats.seconds;
    this.stepRollouts.tokens += stats.generatedTokens;
    this.stepRollouts.groups.push(...groups);
    return groups;
  }

  /** Old (and reference) log-probs of the sequences, then the policy update; null when there is nothing to train on. */
  private async update(step: number, sequences: TrainSequence[], lr: number): Promise<UpdateStats | null> {
    const rl = this.config.rl;
    if (sequences.length === 0) {
      this.emptyInARow++;
      this.store.log(`step ${step}: no groups to train on; the update is skipped` +
        (this.emptyInARow > 1 ? ` (${this.emptyInARow} steps in a row: every group came out all right or all wrong)` : ''));
      return null;
    }
    this.phase = 'update';
    this.emptyInARow = 0;
    const padId = this.task.tokenizer.padId;
    const options: UpdateOptions = {
      epochs: rl.ppoEpochs, miniBatches: rl.miniBatches, microBatchSize: rl.microBatchSize, lossAggregation: rl.lossAggregation,
      maxLen: rl.maxNewTokens, epsLow: rl.epsLow, epsHigh: rl.epsHigh, dualClip: rl.dualClip, klBeta: rl.klBeta, padId,
      seed: callSeed(this.config.seed, SEED_STREAM.shuffle, step), lr,
    };
    // Old log-probs only where the policy will have stepped before the sequence trains (the rest use their own).
    await recordOldLogprobs(this.model, sequences, options);
    if (rl.klBeta > 0) {
      const referenceLogprobs = await responseLogprobs(this.parts.reference!, sequences, padId, rl.microBatchSize);
      sequences.forEach((sequence, i) => { sequence.refLogp = referenceLogprobs[i]; });
    }
    return updatePolicy(this.model, this.parts.optimizer, sequences, options, {
      onSkip: (what) => this.noteBadStep(`RL step ${step}: ${what}`),
      onApplied: () => { this.state.badInARow = 0; },
    });
  }

  /** Counts a skipped non-finite step; too many in a row stop the run. */
  private noteBadStep(what: string): void {
    this.state.badInARow++;
    this.store.log(`skipped a non-finite step (${what}); ${this.state.badInARow} in a row`);
    if (this.state.badInARow >= this.config.rl.maxBadSteps) {
      throw new TrainingStopped(`stopping: ${this.state.badInARow} non-finite steps in a row (last: ${what}); lower the learning rate or raise rl.maxBadSteps`);
    }
  }

  /**
   * The divergence guard, after every applied optimizer step: one sum of squares of the trainable weights on the
   * device and one scalar read back. Non-finite weights (NaN/Inf, or so large their squares overflow float32) stop
   * the run at once, before anything saves them: replaying from the last good state with the same seeds and rate
   * would diverge the same way, so the run stops and its last checkpoint stays the newest. A norm that grows more
   * than tenfold in one step is warned about, more than thousandfold stops the run the same way: a learning rate far
   * too high wrecks a model while it stays finite (a healthy step moves the whole model's norm by a few percent).
   */
  private async checkWeights(what: string, rateKey: string, lr: number): Promise<void> {
    const norm = await this.trainableWeightNorm();
    if (!Number.isFinite(norm)) {
      this.state.badInARow++;
      throw new TrainingStopped(`stopping: ${what} made the weights non-finite (NaN/Inf) at ${rateKey} ${lr}; they were not saved. ` +
        `Lower ${rateKey} (in the run's config.json to continue it with --resume)`);
    }
    const growth = this.weightNorm !== null && this.weightNorm > 0 ? norm / this.weightNorm : 1;
    const grew = `${what} grew the weights' norm ${growth.toPrecision(3)}-fold (${this.weightNorm?.toPrecision(3)} → ${norm.toPrecision(3)}) at ${rateKey} ${lr}`;
    if (growth > EXPLODED_GROWTH) {
      this.state.badInARow++;
      throw new TrainingStopped(`stopping: ${grew}: the weights exploded and were not saved. Lower ${rateKey} (in the run's config.json to continue it with --resume)`);
    }
    if (growth > SUSPICIOUS_GROWTH && !this.warnedExplosion.has(rateKey)) {
      this.warnedExplosion.add(rateKey);
      this.store.log(`warning: ${grew}; a learning rate this high wrecks the model — lower ${rateKey} (said once)`);
    }
    this.weightNorm = norm;
  }

  /** L2 norm of the weights the optimizer updates (the adapters in a LoRA run). */
  private async trainableWeightNorm(): Promise<number> {
    const params = hasLora(this.model) ? trainableParameters(this.model) : this.model.params;
    const sumSquares = T.zeros([1]);
    const backend = T.getBackend();
    for (const param of params.values()) backend.kernels.sumSquares(param.storage, sumSquares.storage, param.size, true);
    const [value] = await sumSquares.read();
    sumSquares.dispose();
    return Math.sqrt(value);
  }

  /** A frozen copy of the policy after the warm-up: the KL penalty's reference (LoRA adapters merged in). */
  private async freezeReference(): Promise<void> {
    const reference = new TransformerLM(this.model.config, 0);
    for (const [name, param] of this.model.params) {
      // 16-bit frozen weights (lora.frozenDtype) are copied through the host: their values are exact in float32
      const copy = param.dtype === 'float32'
        ? T.keep(T.noGrad(() => T.mulScalar(param, 1)))
        : T.keep(T.tensor(await param.read(), param.shape, param.dtype));
      reference.params.get(name)!.dispose();
      reference.params.set(name, copy);
    }
    for (const adapter of loraAdapters(this.model)) {
      const name = `${adapter.path}.weight`;
      reference.params.get(name)!.dispose();
      reference.params.set(name, T.keep(adapter.mergedWeight()));
    }
    this.parts.reference = reference;
    await this.store.saveReference?.(reference);
  }

  private async evaluate(step: number, phase: 'sft' | 'rl' | 'final'): Promise<EvalResult> {
    await this.stopIfAborted();
    this.phase = 'eval';
    const evalConfig = this.config.eval;
    const problems = Math.min(evalConfig.problems, this.task.testSize);
    this.store.progress?.('eval', 0, 1, `${phase} evaluation on ${problems} held-out problems`);
    const result = await evaluate(this.model, this.task, {
      problems: evalConfig.problems, passK: evalConfig.passK, samplesPerProblem: evalConfig.samplesPerProblem, temperature: evalConfig.temperature,
      maxNewTokens: this.config.rl.maxNewTokens, seed: callSeed(this.config.seed, SEED_STREAM.eval, step),
    });
    await this.store.appendEval({ step, phase, ...result, time_s: this.elapsedSeconds() });
    if (result.n === 0) {
      this.store.log(`eval (${phase}, step ${step}): the task has no held-out problems, so there is nothing to measure ` +
        '(a dataset task: set task.testPath, or a task.testFraction that holds out at least one record)');
    } else {
      this.store.log(`eval (${phase}, step ${step}): greedy accuracy ${(100 * result.accuracy).toFixed(1)}%` +
        (result.pass_at_k !== null ? `, pass@${result.k} ${(100 * result.pass_at_k).toFixed(1)}%` : '') + ` on ${result.n} held-out problems`);
    }
    return result;
  }

  private async checkpoint(): Promise<void> {
    this.phase = 'checkpoint';
    // Non-finite weights are never saved (the per-step guard stops first; this also covers weights given to the trainer).
    if (!Number.isFinite(await this.trainableWeightNorm())) {
      throw new TrainingStopped('stopping: the weights are non-finite (NaN/Inf); the checkpoint was not saved');
    }
    this.state.carried = this.groupFilter.carried();
    const state = { ...this.state, elapsed: this.elapsedSeconds() };
    await this.store.saveCheckpoint({ state, model: this.model, optimizer: this.parts.optimizer });
  }

  /** Throws the abort reason once the signal is aborted. It first yields to the event loop: with a synchronous
   *  backend (WASM) every await resolves at once, so a signal handler would otherwise never run before the end. */
  private async stopIfAborted(): Promise<void> {
    if (!this.signal) return;
    await new Promise((resolve) => setTimeout(resolve, 0));
    this.signal.throwIfAborted();
  }

  /** Wall time of the run, earlier processes included (seconds). */
  private elapsedSeconds(): number {
    return this.parts.state.elapsed + (performance.now() - this.startedAt) / 1000;
  }

  dispose(): void {
    this.parts.optimizer.dispose();
    this.parts.reference?.dispose();
    this.parts.model.dispose();
  }
}
