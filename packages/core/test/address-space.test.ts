import { describe, expect, it } from 'vitest';
import {
  EINVAL,
  ENOMEM,
  EPERM,
  Kernel,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  VM_DONTDUMP,
  VM_DONTEXPAND,
  VM_MIXEDMAP,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
  remapPartial,
  type AddressSpace,
} from '../src/index.js';
import {
  MiB,
  RW,
  areaPfns,
  captureState,
  eatFrames,
  expectFailsCleanly,
  expectBus,
  expectSegv,
  expectUnchanged,
  pattern,
  vmaData,
} from './helpers/mm-helpers.js';

const P = PAGE_SIZE;
const TASK_SIZE = 2 ** 32;
const FIXED = MAP_SHARED | MAP_FIXED;
const MARKS = VM_MIXEDMAP | VM_DONTEXPAND | VM_DONTDUMP;

function boot(extra: { maxVmas?: number; maxAddressSpaces?: number } = {}): Kernel {
  return Kernel.boot({ memoryBytes: 8 * MiB, ...extra });
}

/** `[start, end, prot]` of every VMA. */
function layout(mm: AddressSpace): [number, number, number][] {
  return mm.vmas().map((v) => [v.start, v.end, v.prot]);
}

/** An address space with `pages` pages at `at` mapped from one area with distinct data. */
function mapped(k: Kernel, mm: AddressSpace, at: number, pages: number, prot = RW): number {
  const kaddr = k.vmallocUser(pages * P)!;
  k.writeKernel(kaddr, pattern(pages * P, at / P));
  expect(mm.mmap(at, pages * P, prot, FIXED)).toBe(at);
  expect(remapPartial(mm.findVma(at)!, at, kaddr, pages * P)).toBe(0);
  return kaddr;
}

describe('AddressSpace.mmap', () => {
  it('reserves a page-aligned VMA with no pages in it and takes no frame', () => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    const before = k.stats();
    const u = mm.mmap(0, 3 * P, RW, MAP_SHARED);
    expect(u % P).toBe(0);
    expect(u).toBeGreaterThanOrEqual(P);
    expect(u + 3 * P).toBeLessThanOrEqual(TASK_SIZE);
    expect(vmaData(mm.findVma(u)!)).toEqual({
      start: u,
      end: u + 3 * P,
      prot: RW,
      flags: VM_SHARED | VM_READ | VM_WRITE,
    });
    expect(mm.pagemap()).toEqual([]);
    expect(k.stats()).toEqual(before);
    k.checkInvariants();
  });

  it('rounds the length up to whole pages', () => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    const u = mm.mmap(0, 1, PROT_READ, MAP_SHARED);
    expect(mm.findVma(u)!.end).toBe(u + P);
    const v = mm.mmap(0, P + 1, PROT_READ, MAP_SHARED);
    expect(mm.findVma(v)!.end).toBe(v + 2 * P);
  });

  it('sets VM_READ only for PROT_READ and no access flag for PROT_NONE', () => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    expect(mm.findVma(mm.mmap(0, P, PROT_READ, MAP_SHARED))!.flags).toBe(VM_SHARED | VM_READ);
    expect(mm.findVma(mm.mmap(0, P, PROT_NONE, MAP_SHARED))!.flags).toBe(VM_SHARED);
  });

  const badFlags: [string, unknown][] = [
    ['MAP_PRIVATE', MAP_PRIVATE],
    ['MAP_PRIVATE | MAP_SHARED', MAP_PRIVATE | MAP_SHARED],
    ['no MAP_SHARED (0)', 0],
    ['MAP_FIXED without MAP_SHARED', MAP_FIXED],
    ['an unknown bit (0x20)', MAP_SHARED | 0x20],
    ['an unknown bit (0x4)', MAP_SHARED | 0x4],
    ['an unknown high bit', MAP_SHARED | 0x200000],
    ['MAP_SHARED plus 2^32 (bitwise operators would drop the high bit)', 2 ** 32 + MAP_SHARED],
    ['MAP_SHARED plus 2^40', 2 ** 40 + MAP_SHARED],
    ['a negative number', -1],
    ['a fractional number', 1.5],
    ['a string', '1'],
    ['undefined', undefined],
  ];
  it.each(badFlags)('refuses flags %s with -EINVAL and changes nothing', (_, flags) => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    mapped(k, mm, 16 * P, 2);
    expectFailsCleanly(k, () => mm.mmap(0, P, RW, flags as number), EINVAL);
  });

  const badLengths: [string, unknown][] = [
    ['0', 0],
    ['-1', -1],
    ['fractional', 1.5],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['2^53', 2 ** 53],
    ['a string', '4096'],
  ];
  it.each(badLengths)('refuses length %s with -EINVAL and changes nothing', (_, length) => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    mapped(k, mm, 16 * P, 2);
    expectFailsCleanly(k, () => mm.mmap(0, length as number, RW, MAP_SHARED), EINVAL);
  });

  const badProts: [string, unknown][] = [
    ['an unknown bit (0x100)', 0x100],
    ['PROT_READ plus 2^32 (bitwise operators would drop the high bit)', 2 ** 32 + PROT_READ],
    ['2^32 (which truncates to PROT_NONE)', 2 ** 32],
    ['-1', -1],
    ['fractional', 1.5],
    ['NaN', Number.NaN],
    ['a string', '3'],
  ];
  it.each(badProts)('refuses prot %s with -EINVAL and changes nothing', (_, prot) => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    expectFailsCleanly(k, () => mm.mmap(0, P, prot as number, MAP_SHARED), EINVAL);
  });

  it('refuses a length larger than the user address space with -ENOMEM', () => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    expectFailsCleanly(k, () => mm.mmap(0, TASK_SIZE + P, RW, MAP_SHARED), ENOMEM);
    expectFailsCleanly(k, () => mm.mmap(0, 2 ** 40, RW, MAP_SHARED), ENOMEM);
    // page 0 is never mapped, so the whole 4 GiB does not fit either
    expectFailsCleanly(k, () => mm.mmap(0, TASK_SIZE, RW, MAP_SHARED), ENOMEM);
  });

  it('fills the whole user address space but page 0, then has no room', () => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    expect(mm.mmap(0, TASK_SIZE - P, PROT_READ, MAP_SHARED)).toBe(P);
    expectFailsCleanly(k, () => mm.mmap(0, P, RW, MAP_SHARED), ENOMEM);
    expect(mm.munmap(P, P)).toBe(0);
    expect(mm.mmap(0, P, RW, MAP_SHARED)).toBe(P);
  });

  it('refuses MAP_FIXED at address 0 with -EPERM and never maps page 0', () => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    expectFailsCleanly(k, () => mm.mmap(0, P, RW, FIXED), EPERM);
    expect(mm.findVma(0)).toBeNull();
  });

  it('refuses an unaligned or negative MAP_FIXED address with -EINVAL', () => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    expectFailsCleanly(k, () => mm.mmap(16 * P + 1, P, RW, FIXED), EINVAL);
    expectFailsCleanly(k, () => mm.mmap(-16 * P, P, RW, FIXED), EINVAL);
    expectFailsCleanly(k, () => mm.mmap(2 ** 53, P, RW, FIXED), EINVAL);
  });

  it('refuses a MAP_FIXED range that runs past the user address space with -ENOMEM', () => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    expectFailsCleanly(k, () => mm.mmap(TASK_SIZE - P, 2 * P, RW, FIXED), ENOMEM);
    expectFailsCleanly(k, () => mm.mmap(TASK_SIZE, P, RW, FIXED), ENOMEM);
    expect(mm.mmap(TASK_SIZE - P, P, RW, FIXED)).toBe(TASK_SIZE - P);
  });

  it('uses a free page-aligned hint, and picks another free range for a busy or bad hint', () => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    expect(mm.mmap(64 * P, 4 * P, RW, MAP_SHARED)).toBe(64 * P);
    const others = [
      mm.mmap(66 * P, 4 * P, RW, MAP_SHARED), // overlaps the first
      mm.mmap(64 * P + 5, 4 * P, RW, MAP_SHARED), // unaligned
      mm.mmap(TASK_SIZE, 4 * P, RW, MAP_SHARED), // outside the user address space
      mm.mmap(TASK_SIZE - 2 * P, 4 * P, RW, MAP_SHARED), // runs past it
    ];
    for (const u of others) {
      expect(u % P).toBe(0);
      expect(u).toBeGreaterThanOrEqual(P);
      expect(u + 4 * P).toBeLessThanOrEqual(TASK_SIZE);
    }
    // every VMA is where mmap said, and none overlaps another
    const vmas = layout(mm);
    expect(vmas.map(([s]) => s).sort((a, b) => a - b)).toEqual(
      [64 * P, ...others].sort((a, b) => a - b),
    );
    for (let i = 1; i < vmas.length; i++)
      expect(vmas[i]![0]).toBeGreaterThanOrEqual(vmas[i - 1]![1]);
    k.checkInvariants();
  });

  it('replaces the middle of a VMA with MAP_FIXED: a split, references of the replaced pages dropped', () => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    const kaddr = mapped(k, mm, 16 * P, 6);
    const old = mm.findVma(16 * P)!;
    const pfns = areaPfns(k, kaddr, 6);
    expect(mm.mmap(18 * P, 2 * P, PROT_READ, FIXED)).toBe(18 * P);
    expect(layout(mm)).toEqual([
      [16 * P, 18 * P, RW],
      [18 * P, 20 * P, PROT_READ],
      [20 * P, 22 * P, RW],
    ]);
    expect(old.live).toBe(true);
    expect([old.start, old.end]).toEqual([16 * P, 18 * P]);
    expect(mm.findVma(20 * P)!.flags & MARKS).toBe(MARKS);
    expect(mm.findVma(18 * P)!.flags & MARKS).toBe(0);
    expect(mm.pagemap().map((e) => e.uaddr)).toEqual([16, 17, 20, 21].map((p) => p * P));
    const refs = k.frameSnapshot().refcounts;
    expect([0, 1, 2, 3, 4, 5].map((i) => refs[pfns[i]!])).toEqual([2, 2, 1, 1, 2, 2]);
    expectBus(() => mm.read(18 * P, 1), 18 * P); // a VMA with no PTE: SIGBUS
    expect(mm.read(20 * P, P)).toEqual(pattern(6 * P, 16).subarray(4 * P, 5 * P));
    k.checkInvariants();
  });

  it('replaces several VMAs and the holes between them with MAP_FIXED', () => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    const a = mapped(k, mm, 16 * P, 2);
    const b = mapped(k, mm, 20 * P, 2);
    const va = mm.findVma(16 * P)!;
    const vb = mm.findVma(20 * P)!;
    const free = k.stats().freeFrames;
    k.vfree(a);
    k.vfree(b);
    expect(k.stats().freeFrames).toBe(free); // still pinned by the PTEs
    expect(mm.mmap(16 * P, 8 * P, RW, FIXED)).toBe(16 * P);
    expect(layout(mm)).toEqual([[16 * P, 24 * P, RW]]);
    expect(va.live).toBe(false);
    expect(vb.live).toBe(false);
    expect(mm.pagemap()).toEqual([]);
    expect(k.stats().freeFrames).toBe(free + 4);
    k.checkInvariants();
  });

  it('returns -ENOMEM and changes nothing when the VMA pool is empty', () => {
    const k = boot({ maxVmas: 2 });
    const mm = k.createAddressSpace()!;
    expect(mm.mmap(16 * P, 4 * P, RW, FIXED)).toBe(16 * P);
    expect(mm.mmap(32 * P, 4 * P, RW, FIXED)).toBe(32 * P);
    expectFailsCleanly(k, () => mm.mmap(0, P, RW, MAP_SHARED), ENOMEM);
    // MAP_FIXED in the middle of a VMA needs two slots (its own and the split's)
    expect(mm.munmap(32 * P, 4 * P)).toBe(0);
    expectFailsCleanly(k, () => mm.mmap(17 * P, P, PROT_READ, FIXED), ENOMEM);
    expect(mm.mmap(16 * P, P, PROT_READ, FIXED)).toBe(16 * P);
  });
});

describe('AddressSpace.munmap', () => {
  it('refuses length 0, unsafe lengths and unaligned or negative addresses with -EINVAL', () => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    mapped(k, mm, 16 * P, 4);
    for (const [addr, length] of [
      [16 * P, 0],
      [16 * P, -P],
      [16 * P, Number.NaN],
      [16 * P, 2 ** 53],
      [16 * P, 1.5],
      [16 * P, '4096'],
      [16 * P + 1, P],
      [TASK_SIZE - P, 2 * P],
      [TASK_SIZE, P],
      [-16 * P, P],
      [2 ** 53, P],
      ['65536', P],
    ] as [number, number][]) {
      expectFailsCleanly(k, () => mm.munmap(addr, length), EINVAL);
    }
  });

  it('succeeds on a hole and changes nothing', () => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    mapped(k, mm, 16 * P, 4);
    const before = captureState(k);
    expect(mm.munmap(64 * P, 8 * P)).toBe(0);
    expectUnchanged(k, before);
  });

  it('unmaps the upper part: the Vma keeps the lower part and reads its new end', () => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    const kaddr = mapped(k, mm, 16 * P, 4);
    const vma = mm.findVma(16 * P)!;
    const pfns = areaPfns(k, kaddr, 4);
    expect(mm.munmap(18 * P, 2 * P)).toBe(0);
    expect(vma.live).toBe(true);
    expect(vmaData(vma)).toMatchObject({ start: 16 * P, end: 18 * P, prot: RW });
    expect(mm.pagemap().map((e) => e.pfn)).toEqual(pfns.slice(0, 2));
    const refs = k.frameSnapshot().refcounts;
    expect(pfns.map((pfn) => refs[pfn!])).toEqual([2, 2, 1, 1]);
    k.checkInvariants();
  });

  it('unmaps the lower part: the Vma keeps what remains', () => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    mapped(k, mm, 16 * P, 4);
    const vma = mm.findVma(16 * P)!;
    expect(mm.munmap(16 * P, 3 * P)).toBe(0);
    expect(vma.live).toBe(true);
    expect([vma.start, vma.end]).toEqual([19 * P, 20 * P]);
    expect(mm.read(19 * P, P)).toEqual(pattern(4 * P, 16).subarray(3 * P));
    k.checkInvariants();
  });

  it('punches a hole: the Vma keeps the lower part, a new VMA with the same flags takes the upper', () => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    mapped(k, mm, 16 * P, 6, PROT_READ);
    const vma = mm.findVma(16 * P)!;
    const flags = vma.flags;
    expect(flags & MARKS).toBe(MARKS);
    expect(mm.munmap(18 * P, 2 * P)).toBe(0);
    expect([vma.start, vma.end, vma.flags]).toEqual([16 * P, 18 * P, flags]);
    const upper = mm.findVma(20 * P)!;
    expect(vmaData(upper)).toEqual({ start: 20 * P, end: 22 * P, prot: PROT_READ, flags });
    expect(mm.pagemap().map((e) => e.uaddr)).toEqual([16, 17, 20, 21].map((p) => p * P));
    expect(mm.read(20 * P, 2 * P)).toEqual(pattern(6 * P, 16).subarray(4 * P));
    k.checkInvariants();
  });

  it('covers several VMAs and holes at once; only wholly unmapped Vmas go stale', () => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    mapped(k, mm, 16 * P, 4);
    mapped(k, mm, 24 * P, 2);
    mapped(k, mm, 30 * P, 4);
    const [a, b, c] = mm.vmas();
    expect(mm.munmap(18 * P, 14 * P)).toBe(0);
    expect([a!.live, b!.live, c!.live]).toEqual([true, false, true]);
    expect(layout(mm)).toEqual([
      [16 * P, 18 * P, RW],
      [32 * P, 34 * P, RW],
    ]);
    expect([c!.start, c!.end]).toEqual([32 * P, 34 * P]);
    expect(mm.pagemap().map((e) => e.uaddr)).toEqual([16, 17, 32, 33].map((p) => p * P));
    k.checkInvariants();
  });

  it('rounds the length up to whole pages', () => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    mapped(k, mm, 16 * P, 4);
    expect(mm.munmap(16 * P, P + 1)).toBe(0);
    expect(layout(mm)).toEqual([[18 * P, 20 * P, RW]]);
  });

  it('returns -ENOMEM and changes nothing when a split needs a VMA slot and none is free', () => {
    const k = boot({ maxVmas: 1 });
    const mm = k.createAddressSpace()!;
    mapped(k, mm, 16 * P, 4);
    expectFailsCleanly(k, () => mm.munmap(17 * P, P), ENOMEM);
    // cutting an end needs no new slot
    expect(mm.munmap(19 * P, P)).toBe(0);
    k.checkInvariants();
  });
});

describe('AddressSpace.mprotect', () => {
  it('returns 0 for length 0 and changes nothing, even over a hole', () => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    mapped(k, mm, 16 * P, 2);
    const before = captureState(k);
    expect(mm.mprotect(16 * P, 0, PROT_NONE)).toBe(0);
    expect(mm.mprotect(64 * P, 0, PROT_NONE)).toBe(0);
    expectUnchanged(k, before);
  });

  it('returns -ENOMEM over a hole and changes nothing (no split left behind)', () => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    mapped(k, mm, 16 * P, 4);
    mapped(k, mm, 24 * P, 4);
    expectFailsCleanly(k, () => mm.mprotect(64 * P, P, PROT_READ), ENOMEM);
    expectFailsCleanly(k, () => mm.mprotect(18 * P, 8 * P, PROT_READ), ENOMEM);
    expectFailsCleanly(k, () => mm.mprotect(14 * P, 4 * P, PROT_READ), ENOMEM);
    expectFailsCleanly(k, () => mm.mprotect(26 * P, 4 * P, PROT_READ), ENOMEM);
  });

  it('refuses an unaligned address and a bad protection with -EINVAL', () => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    mapped(k, mm, 16 * P, 4);
    expectFailsCleanly(k, () => mm.mprotect(16 * P + 1, P, PROT_READ), EINVAL);
    expectFailsCleanly(k, () => mm.mprotect(-16 * P, P, PROT_READ), EINVAL);
    expectFailsCleanly(k, () => mm.mprotect(16 * P, P, 0x100), EINVAL);
    expectFailsCleanly(k, () => mm.mprotect(16 * P, P, -1), EINVAL);
    expectFailsCleanly(k, () => mm.mprotect(16 * P, P, Number.NaN), EINVAL);
    expectFailsCleanly(k, () => mm.mprotect(16 * P, P, 2 ** 32), EINVAL);
    expectFailsCleanly(k, () => mm.mprotect(16 * P, P, 2 ** 32 + PROT_READ), EINVAL);
    expectFailsCleanly(k, () => mm.mprotect(16 * P, 2 ** 53, PROT_READ), EINVAL);
    expectFailsCleanly(k, () => mm.mprotect(16 * P, Number.NaN, PROT_READ), EINVAL);
  });

  it('splits a VMA in three as Linux; PTEs in the range change what they grant, not their frames', () => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    const kaddr = mapped(k, mm, 16 * P, 6);
    const vma = mm.findVma(16 * P)!;
    const pfns = areaPfns(k, kaddr, 6);
    const refs = k.frameSnapshot().refcounts;
    expect(mm.mprotect(18 * P, 2 * P, PROT_READ)).toBe(0);
    expect(layout(mm)).toEqual([
      [16 * P, 18 * P, RW],
      [18 * P, 20 * P, PROT_READ],
      [20 * P, 22 * P, RW],
    ]);
    expect([vma.start, vma.end, vma.prot]).toEqual([16 * P, 18 * P, RW]);
    expect(mm.findVma(18 * P)!.flags).toBe(VM_SHARED | VM_READ | MARKS);
    expect(mm.pagemap()).toEqual(
      pfns.map((pfn, i) => ({
        uaddr: (16 + i) * P,
        pfn,
        prot: i === 2 || i === 3 ? PROT_READ : RW,
      })),
    );
    expect(k.frameSnapshot().refcounts).toEqual(refs);
    expectSegv(
      () => {
        mm.write(18 * P + 5, Uint8Array.of(1));
      },
      'SEGV_ACCERR',
      18 * P + 5,
    );
    mm.write(17 * P, Uint8Array.of(1));
    k.checkInvariants();
  });

  it('changes a range spanning two VMAs, cutting both', () => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    mapped(k, mm, 16 * P, 4);
    mapped(k, mm, 20 * P, 4, PROT_READ);
    expect(mm.mprotect(18 * P, 4 * P, PROT_NONE)).toBe(0);
    expect(layout(mm)).toEqual([
      [16 * P, 18 * P, RW],
      [18 * P, 20 * P, PROT_NONE],
      [20 * P, 22 * P, PROT_NONE],
      [22 * P, 24 * P, PROT_READ],
    ]);
    expect(mm.vmas().map((v) => v.flags)).toEqual([
      VM_SHARED | VM_READ | VM_WRITE | MARKS,
      VM_SHARED | MARKS,
      VM_SHARED | MARKS,
      VM_SHARED | VM_READ | MARKS,
    ]);
    k.checkInvariants();
  });

  it('keeps PROT_NONE PTEs (and their data): they fault with SEGV_ACCERR until access is given back', () => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    const kaddr = mapped(k, mm, 16 * P, 2);
    const before = mm.pagemap();
    const free = k.stats().freeFrames;
    expect(mm.mprotect(16 * P, 2 * P, PROT_NONE)).toBe(0);
    expect(mm.pagemap()).toEqual(before.map((e) => ({ ...e, prot: PROT_NONE })));
    expect(k.stats().freeFrames).toBe(free);
    expectSegv(() => mm.read(16 * P + 3, 1), 'SEGV_ACCERR', 16 * P + 3);
    expectSegv(
      () => {
        mm.write(17 * P, Uint8Array.of(1));
      },
      'SEGV_ACCERR',
      17 * P,
    );
    expectSegv(() => mm.segments(16 * P, P), 'SEGV_ACCERR', 16 * P);
    k.writeKernel(kaddr, Uint8Array.of(77));
    expect(mm.mprotect(16 * P, 2 * P, PROT_READ)).toBe(0);
    expect(mm.read(16 * P, 1)).toEqual(Uint8Array.of(77));
    expect(mm.read(17 * P, P)).toEqual(pattern(2 * P, 16).subarray(P));
    k.checkInvariants();
  });

  it('returns -ENOMEM and changes nothing when a split needs a VMA slot and none is free', () => {
    const k = boot({ maxVmas: 2 });
    const mm = k.createAddressSpace()!;
    mapped(k, mm, 16 * P, 4);
    // the middle of one VMA needs two new slots; one is free
    expectFailsCleanly(k, () => mm.mprotect(17 * P, P, PROT_READ), ENOMEM);
    expect(mm.mprotect(16 * P, P, PROT_READ)).toBe(0);
    k.checkInvariants();
  });
});

describe('AddressSpace.findVma', () => {
  it('finds the VMA containing an address, and null in holes, at the end and for non-numbers', () => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    expect(mm.mmap(16 * P, 2 * P, RW, FIXED)).toBe(16 * P);
    expect(mm.findVma(16 * P)!.start).toBe(16 * P);
    expect(mm.findVma(18 * P - 1)!.start).toBe(16 * P);
    expect(mm.findVma(18 * P)).toBeNull();
    expect(mm.findVma(15 * P)).toBeNull();
    expect(mm.findVma(0)).toBeNull();
    expect(mm.findVma(-1)).toBeNull();
    expect(mm.findVma(Number.NaN)).toBeNull();
    expect(mm.findVma('65536' as unknown as number)).toBeNull();
  });
});

describe('address-space lifetime', () => {
  it('hands out small distinct ids, each reachable through kernel.addressSpace(id)', () => {
    const k = boot();
    const a = k.createAddressSpace()!;
    const b = k.createAddressSpace()!;
    expect(a.id).not.toBe(b.id);
    for (const id of [a.id, b.id]) {
      expect(Number.isSafeInteger(id) && id > 0).toBe(true);
    }
    expect(k.addressSpaceIds().sort()).toEqual([a.id, b.id].sort());
    expect(k.stats().addressSpaces).toBe(2);
    const again = k.addressSpace(a.id);
    expect(again.id).toBe(a.id);
    const u = again.mmap(0, P, RW, MAP_SHARED);
    expect(a.findVma(u)!.start).toBe(u);
    expect(b.findVma(u)).toBeNull();
  });

  it('throws from kernel.addressSpace for ids of no live address space', () => {
    const k = boot({ maxAddressSpaces: 4 });
    const mm = k.createAddressSpace()!;
    for (const id of [0, -1, 1.5, Number.NaN, 5, 2 ** 53, '1']) {
      if (id !== mm.id) expect(() => k.addressSpace(id as number)).toThrow();
    }
    const spare = [1, 2, 3, 4].find((id) => id !== mm.id)!;
    expect(() => k.addressSpace(spare)).toThrow();
    mm.destroy();
    expect(() => k.addressSpace(mm.id)).toThrow();
  });

  it('returns null from createAddressSpace when the table is full, changing nothing', () => {
    const k = boot({ maxAddressSpaces: 2 });
    const a = k.createAddressSpace()!;
    const b = k.createAddressSpace();
    expect(b).not.toBeNull();
    const before = captureState(k);
    expect(k.createAddressSpace()).toBeNull();
    expectUnchanged(k, before);
    a.destroy();
    const c = k.createAddressSpace();
    expect(c).not.toBeNull();
    expect(c!.id).toBe(a.id);
    k.checkInvariants();
  });

  it('returns null from createAddressSpace when no frame is free for a page directory', () => {
    const k = boot();
    const eater = eatFrames(k);
    const before = captureState(k);
    expect(k.createAddressSpace()).toBeNull();
    expectUnchanged(k, before);
    k.vfree(eater);
    expect(k.createAddressSpace()).not.toBeNull();
  });

  it('destroy releases every frame it pinned and every page table', () => {
    const k = boot();
    const free = k.stats().freeFrames;
    const mm = k.createAddressSpace()!;
    const a = mapped(k, mm, 16 * P, 4);
    mapped(k, mm, 8 * MiB, 2); // another page table
    const b = k.vmallocUser(P)!;
    const u = mm.mmap(0, P, PROT_READ, MAP_SHARED); // near the top: a third page table
    expect(remapPartial(mm.findVma(u)!, u, b, P)).toBe(0);
    expect(k.stats().pageTableFrames).toBe(4);
    k.vfree(a);
    k.vfree(b);
    const vmas = mm.vmas();
    mm.destroy();
    expect(k.stats().pageTableFrames).toBe(0);
    expect(k.stats().addressSpaces).toBe(0);
    expect(vmas.every((v) => !v.live)).toBe(true);
    // the area mapped at 8 MiB is still allocated: only its 2 frames are missing
    expect(k.stats().freeFrames).toBe(free - 2);
    k.checkInvariants();
  });

  it('makes a destroyed handle inert: -EINVAL, null, empty text, SEGV_MAPERR; a second destroy is a no-op', () => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    mapped(k, mm, 16 * P, 2);
    const other = k.addressSpace(mm.id);
    mm.destroy();
    for (const h of [mm, other]) {
      expect(h.live).toBe(false);
      expect(h.mmap(0, P, RW, MAP_SHARED)).toBe(-EINVAL);
      expect(h.mmap(32 * P, P, RW, FIXED)).toBe(-EINVAL);
      expect(h.munmap(16 * P, P)).toBe(-EINVAL);
      expect(h.mprotect(16 * P, P, PROT_READ)).toBe(-EINVAL);
      expect(h.findVma(16 * P)).toBeNull();
      expect(h.maps()).toBe('');
      expect(h.vmas()).toEqual([]);
      expect(h.pagemap()).toEqual([]);
      expectSegv(() => h.read(16 * P, 1), 'SEGV_MAPERR', 16 * P);
      expectSegv(
        () => {
          h.write(16 * P, Uint8Array.of(1));
        },
        'SEGV_MAPERR',
        16 * P,
      );
      expectSegv(() => h.segments(16 * P, P), 'SEGV_MAPERR', 16 * P);
    }
    const before = captureState(k);
    mm.destroy();
    other.destroy();
    expectUnchanged(k, before);
  });

  it('keeps an old handle dead when its slot is reused by a new address space', () => {
    const k = boot({ maxAddressSpaces: 1 });
    const old = k.createAddressSpace()!;
    old.destroy();
    const fresh = k.createAddressSpace()!;
    expect(fresh.id).toBe(old.id);
    mapped(k, fresh, 16 * P, 2);
    const before = captureState(k);
    expect(old.mmap(64 * P, P, RW, FIXED)).toBe(-EINVAL);
    expect(old.munmap(16 * P, 2 * P)).toBe(-EINVAL);
    expect(old.mprotect(16 * P, 2 * P, PROT_NONE)).toBe(-EINVAL);
    expect(old.findVma(16 * P)).toBeNull();
    expectSegv(() => old.read(16 * P, 1), 'SEGV_MAPERR', 16 * P);
    old.destroy();
    expectUnchanged(k, before);
    expect(fresh.read(16 * P, 2 * P)).toEqual(pattern(2 * P, 16));
  });

  it('gives back every frame after many address spaces come and go', () => {
    const k = boot({ maxAddressSpaces: 3 });
    const free = k.stats().freeFrames;
    for (let round = 0; round < 20; round++) {
      const mms = [k.createAddressSpace()!, k.createAddressSpace()!, k.createAddressSpace()!];
      const kaddr = k.vmallocUser(3 * P)!;
      for (const [i, mm] of mms.entries()) {
        const u = mm.mmap((1 + round + i * 1024) * P, 3 * P, RW, MAP_SHARED);
        expect(remapPartial(mm.findVma(u)!, u, kaddr, 3 * P)).toBe(0);
      }
      k.vfree(kaddr);
      for (const mm of mms) mm.destroy();
    }
    expect(k.stats().freeFrames).toBe(free);
    k.checkInvariants();
  });
});

describe('PROT_WRITE', () => {
  it('implies read, as on x86', () => {
    const k = boot();
    const mm = k.createAddressSpace()!;
    mapped(k, mm, 16 * P, 1, PROT_WRITE);
    mm.write(16 * P, Uint8Array.of(5, 6));
    expect(mm.read(16 * P, 2)).toEqual(Uint8Array.of(5, 6));
    expect(mm.segments(16 * P, 2, { write: true })[0]).toEqual(Uint8Array.of(5, 6));
  });
});
