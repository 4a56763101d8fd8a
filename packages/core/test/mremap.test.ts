/**
 * mremap (mm/mremap.c): shrink, grow in place, move carrying PTEs (never data), MREMAP_FIXED,
 * MREMAP_DONTUNMAP, VM_DONTEXPAND, huge entries, all or nothing. Cases ported from the Linux Test
 * Project name the file they come from.
 */
import { describe, expect, it } from 'vitest';
import {
  EFAULT,
  EINVAL,
  ENOMEM,
  EPERM,
  Kernel,
  MAP_FIXED,
  MAP_SHARED,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PAGE_SIZE,
  PROT_READ,
  remapPartial,
  VM_MIXEDMAP,
  type AddressSpace,
} from '../src/index.js';
import {
  areaPfns,
  captureState,
  eatFrames,
  expectBus,
  expectFailsCleanly,
  expectSegv,
  MiB,
  pattern,
  RW,
  setupMapping,
} from './helpers/mm-helpers.js';

const P = PAGE_SIZE;
const SLOT = 4 * MiB;
const MOVE = MREMAP_MAYMOVE;
const FIXED = MREMAP_MAYMOVE | MREMAP_FIXED;

/** The VMAs as `[start, end, prot]` in pages relative to `base`. */
function layout(mm: AddressSpace, base = 0): [number, number, number][] {
  return mm.vmas().map((v) => [(v.start - base) / P, (v.end - base) / P, v.prot]);
}

/** A kernel with an address space, an area of `pages` with a pattern, mapped at `at`. */
function mapped(pages: number, at = 0x1000_0000, memory = 16 * MiB) {
  const k = Kernel.boot({ memoryBytes: memory });
  const mm = k.createAddressSpace()!;
  const kaddr = k.vmallocUser(pages * P)!;
  const data = pattern(pages * P, 3);
  k.writeKernel(kaddr, data);
  expect(mm.mmap(at, pages * P, RW, MAP_SHARED | MAP_FIXED)).toBe(at);
  expect(remapPartial(mm.findVma(at)!, at, kaddr, pages * P)).toBe(0);
  return { k, mm, kaddr, data, at, boot: k.stats() };
}

describe('mremap argument checks (LTP mremap02, mremap03, mremap05)', () => {
  it('refuses bad flags, unaligned addresses, zero lengths and overlaps with -EINVAL, changing nothing', () => {
    const { k, mm, at } = mapped(4);
    const cases: [string, () => number][] = [
      // mremap05.c: MREMAP_FIXED requires MREMAP_MAYMOVE
      ['MREMAP_FIXED alone', () => mm.mremap(at, P, P, MREMAP_FIXED, 0x2000_0000)],
      // mremap05.c: new_addr has to be page aligned
      ['unaligned newAddr', () => mm.mremap(at, P, P, FIXED, 0x2000_0001)],
      // mremap05.c: old/new area must not overlap
      ['overlapping ranges', () => mm.mremap(at, 2 * P, P, FIXED, at + P)],
      // mremap02.c: an unaligned old address
      ['unaligned oldAddr', () => mm.mremap(at + 1, P, 2 * P, MOVE)],
      ['unknown flag', () => mm.mremap(at, P, P, 8)],
      ['newLen 0', () => mm.mremap(at, P, 0, MOVE)],
      ['oldLen 0 (stronger than Linux)', () => mm.mremap(at, 0, P, MOVE)],
      ['DONTUNMAP without MAYMOVE', () => mm.mremap(at, P, P, MREMAP_DONTUNMAP)],
      ['DONTUNMAP with a new length', () => mm.mremap(at, P, 2 * P, MOVE | MREMAP_DONTUNMAP)],
      ['DONTUNMAP of a remapped VMA', () => mm.mremap(at, P, P, MOVE | MREMAP_DONTUNMAP)],
      ['MREMAP_FIXED with no newAddr', () => mm.mremap(at, P, P, FIXED)],
      ['newAddr past the user space', () => mm.mremap(at, P, 2 * P, FIXED, 2 ** 32 - P)],
    ];
    for (const [what, call] of cases) {
      const before = captureState(k);
      expect(call(), what).toBe(-EINVAL);
      expect(captureState(k), what).toEqual(before);
    }
    expectFailsCleanly(k, () => mm.mremap(at, P, P, FIXED, 0), EPERM);
  });

  it('answers -EFAULT where no VMA is, across VMAs, and for growing a remapped VMA', () => {
    // mremap03.c: an old address with no mapping
    const { k, mm, at } = mapped(4);
    expectFailsCleanly(k, () => mm.mremap(0x3000_0000, P, 2 * P, MOVE), EFAULT);
    expect(mm.mmap(at + 4 * P, P, RW, MAP_SHARED | MAP_FIXED)).toBe(at + 4 * P);
    expectFailsCleanly(k, () => mm.mremap(at, 5 * P, 6 * P, MOVE), EFAULT);
    // VM_DONTEXPAND (anything remapped) cannot grow, moving or not
    expectFailsCleanly(k, () => mm.mremap(at, 4 * P, 8 * P, MOVE), EFAULT);
    expectFailsCleanly(k, () => mm.mremap(at, 4 * P, 8 * P, FIXED, 0x2000_0000), EFAULT);
  });
});

describe('mremap without a move', () => {
  it('shrinks by unmapping the tail: its PTEs and references go', () => {
    const { k, mm, at, kaddr } = mapped(4);
    const pfns = areaPfns(k, kaddr, 4) as number[];
    expect(mm.mremap(at, 4 * P, 2 * P + 1, 0)).toBe(at);
    expect(layout(mm, at)).toEqual([[0, 3, RW]]);
    expect(mm.pagemap().map((e) => e.pfn)).toEqual(pfns.slice(0, 3));
    expectSegv(() => mm.read(at + 3 * P, 1), 'SEGV_MAPERR', at + 3 * P);
    expect(k.frameSnapshot().refcounts[pfns[3]!]).toBe(1); // the area's own
    expect(mm.mremap(at, 3 * P, 3 * P, 0)).toBe(at); // the same length: nothing to do
    k.checkInvariants();
  });

  it('grows an empty VMA in place when the room after it is free (LTP mremap01)', () => {
    // mremap01.c: expand a mapping with MREMAP_MAYMOVE
    const k = Kernel.boot({ memoryBytes: 8 * MiB });
    const mm = k.createAddressSpace()!;
    const at = mm.mmap(0x1000_0000, 2 * P, RW, MAP_SHARED | MAP_FIXED);
    const vma = mm.findVma(at)!;
    expect(mm.mremap(at, 2 * P, 6 * P, MOVE)).toBe(at);
    expect([vma.start, vma.end]).toEqual([at, at + 6 * P]);
    expectBus(() => mm.read(at + 5 * P, 1), at + 5 * P);
    k.checkInvariants();
  });

  it('fails with -ENOMEM when the room is taken and it may not move (LTP mremap04)', () => {
    // mremap04.c: expand a mapping without MREMAP_MAYMOVE where it cannot grow
    const k = Kernel.boot({ memoryBytes: 8 * MiB });
    const mm = k.createAddressSpace()!;
    const at = mm.mmap(0x1000_0000, 2 * P, RW, MAP_SHARED | MAP_FIXED);
    expect(mm.mmap(at + 3 * P, P, RW, MAP_SHARED | MAP_FIXED)).toBe(at + 3 * P);
    expectFailsCleanly(k, () => mm.mremap(at, 2 * P, 4 * P, 0), ENOMEM);
    // with MREMAP_MAYMOVE it moves instead
    const moved = mm.mremap(at, 2 * P, 4 * P, MOVE);
    expect(moved).toBeGreaterThan(0);
    expect(moved).not.toBe(at);
    expect(mm.findVma(at)).toBeNull();
    k.checkInvariants();
  });
});

describe('mremap moves', () => {
  it('carries the PTEs: the same frames at the new address, nothing copied (LTP mremap05 #1)', () => {
    const { k, mm, at, kaddr, data } = mapped(4);
    const pfns = areaPfns(k, kaddr, 4) as number[];
    const refsOf = (): number[] => pfns.map((pfn) => k.frameSnapshot().refcounts[pfn]!);
    const refs = refsOf();
    const vma = mm.findVma(at)!;
    const to = 0x2000_0000;
    expect(mm.mremap(at, 4 * P, 4 * P, FIXED, to)).toBe(to);
    expect(mm.pagemap()).toEqual(pfns.map((pfn, i) => ({ uaddr: to + i * P, pfn, prot: RW })));
    expect(refsOf()).toEqual(refs); // a moved PTE is neither a new reference nor a dropped one
    expect(mm.read(to, 4 * P)).toEqual(data);
    expect(mm.segments(to, P)[0]!.byteOffset).toBe(pfns[0]! * P); // views over the same frames
    expectSegv(() => mm.read(at, 1), 'SEGV_MAPERR', at);
    expect(vma.live).toBe(false); // wholly moved: the old handle is stale
    expect(mm.findVma(to)!.flags & VM_MIXEDMAP).toBe(VM_MIXEDMAP); // flags come along
    mm.write(to + 5, Uint8Array.of(9));
    expect(k.readKernel(kaddr + 5, 1)).toEqual(Uint8Array.of(9));
    k.checkInvariants();
  });

  it('replaces what is at newAddr with MREMAP_FIXED (LTP mremap05 #2)', () => {
    const { k, mm, at, kaddr } = mapped(4);
    const other = k.vmallocUser(2 * P)!;
    const to = 0x2000_0000;
    expect(mm.mmap(to - P, 4 * P, PROT_READ, MAP_SHARED | MAP_FIXED)).toBe(to - P);
    expect(remapPartial(mm.findVma(to - P)!, to - P, other, 2 * P)).toBe(0);
    expect(mm.mremap(at + P, 2 * P, 2 * P, FIXED, to)).toBe(to);
    expect(layout(mm, to)).toEqual([
      [(at - to) / P, (at - to) / P + 1, RW],
      [(at - to) / P + 3, (at - to) / P + 4, RW],
      [-1, 0, PROT_READ],
      [0, 2, RW],
      [2, 3, PROT_READ],
    ]);
    expect(mm.pagemap().find((e) => e.uaddr === to)!.pfn).toBe(k.vmallocToPfn(kaddr + P));
    k.checkInvariants();
    mm.destroy();
    k.vfree(kaddr);
    k.vfree(other);
    k.checkInvariants();
  });

  it('shrinks and moves at once, unmapping the tail', () => {
    const { k, mm, at, kaddr } = mapped(4);
    const to = 0x2000_0000;
    expect(mm.mremap(at, 4 * P, 2 * P, FIXED, to)).toBe(to);
    expect(mm.vmas()).toHaveLength(1);
    expect(mm.pagemap().map((e) => e.pfn)).toEqual(areaPfns(k, kaddr, 2));
    expect(k.frameSnapshot().refcounts[k.vmallocToPfn(kaddr + 3 * P)!]).toBe(1);
    k.checkInvariants();
  });

  it('moves an empty VMA with MREMAP_DONTUNMAP, leaving the old VMA in place', () => {
    const k = Kernel.boot({ memoryBytes: 8 * MiB });
    const mm = k.createAddressSpace()!;
    const at = mm.mmap(0x1000_0000, 2 * P, RW, MAP_SHARED | MAP_FIXED);
    const got = mm.mremap(at, 2 * P, 2 * P, MOVE | MREMAP_DONTUNMAP, 0x3000_0000);
    expect(got).toBe(0x3000_0000); // the hint is used when free
    expect(layout(mm)).toEqual([
      [at / P, at / P + 2, RW],
      [got / P, got / P + 2, RW],
    ]);
    k.checkInvariants();
  });

  it('merges a piece moved back to where it was (LTP mremap06)', () => {
    // mremap06.c: move one granule out and back; the compatible mapping merges again (its vm_pgoff
    // must be right for that, the bug the test reproduces)
    const k = Kernel.boot({ memoryBytes: 8 * MiB });
    const mm = k.createAddressSpace()!;
    const at = mm.mmap(0x1000_0000, 4 * P, RW, MAP_SHARED | MAP_FIXED);
    expect(mm.mremap(at + P, P, P, FIXED, at + 8 * P)).toBe(at + 8 * P);
    expect(layout(mm, at)).toEqual([
      [0, 1, RW],
      [2, 4, RW],
      [8, 9, RW],
    ]);
    expect(mm.mremap(at + 8 * P, P, P, FIXED, at + P)).toBe(at + P);
    expect(layout(mm, at)).toEqual([[0, 4, RW]]);
    // at the wrong offset it does not merge: page 1 of the object is not page 3's neighbour
    expect(mm.mremap(at + P, P, P, FIXED, at + 8 * P)).toBe(at + 8 * P);
    expect(mm.munmap(at + 3 * P, P)).toBe(0);
    expect(mm.mremap(at + 8 * P, P, P, FIXED, at + 3 * P)).toBe(at + 3 * P);
    expect(layout(mm, at)).toEqual([
      [0, 1, RW],
      [2, 3, RW],
      [3, 4, RW],
    ]);
    k.checkInvariants();
  });

  it('keeps huge entries where the new address is slot-aligned, splits them where it is not', () => {
    const { k, mm, at, kaddr, data } = mapped((8 * MiB) / P, 0x4000_0000, 64 * MiB);
    const tables = k.stats().pageTableFrames;
    const pfns = areaPfns(k, kaddr, (8 * MiB) / P) as number[];
    const moved = mm.mremap(at, 8 * MiB, 8 * MiB, MOVE);
    expect((moved - at) % SLOT).toBe(0);
    expect(k.stats().pageTableFrames).toBe(tables); // still no page table
    expect(mm.pagemap().map((e) => e.pfn)).toEqual(pfns);
    expect(mm.segments(moved, 8 * MiB)).toHaveLength(1);
    const odd = 0x6000_1000;
    expect(mm.mremap(moved, 8 * MiB, 8 * MiB, FIXED, odd)).toBe(odd);
    expect(k.stats().pageTableFrames).toBe(tables + 3); // 8 MiB one page off: three tables
    expect(Buffer.compare(mm.read(odd, 8 * MiB), data)).toBe(0);
    k.checkInvariants();
    mm.destroy();
    k.vfree(kaddr);
    k.checkInvariants();
  });

  it('changes nothing when it runs out of frames for page tables or of VMAs', () => {
    const s = setupMapping({ areaPages: 2 });
    expect(remapPartial(s.vma, s.uaddr, s.kaddr, 2 * P)).toBe(0);
    const eater = eatFrames(s.k);
    expectFailsCleanly(s.k, () => s.mm.mremap(s.uaddr, 2 * P, 2 * P, FIXED, 0x2000_0000), ENOMEM);
    s.k.vfree(eater);
    s.k.maxMapCount = 1;
    // a move out of the middle splits the VMA: one VMA more than the limit allows
    expectFailsCleanly(s.k, () => s.mm.mremap(s.uaddr, P, P, FIXED, 0x2000_0000), ENOMEM);
    s.k.maxMapCount = 3;
    expect(s.mm.mremap(s.uaddr, P, P, FIXED, 0x2000_0000)).toBe(0x2000_0000);
    s.k.checkInvariants();
  });
});
