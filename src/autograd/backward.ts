// backward(): reverse-mode accumulation over the recorded graph.
import { noGrad, untrackTensor } from '../tensor/engine.js';
import type { Tensor } from '../tensor/tensor.js';
import { shapeStr, sameShape } from '../tensor/shape.js';
import { add } from '../tensor/elementwise.js';
import { onesLike } from '../tensor/creation.js';
import type { TapeNode } from './tape.js';

export interface BackwardOptions {
  /** Gradient of the root (defaults to ones; required shape = root shape). */
  grad?: Tensor;
  /** Keep saved tensors so backward can run through the graph again. */
  retainGraph?: boolean;
}

/**
 * Accumulates d(root)/d(leaf) into `leaf.grad` for every reachable leaf with requiresGrad.
 * Gradients are computed without recording (no higher-order graphs).
 */
export function backward(root: Tensor, opts: BackwardOptions = {}): void {
  root.assertAlive('backward');
  if (!root.tracksGrad) {
    throw new Error(`backward: tensor ${shapeStr(root.shape)} does not require grad (no input of its graph has requiresGrad, or it was computed under noGrad)`);
  }
  if (!opts.grad && root.size !== 1) {
    throw new Error(`backward: root has shape ${shapeStr(root.shape)}; pass { grad } for a non-scalar root`);
  }
  if (opts.grad && !sameShape(opts.grad.shape, root.shape)) {
    throw new RangeError(`backward: grad shape ${shapeStr(opts.grad.shape)} does not match root shape ${shapeStr(root.shape)}`);
  }
  noGrad(() => {
    const seed = opts.grad ? aliasGrad(opts.grad) : onesLike(root);
    if (!root.gradFn) {
      accumulate(root, seed);
      return;
    }
    // Topological order = descending node id (ids follow execution order).
    const reachable = new Map<number, TapeNode<Tensor>>();
    const stack: TapeNode<Tensor>[] = [root.gradFn];
    while (stack.length) {
      const node = stack.pop()!;
      if (reachable.has(node.id)) continue;
      reachable.set(node.id, node);
      for (const parent of node.parents) if (parent && !reachable.has(parent.id)) stack.push(parent);
    }
    const order = [...reachable.values()].sort((a, b) => b.id - a.id);
    const pending = new Map<number, Tensor>([[root.gradFn.id, seed]]);
    for (const node of order) {
      const outputGrad = pending.get(node.id);
      pending.delete(node.id);
      if (!outputGrad) continue;
      const inputGrads = node.apply(outputGrad);
      outputGrad.dispose();
      node.inputs.forEach((input, i) => {
        const inputGrad = inputGrads[i];
        if (!inputGrad) return;
        if (!sameShape(inputGrad.shape, input.shape)) {
          throw new Error(`internal: backward of '${node.op}' produced grad ${shapeStr(inputGrad.shape)} for input ${shapeStr(input.shape)}`);
        }
        const parent = node.parents[i];
        if (parent) {
          const earlier = pending.get(parent.id);
          pending.set(parent.id, earlier ? addAndFree(earlier, inputGrad) : inputGrad);
        } else if (input.requiresGrad) {
          accumulate(input, inputGrad);
        } else {
          inputGrad.dispose();
        }
      });
      if (!opts.retainGraph) node.freeSaved();
    }
    for (const unused of pending.values()) unused.dispose();
  });
}

function aliasGrad(grad: Tensor): Tensor {
  return add(grad, 0);
}

function addAndFree(a: Tensor, b: Tensor): Tensor {
  const total = add(a, b);
  a.dispose();
  b.dispose();
  return total;
}

function accumulate(leaf: Tensor, grad: Tensor): void {
  // Leaf gradients outlive any tidy scope that ran backward.
  leaf.grad = leaf.grad ? addAndFree(leaf.grad, grad) : grad;
  untrackTensor(leaf.grad);
}
