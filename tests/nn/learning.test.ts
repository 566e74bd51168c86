// The learning check: supervised training of a small Llama-style model on a synthetic sequence task
// (reverse six digits) drives the loss down on every product backend; the same seed gives the same
// losses on a backend; backends agree with each other and with the float64 reference on the first steps.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/backend/backend.js';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import * as T from '../../src/tensor/index.js';
import { TransformerLM } from '../../src/nn/transformer.js';
import { AdamW } from '../../src/optim/adamw.js';
import { type NamedBackend, productBackends } from '../support/backends.js';
import { assertClose } from '../support/close.js';
import { SeededRandom } from '../support/random.js';

const SEP = 10;
const DIGITS = 6;
const SEQ = 2 * DIGITS + 1; // d1..d6 SEP r6..r1
const BATCH = 16;
const config = { vocabSize: 11, dModel: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 172, maxSeqLen: 16 };

/** Batch `step` of the task: inputs [B, SEQ−1] and next-token targets, scored only after the separator. */
function batchAt(step: number): { inputs: number[]; targets: number[] } {
  const random = new SeededRandom(step * 7919 + 17);
  const inputs: number[] = [];
  const targets: number[] = [];
  for (let b = 0; b < BATCH; b++) {
    const digits = random.ints(DIGITS, 0, 10);
    const seq = [...digits, SEP, ...[...digits].reverse()];
    inputs.push(...seq.slice(0, -1));
    targets.push(...seq.slice(1).map((t, i) => (i >= DIGITS ? t : -1)));
  }
  return { inputs, targets };
}

/** Trains `steps` steps from seed 7 on the active backend; returns the loss of every step. */
async function train(steps: number): Promise<number[]> {
  const model = new TransformerLM(config, 7);
  const opt = new AdamW(model.params, { lr: 1e-2, weightDecay: 0, maxGradNorm: 1 });
  const losses: number[] = [];
  try {
    for (let s = 0; s < steps; s++) {
      const { inputs, targets } = batchAt(s);
      const ids = T.tensor(inputs, [BATCH, SEQ - 1], 'int32');
      const tg = T.tensor(targets, [BATCH * (SEQ - 1)], 'int32');
      const loss = T.tidy(() => T.crossEntropy(T.reshape(model.forward(ids), [BATCH * (SEQ - 1), config.vocabSize]), tg));
      T.backward(loss);
      opt.step().gradNorm.dispose();
      losses.push(await loss.item());
      for (const t of [ids, tg, loss]) t.dispose();
    }
  } finally {
    opt.dispose();
    model.dispose();
  }
  return losses;
}

async function on<R>(backend: Backend, fn: () => Promise<R>): Promise<R> {
  T.setBackend(backend);
  return fn();
}

describe('learning check (supervised, synthetic reversal task)', () => {
  let backends: NamedBackend[] = [];
  const firstSteps = new Map<string, number[]>();
  beforeAll(async () => { backends = (await productBackends()).available; });
  afterAll(() => backends.forEach((b) => b.backend.destroy()));

  it('the float64 reference gives the baseline of the first steps', async () => {
    firstSteps.set('reference', await on(new ReferenceBackend(), () => train(3)));
  });

  it('on every product backend: the loss falls, and the same seed gives the same losses', async () => {
    for (const { name, backend } of backends) {
      const losses = await on(backend, () => train(60));
      const again = await on(backend, () => train(3));
      expect(again, `${name}: rerun with the same seed`).toEqual(losses.slice(0, 3));
      firstSteps.set(name, losses.slice(0, 3));
      const tail = losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
      console.log(`[learning] ${name}: loss ${losses[0].toFixed(3)} → ${tail.toFixed(3)} (mean of the last 5 of 60 steps)`);
      expect(tail, `${name}: ${losses.map((l) => l.toFixed(3)).join(' ')}`).toBeLessThan(0.75 * losses[0]);
      expect(backend.memory().liveBuffers, `${name}: buffers left after training`).toBe(0);
    }
  });

  it('backends agree with the reference on the first steps', () => {
    const ref = firstSteps.get('reference')!;
    for (const [name, losses] of firstSteps) {
      assertClose(losses, ref, `${name}: losses of the first steps`, 0, 2e-3);
    }
  });
});
