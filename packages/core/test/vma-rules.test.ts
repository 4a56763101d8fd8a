/**
 * Linux's VMA rules (KERNEL-CONTRACT.md part 2, "More of mm"): mprotect that changes nothing
 * splits nothing, VMA merging, unaligned mmap hints, MAP_FIXED_NOREPLACE and the per-address-space
 * VMA limit. Cases ported from the Linux Test Project name the file they come from.
 */
import { describe, expect, it } from 'vitest';
import {
  EEXIST,
  EINVAL,
  ENOMEM,
  EPERM,
  Kernel,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  remapPartial,
  type AddressSpace,
} from '../src/index.js';
import { VmaWord } from '../src/layout.js';
import { vmaWord } from '../src/vma.js';
import { expectFailsCleanly, MiB, RW, setupMapping } from './helpers/mm-helpers.js';

const P = PAGE_SIZE;

function boot(extra: { maxVmas?: number } = {}): { k: Kernel; mm: AddressSpace } {
  const k = Kernel.boot({ memoryBytes: 8 * MiB, ...extra });
  return { k, mm: k.createAddressSpace()! };
}

/** The VMAs as `[start, end, prot]`, relative to `base`, in pages. */
function layout(mm: AddressSpace, base = 0): [number, number, number][] {
  return mm.vmas().map((v) => [(v.start - base) / P, (v.end - base) / P, v.prot]);
}

describe('mprotect to the protection a VMA already has', () => {
  it('changes nothing and splits nothing (mprotect_fixup returns early)', () => {
    const { k, mm } = boot();
    const at = mm.mmap(0, 8 * P, RW, MAP_SHARED);
    const vma = mm.findVma(at)!;
    expectFailsCleanly(k, () => -mm.mprotect(at + 2 * P, 3 * P, RW), 0);
    expect(layout(mm, at)).toEqual([[0, 8, RW]]);
    expect([vma.live, vma.start, vma.end]).toEqual([true, at, at + 8 * P]);
  });

  it('splits only the VMAs whose protection changes', () => {
    const { k, mm } = boot();
    const at = mm.mmap(0x1000_0000, 6 * P, RW, MAP_SHARED | MAP_FIXED);
    expect(mm.mmap(at + 6 * P, 6 * P, PROT_READ, MAP_SHARED | MAP_FIXED)).toBe(at + 6 * P);
    // [at+2, at+9): the RW VMA is cut at at+2; the read-only one already has PROT_READ
    expect(mm.mprotect(at + 2 * P, 7 * P, PROT_READ)).toBe(0);
    expect(layout(mm, at)).toEqual([
      [0, 2, RW],
      [2, 6, PROT_READ],
      [6, 12, PROT_READ],
    ]);
    k.checkInvariants();
  });
});

describe('VMA merging (mm/vma.c)', () => {
  it('merges the pieces of a split mapping back: mprotect05 (LTP)', () => {
    // testcases/kernel/syscalls/mprotect/mprotect05.c: a 5-page shared mapping, PROT_EXEC (here
    // PROT_NONE) on page 1, PROT_WRITE on page 3, then PROT_READ on pages 1-4 — split and merge
    const { k, mm } = boot();
    const at = mm.mmap(0, 5 * P, PROT_READ, MAP_SHARED);
    expect(mm.mprotect(at + P, P, PROT_NONE)).toBe(0);
    expect(mm.mprotect(at + 3 * P, P, PROT_WRITE)).toBe(0);
    expect(layout(mm, at)).toEqual([
      [0, 1, PROT_READ],
      [1, 2, PROT_NONE],
      [2, 3, PROT_READ],
      [3, 4, PROT_WRITE],
      [4, 5, PROT_READ],
    ]);
    expect(mm.mprotect(at + P, 4 * P, PROT_READ)).toBe(0);
    expect(layout(mm, at)).toEqual([[0, 5, PROT_READ]]);
    expect(mm.munmap(at, 5 * P)).toBe(0);
    k.checkInvariants();
  });

  it('keeps the lower slot: its handle reads the merged bounds, the upper handle goes stale', () => {
    const { k, mm } = boot();
    const at = mm.mmap(0, 4 * P, RW, MAP_SHARED);
    const whole = mm.findVma(at)!;
    expect(mm.mprotect(at + 2 * P, 2 * P, PROT_READ)).toBe(0);
    const upper = mm.findVma(at + 2 * P)!;
    expect([whole.end, upper.start]).toEqual([at + 2 * P, at + 2 * P]);
    // the upper piece set back: it merges into the lower one
    expect(mm.mprotect(at + 2 * P, 2 * P, RW)).toBe(0);
    expect([whole.live, whole.start, whole.end]).toEqual([true, at, at + 4 * P]);
    expect(upper.live).toBe(false);
    // the lower piece set to the upper's protection: the lower slot still survives
    expect(mm.mprotect(at + 2 * P, 2 * P, PROT_READ)).toBe(0);
    const upper2 = mm.findVma(at + 2 * P)!;
    expect(mm.mprotect(at, 2 * P, PROT_READ)).toBe(0);
    expect([whole.live, whole.start, whole.end, whole.prot]).toEqual([
      true,
      at,
      at + 4 * P,
      PROT_READ,
    ]);
    expect(upper2.live).toBe(false);
    expect(remapPartial(upper2, at + 2 * P, k.vmallocUser(P)!, P)).toBe(-EINVAL);
    k.checkInvariants();
  });

  it('merges three pieces into one when the middle one is set back', () => {
    const { k, mm } = boot();
    const at = mm.mmap(0, 9 * P, RW, MAP_SHARED);
    expect(mm.mprotect(at + 3 * P, 3 * P, PROT_NONE)).toBe(0);
    expect(mm.vmas()).toHaveLength(3);
    const middle = mm.findVma(at + 3 * P)!;
    const top = mm.findVma(at + 6 * P)!;
    expect(mm.mprotect(at + 3 * P, 3 * P, RW)).toBe(0);
    expect(layout(mm, at)).toEqual([[0, 9, RW]]);
    expect([middle.live, top.live]).toEqual([false, false]);
    k.checkInvariants();
  });

  it('never merges separate mmaps, even contiguous with one protection', () => {
    const { k, mm } = boot();
    const at = mm.mmap(0x1000_0000, 4 * P, RW, MAP_SHARED | MAP_FIXED);
    expect(mm.mmap(at + 4 * P, 4 * P, RW, MAP_SHARED | MAP_FIXED)).toBe(at + 4 * P);
    expect(mm.mprotect(at, 8 * P, PROT_READ)).toBe(0);
    expect(mm.mprotect(at, 8 * P, RW)).toBe(0);
    expect(layout(mm, at)).toEqual([
      [0, 4, RW],
      [4, 8, RW],
    ]);
    k.checkInvariants();
  });

  it('never merges a remapped VMA (VM_MIXEDMAP is VM_SPECIAL)', () => {
    const s = setupMapping({ areaPages: 2, vmaPages: 6 });
    expect(remapPartial(s.vma, s.uaddr, s.kaddr, 2 * P)).toBe(0);
    expect(s.mm.mprotect(s.uaddr + 2 * P, 2 * P, PROT_READ)).toBe(0);
    expect(s.mm.mprotect(s.uaddr + 2 * P, 2 * P, RW)).toBe(0);
    expect(layout(s.mm, s.uaddr)).toEqual([
      [0, 2, RW],
      [2, 4, RW],
      [4, 6, RW],
    ]);
    s.k.checkInvariants();
  });

  it('is checked by checkInvariants: neighbours that should be one VMA are a broken invariant', () => {
    const { k, mm } = boot();
    const at = mm.mmap(0, 4 * P, RW, MAP_SHARED);
    expect(mm.mprotect(at + 2 * P, 2 * P, PROT_READ)).toBe(0);
    k.checkInvariants();
    // give the upper piece the lower one's protection behind the kernel's back
    const upper = mm.findVma(at + 2 * P)!;
    const { i32 } = k.mem;
    const lower = mm.findVma(at)!;
    i32[vmaWord(k.mem, upper.slot, VmaWord.PROT)] = lower.prot;
    i32[vmaWord(k.mem, upper.slot, VmaWord.FLAGS)] = lower.flags;
    expect(() => {
      k.checkInvariants();
    }).toThrow(/should have merged/);
  });
});

describe('mmap hints', () => {
  it('rounds an unaligned hint up to a page boundary and uses it when that range is free', () => {
    const { mm } = boot();
    expect(mm.mmap(0x10000001, 2 * P, RW, MAP_SHARED)).toBe(0x10001000);
    expect(mm.mmap(0x20000fff, P, RW, MAP_SHARED)).toBe(0x20001000);
    expect(mm.mmap(1, P, RW, MAP_SHARED)).toBe(P); // below page 1 rounds up to page 1
    // not free: anywhere else, as with an aligned hint
    const other = mm.mmap(0x10000001, 2 * P, RW, MAP_SHARED);
    expect(other).toBeGreaterThan(0);
    expect(other).not.toBe(0x10001000);
  });
});

describe('MAP_FIXED_NOREPLACE', () => {
  it('fails with -EEXIST over an existing mapping and changes nothing: mmap17 (LTP)', () => {
    // testcases/kernel/syscalls/mmap/mmap17.c: MAP_FIXED_NOREPLACE at an existing mapping
    const { k, mm } = boot();
    const at = mm.mmap(0x1000_0000, 4 * P, PROT_WRITE, MAP_SHARED | MAP_FIXED);
    expectFailsCleanly(
      k,
      () => mm.mmap(at, 4 * P, PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE),
      EEXIST,
    );
    // a range that only overlaps the end of the mapping
    expectFailsCleanly(
      k,
      () => mm.mmap(at + 3 * P, 4 * P, RW, MAP_SHARED | MAP_FIXED_NOREPLACE),
      EEXIST,
    );
  });

  it('maps exactly at a free address, with MAP_FIXED or without it', () => {
    const { k, mm } = boot();
    expect(mm.mmap(0x4000_0000, 2 * P, RW, MAP_SHARED | MAP_FIXED_NOREPLACE)).toBe(0x4000_0000);
    const both = MAP_SHARED | MAP_FIXED | MAP_FIXED_NOREPLACE;
    expect(mm.mmap(0x4000_2000, P, RW, both)).toBe(0x4000_2000);
    expectFailsCleanly(k, () => mm.mmap(0x4000_1000, 2 * P, RW, both), EEXIST);
    expect(mm.mmap(0x4000_0001, P, RW, MAP_SHARED | MAP_FIXED_NOREPLACE)).toBe(-EINVAL);
    expect(mm.mmap(0, P, RW, MAP_SHARED | MAP_FIXED_NOREPLACE)).toBe(-EPERM);
  });
});

describe('the per-address-space VMA limit (vm.max_map_count)', () => {
  it('defaults to 65530, or to the VMA pool when that is smaller', () => {
    expect(Kernel.boot({ memoryBytes: 8 * MiB, maxVmas: 100 }).maxMapCount).toBe(100);
    expect(Kernel.boot({ memoryBytes: 8 * MiB, maxVmas: 65536 }).maxMapCount).toBe(65530);
  });

  it('refuses an mmap past it with -ENOMEM, in one address space only', () => {
    const { k, mm } = boot({ maxVmas: 64 });
    k.maxMapCount = 3;
    for (let i = 0; i < 3; i++) expect(mm.mmap(0, P, RW, MAP_SHARED)).toBeGreaterThan(0);
    expectFailsCleanly(k, () => mm.mmap(0, P, RW, MAP_SHARED), ENOMEM);
    const other = k.createAddressSpace()!;
    expect(other.mmap(0, P, RW, MAP_SHARED)).toBeGreaterThan(0);
  });

  it('refuses a munmap that would split past it: munmap04 (LTP)', () => {
    // testcases/kernel/syscalls/munmap/munmap04.c: map 3-page VMAs with a gap until mmap fails,
    // then a munmap of a middle page (a split) fails with ENOMEM
    const { k, mm } = boot({ maxVmas: 64 });
    k.maxMapCount = 10;
    const base = 0x1000_0000;
    const maps: number[] = [];
    for (let addr = base; ; addr += 2 * 3 * P) {
      const got = mm.mmap(addr, 3 * P, PROT_NONE, MAP_SHARED | MAP_FIXED_NOREPLACE);
      if (got === -EEXIST) continue;
      if (got < 0) {
        expect(got).toBe(-ENOMEM);
        break;
      }
      maps.push(got);
    }
    expect(maps).toHaveLength(10);
    expectFailsCleanly(k, () => mm.munmap(maps[2]! + P, P), ENOMEM);
    // a munmap that splits nothing needs no new VMA
    expect(mm.munmap(maps[2]!, P)).toBe(0);
  });

  it('refuses an mprotect that would split past it, but not one that splits nothing', () => {
    const { k, mm } = boot({ maxVmas: 64 });
    const at = mm.mmap(0, 4 * P, RW, MAP_SHARED);
    k.maxMapCount = 1;
    expectFailsCleanly(k, () => mm.mprotect(at + P, P, PROT_READ), ENOMEM);
    expect(mm.mprotect(at, 4 * P, PROT_READ)).toBe(0);
  });

  it('takes only integers in [1, 2^31 - 1]', () => {
    const { k } = boot();
    expect(() => {
      k.maxMapCount = 0;
    }).toThrow(RangeError);
    expect(() => {
      k.maxMapCount = 1.5;
    }).toThrow(RangeError);
    expect(() => {
      k.maxMapCount = '5' as never;
    }).toThrow(TypeError);
    expect(k.maxMapCount).toBe(Math.min(65530, k.layout.maxVmas));
  });
});
