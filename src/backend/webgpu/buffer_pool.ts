// Size-class buffer pool. Classes: 256 B minimum, then four steps per power of two (1, 1.25, 1.5, 1.75 × 2^k),
// so variable RL lengths reuse buffers with at most 25 % slack. Frees are deferred by the backend until the
// submit that last used the buffer has completed; this pool only holds buffers that are safe to reuse.

export const MIN_BUFFER_BYTES = 256;

/** The pooled allocation size for a request of `bytes` (capped at `cap`, where the request itself fits). */
export function sizeClass(bytes: number, cap = Infinity): number {
  let cls: number;
  if (bytes <= MIN_BUFFER_BYTES) cls = MIN_BUFFER_BYTES;
  else {
    const pow2 = 2 ** Math.ceil(Math.log2(bytes));
    const half = pow2 / 2;
    cls = pow2;
    for (const factor of [1.25, 1.5, 1.75]) {
      const candidate = half * factor;
      if (candidate >= bytes) { cls = candidate; break; }
    }
  }
  if (cls > cap) cls = Math.max(Math.ceil(bytes / 16) * 16, 16);
  return cls;
}

export class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  private pooledBytes = 0;
  created = 0;
  reused = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly usage: number,
    private readonly label: string,
    /** Buffers beyond this many pooled bytes are destroyed instead of kept. */
    private readonly maxPooledBytes = 512 * 1024 * 1024,
  ) {}

  acquire(bytes: number): GPUBuffer {
    const list = this.free.get(bytes);
    const buf = list?.pop();
    if (buf) {
      this.pooledBytes -= bytes;
      this.reused++;
      return buf;
    }
    this.created++;
    return this.device.createBuffer({ size: bytes, usage: this.usage, label: this.label });
  }

  /** Returns a buffer whose last use has been submitted (the queue orders any reuse after that work; destroy() is deferred by the implementation until it completes). */
  release(buf: GPUBuffer): void {
    if (this.pooledBytes + buf.size > this.maxPooledBytes) {
      buf.destroy();
      return;
    }
    let list = this.free.get(buf.size);
    if (!list) this.free.set(buf.size, (list = []));
    list.push(buf);
    this.pooledBytes += buf.size;
  }

  get bytes(): number {
    return this.pooledBytes;
  }

  destroyAll(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.pooledBytes = 0;
  }
}
