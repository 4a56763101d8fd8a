import { describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import {
  Kernel,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  remapPartial,
  SegmentationFault,
} from '../src/index.js';
import { Mm, MM_WORDS } from '../src/layout.js';

const MiB = 2 ** 20;
const RW = PROT_READ | PROT_WRITE;

function mapped(pages: number): {
  k: Kernel;
  kaddr: number;
  uaddr: number;
  mm: ReturnType<Kernel['addressSpace']>;
} {
  const k = Kernel.boot({ memoryBytes: 16 * MiB });
  const kaddr = k.vmallocUser(pages * PAGE_SIZE)!;
  const mm = k.createAddressSpace()!;
  const uaddr = mm.mmap(0, pages * PAGE_SIZE, RW, MAP_SHARED);
  expect(remapPartial(mm.findVma(uaddr)!, uaddr, kaddr, pages * PAGE_SIZE)).toBe(0);
  return { k, kaddr, uaddr, mm };
}

function fault(fn: () => unknown): SegmentationFault {
  try {
    fn();
  } catch (e) {
    if (e instanceof SegmentationFault) return e;
    throw e;
  }
  throw new Error('no fault');
}

describe('getUser32 and putUser32', () => {
  it('read and write aligned words of the frames, as readKernel sees them', () => {
    const { k, kaddr, uaddr, mm } = mapped(4);
    mm.putUser32(uaddr + PAGE_SIZE + 8, -123456);
    expect(mm.getUser32(uaddr + PAGE_SIZE + 8)).toBe(-123456);
    expect(new DataView(k.readKernel(kaddr + PAGE_SIZE + 8, 4).buffer).getInt32(0, true)).toBe(
      -123456,
    );
    k.writeKernel(kaddr + 3 * PAGE_SIZE, Uint8Array.of(1, 2, 3, 4));
    expect(mm.getUser32(uaddr + 3 * PAGE_SIZE)).toBe(0x04030201);
    k.checkInvariants();
  });

  it('see a word changed by another mapping at once (the cache holds translations, not data)', () => {
    const { k, kaddr, uaddr, mm } = mapped(2);
    expect(mm.getUser32(uaddr)).toBe(0);
    k.writeKernel(kaddr, Uint8Array.of(9, 0, 0, 0));
    expect(mm.getUser32(uaddr)).toBe(9);
  });

  it('fault after munmap, mprotect and destroy even when the translation was cached', () => {
    const { k, uaddr, mm } = mapped(4);
    for (let i = 0; i < 4; i++) mm.getUser32(uaddr + i * PAGE_SIZE); // fill the cache
    expect(mm.munmap(uaddr, PAGE_SIZE)).toBe(0);
    expect(fault(() => mm.getUser32(uaddr))).toMatchObject({ code: 'SEGV_MAPERR', address: uaddr });
    expect(mm.mprotect(uaddr + PAGE_SIZE, PAGE_SIZE, PROT_NONE)).toBe(0);
    expect(fault(() => mm.getUser32(uaddr + PAGE_SIZE))).toMatchObject({ code: 'SEGV_ACCERR' });
    expect(mm.mprotect(uaddr + 2 * PAGE_SIZE, PAGE_SIZE, PROT_READ)).toBe(0);
    expect(mm.getUser32(uaddr + 2 * PAGE_SIZE)).toBe(0);
    const denied = fault(() => {
      mm.putUser32(uaddr + 2 * PAGE_SIZE, 1);
    });
    expect(denied).toMatchObject({ code: 'SEGV_ACCERR' });
    const other = k.addressSpace(mm.id);
    other.getUser32(uaddr + 3 * PAGE_SIZE);
    mm.destroy();
    expect(fault(() => other.getUser32(uaddr + 3 * PAGE_SIZE))).toMatchObject({
      code: 'SEGV_MAPERR',
    });
    // a new address space in the same slot is not reachable through the old handle's cache
    const again = k.createAddressSpace()!;
    expect(again.id).toBe(mm.id);
    const kaddr2 = k.vmallocUser(PAGE_SIZE)!;
    const u2 = again.mmap(uaddr + 3 * PAGE_SIZE, PAGE_SIZE, RW, MAP_SHARED | 0x10);
    expect(remapPartial(again.findVma(u2)!, u2, kaddr2, PAGE_SIZE)).toBe(0);
    expect(fault(() => other.getUser32(u2))).toMatchObject({ code: 'SEGV_MAPERR' });
    k.checkInvariants();
  });

  it('getUser32v reads many words as getUser32 does, through 4 KiB and huge entries alike', () => {
    const k = Kernel.boot({ memoryBytes: 32 * MiB });
    const kaddr = k.vmallocUser(8 * MiB)!;
    const words = new Int32Array(2 * MiB);
    for (let w = 0; w < words.length; w++) words[w] = (w * 2654435761) | 0;
    k.writeKernel(kaddr, new Uint8Array(words.buffer));
    const mm = k.createAddressSpace()!;
    const huge = mm.mmap(0, 8 * MiB, RW, MAP_SHARED); // aligned: two huge entries
    expect(remapPartial(mm.findVma(huge)!, huge, kaddr, 8 * MiB)).toBe(0);
    const flat = mm.mmap(0x1000_1000, 4 * MiB, PROT_READ, MAP_SHARED | 0x10); // page tables
    expect(remapPartial(mm.findVma(flat)!, flat, kaddr + 4 * MiB, 4 * MiB)).toBe(0);
    const picks = Array.from({ length: 3000 }, (_, i) => ((i * 7919) % (2 * MiB)) * 4);
    const uaddrs = picks.map((off) => (off < 4 * MiB ? huge + off : flat + off - 4 * MiB));
    const want = picks.map((off) => words[off / 4]);
    // twice: the first pass fills the cache, the second reads through it
    expect([...mm.getUser32v(uaddrs)]).toEqual(want);
    expect([...mm.getUser32v(Float64Array.from(uaddrs))]).toEqual(want);
    expect(uaddrs.map((a) => mm.getUser32(a))).toEqual(want);
    // the huge-mapped half, read through the other mapping's words too
    const out = new Int32Array(uaddrs.length + 5).fill(7);
    expect(mm.getUser32v(uaddrs, out)).toBe(out);
    expect([...out.subarray(0, uaddrs.length)]).toEqual(want);
    expect([...out.subarray(uaddrs.length)]).toEqual([7, 7, 7, 7, 7]);
    expect(mm.getUser32v([]).length).toBe(0);
    // a word changed through the kernel mapping is seen at once: the cache holds translations
    k.writeKernel(kaddr + 4096, Uint8Array.of(5, 0, 0, 0));
    expect([...mm.getUser32v([huge + 4096, flat - 4 * MiB + 4 * MiB])]).toEqual([5, words[MiB]]);
    k.checkInvariants();
  });

  it('getUser32v faults at the first bad word after a munmap or split, keeping the words before', () => {
    const k = Kernel.boot({ memoryBytes: 32 * MiB });
    const kaddr = k.vmallocUser(4 * MiB)!;
    k.writeKernel(kaddr + 8 * PAGE_SIZE, Uint8Array.of(1, 0, 0, 0));
    k.writeKernel(kaddr + 10 * PAGE_SIZE, Uint8Array.of(2, 0, 0, 0));
    const mm = k.createAddressSpace()!;
    const u = mm.mmap(0, 4 * MiB, RW, MAP_SHARED);
    expect(remapPartial(mm.findVma(u)!, u, kaddr, 4 * MiB)).toBe(0);
    const uaddrs = [u + 8 * PAGE_SIZE, u + 9 * PAGE_SIZE, u + 10 * PAGE_SIZE];
    expect([...mm.getUser32v(uaddrs)]).toEqual([1, 0, 2]); // cached as one huge entry
    expect(mm.munmap(u + 9 * PAGE_SIZE, PAGE_SIZE)).toBe(0); // split, then a hole
    const out = new Int32Array(3);
    expect(fault(() => mm.getUser32v(uaddrs, out))).toMatchObject({
      code: 'SEGV_MAPERR',
      address: u + 9 * PAGE_SIZE,
    });
    expect(out[0]).toBe(1);
    expect(mm.mprotect(u + 8 * PAGE_SIZE, PAGE_SIZE, PROT_NONE)).toBe(0);
    expect(fault(() => mm.getUser32v([u + 8 * PAGE_SIZE]))).toMatchObject({ code: 'SEGV_ACCERR' });
    expect(() => mm.getUser32v(5 as unknown as number[])).toThrow(TypeError);
    expect(() => mm.getUser32v([u], new Int32Array(0))).toThrow(RangeError);
    expect(() => mm.getUser32v([u], [0] as unknown as Int32Array)).toThrow(TypeError);
    expect(() => mm.getUser32v([u + 2])).toThrow(RangeError);
    // a cached page does not let a non-integer address through
    expect(() => mm.getUser32v([u + 10 * PAGE_SIZE + 0.5])).toThrow(RangeError);
    expect(() => mm.getUser32(u + 10 * PAGE_SIZE + 0.5)).toThrow(RangeError);
    const both = new Float64Array(1).fill(u + 10 * PAGE_SIZE);
    expect(() => mm.getUser32v(both, new Int32Array(both.buffer))).toThrow(TypeError);
    mm.destroy();
    expect(fault(() => mm.getUser32v([u + 8 * PAGE_SIZE]))).toMatchObject({ code: 'SEGV_MAPERR' });
    k.checkInvariants();
  });

  it('wait out a TLB flush, and name one that never ends (its thread died) instead of hanging', () => {
    const { k, uaddr, mm } = mapped(2);
    const tlbGen = k.mem.mmTable + (mm.id - 1) * MM_WORDS + Mm.TLB_GEN;
    Atomics.add(k.mem.i32, tlbGen, 1); // odd: as if a thread died inside munmap
    const t0 = performance.now();
    expect(() => mm.segments(uaddr, 4)).toThrow(/TLB flush has not ended/);
    expect(() => mm.getUser32(uaddr + PAGE_SIZE)).toThrow(/TLB flush has not ended/);
    // the batch read ends too, with the same error, instead of retrying without end
    expect(() => mm.getUser32v([uaddr, uaddr + PAGE_SIZE])).toThrow(/TLB flush has not ended/);
    expect(performance.now() - t0).toBeGreaterThan(5500); // 2 s each
    Atomics.add(k.mem.i32, tlbGen, 1); // the flush ends (a recovery would do this)
    expect(mm.getUser32(uaddr + PAGE_SIZE)).toBe(0);
    expect([...mm.getUser32v([uaddr, uaddr + PAGE_SIZE])]).toEqual([0, 0]);
    expect(mm.segments(uaddr, 4)).toHaveLength(1);
  });

  it('throw TypeError or RangeError for malformed addresses and values', () => {
    const { uaddr, mm } = mapped(1);
    expect(() => mm.getUser32('0' as unknown as number)).toThrow(TypeError);
    expect(() => mm.getUser32(uaddr + 2)).toThrow(RangeError);
    expect(() => mm.getUser32(-4)).toThrow(RangeError);
    expect(() => mm.getUser32(Number.NaN)).toThrow(RangeError);
    expect(() => {
      mm.putUser32(uaddr, '1' as unknown as number);
    }).toThrow(TypeError);
    expect(fault(() => mm.getUser32(2 ** 32))).toMatchObject({ code: 'SEGV_MAPERR' });
  });

  it("drop another thread's cached translation when this thread unmaps the page", async () => {
    const { k, uaddr, mm } = mapped(8);
    const ctl = new Int32Array(new SharedArrayBuffer(8));
    const w = new Worker(new URL('./fixtures/get-user-worker.mjs', import.meta.url), {
      workerData: { handle: k.handle, mmId: mm.id, uaddr, ctl },
    });
    const result = new Promise<string>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    const deadline = Date.now() + 20_000; // a worker that failed never says so: fail, not hang
    while (Atomics.load(ctl, 0) !== 1) {
      if (Date.now() > deadline) throw new Error('the worker never cached its translation');
      Atomics.wait(ctl, 0, 0, 50); // the worker has cached it
    }
    expect(mm.munmap(uaddr, 8 * PAGE_SIZE)).toBe(0);
    Atomics.store(ctl, 0, 2);
    Atomics.notify(ctl, 0);
    expect(await result).toBe('SEGV_MAPERR');
    k.checkInvariants();
  });
});
