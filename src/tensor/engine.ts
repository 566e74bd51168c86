// The engine context: the active backend, tidy scopes and the grad mode. One per process/page.
import type { Backend } from '../backend/backend.js';

/**
 * What a tidy scope tracks and disposes: a Tensor. Declared here, not imported, because tensor.ts registers
 * every new tensor with this module (the engine sits below the Tensor class).
 */
export interface ScopedTensor {
  readonly isDisposed: boolean;
  dispose(): void;
}

interface Scope {
  tensors: Set<ScopedTensor>;
  name: string;
}

class EngineState {
  backend: Backend | null = null;
  gradEnabled = true;
  readonly scopes: Scope[] = [];
  nextTensorId = 1;
  nextNodeId = 1;
}

const state = new EngineState();

export function setBackend(backend: Backend): void {
  state.backend = backend;
}

export function getBackend(): Backend {
  if (!state.backend) {
    throw new Error('no backend is active: call setBackend(...) or initEngine(...) before creating tensors');
  }
  return state.backend;
}

export function hasBackend(): boolean {
  return state.backend !== null;
}

export function isGradEnabled(): boolean {
  return state.gradEnabled;
}

export function nextTensorId(): number {
  return state.nextTensorId++;
}

export function nextNodeId(): number {
  return state.nextNodeId++;
}

/** Runs fn with gradient recording off (generation, optimizer updates, metrics). */
export function noGrad<T>(fn: () => T): T {
  return withGradEnabled(false, fn);
}

/** Runs fn with gradient recording on, even inside noGrad (recomputing a checkpointed segment in backward). */
export function withGrad<T>(fn: () => T): T {
  return withGradEnabled(true, fn);
}

function withGradEnabled<T>(enabled: boolean, fn: () => T): T {
  const wasEnabled = state.gradEnabled;
  state.gradEnabled = enabled;
  try {
    return fn();
  } finally {
    state.gradEnabled = wasEnabled;
  }
}

/** Registers a new tensor with the innermost tidy scope. */
export function trackTensor(tensor: ScopedTensor): void {
  const scope = state.scopes[state.scopes.length - 1];
  if (scope) scope.tensors.add(tensor);
}

/** Removes a tensor from every open scope so it survives them (used for results, gradients and `keep`). */
export function untrackTensor(tensor: ScopedTensor): void {
  for (const scope of state.scopes) scope.tensors.delete(tensor);
}

/** Marks a tensor to outlive every enclosing tidy scope. */
export function keep<T extends ScopedTensor>(tensor: T): T {
  untrackTensor(tensor);
  return tensor;
}

type TensorGuard = (value: unknown) => value is ScopedTensor;

function collectTensors(value: unknown, out: Set<ScopedTensor>, isTensor: TensorGuard): void {
  if (isTensor(value)) out.add(value);
  else if (Array.isArray(value)) for (const item of value) collectTensors(item, out, isTensor);
  else if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const item of Object.values(value)) collectTensors(item, out, isTensor);
  }
}

// tidy() finds the tensors in a result with the guard tensor.ts registers (an import would be a cycle).
let tensorGuard: TensorGuard | null = null;
export function registerTensorGuard(guard: TensorGuard): void {
  tensorGuard = guard;
}

/**
 * Runs fn and disposes every tensor created inside it, except the tensors it returns (a tensor, or arrays /
 * plain objects of tensors) and those passed to `keep`. Returned tensors move to the enclosing scope.
 * Async functions are not supported (a scope must close synchronously): await outside tidy.
 */
export function tidy<T>(fn: () => T, name = 'tidy'): T {
  const scope: Scope = { tensors: new Set(), name };
  state.scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    state.scopes.pop();
    for (const tensor of scope.tensors) tensor.dispose();
    throw e;
  }
  state.scopes.pop();
  if (result instanceof Promise) {
    throw new Error(`tidy('${name}'): the function returned a Promise; tidy scopes must be synchronous`);
  }
  const kept = new Set<ScopedTensor>();
  if (tensorGuard) collectTensors(result, kept, tensorGuard);
  for (const tensor of scope.tensors) if (!kept.has(tensor)) tensor.dispose();
  const parent = state.scopes[state.scopes.length - 1];
  if (parent) for (const tensor of kept) if (!tensor.isDisposed) parent.tensors.add(tensor);
  return result;
}
