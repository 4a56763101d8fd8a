import { describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import { Kernel } from '../src/index.js';
import {
  allocFrame,
  allocFrames,
  frameInUse,
  frameRefcount,
  getFrame,
  ownerTag,
  putFrame,
} from '../src/frame-alloc.js';
import { FrameKind } from '../src/layout.js';

const MiB = 2 ** 20;
const OWNER = ownerTag(FrameKind.VMALLOC, 0);

describe('the frame allocator', () => {
  it('hands out each free frame once, then reports exhaustion, and takes every frame back', () => {
    const k = Kernel.boot({ memoryBytes: 4 * MiB });
    const { mem } = k;
    const free = k.stats().freeFrames;
    const seen = new Set<number>();
    for (let i = 0; i < free; i++) {
      const pfn = allocFrame(mem, OWNER);
      expect(pfn).toBeGreaterThanOrEqual(k.stats().metadataFrames);
      expect(seen.has(pfn)).toBe(false);
      seen.add(pfn);
    }
    expect(allocFrame(mem, OWNER)).toBe(-1);
    expect(k.stats().freeFrames).toBe(0);
    for (const pfn of seen) putFrame(mem, pfn);
    expect(k.stats().freeFrames).toBe(free);
    k.checkInvariants();
  });

  it('prefers physically contiguous runs and takes nothing when it cannot take all', () => {
    const k = Kernel.boot({ memoryBytes: 4 * MiB });
    const { mem } = k;
    const out = new Int32Array(100);
    expect(allocFrames(mem, 100, OWNER, out)).toBe(true);
    for (let i = 1; i < 100; i++) expect(out[i]).toBe(out[i - 1]! + 1);
    const free = k.stats().freeFrames;
    expect(allocFrames(mem, free + 1, OWNER, new Int32Array(free + 1))).toBe(false);
    expect(k.stats().freeFrames).toBe(free);
    for (const pfn of out) putFrame(mem, pfn);
    k.checkInvariants();
  });

  it('frees a frame only when its last reference is dropped', () => {
    const k = Kernel.boot({ memoryBytes: 4 * MiB });
    const { mem } = k;
    const free = k.stats().freeFrames;
    const pfn = allocFrame(mem, OWNER);
    getFrame(mem, pfn);
    expect(frameRefcount(mem, pfn)).toBe(2);
    putFrame(mem, pfn);
    expect(frameInUse(mem, pfn)).toBe(true);
    expect(k.stats().freeFrames).toBe(free - 1);
    putFrame(mem, pfn);
    expect(frameInUse(mem, pfn)).toBe(false);
    expect(k.stats().freeFrames).toBe(free);
    expect(() => {
      putFrame(mem, pfn);
    }).toThrow(/no reference/);
  });

  it('never gives one frame to two threads at once, and every frame comes back', async () => {
    const threads = 4;
    const k = Kernel.boot({ memoryBytes: 8 * MiB });
    const free = k.stats().freeFrames;
    // claims[pfn] = thread id + 1 while a thread holds the frame; a CAS failure is a double grant
    const claims = new Int32Array(new SharedArrayBuffer(k.stats().totalFrames * 4));
    const start = new Int32Array(new SharedArrayBuffer(4));
    const results = Promise.all(
      Array.from(
        { length: threads },
        (_, id) =>
          new Promise<{ taken: number; doubles: number }>((resolve, reject) => {
            const w = new Worker(new URL('./fixtures/frame-alloc-worker.mjs', import.meta.url), {
              workerData: { handle: k.handle, id, claims, start, rounds: 20, batch: 64 },
            });
            w.once('message', resolve);
            w.once('error', reject);
          }),
      ),
    );
    Atomics.store(start, 0, 1);
    Atomics.notify(start, 0);
    const out = await results;
    expect(out.reduce((n, r) => n + r.doubles, 0)).toBe(0);
    expect(out.reduce((n, r) => n + r.taken, 0)).toBeGreaterThan(threads * 20);
    expect(k.stats().freeFrames).toBe(free);
    k.checkInvariants();
  });
});
