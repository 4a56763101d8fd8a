import { describe, expect, it } from 'vitest';
import {
  Kernel,
  MAP_FIXED,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_NONE,
  PROT_READ,
  VM_USERMAP,
  remapPartial,
  type AddressSpace,
} from '../src/index.js';
import { MiB, RW } from './helpers/mm-helpers.js';

const P = PAGE_SIZE;
const FIXED = MAP_SHARED | MAP_FIXED;

/** One parsed `/proc/<pid>/maps` line. */
interface MapsLine {
  start: number;
  end: number;
  perms: string;
  offset: number;
  dev: string;
  inode: number;
}

const MAPS_LINE =
  /^([0-9a-f]{8,})-([0-9a-f]{8,}) ([r-][w-][x-][sp]) ([0-9a-f]{8,}) ([0-9a-f]{2}:[0-9a-f]{2}) (\d+) *(.*)$/;

function parseMaps(text: string): MapsLine[] {
  if (text === '') return [];
  expect(text.endsWith('\n')).toBe(true);
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => {
      const m = MAPS_LINE.exec(line);
      expect(m, `maps line ${JSON.stringify(line)}`).not.toBeNull();
      return {
        start: parseInt(m![1]!, 16),
        end: parseInt(m![2]!, 16),
        perms: m![3]!,
        offset: parseInt(m![4]!, 16),
        dev: m![5]!,
        inode: Number(m![6]),
      };
    });
}

/** What `maps()` must say about each VMA, from the VMA handles. */
function expectedMaps(mm: AddressSpace): Pick<MapsLine, 'start' | 'end' | 'perms'>[] {
  return mm.vmas().map((v) => ({
    start: v.start,
    end: v.end,
    perms: `${v.prot === PROT_NONE ? '-' : 'r'}${v.prot & 2 ? 'w' : '-'}-s`,
  }));
}

function parseMeminfo(text: string): Map<string, number> {
  const out = new Map<string, number>();
  expect(text.endsWith('\n')).toBe(true);
  for (const line of text.slice(0, -1).split('\n')) {
    const m = /^(\w+):( +)(\d+) kB$/.exec(line);
    expect(m, `meminfo line ${JSON.stringify(line)}`).not.toBeNull();
    // as Linux: the name and colon padded to 16 columns, the value right-aligned in 8
    if (m![3]!.length <= 8) expect(line.length).toBe(16 + 8 + 3);
    out.set(m![1]!, Number(m![3]));
  }
  return out;
}

/** The meminfo fields that follow from `stats()`, in kB. */
function expectMeminfo(k: Kernel): void {
  const info = parseMeminfo(k.meminfo());
  const s = k.stats();
  const kB = P / 1024;
  expect(info.get('MemTotal')).toBe(s.totalFrames * kB);
  expect(info.get('MemFree')).toBe(s.freeFrames * kB);
  expect(info.get('VmallocUsed')).toBe(s.vmallocPages * kB);
  expect(info.get('PageTables')).toBe(s.pageTableFrames * kB);
}

interface VmallocLine {
  start: number;
  end: number;
  size: number;
  caller: string | undefined;
  pages: number;
  user: boolean;
}

const VMALLOCINFO_LINE =
  /^0x([0-9a-f]+)-0x([0-9a-f]+) +(\d+)(?: (\S+))? pages=(\d+) vmalloc( user)?$/;

function parseVmallocinfo(text: string): VmallocLine[] {
  if (text === '') return [];
  expect(text.endsWith('\n')).toBe(true);
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => {
      const m = VMALLOCINFO_LINE.exec(line);
      expect(m, `vmallocinfo line ${JSON.stringify(line)}`).not.toBeNull();
      return {
        start: parseInt(m![1]!, 16),
        end: parseInt(m![2]!, 16),
        size: Number(m![3]),
        caller: m![4],
        pages: Number(m![5]),
        user: m![6] !== undefined,
      };
    });
}

function expectVmallocinfo(k: Kernel): VmallocLine[] {
  const lines = parseVmallocinfo(k.vmallocinfo());
  expect(
    lines.map(({ start, end, size, pages, user }) => ({ start, end, size, pages, user })),
  ).toEqual(
    k.vmallocAreas().map((a) => ({
      start: a.addr,
      end: a.addr + a.size,
      size: a.size,
      pages: a.nrPages,
      user: (a.flags & VM_USERMAP) !== 0,
    })),
  );
  return lines;
}

describe('mm.maps() (/proc/<pid>/maps)', () => {
  it('is empty for an address space with no VMA', () => {
    const k = Kernel.boot({ memoryBytes: 4 * MiB });
    expect(k.createAddressSpace()!.maps()).toBe('');
  });

  it('prints one line per VMA, in address order, with its bounds and shared permissions', () => {
    const k = Kernel.boot({ memoryBytes: 4 * MiB });
    const mm = k.createAddressSpace()!;
    expect(mm.mmap(32 * P, 4 * P, PROT_READ, FIXED)).toBe(32 * P);
    expect(mm.mmap(16 * P, 2 * P, RW, FIXED)).toBe(16 * P);
    const top = mm.mmap(0, 3 * P, PROT_NONE, MAP_SHARED);
    const lines = parseMaps(mm.maps());
    expect(lines.map(({ start, end, perms }) => ({ start, end, perms }))).toEqual(expectedMaps(mm));
    expect(lines.map((l) => [l.start, l.end, l.perms])).toEqual([
      [16 * P, 18 * P, 'rw-s'],
      [32 * P, 36 * P, 'r--s'],
      [top, top + 3 * P, '---s'],
    ]);
    for (const l of lines) {
      expect(l.dev).toBe('00:00');
      expect(l.inode).toBe(0);
      expect(l.offset).toBe(0);
    }
    // addresses are zero-padded to at least 8 hex digits, as Linux's %08lx
    expect(mm.maps().split('\n')[0]).toMatch(/^00010000-00012000 rw-s /);
  });

  it('follows splits, remaps and unmaps', () => {
    const k = Kernel.boot({ memoryBytes: 4 * MiB });
    const mm = k.createAddressSpace()!;
    expect(mm.mmap(16 * P, 8 * P, RW, FIXED)).toBe(16 * P);
    const kaddr = k.vmallocUser(2 * P)!;
    expect(remapPartial(mm.findVma(16 * P)!, 16 * P, kaddr, 2 * P)).toBe(0);
    expect(mm.mprotect(18 * P, 2 * P, PROT_READ)).toBe(0);
    expect(mm.munmap(22 * P, P)).toBe(0);
    const lines = parseMaps(mm.maps());
    expect(lines.map((l) => [l.start, l.end, l.perms])).toEqual([
      [16 * P, 18 * P, 'rw-s'],
      [18 * P, 20 * P, 'r--s'],
      [20 * P, 22 * P, 'rw-s'],
      [23 * P, 24 * P, 'rw-s'],
    ]);
    expect(lines.map(({ start, end, perms }) => ({ start, end, perms }))).toEqual(expectedMaps(mm));
    mm.destroy();
    expect(mm.maps()).toBe('');
  });
});

describe('kernel.meminfo() (/proc/meminfo)', () => {
  it('reports MemTotal, MemFree, VmallocUsed and PageTables in kB, from the kernel state', () => {
    const k = Kernel.boot({ memoryBytes: 8 * MiB });
    expectMeminfo(k);
    const info = parseMeminfo(k.meminfo());
    expect(info.get('MemTotal')).toBe(8 * 1024);
    expect(info.get('VmallocUsed')).toBe(0);
    expect(info.get('PageTables')).toBe(0);

    const a = k.vmalloc(10 * P)!;
    const b = k.vmallocUser(3 * P)!;
    expectMeminfo(k);
    expect(parseMeminfo(k.meminfo()).get('VmallocUsed')).toBe(13 * 4);

    const mm = k.createAddressSpace()!;
    const u = mm.mmap(0, 3 * P, RW, MAP_SHARED);
    expect(remapPartial(mm.findVma(u)!, u, b, 3 * P)).toBe(0);
    expectMeminfo(k);
    expect(parseMeminfo(k.meminfo()).get('PageTables')).toBe(2 * 4); // directory + one table
    const free = parseMeminfo(k.meminfo()).get('MemFree')!;

    k.vfree(a);
    expect(parseMeminfo(k.meminfo()).get('MemFree')).toBe(free + 10 * 4);
    k.vfree(b); // still mapped: its frames stay in use
    expect(parseMeminfo(k.meminfo()).get('MemFree')).toBe(free + 10 * 4);
    expectMeminfo(k);
    mm.destroy();
    expectMeminfo(k);
    expect(parseMeminfo(k.meminfo()).get('MemFree')).toBe(
      (k.stats().totalFrames - k.stats().metadataFrames) * 4,
    );
  });
});

describe('kernel.vmallocinfo() (/proc/vmallocinfo)', () => {
  it('is empty with no area', () => {
    expect(Kernel.boot({ memoryBytes: 4 * MiB }).vmallocinfo()).toBe('');
  });

  it('prints one line per live area, in address order, marking vmallocUser areas "user"', () => {
    const k = Kernel.boot({ memoryBytes: 4 * MiB });
    const a = k.vmalloc(3 * P)!;
    const b = k.vzalloc(P)!;
    const c = k.vmallocUser(2 * P + 1)!;
    const lines = expectVmallocinfo(k);
    expect(lines.map((l) => [l.start, l.size, l.pages, l.user])).toEqual([
      [a, 4 * P, 3, false],
      [b, 2 * P, 1, false],
      [c, 4 * P, 3, true],
    ]);
    // 0x + 16 hex digits, as the kernel's %pK, and a right-aligned size
    expect(k.vmallocinfo().split('\n')[0]).toMatch(/^0x[0-9a-f]{16}-0x[0-9a-f]{16} +\d+ /);
    k.vfree(b);
    expect(expectVmallocinfo(k).map((l) => l.start)).toEqual([a, c]);
  });

  it('drops an area at vfree even while user space still maps its frames', () => {
    const k = Kernel.boot({ memoryBytes: 4 * MiB });
    const mm = k.createAddressSpace()!;
    const kaddr = k.vmallocUser(P)!;
    const u = mm.mmap(0, P, RW, MAP_SHARED);
    expect(remapPartial(mm.findVma(u)!, u, kaddr, P)).toBe(0);
    expect(expectVmallocinfo(k)).toHaveLength(1);
    k.vfree(kaddr);
    expect(k.vmallocinfo()).toBe('');
    expect(mm.read(u, 1)).toHaveLength(1);
  });
});
