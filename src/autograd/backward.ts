// backward(): reverse-mode accumulation over the recorded graph.
import { noGrad, untrackTensor } from '../tensor/engine.js';
import type { Tensor } from '../tensor/tensor.js';
import { shapeStr, sameShape } from '../tensor/shape.js';
import { add } from '../tensor/elementwise.js';
import { onesLike } from '../tensor/creation.js';
import type { GradNode } from './node.js';

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
    const nodes = new Map<number, GradNode>();
    const stack: GradNode[] = [root.gradFn];
    while (stack.length) {
      const n = stack.pop()!;
      if (nodes.has(n.id)) continue;
      nodes.set(n.id, n);
      for (const p of n.parents) if (p && !nodes.has(p.id)) stack.push(p);
    }
    const order = [...nodes.values()].sort((a, b) => b.id - a.id);
    const grads = new Map<number, Tensor>([[root.gradFn.id, seed]]);
    for (const node of order) {
      const g = grads.get(node.id);
      grads.delete(node.id);
      if (!g) continue;
      const inGrads = node.apply(g);
      g.dispose();
      node.inputs.forEach((input, i) => {
        const ig = inGrads[i];
        if (!ig) return;
        if (!sameShape(ig.shape, input.shape)) {
          throw new Error(`internal: backward of '${node.op}' produced grad ${shapeStr(ig.shape)} for input ${shapeStr(input.shape)}`);
        }
        const parent = node.parents[i];
        if (parent) {
          const prev = grads.get(parent.id);
          grads.set(parent.id, prev ? addAndFree(prev, ig) : ig);
        } else if (input.requiresGrad) {
          accumulate(input, ig);
        } else {
          ig.dispose();
        }
      });
      if (!opts.retainGraph) node.freeSaved();
    }
    for (const g of grads.values()) g.dispose();
  });
}

function aliasGrad(g: Tensor): Tensor {
  return add(g, 0);
}

function addAndFree(a: Tensor, b: Tensor): Tensor {
  const s = add(a, b);
  a.dispose();
  b.dispose();
  return s;
}

function accumulate(leaf: Tensor, g: Tensor): void {
  // Leaf gradients outlive any tidy scope that ran backward.
  if (leaf.grad) {
    const sum = addAndFree(leaf.grad, g);
    leaf.grad = sum;
  } else {
    leaf.grad = g;
  }
  untrackTensor(leaf.grad);
}
