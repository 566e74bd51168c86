// The engine context: the active backend, tidy scopes and the grad mode. One per process/page.
import type { Backend } from '../backend/backend.js';
import type { Tensor } from './tensor.js';

interface Scope {
  tensors: Set<Tensor>;
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
  const prev = state.gradEnabled;
  state.gradEnabled = false;
  try {
    return fn();
  } finally {
    state.gradEnabled = prev;
  }
}

/** Registers a new tensor with the innermost tidy scope. */
export function trackTensor(t: Tensor): void {
  const scope = state.scopes[state.scopes.length - 1];
  if (scope) scope.tensors.add(t);
}

/** Removes t from every open scope so it survives them (used for results, gradients and `keep`). */
export function untrackTensor(t: Tensor): void {
  for (const scope of state.scopes) scope.tensors.delete(t);
}

/** Marks t to outlive every enclosing tidy scope. */
export function keep<T extends Tensor>(t: T): T {
  untrackTensor(t);
  return t;
}

function collectTensors(value: unknown, out: Set<Tensor>, isTensor: (v: unknown) => v is Tensor): void {
  if (isTensor(value)) out.add(value);
  else if (Array.isArray(value)) for (const v of value) collectTensors(v, out, isTensor);
  else if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectTensors(v, out, isTensor);
  }
}

let tensorGuard: ((v: unknown) => v is Tensor) | null = null;
export function registerTensorGuard(guard: (v: unknown) => v is Tensor): void {
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
    for (const t of scope.tensors) t.dispose();
    throw e;
  }
  state.scopes.pop();
  if (result instanceof Promise) {
    throw new Error(`tidy('${name}'): the function returned a Promise; tidy scopes must be synchronous`);
  }
  const kept = new Set<Tensor>();
  if (tensorGuard) collectTensors(result, kept, tensorGuard);
  for (const t of scope.tensors) if (!kept.has(t)) t.dispose();
  const parent = state.scopes[state.scopes.length - 1];
  if (parent) for (const t of kept) if (!t.isDisposed) parent.tensors.add(t);
  return result;
}
