// Seeded, counter-based randomness for problem generation: a problem is a pure function of its key.
import { mix32, uniformAt } from '../backend/rng.js';

/** Hashes numbers and strings (in order) into one 32-bit key. */
export function hashKey(...parts: readonly (number | string)[]): number {
  let hash = 0x9e3779b9;
  for (const part of parts) {
    if (typeof part === 'number') {
      // Numbers are hashed as (low 32 bits, high bits) so large seeds and indices stay distinct.
      hash = mix32(hash ^ (part >>> 0));
      hash = mix32(hash ^ Math.floor(part / 4294967296));
    } else {
      hash = mix32(hash ^ 0x51ed27);
      for (let i = 0; i < part.length; i++) hash = mix32(hash ^ part.charCodeAt(i));
      hash = mix32(hash ^ part.length);
    }
  }
  return hash;
}

/** A uniform value in [0, 1) that depends only on the parts. */
export function hashUnit(...parts: readonly (number | string)[]): number {
  return uniformAt(hashKey(...parts), 0);
}

/** A stream of uniform numbers from a key (24-bit resolution, enough for the small ranges tasks draw from). */
export class Rng {
  private counter = 0;
  constructor(private readonly key: number) {}

  uniform(): number {
    return uniformAt(this.key, this.counter++);
  }

  /** An integer in [lo, hi], both inclusive. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.uniform() * (hi - lo + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)];
  }

  /** A decimal string of exactly `digits` digits (no leading zero; one digit may be 0), drawn digit by digit. */
  digits(digits: number): string {
    if (digits === 1) return String(this.int(0, 9));
    let text = String(this.int(1, 9));
    for (let i = 1; i < digits; i++) text += String(this.int(0, 9));
    return text;
  }
}
