// Supervised warm-up: next-token cross-entropy on worked solutions (prompt → solution + EOS), loss on the
// response tokens only, so RL starts from a policy that is sometimes right.
import * as T from '../tensor/index.js';
import type { Task } from '../data/tasks.js';
import type { TransformerLM } from '../nn/transformer.js';
import type { AdamW } from '../optim/adamw.js';
import { pack } from './sequences.js';

/** The problems of SFT step `step`: a deterministic window of the training stream. */
export function sftBatch(task: Task, step: number, batchSize: number): { promptIds: number[]; responseIds: number[] }[] {
  const tokenizer = task.tokenizer;
  return Array.from({ length: batchSize }, (_, i) => {
    const problem = task.problem('train', step * batchSize + i);
    return { promptIds: tokenizer.encode(problem.prompt), responseIds: [...tokenizer.encode(problem.solution), tokenizer.eosId] };
  });
}

/** One SFT optimizer step; returns the mean token loss and the gradient norm (NaN-safe: skipped when not finite). */
export async function sftStep(model: TransformerLM, optimizer: AdamW, task: Task, step: number, batchSize: number, lr: number): Promise<{ loss: number; gradNorm: number; skipped: boolean }> {
  const packed = pack(sftBatch(task, step, batchSize), task.tokenizer.padId);
  const ids = T.tensor(packed.ids, [packed.batch, packed.length], 'int32');
  const targets = T.tensor(packed.targets, [packed.batch * packed.length], 'int32');
  // Cross-entropy = −logp of the fused head (no [tokens, vocabulary] logits), averaged over response tokens. Every
  // position goes through the head (ignored ones give 0), unlike RL's response rows (tokenLogprobs' rows): the same
  // loss and gradients, but the default SFT (lr 3e-3) is chaotic enough that another float summation order moves its
  // greedy accuracy by tens of points, so it keeps the order the README's default run was measured with.
  const loss = T.tidy(() => T.meanTokenNll(model.tokenLogprobs(ids, targets).logp, targets));
  ids.dispose();
  targets.dispose();
  T.backward(loss);
  const norm = T.noGrad(() => optimizer.gradNorm());
  // One readback for both scalars.
  const lossAndNorm = T.noGrad(() => T.tidy(() => T.concat([T.reshape(loss, [1]), norm])));
  const [lossValue, gradNorm] = await lossAndNorm.read();
  for (const tensor of [loss, lossAndNorm]) tensor.dispose();
  if (!Number.isFinite(lossValue) || !Number.isFinite(gradNorm)) {
    norm.dispose();
    optimizer.zeroGrad();
    return { loss: lossValue, gradNorm, skipped: true };
  }
  optimizer.step(lr, norm).gradNorm.dispose();
  return { loss: lossValue, gradNorm, skipped: false };
}
