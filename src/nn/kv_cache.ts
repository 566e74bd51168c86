// Per-layer key/value cache for generation: [batch, kvHeads, maxLen, headDim] per layer, filled left to
// right; attention reads the first `length` rows.
import * as T from '../tensor/index.js';
import type { Tensor } from '../tensor/index.js';

export class KVCache {
  private readonly layers: { k: Tensor; v: Tensor }[] = [];
  private filled = 0;

  constructor(nLayers: number, readonly batch: number, kvHeads: number, readonly maxLen: number, headDim: number) {
    for (let i = 0; i < nLayers; i++) {
      this.layers.push({ k: T.keep(T.zeros([batch, kvHeads, maxLen, headDim])), v: T.keep(T.zeros([batch, kvHeads, maxLen, headDim])) });
    }
  }

  /** Positions already cached. */
  get length(): number {
    return this.filled;
  }

  layer(i: number): { k: Tensor; v: Tensor } {
    return this.layers[i];
  }

  /** Marks `n` more positions as written (called once per forward, after every layer appended). */
  advance(n: number): void {
    if (this.filled + n > this.maxLen) throw new RangeError(`KVCache: ${this.filled + n} positions exceed its ${this.maxLen}`);
    this.filled += n;
  }

  /** Bytes held on the backend. */
  get bytes(): number {
    return this.layers.reduce((acc, l) => acc + (l.k.size + l.v.size) * 4, 0);
  }

  dispose(): void {
    for (const l of this.layers) {
      l.k.dispose();
      l.v.dispose();
    }
    this.layers.length = 0;
  }
}
