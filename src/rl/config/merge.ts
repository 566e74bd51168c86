// Layered merging: later layers win key by key, and a layer that switches task drops the earlier task's knobs.
import { formatValue } from './rules.js';

export type PlainObject = Record<string, unknown>;

export const isPlainObject = (value: unknown): value is PlainObject => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A deep copy of plain JSON data, so resolving never hands out (or keeps) the caller's objects. */
export function clone<T>(value: T): T {
  if (Array.isArray(value)) return value.map(clone) as T;
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, clone(item)])) as T;
  return value;
}

/** Later wins; plain objects merge key by key, everything else (arrays included) is replaced. */
function deepMerge(base: PlainObject, over: PlainObject): PlainObject {
  const out: PlainObject = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === undefined) continue;
    const merged = isPlainObject(value) && Object.hasOwn(out, key) && isPlainObject(out[key]) ? deepMerge(out[key] as PlainObject, value) : clone(value);
    // defineProperty, so a JSON "__proto__" key stays a plain (and then reported unknown) key
    Object.defineProperty(out, key, { value: merged, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** Merges the user layers; a layer that names a different task drops the earlier task's knobs (they belong to it). */
export function mergeLayers(layers: readonly unknown[], problems: string[]): PlainObject {
  let merged: PlainObject = {};
  layers.forEach((layer, i) => {
    if (layer === undefined || layer === null) return;
    if (!isPlainObject(layer)) {
      problems.push(`layer ${i + 1}: must be an object, got ${formatValue(layer)}`);
      return;
    }
    const task = layer.task;
    if (isPlainObject(task) && isPlainObject(merged.task) && task.name !== undefined && task.name !== merged.task.name) {
      merged = { ...merged, task: {} };
    }
    merged = deepMerge(merged, layer);
  });
  return merged;
}
