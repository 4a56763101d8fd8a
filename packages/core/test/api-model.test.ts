/**
 * Model-based test of the whole public API: random programs over the vmalloc family, vfree,
 * createAddressSpace, addressSpace, destroy, mmap, munmap, mprotect, remapPartial,
 * remapVmallocRange, read, write, segments, readKernel, writeKernel, findVmArea, vmallocToPfn and
 * findVma run against a plain reference model: areas made of pages (a page is a frame with its
 * bytes and its reference count), and per address space VMAs with their protection and PTEs
 * (user page → page). After every step the kernel is compared with the model: the return value or
 * errno or fault, the bytes read, `stats()`, `vmallocAreas()`, every address space's `maps()`,
 * `vmas()` and `pagemap()`, every frame's reference count and contents, every `Vma` handle's
 * bounds, and `checkInvariants()`.
 *
 * The kernel is small (44 free frames, 10 areas, 20 VMAs, 3 address spaces) so programs also run
 * frames, areas, VMA slots and address spaces out. The model frees page tables only at destroy,
 * as the kernel does (the contract allows earlier).
 *
 * CI runs a few hundred programs. `SABVM_LONG=1` runs `SABVM_MODEL_RUNS` (default 100,000).
 * A failure prints fast-check's seed and path; replay it with `SABVM_MODEL_SEED=<seed>
 * SABVM_MODEL_PATH=<path> npx vitest run test/api-model.test.ts`.
 */
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  EBUSY,
  EFAULT,
  EINVAL,
  ENOMEM,
  EPERM,
  Kernel,
  MAP_FIXED,
  MADV_DONTNEED,
  MADV_NORMAL,
  MADV_RANDOM,
  MADV_SEQUENTIAL,
  MADV_WILLNEED,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  VM_RAND_READ,
  VM_SEQ_READ,
  MAP_FIXED_NOREPLACE,
  EEXIST,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  SegmentationFault,
  BusError,
  type BusCode,
  TASK_SIZE,
  VMALLOC_START,
  VM_ALLOC,
  VM_DONTDUMP,
  VM_DONTEXPAND,
  VM_MIXEDMAP,
  VM_READ,
  VM_SHARED,
  VM_USERMAP,
  VM_WRITE,
  remapPartial,
  remapVmallocRange,
  type AddressSpace,
  type SegvCode,
  type Vma,
} from '../src/index.js';
import { LONG, envInt } from './helpers/reliability.js';

const P = PAGE_SIZE;
const TASK_PAGES = TASK_SIZE / P;
const BOOT = {
  memoryBytes: 192 * 1024,
  maxAreas: 10,
  maxVmas: 20,
  maxAddressSpaces: 3,
  maxThreads: 2,
} as const;
/** User pages most programs work in: they straddle the page-directory boundary at 4 MiB. */
const WINDOW_START = 1024 - 24;
const WINDOW_PAGES = 48;
const MARKS = VM_MIXEDMAP | VM_DONTEXPAND | VM_DONTDUMP;

// ---------------------------------------------------------------------------------------------
// The reference model

/** A frame as the model sees it: its bytes and the references on it. */
interface MPage {
  readonly pfn: number;
  readonly data: Uint8Array;
  refs: number;
}

interface MArea {
  readonly kaddr: number;
  readonly nrPages: number;
  readonly flags: number;
  readonly pages: MPage[];
}

/**
 * A VMA record (pages); `dead` once wholly unmapped, merged into the VMA below it, or its address
 * space destroyed. `anon` names the mmap that made it, `pgoff` its first page's offset there.
 */
interface MVma {
  start: number;
  end: number;
  prot: number;
  flags: number;
  anon: number;
  pgoff: number;
  dead: boolean;
}

interface MMm {
  readonly id: number;
  handle: AddressSpace;
  live: boolean;
  vmas: MVma[];
  ptes: Map<number, MPage>;
  /** Directory indices with a page table. */
  dirs: Set<number>;
}

/** A `Vma` handle the program got, and the record it names. */
interface MHandle {
  readonly vma: Vma;
  readonly record: MVma;
  readonly mm: MMm;
}

class Model {
  readonly areas = new Map<number, MArea>();
  readonly deadKaddrs: number[] = [];
  readonly pages = new Set<MPage>();
  readonly mms: MMm[] = [];
  readonly handles: MHandle[] = [];
  badFrees = 0;
  anons = 0;
  /** `kernel.maxMapCount`. */
  maxMapCount: number = BOOT.maxVmas;

  constructor(
    readonly k: Kernel,
    readonly bootFree: number,
    readonly vmallocPages: number,
  ) {}

  liveMms(): MMm[] {
    return this.mms.filter((m) => m.live);
  }

  ptFrames(): number {
    return this.liveMms().reduce((s, m) => s + 1 + m.dirs.size, 0);
  }

  freeFrames(): number {
    return this.bootFree - this.pages.size - this.ptFrames();
  }

  freeVmaSlots(): number {
    return BOOT.maxVmas - this.liveMms().reduce((s, m) => s + m.vmas.length, 0);
  }

  sortedAreas(): MArea[] {
    return [...this.areas.values()].sort((a, b) => a.kaddr - b.kaddr);
  }

  /** Is there a gap of `n` vmalloc pages (area + guard) anywhere? */
  vmallocGap(n: number): boolean {
    let prevEnd = 0;
    for (const a of this.sortedAreas()) {
      const start = (a.kaddr - VMALLOC_START) / P;
      if (start - prevEnd >= n) return true;
      prevEnd = start + a.nrPages + 1;
    }
    return this.vmallocPages - prevEnd >= n;
  }

  /** Is `[kaddr, kaddr + n pages)` inside the vmalloc range and clear of every area and guard? */
  vmallocFree(kaddr: number, n: number): boolean {
    const s = (kaddr - VMALLOC_START) / P;
    if (!Number.isInteger(s) || s < 0 || s + n > this.vmallocPages) return false;
    return this.sortedAreas().every((a) => {
      const as = (a.kaddr - VMALLOC_START) / P;
      return s + n <= as || s >= as + a.nrPages + 1;
    });
  }

  /** The live area containing `kaddr`, guard page included. */
  areaAt(kaddr: number): MArea | undefined {
    for (const a of this.areas.values()) {
      if (kaddr >= a.kaddr && kaddr < a.kaddr + (a.nrPages + 1) * P) return a;
    }
    return undefined;
  }

  /** The page backing vmalloc address `kaddr`, if any. */
  kernelPage(kaddr: number): MPage | undefined {
    const a = this.areaAt(kaddr);
    return a?.pages[Math.floor((kaddr - a.kaddr) / P)];
  }

  put(page: MPage): void {
    page.refs--;
    if (page.refs === 0) this.pages.delete(page);
  }
}

function vmaAt(mm: MMm, upage: number): MVma | undefined {
  return mm.vmas.find((v) => v.start <= upage && upage < v.end);
}

/** calc_vm_prot_bits: PROT_WRITE alone is VM_WRITE without VM_READ. */
function protFlags(prot: number): number {
  return (prot & PROT_READ ? VM_READ : 0) | (prot & PROT_WRITE ? VM_WRITE : 0);
}

/** A piece of `v` from page `at` on: same object, the offset advanced. */
function pieceOf(v: MVma, start: number, end: number, prot = v.prot, flags = v.flags): MVma {
  return { start, end, prot, flags, anon: v.anon, pgoff: v.pgoff + (start - v.start), dead: false };
}

/** mm/vma.c is_mergeable_vma: one object, contiguous in it, same prot and flags, not special. */
function mergeable(a: MVma, b: MVma): boolean {
  return (
    a.end === b.start &&
    a.anon === b.anon &&
    a.pgoff + (a.end - a.start) === b.pgoff &&
    a.prot === b.prot &&
    a.flags === b.flags &&
    (a.flags & (VM_MIXEDMAP | VM_DONTEXPAND)) === 0
  );
}

/** How often the programs met the rules this file checks: each must be exercised. */
const seen = {
  merges: 0,
  eexist: 0,
  mapCountRefusals: 0,
  moves: 0,
  movedPtes: 0,
  mremaps: 0,
  dontneed: 0,
};

/** Merge every mergeable pair; the lower record survives, the upper one's handles go stale. */
function mergeModel(mm: MMm): void {
  for (let i = 1; i < mm.vmas.length;) {
    const a = mm.vmas[i - 1]!;
    const b = mm.vmas[i]!;
    if (!mergeable(a, b)) {
      i++;
      continue;
    }
    a.end = b.end;
    b.dead = true;
    mm.vmas.splice(i, 1);
    seen.merges++;
  }
}

function addVma(model: Model, mm: MMm, v: MVma): void {
  mm.vmas.push(v);
  mm.vmas.sort((a, b) => a.start - b.start);
  const h = mm.handle.findVma(v.start * P);
  expect(h, 'findVma of a new VMA').not.toBeNull();
  model.handles.push({ vma: h!, record: v, mm });
}

/** munmap's effect on the model: zap, then shrink, split or drop the VMAs (the record keeps the lower part). */
function unmapModel(model: Model, mm: MMm, s: number, e: number, collect?: MVma[]): void {
  for (const [u, page] of [...mm.ptes]) {
    if (u >= s && u < e) {
      mm.ptes.delete(u);
      model.put(page);
    }
  }
  const split: MVma[] = [];
  for (const v of [...mm.vmas]) {
    if (v.end <= s || v.start >= e) continue;
    if (v.start >= s && v.end <= e) {
      v.dead = true;
      mm.vmas = mm.vmas.filter((x) => x !== v);
    } else if (v.start < s && v.end > e) {
      split.push(pieceOf(v, e, v.end));
      v.end = s;
    } else if (v.start < s) {
      v.end = s;
    } else {
      v.pgoff += e - v.start;
      v.start = e;
    }
  }
  if (collect === undefined) {
    for (const v of split) addVma(model, mm, v);
    return;
  }
  // handles later, once the call's merges are done
  collect.push(...split);
  mm.vmas.push(...split);
  mm.vmas.sort((a, b) => a.start - b.start);
}

// ---------------------------------------------------------------------------------------------
// Operations

type AddrSpec =
  | { readonly base: 'vma'; readonly pick: number; readonly off: number }
  | { readonly base: 'window'; readonly page: number }
  | { readonly base: 'top'; readonly page: number };

interface AreaSpec {
  readonly from: 'live' | 'dead';
  readonly pick: number;
  readonly page: number;
}

type Op =
  | { k: 'alloc'; fn: 'vmalloc' | 'vzalloc' | 'vmallocUser'; pages: number; shave: number }
  | { k: 'vfree'; how: 'base' | 'interior' | 'unaligned' | 'dead' | 'null'; pick: number }
  | { k: 'create' }
  | { k: 'destroy'; mm: number }
  | { k: 'reattach'; mm: number }
  | {
      k: 'mmap';
      mm: number;
      mode: 'any' | 'hint' | 'fixed' | 'noreplace';
      at: AddrSpec;
      pages: number;
      shave: number;
      prot: number;
      /** Bytes below the page a hint names: an unaligned hint, rounded up to that page. */
      hintOff: number;
    }
  | { k: 'limit'; n: number }
  | {
      k: 'madvise';
      mm: number;
      fit: boolean;
      at: AddrSpec;
      pages: number;
      shave: number;
      advice: number;
    }
  | {
      k: 'mremap';
      mm: number;
      fit: boolean;
      at: AddrSpec;
      oldPages: number;
      newPages: number;
      shave: number;
      how: 'plain' | 'maymove' | 'fixed' | 'dontunmap';
      to: AddrSpec;
    }
  | {
      k: 'munmap';
      mm: number;
      fit: boolean;
      at: AddrSpec;
      pages: number;
      shave: number;
      unaligned: boolean;
    }
  | {
      k: 'mprotect';
      mm: number;
      fit: boolean;
      at: AddrSpec;
      pages: number;
      shave: number;
      prot: number;
      /** Take the protection of a neighbour of the VMA the range starts in (so that it may merge). */
      copy: boolean;
    }
  | {
      k: 'remap';
      fit: boolean;
      h: number;
      uoff: number;
      area: AreaSpec;
      pages: number;
      shave: number;
    }
  | { k: 'remapRange'; fit: boolean; h: number; area: AreaSpec; pgoff: number }
  | {
      k: 'access';
      mm: number;
      fit: boolean;
      pick: number;
      at: AddrSpec;
      byte: number;
      len: number;
      how: Access;
      seed: number;
    }
  | { k: 'kaccess'; area: AreaSpec; byte: number; len: number; write: boolean; seed: number }
  | { k: 'query'; mm: number; at: AddrSpec; area: AreaSpec; byte: number };

type Access = 'read' | 'write' | 'segments' | 'segmentsWrite';

const addrArb: fc.Arbitrary<AddrSpec> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      base: fc.constant('vma' as const),
      pick: fc.nat(),
      off: fc.integer({ min: -2, max: 10 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      base: fc.constant('window' as const),
      page: fc.integer({ min: 0, max: WINDOW_PAGES - 1 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      base: fc.constant('top' as const),
      page: fc.integer({ min: 0, max: 12 }),
    }),
  },
);

const areaArb: fc.Arbitrary<AreaSpec> = fc.record({
  from: fc.constantFrom('live' as const, 'live' as const, 'live' as const, 'dead' as const),
  pick: fc.nat(),
  page: fc.integer({ min: 0, max: 9 }),
});

/** True four times in five: operations mostly aimed where they can succeed. */
const mostly: fc.Arbitrary<boolean> = fc.oneof(
  { weight: 4, arbitrary: fc.constant(true) },
  { weight: 1, arbitrary: fc.constant(false) },
);

const protArb = fc.constantFrom(
  PROT_READ | PROT_WRITE,
  PROT_READ | PROT_WRITE,
  PROT_READ,
  PROT_NONE,
  PROT_WRITE,
);
const shaveArb = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: P - 1 }));

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      k: fc.constant('alloc' as const),
      fn: fc.constantFrom(
        'vmalloc' as const,
        'vzalloc' as const,
        'vmallocUser' as const,
        'vmallocUser' as const,
      ),
      pages: fc.integer({ min: 1, max: 8 }),
      shave: shaveArb,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('vfree' as const),
      how: fc.constantFrom(
        'base' as const,
        'base' as const,
        'interior' as const,
        'unaligned' as const,
        'dead' as const,
        'null' as const,
      ),
      pick: fc.nat(),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ k: 'create' as const }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('destroy' as const), mm: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('reattach' as const), mm: fc.nat() }) },
  {
    weight: 5,
    arbitrary: fc.record({
      k: fc.constant('mmap' as const),
      mm: fc.nat(),
      mode: fc.constantFrom(
        'any' as const,
        'hint' as const,
        'fixed' as const,
        'noreplace' as const,
      ),
      at: addrArb,
      pages: fc.integer({ min: 1, max: 12 }),
      shave: shaveArb,
      prot: protArb,
      hintOff: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: P - 1 })),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant('limit' as const), n: fc.integer({ min: 1, max: 24 }) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant('madvise' as const),
      mm: fc.nat(),
      fit: mostly,
      at: addrArb,
      pages: fc.integer({ min: 0, max: 8 }),
      shave: shaveArb,
      advice: fc.constantFrom(
        MADV_NORMAL,
        MADV_RANDOM,
        MADV_SEQUENTIAL,
        MADV_WILLNEED,
        MADV_DONTNEED,
        MADV_DONTNEED,
        7,
      ),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      k: fc.constant('mremap' as const),
      mm: fc.nat(),
      fit: mostly,
      at: addrArb,
      oldPages: fc.integer({ min: 1, max: 6 }),
      newPages: fc.integer({ min: 1, max: 8 }),
      shave: shaveArb,
      how: fc.constantFrom(
        'plain' as const,
        'maymove' as const,
        'maymove' as const,
        'fixed' as const,
        'fixed' as const,
        'dontunmap' as const,
      ),
      to: addrArb,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant('munmap' as const),
      mm: fc.nat(),
      fit: mostly,
      at: addrArb,
      pages: fc.integer({ min: 0, max: 8 }),
      shave: shaveArb,
      unaligned: fc.oneof(
        { weight: 19, arbitrary: fc.constant(false) },
        { weight: 1, arbitrary: fc.constant(true) },
      ),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      k: fc.constant('mprotect' as const),
      mm: fc.nat(),
      fit: mostly,
      at: addrArb,
      pages: fc.integer({ min: 0, max: 8 }),
      shave: shaveArb,
      prot: protArb,
      copy: fc.boolean(),
    }),
  },
  {
    weight: 14,
    arbitrary: fc.record({
      k: fc.constant('remap' as const),
      fit: mostly,
      h: fc.nat(),
      uoff: fc.integer({ min: -1, max: 10 }),
      area: areaArb,
      pages: fc.integer({ min: 1, max: 8 }),
      shave: shaveArb,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('remapRange' as const),
      fit: mostly,
      h: fc.nat(),
      area: areaArb,
      pgoff: fc.integer({ min: 0, max: 3 }),
    }),
  },
  {
    weight: 10,
    arbitrary: fc.record({
      k: fc.constant('access' as const),
      mm: fc.nat(),
      fit: mostly,
      pick: fc.nat(),
      at: addrArb,
      byte: fc.integer({ min: 0, max: P - 1 }),
      len: fc.integer({ min: 1, max: 3 * P }),
      how: fc.constantFrom(
        'read' as const,
        'write' as const,
        'segments' as const,
        'segmentsWrite' as const,
      ),
      seed: fc.nat(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant('kaccess' as const),
      area: areaArb,
      byte: fc.integer({ min: 0, max: P - 1 }),
      len: fc.integer({ min: 1, max: 2 * P }),
      write: fc.boolean(),
      seed: fc.nat(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('query' as const),
      mm: fc.nat(),
      at: addrArb,
      area: areaArb,
      byte: fc.integer({ min: 0, max: 2 * P }),
    }),
  },
);

// ---------------------------------------------------------------------------------------------
// Resolving picks against the model

/** Mostly a live address space; one pick in eight from all of them, destroyed ones included. */
function pickMm(model: Model, n: number): MMm | undefined {
  const live = model.liveMms();
  if (live.length > 0 && n % 8 !== 0) return live[n % live.length];
  return model.mms.length === 0 ? undefined : model.mms[n % model.mms.length];
}

/** Mostly a live handle; one pick in eight from all of them, stale ones included. */
function pickHandle(model: Model, n: number): MHandle | undefined {
  const live = model.handles.filter((h) => !h.record.dead && h.mm.live);
  if (live.length > 0 && n % 8 !== 0) return live[n % live.length];
  return model.handles.length === 0 ? undefined : model.handles[n % model.handles.length];
}

function resolvePage(mm: MMm, at: AddrSpec): number {
  switch (at.base) {
    case 'vma': {
      const v = mm.vmas.length === 0 ? undefined : mm.vmas[at.pick % mm.vmas.length];
      return v === undefined ? WINDOW_START : Math.max(0, v.start + at.off);
    }
    case 'window':
      return WINDOW_START + at.page;
    case 'top':
      return TASK_PAGES - 8 + at.page;
  }
}

/**
 * Pages `[s, e)` for munmap/mprotect: aimed (`fit`) inside one VMA of `mm` when it has any,
 * else from the address spec.
 */
function resolveRange(mm: MMm, fit: boolean, at: AddrSpec, pages: number): [number, number] {
  if (fit && mm.vmas.length > 0 && pages > 0) {
    const pick = at.base === 'vma' ? at.pick : at.page;
    const v = mm.vmas[pick % mm.vmas.length]!;
    const len = v.end - v.start;
    const off = at.base === 'vma' ? ((at.off % len) + len) % len : pick % len;
    const s = v.start + off;
    return [s, s + 1 + ((pages - 1) % (v.end - s))];
  }
  const s = resolvePage(mm, at);
  return [s, s + pages];
}

/** A kaddr from a live area (any kind) or a dead one, plus a page offset. */
function resolveArea(model: Model, spec: AreaSpec): number {
  const live = model.sortedAreas();
  if (spec.from === 'live' && live.length > 0) {
    const a = live[spec.pick % live.length]!;
    return a.kaddr + (spec.page % (a.nrPages + 1)) * P;
  }
  const dead = model.deadKaddrs;
  const base = dead.length > 0 ? dead[spec.pick % dead.length]! : VMALLOC_START;
  return base + spec.page * P;
}

function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = (seed * 2654435761 + 1) >>> 0;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Expected outcomes of accesses

interface Fault {
  readonly code: SegvCode | BusCode;
  readonly address: number;
}
/** `[page, byte offset in it, bytes]` for each page an access touches. */
type Pieces = [MPage, number, number][];

function userAccess(mm: MMm, uaddr: number, len: number, write: boolean): Fault | Pieces {
  if (!mm.live) return { code: 'SEGV_MAPERR', address: uaddr };
  const pieces: Pieces = [];
  for (let a = uaddr; a < uaddr + len;) {
    const u = Math.floor(a / P);
    const n = Math.min(uaddr + len, (u + 1) * P) - a;
    // decided by the VMA (arch/x86/mm/fault.c); a permitted access to a page with no PTE: SIGBUS
    const vma = u < TASK_PAGES ? vmaAt(mm, u) : undefined;
    if (vma === undefined) return { code: 'SEGV_MAPERR', address: a };
    if (write ? (vma.prot & PROT_WRITE) === 0 : vma.prot === PROT_NONE) {
      return { code: 'SEGV_ACCERR', address: a };
    }
    const page = mm.ptes.get(u);
    if (page === undefined) return { code: 'BUS_ADRERR', address: a };
    pieces.push([page, a - u * P, n]);
    a += n;
  }
  return pieces;
}

function kernelAccess(model: Model, kaddr: number, len: number): Fault | Pieces {
  const pieces: Pieces = [];
  for (let a = kaddr; a < kaddr + len;) {
    const page = model.kernelPage(a);
    const n = Math.min(kaddr + len, (Math.floor(a / P) + 1) * P) - a;
    if (page === undefined) return { code: 'SEGV_MAPERR', address: a };
    pieces.push([page, a % P, n]);
    a += n;
  }
  return pieces;
}

function gather(pieces: Pieces): Uint8Array {
  const out = new Uint8Array(pieces.reduce((s, [, , n]) => s + n, 0));
  let at = 0;
  for (const [page, off, n] of pieces) {
    out.set(page.data.subarray(off, off + n), at);
    at += n;
  }
  return out;
}

function scatter(pieces: Pieces, bytes: Uint8Array): void {
  let at = 0;
  for (const [page, off, n] of pieces) {
    page.data.set(bytes.subarray(at, at + n), off);
    at += n;
  }
}

/** The views `segments` must return: one per physically contiguous run, `[byteOffset, length]`. */
function runsOf(pieces: Pieces): [number, number][] {
  const runs: [number, number][] = [];
  for (const [page, off, n] of pieces) {
    const phys = page.pfn * P + off;
    const last = runs[runs.length - 1];
    if (last !== undefined && last[0] + last[1] === phys) last[1] += n;
    else runs.push([phys, n]);
  }
  return runs;
}

function attempt<T>(fn: () => T): { value: T } | { fault: Fault } {
  try {
    return { value: fn() };
  } catch (e) {
    if (!(e instanceof SegmentationFault) && !(e instanceof BusError)) throw e;
    return { fault: { code: e.code, address: e.address } };
  }
}

function isFault(x: Fault | Pieces): x is Fault {
  return !Array.isArray(x);
}

// ---------------------------------------------------------------------------------------------
// Steps

function stepAlloc(model: Model, op: Extract<Op, { k: 'alloc' }>): void {
  const { k } = model;
  const got = k[op.fn](op.pages * P - op.shave);
  const fits =
    model.freeFrames() >= op.pages &&
    model.areas.size < BOOT.maxAreas &&
    model.vmallocGap(op.pages + 1);
  if (!fits) {
    expect(got, `${op.fn} with no room`).toBeNull();
    return;
  }
  expect(got, `${op.fn} with room`).not.toBeNull();
  const kaddr = got!;
  expect(model.vmallocFree(kaddr, op.pages + 1), 'a new area lies in a free range').toBe(true);
  const livePfns = new Set([...model.pages].map((p) => p.pfn));
  const pages: MPage[] = [];
  for (let i = 0; i < op.pages; i++) {
    const pfn = k.vmallocToPfn(kaddr + i * P);
    expect(pfn).not.toBeNull();
    expect(livePfns.has(pfn!), `frame ${pfn} handed out while in use`).toBe(false);
    const data =
      op.fn === 'vmalloc'
        ? new Uint8Array(k.handle.buffer, pfn! * P, P).slice()
        : new Uint8Array(P);
    const page: MPage = { pfn: pfn!, data, refs: 1 };
    pages.push(page);
    model.pages.add(page);
  }
  const flags = VM_ALLOC | (op.fn === 'vmallocUser' ? VM_USERMAP : 0);
  model.areas.set(kaddr, { kaddr, nrPages: op.pages, flags, pages });
}

function stepVfree(model: Model, op: Extract<Op, { k: 'vfree' }>): void {
  const live = model.sortedAreas();
  const a = live.length === 0 ? undefined : live[op.pick % live.length];
  let x: number | null;
  switch (op.how) {
    case 'null':
      x = null;
      break;
    case 'base':
      x = a?.kaddr ?? VMALLOC_START;
      break;
    case 'interior':
      x = a === undefined ? VMALLOC_START + P : a.kaddr + (1 + (op.pick % a.nrPages)) * P;
      break;
    case 'unaligned':
      x = (a?.kaddr ?? VMALLOC_START) + 1 + (op.pick % (P - 1));
      break;
    case 'dead':
      x =
        model.deadKaddrs.length === 0
          ? VMALLOC_START + (op.pick % model.vmallocPages) * P
          : model.deadKaddrs[op.pick % model.deadKaddrs.length]!;
      break;
  }
  model.k.vfree(x);
  if (x === null) return;
  const area = model.areas.get(x);
  if (area === undefined) {
    model.badFrees++;
    return;
  }
  model.areas.delete(x);
  model.deadKaddrs.push(x);
  for (const page of area.pages) model.put(page);
  expect(model.k.findVmArea(x), 'findVmArea right after vfree').toBeNull();
}

function stepCreate(model: Model): void {
  const got = model.k.createAddressSpace();
  if (model.liveMms().length >= BOOT.maxAddressSpaces || model.freeFrames() < 1) {
    expect(got, 'createAddressSpace with no room').toBeNull();
    return;
  }
  expect(got, 'createAddressSpace with room').not.toBeNull();
  const mm = got!;
  expect(mm.id).toBeGreaterThanOrEqual(1);
  expect(mm.id).toBeLessThanOrEqual(BOOT.maxAddressSpaces);
  expect(model.liveMms().map((m) => m.id)).not.toContain(mm.id);
  model.mms.push({ id: mm.id, handle: mm, live: true, vmas: [], ptes: new Map(), dirs: new Set() });
}

function stepDestroy(model: Model, mm: MMm): void {
  mm.handle.destroy();
  if (!mm.live) return;
  for (const page of mm.ptes.values()) model.put(page);
  mm.ptes.clear();
  for (const v of mm.vmas) v.dead = true;
  mm.vmas = [];
  mm.dirs.clear();
  mm.live = false;
  expect(() => model.k.addressSpace(mm.id)).toThrow(RangeError);
}

function stepReattach(model: Model, mm: MMm): void {
  const owner = model.liveMms().find((m) => m.id === mm.id);
  if (owner === undefined) {
    expect(() => model.k.addressSpace(mm.id)).toThrow(RangeError);
    return;
  }
  const again = model.k.addressSpace(mm.id);
  expect(again.id).toBe(mm.id);
  owner.handle = again;
}

function stepMmap(model: Model, mm: MMm, op: Extract<Op, { k: 'mmap' }>): void {
  const page = op.mode === 'any' ? 0 : resolvePage(mm, op.at);
  const flags =
    op.mode === 'fixed'
      ? MAP_SHARED | MAP_FIXED
      : op.mode === 'noreplace'
        ? MAP_SHARED | MAP_FIXED_NOREPLACE
        : MAP_SHARED;
  // a hint may be unaligned: rounded up, it names `page`
  const addr = op.mode === 'hint' && page > 0 ? page * P - op.hintOff : page * P;
  const got = mm.handle.mmap(addr, op.pages * P - op.shave, op.prot, flags);
  if (!mm.live) {
    expect(got).toBe(-EINVAL);
    return;
  }
  const free = (s: number, n: number): boolean =>
    s >= 1 && s + n <= TASK_PAGES && mm.vmas.every((v) => s + n <= v.start || s >= v.end);
  const roomFor = (n: number): boolean =>
    model.freeVmaSlots() >= n && mm.vmas.length + n <= model.maxMapCount;
  let start: number;
  if (op.mode === 'fixed' || op.mode === 'noreplace') {
    const splits = mm.vmas.some((v) => v.start < page && v.end > page + op.pages) ? 1 : 0;
    const want =
      page === 0
        ? -EPERM
        : page + op.pages > TASK_PAGES
          ? -ENOMEM
          : op.mode === 'noreplace' && !free(page, op.pages)
            ? -EEXIST
            : !roomFor(1 + splits)
              ? -ENOMEM
              : page * P;
    expect(got, `mmap ${op.mode}`).toBe(want);
    if (got === -EEXIST) seen.eexist++;
    if (got === -ENOMEM && model.freeVmaSlots() >= 1 + splits) seen.mapCountRefusals++;
    if (got < 0) return;
    unmapModel(model, mm, page, page + op.pages);
    start = page;
  } else {
    if (!roomFor(1)) {
      expect(got, 'mmap with no VMA slot').toBe(-ENOMEM);
      return;
    }
    if (free(page, op.pages)) expect(got, 'mmap with a free hint').toBe(page * P);
    expect(got % P).toBe(0);
    expect(free(got / P, op.pages), 'mmap returns a free range').toBe(true);
    start = got / P;
  }
  addVma(model, mm, {
    start,
    end: start + op.pages,
    prot: op.prot,
    flags: VM_SHARED | protFlags(op.prot),
    anon: ++model.anons,
    pgoff: 0,
    dead: false,
  });
}

function stepMunmap(model: Model, mm: MMm, op: Extract<Op, { k: 'munmap' }>): void {
  const [s, e] = resolveRange(mm, op.fit, op.at, op.pages);
  const length = e === s ? 0 : (e - s) * P - op.shave;
  const got = mm.handle.munmap(s * P + (op.unaligned ? 1 : 0), length);
  const splits = mm.vmas.some((v) => v.start < s && v.end > e);
  const want =
    !mm.live || op.unaligned || length <= 0 || e > TASK_PAGES
      ? -EINVAL
      : splits && (model.freeVmaSlots() < 1 || mm.vmas.length + 1 > model.maxMapCount)
        ? -ENOMEM
        : 0;
  expect(got, 'munmap').toBe(want);
  if (got === 0) unmapModel(model, mm, s, e);
}

function stepMprotect(model: Model, mm: MMm, given: Extract<Op, { k: 'mprotect' }>): void {
  let [s, e] = resolveRange(mm, given.fit, given.at, given.pages);
  let op = given;
  if (op.copy) {
    // a whole VMA set to the protection of a piece of the same mmap next to it: they merge (if
    // nothing else differs)
    const i = mm.vmas.findIndex((v) => v.start <= s && s < v.end);
    const v = mm.vmas[i];
    const near = [mm.vmas[i - 1], mm.vmas[i + 1]].find(
      (n) => v !== undefined && n?.anon === v.anon && (n.end === v.start || n.start === v.end),
    );
    if (v !== undefined && near !== undefined) {
      op = { ...op, prot: near.prot, shave: 0 };
      [s, e] = [v.start, v.end];
    }
  }
  const length = e === s ? 0 : (e - s) * P - op.shave;
  const got = mm.handle.mprotect(s * P, length, op.prot);
  if (!mm.live) {
    expect(got).toBe(-EINVAL);
    return;
  }
  if (length === 0) {
    expect(got, 'mprotect of length 0').toBe(0);
    return;
  }
  const newFlags = (v: MVma): number => (v.flags & ~(VM_READ | VM_WRITE)) | protFlags(op.prot);
  const want = modifyModel(model, mm, s, e, (v) => [op.prot, newFlags(v)], true);
  expect(got, 'mprotect').toBe(want);
  if (got === 0) modifyModel(model, mm, s, e, (v) => [op.prot, newFlags(v)], false);
}

/**
 * vma_modify on the model: give `[s, e)` the attributes `change` makes of each VMA's. With `dry`
 * only the errno (-ENOMEM for a hole, no slot or the VMA limit; else 0); else the change: the VMAs
 * that change are split where the range cuts them (the record keeps the lower part), changed,
 * then everything mergeable merges.
 */
function modifyModel(
  model: Model,
  mm: MMm,
  s: number,
  e: number,
  change: (v: MVma) => readonly [number, number],
  dry: boolean,
): number {
  // only VMAs that change are touched (mprotect_fixup returns early otherwise)
  const changes = (v: MVma): boolean => {
    const [p, f] = change(v);
    return p !== v.prot || f !== v.flags;
  };
  if (dry) {
    let covered = s;
    let cuts = 0;
    let hole = e > TASK_PAGES;
    for (const v of mm.vmas) {
      if (v.end <= s || v.start >= e) continue;
      if (v.start > covered) hole = true;
      covered = v.end;
      if (!changes(v)) continue;
      if (v.start < s) cuts++;
      if (v.end > e) cuts++;
    }
    if (covered < e) hole = true;
    const noRoom =
      model.freeVmaSlots() < cuts || (cuts > 0 && mm.vmas.length + cuts > model.maxMapCount);
    return hole || noRoom ? -ENOMEM : 0;
  }
  const added: MVma[] = [];
  for (const v of [...mm.vmas]) {
    if (v.end <= s || v.start >= e || !changes(v)) continue;
    const old = { ...v };
    const [prot, flags] = change(old);
    if (old.start < s) {
      v.end = s; // the record keeps the lower part
      added.push(pieceOf(old, s, Math.min(old.end, e), prot, flags));
    } else {
      v.end = Math.min(old.end, e);
      v.flags = flags;
      v.prot = prot;
    }
    if (old.end > e) added.push(pieceOf(old, e, old.end));
  }
  // merged first: a piece merged away at once never had a handle to give out
  settle(model, mm, added);
  return 0;
}

/** Link new records, merge everything mergeable, then hand out handles of the new survivors. */
function settle(model: Model, mm: MMm, added: readonly MVma[]): void {
  mm.vmas.push(...added);
  mm.vmas.sort((x, y) => x.start - y.start);
  mergeModel(mm);
  for (const v of added) {
    if (v.dead) continue;
    mm.vmas = mm.vmas.filter((x) => x !== v);
    addVma(model, mm, v);
  }
}

function stepMadvise(model: Model, mm: MMm, op: Extract<Op, { k: 'madvise' }>): void {
  const [s, e] = resolveRange(mm, op.fit, op.at, op.pages);
  const length = e === s ? 0 : (e - s) * P - op.shave;
  const got = mm.handle.madvise(s * P, length, op.advice);
  if (!mm.live || op.advice > MADV_DONTNEED) {
    expect(got, 'madvise of a dead mm or unknown advice').toBe(-EINVAL);
    return;
  }
  if (length === 0) {
    expect(got, 'madvise of length 0').toBe(0);
    return;
  }
  const covered = coveredModel(mm, s, e);
  if (op.advice === MADV_WILLNEED || op.advice === MADV_DONTNEED) {
    expect(got, 'madvise').toBe(covered ? 0 : -ENOMEM);
    if (got !== 0 || op.advice === MADV_WILLNEED) return;
    seen.dontneed++;
    for (const [u, page] of [...mm.ptes]) {
      if (u >= s && u < e) {
        mm.ptes.delete(u);
        model.put(page);
      }
    }
    return;
  }
  const set =
    op.advice === MADV_RANDOM ? VM_RAND_READ : op.advice === MADV_SEQUENTIAL ? VM_SEQ_READ : 0;
  const change = (v: MVma): [number, number] => [
    v.prot,
    (v.flags & ~(VM_RAND_READ | VM_SEQ_READ)) | set,
  ];
  expect(got, 'madvise').toBe(modifyModel(model, mm, s, e, change, true));
  if (got === 0) modifyModel(model, mm, s, e, change, false);
}

/** True if the VMAs of `mm` cover `[s, e)` with no hole. */
function coveredModel(mm: MMm, s: number, e: number): boolean {
  let covered = s;
  for (const v of mm.vmas) {
    if (v.end <= s || v.start >= e) continue;
    if (v.start > covered) return false;
    covered = v.end;
  }
  return covered >= e && e <= TASK_PAGES;
}

/** vm_unmapped_area, top-down, on the model: the highest free range of `n` pages, or -1. */
function topDownModel(mm: MMm, n: number): number {
  let best = -1;
  let gapStart = 1;
  const fit = (gapEnd: number): void => {
    if (gapEnd - n >= gapStart) best = gapEnd - n;
  };
  for (const v of mm.vmas) {
    fit(v.start);
    gapStart = Math.max(gapStart, v.end);
  }
  fit(TASK_PAGES);
  return best;
}

/** VMA splits the cuts make, in turn, of the model's VMAs. */
function splitsModel(mm: MMm, cuts: readonly [number, number][]): number {
  let ranges = mm.vmas.map((v) => [v.start, v.end] as [number, number]);
  let splits = 0;
  for (const [s, e] of cuts) {
    const next: [number, number][] = [];
    for (const [a, b] of ranges) {
      if (b <= s || a >= e) next.push([a, b]);
      else {
        if (a < s && b > e) splits++;
        if (a < s) next.push([a, s]);
        if (b > e) next.push([e, b]);
      }
    }
    ranges = next;
  }
  return splits;
}

/** mm/mremap.c on the model: the expected result, applied when it is a success. */
function stepMremap(model: Model, mm: MMm, op: Extract<Op, { k: 'mremap' }>): void {
  let s = resolvePage(mm, op.at);
  let oldPages = op.oldPages;
  if (op.fit && mm.vmas.length > 0) {
    // aimed: inside one VMA
    // every other aim at a VMA with PTEs: a move must carry them
    const pick = op.at.base === 'vma' ? op.at.pick : 0;
    const mapped = mm.vmas.filter((x) =>
      [...mm.ptes.keys()].some((u) => u >= x.start && u < x.end),
    );
    const pool = pick % 2 === 1 && mapped.length > 0 ? mapped : mm.vmas;
    const v = pool[pick % pool.length]!;
    s = v.start + ((op.at.base === 'vma' ? Math.max(0, op.at.off) : 0) % (v.end - v.start));
    oldPages = 1 + ((oldPages - 1) % (v.end - s));
  }
  const dontUnmap = op.how === 'dontunmap';
  // a remapped VMA cannot grow: mostly ask it to keep its length or shrink, so that it moves
  const rigid =
    op.fit && ((vmaAt(mm, s)?.flags ?? 0) & VM_DONTEXPAND) !== 0 && op.newPages % 4 !== 3;
  const newPages = dontUnmap ? oldPages : rigid ? Math.min(op.newPages, oldPages) : op.newPages;
  const newLen = dontUnmap ? oldPages * P : newPages * P - (newPages > 1 ? op.shave : 0);
  const flags =
    op.how === 'plain'
      ? 0
      : op.how === 'maymove'
        ? MREMAP_MAYMOVE
        : op.how === 'fixed'
          ? MREMAP_MAYMOVE | MREMAP_FIXED
          : MREMAP_MAYMOVE | MREMAP_DONTUNMAP;
  const to = resolvePage(mm, op.to);
  const got = mm.handle.mremap(s * P, oldPages * P, newLen, flags, to * P);
  const want = expectedMremap(model, mm, s, oldPages, newPages, op.how, to);
  if (got >= 0) seen.mremaps++;
  if (typeof want === 'number') {
    expect(got, `mremap ${op.how}`).toBe(want);
    return;
  }
  // a move to where the kernel chose: it must be the highest free range (vm_unmapped_area)
  const newStart = want.newStart ?? topDownModel(mm, newPages);
  if (newStart < 0) {
    expect(got, 'mremap with no room to move').toBe(-ENOMEM);
    return;
  }
  const errno = moveModel(model, mm, { ...want, newStart }, true);
  expect(got, `mremap ${op.how}`).toBe(errno === 0 ? newStart * P : errno);
  if (errno === 0) {
    seen.moves++;
    seen.movedPtes += [...mm.ptes.keys()].filter((u) => u >= s && u < s + oldPages).length;
    moveModel(model, mm, { ...want, newStart }, false);
  }
}

/** A move the model is to make. */
interface MMove {
  readonly v: MVma;
  readonly s: number;
  readonly oldPages: number;
  readonly newPages: number;
  readonly newStart?: number;
  readonly fixed: boolean;
  readonly dontUnmap: boolean;
}

/** The result of an mremap that does not move (a number), or the move to make. */
function expectedMremap(
  model: Model,
  mm: MMm,
  s: number,
  oldPages: number,
  newPages: number,
  how: 'plain' | 'maymove' | 'fixed' | 'dontunmap',
  to: number,
): number | MMove {
  if (!mm.live) return -EINVAL;
  if (s + oldPages > TASK_PAGES) return -EINVAL;
  const v = vmaAt(mm, s);
  if (v === undefined) return -EFAULT;
  const fixed = how === 'fixed';
  const dontUnmap = how === 'dontunmap';
  const resize = (old: number): number => {
    const dontExpand = (v.flags & VM_DONTEXPAND) !== 0;
    if (dontUnmap && dontExpand) return -EINVAL;
    if (s + old > v.end) return -EFAULT;
    if (newPages > old && dontExpand) return -EFAULT;
    return 0;
  };
  if (fixed || dontUnmap) {
    if (to + newPages > TASK_PAGES) return -EINVAL;
    if (s + oldPages > to && to + newPages > s) return -EINVAL;
    const err = resize(Math.min(oldPages, newPages));
    if (err !== 0) return err;
    if (fixed && to === 0) return -EPERM;
    const hint = to !== 0 && mm.vmas.every((x) => x.end <= to || x.start >= to + newPages);
    const newStart = fixed || hint ? to : undefined;
    return {
      v,
      s,
      oldPages,
      newPages,
      fixed,
      dontUnmap,
      ...(newStart === undefined ? {} : { newStart }),
    };
  }
  if (newPages <= oldPages) {
    if (newPages === oldPages) return s * P;
    const [ts, te] = [s + newPages, s + oldPages];
    const splits = mm.vmas.some((x) => x.start < ts && x.end > te);
    if (splits && (model.freeVmaSlots() < 1 || mm.vmas.length + 1 > model.maxMapCount))
      return -ENOMEM;
    unmapModel(model, mm, ts, te);
    return s * P;
  }
  const err = resize(oldPages);
  if (err !== 0) return err;
  const end = s + newPages;
  const free = mm.vmas.every((x) => x === v || x.end <= v.end || x.start >= end);
  if (s + oldPages === v.end && end <= TASK_PAGES && free) {
    v.end = end;
    mergeModel(mm);
    return s * P;
  }
  if (how === 'plain') return -ENOMEM;
  return { v, s, oldPages, newPages, fixed, dontUnmap };
}

/** move_vma on the model, with its unmaps: with `dry` only the errno, else the move. */
function moveModel(model: Model, mm: MMm, m: MMove & { newStart: number }, dry: boolean): number {
  const { v, s, newStart, newPages, fixed, dontUnmap } = m;
  const moved = Math.min(m.oldPages, newPages);
  const tail: [number, number] = [s + moved, s + m.oldPages];
  const dest: [number, number] = [newStart, newStart + newPages];
  const cuts: [number, number][] = [];
  if (fixed) cuts.push(dest);
  if (tail[1] > tail[0]) cuts.push(tail);
  if (!dontUnmap) cuts.push([s, s + moved]);
  const needed = 1 + splitsModel(mm, cuts);
  if (dry) {
    const tables = new Set<number>();
    for (let u = newStart; u < newStart + moved; u++)
      if (!mm.dirs.has(u >> 10)) tables.add(u >> 10);
    if (mm.vmas.length + needed > model.maxMapCount) return -ENOMEM;
    if (tables.size > model.freeFrames()) return -ENOMEM;
    return model.freeVmaSlots() < needed ? -ENOMEM : 0;
  }
  const attrs = pieceOf(v, s, s + 1);
  const added: MVma[] = [];
  if (fixed) unmapModel(model, mm, dest[0], dest[1], added);
  if (tail[1] > tail[0]) unmapModel(model, mm, tail[0], tail[1], added);
  for (let u = newStart; u < newStart + moved; u++) mm.dirs.add(u >> 10);
  for (const [u, page] of [...mm.ptes]) {
    if (u < s || u >= s + moved) continue;
    mm.ptes.delete(u);
    mm.ptes.set(u - s + newStart, page);
  }
  if (!dontUnmap) unmapModel(model, mm, s, s + moved, added);
  added.push({ ...attrs, start: newStart, end: newStart + newPages });
  const survivors = added.filter((x) => !x.dead);
  mm.vmas = mm.vmas.filter((x) => !survivors.includes(x));
  settle(model, mm, survivors);
  return 0;
}

/** The contract's check table of remapVmallocRangePartial, on the model. */
function expectedRemap(
  model: Model,
  h: MHandle,
  uaddr: number,
  kaddr: number,
  size: number,
): number {
  const v = h.record;
  if (v.dead || !h.mm.live) return -EINVAL;
  if (size <= 0) return -EINVAL;
  const n = Math.ceil(size / P);
  if (uaddr < 0 || uaddr % P !== 0 || kaddr < 0 || kaddr % P !== 0) return -EINVAL;
  const area = model.areaAt(kaddr);
  if (area === undefined) return -EINVAL;
  if ((area.flags & VM_USERMAP) === 0) return -EINVAL;
  if ((kaddr - area.kaddr) / P + n > area.nrPages) return -EINVAL;
  const u = uaddr / P;
  if (u < v.start || u + n > v.end) return -EFAULT;
  for (let i = 0; i < n; i++) if (h.mm.ptes.has(u + i)) return -EBUSY;
  const dirs = new Set<number>();
  for (let i = 0; i < n; i++) if (!h.mm.dirs.has((u + i) >> 10)) dirs.add((u + i) >> 10);
  if (model.freeFrames() < dirs.size) return -ENOMEM;
  return 0;
}

function applyRemap(model: Model, h: MHandle, uaddr: number, kaddr: number, size: number): void {
  const area = model.areaAt(kaddr)!;
  const first = (kaddr - area.kaddr) / P;
  const u = uaddr / P;
  for (let i = 0; i < Math.ceil(size / P); i++) {
    const page = area.pages[first + i]!;
    page.refs++;
    h.mm.ptes.set(u + i, page);
    h.mm.dirs.add((u + i) >> 10);
  }
  h.record.flags |= MARKS;
}

function stepRemap(model: Model, op: Extract<Op, { k: 'remap' }>): void {
  const h = pickHandle(model, op.h);
  if (h === undefined) return;
  const v = h.record;
  const user = model.sortedAreas().filter((a) => (a.flags & VM_USERMAP) !== 0);
  let uaddr: number;
  let kaddr: number;
  let size: number;
  if (op.fit && !v.dead && h.mm.live && user.length > 0) {
    // aimed: inside the VMA, inside a remappable area (may still meet PTEs: -EBUSY)
    const a = user[op.area.pick % user.length]!;
    const len = v.end - v.start;
    const uoff = ((op.uoff % len) + len) % len;
    const koff = op.area.page % a.nrPages;
    const n = 1 + ((op.pages - 1) % Math.min(len - uoff, a.nrPages - koff));
    uaddr = (v.start + uoff) * P;
    kaddr = a.kaddr + koff * P;
    size = n * P - (n === 1 ? 0 : op.shave);
  } else {
    const base = v.dead || !h.mm.live ? WINDOW_START : v.start;
    uaddr = Math.max(0, base + op.uoff) * P;
    kaddr = resolveArea(model, op.area);
    size = op.pages * P - op.shave;
  }
  const want = expectedRemap(model, h, uaddr, kaddr, size);
  expect(remapPartial(h.vma, uaddr, kaddr, size), 'remapPartial').toBe(want);
  if (want === 0) applyRemap(model, h, uaddr, kaddr, size);
}

function stepRemapRange(model: Model, op: Extract<Op, { k: 'remapRange' }>): void {
  const h = pickHandle(model, op.h);
  if (h === undefined) return;
  const len = h.record.end - h.record.start;
  // aimed: a remappable area big enough for the VMA from pgoff, if there is one
  const big = model
    .sortedAreas()
    .filter((a) => (a.flags & VM_USERMAP) !== 0 && a.nrPages - op.pgoff >= len);
  const kaddr =
    op.fit && big.length > 0 ? big[op.area.pick % big.length]!.kaddr : resolveArea(model, op.area);
  const got = remapVmallocRange(h.vma, kaddr, op.pgoff);
  if (h.record.dead || !h.mm.live) {
    expect(got, 'remapVmallocRange of a stale VMA').toBe(-EINVAL);
    return;
  }
  const { start, end } = h.record;
  const want = expectedRemap(model, h, start * P, kaddr + op.pgoff * P, (end - start) * P);
  expect(got, 'remapVmallocRange').toBe(want);
  if (want === 0) applyRemap(model, h, start * P, kaddr + op.pgoff * P, (end - start) * P);
}

function stepAccess(model: Model, mm: MMm, op: Extract<Op, { k: 'access' }>): void {
  const mapped = [...mm.ptes.keys()].sort((a, b) => a - b);
  // aimed: starting in a mapped page (may run past it)
  const page =
    op.fit && mapped.length > 0 ? mapped[op.pick % mapped.length]! : resolvePage(mm, op.at);
  const uaddr = page * P + op.byte;
  let len = op.len;
  if (op.fit && mapped.length > 0) {
    // stay inside the run of mapped pages
    let run = 1;
    while (mm.ptes.has(page + run)) run++;
    len = 1 + ((op.len - 1) % (run * P - op.byte));
  }
  const write = op.how === 'write' || op.how === 'segmentsWrite';
  const want = userAccess(mm, uaddr, len, write);
  const bytes = pattern(len, op.seed);
  const got = attempt(() => {
    switch (op.how) {
      case 'read':
        return [mm.handle.read(uaddr, len)];
      case 'write':
        mm.handle.write(uaddr, bytes);
        return [];
      case 'segments':
        return mm.handle.segments(uaddr, len);
      case 'segmentsWrite':
        return mm.handle.segments(uaddr, len, { write: true });
    }
  });
  if (isFault(want)) {
    expect(got, `${op.how} at 0x${uaddr.toString(16)}`).toEqual({ fault: want });
    return;
  }
  if ('fault' in got) throw new Error(`${op.how} faulted: ${JSON.stringify(got.fault)}`);
  const views = got.value;
  switch (op.how) {
    case 'read':
      expect(Buffer.from(views[0]!).equals(gather(want)), 'bytes read').toBe(true);
      return;
    case 'write':
      scatter(want, bytes);
      return;
    case 'segments':
    case 'segmentsWrite': {
      expect(
        views.map((v) => [v.byteOffset, v.length]),
        'segments: one view per run',
      ).toEqual(runsOf(want));
      for (const v of views) expect(v.buffer).toBe(model.k.handle.buffer);
      if (op.how === 'segmentsWrite') {
        let at = 0;
        for (const v of views) {
          v.set(bytes.subarray(at, at + v.length));
          at += v.length;
        }
        scatter(want, bytes);
      }
      return;
    }
  }
}

function stepKaccess(model: Model, op: Extract<Op, { k: 'kaccess' }>): void {
  const kaddr = resolveArea(model, op.area) + op.byte;
  const want = kernelAccess(model, kaddr, op.len);
  const bytes = pattern(op.len, op.seed);
  const got = attempt(() =>
    op.write ? (model.k.writeKernel(kaddr, bytes), null) : model.k.readKernel(kaddr, op.len),
  );
  if (isFault(want)) {
    expect(got, `${op.write ? 'writeKernel' : 'readKernel'} at 0x${kaddr.toString(16)}`).toEqual({
      fault: want,
    });
    return;
  }
  if ('fault' in got) throw new Error(`kernel access faulted: ${JSON.stringify(got.fault)}`);
  if (op.write) scatter(want, bytes);
  else expect(Buffer.from(got.value!).equals(gather(want)), 'bytes readKernel read').toBe(true);
}

function stepQuery(model: Model, mm: MMm | undefined, op: Extract<Op, { k: 'query' }>): void {
  const kaddr = resolveArea(model, op.area) + op.byte;
  const a = model.areaAt(kaddr);
  expect(model.k.findVmArea(kaddr), 'findVmArea').toEqual(
    a === undefined
      ? null
      : { addr: a.kaddr, size: (a.nrPages + 1) * P, nrPages: a.nrPages, flags: a.flags },
  );
  expect(model.k.vmallocToPfn(kaddr), 'vmallocToPfn').toBe(model.kernelPage(kaddr)?.pfn ?? null);
  if (mm === undefined) return;
  const upage = resolvePage(mm, op.at);
  const v = mm.live ? vmaAt(mm, upage) : undefined;
  const h = mm.handle.findVma(upage * P + (op.byte % P));
  expect(h === null ? null : [h.start, h.end, h.prot], 'findVma').toEqual(
    v === undefined ? null : [v.start * P, v.end * P, v.prot],
  );
}

function step(model: Model, op: Op): void {
  if (op.k === 'alloc') stepAlloc(model, op);
  else if (op.k === 'vfree') stepVfree(model, op);
  else if (op.k === 'create') stepCreate(model);
  else if (op.k === 'remap') stepRemap(model, op);
  else if (op.k === 'remapRange') stepRemapRange(model, op);
  else if (op.k === 'kaccess') stepKaccess(model, op);
  else if (op.k === 'query') stepQuery(model, pickMm(model, op.mm), op);
  else if (op.k === 'limit') {
    model.k.maxMapCount = op.n;
    model.maxMapCount = op.n;
    expect(model.k.maxMapCount).toBe(op.n);
  } else {
    const mm = pickMm(model, op.mm);
    if (mm === undefined) return;
    if (op.k === 'destroy') stepDestroy(model, mm);
    else if (op.k === 'reattach') stepReattach(model, mm);
    else if (op.k === 'mmap') stepMmap(model, mm, op);
    else if (op.k === 'munmap') stepMunmap(model, mm, op);
    else if (op.k === 'mprotect') stepMprotect(model, mm, op);
    else if (op.k === 'madvise') stepMadvise(model, mm, op);
    else if (op.k === 'mremap') stepMremap(model, mm, op);
    else stepAccess(model, mm, op);
  }
}

// ---------------------------------------------------------------------------------------------
// The comparison after every step

const MAPS_LINE = /^([0-9a-f]{8,})-([0-9a-f]{8,}) ([r-])([w-])-([sp]) /;

function parseMaps(text: string): [number, number, string][] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const m = MAPS_LINE.exec(l);
      if (m === null) throw new Error(`maps line not understood: ${l}`);
      return [parseInt(m[1]!, 16), parseInt(m[2]!, 16), `${m[3]}${m[4]}${m[5]}`];
    });
}

/** What a PTE of a VMA with `prot` grants: PROT_WRITE implies read, as on x86. */
function ptePprot(prot: number): number {
  return prot & PROT_WRITE ? PROT_READ | PROT_WRITE : prot;
}

/** show_map_vma: r and w from VM_READ and VM_WRITE (PROT_WRITE alone is -w-s). */
function perms(flags: number): string {
  return `${flags & VM_READ ? 'r' : '-'}${flags & VM_WRITE ? 'w' : '-'}s`;
}

function compare(model: Model): void {
  const { k } = model;
  const s = k.stats();
  expect(
    {
      freeFrames: s.freeFrames,
      deferredFrames: s.deferredFrames,
      badFrees: s.badFrees,
      vmallocAreas: s.vmallocAreas,
      vmallocPages: s.vmallocPages,
      pageTableFrames: s.pageTableFrames,
      addressSpaces: s.addressSpaces,
    },
    'stats',
  ).toEqual({
    freeFrames: model.freeFrames(),
    deferredFrames: 0,
    badFrees: model.badFrees,
    vmallocAreas: model.areas.size,
    vmallocPages: [...model.areas.values()].reduce((n, a) => n + a.nrPages, 0),
    pageTableFrames: model.ptFrames(),
    addressSpaces: model.liveMms().length,
  });
  expect(k.vmallocAreas(), 'vmallocAreas').toEqual(
    model.sortedAreas().map((a) => ({
      addr: a.kaddr,
      size: (a.nrPages + 1) * P,
      nrPages: a.nrPages,
      flags: a.flags,
    })),
  );
  expect(k.addressSpaceIds(), 'addressSpaceIds').toEqual(
    model
      .liveMms()
      .map((m) => m.id)
      .sort((a, b) => a - b),
  );
  for (const mm of model.mms) {
    const vmas = mm.vmas.map((v) => [v.start * P, v.end * P, v.prot, v.flags]);
    expect(parseMaps(mm.handle.maps()), `maps of mm ${mm.id}`).toEqual(
      mm.vmas.map((v) => [v.start * P, v.end * P, perms(v.flags)]),
    );
    expect(
      mm.handle.vmas().map((v) => [v.start, v.end, v.prot, v.flags]),
      `vmas of mm ${mm.id}`,
    ).toEqual(vmas);
    const ptes = [...mm.ptes]
      .sort((a, b) => a[0] - b[0])
      .map(([u, page]) => ({ uaddr: u * P, pfn: page.pfn, prot: ptePprot(vmaAt(mm, u)!.prot) }));
    expect(mm.handle.pagemap(), `pagemap of mm ${mm.id}`).toEqual(ptes);
  }
  for (const h of model.handles) {
    if (h.record.dead || !h.mm.live) continue;
    const { start, end, prot, flags } = h.record;
    expect([h.vma.start, h.vma.end, h.vma.prot, h.vma.flags], 'a live Vma handle').toEqual([
      start * P,
      end * P,
      prot,
      flags,
    ]);
  }
  const snap = k.frameSnapshot();
  for (const page of model.pages) {
    expect(snap.refcounts[page.pfn], `references of frame ${page.pfn}`).toBe(page.refs);
    const frame = Buffer.from(k.handle.buffer, page.pfn * P, P);
    if (!frame.equals(page.data)) {
      throw new Error(`frame ${page.pfn} does not hold the bytes the model expects`);
    }
  }
  k.checkInvariants();
}

// ---------------------------------------------------------------------------------------------

const NUM_RUNS = envInt('SABVM_MODEL_RUNS', LONG ? 100_000 : 250);
const replaySeed = process.env.SABVM_MODEL_SEED;
const replayPath = process.env.SABVM_MODEL_PATH;
let programs = 0;
let steps = 0;

function runProgram(ops: readonly Op[]): void {
  programs++;
  const k = Kernel.boot(BOOT);
  const model = new Model(k, k.stats().freeFrames, k.layout.vmallocPages);
  stepCreate(model); // programs start with an address space (they may destroy it)
  compare(model);
  for (const op of ops) {
    step(model, op);
    steps++;
    compare(model);
  }
  // tear down: everything freed gives back every frame
  for (const mm of model.liveMms()) stepDestroy(model, mm);
  while (model.areas.size > 0) stepVfree(model, { k: 'vfree', how: 'base', pick: 0 });
  compare(model);
  expect(k.stats().freeFrames).toBe(model.bootFree);
}

afterAll(() => {
  console.log(
    `api-model: ${programs} programs, ${steps} steps, each step compared with the model and checkInvariants(); ` +
      `${seen.merges} VMA merges, ${seen.eexist} MAP_FIXED_NOREPLACE refusals, ${seen.mapCountRefusals} refusals by maxMapCount, ` +
      `${seen.mremaps} mremaps done (${seen.moves} moves carrying ${seen.movedPtes} PTEs), ${seen.dontneed} MADV_DONTNEED`,
  );
});

describe('the whole API against a reference model', () => {
  it(
    'agrees with the model after every step of random programs, and gives every frame back at the end',
    { timeout: LONG ? 24 * 3600_000 : 120_000 },
    () => {
      fc.assert(
        fc.property(fc.array(opArb, { minLength: 1, maxLength: 60, size: 'max' }), (ops) => {
          runProgram(ops);
        }),
        {
          numRuns: NUM_RUNS,
          ...(replaySeed === undefined ? {} : { seed: Number(replaySeed) }),
          ...(replayPath === undefined ? {} : { path: replayPath }),
        },
      );
    },
  );
});
