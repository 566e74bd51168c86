// Activation checkpointing: a segment of the graph (a decoder block) runs without recording in the forward,
// keeping only its inputs; its backward recomputes the segment with recording on and back-propagates through
// that fresh graph. Memory: the segment's activations exist only while its own gradient is being formed.
import { backward } from '../autograd/backward.js';
import { isGradEnabled, noGrad, tidy, withGrad } from './engine.js';
import { record } from './record.js';
import { viewRaw } from './raw.js';
import type { Tensor } from './tensor.js';

/**
 * fn(...inputs) computed without keeping its intermediates; the gradient is recomputed in backward.
 * `params` are the grad-requiring leaves fn reads besides its inputs (a block's weights): their gradients
 * accumulate into `.grad` while the recomputed segment is back-propagated. fn must be deterministic (the same
 * values on recomputation: no fresh random masks) and must not write state (no KV cache).
 */
export function checkpoint(fn: (...inputs: Tensor[]) => Tensor, inputs: readonly Tensor[], params: readonly Tensor[]): Tensor {
  const all = [...inputs, ...params];
  if (!isGradEnabled() || !all.some((t) => t.tracksGrad)) return fn(...inputs);
  for (const p of params) {
    if (p.gradFn) throw new Error(`checkpoint: params must be leaves (parameters), got the output of '${p.gradFn.op}'`);
  }
  const out = noGrad(() => tidy(() => fn(...inputs)));
  return record('checkpoint', all, out, inputs, (g, saved, needs) => withGrad(() => {
    // Fresh leaves over the saved inputs: the recomputed graph starts here, and their .grad is the input gradient.
    const leaves = saved.map((x, i) => {
      const leaf = viewRaw(x, x.shape);
      if (needs[i] && x.dtype === 'float32') leaf.requireGrad();
      return leaf;
    });
    const y = tidy(() => fn(...leaves));
    if (y.tracksGrad) backward(y, { grad: g });
    y.dispose();
    const grads = leaves.map((leaf) => {
      const grad = leaf.grad;
      leaf.grad = null;
      leaf.dispose();
      return grad;
    });
    // Parameter gradients were accumulated into .grad by the inner backward.
    return [...grads, ...params.map(() => null)];
  }));
}
