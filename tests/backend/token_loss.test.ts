// The fused clipped token loss (DAPO / GRPO): hand-computed cases and a gradcheck on the float64 reference,
// then every product backend's kernels (forward, stats, backward) and the differentiable op against it.
import { afterAll, describe, expect, it } from 'vitest';
import type { Backend, Storage } from '../../src/backend/backend.js';
import type { TokenLossArgs } from '../../src/backend/model_kernels.js';
import { ReferenceBackend } from '../../src/backend/reference/reference_backend.js';
import * as T from '../../src/tensor/index.js';
import type { ClippedTokenLossOptions, Tensor } from '../../src/tensor/index.js';
import { productBackends } from '../support/backends.js';
import { assertClose } from '../support/close.js';
import { hostRandom } from '../support/random.js';

const reference = new ReferenceBackend();
const { available } = await productBackends();
afterAll(() => {
  for (const b of available) b.backend.destroy();
});

interface TokenResult {
  loss: number;
  clipLow: number;
  clipHigh: number;
  approxKl: number;
  /** ∂loss/∂logp per token. */
  grad: number[];
}

/** clippedTokenLoss and its gradient on `backend`, checking that nothing leaks. */
async function runOp(
  backend: Backend, logp: ArrayLike<number>, old: ArrayLike<number>, adv: ArrayLike<number>, w: ArrayLike<number>,
  opts: ClippedTokenLossOptions = {}, shape = [logp.length],
): Promise<TokenResult> {
  T.setBackend(backend);
  const before = backend.memory().liveBuffers;
  const lp = T.tensor(Array.from(logp), shape).requireGrad();
  const [o, a, wt] = [old, adv, w].map((d) => T.tensor(Array.from(d), [d.length]));
  const r = T.clippedTokenLoss(lp, o, a, wt, opts);
  T.backward(r.loss);
  const [loss, clipLow, clipHigh, approxKl] = await Promise.all([r.loss, r.clipLow, r.clipHigh, r.approxKl].map(async (t) => {
    expect(t.shape).toEqual([]);
    return (await t.toArray())[0];
  }));
  const grad = await lp.grad!.toArray();
  for (const t of [r.loss, r.clipLow, r.clipHigh, r.approxKl, lp, o, a, wt]) t.dispose();
  await backend.sync();
  expect(backend.memory().liveBuffers, 'buffers leaked').toBe(before);
  return { loss, clipLow, clipHigh, approxKl, grad };
}

/** One token with the given ratio r (logp = ln r, oldLogp = 0), advantage and weight. */
const token = (ratio: number, adv: number, weight = 1, opts: ClippedTokenLossOptions = {}) =>
  runOp(reference, [Math.log(ratio)], [0], [adv], [weight], opts);

const close = (got: number, want: number, digits = 6) => expect(got).toBeCloseTo(want, digits);

describe('clippedTokenLoss by hand (reference backend, epsLow 0.2, epsHigh 0.28)', () => {
  it('ratio 0.7 with A < 0: the low clip is active, loss −A·0.8, no gradient', async () => {
    const r = await token(0.7, -2);
    close(r.loss, 1.6);
    expect([r.clipLow, r.clipHigh]).toEqual([1, 0]);
    close(r.approxKl, (0.7 - 1) - Math.log(0.7)); // 0.0566749…
    expect(r.grad).toEqual([0]);
  });

  it('ratio 1.3 with A > 0: the high clip 1.28 is active, loss −A·1.28, no gradient', async () => {
    const r = await token(1.3, 1.5);
    close(r.loss, -1.5 * 1.28);
    expect([r.clipLow, r.clipHigh]).toEqual([0, 1]);
    expect(r.grad).toEqual([0]);
  });

  it('ratio 1.25 with A > 0: unclipped under Clip-Higher (epsHigh 0.28), clipped with the symmetric 0.2', async () => {
    const higher = await token(1.25, 1);
    close(higher.loss, -1.25);
    expect(higher.clipHigh).toBe(0);
    close(higher.grad[0], -1.25); // −w·A·r
    const symmetric = await token(1.25, 1, 1, { epsHigh: 0.2 });
    close(symmetric.loss, -1.2);
    expect(symmetric.clipHigh).toBe(1);
    expect(symmetric.grad).toEqual([0]);
  });

  it('the unclipped side of each bound keeps the gradient −w·A·r', async () => {
    const up = await token(1.3, -1, 2); // A < 0, r above 1 + epsHigh: −A·r > −A·1.28, PPO keeps it
    close(up.loss, 2 * 1.3);
    expect([up.clipLow, up.clipHigh]).toEqual([0, 0]);
    close(up.grad[0], 2 * 1 * 1.3);
    const down = await token(0.7, 0.5, 3); // A > 0, r below 1 − epsLow
    close(down.loss, 3 * -0.5 * 0.7);
    close(down.grad[0], -3 * 0.5 * 0.7);
  });

  it('dual-clip caps a negative-advantage token at −A·c, with no gradient', async () => {
    const ratio = Math.exp(5);
    const plain = await token(ratio, -1.5);
    close(plain.loss, 1.5 * ratio, 3);
    close(plain.grad[0], 1.5 * ratio, 3);
    const dual = await token(ratio, -1.5, 1, { dualClip: 3 });
    close(dual.loss, 1.5 * 3);
    expect(dual.grad).toEqual([0]);
    // below the cap (r = 2 < c) dual-clip changes nothing; positive advantages are never capped
    close((await token(2, -1.5, 1, { dualClip: 3 })).grad[0], 1.5 * 2);
    close((await token(ratio, 1, 1, { dualClip: 3 })).loss, -1.28);
  });

  it('zero-weight tokens contribute nothing: loss, clip counts, KL, gradient', async () => {
    const r = await runOp(reference, [Math.log(0.7), Math.log(1.3), Math.log(1.1)], [0, 0, 0], [-1, 1, 2], [0, 0, 1]);
    close(r.loss, -2 * 1.1);
    expect([r.clipLow, r.clipHigh]).toEqual([0, 0]);
    close(r.approxKl, 0.1 - Math.log(1.1));
    expect(r.grad[0]).toBe(0);
    expect(r.grad[1]).toBe(0);
    close(r.grad[2], -2 * 1.1);
  });

  it('the log-ratio is clamped to ±C before exp, and a clamped token has no gradient', async () => {
    const hi = await runOp(reference, [30], [0], [-1], [1]); // d = 30 → 20
    close(hi.loss / Math.exp(20), 1, 9);
    close(hi.approxKl / (Math.exp(20) - 21), 1, 9);
    expect(hi.grad).toEqual([0]);
    const lo = await runOp(reference, [-3], [0], [1], [1], { logRatioClamp: 2 }); // r = e^−2, unclipped branch, clamped
    close(lo.loss, -Math.exp(-2));
    expect(lo.grad).toEqual([0]);
    const inside = await runOp(reference, [-1.9], [0], [1], [1], { logRatioClamp: 2 });
    close(inside.grad[0], -Math.exp(-1.9));
  });

  it('logp may have any shape; the sums run over every token', async () => {
    const logp = [0.1, -0.05, 0.3, -0.4, 0, 0.02];
    const adv = [1, -1, 0.5, -0.5, 2, -2];
    const r = await runOp(reference, logp, new Array(6).fill(0), adv, new Array(6).fill(1), {}, [2, 3]);
    let want = 0;
    logp.forEach((d, i) => {
      const ratio = Math.exp(d);
      want += Math.max(-adv[i] * ratio, -adv[i] * Math.min(Math.max(ratio, 0.8), 1.28));
    });
    close(r.loss, want);
    expect(r.clipHigh).toBe(1); // r = e^0.3 = 1.35 with A > 0
    expect(r.clipLow).toBe(1); // r = e^−0.4 = 0.67 with A < 0
  });
});

describe('clippedTokenLoss input checks', () => {
  it('names the op and the shapes when element counts differ', () => {
    T.setBackend(reference);
    const a = T.tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = T.tensor([1, 2, 3, 4, 5], [5]);
    expect(() => T.clippedTokenLoss(a, b, a, b)).toThrow(/clippedTokenLoss: oldLogp \[5\], weights \[5\] must have as many elements as logp \[2, 3\]/);
    a.dispose();
    b.dispose();
  });

  it('lists every bad option at once', () => {
    T.setBackend(reference);
    const a = T.tensor([0, 0]);
    const opts = { epsLow: 1, epsHigh: -0.1, dualClip: 0.5, logRatioClamp: 0, eps: 0.2 } as ClippedTokenLossOptions;
    let message = '';
    try { T.clippedTokenLoss(a, a, a, a, opts); } catch (e) { message = (e as Error).message; }
    for (const key of ['epsLow', 'epsHigh', 'dualClip', 'logRatioClamp', "unknown option 'eps'"]) expect(message).toContain(key);
    const ids = T.tensor([1, 1], [2], 'int32');
    expect(() => T.clippedTokenLoss(a, a, a, ids)).toThrow(/clippedTokenLoss: expected float32/);
    a.dispose();
    ids.dispose();
    expect(reference.memory().liveBuffers).toBe(0);
  });
});

describe('clippedTokenLoss gradcheck (reference backend)', () => {
  it('matches central differences w.r.t. logp away from the clip kinks', async () => {
    T.setBackend(reference);
    // ratios spread over clipped, unclipped, clamped and dual-clipped tokens, none within 1e-3 of a kink; losses
    // stay O(10) so float64 central differences keep their precision
    const d = [0.05, -0.1, 0.4, -0.5, 0.3, -0.35, 1.5, -22, 23, 0.01, -0.02, 2];
    const adv = [1.2, -0.7, 0.9, -1.1, -0.4, 0.6, -2, 1, 1, 0.3, -0.8, 1.5];
    const w = [1, 0.5, 2, 1, 0, 1, 1, 1, 1, 0.25, 1, 1];
    const old = d.map((_, i) => -1 - 0.1 * i);
    const inputs = [T.tensor(d.map((x, i) => x + old[i]), [3, 4]), T.tensor(old), T.tensor(adv), T.tensor(w)];
    for (const opts of [{}, { dualClip: 3, epsHigh: 0.2 }, { logRatioClamp: 1.2 }]) {
      const r = await T.gradcheck((lp, o, a, wt) => T.clippedTokenLoss(lp, o, a, wt, opts).loss, inputs, { constant: [1, 2, 3] });
      expect(r.ok, `worst ${JSON.stringify(r.worst)}`).toBe(true);
    }
    inputs.forEach((t) => t.dispose());
    expect(reference.memory().liveBuffers).toBe(0);
  });
});

// ------------------------------------------------------------------------------------- product backends

/** Log-ratio kinks of the loss for these args: the clip bounds, the dual-clip cap, the clamp. */
function kinks(a: TokenLossArgs): number[] {
  const k = [Math.log(1 - a.epsLow), Math.log(1 + a.epsHigh), a.logRatioClamp, -a.logRatioClamp];
  if (a.dualClip > 0) k.push(Math.log(a.dualClip));
  return k;
}

/**
 * Seeded float32 inputs: log-ratios mixing tiny (KL cancellation), moderate (clip bounds) and huge (clamp)
 * values, kept 1e-3 away from every kink so float32 and float64 pick the same branch; a quarter zero weights.
 */
function tokenInputs(n: number, seed: number, a: TokenLossArgs) {
  const u = hostRandom(4 * n, seed, 0, 1);
  const logp = new Float32Array(n);
  const old = new Float32Array(n);
  const adv = new Float32Array(n);
  const weight = new Float32Array(n);
  const ks = kinks(a);
  for (let i = 0; i < n; i++) {
    const kind = i % 4;
    let d = kind === 0 ? (u[i] - 0.5) * 0.02 : kind === 1 ? (u[i] - 0.5) * 1.2 : kind === 2 ? (u[i] - 0.5) * 8 : (u[i] - 0.5) * 60;
    while (ks.some((k) => Math.abs(d - k) < 1e-3)) d += 3e-3;
    old[i] = -0.01 - 8 * u[n + i];
    logp[i] = old[i] + d;
    adv[i] = u[2 * n + i] < 0.05 ? 0 : (u[2 * n + i] - 0.5) * 4;
    weight[i] = u[3 * n + i] < 0.25 ? 0 : 0.1 + u[3 * n + i];
  }
  return { logp, old, adv, weight };
}

async function kernelOutputs(b: Backend, data: ReturnType<typeof tokenInputs>, gLoss: Float32Array, n: number, a: TokenLossArgs) {
  const ins = [data.logp, data.old, data.adv, data.weight].map((d) => b.upload('float32', d));
  const g = b.upload('float32', gLoss);
  const loss = b.alloc('float32', n);
  const stats = b.alloc('float32', 3 * n);
  const gLogp = b.alloc('float32', n);
  const [lp, old, adv, w] = ins;
  b.kernels.tokenLoss(lp, old, adv, w, loss, stats, n, a);
  b.kernels.tokenLossBackward(lp, old, adv, w, g, gLogp, n, a);
  const read = async (s: Storage) => Array.from(await b.read(s));
  const out = { loss: await read(loss), stats: await read(stats), gLogp: await read(gLogp) };
  for (const s of [...ins, g, loss, stats, gLogp]) b.free(s);
  return out;
}

const ARGS: TokenLossArgs[] = [
  { epsLow: 0.2, epsHigh: 0.28, dualClip: 0, logRatioClamp: 20 },
  { epsLow: 0.2, epsHigh: 0.2, dualClip: 3, logRatioClamp: 20 },
  { epsLow: 0.1, epsHigh: 0.5, dualClip: 1.5, logRatioClamp: 5 },
];

for (const { name, backend } of available) {
  describe(`${name} token loss vs float64 reference`, () => {
    it('forward (loss, clip flags, k3 KL) and backward on odd n, far ratios and zero weights', async () => {
      for (const [ai, a] of ARGS.entries()) {
        for (const n of [1, 7, 1000, 4099, 8191]) { // 8191: the WASM launcher splits it across threads
          const data = tokenInputs(n, 1000 * ai + n, a);
          const gLoss = hostRandom(n, 77 + n, -2, 2);
          const want = await kernelOutputs(reference, data, gLoss, n, a);
          const got = await kernelOutputs(backend, data, gLoss, n, a);
          const what = `${name} n=${n} args ${JSON.stringify(a)}`;
          assertClose(got.loss, want.loss, `${what}: loss`, 1e-5, 1e-4);
          assertClose(got.stats.slice(0, 2 * n), want.stats.slice(0, 2 * n), `${what}: clip flags`, 0, 0);
          // tight absolute tolerance: k3 ≈ d²/2 of tiny log-ratios must keep its relative precision
          assertClose(got.stats.slice(2 * n), want.stats.slice(2 * n), `${what}: k3`, 1e-10, 1e-4);
          assertClose(got.gLogp, want.gLogp, `${what}: gLogp`, 1e-5, 1e-4);
          if (n === 4099) {
            expect(want.stats.slice(0, n).filter((v) => v === 1).length, 'some low clips').toBeGreaterThan(50);
            expect(want.stats.slice(n, 2 * n).filter((v) => v === 1).length, 'some high clips').toBeGreaterThan(50);
            expect(want.gLogp.filter((v) => v === 0).length, 'some zero gradients').toBeGreaterThan(500);
          }
        }
      }
    });

    it('clippedTokenLoss sums and gradient match the reference, without leaks', async () => {
      const a = ARGS[1];
      const data = tokenInputs(301, 5, a);
      const args = [data.logp, data.old, data.adv, data.weight] as const;
      const want = await runOp(reference, ...args, a, [7, 43]);
      const got = await runOp(backend, ...args, a, [7, 43]);
      assertClose([got.loss, got.clipLow, got.clipHigh], [want.loss, want.clipLow, want.clipHigh], `${name} sums`, 1e-4, 1e-5);
      assertClose([got.approxKl], [want.approxKl], `${name} approxKl`, 1e-4, 1e-5);
      assertClose(got.grad, want.grad, `${name} grad`, 1e-5, 1e-4);
    });

    it('rejects bad kernel arguments, listing each', () => {
      const s = backend.alloc('float32', 4);
      const bad = { epsLow: -0.1, epsHigh: Number.NaN, dualClip: 1, logRatioClamp: 100 };
      expect(() => backend.kernels.tokenLoss(s, s, s, s, s, s, 1, bad)).toThrow(/epsLow.*epsHigh.*dualClip.*logRatioClamp/);
      expect(() => backend.kernels.tokenLoss(s, s, s, s, s, s, 2, ARGS[0])).toThrow(/tokenLoss/); // stats needs 6 elements
      backend.free(s);
    });
  });
}
