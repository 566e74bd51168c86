// Per-layer key/value cache for generation: [batch, kvHeads, maxLen, headDim] per layer, filled left to
// right; attention reads the first `length` rows.
import * as T from '../tensor/index.js';
import type { Tensor } from '../tensor/index.js';
import { pickRows } from './prompt_rows.js';

export class KVCache {
  private readonly layers: { k: Tensor; v: Tensor }[] = [];
  private filled = 0;

  constructor(nLayers: number, readonly batch: number, private readonly kvHeads: number, readonly maxLen: number, private readonly headDim: number) {
    for (let i = 0; i < nLayers; i++) {
      this.layers.push({ k: T.keep(T.zeros([batch, kvHeads, maxLen, headDim])), v: T.keep(T.zeros([batch, kvHeads, maxLen, headDim])) });
    }
  }

  /**
   * A new cache of `rows.length` sequences, sequence i a copy of sequence rows[i] of this one, as filled as this one:
   * sequences that share a prompt prefill it once and then each continue from their own copy (generate()).
   */
  selectRows(rows: readonly number[]): KVCache {
    for (const r of rows) {
      if (!(Number.isInteger(r) && r >= 0 && r < this.batch)) throw new RangeError(`KVCache.selectRows: row ${r} outside [0, ${this.batch})`);
    }
    const copy = new KVCache(0, rows.length, this.kvHeads, this.maxLen, this.headDim);
    copy.filled = this.filled;
    const index = T.tensor([...rows], [rows.length], 'int32');
    try {
      const pick = (t: Tensor) => T.keep(T.noGrad(() => T.tidy(() => pickRows(t, index))));
      for (const { k, v } of this.layers) copy.layers.push({ k: pick(k), v: pick(v) });
    } catch (e) {
      copy.dispose();
      throw e;
    } finally {
      index.dispose();
    }
    return copy;
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
