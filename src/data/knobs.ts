// Difficulty knobs of the built-in tasks: declared once with their ranges, validated with every problem listed.
import type { ProblemGenerator } from './task.js';

export type KnobSpec =
  | { kind: 'int'; min: number; max: number; default: number; doc: string }
  | { kind: 'fraction'; default: number; doc: string } // in (0, 1)
  | { kind: 'bool'; default: boolean; doc: string };

export type KnobSpecs = Record<string, KnobSpec>;
export type Knobs = Record<string, number | boolean>;

/** One built-in task: its knobs, the knob ranges that must be ordered and the generator they configure. */
export interface TaskDefinition {
  readonly name: string;
  readonly knobs: KnobSpecs;
  /** Pairs [low, high] of knobs whose values must satisfy low ≤ high (e.g. minDigits ≤ maxDigits). */
  readonly ordered: readonly (readonly [low: string, high: string])[];
  generator(knobs: Knobs): ProblemGenerator;
}

/** Knobs every built-in task has. */
export const COMMON_KNOBS: KnobSpecs = {
  seed: { kind: 'int', min: 0, max: 2 ** 32 - 1, default: 0, doc: 'chooses the problems of both splits' },
  testSize: { kind: 'int', min: 0, max: 100_000, default: 200, doc: 'problems in the held-out test split' },
  holdoutFraction: { kind: 'fraction', default: 0.05, doc: 'fraction of canonical problems reserved for test (train never sees them)' },
};

export function describeKnob(spec: KnobSpec): string {
  switch (spec.kind) {
    case 'int': return `an integer in [${spec.min}, ${spec.max}]`;
    case 'fraction': return 'a number in (0, 1)';
    case 'bool': return 'true or false';
  }
}

function knobValueOk(spec: KnobSpec, v: unknown): boolean {
  switch (spec.kind) {
    case 'int': return typeof v === 'number' && Number.isInteger(v) && v >= spec.min && v <= spec.max;
    case 'fraction': return typeof v === 'number' && v > 0 && v < 1;
    case 'bool': return typeof v === 'boolean';
  }
}

/**
 * Fills defaults and appends a problem for every unknown knob and every bad value (prefixed with the task
 * name); `valuesOk` says whether every known knob's value is in range (so cross-knob checks can run).
 */
export function readKnobs(task: string, specs: KnobSpecs, config: Record<string, unknown>, problems: string[]): { knobs: Knobs; valuesOk: boolean } {
  const knobs: Knobs = {};
  let valuesOk = true;
  for (const key of Object.keys(config)) {
    if (key !== 'name' && !(key in specs)) problems.push(`${task}: unknown knob '${key}' (allowed: ${Object.keys(specs).join(', ')})`);
  }
  for (const [key, spec] of Object.entries(specs)) {
    const v = config[key] === undefined ? spec.default : config[key];
    if (!knobValueOk(spec, v)) {
      problems.push(`${task}: ${key} must be ${describeKnob(spec)}, got ${JSON.stringify(v)}`);
      valuesOk = false;
    }
    knobs[key] = v as number | boolean;
  }
  return { knobs, valuesOk };
}

/** A problem for every ordered pair whose low knob exceeds its high knob (knob values already in range). */
export function orderProblems(task: string, ordered: TaskDefinition['ordered'], knobs: Knobs): string[] {
  return ordered.filter(([low, high]) => knobs[low] > knobs[high])
    .map(([low, high]) => `${task}: ${low} ${knobs[low]} must be ≤ ${high} ${knobs[high]}`);
}

export function defaultKnobs(specs: KnobSpecs): Knobs {
  return Object.fromEntries(Object.entries(specs).map(([k, s]) => [k, s.default]));
}

/** Number of decimal digits of a non-negative integer. */
export function digitCount(n: number): number {
  return String(Math.floor(Math.abs(n))).length;
}
