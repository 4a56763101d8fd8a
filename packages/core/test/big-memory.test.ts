import { describe, expect, it } from 'vitest';
import {
  FRAME_FREE,
  Kernel,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  remapPartial,
} from '../src/index.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

/** True where one typed array can span 12 GiB (Node.js 22 and later). */
function runtimeSpans(bytes: number): boolean {
  try {
    new Uint8Array(new SharedArrayBuffer(bytes), 0, bytes);
    return true;
  } catch {
    return false;
  }
}

describe('physical memory above 8 GiB (pfns, PTEs and word indexes past 32 bits)', () => {
  const big = runtimeSpans(12 * GiB);

  // Node 20 cannot make the typed arrays: there the boot error must say why and what fits
  it('maps, reads and writes frames above 8 GiB through every accessor (or names the runtime limit)', () => {
    if (!big) {
      expect(() => Kernel.boot({ memoryBytes: 12 * GiB })).toThrow(
        /typed arrays can span: one Uint8Array holds at most \d+ bytes here .* largest bootable size/,
      );
      return;
    }
    const k = Kernel.boot({ memoryBytes: 12 * GiB });
    const boot = k.stats();
    // take the frames below 8 GiB (plain vmalloc: no zeroing, nothing touched)
    const lowFree = (): number => {
      const kinds = k.frameSnapshot().kinds;
      let n = 0;
      for (let pfn = 0; pfn < (8 * GiB) / PAGE_SIZE; pfn++) if (kinds[pfn] === FRAME_FREE) n++;
      return n;
    };
    // in areas too small for a large run: those take the lowest frames first (large runs come
    // from the top of memory, so they are not used to fill the bottom)
    const low: number[] = [];
    for (let n = lowFree(); n > 0; n -= 1000) low.push(k.vmalloc(Math.min(n, 1000) * PAGE_SIZE)!);
    expect(lowFree()).toBe(0);
    expect(low).not.toContain(null);
    const mm = k.createAddressSpace()!; // its page directory comes from above 8 GiB too
    const check = (bytes: number): void => {
      const kaddr = k.vmallocUser(bytes)!;
      expect(k.vmallocToPfn(kaddr)! * PAGE_SIZE).toBeGreaterThanOrEqual(8 * GiB);
      const uaddr = mm.mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_SHARED);
      expect(remapPartial(mm.findVma(uaddr)!, uaddr, kaddr, bytes)).toBe(0);
      const last = uaddr + bytes - 4;
      mm.putUser32(last, 0x12345678);
      expect(mm.getUser32(last)).toBe(0x12345678);
      expect(mm.getUser32(last)).toBe(0x12345678); // through the translation cache
      expect([...mm.getUser32v([uaddr, last])]).toEqual([0, 0x12345678]);
      mm.write(uaddr, new Uint8Array([1, 2, 3]));
      expect([...mm.read(uaddr, 3)]).toEqual([1, 2, 3]);
      const views = mm.segments(uaddr, bytes);
      expect(views.reduce((n, v) => n + v.length, 0)).toBe(bytes);
      expect(views[0]![0]).toBe(1);
      expect([...k.readKernel(kaddr + bytes - 4, 4)]).toEqual([0x78, 0x56, 0x34, 0x12]);
      expect(mm.munmap(uaddr, bytes)).toBe(0);
      k.vfree(kaddr);
    };
    check(16 * PAGE_SIZE); // page-table entries
    check(8 * MiB); // huge entries
    mm.destroy();
    for (const kaddr of low) k.vfree(kaddr);
    expect(k.stats().freeFrames).toBe(boot.freeFrames);
    k.checkInvariants();
    // 20-22 s on the CI machine; 76 s once beside another run of it and two CPU-bound processes
  }, 240_000);
});
