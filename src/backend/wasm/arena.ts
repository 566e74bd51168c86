// The WASM backend's allocator over linear memory: a coalescing best-fit free list below a bump pointer.
//
// Every block is a 16-byte-aligned range [ptr, ptr + size). Freed blocks merge with free neighbours, a request takes
// the smallest free block that holds it (splitting off the rest), and a free block that reaches the top lowers the top.
// Generation and update transients so share the same addresses instead of sitting side by side per size class.

const ALIGN = 16;

/** Coalescing best-fit allocator; sizes are rounded to 16 bytes (see Arena.classOf), addresses 16-byte aligned. */
export class Arena {
  /** Free blocks sorted by address (starts and sizes in parallel arrays; no two are adjacent: they merge). */
  private freeStarts: number[] = [];
  private freeSizes: number[] = [];
  /** Bytes at or above this address have never been handed out (fresh memory is zero). */
  fresh: number;
  /** The highest top ever reached: the address space this arena has used. */
  highWater: number;
  constructor(public top: number, private readonly grow: (endByte: number) => void) {
    if (top % ALIGN !== 0) throw new Error(`arena base ${top} is not ${ALIGN}-byte aligned`);
    this.fresh = top;
    this.highWater = top;
  }

  /** The block size a request of `bytes` takes: 16-byte multiples (at least 16). */
  static classOf(bytes: number): number {
    return Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  }

  /** Bytes in free blocks below the top (holes the next requests can fill). */
  get freeBytes(): number {
    let total = 0;
    for (const size of this.freeSizes) total += size;
    return total;
  }

  /** The free blocks, by address (testing aid). */
  freeBlocks(): { ptr: number; size: number }[] {
    return this.freeStarts.map((ptr, i) => ({ ptr, size: this.freeSizes[i] }));
  }

  /** A block of `size` bytes (a multiple of 16 from classOf): the smallest free block that fits, else the top. */
  alloc(size: number): number {
    if (!(size > 0) || size % ALIGN !== 0) throw new Error(`arena block size ${size} is not a positive multiple of ${ALIGN}`);
    let best = -1;
    let bestSize = Infinity;
    const sizes = this.freeSizes;
    for (let i = 0; i < sizes.length; i++) {
      const s = sizes[i];
      if (s >= size && s < bestSize) {
        best = i;
        bestSize = s;
        if (s === size) break;
      }
    }
    if (best >= 0) {
      const ptr = this.freeStarts[best];
      if (bestSize === size) {
        this.freeStarts.splice(best, 1);
        this.freeSizes.splice(best, 1);
      } else {
        // Keep the tail free: the block stays in address order.
        this.freeStarts[best] = ptr + size;
        this.freeSizes[best] = bestSize - size;
      }
      return ptr;
    }
    // No hole fits: extend from the top (no free block ends at the top: release lowers the top past it).
    const ptr = this.top;
    this.grow(ptr + size);
    this.top = ptr + size;
    this.highWater = Math.max(this.highWater, this.top);
    return ptr;
  }

  /** Marks [ptr, end) handed out; returns the prefix of it that may hold stale data. */
  dirtyEnd(ptr: number, end: number): number {
    const stale = Math.min(end, Math.max(ptr, this.fresh));
    this.fresh = Math.max(this.fresh, end);
    return stale;
  }

  /** Returns the block [ptr, ptr + size) (as handed out by alloc(size)). */
  release(ptr: number, size: number): void {
    if (ptr + size === this.top) {
      this.top = ptr;
      // The top block is gone: a free block now ending at the top lowers it further.
      const last = this.freeStarts.length - 1;
      if (last >= 0 && this.freeStarts[last] + this.freeSizes[last] === this.top) {
        this.top = this.freeStarts[last];
        this.freeStarts.pop();
        this.freeSizes.pop();
      }
      return;
    }
    this.insertFree(ptr, size);
  }

  /** Inserts a free block in address order, merging it with the free blocks it touches. */
  private insertFree(ptr: number, size: number): void {
    const starts = this.freeStarts;
    const sizes = this.freeSizes;
    // First free block starting after ptr (binary search).
    let lo = 0;
    let hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (starts[mid] < ptr) lo = mid + 1;
      else hi = mid;
    }
    const next = lo;
    const prev = lo - 1;
    if (next < starts.length && starts[next] < ptr + size) throw new Error(`arena block ${ptr} overlaps a free block`);
    if (prev >= 0 && starts[prev] + sizes[prev] > ptr) throw new Error(`arena block ${ptr} overlaps a free block`);
    const mergePrev = prev >= 0 && starts[prev] + sizes[prev] === ptr;
    const mergeNext = next < starts.length && ptr + size === starts[next];
    if (mergePrev && mergeNext) {
      sizes[prev] += size + sizes[next];
      starts.splice(next, 1);
      sizes.splice(next, 1);
    } else if (mergePrev) {
      sizes[prev] += size;
    } else if (mergeNext) {
      starts[next] = ptr;
      sizes[next] += size;
    } else {
      starts.splice(next, 0, ptr);
      sizes.splice(next, 0, size);
    }
  }
}
