// The training pipeline: supervised warm-up → DAPO (or GRPO) steps → evaluation, persisted through a RunStore
// (files in Node, anything in a browser). Every random choice derives from the run seed and a counter kept in
// the checkpoint, so a resumed run continues exactly where the checkpoint left it.
import * as T from '../tensor/index.js';
import type { Task } from '../data/tasks.js';
import { makeTask } from '../data/tasks.js';
import { TransformerLM } from '../nn/transformer.js';
import { AdamW } from '../optim/adamw.js';
import { groupAdvantages, groupKind } from './advantages.js';
import type { TrainConfig } from './config.js';
import { GroupFilter, type FillReport, resampleFlatGroups } from './dynamic_sampling.js';
import { type EvalResult, evaluate } from './evaluate.js';
import { updatePolicy } from './policy_update.js';
import { type RolloutGroup, callSeed, rollout } from './rollout.js';
import { learningRate } from './schedule.js';
import { type TrainSequence, responseLogprobs } from './sequences.js';
import { sftStep } from './sft.js';

/** Seed streams (the `kind` of callSeed). */
const SEED = { rollout: 1, shuffle: 2, eval: 3 } as const;

/** Where the run goes: metrics lines, evaluations, checkpoints, log lines, progress. */
export interface RunStore {
  appendMetrics(record: Record<string, unknown>): void | Promise<void>;
  appendEval(record: Record<string, unknown>): void | Promise<void>;
  appendSft(record: Record<string, unknown>): void | Promise<void>;
  saveCheckpoint(checkpoint: TrainerCheckpoint): Promise<void>;
  /** The frozen reference policy's weights are kept once per run (KL penalty). */
  saveReference?(model: TransformerLM): Promise<void>;
  log(line: string): void;
  progress?(phase: string, done: number, total: number, detail: string): void;
}

/** Everything besides the weights and the optimizer moments that a resumed run needs. */
export interface TrainerState {
  sftDone: boolean;
  /** RL steps completed. */
  rlStep: number;
  /** Next unused index of the training prompt stream. */
  nextPromptIndex: number;
  /** Generation calls made so far (seeds of the next calls). */
  rolloutCalls: number;
  /** Groups kept by dynamic sampling beyond a step's batch, for the next step. */
  carried: RolloutGroup[];
  /** Non-finite steps in a row. */
  badInARow: number;
  /** Wall time of the run before this process (seconds), so time_s continues across resumes. */
  elapsed: number;
  finished: boolean;
}

export interface TrainerCheckpoint {
  state: TrainerState;
  model: TransformerLM;
  optimizer: AdamW;
}

export class TrainingStopped extends Error {}

export function initialState(): TrainerState {
  return { sftDone: false, rlStep: 0, nextPromptIndex: 0, rolloutCalls: 0, carried: [], badInARow: 0, elapsed: 0, finished: false };
}

export interface TrainerParts {
  model: TransformerLM;
  optimizer: AdamW;
  state: TrainerState;
  /** Frozen reference policy (KL penalty on), restored on resume. */
  reference?: TransformerLM | null;
}

function adamwFor(model: TransformerLM, c: TrainConfig, phase: 'sft' | 'rl'): AdamW {
  const o = phase === 'sft' ? c.sft : c.rl;
  return new AdamW(model.params, {
    lr: o.lr, weightDecay: o.weightDecay, maxGradNorm: o.maxGradNorm,
    ...(phase === 'rl' ? { beta1: c.rl.beta1, beta2: c.rl.beta2 } : {}),
  });
}

/** Checks that the task fits the model (vocabulary, context) and returns both. */
export function buildTaskAndModel(c: TrainConfig): { task: Task; model: TransformerLM } {
  const task = makeTask(c.task);
  const model = new TransformerLM(c.model, c.seed);
  const problems: string[] = [];
  if (model.config.vocabSize < task.tokenizer.vocabSize) {
    problems.push(`model.vocabSize ${model.config.vocabSize} is smaller than the task tokenizer's ${task.tokenizer.vocabSize}`);
  }
  if (task.maxPromptLength + c.rl.maxNewTokens > model.config.maxSeqLen) {
    problems.push(`task prompts (≤ ${task.maxPromptLength} tokens) + rl.maxNewTokens ${c.rl.maxNewTokens} exceed model.maxSeqLen ${model.config.maxSeqLen}`);
  }
  if (problems.length) {
    model.dispose();
    throw new RangeError(`config: ${problems.join('; ')}`);
  }
  return { task, model };
}

/** A fresh run's parts (seeded model, optimizer for the first phase). */
export function freshParts(c: TrainConfig, model: TransformerLM): TrainerParts {
  return { model, optimizer: adamwFor(model, c, 'sft'), state: initialState(), reference: null };
}

export class Trainer {
  private readonly t0 = performance.now();
  private filter: GroupFilter<RolloutGroup>;

  constructor(readonly config: TrainConfig, readonly task: Task, private parts: TrainerParts, private readonly store: RunStore) {
    const rl = config.rl;
    this.filter = new GroupFilter<RolloutGroup>({
      trainGroups: rl.promptsPerStep, maxGenerationBatches: rl.maxGenerationBatches, mode: rl.dynamicSampling === 'filter' ? 'filter' : 'off',
    });
    this.filter.setCarried(parts.state.carried);
  }

  get model(): TransformerLM { return this.parts.model; }
  get state(): TrainerState { return this.parts.state; }

  private elapsed(): number {
    return this.parts.state.elapsed + (performance.now() - this.t0) / 1000;
  }

  /** Runs (or continues) the whole pipeline. */
  async run(): Promise<{ sft: EvalResult | null; final: EvalResult | null }> {
    const c = this.config;
    let sftEval: EvalResult | null = null;
    if (!this.state.sftDone) {
      await this.runSft();
      sftEval = await this.evaluate(0, 'sft');
      this.state.sftDone = true;
      this.parts.optimizer.dispose();
      this.parts.optimizer = adamwFor(this.model, c, 'rl');
      if (c.rl.klBeta > 0) await this.freezeReference();
      await this.checkpoint();
    } else if (c.rl.klBeta > 0 && !this.parts.reference) {
      throw new Error('resume: the KL penalty is on but the run has no reference policy (reference.safetensors)');
    }
    while (this.state.rlStep < c.rl.steps) {
      await this.rlStep();
      const step = this.state.rlStep;
      if (c.eval.every > 0 && step % c.eval.every === 0 && step < c.rl.steps) await this.evaluate(step, 'rl');
      if ((c.checkpoint.every > 0 && step % c.checkpoint.every === 0) || step === c.rl.steps) await this.checkpoint();
    }
    let final: EvalResult | null = null;
    if (!this.state.finished) {
      final = await this.evaluate(this.state.rlStep, 'final');
      this.state.finished = true;
      await this.checkpoint();
    }
    return { sft: sftEval, final };
  }

  private async runSft(): Promise<void> {
    const s = this.config.sft;
    for (let step = 0; step < s.steps; step++) {
      const lr = learningRate(step, { lr: s.lr, warmupSteps: s.warmupSteps, totalSteps: s.steps, schedule: 'constant', minLrRatio: 1 });
      const r = await sftStep(this.model, this.parts.optimizer, this.task, step, s.batchSize, lr);
      if (r.skipped) this.noteBad(`SFT step ${step + 1}: loss ${r.loss}, grad norm ${r.gradNorm}`);
      else this.state.badInARow = 0;
      await this.store.appendSft({ step: step + 1, loss: r.loss, grad_norm: r.gradNorm, lr, skipped: r.skipped, time_s: this.elapsed() });
      this.store.progress?.('sft', step + 1, s.steps, `loss ${r.loss.toFixed(3)}`);
    }
    // The RL prompt stream starts after the problems SFT has seen.
    this.state.nextPromptIndex = s.steps * s.batchSize;
  }

  private noteBad(what: string): void {
    this.state.badInARow++;
    this.store.log(`skipped a non-finite step (${what}); ${this.state.badInARow} in a row`);
    if (this.state.badInARow >= this.config.rl.maxBadSteps) {
      throw new TrainingStopped(`stopping: ${this.state.badInARow} non-finite steps in a row (last: ${what}); lower the learning rate or raise rl.maxBadSteps`);
    }
  }

  private async freezeReference(): Promise<void> {
    const ref = new TransformerLM(this.model.config, 0);
    for (const [name, p] of this.model.params) {
      const copy = T.keep(T.noGrad(() => T.mulScalar(p, 1)));
      ref.params.get(name)!.dispose();
      ref.params.set(name, copy);
    }
    this.parts.reference = ref;
    await this.store.saveReference?.(ref);
  }

  private async generateBatch(prompts: number): Promise<RolloutGroup[]> {
    const rl = this.config.rl;
    const items = Array.from({ length: prompts }, (_, i) => {
      const index = this.state.nextPromptIndex + i;
      return { index, problem: this.task.problem('train', index) };
    });
    this.state.nextPromptIndex += prompts;
    return this.sample(items);
  }

  private genSeconds = 0;
  private genTokens = 0;

  private async sample(items: { index: number; problem: RolloutGroup['problem'] }[]): Promise<RolloutGroup[]> {
    const rl = this.config.rl;
    const seed = callSeed(this.config.seed, SEED.rollout, this.state.rolloutCalls++);
    const { groups, stats } = await rollout(this.model, this.task, items, {
      groupSize: rl.groupSize, maxNewTokens: rl.maxNewTokens, temperature: rl.temperature, topP: rl.topP, topK: rl.topK, seed,
      overlong: rl.overlongPenalty ? { maxLen: rl.maxNewTokens, cacheLen: rl.overlongCache } : null,
    });
    this.genSeconds += stats.seconds;
    this.genTokens += stats.generatedTokens;
    this.generated.push(...groups);
    return groups;
  }

  /** Every group generated in the current step (kept or dropped), for the step's metrics. */
  private generated: RolloutGroup[] = [];

  private async rlStep(): Promise<void> {
    const c = this.config;
    const rl = c.rl;
    const stepStart = performance.now();
    const step = this.state.rlStep + 1;
    this.generated = [];
    this.genSeconds = 0;
    this.genTokens = 0;
    const correctness = (g: RolloutGroup) => g.responses.map((r) => r.correct);

    let groups: RolloutGroup[];
    let report: FillReport | null = null;
    let resampleRate = 0;
    if (rl.dynamicSampling === 'resample') {
      const first = await this.generateBatch(rl.promptsPerStep);
      const r = await resampleFlatGroups(first, (g) => g.responses.map((x) => (x.correct ? 1 : -1)),
        (indices) => this.sample(indices.map((i) => ({ index: first[i].promptIndex, problem: first[i].problem }))), rl.maxResampleRounds);
      groups = r.groups;
      resampleRate = r.resampleRate;
    } else {
      const filled = await this.filter.fill(() => this.generateBatch(rl.generationBatchPrompts), correctness);
      groups = filled.groups;
      report = filled.report;
      const generatedGroups = report.generationBatches * rl.generationBatchPrompts;
      resampleRate = rl.dynamicSampling === 'filter' && generatedGroups > 0 ? (report.droppedAllCorrect + report.droppedAllWrong) / generatedGroups : 0;
      if (report.capReached) {
        const msg = `step ${step}: dynamic sampling cap reached (${report.generationBatches} generation batches, ${report.keptGroups} of ${rl.promptsPerStep} groups kept)`;
        if (rl.onSamplingCap === 'stop') throw new TrainingStopped(`${msg}; rl.onSamplingCap is 'stop'`);
        this.store.log(`${msg}; training on what was kept`);
      }
    }
    this.state.carried = this.filter.carried();

    // Sequences with advantages and masks.
    const seqs: TrainSequence[] = [];
    for (const g of groups) {
      const adv = groupAdvantages(g.responses.map((r) => r.reward));
      g.responses.forEach((r, i) => {
        const masked = rl.overlongFilter && r.truncated;
        seqs.push({
          promptIds: g.promptIds, responseIds: r.ids, advantage: adv[i],
          mask: r.ids.map(() => (masked ? 0 : 1)), weights: [], oldLogp: [], refLogp: null,
        });
      });
    }
    const pad = this.task.tokenizer.padId;
    const trainStart = performance.now();
    let update = null;
    if (seqs.length > 0) {
      const old = await responseLogprobs(this.model, seqs, pad, rl.microBatchSize);
      seqs.forEach((s, i) => { s.oldLogp = old[i]; });
      if (rl.klBeta > 0) {
        const ref = await responseLogprobs(this.parts.reference!, seqs, pad, rl.microBatchSize);
        seqs.forEach((s, i) => { s.refLogp = ref[i]; });
      }
      const lr = learningRate(step - 1, { lr: rl.lr, warmupSteps: rl.warmupSteps, totalSteps: rl.steps, schedule: rl.schedule, minLrRatio: rl.minLrRatio });
      update = await updatePolicy(this.model, this.parts.optimizer, seqs, {
        epochs: rl.ppoEpochs, miniBatches: rl.miniBatches, microBatchSize: rl.microBatchSize, lossAggregation: rl.lossAggregation,
        maxLen: rl.maxNewTokens, epsLow: rl.epsLow, epsHigh: rl.epsHigh, dualClip: rl.dualClip, klBeta: rl.klBeta, padId: pad,
        seed: callSeed(c.seed, SEED.shuffle, step), lr,
      }, {
        onSkip: (what) => this.noteBad(`RL step ${step}: ${what}`),
        onApplied: () => { this.state.badInARow = 0; },
      });
    } else {
      this.store.log(`step ${step}: no groups to train on; the update is skipped`);
    }
    const trainSeconds = (performance.now() - trainStart) / 1000;

    // Metrics over every response generated this step.
    const all = this.generated.flatMap((g) => g.responses);
    const rewards = all.map((r) => r.reward);
    const mean = rewards.reduce((a, b) => a + b, 0) / Math.max(rewards.length, 1);
    const std = Math.sqrt(rewards.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(rewards.length, 1));
    const kinds = this.generated.map((g) => groupKind(correctness(g)));
    const count = (k: string) => kinds.filter((x) => x === k).length;
    const lengths = all.map((r) => r.ids.length);
    const perOpt = (v: number) => (update && update.optimizerSteps ? v / update.optimizerSteps : null);
    const perTok = (v: number) => (update && update.tokens ? v / update.tokens : null);
    const mem = T.getBackend().memory();
    this.state.rlStep = step;
    await this.store.appendMetrics({
      step,
      policy_loss: perOpt(update?.loss ?? 0),
      entropy_loss: perOpt(update?.entropyLoss ?? 0),
      entropy: perTok(update?.entropy ?? 0),
      reward_mean: mean,
      reward_std: std,
      accuracy: all.filter((r) => r.correct).length / Math.max(all.length, 1),
      response_length_mean: lengths.reduce((a, b) => a + b, 0) / Math.max(lengths.length, 1),
      response_length_max: Math.max(0, ...lengths),
      truncation_rate: all.filter((r) => r.truncated).length / Math.max(all.length, 1),
      clip_frac_low: perTok(update?.clipLow ?? 0),
      clip_frac_high: perTok(update?.clipHigh ?? 0),
      approx_kl: perTok(update?.approxKl ?? 0),
      ref_kl: rl.klBeta > 0 ? perTok(update?.refKl ?? 0) : null,
      grad_norm: perOpt(update?.gradNorm ?? 0),
      lr: learningRate(step - 1, { lr: rl.lr, warmupSteps: rl.warmupSteps, totalSteps: rl.steps, schedule: rl.schedule, minLrRatio: rl.minLrRatio }),
      groups_all_correct: count('all-correct'),
      groups_all_wrong: count('all-wrong'),
      groups_mixed: count('mixed'),
      groups_trained: groups.length,
      gen_batches: report?.generationBatches ?? 1,
      carried_groups: this.state.carried.length,
      sampling_cap_reached: report?.capReached ?? false,
      resample_rate: resampleRate,
      samples: all.length,
      gen_tokens_per_s: this.genSeconds > 0 ? this.genTokens / this.genSeconds : null,
      train_tokens_per_s: update && trainSeconds > 0 ? update.trainedTokens / trainSeconds : null,
      step_time_s: (performance.now() - stepStart) / 1000,
      peak_bytes: mem.peakBytes,
      live_bytes: mem.liveBytes,
      skipped: !update || update.optimizerSteps === 0,
      skipped_optimizer_steps: update?.skippedSteps ?? 0,
      time_s: this.elapsed(),
    });
    const acc = all.filter((r) => r.correct).length / Math.max(all.length, 1);
    this.store.progress?.('rl', step, rl.steps, `reward ${mean.toFixed(2)} acc ${acc.toFixed(2)} len ${(lengths.reduce((a, b) => a + b, 0) / Math.max(1, lengths.length)).toFixed(1)}`);
  }

  private async evaluate(step: number, phase: 'sft' | 'rl' | 'final'): Promise<EvalResult> {
    const e = this.config.eval;
    this.store.progress?.('eval', 0, 1, `${phase} evaluation on ${e.problems} held-out problems`);
    const r = await evaluate(this.model, this.task, {
      problems: e.problems, passK: e.passK, samplesPerProblem: e.samplesPerProblem, temperature: e.temperature,
      maxNewTokens: this.config.rl.maxNewTokens, seed: callSeed(this.config.seed, SEED.eval, step),
    });
    await this.store.appendEval({ step, phase, ...r, time_s: this.elapsed() });
    this.store.log(`eval (${phase}, step ${step}): greedy accuracy ${(100 * r.accuracy).toFixed(1)}%` +
      (r.pass_at_k !== null ? `, pass@${r.k} ${(100 * r.pass_at_k).toFixed(1)}%` : '') + ` on ${r.n} held-out problems`);
    return r;
  }

  private async checkpoint(): Promise<void> {
    this.state.carried = this.filter.carried();
    const state = { ...this.state, elapsed: this.elapsed() };
    await this.store.saveCheckpoint({ state, model: this.model, optimizer: this.parts.optimizer });
  }

  dispose(): void {
    this.parts.optimizer.dispose();
    this.parts.reference?.dispose();
    this.parts.model.dispose();
  }
}

/** The optimizer a resumed run needs for its phase. */
export function optimizerForResume(c: TrainConfig, model: TransformerLM, state: TrainerState): AdamW {
  return adamwFor(model, c, state.sftDone ? 'rl' : 'sft');
}
