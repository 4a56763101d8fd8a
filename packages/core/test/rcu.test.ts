import { describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import {
  Kernel,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  remapPartial,
} from '../src/index.js';
import { Mm, Thread, ThreadState } from '../src/layout.js';
import { spinLock } from '../src/lock.js';
import { mmWord } from '../src/mm.js';
import { threadWord } from '../src/thread.js';

const MiB = 2 ** 20;
const PAGES = 16;

/** A kernel with one mapped area filled with `pattern`. */
function setup(pattern: number): {
  k: Kernel;
  kaddr: number;
  uaddr: number;
  mmId: number;
  boot: number;
} {
  const k = Kernel.boot({ memoryBytes: 8 * MiB });
  const boot = k.stats().freeFrames;
  const kaddr = k.vmallocUser(PAGES * PAGE_SIZE)!;
  k.writeKernel(kaddr, new Uint8Array(PAGES * PAGE_SIZE).fill(pattern));
  const mm = k.createAddressSpace()!;
  const uaddr = mm.mmap(0, PAGES * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED);
  expect(remapPartial(mm.findVma(uaddr)!, uaddr, kaddr, PAGES * PAGE_SIZE)).toBe(0);
  return { k, kaddr, uaddr, mmId: mm.id, boot };
}

function waitFor(ctl: Int32Array, value: number): void {
  // a worker that failed never moves on: fail (within the test's time), not block the process
  const deadline = Date.now() + 20_000;
  for (;;) {
    const v = Atomics.load(ctl, 0);
    if (v === value) return;
    if (Date.now() > deadline) throw new Error(`ctl[0] stuck at ${v}, waiting for ${value}`);
    Atomics.wait(ctl, 0, v, 50);
  }
}

function signal(ctl: Int32Array, value: number): void {
  Atomics.store(ctl, 0, value);
  Atomics.notify(ctl, 0);
}

function startReader(
  k: Kernel,
  s: ReturnType<typeof setup>,
  pattern: number,
  die = false,
): { w: Worker; ctl: Int32Array; exited: Promise<number> } {
  const ctl = new Int32Array(new SharedArrayBuffer(8));
  const w = new Worker(new URL('./fixtures/rcu-reader.mjs', import.meta.url), {
    workerData: {
      handle: k.handle,
      mmId: s.mmId,
      uaddr: s.uaddr,
      length: PAGES * PAGE_SIZE,
      ctl,
      pattern,
      die,
    },
  });
  const exited = new Promise<number>((resolve, reject) => {
    w.once('error', reject);
    w.once('exit', resolve);
  });
  return { w, ctl, exited };
}

describe('read sections and grace periods', () => {
  it('free released frames at once for a thread working alone', () => {
    const s = setup(7);
    const { k } = s;
    const mm = k.addressSpace(s.mmId);
    k.vfree(s.kaddr);
    expect(mm.munmap(s.uaddr, PAGES * PAGE_SIZE)).toBe(0);
    expect(k.stats().deferredFrames).toBe(0);
    mm.destroy();
    expect(k.stats().freeFrames).toBe(s.boot);
    k.checkInvariants();
  });

  it("a thread's own section does not hold back what it releases", () => {
    const s = setup(7);
    const { k } = s;
    k.readSection(() => {
      k.vfree(s.kaddr);
      k.addressSpace(s.mmId).destroy();
      expect(k.stats().deferredFrames).toBe(0);
    });
    expect(k.stats().freeFrames).toBe(s.boot);
  });

  it("hold frames released under a reader's view until its section ends, and never reuse them meanwhile", async () => {
    const s = setup(0x5a);
    const { k } = s;
    const reader = startReader(k, s, 0x5a);
    waitFor(reader.ctl, 1);
    // the main thread unmaps and frees while the reader still holds views of the frames
    const pfns = Array.from({ length: PAGES }, (_, i) => k.vmallocToPfn(s.kaddr + i * PAGE_SIZE)!);
    k.vfree(s.kaddr);
    expect(k.addressSpace(s.mmId).munmap(s.uaddr, PAGES * PAGE_SIZE)).toBe(0);
    expect(k.stats().deferredFrames).toBe(PAGES);
    // a new owner takes every free frame and scribbles on it: none of it is the reader's
    const free = k.stats().freeFrames;
    const grab = k.vmalloc(free * PAGE_SIZE)!;
    expect(grab).not.toBeNull();
    k.writeKernel(grab, new Uint8Array(free * PAGE_SIZE).fill(0xee));
    for (let i = 0; i < free; i++) expect(pfns).not.toContain(k.vmallocToPfn(grab + i * PAGE_SIZE));
    expect(k.vmalloc(PAGE_SIZE)).toBeNull(); // the deferred frames are not free
    signal(reader.ctl, 2);
    waitFor(reader.ctl, 3);
    expect(Atomics.load(reader.ctl, 1)).toBe(0); // the reader's view was never corrupted
    signal(reader.ctl, 5); // leave the section
    waitFor(reader.ctl, 4);
    await reader.exited;
    expect(k.stats().deferredFrames).toBe(0);
    k.vfree(grab);
    k.addressSpace(s.mmId).destroy();
    expect(k.stats().freeFrames).toBe(s.boot);
    k.checkInvariants();
  });

  it('a section that begins after a release does not hold it back', () => {
    const s = setup(1);
    const { k } = s;
    const other = Kernel.attach(k.handle);
    k.vfree(s.kaddr);
    k.addressSpace(s.mmId).destroy();
    other.rcuReadLock();
    expect(k.stats().deferredFrames).toBe(0);
    expect(k.stats().freeFrames).toBe(s.boot);
    other.rcuReadUnlock();
    other.detach();
    k.checkInvariants();
  });

  it('releases deferred frames when a thread that died inside a section is reaped', async () => {
    const s = setup(3);
    const { k } = s;
    const reader = startReader(k, s, 3, true);
    waitFor(reader.ctl, 1);
    k.vfree(s.kaddr);
    k.addressSpace(s.mmId).destroy();
    expect(k.stats().deferredFrames).toBeGreaterThanOrEqual(PAGES);
    const threadId = reader.w.threadId;
    await reader.w.terminate();
    expect(k.stats().deferredFrames).toBeGreaterThanOrEqual(PAGES); // still held: nobody knows yet
    expect(k.reapThread({ threadId })).toBe(1);
    expect(k.stats().deferredFrames).toBe(0);
    expect(k.stats().freeFrames).toBe(s.boot);
    k.checkInvariants();
  });

  it('recovery from a thread that died inside destroy of orphan pages defers them while another thread reads them', () => {
    const s = setup(0x6b);
    const { k } = s;
    k.vfree(s.kaddr); // the pages live on through the mapping alone (orphans)
    const reader = Kernel.attach(k.handle);
    reader.rcuReadLock();
    const views = reader.addressSpace(s.mmId).segments(s.uaddr, PAGES * PAGE_SIZE);
    // another attachment dies inside mm.destroy(): it holds the mmap_lock and has bumped the
    // generation (destroy's first step), and has not zapped a PTE yet
    const dying = Kernel.attach(k.handle);
    const { mem } = dying;
    const slot = s.mmId - 1;
    Atomics.store(mem.i32, threadWord(mem, mem.current.slot, Thread.STATE), ThreadState.IN);
    spinLock(mem, mmWord(mem, slot, Mm.LOCK));
    Atomics.add(mem.i32, mmWord(mem, slot, Mm.GEN), 1);
    expect(k.reapThread({ tid: dying.tid })).toBe(1);
    // the orphan pages (and the page directory and table a walker may be reading) are released
    // through the grace period, not freed under the reader's views
    expect(k.stats().deferredFrames).toBe(PAGES + 2);
    const free = k.stats().freeFrames;
    const grab = k.vmalloc(free * PAGE_SIZE)!;
    k.writeKernel(grab, new Uint8Array(free * PAGE_SIZE).fill(0xee));
    for (const v of views) expect(v.every((b) => b === 0x6b)).toBe(true);
    k.checkInvariants();
    reader.rcuReadUnlock(); // the last reader out frees them
    expect(k.stats().deferredFrames).toBe(0);
    k.vfree(grab);
    reader.detach();
    expect(k.stats().freeFrames).toBe(s.boot);
    k.checkInvariants();
  });

  it('sections nest, and leaving one that is not open throws', () => {
    const k = Kernel.boot({ memoryBytes: 4 * MiB });
    k.rcuReadLock();
    k.rcuReadLock();
    k.rcuReadUnlock();
    k.rcuReadUnlock();
    expect(() => {
      k.rcuReadUnlock();
    }).toThrow(/no read section/);
    expect(k.readSection(() => 42)).toBe(42);
    k.checkInvariants();
  });
});
