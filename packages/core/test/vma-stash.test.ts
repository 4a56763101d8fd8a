/**
 * Each thread keeps up to VMA_STASH_SLOTS freed VMA slots for its own next mmap (no shared word
 * touched); the slots go back to the shared pool when the thread detaches or is reaped, and a
 * thread that finds the pool empty takes them out of other threads' stashes.
 */
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { Kernel, MAP_SHARED, PAGE_SIZE, PROT_READ } from '../src/index.js';
import { Hdr, Thread, VMA_STASH_SLOTS } from '../src/layout.js';
import { threadWord } from '../src/thread.js';

const MiB = 2 ** 20;

/** Slots on the shared pool's free list. */
function poolSlots(k: Kernel): number {
  return k.mem.layout.maxVmas - Atomics.load(k.mem.i32, Hdr.NR_VMAS);
}

/** Slots in thread slot `t`'s stash. */
function stashed(k: Kernel, t: number): number {
  let n = 0;
  for (let i = 0; i < VMA_STASH_SLOTS; i++)
    if (Atomics.load(k.mem.i32, threadWord(k.mem, t, Thread.VMA_STASH) + i) !== 0) n++;
  return n;
}

/** Map `n` one-page VMAs into `mm` and return their addresses (every one must succeed). */
function mapPages(mm: NonNullable<ReturnType<Kernel['createAddressSpace']>>, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const a = mm.mmap(0, PAGE_SIZE, PROT_READ, MAP_SHARED);
    expect(a).toBeGreaterThan(0);
    out.push(a);
  }
  return out;
}

async function runWorker(k: Kernel, n: number, detach: boolean) {
  const ctl = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(new URL('./fixtures/vma-stash-worker.mjs', import.meta.url), {
    workerData: { handle: k.handle, n, ctl },
  });
  // listened for from the start: a worker that exits before its last message is handled has its
  // messages drained and 'exit' emitted in one go
  const exited = new Promise((resolve) => worker.once('exit', resolve));
  const messages: string[] = [];
  const next = () =>
    new Promise<string>((resolve, reject) => {
      worker.once('message', (m: string) => {
        messages.push(m);
        resolve(m);
      });
      worker.once('error', reject);
    });
  expect(await next()).toBe('unmapped');
  return {
    worker,
    finish: async () => {
      Atomics.store(ctl, 0, detach ? 1 : 2);
      Atomics.notify(ctl, 0);
      expect(await next()).toBe('done');
      await exited;
    },
  };
}

describe('the per-thread VMA stash', () => {
  it('serves an mmap from the slots its own munmap freed, and keeps at most VMA_STASH_SLOTS', () => {
    const k = Kernel.boot({ memoryBytes: 16 * MiB, maxVmas: 64 });
    const mm = k.createAddressSpace()!;
    const stashLen = () => stashed(k, k.mem.current.slot);
    const pool = poolSlots(k);
    const addrs = mapPages(mm, 12);
    expect(poolSlots(k)).toBe(pool - 12);
    for (const a of addrs) expect(mm.munmap(a, PAGE_SIZE)).toBe(0);
    expect(stashLen()).toBe(VMA_STASH_SLOTS);
    expect(poolSlots(k)).toBe(pool - VMA_STASH_SLOTS); // the rest went back to the pool
    k.checkInvariants();
    // the next VMAs come from the stash: the pool is not touched
    const again = mapPages(mm, VMA_STASH_SLOTS);
    expect(stashLen()).toBe(0);
    expect(poolSlots(k)).toBe(pool - VMA_STASH_SLOTS);
    k.checkInvariants();
    for (const a of again) mm.munmap(a, PAGE_SIZE);
    // every slot can still be had: 64 VMAs in one address space
    const all = mapPages(mm, 64);
    expect(mm.mmap(0, PAGE_SIZE, PROT_READ, MAP_SHARED)).toBe(-12); // -ENOMEM
    for (const a of all) mm.munmap(a, PAGE_SIZE);
    k.checkInvariants();
  });

  it('gives a thread stash back to the pool when the thread detaches', async () => {
    const k = Kernel.boot({ memoryBytes: 16 * MiB, maxVmas: 64 });
    const pool = poolSlots(k);
    const w = await runWorker(k, 5, true);
    expect(poolSlots(k)).toBe(pool - 5); // kept by the worker
    k.checkInvariants();
    await w.finish();
    expect(poolSlots(k)).toBe(pool);
    k.checkInvariants();
  });

  it('gives a dead thread stash back to the pool when the thread is reaped', async () => {
    const k = Kernel.boot({ memoryBytes: 16 * MiB, maxVmas: 64 });
    const pool = poolSlots(k);
    const w = await runWorker(k, 3, false);
    const { threadId } = w.worker;
    await w.finish(); // exits still attached
    expect(poolSlots(k)).toBe(pool - 3);
    expect(k.reapThread({ threadId })).toBe(1);
    expect(poolSlots(k)).toBe(pool);
    let total = 0;
    for (let t = 0; t < k.mem.layout.maxThreads; t++) total += stashed(k, t);
    expect(total).toBe(0);
    k.checkInvariants();
    // and a live thread's stash survives a recovery of another thread
    const mm = k.createAddressSpace()!;
    for (const a of mapPages(mm, 2)) mm.munmap(a, PAGE_SIZE);
    const w2 = await runWorker(k, 1, false);
    const id2 = w2.worker.threadId; // -1 once the worker has exited
    await w2.finish();
    expect(k.reapThread({ threadId: id2 })).toBe(1);
    expect(stashed(k, k.mem.current.slot)).toBe(2);
    k.checkInvariants();
  });

  it('lets a thread that finds the pool empty take the slots other threads keep', async () => {
    const k = Kernel.boot({ memoryBytes: 16 * MiB, maxVmas: 16 });
    const w = await runWorker(k, VMA_STASH_SLOTS, true);
    expect(poolSlots(k)).toBe(16 - VMA_STASH_SLOTS); // the worker keeps 8 of the 16
    const mm = k.createAddressSpace()!;
    const all = mapPages(mm, 16); // 8 from the pool, 8 out of the worker's stash
    expect(mm.mmap(0, PAGE_SIZE, PROT_READ, MAP_SHARED)).toBe(-12);
    let total = 0;
    for (let t = 0; t < k.mem.layout.maxThreads; t++) total += stashed(k, t);
    expect(total).toBe(0);
    k.checkInvariants();
    for (const a of all) expect(mm.munmap(a, PAGE_SIZE)).toBe(0);
    await w.finish(); // the worker detaches with an empty stash
    k.checkInvariants();
    expect(poolSlots(k) + stashed(k, k.mem.current.slot)).toBe(16);
  });
});
