// The WASM arena: a coalescing best-fit allocator. Random alloc/free sequences are checked against a plain model
// (the set of live blocks), then the properties the step's memory relies on are checked one by one.
import { afterAll, describe, expect, it } from 'vitest';
import { Arena } from '../../src/backend/wasm/arena.js';
import { createWasmBackend } from '../../src/backend/wasm/wasm_backend.js';
import { SeededRandom } from '../support/random.js';

const BASE = 4096;

function arena(limit = Infinity): { arena: Arena; grownTo: () => number } {
  let grown = BASE;
  const a = new Arena(BASE, (end) => {
    if (end > limit) throw new Error(`past the limit: ${end}`);
    grown = Math.max(grown, end);
  });
  return { arena: a, grownTo: () => grown };
}

/** Live and free blocks tile [BASE, top) exactly; free blocks are sorted, never adjacent, never at the top. */
function checkInvariants(a: Arena, live: Map<number, number>): void {
  const blocks = [
    ...[...live].map(([ptr, size]) => ({ ptr, size, free: false })),
    ...a.freeBlocks().map((b) => ({ ...b, free: true })),
  ].sort((x, y) => x.ptr - y.ptr);
  let cursor = BASE;
  let previousFree = false;
  for (const block of blocks) {
    expect(block.ptr % 16).toBe(0);
    expect(block.size % 16).toBe(0);
    expect(block.ptr).toBe(cursor); // no overlap, no lost bytes
    expect(block.free && previousFree).toBe(false); // free neighbours merge
    cursor = block.ptr + block.size;
    previousFree = block.free;
  }
  expect(cursor).toBe(a.top);
  expect(previousFree).toBe(false); // a free block at the top lowers the top instead
}

describe('Arena', () => {
  it('rounds sizes to 16 bytes', () => {
    expect([1, 16, 17, 1000, 1025, 4097].map(Arena.classOf)).toEqual([16, 16, 32, 1008, 1040, 4112]);
    expect(Arena.classOf(0)).toBe(16);
    expect(() => arena().arena.alloc(24)).toThrow(/multiple of 16/);
  });

  it('keeps blocks disjoint, aligned and coalesced over random alloc/free sequences', () => {
    for (const seed of [1, 2, 3]) {
      const rng = new SeededRandom(seed);
      const { arena: a } = arena();
      const live = new Map<number, number>();
      for (let step = 0; step < 3000; step++) {
        if (live.size === 0 || rng.next() < 0.55) {
          // Mostly small requests with now and then a big one, like a step's activations and logits.
          const bytes = rng.next() < 0.1 ? 1 + Math.floor(rng.next() * 200_000) : 1 + Math.floor(rng.next() * 3000);
          const size = Arena.classOf(bytes);
          const ptr = a.alloc(size);
          expect(live.has(ptr)).toBe(false);
          live.set(ptr, size);
        } else {
          const ptrs = [...live.keys()];
          const ptr = ptrs[Math.floor(rng.next() * ptrs.length)];
          a.release(ptr, live.get(ptr)!);
          live.delete(ptr);
        }
        if (step % 50 === 0) checkInvariants(a, live);
      }
      checkInvariants(a, live);
      for (const [ptr, size] of live) a.release(ptr, size);
      expect(a.top).toBe(BASE);
      expect(a.freeBlocks()).toEqual([]);
    }
  });

  it('reuses a freed big block for smaller requests of other sizes, splitting it', () => {
    const { arena: a } = arena();
    const big = a.alloc(1 << 20);
    const guard = a.alloc(16); // keeps the big block off the top
    a.release(big, 1 << 20);
    const topBefore = a.top;
    const small = [a.alloc(4096), a.alloc(100_000 - 100_000 % 16), a.alloc(16 * 1000)];
    expect(a.top).toBe(topBefore);
    for (const ptr of small) expect(ptr >= big && ptr < big + (1 << 20)).toBe(true);
    expect(small[0]).toBe(big);
    a.release(guard, 16);
  });

  it('merges freed neighbours so that the space of two fits one larger request', () => {
    const { arena: a } = arena();
    const first = a.alloc(4096);
    const second = a.alloc(4096);
    const guard = a.alloc(16);
    a.release(first, 4096);
    a.release(second, 4096);
    expect(a.freeBlocks()).toEqual([{ ptr: first, size: 8192 }]);
    expect(a.alloc(8192)).toBe(first);
    a.release(guard, 16);
  });

  it('picks the smallest free block that fits', () => {
    const { arena: a } = arena();
    const blocks = [8192, 16, 2048, 16, 4096, 16].map((size) => ({ size, ptr: a.alloc(size) }));
    for (const i of [0, 2, 4]) a.release(blocks[i].ptr, blocks[i].size);
    expect(a.alloc(2000 + 48)).toBe(blocks[2].ptr);
    expect(a.alloc(3000 - 3000 % 16)).toBe(blocks[4].ptr);
    expect(a.alloc(5008)).toBe(blocks[0].ptr);
  });

  it('lowers the top when the last block is freed, through the free blocks below it', () => {
    const { arena: a } = arena();
    const x = a.alloc(1024);
    const y = a.alloc(2048);
    const z = a.alloc(4096);
    expect(a.top).toBe(BASE + 1024 + 2048 + 4096);
    a.release(y, 2048);
    expect(a.top).toBe(BASE + 1024 + 2048 + 4096);
    a.release(z, 4096);
    expect(a.top).toBe(BASE + 1024);
    expect(a.freeBlocks()).toEqual([]);
    a.release(x, 1024);
    expect(a.top).toBe(BASE);
    expect(a.highWater).toBe(BASE + 1024 + 2048 + 4096);
  });

  it('tracks fresh (never handed out) bytes across reuse', () => {
    const { arena: a } = arena();
    const ptr = a.alloc(1024);
    expect(a.dirtyEnd(ptr, ptr + 1024)).toBe(ptr); // fresh memory: nothing stale
    a.release(ptr, 1024);
    const again = a.alloc(2048);
    expect(again).toBe(ptr);
    expect(a.dirtyEnd(again, again + 2048)).toBe(ptr + 1024); // only the first KiB was used before
  });

  it('leaves the arena unchanged when growing fails', () => {
    const { arena: a } = arena(BASE + 10_000);
    const x = a.alloc(4096);
    expect(() => a.alloc(8192)).toThrow(/past the limit/);
    expect(a.top).toBe(BASE + 4096);
    a.release(x, 4096);
    expect(a.top).toBe(BASE);
    expect(a.alloc(8192)).toBe(BASE);
  });
});

describe('WASM backend on the coalescing arena', () => {
  const backendPromise = createWasmBackend({ threads: 1 });
  afterAll(async () => (await backendPromise).destroy());

  it('zeroes recycled bytes of a big freed storage reused by smaller ones of another size', async () => {
    const backend = await backendPromise;
    const big = backend.upload('float32', new Float32Array(100_000).fill(7));
    const guard = backend.upload('float32', [1]);
    backend.free(big);
    const parts = [backend.alloc('float32', 30_001), backend.alloc('int32', 12_345), backend.alloc('float32', 777)];
    for (const part of parts) expect((await backend.read(part)).every((v) => v === 0)).toBe(true);
    // They were carved out of the freed block, not appended above the guard.
    const high = (backend.describe() as { arenaHighWaterBytes: number }).arenaHighWaterBytes;
    const extra = backend.upload('float32', [2]);
    expect((backend.describe() as { arenaHighWaterBytes: number }).arenaHighWaterBytes).toBe(high);
    for (const s of [...parts, guard, extra]) backend.free(s);
  });

  it('returns the address space of a step: the same sequence run twice does not grow it', async () => {
    const backend = await backendPromise;
    const rng = new SeededRandom(9);
    const sizes = Array.from({ length: 200 }, () => 1 + Math.floor(rng.next() * 50_000));
    const run = () => {
      const held = sizes.map((n) => backend.alloc('float32', n));
      for (let i = 0; i < held.length; i += 2) backend.free(held[i]);
      const second = sizes.slice(0, 50).map((n) => backend.alloc('float32', Math.ceil(n / 3)));
      for (const s of [...second, ...held.filter((_, i) => i % 2 === 1)]) backend.free(s);
    };
    run();
    const after = (backend.describe() as { arenaHighWaterBytes: number }).arenaHighWaterBytes;
    run();
    expect((backend.describe() as { arenaHighWaterBytes: number }).arenaHighWaterBytes).toBe(after);
  });
});
