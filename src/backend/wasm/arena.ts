// The WASM backend's allocator over linear memory: size classes on free lists above a bump pointer.

/** Size-class free lists over a bump pointer; 16-byte aligned blocks, classes at most 25% larger than asked. */
export class Arena {
  private readonly lists = new Map<number, number[]>();
  /** Bytes at or above this address have never been handed out (fresh memory is zero). */
  fresh: number;
  constructor(public top: number, private readonly grow: (endByte: number) => void) {
    this.fresh = top;
  }

  static classOf(bytes: number): number {
    if (bytes <= 1024) return Math.max(16, Math.ceil(bytes / 16) * 16);
    const step = 2 ** (Math.floor(Math.log2(bytes)) - 2);
    return Math.ceil(bytes / step) * step;
  }

  alloc(cls: number): number {
    const list = this.lists.get(cls);
    if (list && list.length > 0) return list.pop()!;
    const ptr = this.top;
    this.grow(ptr + cls);
    this.top = ptr + cls;
    return ptr;
  }

  /** Marks [ptr, end) handed out; returns the prefix of it that may hold stale data. */
  dirtyEnd(ptr: number, end: number): number {
    const stale = Math.min(end, Math.max(ptr, this.fresh));
    this.fresh = Math.max(this.fresh, end);
    return stale;
  }

  release(ptr: number, cls: number): void {
    if (ptr + cls === this.top) { this.top = ptr; return; }
    let list = this.lists.get(cls);
    if (!list) this.lists.set(cls, (list = []));
    list.push(ptr);
  }
}
