/**
 * madvise (mm/madvise.c), mincore (mm/mincore.c) and smaps (fs/proc/task_mmu.c). Cases ported
 * from the Linux Test Project name the file they come from.
 */
import { describe, expect, it } from 'vitest';
import {
  EINVAL,
  ENOMEM,
  Kernel,
  MADV_DONTNEED,
  MADV_NORMAL,
  MADV_RANDOM,
  MADV_SEQUENTIAL,
  MADV_WILLNEED,
  MAP_FIXED,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  remapPartial,
  VM_RAND_READ,
  VM_SEQ_READ,
} from '../src/index.js';
import {
  areaPfns,
  expectBus,
  expectFailsCleanly,
  MiB,
  RW,
  setupMapping,
} from './helpers/mm-helpers.js';

const P = PAGE_SIZE;

describe('madvise', () => {
  it('refuses bad advice and addresses with -EINVAL, a range past the mapping with -ENOMEM (LTP madvise02)', () => {
    // testcases/kernel/syscalls/madvise/madvise02.c: an unaligned address, advice 1212, and a
    // range that runs past the mapping (file2: ENOMEM for MADV_NORMAL and MADV_WILLNEED)
    const { k, mm, uaddr } = setupMapping({ areaPages: 4, vmaPages: 4, at: 0x1000_0000 });
    expectFailsCleanly(k, () => mm.madvise(uaddr + 1, P, MADV_NORMAL), EINVAL);
    expectFailsCleanly(k, () => mm.madvise(uaddr, P, 1212), EINVAL);
    expectFailsCleanly(k, () => mm.madvise(uaddr, P, 5), EINVAL);
    for (const advice of [MADV_NORMAL, MADV_WILLNEED, MADV_SEQUENTIAL, MADV_DONTNEED])
      expectFailsCleanly(k, () => mm.madvise(uaddr, 5 * P, advice), ENOMEM);
    expect(mm.madvise(uaddr, 0, MADV_DONTNEED)).toBe(0);
    expect(mm.madvise(uaddr, 4 * P, MADV_WILLNEED)).toBe(0);
  });

  it('MADV_DONTNEED zaps the PTEs: the VMA stays, references drop, access is a bus error', () => {
    const s = setupMapping({ areaPages: 4 });
    const { k, mm, uaddr } = s;
    expect(remapPartial(s.vma, uaddr, s.kaddr, 4 * P)).toBe(0);
    const pfns = areaPfns(k, s.kaddr, 4) as number[];
    expect(mm.madvise(uaddr + P, 2 * P, MADV_DONTNEED)).toBe(0);
    expect(mm.vmas()).toHaveLength(1);
    expect(mm.pagemap().map((e) => e.pfn)).toEqual([pfns[0], pfns[3]]);
    const refs = k.frameSnapshot().refcounts;
    expect(pfns.map((pfn) => refs[pfn])).toEqual([2, 1, 1, 2]);
    expectBus(() => mm.read(uaddr + P, 1), uaddr + P);
    // the hole can be filled again
    expect(remapPartial(s.vma, uaddr + P, s.kaddr + P, 2 * P)).toBe(0);
    k.checkInvariants();
  });

  it('MADV_DONTNEED splits a huge entry it cuts', () => {
    const k = Kernel.boot({ memoryBytes: 32 * MiB });
    const mm = k.createAddressSpace()!;
    const kaddr = k.vmallocUser(4 * MiB)!;
    const at = mm.mmap(0, 4 * MiB, RW, MAP_SHARED);
    expect(remapPartial(mm.findVma(at)!, at, kaddr, 4 * MiB)).toBe(0);
    const tables = k.stats().pageTableFrames;
    expect(mm.madvise(at + P, P, MADV_DONTNEED)).toBe(0);
    expect(k.stats().pageTableFrames).toBe(tables + 1);
    expect(mm.pagemap()).toHaveLength(1023);
    k.checkInvariants();
  });

  it('MADV_RANDOM and MADV_SEQUENTIAL set VM_RAND_READ / VM_SEQ_READ, splitting and merging as mprotect', () => {
    const k = Kernel.boot({ memoryBytes: 8 * MiB });
    const mm = k.createAddressSpace()!;
    const at = mm.mmap(0x1000_0000, 6 * P, RW, MAP_SHARED | MAP_FIXED);
    expect(mm.madvise(at + 2 * P, 2 * P, MADV_RANDOM)).toBe(0);
    expect(
      mm.vmas().map((v) => [(v.start - at) / P, v.flags & (VM_RAND_READ | VM_SEQ_READ)]),
    ).toEqual([
      [0, 0],
      [2, VM_RAND_READ],
      [4, 0],
    ]);
    expect(mm.smaps()).toMatch(/VmFlags: rd wr sh rr \n/);
    expect(mm.madvise(at, 6 * P, MADV_SEQUENTIAL)).toBe(0);
    expect(mm.vmas().map((v) => v.flags & (VM_RAND_READ | VM_SEQ_READ))).toEqual([VM_SEQ_READ]);
    expect(mm.madvise(at, 6 * P, MADV_NORMAL)).toBe(0);
    expect(mm.vmas()).toHaveLength(1);
    k.checkInvariants();
  });
});

describe('mincore', () => {
  it('answers 1 for each page with a PTE (LTP mincore02), -EINVAL and -ENOMEM as mincore01', () => {
    // mincore02.c: the pages made resident read as 1; mincore01.c: an unaligned address is EINVAL,
    // a range with an unmapped page is ENOMEM
    const s = setupMapping({ areaPages: 2, vmaPages: 4, at: 0x1000_0000 });
    expect(remapPartial(s.vma, s.uaddr + P, s.kaddr, 2 * P)).toBe(0);
    expect(s.mm.mincore(s.uaddr, 4 * P)).toEqual(Uint8Array.of(0, 1, 1, 0));
    expect(s.mm.mincore(s.uaddr + P, P + 1)).toEqual(Uint8Array.of(1, 1));
    expect(s.mm.mincore(s.uaddr, 0)).toEqual(new Uint8Array(0));
    expect(s.mm.mincore(s.uaddr + 1, P)).toBe(-EINVAL);
    expect(s.mm.mincore(s.uaddr, 5 * P)).toBe(-ENOMEM);
    expect(s.mm.mincore(s.uaddr - P, P)).toBe(-ENOMEM);
  });
});

describe('smaps', () => {
  it('shows each maps line with Size, Rss and the VmFlags codes', () => {
    const s = setupMapping({ areaPages: 2, vmaPages: 4 });
    expect(remapPartial(s.vma, s.uaddr, s.kaddr, 2 * P)).toBe(0);
    const wo = s.mm.mmap(0, P, PROT_WRITE, MAP_SHARED);
    const ro = s.mm.mmap(0, 2 * P, PROT_READ, MAP_SHARED);
    const hex = (n: number): string => n.toString(16).padStart(8, '0');
    expect(s.mm.smaps()).toBe(
      [
        `${hex(ro)}-${hex(ro + 2 * P)} r--s 00000000 00:00 0 `,
        'Size:                  8 kB',
        'KernelPageSize:        4 kB',
        'MMUPageSize:           4 kB',
        'Rss:                   0 kB',
        'VmFlags: rd sh ',
        `${hex(wo)}-${hex(wo + P)} -w-s 00000000 00:00 0 `,
        'Size:                  4 kB',
        'KernelPageSize:        4 kB',
        'MMUPageSize:           4 kB',
        'Rss:                   0 kB',
        'VmFlags: wr sh ',
        `${hex(s.uaddr)}-${hex(s.uaddr + 4 * P)} rw-s 00000000 00:00 0 `,
        'Size:                 16 kB',
        'KernelPageSize:        4 kB',
        'MMUPageSize:           4 kB',
        'Rss:                   8 kB',
        'VmFlags: rd wr sh de dd mm ',
        '',
      ].join('\n'),
    );
    s.mm.destroy();
    expect(s.mm.smaps()).toBe('');
  });
});
