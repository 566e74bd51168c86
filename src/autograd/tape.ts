// The tape entry a tensor points at (`tensor.gradFn`): the recorded op that produced it. Declared apart from
// GradNode, over any tensor type, so tensor.ts can name it without importing the autograd implementation
// (which itself creates tensors).
export interface TapeNode<T> {
  /** Increases in execution order: walking nodes by descending id replays the tape backwards. */
  readonly id: number;
  readonly op: string;
  /** Inputs in op order; apply() returns their gradients in the same order. */
  readonly inputs: readonly T[];
  /** The node of each input (null for leaves and inputs that do not track gradients). */
  readonly parents: readonly (TapeNode<T> | null)[];
  retain(): void;
  release(): void;
  /** Drops saved tensors (after backward); the node can then no longer be differentiated through. */
  freeSaved(): void;
  /** Input gradients from the output gradient (null where an input needs none). */
  apply(grad: T): (T | null)[];
}
