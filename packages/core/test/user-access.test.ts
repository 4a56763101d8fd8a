import { describe, expect, it } from 'vitest';
import {
  Kernel,
  MAP_FIXED,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
  SegmentationFault,
  remapPartial,
} from '../src/index.js';
import {
  MiB,
  RW,
  areaPfns,
  expectBus,
  expectSegv,
  fragmentFrames,
  pattern,
  runLengths,
  setupMapping,
} from './helpers/mm-helpers.js';

const P = PAGE_SIZE;
const TASK_SIZE = 2 ** 32;

function lengths(views: Uint8Array[]): number[] {
  return views.map((v) => v.length);
}

/** The frames behind `pages` user pages, from the page tables. */
function userPfns(
  mm: { pagemap(): { uaddr: number; pfn: number }[] },
  uaddr: number,
  pages: number,
): number[] {
  const byAddr = new Map(mm.pagemap().map((e) => [e.uaddr, e.pfn]));
  return Array.from({ length: pages }, (_, i) => byAddr.get(uaddr + i * P)!);
}

describe('AddressSpace.segments', () => {
  it('returns views straight into the frames: another mapping and the kernel see a write with no copy', () => {
    const s = setupMapping({ areaPages: 4 });
    const { k, mm } = s;
    const mm2 = k.createAddressSpace()!;
    const u2 = mm2.mmap(0, 4 * P, PROT_READ, MAP_SHARED);
    expect(remapPartial(s.vma, s.uaddr, s.kaddr, 4 * P)).toBe(0);
    expect(remapPartial(mm2.findVma(u2)!, u2, s.kaddr, 4 * P)).toBe(0);
    const readers = mm2.segments(u2, 4 * P);
    const writers = mm.segments(s.uaddr, 4 * P, { write: true });
    for (const v of [...readers, ...writers]) expect(v.buffer).toBe(k.handle.buffer);
    const data = pattern(4 * P, 1);
    let at = 0;
    for (const v of writers) {
      v.set(data.subarray(at, at + v.length));
      at += v.length;
    }
    expect(at).toBe(4 * P);
    // the views taken before the write see it: they are the memory
    const seen = new Uint8Array(4 * P);
    at = 0;
    for (const v of readers) {
      seen.set(v, at);
      at += v.length;
    }
    expect(seen).toEqual(data);
    expect(k.readKernel(s.kaddr, 4 * P)).toEqual(data);
    expect(mm2.read(u2, 4 * P)).toEqual(data);
    // and the other way round: a kernel write shows in the user's views
    k.writeKernel(s.kaddr + 5, Uint8Array.of(0xee));
    expect(writers[0]![5]).toBe(0xee);
  });

  it('gives one view for a physically contiguous area, whatever the offsets', () => {
    const s = setupMapping({ areaPages: 4 });
    expect(remapPartial(s.vma, s.uaddr, s.kaddr, 4 * P)).toBe(0);
    const pfns = areaPfns(s.k, s.kaddr, 4) as number[];
    expect(runLengths(pfns)).toEqual([4]);
    const whole = s.mm.segments(s.uaddr, 4 * P);
    expect(lengths(whole)).toEqual([4 * P]);
    expect(whole[0]!.byteOffset).toBe(pfns[0]! * P);
    const inner = s.mm.segments(s.uaddr + 100, 3 * P);
    expect(lengths(inner)).toEqual([3 * P]);
    expect(inner[0]!.byteOffset).toBe(pfns[0]! * P + 100);
  });

  it('gives one view per physically contiguous run of a fragmented area', () => {
    const k = Kernel.boot({ memoryBytes: 2 * MiB });
    const keep = fragmentFrames(k, 8);
    const kaddr = k.vmallocUser(8 * P)!;
    const pfns = areaPfns(k, kaddr, 8) as number[];
    const runs = runLengths(pfns);
    expect(runs.length).toBeGreaterThan(1);
    for (const kept of keep) k.vfree(kept);
    const mm = k.createAddressSpace()!;
    const u = mm.mmap(0, 8 * P, RW, MAP_SHARED);
    expect(remapPartial(mm.findVma(u)!, u, kaddr, 8 * P)).toBe(0);
    const views = mm.segments(u, 8 * P);
    expect(lengths(views)).toEqual(runs.map((n) => n * P));
    let page = 0;
    for (const [i, v] of views.entries()) {
      expect(v.byteOffset).toBe(pfns[page]! * P);
      page += runs[i]!;
    }
    // an unaligned range: the first and last views are cut, the lengths still add up
    const cut = mm.segments(u + 10, 8 * P - 30);
    expect(cut.length).toBe(runs.length);
    expect(cut.reduce((n, v) => n + v.length, 0)).toBe(8 * P - 30);
    expect(cut[0]!.length).toBe(runs[0]! * P - 10);
    expect(cut.at(-1)!.length).toBe(runs.at(-1)! * P - 20);
    // the data in the views is the area's, in address order
    const data = pattern(8 * P, 9);
    k.writeKernel(kaddr, data);
    const joined = new Uint8Array(8 * P);
    let at = 0;
    for (const v of views) {
      joined.set(v, at);
      at += v.length;
    }
    expect(joined).toEqual(data);
    k.checkInvariants();
  });

  it('gives one view per page when the pages are mapped in reverse physical order', () => {
    const s = setupMapping({ areaPages: 4 });
    for (let i = 0; i < 4; i++) {
      expect(remapPartial(s.vma, s.uaddr + i * P, s.kaddr + (3 - i) * P, P)).toBe(0);
    }
    const views = s.mm.segments(s.uaddr + P / 2, 3 * P);
    expect(lengths(views)).toEqual([P / 2, P, P, P / 2]);
    const pfns = userPfns(s.mm, s.uaddr, 4);
    expect(views.map((v) => v.byteOffset)).toEqual([
      pfns[0]! * P + P / 2,
      pfns[1]! * P,
      pfns[2]! * P,
      pfns[3]! * P,
    ]);
    // a write across the page boundary lands on two frames in the right places
    s.mm.write(s.uaddr + P - 2, Uint8Array.of(1, 2, 3, 4));
    expect(s.k.readKernel(s.kaddr + 3 * P + P - 2, 2)).toEqual(Uint8Array.of(1, 2));
    expect(s.k.readKernel(s.kaddr + 2 * P, 2)).toEqual(Uint8Array.of(3, 4));
    expect(s.mm.read(s.uaddr + P - 2, 4)).toEqual(Uint8Array.of(1, 2, 3, 4));
  });

  it('follows the frames, not the VMAs: runs of two areas that are physically adjacent merge', () => {
    const k = Kernel.boot({ memoryBytes: 4 * MiB });
    const mm = k.createAddressSpace()!;
    const a = k.vmallocUser(2 * P)!;
    const b = k.vmallocUser(2 * P)!;
    expect(mm.mmap(16 * P, 2 * P, RW, MAP_SHARED | MAP_FIXED)).toBe(16 * P);
    expect(mm.mmap(18 * P, 2 * P, PROT_READ, MAP_SHARED | MAP_FIXED)).toBe(18 * P);
    expect(remapPartial(mm.findVma(16 * P)!, 16 * P, a, 2 * P)).toBe(0);
    expect(remapPartial(mm.findVma(18 * P)!, 18 * P, b, 2 * P)).toBe(0);
    const pfns = userPfns(mm, 16 * P, 4);
    expect(lengths(mm.segments(16 * P, 4 * P))).toEqual(runLengths(pfns).map((n) => n * P));
  });

  it('returns no view for length 0', () => {
    const s = setupMapping({ areaPages: 1 });
    expect(remapPartial(s.vma, s.uaddr, s.kaddr, P)).toBe(0);
    expect(s.mm.segments(s.uaddr, 0)).toEqual([]);
  });

  it('faults at the first address with no PTE: BusError inside the VMA, SEGV_MAPERR outside it', () => {
    const s = setupMapping({ areaPages: 2, vmaPages: 4 });
    const { mm, uaddr } = s;
    expect(remapPartial(s.vma, uaddr, s.kaddr, 2 * P)).toBe(0);
    expectBus(() => mm.segments(uaddr, 4 * P), uaddr + 2 * P);
    expectBus(() => mm.segments(uaddr + P + 9, 2 * P), uaddr + 2 * P);
    expectBus(() => mm.segments(uaddr + 2 * P + 7, 5), uaddr + 2 * P + 7);
    expectSegv(() => mm.segments(uaddr - P, 2 * P), 'SEGV_MAPERR', uaddr - P);
    expectBus(() => mm.read(uaddr + P, 2 * P), uaddr + 2 * P);
    expectBus(
      () => {
        mm.write(uaddr, new Uint8Array(3 * P));
      },
      uaddr + 2 * P,
    );
  });

  it('faults with SEGV_MAPERR past the user address space', () => {
    const s = setupMapping({ areaPages: 1, at: TASK_SIZE - P });
    expect(remapPartial(s.vma, s.uaddr, s.kaddr, P)).toBe(0);
    expect(s.mm.read(TASK_SIZE - 1, 1)).toHaveLength(1);
    expectSegv(() => s.mm.read(TASK_SIZE - 1, 2), 'SEGV_MAPERR', TASK_SIZE);
    expectSegv(() => s.mm.segments(TASK_SIZE, 1), 'SEGV_MAPERR', TASK_SIZE);
    expectSegv(() => s.mm.read(2 ** 40, 1), 'SEGV_MAPERR', 2 ** 40);
  });

  it('faults with SEGV_ACCERR for a write to a read-only page, at the first such address', () => {
    const s = setupMapping({ areaPages: 4, vmaPages: 4 });
    const { mm, uaddr } = s;
    expect(remapPartial(s.vma, uaddr, s.kaddr, 4 * P)).toBe(0);
    expect(mm.mprotect(uaddr + 2 * P, 2 * P, PROT_READ)).toBe(0);
    expect(mm.segments(uaddr, 4 * P).reduce((n, v) => n + v.length, 0)).toBe(4 * P);
    expectSegv(() => mm.segments(uaddr, 4 * P, { write: true }), 'SEGV_ACCERR', uaddr + 2 * P);
    expectSegv(
      () => mm.segments(uaddr + 3 * P + 1, 1, { write: true }),
      'SEGV_ACCERR',
      uaddr + 3 * P + 1,
    );
    expectSegv(
      () => {
        mm.write(uaddr + P, new Uint8Array(2 * P));
      },
      'SEGV_ACCERR',
      uaddr + 2 * P,
    );
    expect(lengths(mm.segments(uaddr, 2 * P, { write: true }))).toEqual([2 * P]);
  });

  it('reports the first faulting address when a read-only page comes before a hole', () => {
    const s = setupMapping({ areaPages: 1, vmaPages: 2, prot: PROT_READ });
    expect(remapPartial(s.vma, s.uaddr, s.kaddr, P)).toBe(0);
    expectSegv(
      () => {
        s.mm.write(s.uaddr, new Uint8Array(2 * P));
      },
      'SEGV_ACCERR',
      s.uaddr,
    );
    expectBus(() => s.mm.read(s.uaddr, 2 * P), s.uaddr + P);
  });

  it('faults after munmap, as the page tables are checked afresh', () => {
    const s = setupMapping({ areaPages: 2 });
    expect(remapPartial(s.vma, s.uaddr, s.kaddr, 2 * P)).toBe(0);
    expect(s.mm.read(s.uaddr, 2 * P)).toHaveLength(2 * P);
    expect(s.mm.munmap(s.uaddr + P, P)).toBe(0);
    expectSegv(() => s.mm.read(s.uaddr, 2 * P), 'SEGV_MAPERR', s.uaddr + P);
    expectSegv(() => s.mm.segments(s.uaddr + P, 1), 'SEGV_MAPERR', s.uaddr + P);
  });
});

describe('AddressSpace.read and write', () => {
  it('copy: the result of read and the source of write are not the memory', () => {
    const s = setupMapping({ areaPages: 2 });
    const { k, mm, uaddr } = s;
    expect(remapPartial(s.vma, uaddr, s.kaddr, 2 * P)).toBe(0);
    const src = pattern(2 * P, 4);
    mm.write(uaddr, src);
    src.fill(0);
    expect(k.readKernel(s.kaddr, 2 * P)).toEqual(pattern(2 * P, 4));
    const got = mm.read(uaddr, 2 * P);
    expect(got.buffer).not.toBe(k.handle.buffer);
    got.fill(1);
    expect(mm.read(uaddr, 2 * P)).toEqual(pattern(2 * P, 4));
  });

  it('reads and writes unaligned ranges and subarray sources', () => {
    const s = setupMapping({ areaPages: 3 });
    expect(remapPartial(s.vma, s.uaddr, s.kaddr, 3 * P)).toBe(0);
    const big = pattern(P + 50, 2);
    const part = big.subarray(25, P + 25);
    s.mm.write(s.uaddr + P - 100, part);
    expect(s.mm.read(s.uaddr + P - 100, P)).toEqual(part);
    expect(s.k.readKernel(s.kaddr + P - 100, P)).toEqual(part);
    expect(s.mm.read(s.uaddr, 0)).toEqual(new Uint8Array(0));
  });

  it('writes nothing when any byte of the range faults', () => {
    const s = setupMapping({ areaPages: 2, vmaPages: 3 });
    expect(remapPartial(s.vma, s.uaddr, s.kaddr, 2 * P)).toBe(0);
    expectBus(
      () => {
        s.mm.write(s.uaddr, new Uint8Array(3 * P).fill(7));
      },
      s.uaddr + 2 * P,
    );
    expect(s.k.readKernel(s.kaddr, 2 * P)).toEqual(new Uint8Array(2 * P));
    expect(s.mm.mprotect(s.uaddr + P, 2 * P, PROT_READ)).toBe(0);
    expectSegv(
      () => {
        s.mm.write(s.uaddr, new Uint8Array(2 * P).fill(7));
      },
      'SEGV_ACCERR',
      s.uaddr + P,
    );
    expect(s.k.readKernel(s.kaddr, 2 * P)).toEqual(new Uint8Array(2 * P));
  });

  it('throws SegmentationFault, an Error with a code, an address and a message', () => {
    const s = setupMapping({ areaPages: 1 });
    let caught: unknown;
    try {
      s.mm.read(s.uaddr + 2 ** 20, 1); // no VMA there
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(Error);
    expect(caught).toBeInstanceOf(SegmentationFault);
    expect((caught as SegmentationFault).name).toBe('SegmentationFault');
    expect((caught as SegmentationFault).message).toMatch(/SEGV_MAPERR/);
  });
});

describe('malformed arguments of the accessors', () => {
  const s = setupMapping({ areaPages: 1 });
  expect(remapPartial(s.vma, s.uaddr, s.kaddr, P)).toBe(0);
  const { k, mm, uaddr, kaddr } = s;

  const typeErrors: [string, () => unknown][] = [
    ['read with a string address', () => mm.read(String(uaddr) as unknown as number, 1)],
    ['read with an undefined address', () => mm.read(undefined as unknown as number, 1)],
    ['read with a string length', () => mm.read(uaddr, '1' as unknown as number)],
    ['read with a bigint length', () => mm.read(uaddr, 1n as unknown as number)],
    [
      'write with a string',
      () => {
        mm.write(uaddr, 'abc' as unknown as Uint8Array);
      },
    ],
    [
      'write with an array of numbers',
      () => {
        mm.write(uaddr, [1, 2] as unknown as Uint8Array);
      },
    ],
    [
      'write with null',
      () => {
        mm.write(uaddr, null as unknown as Uint8Array);
      },
    ],
    [
      'write with a string address',
      () => {
        mm.write('0' as unknown as number, Uint8Array.of(1));
      },
    ],
    ['segments with a string address', () => mm.segments(String(uaddr) as unknown as number, 1)],
    ['segments with a null length', () => mm.segments(uaddr, null as unknown as number)],
    ['readKernel with a string address', () => k.readKernel(String(kaddr) as unknown as number, 1)],
    [
      'writeKernel with a string',
      () => {
        k.writeKernel(kaddr, 'x' as unknown as Uint8Array);
      },
    ],
  ];
  it.each(typeErrors)('throws TypeError for %s', (_, call) => {
    expect(call).toThrow(TypeError);
  });

  const rangeErrors: [string, () => unknown][] = [
    ['read at a negative address', () => mm.read(-1, 1)],
    ['read at a fractional address', () => mm.read(uaddr + 0.5, 1)],
    ['read at NaN', () => mm.read(Number.NaN, 1)],
    ['read at 2^53', () => mm.read(2 ** 53, 1)],
    ['read of a negative length', () => mm.read(uaddr, -1)],
    ['read of a fractional length', () => mm.read(uaddr, 1.5)],
    ['read of an infinite length', () => mm.read(uaddr, Number.POSITIVE_INFINITY)],
    [
      'write at a negative address',
      () => {
        mm.write(-P, Uint8Array.of(1));
      },
    ],
    ['segments at Infinity', () => mm.segments(Number.POSITIVE_INFINITY, 1)],
    ['segments of a negative length', () => mm.segments(uaddr, -P)],
    ['readKernel of a negative length', () => k.readKernel(kaddr, -1)],
    ['readKernel at a fractional address', () => k.readKernel(kaddr + 0.5, 1)],
    [
      'writeKernel at NaN',
      () => {
        k.writeKernel(Number.NaN, Uint8Array.of(1));
      },
    ],
  ];
  it.each(rangeErrors)('throws RangeError for %s', (_, call) => {
    expect(call).toThrow(RangeError);
  });
});

describe('kernel-side access (readKernel, writeKernel)', () => {
  it('faults with SEGV_MAPERR at the guard page, in a freed area and outside the vmalloc range', () => {
    const k = Kernel.boot({ memoryBytes: 4 * MiB });
    const a = k.vmallocUser(2 * P)!;
    const b = k.vmalloc(P)!;
    k.vfree(b);
    expectSegv(() => k.readKernel(a + P, P + 1), 'SEGV_MAPERR', a + 2 * P);
    expectSegv(
      () => {
        k.writeKernel(a + 2 * P - 1, Uint8Array.of(1, 2));
      },
      'SEGV_MAPERR',
      a + 2 * P,
    );
    expectSegv(() => k.readKernel(b, 1), 'SEGV_MAPERR', b);
    expectSegv(() => k.readKernel(P, 1), 'SEGV_MAPERR', P);
    // a faulting kernel write wrote nothing
    expect(k.readKernel(a + 2 * P - 1, 1)).toEqual(new Uint8Array(1));
  });
});
