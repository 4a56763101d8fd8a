import { describe, expect, it } from 'vitest';
import {
  Kernel,
  PAGE_SIZE,
  SegmentationFault,
  VM_ALLOC,
  VM_USERMAP,
  VMALLOC_START,
  TASK_SIZE,
} from '../src/index.js';

const MiB = 2 ** 20;

function boot(memoryBytes = 16 * MiB): Kernel {
  return Kernel.boot({ memoryBytes });
}

describe('vmalloc, vzalloc and vmallocUser', () => {
  it('return a page-aligned kaddr in the vmalloc range, disjoint from user addresses', () => {
    const k = boot();
    for (const alloc of [k.vmalloc.bind(k), k.vzalloc.bind(k), k.vmallocUser.bind(k)]) {
      const kaddr = alloc(3 * PAGE_SIZE)!;
      expect(kaddr).not.toBeNull();
      expect(Number.isSafeInteger(kaddr)).toBe(true);
      expect(kaddr % PAGE_SIZE).toBe(0);
      expect(kaddr).toBeGreaterThanOrEqual(VMALLOC_START);
      expect(kaddr).toBeGreaterThanOrEqual(TASK_SIZE);
    }
    k.checkInvariants();
  });

  it('round the size up to whole pages and report the guard page in VmArea.size', () => {
    const k = boot();
    const kaddr = k.vmalloc(PAGE_SIZE + 1)!;
    const area = k.findVmArea(kaddr)!;
    expect(area).toEqual({ addr: kaddr, size: 3 * PAGE_SIZE, nrPages: 2, flags: VM_ALLOC });
    const free = k.stats().freeFrames;
    k.vfree(kaddr);
    expect(k.stats().freeFrames).toBe(free + 2);
  });

  it('set VM_USERMAP only for vmallocUser', () => {
    const k = boot();
    expect(k.findVmArea(k.vmalloc(PAGE_SIZE)!)!.flags & VM_USERMAP).toBe(0);
    expect(k.findVmArea(k.vzalloc(PAGE_SIZE)!)!.flags & VM_USERMAP).toBe(0);
    expect(k.findVmArea(k.vmallocUser(PAGE_SIZE)!)!.flags).toBe(VM_ALLOC | VM_USERMAP);
  });

  it('zero vzalloc and vmallocUser memory even when the frames held old data', () => {
    const k = boot(4 * MiB);
    // fill every free frame with 0xff through one big area, then free it
    const pages = k.stats().freeFrames;
    const dirty = k.vmalloc(pages * PAGE_SIZE)!;
    k.writeKernel(dirty, new Uint8Array(pages * PAGE_SIZE).fill(0xff));
    k.vfree(dirty);
    const z = k.vzalloc(pages * PAGE_SIZE)!;
    expect(k.readKernel(z, pages * PAGE_SIZE).every((b) => b === 0)).toBe(true);
    k.writeKernel(z, new Uint8Array(pages * PAGE_SIZE).fill(0xee));
    k.vfree(z);
    const u = k.vmallocUser(pages * PAGE_SIZE)!;
    expect(k.readKernel(u, pages * PAGE_SIZE).every((b) => b === 0)).toBe(true);
  });

  it('follow every area with an unmapped guard page, so areas never touch', () => {
    const k = boot();
    const a = k.vmalloc(2 * PAGE_SIZE)!;
    const b = k.vmalloc(PAGE_SIZE)!;
    expect(b).toBe(a + 3 * PAGE_SIZE); // lowest-address first fit, after a's guard page
    expect(k.vmallocToPfn(a + 2 * PAGE_SIZE)).toBeNull();
    expect(k.findVmArea(a + 2 * PAGE_SIZE)!.addr).toBe(a); // the guard belongs to its area
    let fault: unknown;
    try {
      k.readKernel(a + 2 * PAGE_SIZE - 1, 2);
    } catch (e) {
      fault = e;
    }
    expect(fault).toBeInstanceOf(SegmentationFault);
    expect((fault as SegmentationFault).code).toBe('SEGV_MAPERR');
    expect((fault as SegmentationFault).address).toBe(a + 2 * PAGE_SIZE);
  });

  it('carve areas lowest-address first fit, reusing holes left by vfree', () => {
    const k = boot();
    const a = k.vmalloc(PAGE_SIZE)!;
    const b = k.vmalloc(4 * PAGE_SIZE)!;
    const c = k.vmalloc(PAGE_SIZE)!;
    k.vfree(b);
    expect(k.vmalloc(2 * PAGE_SIZE)).toBe(b); // fits in b's hole
    expect(k.vmalloc(PAGE_SIZE)).toBe(b + 3 * PAGE_SIZE); // the rest of the hole
    expect(k.vmalloc(PAGE_SIZE)).toBe(c + 2 * PAGE_SIZE);
    expect(a).toBe(VMALLOC_START);
    k.checkInvariants();
  });

  it('prefer physically contiguous frames', () => {
    const k = boot();
    const kaddr = k.vmalloc(64 * PAGE_SIZE)!;
    const first = k.vmallocToPfn(kaddr)!;
    for (let i = 0; i < 64; i++) expect(k.vmallocToPfn(kaddr + i * PAGE_SIZE)).toBe(first + i);
  });

  it('take frames from anywhere when no contiguous run is left', () => {
    const k = Kernel.boot({ memoryBytes: 4 * MiB, maxAreas: 1024 });
    const singles: number[] = [];
    for (;;) {
      const a = k.vmalloc(PAGE_SIZE);
      if (a === null) break;
      singles.push(a);
    }
    expect(k.stats().freeFrames).toBe(0);
    // free every other page: the free frames are all isolated
    for (let i = 0; i < singles.length; i += 2) k.vfree(singles[i]!);
    const n = 32; // fits the vmalloc range left after the singles and their guard pages
    const big = k.vmalloc(n * PAGE_SIZE)!;
    expect(big).not.toBeNull();
    const pfns = Array.from({ length: n }, (_, i) => k.vmallocToPfn(big + i * PAGE_SIZE)!);
    expect(new Set(pfns).size).toBe(n);
    expect(pfns.some((p, i) => i > 0 && p !== pfns[i - 1]! + 1)).toBe(true);
    k.checkInvariants();
  });

  it.each([
    ['0', 0],
    ['negative', -PAGE_SIZE],
    ['fractional', 4096.5],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['a string', '4096'],
    ['null', null],
    ['undefined', undefined],
    ['larger than memory', 16 * MiB + PAGE_SIZE],
    ['2^53', 2 ** 53],
  ])('return null for a size that is %s, changing nothing', (_, size) => {
    const k = boot();
    const before = k.stats();
    expect(k.vmalloc(size as number)).toBeNull();
    expect(k.vzalloc(size as number)).toBeNull();
    expect(k.vmallocUser(size as number)).toBeNull();
    expect(k.stats()).toEqual(before);
    k.checkInvariants();
  });

  it('return null when frames run out, with every frame taken on the way given back', () => {
    const k = boot(4 * MiB);
    const before = k.stats();
    expect(k.vmalloc((before.freeFrames + 1) * PAGE_SIZE)).toBeNull();
    expect(k.stats()).toEqual(before);
    const all = k.vmalloc(before.freeFrames * PAGE_SIZE)!;
    expect(all).not.toBeNull();
    expect(k.vmalloc(PAGE_SIZE)).toBeNull();
    k.vfree(all);
    expect(k.stats()).toEqual(before);
    k.checkInvariants();
  });

  it('return null when the vmalloc address space runs out, with the frames given back', () => {
    const k = Kernel.boot({ memoryBytes: 4 * MiB, maxAreas: 3 });
    const before = k.stats();
    const areas = [k.vmalloc(PAGE_SIZE), k.vmalloc(PAGE_SIZE), k.vmalloc(PAGE_SIZE)];
    expect(areas.every((a) => a !== null)).toBe(true);
    const free = k.stats().freeFrames;
    expect(k.vmalloc(PAGE_SIZE)).toBeNull();
    expect(k.stats().freeFrames).toBe(free);
    for (const a of areas) k.vfree(a);
    expect(k.stats()).toEqual(before);
    k.checkInvariants();
  });
});

describe('vfree', () => {
  it('makes the kaddr dead at once and gives the frames back', () => {
    const k = boot();
    const before = k.stats();
    const kaddr = k.vmalloc(5 * PAGE_SIZE)!;
    expect(k.stats().freeFrames).toBe(before.freeFrames - 5);
    k.vfree(kaddr);
    expect(k.findVmArea(kaddr)).toBeNull();
    expect(k.vmallocToPfn(kaddr)).toBeNull();
    expect(() => k.readKernel(kaddr, 1)).toThrow(SegmentationFault);
    expect(k.stats()).toEqual(before);
  });

  it('of null is a no-op that is not counted', () => {
    const k = boot();
    const before = k.stats();
    k.vfree(null);
    expect(k.stats()).toEqual(before);
  });

  it.each([
    [
      'already freed',
      (k: Kernel, a: number): unknown => {
        k.vfree(a);
        return a;
      },
    ],
    ['interior', (_k: Kernel, a: number): unknown => a + PAGE_SIZE],
    ['the guard page', (_k: Kernel, a: number): unknown => a + 2 * PAGE_SIZE],
    ['unknown', (): unknown => VMALLOC_START + 1000 * PAGE_SIZE],
    ['unaligned', (_k: Kernel, a: number): unknown => a + 1],
    ['a user address', (): unknown => PAGE_SIZE],
    ['undefined', (): unknown => undefined],
    ['a string', (_k: Kernel, a: number): unknown => String(a)],
    ['NaN', (): unknown => Number.NaN],
    ['an object', (): unknown => ({})],
  ])('of an address that is %s changes nothing and is counted in badFrees', (_, pick) => {
    const k = boot();
    const keep = k.vmalloc(2 * PAGE_SIZE)!;
    const victim = k.vmalloc(2 * PAGE_SIZE)!;
    const bad = pick(k, victim);
    const before = k.stats();
    k.vfree(bad as number);
    expect(k.stats()).toEqual({ ...before, badFrees: before.badFrees + 1 });
    expect(k.findVmArea(keep)).not.toBeNull();
    k.checkInvariants();
  });
});

describe('findVmArea and vmallocToPfn', () => {
  it('find the area containing any of its pages, guard included, and nothing else', () => {
    const k = boot();
    const kaddr = k.vmallocUser(3 * PAGE_SIZE)!;
    for (let i = 0; i < 4; i++) expect(k.findVmArea(kaddr + i * PAGE_SIZE + 17)?.addr).toBe(kaddr);
    expect(k.findVmArea(kaddr + 4 * PAGE_SIZE)).toBeNull();
    expect(k.findVmArea(PAGE_SIZE)).toBeNull();
    expect(k.findVmArea(Number.NaN)).toBeNull();
    expect(k.findVmArea('x' as unknown as number)).toBeNull();
  });

  it('walk the kernel page table to the frame that holds the bytes', () => {
    const k = boot();
    const kaddr = k.vmalloc(2 * PAGE_SIZE)!;
    k.writeKernel(kaddr + PAGE_SIZE + 5, Uint8Array.of(0x5a));
    const pfn = k.vmallocToPfn(kaddr + PAGE_SIZE + 5)!;
    expect(new Uint8Array(k.handle.buffer)[pfn * PAGE_SIZE + 5]).toBe(0x5a);
    expect(k.vmallocToPfn(VMALLOC_START - PAGE_SIZE)).toBeNull();
  });
});

describe('readKernel and writeKernel', () => {
  it('copy across page boundaries of an area', () => {
    const k = boot();
    const kaddr = k.vmalloc(3 * PAGE_SIZE)!;
    const data = Uint8Array.from({ length: 2 * PAGE_SIZE }, (_, i) => i * 7);
    k.writeKernel(kaddr + 100, data);
    expect(k.readKernel(kaddr + 100, data.length)).toEqual(data);
    // a copy: changing it changes nothing in memory
    const copy = k.readKernel(kaddr, 4);
    copy.fill(9);
    expect(k.readKernel(kaddr, 4)).not.toEqual(copy);
  });

  it('write nothing when any byte is unmapped', () => {
    const k = boot();
    const kaddr = k.vzalloc(PAGE_SIZE)!;
    expect(() => {
      k.writeKernel(kaddr + PAGE_SIZE - 2, Uint8Array.of(1, 2, 3, 4));
    }).toThrow(SegmentationFault);
    expect(k.readKernel(kaddr + PAGE_SIZE - 2, 2)).toEqual(Uint8Array.of(0, 0));
  });

  it('throw TypeError or RangeError for malformed arguments', () => {
    const k = boot();
    const kaddr = k.vmalloc(PAGE_SIZE)!;
    expect(() => k.readKernel('1' as unknown as number, 1)).toThrow(TypeError);
    expect(() => k.readKernel(kaddr, -1)).toThrow(RangeError);
    expect(() => k.readKernel(kaddr + 0.5, 1)).toThrow(RangeError);
    expect(() => k.readKernel(kaddr, Number.NaN)).toThrow(RangeError);
    expect(() => {
      k.writeKernel(kaddr, [1, 2] as unknown as Uint8Array);
    }).toThrow(TypeError);
    expect(k.readKernel(kaddr, 0)).toEqual(new Uint8Array(0));
  });
});

describe('vmallocinfo and meminfo', () => {
  it('print /proc/vmallocinfo lines for each live area, by address', () => {
    const k = boot();
    const a = k.vmalloc(2 * PAGE_SIZE)!;
    const u = k.vmallocUser(PAGE_SIZE)!;
    const lines = k.vmallocinfo().trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    const re = /^0x([0-9a-f]{16})-0x([0-9a-f]{16}) +(\d+) (\w+) pages=(\d+) vmalloc( user)?$/;
    const [l0, l1] = lines.map((l) => re.exec(l));
    expect(parseInt(l0![1]!, 16)).toBe(a);
    expect(parseInt(l0![2]!, 16)).toBe(a + 3 * PAGE_SIZE);
    expect(Number(l0![3])).toBe(3 * PAGE_SIZE);
    expect(l0![4]).toBe('vmalloc');
    expect(Number(l0![5])).toBe(2);
    expect(l0![6]).toBeUndefined();
    expect(parseInt(l1![1]!, 16)).toBe(u);
    expect(l1![4]).toBe('vmalloc_user');
    expect(l1![6]).toBe(' user');
    k.vfree(a);
    expect(k.vmallocinfo().trimEnd().split('\n')).toHaveLength(1);
  });

  it('print /proc/meminfo lines in kB that follow the counters', () => {
    const k = boot();
    const field = (name: string): number => {
      const m = new RegExp(`^${name}: +(\\d+) kB$`, 'm').exec(k.meminfo());
      expect(m, name).not.toBeNull();
      return Number(m![1]);
    };
    const kB = PAGE_SIZE / 1024;
    expect(field('MemTotal')).toBe(k.stats().totalFrames * kB);
    const free = field('MemFree');
    expect(field('VmallocUsed')).toBe(0);
    k.vmalloc(10 * PAGE_SIZE);
    expect(field('MemFree')).toBe(free - 10 * kB);
    expect(field('VmallocUsed')).toBe(10 * kB);
    // the kernel's columns: name and colon padded to 16, value right-aligned to 8
    for (const line of k.meminfo().trimEnd().split('\n')) {
      expect(line).toMatch(/^[A-Za-z]+: +\d+ kB$/);
      expect(line.length).toBe(16 + 8 + 3);
    }
  });
});
