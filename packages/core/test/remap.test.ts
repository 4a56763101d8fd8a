import { describe, expect, it } from 'vitest';
import {
  EBUSY,
  EFAULT,
  EINVAL,
  ENOMEM,
  FRAME_PAGE_TABLE,
  Kernel,
  MAP_FIXED,
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
  Vma,
  remapPartial,
  remapVmallocRange,
  remapVmallocRangePartial,
} from '../src/index.js';
import {
  MiB,
  RW,
  areaPfns,
  captureState,
  eatFrames,
  expectFailsCleanly,
  expectSegv,
  expectUnchanged,
  pattern,
  ptesIn,
  setupMapping,
  vmaData,
  type MapSetup,
} from './helpers/mm-helpers.js';

const P = PAGE_SIZE;
const MARKS = VM_MIXEDMAP | VM_DONTEXPAND | VM_DONTDUMP;

/**
 * The baseline every check-table row perturbs: `remapPartial(vma, uaddr, kaddr, 4 pages)` into an
 * 8-page VMA from a 4-page `vmallocUser` area, which succeeds. Around it: a second VMA of the same
 * address space already mapped (so there are PTEs and references a failed call must not touch), a
 * `vmalloc` area, a `vzalloc` area and a freed `vmallocUser` area.
 */
interface Rich extends MapSetup {
  readonly otherKaddr: number;
  readonly otherUaddr: number;
  readonly vmallocArea: number;
  readonly vzallocArea: number;
  readonly freedArea: number;
}

function richSetup(): Rich {
  const s = setupMapping({ areaPages: 4, vmaPages: 8 });
  const { k, mm } = s;
  const otherKaddr = k.vmallocUser(2 * P)!;
  const otherUaddr = mm.mmap(0, 2 * P, RW, MAP_SHARED);
  expect(remapPartial(mm.findVma(otherUaddr)!, otherUaddr, otherKaddr, 2 * P)).toBe(0);
  const vmallocArea = k.vmalloc(4 * P)!;
  const vzallocArea = k.vzalloc(4 * P)!;
  const freedArea = k.vmallocUser(4 * P)!;
  k.vfree(freedArea);
  expect(k.findVmArea(freedArea)).toBeNull();
  return { ...s, otherKaddr, otherUaddr, vmallocArea, vzallocArea, freedArea };
}

/** A tiny kernel whose frames can be eaten quickly. */
function tinyKernel(): Kernel {
  return Kernel.boot({ memoryBytes: 1 * MiB, maxVmas: 64, maxAddressSpaces: 4 });
}

describe('remapPartial: the baseline the row tests perturb', () => {
  it('succeeds with the baseline arguments', () => {
    const s = richSetup();
    expect(remapPartial(s.vma, s.uaddr, s.kaddr, 4 * P)).toBe(0);
    s.k.checkInvariants();
  });

  it('is the same function as remapVmallocRangePartial', () => {
    expect(remapPartial).toBe(remapVmallocRangePartial);
  });
});

describe('remapPartial row 1: the VMA must be a live VMA', () => {
  const notVmas: [string, (s: Rich) => unknown][] = [
    ['undefined', () => undefined],
    ['null', () => null],
    ['a number', () => 1],
    ['a string', () => 'vma'],
    ['an empty object', () => ({})],
    ['a plain object with the VMA fields', (s) => vmaData(s.vma)],
    ['the address space', (s) => s.mm],
    ['the kernel', (s) => s.k],
    [
      'an object that only has the Vma prototype',
      (): unknown => Object.create(Vma.prototype) as unknown,
    ],
    ['a Vma handle with a slot outside the table', (s) => new Vma(s.k.mem, 1e9, 0)],
  ];
  it.each(notVmas)('refuses %s with -EINVAL and changes nothing', (_, make) => {
    const s = richSetup();
    const vma = make(s) as Vma;
    expectFailsCleanly(s.k, () => remapPartial(vma, s.uaddr, s.kaddr, 4 * P), EINVAL);
    expectFailsCleanly(s.k, () => remapVmallocRange(vma, s.kaddr, 0), EINVAL);
  });

  it('refuses a Vma whose range was wholly unmapped', () => {
    const s = richSetup();
    expect(s.mm.munmap(s.uaddr, 8 * P)).toBe(0);
    expect(s.vma.live).toBe(false);
    expectFailsCleanly(s.k, () => remapPartial(s.vma, s.uaddr, s.kaddr, 4 * P), EINVAL);
  });

  it('refuses a stale Vma even after a new VMA is mapped at the same place', () => {
    const s = richSetup();
    expect(s.mm.munmap(s.uaddr, 8 * P)).toBe(0);
    expect(s.mm.mmap(s.uaddr, 8 * P, RW, MAP_SHARED | MAP_FIXED)).toBe(s.uaddr);
    expectFailsCleanly(s.k, () => remapPartial(s.vma, s.uaddr, s.kaddr, 4 * P), EINVAL);
    // the new VMA at the same place takes the mapping
    expect(remapPartial(s.mm.findVma(s.uaddr)!, s.uaddr, s.kaddr, 4 * P)).toBe(0);
  });

  it('refuses a Vma replaced by a MAP_FIXED mapping over it', () => {
    const s = richSetup();
    expect(s.mm.mmap(s.uaddr, 8 * P, PROT_READ, MAP_SHARED | MAP_FIXED)).toBe(s.uaddr);
    expectFailsCleanly(s.k, () => remapPartial(s.vma, s.uaddr, s.kaddr, 4 * P), EINVAL);
  });

  it('refuses a Vma of a destroyed address space, also once its slot is reused', () => {
    const s = richSetup();
    s.mm.destroy();
    expectFailsCleanly(s.k, () => remapPartial(s.vma, s.uaddr, s.kaddr, 4 * P), EINVAL);
    const again = s.k.createAddressSpace()!;
    expect(again.mmap(s.uaddr, 8 * P, RW, MAP_SHARED | MAP_FIXED)).toBe(s.uaddr);
    expectFailsCleanly(s.k, () => remapPartial(s.vma, s.uaddr, s.kaddr, 4 * P), EINVAL);
    expect(again.pagemap()).toEqual([]);
  });
});

describe('remapPartial row 2: size must be a positive safe integer', () => {
  const sizes: [string, unknown][] = [
    ['0 (stronger than Linux)', 0],
    ['-1', -1],
    ['-PAGE_SIZE', -P],
    ['fractional', 1.5],
    ['fractional above a page', P + 0.5],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
    ['a numeric string', String(4 * P)],
    ['2^53', 2 ** 53],
    ['a bigint', BigInt(4 * P)],
    ['undefined', undefined],
    ['null', null],
  ];
  it.each(sizes)('refuses size %s with -EINVAL and changes nothing', (_, size) => {
    const s = richSetup();
    expectFailsCleanly(s.k, () => remapPartial(s.vma, s.uaddr, s.kaddr, size as number), EINVAL);
  });
});

describe('remapPartial row 3: size is rounded up to whole pages', () => {
  it('maps one page for a size of 1 byte', () => {
    const s = richSetup();
    expect(remapPartial(s.vma, s.uaddr, s.kaddr, 1)).toBe(0);
    expect(ptesIn(s.mm, s.uaddr, 8).map((e) => e.uaddr)).toEqual([s.uaddr]);
    s.k.checkInvariants();
  });

  it('maps two pages for a size of one page and one byte', () => {
    const s = richSetup();
    expect(remapPartial(s.vma, s.uaddr, s.kaddr, P + 1)).toBe(0);
    expect(ptesIn(s.mm, s.uaddr, 8).map((e) => e.uaddr)).toEqual([s.uaddr, s.uaddr + P]);
    s.k.checkInvariants();
  });

  it('counts the rounded-up size against the area (4 pages + 1 byte overruns a 4-page area)', () => {
    const s = richSetup();
    expectFailsCleanly(s.k, () => remapPartial(s.vma, s.uaddr, s.kaddr, 4 * P + 1), EINVAL);
  });
});

describe('remapPartial row 4: uaddr and kaddr must be page-aligned non-negative safe integers', () => {
  const bad: [string, (s: Rich) => unknown][] = [
    ['one byte past a page', (s) => s.uaddr + 1],
    ['half a page past a page', (s) => s.uaddr + P / 2],
    ['negative', () => -P],
    ['2^53 (aligned but unsafe)', () => 2 ** 53],
    ['NaN', () => Number.NaN],
    ['Infinity', () => Number.POSITIVE_INFINITY],
    ['fractional', (s) => s.uaddr + 0.5],
    ['a numeric string', (s) => String(s.uaddr)],
    ['undefined', () => undefined],
  ];
  it.each(bad)('refuses uaddr %s with -EINVAL and changes nothing', (_, make) => {
    const s = richSetup();
    const uaddr = make(s) as number;
    expectFailsCleanly(s.k, () => remapPartial(s.vma, uaddr, s.kaddr, 4 * P), EINVAL);
  });

  const badK: [string, (s: Rich) => unknown][] = [
    ['one byte past its base', (s) => s.kaddr + 1],
    ['half a page into the area', (s) => s.kaddr + P / 2],
    ['negative', (s) => -s.kaddr],
    ['2^53 (aligned but unsafe)', () => 2 ** 53],
    ['NaN', () => Number.NaN],
    ['Infinity', () => Number.POSITIVE_INFINITY],
    ['a numeric string', (s) => String(s.kaddr)],
    ['null', () => null],
  ];
  it.each(badK)('refuses kaddr %s with -EINVAL and changes nothing', (_, make) => {
    const s = richSetup();
    const kaddr = make(s) as number;
    expectFailsCleanly(s.k, () => remapPartial(s.vma, s.uaddr, kaddr, 4 * P), EINVAL);
  });
});

describe('remapPartial row 5: a live vmalloc area must contain kaddr', () => {
  const outside: [string, (s: Rich) => number][] = [
    ['0', () => 0],
    ['a user address', (s) => s.uaddr],
    ['the hole after the last area', (s) => s.k.vmallocAreas().at(-1)!.addr + 64 * P],
    ['a freed area', (s) => s.freedArea],
    ['the guard page after the area', (s) => s.kaddr + 4 * P],
  ];
  it.each(outside)('refuses kaddr at %s with -EINVAL and changes nothing', (_, make) => {
    const s = richSetup();
    const kaddr = make(s);
    expectFailsCleanly(s.k, () => remapPartial(s.vma, s.uaddr, kaddr, P), EINVAL);
  });
});

describe('remapPartial row 6: the area must be VM_USERMAP', () => {
  it('refuses a vmalloc area with -EINVAL and changes nothing', () => {
    const s = richSetup();
    expectFailsCleanly(s.k, () => remapPartial(s.vma, s.uaddr, s.vmallocArea, 4 * P), EINVAL);
  });

  it('refuses a vzalloc area with -EINVAL and changes nothing', () => {
    const s = richSetup();
    expectFailsCleanly(s.k, () => remapPartial(s.vma, s.uaddr, s.vzallocArea, 4 * P), EINVAL);
  });

  it('refuses an interior page of a vmalloc area too', () => {
    const s = richSetup();
    expectFailsCleanly(s.k, () => remapPartial(s.vma, s.uaddr, s.vmallocArea + P, P), EINVAL);
  });
});

describe('remapPartial row 7: the range must stay inside the area (stronger than Linux)', () => {
  it('refuses an interior kaddr whose range overruns the area', () => {
    const s = richSetup();
    expectFailsCleanly(s.k, () => remapPartial(s.vma, s.uaddr, s.kaddr + P, 4 * P), EINVAL);
    expectFailsCleanly(s.k, () => remapPartial(s.vma, s.uaddr, s.kaddr + 3 * P, 2 * P), EINVAL);
  });

  it('refuses a size larger than the area at its base', () => {
    const s = richSetup();
    expectFailsCleanly(s.k, () => remapPartial(s.vma, s.uaddr, s.kaddr, 5 * P), EINVAL);
    expectFailsCleanly(s.k, () => remapPartial(s.vma, s.uaddr, s.kaddr, 8 * P), EINVAL);
  });

  it.each([2 ** 40, 2 ** 52, Number.MAX_SAFE_INTEGER])(
    'refuses a huge safe size (%s) with -EINVAL, without trying to map it',
    (size) => {
      const s = richSetup();
      expectFailsCleanly(s.k, () => remapPartial(s.vma, s.uaddr, s.kaddr, size), EINVAL);
    },
  );

  it('accepts an interior kaddr whose range ends exactly at the end of the area', () => {
    const s = richSetup();
    const before = areaPfns(s.k, s.kaddr, 4);
    expect(remapPartial(s.vma, s.uaddr + P, s.kaddr + P, 3 * P)).toBe(0);
    expect(ptesIn(s.mm, s.uaddr, 8).map((e) => [e.uaddr, e.pfn])).toEqual(
      [1, 2, 3].map((i) => [s.uaddr + i * P, before[i]]),
    );
    s.k.checkInvariants();
  });
});

describe('remapPartial row 8: the user range must lie inside the VMA', () => {
  const outside: [string, (s: Rich) => [number, number]][] = [
    ['a range that overruns the VMA end', (s) => [s.uaddr + 5 * P, 4 * P]],
    ['a range starting at the VMA end', (s) => [s.uaddr + 8 * P, P]],
    ['a range starting below the VMA', (s) => [s.uaddr - P, 2 * P]],
    ['a range in another VMA', (s) => [s.otherUaddr, P]],
    ['a range far below, in no VMA', () => [16 * P, P]],
    ['a range above the user address space', () => [2 ** 40, P]],
  ];
  it.each(outside)('refuses %s with -EFAULT and changes nothing', (_, make) => {
    const s = richSetup();
    const [uaddr, size] = make(s);
    expectFailsCleanly(s.k, () => remapPartial(s.vma, uaddr, s.kaddr, size), EFAULT);
  });

  it('refuses a range larger than the VMA even when the area is large enough', () => {
    const s = setupMapping({ areaPages: 8, vmaPages: 4 });
    expectFailsCleanly(s.k, () => remapPartial(s.vma, s.uaddr, s.kaddr, 5 * P), EFAULT);
  });
});

describe('remapPartial row 9: no page of the user range may have a PTE yet', () => {
  it('refuses a range that overlaps one existing PTE with -EBUSY and changes nothing', () => {
    const s = richSetup();
    expect(remapPartial(s.vma, s.uaddr + 5 * P, s.kaddr + 3 * P, P)).toBe(0);
    expectFailsCleanly(s.k, () => remapPartial(s.vma, s.uaddr + 2 * P, s.kaddr, 4 * P), EBUSY);
  });

  it('refuses mapping the same range twice', () => {
    const s = richSetup();
    expect(remapPartial(s.vma, s.uaddr, s.kaddr, 4 * P)).toBe(0);
    expectFailsCleanly(s.k, () => remapPartial(s.vma, s.uaddr, s.kaddr, 4 * P), EBUSY);
  });

  it('refuses a PROT_NONE PTE as busy too (it still holds its frame)', () => {
    const s = richSetup();
    expect(remapPartial(s.vma, s.uaddr, s.kaddr, P)).toBe(0);
    expect(s.mm.mprotect(s.uaddr, 8 * P, PROT_NONE)).toBe(0);
    const vma = s.mm.findVma(s.uaddr)!;
    expectFailsCleanly(s.k, () => remapPartial(vma, s.uaddr, s.kaddr + P, P), EBUSY);
  });
});

describe('remapPartial row 10: page tables must be allocatable', () => {
  it('returns -ENOMEM and changes nothing when no frame is left for a page table', () => {
    const k = tinyKernel();
    const mm = k.createAddressSpace()!;
    const kaddr = k.vmallocUser(2 * P)!;
    const uaddr = mm.mmap(0, 2 * P, RW, MAP_SHARED);
    const vma = mm.findVma(uaddr)!;
    const eater = eatFrames(k);
    expectFailsCleanly(k, () => remapPartial(vma, uaddr, kaddr, 2 * P), ENOMEM);
    k.vfree(eater);
    expect(remapPartial(vma, uaddr, kaddr, 2 * P)).toBe(0);
    k.checkInvariants();
  });

  it('takes no page table at all when it cannot take every one the range needs', () => {
    const k = tinyKernel();
    const mm = k.createAddressSpace()!;
    const kaddr = k.vmallocUser(2 * P)!;
    // one page on each side of a 4 MiB page-table boundary: two page tables needed
    const uaddr = 4 * MiB - P;
    expect(mm.mmap(uaddr, 2 * P, RW, MAP_SHARED | MAP_FIXED)).toBe(uaddr);
    const vma = mm.findVma(uaddr)!;
    const eater = eatFrames(k, 1);
    expectFailsCleanly(k, () => remapPartial(vma, uaddr, kaddr, 2 * P), ENOMEM);
    expect(k.stats().freeFrames).toBe(1);
    k.vfree(eater);
    const before = k.stats();
    expect(remapPartial(vma, uaddr, kaddr, 2 * P)).toBe(0);
    expect(k.stats().pageTableFrames).toBe(before.pageTableFrames + 2);
    expect(k.stats().freeFrames).toBe(before.freeFrames - 2);
    k.checkInvariants();
  });

  it('needs no free frame when the page table already exists', () => {
    const k = tinyKernel();
    const mm = k.createAddressSpace()!;
    const a = k.vmallocUser(P)!;
    const b = k.vmallocUser(P)!;
    const ua = mm.mmap(8 * P, P, RW, MAP_SHARED | MAP_FIXED);
    const ub = mm.mmap(9 * P, P, RW, MAP_SHARED | MAP_FIXED);
    expect(remapPartial(mm.findVma(ua)!, ua, a, P)).toBe(0);
    eatFrames(k);
    expect(remapPartial(mm.findVma(ub)!, ub, b, P)).toBe(0);
    expect(k.stats().freeFrames).toBe(0);
    k.checkInvariants();
  });
});

describe('remapPartial row 11: success', () => {
  const prots: [string, number, number, number][] = [
    // name, VMA prot, PTE prot reported by pagemap, VM_READ/VM_WRITE flags
    ['read/write', RW, RW, VM_READ | VM_WRITE],
    ['read-only', PROT_READ, PROT_READ, VM_READ],
    ['write-only (VM_WRITE without VM_READ; its PTEs let reads through)', PROT_WRITE, RW, VM_WRITE],
    ['PROT_NONE', PROT_NONE, PROT_NONE, 0],
  ];
  it.each(prots)(
    'maps a %s VMA: PTEs with its protection, one reference per frame, the VMA marked',
    (_, prot, pteProt, vmFlags) => {
      const s = setupMapping({ areaPages: 4, vmaPages: 6, prot });
      const { k, mm } = s;
      expect(s.vma.flags).toBe(VM_SHARED | vmFlags);
      const pfns = areaPfns(k, s.kaddr, 4);
      const before = captureState(k);
      expect(remapPartial(s.vma, s.uaddr + P, s.kaddr, 4 * P)).toBe(0);
      expect(mm.pagemap()).toEqual(
        pfns.map((pfn, i) => ({ uaddr: s.uaddr + (i + 1) * P, pfn, prot: pteProt })),
      );
      const after = k.frameSnapshot();
      for (const pfn of pfns) expect(after.refcounts[pfn!]).toBe(before.refcounts[pfn!]! + 1);
      expect(s.vma.flags).toBe(VM_SHARED | vmFlags | MARKS);
      expect(s.vma.prot).toBe(prot);
      // the only other change: one page table, owned by this address space
      const stats = k.stats();
      expect(stats.pageTableFrames).toBe(before.stats.pageTableFrames + 1);
      expect(stats.freeFrames).toBe(before.stats.freeFrames - 1);
      const newTables = [...after.kinds.keys()].filter(
        (pfn) => after.kinds[pfn] === FRAME_PAGE_TABLE && before.kinds[pfn] !== FRAME_PAGE_TABLE,
      );
      expect(newTables).toHaveLength(1);
      expect(after.owners[newTables[0]!]).toBe(mm.id);
      k.checkInvariants();
    },
  );

  it('lets the user see the area data through the mapping', () => {
    const s = setupMapping({ areaPages: 3 });
    const data = pattern(3 * P, 7);
    s.k.writeKernel(s.kaddr, data);
    expect(remapPartial(s.vma, s.uaddr, s.kaddr, 3 * P)).toBe(0);
    expect(s.mm.read(s.uaddr, 3 * P)).toEqual(data);
  });

  it('maps one area into two address spaces: two references per frame, one memory', () => {
    const s = setupMapping({ areaPages: 2 });
    const mm2 = s.k.createAddressSpace()!;
    const u2 = mm2.mmap(0, 2 * P, RW, MAP_SHARED);
    expect(remapPartial(s.vma, s.uaddr, s.kaddr, 2 * P)).toBe(0);
    expect(remapPartial(mm2.findVma(u2)!, u2, s.kaddr, 2 * P)).toBe(0);
    const refs = s.k.frameSnapshot().refcounts;
    for (const pfn of areaPfns(s.k, s.kaddr, 2)) expect(refs[pfn!]).toBe(3);
    s.mm.write(s.uaddr + 100, Uint8Array.of(42));
    expect(mm2.read(u2 + 100, 1)).toEqual(Uint8Array.of(42));
    s.k.checkInvariants();
  });

  it('works with a Vma handle looked up through kernel.addressSpace(id)', () => {
    const s = setupMapping({ areaPages: 2 });
    const vma = s.k.addressSpace(s.mm.id).findVma(s.uaddr + P)!;
    expect(vma.start).toBe(s.uaddr);
    expect(remapPartial(vma, s.uaddr, s.kaddr, 2 * P)).toBe(0);
    expect(s.vma.flags & MARKS).toBe(MARKS);
    expect(s.mm.pagemap()).toHaveLength(2);
  });

  it('works in the lower part of a split VMA through the old handle, which reads the new bounds', () => {
    const s = setupMapping({ areaPages: 4, vmaPages: 8 });
    expect(s.mm.munmap(s.uaddr + 4 * P, 4 * P)).toBe(0);
    expect(s.vma.live).toBe(true);
    expect(s.vma.end).toBe(s.uaddr + 4 * P);
    expectFailsCleanly(s.k, () => remapPartial(s.vma, s.uaddr + 2 * P, s.kaddr, 4 * P), EFAULT);
    expect(remapPartial(s.vma, s.uaddr, s.kaddr, 4 * P)).toBe(0);
    s.k.checkInvariants();
  });

  it('works in the kernel the Vma belongs to, whatever other kernel has an area at kaddr', () => {
    const k1 = Kernel.boot({ memoryBytes: 4 * MiB });
    const k2 = Kernel.boot({ memoryBytes: 4 * MiB });
    const mm1 = k1.createAddressSpace()!;
    const u = mm1.mmap(0, P, RW, MAP_SHARED);
    const vma = mm1.findVma(u)!;
    const k2area = k2.vmallocUser(P)!;
    k2.writeKernel(k2area, Uint8Array.of(2));
    const k2before = captureState(k2);
    // k1 has no area at that address yet
    expectFailsCleanly(k1, () => remapPartial(vma, u, k2area, P), EINVAL);
    const k1area = k1.vmallocUser(P)!;
    expect(k1area).toBe(k2area); // both kernels start their vmalloc range at the same address
    k1.writeKernel(k1area, Uint8Array.of(1));
    expect(remapPartial(vma, u, k1area, P)).toBe(0);
    expect(mm1.read(u, 1)).toEqual(Uint8Array.of(1));
    expectUnchanged(k2, k2before);
    k1.checkInvariants();
  });
});

describe('remapPartial: the order of the checks', () => {
  it('an -EINVAL cause (area not VM_USERMAP) wins over an -EFAULT one (range outside the VMA)', () => {
    const s = richSetup();
    expectFailsCleanly(
      s.k,
      () => remapPartial(s.vma, s.uaddr + 6 * P, s.vmallocArea, 4 * P),
      EINVAL,
    );
  });

  it('an -EINVAL cause (range overruns the area) wins over an -EFAULT one', () => {
    const s = richSetup();
    expectFailsCleanly(s.k, () => remapPartial(s.vma, s.uaddr + 6 * P, s.kaddr + P, 4 * P), EINVAL);
  });

  it('an -EINVAL cause (stale Vma) wins over -EFAULT and -EBUSY ones', () => {
    const s = richSetup();
    const stale = s.mm.findVma(s.otherUaddr)!;
    expect(s.mm.munmap(s.otherUaddr, 2 * P)).toBe(0);
    expect(remapPartial(s.vma, s.uaddr, s.kaddr, P)).toBe(0);
    expectFailsCleanly(s.k, () => remapPartial(stale, s.uaddr, s.kaddr, 4 * P), EINVAL);
  });

  it('an -EINVAL cause (unaligned kaddr) wins over an -EBUSY one', () => {
    const s = richSetup();
    expect(remapPartial(s.vma, s.uaddr, s.kaddr, 4 * P)).toBe(0);
    expectFailsCleanly(s.k, () => remapPartial(s.vma, s.uaddr, s.kaddr + 1, 4 * P), EINVAL);
  });

  it('an -EINVAL cause (bad size) wins over an -EFAULT one', () => {
    const s = richSetup();
    expectFailsCleanly(s.k, () => remapPartial(s.vma, 16 * P, s.kaddr, 0), EINVAL);
  });

  it('an -EFAULT cause (range overruns the VMA) wins over an -EBUSY one', () => {
    const s = richSetup();
    expect(remapPartial(s.vma, s.uaddr + 6 * P, s.kaddr, P)).toBe(0);
    expectFailsCleanly(s.k, () => remapPartial(s.vma, s.uaddr + 5 * P, s.kaddr, 4 * P), EFAULT);
  });

  it('an -EBUSY cause wins over an -ENOMEM one', () => {
    const k = tinyKernel();
    const mm = k.createAddressSpace()!;
    const kaddr = k.vmallocUser(2 * P)!;
    const uaddr = 4 * MiB - P;
    expect(mm.mmap(uaddr, 2 * P, RW, MAP_SHARED | MAP_FIXED)).toBe(uaddr);
    const vma = mm.findVma(uaddr)!;
    expect(remapPartial(vma, uaddr, kaddr, P)).toBe(0);
    eatFrames(k);
    // the second page needs a new page table (none can be had) and the first page is busy
    expectFailsCleanly(k, () => remapPartial(vma, uaddr, kaddr, 2 * P), EBUSY);
    expectFailsCleanly(k, () => remapPartial(vma, uaddr + P, kaddr + P, P), ENOMEM);
  });

  it('-EINVAL and -EFAULT causes win over an -ENOMEM one', () => {
    const k = tinyKernel();
    const mm = k.createAddressSpace()!;
    const kaddr = k.vmallocUser(2 * P)!;
    const plain = k.vmalloc(P)!;
    const uaddr = mm.mmap(0, 2 * P, RW, MAP_SHARED);
    const vma = mm.findVma(uaddr)!;
    eatFrames(k);
    expectFailsCleanly(k, () => remapPartial(vma, uaddr, plain, P), EINVAL);
    expectFailsCleanly(k, () => remapPartial(vma, uaddr, kaddr, 3 * P), EINVAL);
    expectFailsCleanly(k, () => remapPartial(vma, uaddr + P, kaddr, 2 * P), EFAULT);
    expectFailsCleanly(k, () => remapPartial(vma, uaddr, kaddr, 2 * P), ENOMEM);
  });
});

describe('remapVmallocRange', () => {
  it('maps the whole VMA from kaddr + pgoff pages', () => {
    const s = setupMapping({ areaPages: 4, vmaPages: 3 });
    const pfns = areaPfns(s.k, s.kaddr, 4);
    expect(remapVmallocRange(s.vma, s.kaddr, 1)).toBe(0);
    expect(s.mm.pagemap().map((e) => e.pfn)).toEqual(pfns.slice(1));
    expect(s.vma.flags & MARKS).toBe(MARKS);
    s.k.checkInvariants();
  });

  it('maps the whole VMA from the area base with pgoff 0', () => {
    const s = setupMapping({ areaPages: 2 });
    expect(remapVmallocRange(s.vma, s.kaddr, 0)).toBe(0);
    expect(s.mm.pagemap().map((e) => e.pfn)).toEqual(areaPfns(s.k, s.kaddr, 2));
  });

  const badPgoffs: [string, unknown][] = [
    ['negative', -1],
    ['fractional', 0.5],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['a numeric string', '0'],
    ['undefined', undefined],
    ['2^53', 2 ** 53],
    ['one whose byte offset is not a safe integer', Math.floor(2 ** 53 / P) + 1],
  ];
  it.each(badPgoffs)('refuses pgoff %s with -EINVAL and changes nothing', (_, pgoff) => {
    const s = setupMapping({ areaPages: 2 });
    expectFailsCleanly(s.k, () => remapVmallocRange(s.vma, s.kaddr, pgoff as number), EINVAL);
  });

  it('refuses a pgoff whose byte offset is safe but kaddr + offset is not', () => {
    const s = setupMapping({ areaPages: 2 });
    const pgoff = Math.floor((Number.MAX_SAFE_INTEGER - s.kaddr) / P) + 1;
    expect(Number.isSafeInteger(pgoff * P)).toBe(true);
    expectFailsCleanly(s.k, () => remapVmallocRange(s.vma, s.kaddr, pgoff), EINVAL);
  });

  it('refuses a VMA larger than what the area has from pgoff on', () => {
    const s = setupMapping({ areaPages: 4, vmaPages: 4 });
    expectFailsCleanly(s.k, () => remapVmallocRange(s.vma, s.kaddr, 1), EINVAL);
    expectFailsCleanly(s.k, () => remapVmallocRange(s.vma, s.kaddr, 4), EINVAL);
  });

  it('refuses a stale Vma, a non-Vma and a non-number kaddr', () => {
    const s = setupMapping({ areaPages: 2 });
    expectFailsCleanly(s.k, () => remapVmallocRange(null as unknown as Vma, s.kaddr, 0), EINVAL);
    expectFailsCleanly(
      s.k,
      () => remapVmallocRange(s.vma, String(s.kaddr) as unknown as number, 0),
      EINVAL,
    );
    expectFailsCleanly(s.k, () => remapVmallocRange(s.vma, s.kaddr + 1, 0), EINVAL);
    expect(s.mm.munmap(s.uaddr, 2 * P)).toBe(0);
    expectFailsCleanly(s.k, () => remapVmallocRange(s.vma, s.kaddr, 0), EINVAL);
  });

  it('returns -EBUSY for a VMA that already has a PTE', () => {
    const s = setupMapping({ areaPages: 2 });
    expect(remapPartial(s.vma, s.uaddr + P, s.kaddr, P)).toBe(0);
    expectFailsCleanly(s.k, () => remapVmallocRange(s.vma, s.kaddr, 0), EBUSY);
  });
});

describe('vfree while the area is mapped into user space', () => {
  it('keeps the frames and their data for the user, gives them to no one else, frees them with the last mapping', () => {
    const k = Kernel.boot({ memoryBytes: 4 * MiB });
    const boot = k.stats().freeFrames;
    const mm = k.createAddressSpace()!;
    const before = k.stats();
    const pages = 8;
    const kaddr = k.vmallocUser(pages * P)!;
    const data = pattern(pages * P, 3);
    k.writeKernel(kaddr, data);
    const uaddr = mm.mmap(0, pages * P, RW, MAP_SHARED);
    expect(remapPartial(mm.findVma(uaddr)!, uaddr, kaddr, pages * P)).toBe(0);
    const pinned = mm.pagemap().map((e) => e.pfn);

    k.vfree(kaddr);
    expect(k.findVmArea(kaddr)).toBeNull();
    expect(k.vmallocToPfn(kaddr)).toBeNull();
    expectSegv(() => k.readKernel(kaddr, 1), 'SEGV_MAPERR', kaddr);
    expect(k.stats().badFrees).toBe(0);
    expect(mm.read(uaddr, pages * P)).toEqual(data);
    const refs = k.frameSnapshot().refcounts;
    for (const pfn of pinned) expect(refs[pfn]).toBe(1);
    k.checkInvariants();

    // every other frame, zeroed: a pinned frame handed out again would lose the user's data
    const free = k.stats().freeFrames;
    const eater = k.vzalloc(free * P)!;
    expect(eater).not.toBeNull();
    expect(k.vmalloc(P)).toBeNull();
    const eaten = new Set(areaPfns(k, eater, free));
    expect(pinned.filter((pfn) => eaten.has(pfn))).toEqual([]);
    expect(mm.read(uaddr, pages * P)).toEqual(data);
    k.vfree(eater);

    // the user can still write; half of the mapping goes, then the rest
    mm.write(uaddr, Uint8Array.of(9, 9, 9));
    expect(mm.read(uaddr, 3)).toEqual(Uint8Array.of(9, 9, 9));
    const tables = k.stats().pageTableFrames - before.pageTableFrames;
    expect(mm.munmap(uaddr, (pages / 2) * P)).toBe(0);
    expect(k.stats().freeFrames).toBe(before.freeFrames - tables - pages / 2);
    expect(mm.read(uaddr + (pages / 2) * P, (pages / 2) * P)).toEqual(
      data.subarray((pages / 2) * P),
    );
    k.checkInvariants();
    expect(mm.munmap(uaddr + (pages / 2) * P, (pages / 2) * P)).toBe(0);
    expect(k.stats().freeFrames + k.stats().pageTableFrames).toBe(
      before.freeFrames + before.pageTableFrames,
    );
    mm.destroy();
    expect(k.stats().freeFrames).toBe(boot);
    k.checkInvariants();
  });

  it('keeps frames mapped in two address spaces until both mappings are gone', () => {
    const k = Kernel.boot({ memoryBytes: 4 * MiB });
    const boot = k.stats().freeFrames;
    const mm1 = k.createAddressSpace()!;
    const mm2 = k.createAddressSpace()!;
    const kaddr = k.vmallocUser(2 * P)!;
    k.writeKernel(kaddr, pattern(2 * P, 11));
    const u1 = mm1.mmap(0, 2 * P, RW, MAP_SHARED);
    const u2 = mm2.mmap(0, 2 * P, PROT_READ, MAP_SHARED);
    expect(remapPartial(mm1.findVma(u1)!, u1, kaddr, 2 * P)).toBe(0);
    expect(remapPartial(mm2.findVma(u2)!, u2, kaddr, 2 * P)).toBe(0);
    const pinned = mm1.pagemap().map((e) => e.pfn);
    k.vfree(kaddr);
    mm1.destroy();
    expect(mm2.read(u2, 2 * P)).toEqual(pattern(2 * P, 11));
    const free = k.stats().freeFrames;
    const eater = k.vzalloc(free * P)!;
    const eaten = new Set(areaPfns(k, eater, free));
    expect(pinned.filter((pfn) => eaten.has(pfn))).toEqual([]);
    expect(mm2.read(u2, 2 * P)).toEqual(pattern(2 * P, 11));
    k.vfree(eater);
    k.checkInvariants();
    mm2.destroy();
    expect(k.stats().freeFrames).toBe(boot);
    k.checkInvariants();
  });

  it('lets a new area reuse the freed address while the old frames stay with the user', () => {
    const s = setupMapping({ areaPages: 2 });
    const { k, mm } = s;
    k.writeKernel(s.kaddr, pattern(2 * P, 5));
    expect(remapPartial(s.vma, s.uaddr, s.kaddr, 2 * P)).toBe(0);
    k.vfree(s.kaddr);
    const again = k.vmallocUser(2 * P)!;
    expect(k.readKernel(again, 2 * P)).toEqual(new Uint8Array(2 * P));
    const fresh = new Set(areaPfns(k, again, 2));
    expect(mm.pagemap().filter((e) => fresh.has(e.pfn))).toEqual([]);
    expect(mm.read(s.uaddr, 2 * P)).toEqual(pattern(2 * P, 5));
    // the stale mapping keeps the range busy; a remap of the new area goes elsewhere
    expectFailsCleanly(k, () => remapPartial(s.vma, s.uaddr, again, 2 * P), EBUSY);
    k.checkInvariants();
  });
});
