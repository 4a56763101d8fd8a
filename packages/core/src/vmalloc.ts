/**
 * vmalloc: virtually contiguous kernel areas built from frames anywhere in physical memory.
 *
 * Kernel counterpart: `mm/vmalloc.c` (`__vmalloc_node_range`, `vfree`, `find_vm_area`,
 * `vmalloc_to_pfn`, `alloc_vmap_area`).
 *
 * The vmalloc range is `[VMALLOC_START, VMALLOC_START + vmallocPages * PAGE_SIZE)`, far above every
 * user address. Each area is carved from it lowest-address first fit and followed by one unmapped
 * guard page:
 *
 * ```
 *   VMALLOC_START
 *   │ area A (3 pages) │guard│   hole   │ area B (1 page) │guard│        free …        │
 *   ▲ AREA_HEAD → A ⇄ B (sorted by address: the vmap_area_list)
 * ```
 *
 * State and its locks:
 * - area records, the area list, the area map and the counters in the header line of
 *   `Hdr.VMAP_LOCK`: under **vmap_area_lock** (written with `Atomics.store`);
 * - kernel PTEs: written under vmap_area_lock, read lock-free (`vmallocToPfn`, `readKernel`);
 * - frames: the lock-free frame allocator; an area holds one reference on each of its frames.
 *
 * @module
 */
import { PAGE_SIZE, PROT_WRITE, VM_ALLOC } from './errno.js';
import { allocContig } from './contig.js';
import { allocFrames, getFrame, ownerTag, putFrame } from './frame-alloc.js';
import {
  Area,
  AREA_WORDS,
  AreaCaller,
  Frame,
  FRAME_WORDS,
  FrameKind,
  Hdr,
  Mm,
  HPAGE_PAGES,
  VMALLOC_START,
} from './layout.js';
import { spinLock, spinUnlock } from './lock.js';
import { lockAllMms, mmGet, mmUnlock } from './mm.js';
import { forEachPteLocked, mkPte, PTE_PFN_STEP, ptePfn } from './pgtable.js';
import { clearFrames, type PhysMem } from './phys-mem.js';
import { inKernel } from './thread.js';

/** A live vmalloc area (`struct vm_struct`), as `findVmArea` reports it. */
export interface VmArea {
  /** Kernel address of the first page. */
  readonly addr: number;
  /** Bytes, guard page included (as Linux's `vm_struct.size`). */
  readonly size: number;
  /** Backed pages, guard excluded. */
  readonly nrPages: number;
  /** `VM_ALLOC`, `VM_USERMAP`, … */
  readonly flags: number;
}

/** Index of an area record's word. */
export function areaWord(mem: PhysMem, slot: number, word: Area): number {
  return mem.areaTable + slot * AREA_WORDS + word;
}

/** Read an area word. Context: vmap_area_lock held, or a snapshot. */
export function areaGet(mem: PhysMem, slot: number, word: Area): number {
  return mem.i32[areaWord(mem, slot, word)]!;
}

function areaSet(mem: PhysMem, slot: number, word: Area, value: number): void {
  mem.i32[areaWord(mem, slot, word)] = value;
}

/** Boot-time setup: every area slot on the free list. Context: boot, before sharing. */
export function initVmalloc(mem: PhysMem): void {
  const { maxAreas } = mem.layout;
  for (let slot = 0; slot < maxAreas; slot++) {
    mem.i32[areaWord(mem, slot, Area.NEXT)] = slot + 1 < maxAreas ? slot + 2 : 0;
  }
  mem.i32[Hdr.AREA_FREE_HEAD] = 1;
}

/** Whole pages for a vmalloc size, or 0 when the size is not acceptable (→ `null`). */
export function sizeToPages(mem: PhysMem, size: unknown): number {
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0) return 0;
  if (size > mem.layout.totalFrames * PAGE_SIZE) return 0;
  return Math.ceil(size / PAGE_SIZE);
}

/**
 * Find the lowest gap of `need` pages whose start is a multiple of `alignPages`
 * (`alloc_vmap_area`'s first fit), or null. Changes nothing: the caller updates the search cache
 * once the area is placed.
 *
 * Like the kernel's `free_vmap_cache`, a search resumes after the area the last one placed, unless
 * a hole below it could fit this request: `Hdr.CACHED_HOLE` is the largest hole a search has
 * skipped below the cache, so a request no larger than it (or more aligned than the cached search)
 * starts again from the lowest address. That keeps the answer the lowest fit, and makes runs of
 * allocations cost O(1) instead of a walk over every live area.
 * Context: vmap_area_lock held.
 */
function findGapLocked(mem: PhysMem, need: number, alignPages: number): Gap | null {
  const { i32 } = mem;
  const limit = mem.layout.vmallocPages;
  let cache = i32[Hdr.FREE_CACHE]!;
  let hole = i32[Hdr.CACHED_HOLE]!;
  if (cache === 0 || need <= hole || alignPages < i32[Hdr.CACHED_ALIGN]!) {
    cache = 0;
    hole = 0;
  }
  let prev = cache;
  let prevEnd =
    cache === 0
      ? 0
      : areaGet(mem, cache - 1, Area.START) + areaGet(mem, cache - 1, Area.NR_PAGES) + 1;
  let cur = cache === 0 ? i32[Hdr.AREA_HEAD]! : areaGet(mem, cache - 1, Area.NEXT);
  for (;;) {
    const start = Math.ceil(prevEnd / alignPages) * alignPages;
    const gapEnd = cur === 0 ? limit : areaGet(mem, cur - 1, Area.START);
    if (start + need <= gapEnd) return { start, prev, hole };
    if (cur === 0) return null;
    hole = Math.max(hole, gapEnd - prevEnd);
    prevEnd = areaGet(mem, cur - 1, Area.START) + areaGet(mem, cur - 1, Area.NR_PAGES) + 1;
    prev = cur;
    cur = areaGet(mem, cur - 1, Area.NEXT);
  }
}

/**
 * Find the highest gap of `need` pages and place the range at its top end, or null. A walk over
 * every live area: only large areas come here. Changes nothing. Context: vmap_area_lock held.
 */
function findGapTopLocked(mem: PhysMem, need: number): Gap | null {
  let best: Gap | null = null;
  let prev = 0;
  let prevEnd = 0;
  let cur = mem.i32[Hdr.AREA_HEAD]!;
  for (;;) {
    const gapEnd = cur === 0 ? mem.layout.vmallocPages : areaGet(mem, cur - 1, Area.START);
    if (gapEnd - prevEnd >= need) best = { start: gapEnd - need, prev, hole: 0 };
    if (cur === 0) return best;
    prevEnd = areaGet(mem, cur - 1, Area.START) + areaGet(mem, cur - 1, Area.NR_PAGES) + 1;
    prev = cur;
    cur = areaGet(mem, cur - 1, Area.NEXT);
  }
}

/** Where {@link findGapLocked} found room, and the largest hole it skipped below it. */
interface Gap {
  readonly start: number;
  /** slot + 1 of the area before the gap, 0 if none */
  readonly prev: number;
  readonly hole: number;
}

/** True when `pfns` are consecutive. */
function isRun(pfns: Int32Array): boolean {
  for (let i = 1; i < pfns.length; i++) if (pfns[i] !== pfns[i - 1]! + 1) return false;
  return true;
}

/**
 * Allocate an area of `nrPages` backed pages (`__vmalloc_node_range`): frames first (lock-free,
 * contiguous runs preferred, or one run only with `contiguous`), then the address range under
 * vmap_area_lock. Returns the kaddr, or null with everything taken on the way given back.
 * Context: any thread; takes vmap_area_lock.
 */
export function vmallocPages(
  mem: PhysMem,
  nrPages: number,
  flags: number,
  caller: AreaCaller,
  zero: boolean,
  alignPages = 1,
  contiguous = false,
): number | null {
  return inKernel(mem, () =>
    vmallocPagesIn(mem, nrPages, flags, caller, zero, alignPages, contiguous),
  );
}

/**
 * Take the frames of a new area. An area of 4 MiB or more gets one run starting on a 4 MiB
 * boundary when one is free, so that user mappings of it can use huge entries (page-table.ts);
 * large runs come from the top of memory, small allocations from the bottom (contig.ts), so churn
 * among small areas leaves long runs free. `contiguous`: one run or nothing (`alloc_contig_pages`).
 */
function takeAreaFrames(
  mem: PhysMem,
  nrPages: number,
  contiguous: boolean,
  owner: number,
  pfns: Int32Array,
  dirty: Uint8Array | null,
): boolean {
  const large = nrPages >= HPAGE_PAGES;
  if (large && allocContig(mem, nrPages, HPAGE_PAGES, true, owner, pfns, dirty)) return true;
  if (contiguous) return allocContig(mem, nrPages, 1, large, owner, pfns, dirty);
  return allocFrames(mem, nrPages, owner, pfns, dirty);
}

/**
 * Zero the frames of `pfns` that may hold old data (`dirty[i]` 1), one `fill` per physically
 * contiguous run; frames never handed out since boot are already zero and are not touched.
 */
function zeroDirtyFrames(mem: PhysMem, pfns: Int32Array, dirty: Uint8Array): void {
  let i = 0;
  while (i < pfns.length) {
    if (dirty[i] === 0) {
      i++;
      continue;
    }
    const first = pfns[i]!;
    let n = 1;
    while (i + n < pfns.length && dirty[i + n] === 1 && pfns[i + n] === first + n) n++;
    clearFrames(mem, first, n);
    i += n;
  }
}

/** Areas up to this many pages reuse this thread's scratch arrays; larger ones get their own. */
const SCRATCH_PAGES = 1 << 16;
/** Smaller areas get two small new arrays: cheaper than two `subarray` views of the scratch. */
const SCRATCH_MIN_PAGES = 1024;
let scratchPfns = new Int32Array(0);
let scratchDirty = new Uint8Array(0);

/**
 * The pfn list and dirty flags of one allocation of `nrPages`: for a large area, views of this
 * thread's scratch arrays (a module's state is per thread), grown on demand up to
 * {@link SCRATCH_PAGES}, so that it does not allocate, and fault in, two fresh arrays for them. Context: one allocation
 * at a time per thread (nothing in vmallocPagesIn calls back out).
 */
function scratchFor(
  nrPages: number,
  zero: boolean,
): { pfns: Int32Array; dirty: Uint8Array | null } {
  if (nrPages < SCRATCH_MIN_PAGES || nrPages > SCRATCH_PAGES) {
    return { pfns: new Int32Array(nrPages), dirty: zero ? new Uint8Array(nrPages) : null };
  }
  if (scratchPfns.length < nrPages) {
    const size = Math.min(SCRATCH_PAGES, Math.max(nrPages, 2 * scratchPfns.length));
    scratchPfns = new Int32Array(size);
    scratchDirty = new Uint8Array(size);
  }
  return {
    pfns: scratchPfns.subarray(0, nrPages),
    dirty: zero ? scratchDirty.subarray(0, nrPages) : null,
  };
}

/**
 * Give the area's frames their owner and write its kernel PTEs, from vmalloc page `start`. For one
 * physical run (`run`) the pfn and the PTE step by a constant, with no read of `pfns`: the path of
 * every large area, fresh memory included. Context: vmap_area_lock held, the frames in flight.
 */
function linkFrames(
  mem: PhysMem,
  pfns: Int32Array,
  run: boolean,
  start: number,
  owner: number,
): void {
  const { i32 } = mem;
  const n = pfns.length;
  const ownerWord = Frame.OWNER; // locals: an imported binding is a cell load in every iteration
  const stride = FRAME_WORDS;
  const step = PTE_PFN_STEP;
  let pte = mem.kernelPageTable + start;
  if (run) {
    let entry = mem.frameTable + pfns[0]! * stride + ownerWord;
    let value = mkPte(pfns[0]!, PROT_WRITE);
    for (const end = pte + n; pte < end; pte++) {
      i32[entry] = owner;
      i32[pte] = value;
      entry += stride;
      value += step;
    }
    return;
  }
  const { frameTable } = mem;
  for (let i = 0; i < n; i++, pte++) {
    const pfn = pfns[i]!;
    i32[frameTable + pfn * stride + ownerWord] = owner;
    i32[pte] = mkPte(pfn, PROT_WRITE);
  }
}

function vmallocPagesIn(
  mem: PhysMem,
  nrPages: number,
  flags: number,
  caller: AreaCaller,
  zero: boolean,
  alignPages: number,
  contiguous: boolean,
): number | null {
  const { i32 } = mem;
  const { pfns, dirty } = scratchFor(nrPages, zero);
  // in flight until linked: a recovery keeps them while this thread lives, frees them if it dies
  const inflight = ownerTag(FrameKind.INFLIGHT, Math.max(0, mem.current.slot));
  if (!takeAreaFrames(mem, nrPages, contiguous, inflight, pfns, dirty)) return null;
  if (dirty !== null) zeroDirtyFrames(mem, pfns, dirty);
  spinLock(mem, Hdr.VMAP_LOCK);
  // large areas take the highest fitting range, small ones the lowest (as their frames do), so
  // churn among small areas leaves long ranges of the vmalloc space free too
  const top = nrPages >= HPAGE_PAGES && alignPages === 1;
  const gap = top
    ? findGapTopLocked(mem, nrPages + 1)
    : findGapLocked(mem, nrPages + 1, alignPages);
  const slot = Atomics.load(i32, Hdr.AREA_FREE_HEAD) - 1;
  if (gap === null || slot < 0) {
    spinUnlock(mem, Hdr.VMAP_LOCK);
    for (const pfn of pfns) putFrame(mem, pfn);
    return null;
  }
  const { start, prev } = gap;
  if (!top) {
    // the search cache changes only with a placed area: it then vouches for every hole below it
    // (an area placed from the top only makes holes smaller: the cache stays an upper bound)
    i32[Hdr.FREE_CACHE] = slot + 1;
    i32[Hdr.CACHED_HOLE] = gap.hole;
    i32[Hdr.CACHED_ALIGN] = alignPages;
  }
  // NR_PAGES is written last: until then the slot is not live, and a recovery treats the area as
  // never made (see recovery.ts), so this path needs no undo log.
  Atomics.store(i32, Hdr.AREA_FREE_HEAD, areaGet(mem, slot, Area.NEXT));
  const next = prev === 0 ? Atomics.load(i32, Hdr.AREA_HEAD) : areaGet(mem, prev - 1, Area.NEXT);
  areaSet(mem, slot, Area.START, start);
  areaSet(mem, slot, Area.FLAGS, flags | VM_ALLOC);
  areaSet(mem, slot, Area.CALLER, caller);
  areaSet(mem, slot, Area.MAPCOUNT, 0);
  const run = nrPages > 0 && pfns[nrPages - 1] === pfns[0]! + nrPages - 1 && isRun(pfns);
  areaSet(mem, slot, Area.CONTIG, run ? pfns[0]! + 1 : 0);
  // Plain stores: the frames are this thread's own (in flight), and no thread has this range's
  // kaddrs before this call returns; the area goes live with the NR_PAGES store below and the
  // lock's release (both Atomics), which publish these words to every thread that can name them.
  linkFrames(mem, pfns, run, start, ownerTag(FrameKind.VMALLOC, slot));
  // the area map covers the guard page too: findVmArea reports it as part of the area
  i32.fill(slot + 1, mem.areaMap + start, mem.areaMap + start + nrPages + 1);
  areaSet(mem, slot, Area.PREV, prev);
  areaSet(mem, slot, Area.NEXT, next);
  if (prev === 0) Atomics.store(i32, Hdr.AREA_HEAD, slot + 1);
  else areaSet(mem, prev - 1, Area.NEXT, slot + 1);
  if (next !== 0) areaSet(mem, next - 1, Area.PREV, slot + 1);
  Atomics.add(i32, Hdr.NR_AREAS, 1);
  Atomics.add(i32, Hdr.VMALLOC_USED_PAGES, nrPages);
  areaSet(mem, slot, Area.NR_PAGES, nrPages); // commit
  spinUnlock(mem, Hdr.VMAP_LOCK);
  return VMALLOC_START + start * PAGE_SIZE;
}

/** The vmalloc page index of a kaddr, or -1 outside the vmalloc range or not a safe integer. */
export function vmallocPageIndex(mem: PhysMem, kaddr: unknown): number {
  if (typeof kaddr !== 'number' || !Number.isSafeInteger(kaddr)) return -1;
  const off = kaddr - VMALLOC_START;
  if (off < 0 || off >= mem.layout.vmallocPages * PAGE_SIZE) return -1;
  return Math.floor(off / PAGE_SIZE);
}

/**
 * The slot of the live area containing vmalloc page `page` (guard included), or -1.
 * Context: vmap_area_lock held.
 */
export function areaOfPageLocked(mem: PhysMem, page: number): number {
  return mem.i32[mem.areaMap + page]! - 1;
}

/**
 * Free the area whose base is `kaddr` (`vfree`). Anything else but null is counted in
 * `Hdr.BAD_FREES` and changes nothing. Frames still mapped by user PTEs keep their data until their
 * last reference goes. Context: any thread; takes vmap_area_lock.
 */
export function vfree(mem: PhysMem, kaddr: unknown, keep: AreaCaller | -1 = -1): void {
  if (kaddr === null) return;
  const { i32 } = mem;
  const page = vmallocPageIndex(mem, kaddr);
  if (page < 0 || (kaddr as number) % PAGE_SIZE !== 0) {
    Atomics.add(i32, Hdr.BAD_FREES, 1);
    return;
  }
  inKernel(mem, () => {
    vfreeIn(mem, page, keep);
  });
}

/**
 * vfree of vmalloc page `page`, inside a kernel call; an area made by `keep` (its owner frees it,
 * as a ring frees its own) is refused and counted as a bad free.
 */
function vfreeIn(mem: PhysMem, page: number, keep: AreaCaller | -1): void {
  spinLock(mem, Hdr.VMAP_LOCK);
  let slot = liveAreaAtLocked(mem, page);
  if (slot >= 0 && areaGet(mem, slot, Area.CALLER) === keep) {
    spinUnlock(mem, Hdr.VMAP_LOCK);
    Atomics.add(mem.i32, Hdr.BAD_FREES, 1);
    return;
  }
  if (slot >= 0 && Atomics.load(mem.i32, areaWord(mem, slot, Area.MAPCOUNT)) > 0) {
    // mapped in user space: hold every mmap_lock so that no PTE of the area comes or goes, then
    // hand each frame the references of the PTEs that map it (the area becomes orphan pages)
    for (;;) {
      spinUnlock(mem, Hdr.VMAP_LOCK);
      const locked = lockAllMms(mem);
      spinLock(mem, Hdr.VMAP_LOCK);
      slot = liveAreaAtLocked(mem, page);
      // an address space made after lockAllMms passed its slot may map the area too: try again
      if (slot >= 0 && !orphanAreaLocked(mem, slot, locked)) {
        for (const mm of locked) mmUnlock(mem, mm);
        continue;
      }
      freeAreaLocked(mem, slot, page);
      for (const mm of locked) mmUnlock(mem, mm);
      return;
    }
  }
  freeAreaLocked(mem, slot, page);
}

/** The live area whose base is vmalloc page `page`, or -1. Context: vmap_area_lock held. */
function liveAreaAtLocked(mem: PhysMem, page: number): number {
  const slot = areaOfPageLocked(mem, page);
  return slot >= 0 && areaGet(mem, slot, Area.START) === page ? slot : -1;
}

/**
 * Turn the pages of a mapped area into orphan pages: each gains one reference per user PTE that
 * maps it, and the area's MAPCOUNT drops to 0. Returns false, changing nothing, when the PTEs
 * found in `mms` are not all the area's MAPCOUNT (an address space outside `mms` maps it).
 * Context: vmap_area_lock and the mmap_locks of `mms` held.
 */
function orphanAreaLocked(mem: PhysMem, slot: number, mms: readonly number[]): boolean {
  const { i32 } = mem;
  const owner = ownerTag(FrameKind.VMALLOC, slot);
  const mapped: number[] = [];
  for (const mm of mms) {
    forEachPteLocked(mem, mmGet(mem, mm, Mm.PGD), (_upage, pte) => {
      const pfn = ptePfn(pte);
      if (Atomics.load(i32, mem.frameTable + pfn * FRAME_WORDS + Frame.OWNER) === owner)
        mapped.push(pfn);
    });
  }
  if (mapped.length !== Atomics.load(i32, areaWord(mem, slot, Area.MAPCOUNT))) return false;
  for (const pfn of mapped) getFrame(mem, pfn);
  const start = areaGet(mem, slot, Area.START);
  for (let i = 0; i < areaGet(mem, slot, Area.NR_PAGES); i++) {
    const pfn = ptePfn(Atomics.load(i32, mem.kernelPageTable + start + i));
    Atomics.store(i32, mem.frameTable + pfn * FRAME_WORDS + Frame.OWNER, FrameKind.ORPHAN);
  }
  Atomics.store(i32, areaWord(mem, slot, Area.MAPCOUNT), 0);
  return true;
}

/**
 * Unlink the area in `slot` (or count a bad free for -1), release vmap_area_lock, then drop the
 * area's own reference on each frame. Context: vmap_area_lock held; released on return.
 */
function freeAreaLocked(mem: PhysMem, slot: number, page: number): void {
  const { i32 } = mem;
  if (slot < 0) {
    spinUnlock(mem, Hdr.VMAP_LOCK);
    Atomics.add(i32, Hdr.BAD_FREES, 1);
    return;
  }
  // NR_PAGES = 0 first: the commit point. A recovery completes a vfree that got this far.
  const nrPages = areaGet(mem, slot, Area.NR_PAGES);
  areaSet(mem, slot, Area.NR_PAGES, 0);
  const prev = areaGet(mem, slot, Area.PREV);
  // a hole opens at or below the search cache: searches resume before it (`__free_vmap_area`)
  const cache = i32[Hdr.FREE_CACHE]!;
  if (cache !== 0 && page <= areaGet(mem, cache - 1, Area.START)) i32[Hdr.FREE_CACHE] = prev;
  const next = areaGet(mem, slot, Area.NEXT);
  if (prev === 0) Atomics.store(i32, Hdr.AREA_HEAD, next);
  else areaSet(mem, prev - 1, Area.NEXT, next);
  if (next !== 0) areaSet(mem, next - 1, Area.PREV, prev);
  const pfns = new Int32Array(nrPages);
  for (let i = 0; i < nrPages; i++) {
    pfns[i] = ptePfn(Atomics.exchange(i32, mem.kernelPageTable + page + i, 0));
  }
  i32.fill(0, mem.areaMap + page, mem.areaMap + page + nrPages + 1);
  areaSet(mem, slot, Area.PREV, 0);
  areaSet(mem, slot, Area.NEXT, Atomics.load(i32, Hdr.AREA_FREE_HEAD));
  Atomics.store(i32, Hdr.AREA_FREE_HEAD, slot + 1);
  Atomics.sub(i32, Hdr.NR_AREAS, 1);
  Atomics.sub(i32, Hdr.VMALLOC_USED_PAGES, nrPages);
  spinUnlock(mem, Hdr.VMAP_LOCK);
  for (const pfn of pfns) putFrame(mem, pfn);
}

/** The {@link VmArea} of a slot. Context: vmap_area_lock held. */
export function vmAreaLocked(mem: PhysMem, slot: number): VmArea {
  const nrPages = areaGet(mem, slot, Area.NR_PAGES);
  return {
    addr: VMALLOC_START + areaGet(mem, slot, Area.START) * PAGE_SIZE,
    size: (nrPages + 1) * PAGE_SIZE,
    nrPages,
    flags: areaGet(mem, slot, Area.FLAGS),
  };
}

/** The live area containing `kaddr`, guard page included (`find_vm_area`). Context: any thread. */
export function findVmArea(mem: PhysMem, kaddr: unknown): VmArea | null {
  const page = vmallocPageIndex(mem, kaddr);
  if (page < 0) return null;
  return inKernel(mem, () => {
    spinLock(mem, Hdr.VMAP_LOCK);
    const slot = areaOfPageLocked(mem, page);
    const area = slot < 0 ? null : vmAreaLocked(mem, slot);
    spinUnlock(mem, Hdr.VMAP_LOCK);
    return area;
  });
}

/** Every live area, by address. Context: any thread; takes vmap_area_lock. */
export function vmallocAreas(mem: PhysMem): (VmArea & { readonly caller: AreaCaller })[] {
  return inKernel(mem, () => vmallocAreasIn(mem));
}

function vmallocAreasIn(mem: PhysMem): (VmArea & { readonly caller: AreaCaller })[] {
  const out: (VmArea & { readonly caller: AreaCaller })[] = [];
  spinLock(mem, Hdr.VMAP_LOCK);
  for (let cur = Atomics.load(mem.i32, Hdr.AREA_HEAD); cur !== 0;) {
    out.push({ ...vmAreaLocked(mem, cur - 1), caller: areaGet(mem, cur - 1, Area.CALLER) });
    cur = areaGet(mem, cur - 1, Area.NEXT);
  }
  spinUnlock(mem, Hdr.VMAP_LOCK);
  return out;
}

/**
 * The frame backing the vmalloc page at `kaddr` (`vmalloc_to_pfn`), or null where nothing is
 * mapped. Context: any thread, lock-free.
 */
export function vmallocToPfn(mem: PhysMem, kaddr: unknown): number | null {
  const page = vmallocPageIndex(mem, kaddr);
  if (page < 0) return null;
  const pte = Atomics.load(mem.i32, mem.kernelPageTable + page);
  return pte === 0 ? null : ptePfn(pte);
}
