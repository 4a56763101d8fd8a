import { describe, expect, it } from 'vitest';
import {
  Kernel,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  remapPartial,
} from '../src/index.js';

const MiB = 2 ** 20;

describe('a remap that needs more page tables than the undo log has entries', () => {
  it('maps 520 MiB at once (130 new page tables), all of it, and leaves the thread able to go on', () => {
    const k = Kernel.boot({ memoryBytes: 600 * MiB });
    const boot = k.stats().freeFrames;
    const bytes = 520 * MiB; // 130 page tables of 4 MiB each
    // one page more, mapped from its second page: the frames sit one page off every 4 MiB
    // boundary of the user range, so no huge entry can stand in for a table
    const kaddr = k.vmallocUser(bytes + PAGE_SIZE)!;
    expect(kaddr).not.toBeNull();
    const mm = k.createAddressSpace()!;
    const uaddr = mm.mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_SHARED);
    expect(remapPartial(mm.findVma(uaddr)!, uaddr, kaddr + PAGE_SIZE, bytes)).toBe(0);
    expect(k.stats().pageTableFrames).toBe(1 + bytes / (4 * MiB));
    const ptes = mm.pagemap();
    expect(ptes).toHaveLength(bytes / PAGE_SIZE);
    // the thread's next calls work: nothing was left half logged
    const other = k.createAddressSpace();
    expect(other).not.toBeNull();
    expect(mm.munmap(uaddr, bytes)).toBe(0);
    k.checkInvariants();
    other!.destroy();
    mm.destroy();
    k.vfree(kaddr);
    expect(k.stats().freeFrames).toBe(boot);
  });
});
