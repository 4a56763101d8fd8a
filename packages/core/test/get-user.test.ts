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
    while (Atomics.load(ctl, 0) !== 1) Atomics.wait(ctl, 0, 0, 1000); // the worker has cached it
    expect(mm.munmap(uaddr, 8 * PAGE_SIZE)).toBe(0);
    Atomics.store(ctl, 0, 2);
    Atomics.notify(ctl, 0);
    expect(await result).toBe('SEGV_MAPERR');
    k.checkInvariants();
  });
});
