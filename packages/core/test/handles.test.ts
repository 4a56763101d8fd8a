/**
 * Handles print small: `JSON.stringify` and `util.inspect` of a kernel, an address space, a VMA
 * (whose own fields reach all of physical memory) give a few fields, not the memory. And a
 * destroyed address space says so when it faults.
 */
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Kernel, MAP_SHARED, PAGE_SIZE, PROT_READ, SegmentationFault } from '../src/index.js';

const MiB = 2 ** 20;

describe('handles', () => {
  it('serialize and inspect as a few fields, whatever the size of memory', () => {
    const k = Kernel.boot({ memoryBytes: 64 * MiB });
    const mm = k.createAddressSpace()!;
    const uaddr = mm.mmap(0, PAGE_SIZE, PROT_READ, MAP_SHARED);
    const vma = mm.findVma(uaddr)!;
    for (const handle of [k, mm, vma, k.mem]) {
      expect(JSON.stringify(handle).length).toBeLessThan(200);
      expect(inspect(handle, { depth: 10 }).length).toBeLessThan(200);
    }
    expect(JSON.parse(JSON.stringify({ k, mm, vma }))).toEqual({
      k: { type: 'Kernel', totalFrames: k.stats().totalFrames, tid: k.tid, attached: true },
      mm: { type: 'AddressSpace', id: mm.id, live: true },
      vma: { type: 'Vma', live: true, start: uaddr, end: uaddr + PAGE_SIZE, prot: PROT_READ },
    });
    mm.destroy();
    expect(JSON.parse(JSON.stringify({ mm, vma }))).toEqual({
      mm: { type: 'AddressSpace', id: mm.id, live: false },
      vma: { type: 'Vma', live: false },
    });
    k.detach();
    expect(JSON.parse(JSON.stringify(k))).toMatchObject({ attached: false });
  });

  it('fault through a destroyed address space with a message that says it was destroyed', () => {
    const k = Kernel.boot({ memoryBytes: 8 * MiB });
    const mm = k.createAddressSpace()!;
    const uaddr = mm.mmap(0, PAGE_SIZE, PROT_READ, MAP_SHARED);
    mm.destroy();
    for (const touch of [
      () => mm.read(uaddr, 1),
      () => mm.segments(uaddr, 1),
      () => mm.getUser32(uaddr),
    ]) {
      let error: unknown;
      try {
        touch();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(SegmentationFault);
      expect((error as SegmentationFault).code).toBe('SEGV_MAPERR');
      expect((error as Error).message).toMatch(
        /at 0x[0-9a-f]+ has no mapping \(the address space was destroyed\)/,
      );
    }
  });
});
