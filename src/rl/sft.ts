// Supervised warm-up: next-token cross-entropy on worked solutions (prompt → solution + EOS), loss on the
// response tokens only, so RL starts from a policy that is sometimes right.
import * as T from '../tensor/index.js';
import type { Task } from '../data/tasks.js';
import type { TransformerLM } from '../nn/transformer.js';
import type { AdamW } from '../optim/adamw.js';
import { pack } from './sequences.js';

/** The problems of SFT step `step`: a deterministic window of the training stream. */
export function sftBatch(task: Task, step: number, batchSize: number): { promptIds: number[]; responseIds: number[] }[] {
  const tok = task.tokenizer;
  return Array.from({ length: batchSize }, (_, i) => {
    const p = task.problem('train', step * batchSize + i);
    return { promptIds: tok.encode(p.prompt), responseIds: [...tok.encode(p.solution), tok.eosId] };
  });
}

/** One SFT optimizer step; returns the mean token loss and the gradient norm (NaN-safe: skipped when not finite). */
export async function sftStep(model: TransformerLM, opt: AdamW, task: Task, step: number, batchSize: number, lr: number): Promise<{ loss: number; gradNorm: number; skipped: boolean }> {
  const p = pack(sftBatch(task, step, batchSize), task.tokenizer.padId);
  const ids = T.tensor(p.ids, [p.batch, p.length], 'int32');
  const targets = T.tensor(p.targets, [p.batch * p.length], 'int32');
  const loss = T.tidy(() => T.crossEntropy(T.reshape(model.forward(ids), [p.batch * p.length, model.config.vocabSize]), targets));
  ids.dispose();
  targets.dispose();
  T.backward(loss);
  const norm = T.noGrad(() => opt.gradNorm());
  const both = T.noGrad(() => T.tidy(() => T.concat([T.reshape(loss, [1]), norm])));
  const [l, g] = await both.read();
  for (const t of [loss, both]) t.dispose();
  if (!Number.isFinite(l) || !Number.isFinite(g)) {
    norm.dispose();
    opt.zeroGrad();
    return { loss: l, gradNorm: g, skipped: true };
  }
  opt.step(lr, norm).gradNorm.dispose();
  return { loss: l, gradNorm: g, skipped: false };
}
