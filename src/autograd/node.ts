// Reverse-mode autograd. Each recorded op creates a GradNode holding the tensors its backward rule needs;
// node ids increase in execution order, so walking reachable nodes by descending id replays the tape
// backwards. Nodes are reference-counted by the tensors and nodes that point at them, so a graph's saved
// tensors are freed deterministically: after backward(), or when its outputs are disposed unused.
import { Tensor } from '../tensor/tensor.js';
import { nextNodeId, untrackTensor } from '../tensor/engine.js';
import type { TapeNode } from './tape.js';

/** Computes input gradients from the output gradient; `needs[i]` says whether input i wants one. */
export type BackwardRule = (grad: Tensor, saved: readonly Tensor[], needs: readonly boolean[]) => (Tensor | null)[];

export class GradNode implements TapeNode<Tensor> {
  readonly id = nextNodeId();
  private refs = 1;
  private saved: Tensor[];
  private released = false;

  constructor(
    readonly op: string,
    /** Inputs in op order; gradients are returned in the same order. */
    readonly inputs: readonly Tensor[],
    private readonly inputNodes: readonly (TapeNode<Tensor> | null)[],
    saved: readonly Tensor[],
    private readonly rule: BackwardRule,
  ) {
    // Saved tensors are private aliases sharing storage, so user-side dispose/tidy cannot free them.
    this.saved = saved.map((tensor) => alias(tensor));
    for (const node of inputNodes) node?.retain();
  }

  retain(): void {
    this.refs++;
  }

  release(): void {
    if (--this.refs > 0) return;
    this.freeSaved();
    for (const node of this.inputNodes) node?.release();
  }

  /** Drops saved tensors (after backward); the node can then no longer be differentiated through. */
  freeSaved(): void {
    if (this.released) return;
    this.released = true;
    for (const tensor of this.saved) tensor.dispose();
    this.saved = [];
  }

  get parents(): readonly (TapeNode<Tensor> | null)[] {
    return this.inputNodes;
  }

  apply(grad: Tensor): (Tensor | null)[] {
    const needs = this.inputs.map((input, i) => input.requiresGrad || this.inputNodes[i] !== null);
    if (this.released) {
      throw new Error(`backward through '${this.op}' a second time: its saved tensors were freed (pass retainGraph: true to the first backward)`);
    }
    return this.rule(grad, this.saved, needs);
  }
}

/** A tensor sharing t's storage, owned by its node and invisible to tidy scopes. */
export function alias(tensor: Tensor): Tensor {
  tensor.assertAlive('autograd save');
  const shared = new Tensor(tensor.data.retain(), tensor.shape, tensor.dtype);
  untrackTensor(shared);
  return shared;
}
