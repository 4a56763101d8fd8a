import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  EBUSY,
  EFAULT,
  EINVAL,
  ENOMEM,
  Kernel,
  MAP_FIXED,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  SegmentationFault,
  BusError,
  type BusCode,
  remapPartial,
  type AddressSpace,
  type SegvCode,
  type Vma,
} from '../src/index.js';
import { MiB, pattern, runLengths } from './helpers/mm-helpers.js';

/*
 * A model-based test of one address space and the vmalloc areas mapped into it. The reference
 * model is plain data: which user pages a VMA covers and with what protection, which pages have a
 * PTE and to which frame, which areas are live and which frames back them, and the bytes of every
 * live frame. Every operation is run on the kernel and on the model, the results compared, and
 * after every step the whole observable state is compared too, and checkInvariants() must pass.
 */

const P = PAGE_SIZE;
/** User pages the operations work in: they cross the 4 MiB page-table boundary at page 1024. */
const W0 = 1016;
const WINDOW = 24;

interface ModelArea {
  readonly kaddr: number;
  readonly pages: number;
  readonly user: boolean;
  readonly pfns: readonly number[];
}

interface Model {
  /** Live areas by kaddr. */
  readonly areas: Map<number, ModelArea>;
  /** Bases of every area ever allocated (for stale kaddrs). */
  readonly everyArea: number[];
  /** Bytes of every frame alive (in an area or pinned by a PTE). */
  readonly frames: Map<number, Uint8Array>;
  /** User page → protection of the VMA covering it. */
  readonly vmaPages: Map<number, number>;
  /** User page → frame of its PTE. */
  readonly ptes: Map<number, number>;
  /** Vma handles seen, some of which go stale. */
  readonly handles: Vma[];
}

type Op =
  | { kind: 'alloc'; user: boolean; pages: number }
  | { kind: 'vfree'; pick: number }
  | { kind: 'mmap'; off: number; pages: number; prot: number; fixed: boolean }
  | { kind: 'munmap'; off: number; pages: number }
  | { kind: 'mprotect'; off: number; pages: number; prot: number }
  | {
      kind: 'remap';
      vmaPick: number;
      /** A saved handle (some stale) instead of a fresh VMA, when not null. */
      handle: number | null;
      uOff: number;
      live: boolean;
      pick: number;
      kOff: number;
      pages: number;
      trim: number;
    }
  | { kind: 'read'; target: Target; len: number }
  | { kind: 'write'; target: Target; bytes: Bytes; viaSegments: boolean }
  | { kind: 'kwrite'; pick: number; at: number; bytes: Bytes }
  | { kind: 'destroy' };

const protArb = fc.constantFrom(PROT_NONE, PROT_READ, PROT_WRITE, PROT_READ | PROT_WRITE);
const offArb = fc.integer({ min: 0, max: WINDOW - 1 });
/** Bytes to write, as a length and a seed (generating thousands of random bytes is slow). */
interface Bytes {
  readonly length: number;
  readonly seed: number;
}
/** Access lengths: mostly short, sometimes over several pages. */
const lengthArb = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 256 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 * P + 100 }) },
);
const bytesArb: fc.Arbitrary<Bytes> = fc.record({
  length: lengthArb.filter((n) => n > 0),
  seed: fc.nat(255),
});
/**
 * Where a user access starts: `off` bytes from a page that has a PTE (mostly), or from the start of
 * a VMA; `pick` chooses which.
 */
interface Target {
  readonly onPte: boolean;
  readonly pick: number;
  readonly off: number;
}
const targetArb: fc.Arbitrary<Target> = fc.record({
  onPte: fc.constantFrom(true, true, true, false),
  pick: fc.nat(),
  off: fc.integer({ min: -64, max: P }),
});

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('alloc' as const),
      user: fc.constantFrom(true, true, true, true, true, false),
      pages: fc.integer({ min: 1, max: 4 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('vfree' as const), pick: fc.nat() }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('mmap' as const),
      off: offArb,
      pages: fc.integer({ min: 1, max: 8 }),
      prot: protArb,
      fixed: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('munmap' as const),
      off: offArb,
      pages: fc.integer({ min: 0, max: 8 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('mprotect' as const),
      off: offArb,
      pages: fc.integer({ min: 0, max: 8 }),
      prot: protArb,
    }),
  },
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('remap' as const),
      vmaPick: fc.nat(),
      handle: fc.oneof(
        { weight: 4, arbitrary: fc.constant(null) },
        { weight: 1, arbitrary: fc.nat() },
      ),
      uOff: fc.integer({ min: 0, max: 3 }),
      live: fc.constantFrom(true, true, true, false),
      pick: fc.nat(),
      kOff: fc.integer({ min: 0, max: 3 }),
      pages: fc.integer({ min: 1, max: 3 }),
      trim: fc.constantFrom(0, 0, 1, P - 1),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('read' as const),
      target: targetArb,
      len: lengthArb,
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      target: targetArb,
      bytes: bytesArb,
      viaSegments: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('kwrite' as const),
      pick: fc.nat(),
      at: fc.nat(),
      bytes: bytesArb,
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('destroy' as const) }) },
);

/** The protection a PTE reports for a VMA protection: write implies read. */
function pteProt(prot: number): number {
  return prot & PROT_WRITE ? PROT_READ | PROT_WRITE : prot;
}

/** Drop the PTE of `page` from the model, freeing its frame if nothing else holds it. */
function dropPte(m: Model, page: number): void {
  const pfn = m.ptes.get(page);
  if (pfn === undefined) return;
  m.ptes.delete(page);
  if (refsOf(m, pfn) === 0) m.frames.delete(pfn);
}

/** References the model accounts for on `pfn`: its live area, and one per PTE. */
function refsOf(m: Model, pfn: number): number {
  let refs = 0;
  for (const a of m.areas.values()) if (a.pfns.includes(pfn)) refs++;
  for (const p of m.ptes.values()) if (p === pfn) refs++;
  return refs;
}

function unmapModel(m: Model, start: number, pages: number): void {
  for (let p = start; p < start + pages; p++) {
    dropPte(m, p);
    m.vmaPages.delete(p);
  }
}

/** The fault a user access of `[addr, addr + len)` must raise, or null. */
function expectedFault(
  m: Model,
  addr: number,
  len: number,
  write: boolean,
): { code: SegvCode | BusCode; address: number } | null {
  for (let a = addr; a < addr + len;) {
    const page = Math.floor(a / P);
    // decided by the VMA (arch/x86/mm/fault.c), then SIGBUS for a VMA page with no PTE
    const prot = m.vmaPages.get(page);
    if (prot === undefined) return { code: 'SEGV_MAPERR', address: a };
    if (write ? (prot & PROT_WRITE) === 0 : prot === PROT_NONE) {
      return { code: 'SEGV_ACCERR', address: a };
    }
    if (!m.ptes.has(page)) return { code: 'BUS_ADRERR', address: a };
    a = (page + 1) * P;
  }
  return null;
}

function userBytes(m: Model, addr: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len;) {
    const a = addr + i;
    const page = Math.floor(a / P);
    const n = Math.min(len - i, (page + 1) * P - a);
    const frame = m.frames.get(m.ptes.get(page)!)!;
    out.set(frame.subarray(a - page * P, a - page * P + n), i);
    i += n;
  }
  return out;
}

function putUserBytes(m: Model, addr: number, bytes: Uint8Array): void {
  for (let i = 0; i < bytes.length;) {
    const a = addr + i;
    const page = Math.floor(a / P);
    const n = Math.min(bytes.length - i, (page + 1) * P - a);
    m.frames.get(m.ptes.get(page)!)!.set(bytes.subarray(i, i + n), a - page * P);
    i += n;
  }
}

/** Compare bytes quickly; fall back to a full diff only on a mismatch. */
function expectBytes(actual: Uint8Array, expected: Uint8Array): void {
  let same = actual.length === expected.length;
  for (let i = 0; same && i < actual.length; i++) same = actual[i] === expected[i];
  if (!same) expect(actual).toEqual(expected);
}

function catchFault(fn: () => void): { code: SegvCode | BusCode; address: number } | null {
  try {
    fn();
    return null;
  } catch (e) {
    if (!(e instanceof SegmentationFault) && !(e instanceof BusError)) throw e;
    return { code: e.code, address: e.address };
  }
}

/** The result `remapPartial` must give, per the check table; rows 1–9 (memory is ample). */
function expectedRemap(
  m: Model,
  vma: Vma,
  uaddr: number,
  kaddr: number,
  size: number,
): { rc: number; area?: ModelArea } {
  if (!vma.live) return { rc: -EINVAL };
  const pages = Math.ceil(size / P);
  const area = [...m.areas.values()].find(
    (a) => kaddr >= a.kaddr && kaddr < a.kaddr + (a.pages + 1) * P,
  );
  if (!area?.user) return { rc: -EINVAL };
  if ((kaddr - area.kaddr) / P + pages > area.pages) return { rc: -EINVAL };
  if (uaddr < vma.start || uaddr + pages * P > vma.end) return { rc: -EFAULT };
  for (let i = 0; i < pages; i++) if (m.ptes.has(uaddr / P + i)) return { rc: -EBUSY };
  return { rc: 0, area };
}

class Run {
  // small tables keep checkInvariants (run after every step) cheap
  readonly k: Kernel = Kernel.boot({
    memoryBytes: 2 * MiB,
    maxAreas: 128,
    maxVmas: 256,
    maxAddressSpaces: 2,
  });
  /** Free frames after boot: used frames are exactly areas, pinned frames and page tables. */
  readonly base: number = this.k.stats().freeFrames;
  mm: AddressSpace = this.k.createAddressSpace()!;
  readonly m: Model = {
    areas: new Map(),
    everyArea: [],
    frames: new Map(),
    vmaPages: new Map(),
    ptes: new Map(),
    handles: [],
  };

  private keepHandle(v: Vma | null): void {
    if (v === null) return;
    this.m.handles.push(v);
    if (this.m.handles.length > 8) this.m.handles.shift();
  }

  /** One of the VMAs (by index), or null when there is none. */
  private pickVma(pick: number): Vma | null {
    const vmas = this.mm.vmas();
    return vmas.length === 0 ? null : vmas[pick % vmas.length]!;
  }

  /** The user address a {@link Target} names. */
  private accessAddress(t: Target): number {
    const pages = [...this.m.ptes.keys()].sort((a, b) => a - b);
    let base: number;
    if (t.onPte && pages.length > 0) base = pages[t.pick % pages.length]! * P;
    else base = this.pickVma(t.pick)?.start ?? W0 * P;
    return Math.max(P, base + t.off);
  }

  step(op: Op): void {
    const { k, m } = this;
    switch (op.kind) {
      case 'alloc': {
        const bytes = op.pages * P;
        const kaddr = op.user ? k.vmallocUser(bytes) : k.vmalloc(bytes);
        expect(kaddr).not.toBeNull();
        const pfns = Array.from({ length: op.pages }, (_, i) => k.vmallocToPfn(kaddr! + i * P)!);
        for (const [i, pfn] of pfns.entries()) {
          expect(m.frames.has(pfn)).toBe(false); // a live frame never goes to a second owner
          m.frames.set(pfn, op.user ? new Uint8Array(P) : k.readKernel(kaddr! + i * P, P));
        }
        m.areas.set(kaddr!, { kaddr: kaddr!, pages: op.pages, user: op.user, pfns });
        m.everyArea.push(kaddr!);
        return;
      }
      case 'vfree': {
        const live = [...m.areas.keys()];
        if (live.length === 0) return;
        const kaddr = live[op.pick % live.length]!;
        const area = m.areas.get(kaddr)!;
        k.vfree(kaddr);
        m.areas.delete(kaddr);
        for (const pfn of area.pfns) if (refsOf(m, pfn) === 0) m.frames.delete(pfn);
        expect(k.findVmArea(kaddr)).toBeNull();
        return;
      }
      case 'mmap': {
        const want = (W0 + op.off) * P;
        const flags = op.fixed ? MAP_SHARED | MAP_FIXED : MAP_SHARED;
        const got = this.mm.mmap(want, op.pages * P, op.prot, flags);
        const start = got / P;
        const hintFree = Array.from({ length: op.pages }, (_, i) => W0 + op.off + i).every(
          (p) => !m.vmaPages.has(p),
        );
        if (op.fixed || hintFree) {
          expect(got).toBe(want);
        } else {
          expect(got).toBeGreaterThan(0);
          expect(got % P).toBe(0);
          for (let p = start; p < start + op.pages; p++) expect(m.vmaPages.has(p)).toBe(false);
        }
        unmapModel(m, start, op.pages);
        for (let p = start; p < start + op.pages; p++) m.vmaPages.set(p, op.prot);
        this.keepHandle(this.mm.findVma(got));
        return;
      }
      case 'munmap': {
        const rc = this.mm.munmap((W0 + op.off) * P, op.pages * P);
        if (op.pages === 0) {
          expect(rc).toBe(-EINVAL);
          return;
        }
        expect(rc).toBe(0);
        unmapModel(m, W0 + op.off, op.pages);
        return;
      }
      case 'mprotect': {
        const start = W0 + op.off;
        const rc = this.mm.mprotect(start * P, op.pages * P, op.prot);
        const covered = Array.from({ length: op.pages }, (_, i) => start + i).every((p) =>
          m.vmaPages.has(p),
        );
        if (op.pages > 0 && !covered) {
          expect(rc).toBe(-ENOMEM);
          return;
        }
        expect(rc).toBe(0);
        for (let p = start; p < start + op.pages; p++) m.vmaPages.set(p, op.prot);
        return;
      }
      case 'remap': {
        let vma: Vma | null;
        if (op.handle === null || m.handles.length === 0) {
          vma = this.pickVma(op.vmaPick);
          if (vma === null) {
            expect(remapPartial(null as unknown as Vma, W0 * P, m.everyArea[0] ?? 0, P)).toBe(
              -EINVAL,
            );
            return;
          }
          this.keepHandle(vma);
        } else {
          vma = m.handles[op.handle % m.handles.length]!;
        }
        if (vma.live) {
          // a live handle's bounds agree with the model: every page covered, with its protection
          for (let p = vma.start / P; p < vma.end / P; p++) {
            expect(m.vmaPages.get(p)).toBe(vma.prot);
          }
        }
        const live = [...m.areas.keys()];
        const from = op.live && live.length > 0 ? live : m.everyArea;
        if (from.length === 0) return;
        const base = from[op.pick % from.length]!;
        // mostly a range that fits a live area; any area, its guard page and beyond now and then
        const area = op.live ? m.areas.get(base) : undefined;
        const kOff = area ? op.kOff % area.pages : op.kOff;
        const pages = area ? Math.min(op.pages, area.pages - kOff) : op.pages;
        const kaddr = base + kOff * P;
        const uaddr = (vma.live ? vma.start : W0 * P) + op.uOff * P;
        const size = pages * P - op.trim;
        const want = expectedRemap(m, vma, uaddr, kaddr, size);
        expect(remapPartial(vma, uaddr, kaddr, size)).toBe(want.rc);
        if (want.rc === 0) {
          const first = (kaddr - want.area!.kaddr) / P;
          for (let i = 0; i < pages; i++) {
            m.ptes.set(uaddr / P + i, want.area!.pfns[first + i]!);
          }
        }
        return;
      }
      case 'read': {
        const addr = this.accessAddress(op.target);
        const fault = expectedFault(m, addr, op.len, false);
        let got: Uint8Array = new Uint8Array(0);
        expect(
          catchFault(() => {
            got = this.mm.read(addr, op.len);
          }),
        ).toEqual(fault);
        if (fault === null) expectBytes(got, userBytes(m, addr, op.len));
        return;
      }
      case 'write': {
        const addr = this.accessAddress(op.target);
        const bytes = pattern(op.bytes.length, op.bytes.seed);
        const fault = expectedFault(m, addr, bytes.length, true);
        expect(
          catchFault(() => {
            if (!op.viaSegments) {
              this.mm.write(addr, bytes);
              return;
            }
            const views = this.mm.segments(addr, bytes.length, { write: true });
            const pfns = Array.from(
              { length: Math.ceil((addr + bytes.length) / P) - Math.floor(addr / P) },
              (_, i) => m.ptes.get(Math.floor(addr / P) + i)!,
            );
            expect(views.length).toBe(runLengths(pfns).length);
            let at = 0;
            for (const v of views) {
              v.set(bytes.subarray(at, at + v.length));
              at += v.length;
            }
            expect(at).toBe(bytes.length);
          }),
        ).toEqual(fault);
        if (fault === null) putUserBytes(m, addr, bytes);
        return;
      }
      case 'kwrite': {
        const live = [...m.areas.values()];
        if (live.length === 0) return;
        const area = live[op.pick % live.length]!;
        const at = op.at % (area.pages * P);
        const bytes = pattern(op.bytes.length, op.bytes.seed).subarray(0, area.pages * P - at);
        k.writeKernel(area.kaddr + at, bytes);
        for (let i = 0; i < bytes.length;) {
          const page = Math.floor((at + i) / P);
          const n = Math.min(bytes.length - i, (page + 1) * P - (at + i));
          m.frames.get(area.pfns[page]!)!.set(bytes.subarray(i, i + n), (at + i) % P);
          i += n;
        }
        return;
      }
      case 'destroy': {
        this.mm.destroy();
        for (const page of [...m.ptes.keys()]) dropPte(m, page);
        m.vmaPages.clear();
        for (const h of m.handles) expect(h.live).toBe(false);
        this.mm = k.createAddressSpace()!;
        return;
      }
    }
  }

  /** Compare everything observable with the model. */
  check(): void {
    const { k, m, mm } = this;
    k.checkInvariants();
    // compared as JSON text: much faster than a deep equality, and as readable in a failure
    const ptes = [...m.ptes.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([page, pfn]) => ({ uaddr: page * P, pfn, prot: pteProt(m.vmaPages.get(page)!) }));
    expect(JSON.stringify(mm.pagemap())).toBe(JSON.stringify(ptes));
    const covered: [number, number][] = [];
    for (const v of mm.vmas()) {
      for (let p = v.start / P; p < v.end / P; p++) covered.push([p, v.prot]);
    }
    const modelled = [...m.vmaPages.entries()].sort((a, b) => a[0] - b[0]);
    expect(JSON.stringify(covered)).toBe(JSON.stringify(modelled));
    const refs = k.frameSnapshot().refcounts;
    const pfns = [...m.frames.keys()].sort((x, y) => x - y);
    expect(JSON.stringify(pfns.map((pfn) => [pfn, refs[pfn]]))).toBe(
      JSON.stringify(pfns.map((pfn) => [pfn, refsOf(m, pfn)])),
    );
    const s = k.stats();
    const dirs = new Set([...m.ptes.keys()].map((p) => p >>> 10));
    expect({
      freeFrames: s.freeFrames,
      vmallocAreas: s.vmallocAreas,
      vmallocPages: s.vmallocPages,
      enoughTables: s.pageTableFrames >= 1 + dirs.size,
    }).toEqual({
      freeFrames: this.base - m.frames.size - s.pageTableFrames,
      vmallocAreas: m.areas.size,
      vmallocPages: [...m.areas.values()].reduce((n, a) => n + a.pages, 0),
      enoughTables: true,
    });
  }

  /** At the end: every byte the model knows, through the kernel mapping and the user mapping. */
  checkData(): void {
    const { k, m, mm } = this;
    for (const a of m.areas.values()) {
      for (const [i, pfn] of a.pfns.entries()) {
        expectBytes(k.readKernel(a.kaddr + i * P, P), m.frames.get(pfn)!);
      }
    }
    for (const [page, pfn] of m.ptes) {
      if (m.vmaPages.get(page) !== PROT_NONE) expectBytes(mm.read(page * P, P), m.frames.get(pfn)!);
    }
  }
}

/** Every run starts from two areas mapped into two VMAs, so accesses find pages early. */
const PRELUDE: Op[] = [
  { kind: 'alloc', user: true, pages: 4 },
  { kind: 'alloc', user: true, pages: 3 },
  { kind: 'mmap', off: 2, pages: 6, prot: PROT_READ | PROT_WRITE, fixed: true },
  { kind: 'mmap', off: 12, pages: 8, prot: PROT_READ, fixed: true },
  ...[0, 1].map((i): Op => ({
    kind: 'remap',
    vmaPick: i,
    handle: null,
    uOff: i,
    live: true,
    pick: i,
    kOff: 0,
    pages: 3,
    trim: 0,
  })),
];

describe('the remap model', () => {
  it('agrees with the kernel over random mmap/munmap/mprotect/remap/vfree/read/write sequences', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 50, size: 'max' }), (ops) => {
        const run = new Run();
        for (const op of [...PRELUDE, ...ops]) {
          run.step(op);
          run.check();
        }
        run.checkData();
        run.mm.destroy();
        for (const kaddr of run.m.areas.keys()) run.k.vfree(kaddr);
        expect(run.k.stats().freeFrames).toBe(run.base);
        run.k.checkInvariants();
      }),
      { numRuns: 120 },
    );
  });
});
