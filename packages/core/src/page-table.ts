/**
 * Page tables, changed: the kernel page table of the vmalloc range is written by vmalloc.ts; this
 * module allocates, fills, zaps, re-protects, splits and frees the two-level user page tables of
 * each address space. The format of their entries, their indexes and every walk that reads them
 * live in pgtable.ts.
 *
 * Kernel counterparts: `mm/memory.c` (`__pte_alloc`, `vm_insert_pages`, `zap_pte_range`,
 * `free_pgtables`), `mm/mprotect.c` (`change_pte_range`) and `mm/huge_memory.c`
 * (`split_huge_pmd`).
 *
 * Table frames are frames of physical memory like any other, taken from the frame allocator and
 * zeroed before they are published. **Huge entries** (x86's `_PAGE_PSE`, Linux's PMD mappings):
 * `remapPartial` installs one wherever a directory slot is wholly inside the range, still empty
 * (or holding an empty table), and the frames behind it are one aligned contiguous run (vmalloc
 * gives large areas such runs, and `mmap` aligns lengths that are multiples of 4 MiB); 64 MiB then
 * costs 16 entry writes instead of 16384. Accounting (`Mm.NR_PTES`, the areas' MAPCOUNT) counts
 * pages, not entries. An munmap or mprotect that cuts a huge entry first splits it into a page
 * table holding the same 1024 PTEs ({@link splitHugeEdgesLocked}), so zaps and protection changes
 * only ever meet huge entries that they cover whole.
 *
 * Every entry is written only under the address space's mmap_lock: directory entries with
 * `Atomics.store`, PTEs with plain stores published by the lock's release (an `Atomics` store);
 * lock-free walkers read with `Atomics.load` (pgtable.ts).
 *
 * @module
 */
import { allocFrames, ownerTag, putFrame } from './frame-alloc.js';
import {
  Area,
  AREA_WORDS,
  Frame,
  FRAME_WORDS,
  FrameKind,
  Hdr,
  OWNER_ID_SHIFT,
  OWNER_KIND_MASK,
  PTRS_PER_TABLE,
} from './layout.js';
import {
  dirOf,
  mkHugePde,
  mkPte,
  mkTablePde,
  pdeIndex,
  pdeIsHuge,
  hugePte,
  pdeSlotIndex,
  PTE_PFN_STEP,
  ptePfn,
  pteIndex,
  pteWithProt,
  slotAligned,
  slotEnd,
  slotStart,
  tableBase,
  tlbFlushBegin,
  tlbFlushEnd,
} from './pgtable.js';
import { clearFrames, type PhysMem } from './phys-mem.js';
import { txLogNewPtes } from './undo.js';
import { bug } from './bug.js';

/**
 * The directory slots `[first, end)` that a remap of `[start, start + nrPages)` may fill with huge
 * entries: slots wholly inside the range, when the frames are one contiguous run (`firstPfn` ≥ 0)
 * whose pfns line up with the user pages modulo 1024. An empty range otherwise. (Only the slots
 * whose entry is still empty get one; a slot that already has a page table keeps it.)
 */
export function hugeSlots(start: number, nrPages: number, firstPfn: number): [number, number] {
  if (firstPfn < 0 || !slotAligned(firstPfn - start)) return [0, 0];
  const first = dirOf(start + PTRS_PER_TABLE - 1);
  const end = dirOf(start + nrPages);
  return first < end ? [first, end] : [0, 0];
}

/** True if any page of `[start, end)` has a PTE. Context: the mm's mmap_lock held. */
export function anyPteLocked(mem: PhysMem, pgdPfn: number, start: number, end: number): boolean {
  const { i32 } = mem;
  for (let upage = start; upage < end;) {
    const tableEnd = Math.min(end, slotEnd(upage));
    const pde = i32[pdeIndex(pgdPfn, upage)]!; // this thread is the only writer (mmap_lock)
    if (pdeIsHuge(pde)) return true;
    if (pde !== 0) {
      const at = pteIndex(pde, upage); // the slot's PTEs from upage on are consecutive words
      for (let k = at, stop = at + (tableEnd - upage); k < stop; k++) if (i32[k] !== 0) return true;
    }
    upage = tableEnd;
  }
  return false;
}

/**
 * Make sure page tables exist for every page of `[start, end)` (`__pte_alloc`), except in the
 * empty directory slots of `huge` (from {@link hugeSlots}), which will take huge entries. Returns
 * the number of tables made, or -1, having installed nothing, when the frames cannot be had.
 * Context: the mm's mmap_lock held; lock-free frame allocation.
 */
export function allocTablesLocked(
  mem: PhysMem,
  mmSlot: number,
  pgdPfn: number,
  start: number,
  end: number,
  huge: readonly [number, number] = [0, 0],
): number {
  const { i32 } = mem;
  const missing: number[] = [];
  for (let dir = dirOf(start); dir <= dirOf(end - 1); dir++) {
    if (dir >= huge[0] && dir < huge[1]) continue;
    if (Atomics.load(i32, pdeSlotIndex(pgdPfn, dir)) === 0) missing.push(dir);
  }
  if (missing.length === 0) return 0;
  const pfns = new Int32Array(missing.length);
  if (!allocFrames(mem, missing.length, ownerTag(FrameKind.PAGE_TABLE, mmSlot), pfns)) return -1;
  for (let i = 0; i < missing.length; i++) {
    const pt = pfns[i]!;
    // zeroed before the directory entry publishes it (the store below releases these writes)
    clearFrames(mem, pt, 1);
    // an Atomics store: it orders the zeroing above before any walker that sees the entry. Not
    // logged: if the thread dies before the remap commits, the empty table stays with the mm
    Atomics.store(i32, pdeSlotIndex(pgdPfn, missing[i]!), mkTablePde(pt));
  }
  Atomics.add(i32, Hdr.PT_FRAMES, missing.length);
  return missing.length;
}

/**
 * Install PTEs mapping `[start, start + nrPages)` to the frames the kernel PTEs from
 * `kernelPage` name (`vm_insert_pages`); every PTE is empty, and the tables exist except in the
 * slots of `huge` (see {@link allocTablesLocked}), which get one huge entry each (an
 * `Atomics.store`, as every PDE), freeing the empty page table a slot may have had. Returns the
 * number of page tables freed (the caller takes them off the mm's NR_PT). The range is logged for undo as one entry, then written with
 * plain stores: the mmap_lock is held, and its release (an `Atomics` store) publishes them to
 * walkers, who read with `Atomics.load`. `firstPfn` is the frame of the first page when the pages
 * are one physically contiguous run, else -1.
 * Context: the mm's mmap_lock held; the area is pinned (its MAPCOUNT covers these pages).
 */
export function installPtesLocked(
  mem: PhysMem,
  mmSlot: number,
  pgdPfn: number,
  start: number,
  kernelPage: number,
  nrPages: number,
  prot: number,
  firstPfn: number,
  huge: readonly [number, number] = [0, 0],
): number {
  const { i32 } = mem;
  const kpt = mem.kernelPageTable + kernelPage;
  txLogNewPtes(mem, mmSlot, start, nrPages); // every PTE of the range was empty
  let freed = 0;
  let flushing = false;
  try {
    for (let i = 0; i < nrPages;) {
      const upage = start + i;
      const dir = dirOf(upage);
      const pde = i32[pdeIndex(pgdPfn, upage)]!; // mmap_lock held
      if (dir >= huge[0] && dir < huge[1]) {
        // a whole aligned 4 MiB slot of one contiguous run: one huge entry for its 1024 pages.
        // A page table already there is empty (no PTE in the range, which holds the whole slot):
        // the entry replaces it and its frame is freed. A lock-free walker may be reading that
        // table: the TLB generation is odd from before the swap until after the frame is gone,
        // and every walker outside a read section validates against it
        if (pde !== 0 && !flushing) {
          tlbFlushBegin(mem, mmSlot);
          flushing = true;
        }
        Atomics.store(i32, pdeIndex(pgdPfn, upage), mkHugePde(firstPfn + i, prot));
        if (pde !== 0) {
          putFrame(mem, ptePfn(pde));
          freed++;
        }
        i += PTRS_PER_TABLE;
        continue;
      }
      const at = pteIndex(pde, upage);
      const n = Math.min(nrPages - i, slotEnd(upage) - upage);
      if (firstPfn >= 0) {
        // one contiguous run: the PTEs are consecutive values, no kernel PTE to read
        const step = PTE_PFN_STEP;
        let pte = mkPte(firstPfn + i, prot);
        for (let k = at, stop = at + n; k < stop; k++, pte += step) i32[k] = pte;
      } else {
        // kernel PTEs of a pinned area have no writer until its vfree, which waits for this mmap_lock
        for (let k = 0; k < n; k++) i32[at + k] = pteWithProt(i32[kpt + i + k]!, prot);
      }
      i += n;
    }
  } finally {
    if (flushing) tlbFlushEnd(mem, mmSlot);
  }
  if (freed > 0) Atomics.sub(i32, Hdr.PT_FRAMES, freed);
  return freed;
}

/** Index of an area's MAPCOUNT word. */
function mapcountIndex(mem: PhysMem, areaSlot: number): number {
  return mem.areaTable + areaSlot * AREA_WORDS + Area.MAPCOUNT;
}

/**
 * Callers meet a huge entry only for a range that holds its whole slot (munmap and mprotect split
 * the entries their edges cut first); anything else is a kernel bug.
 */
function assertWholeSlot(
  fn: string,
  start: number,
  end: number,
  upage: number,
  stop: number,
): void {
  if (!slotAligned(upage) || stop - upage !== PTRS_PER_TABLE)
    bug(`${fn}: [${start}, ${end}) cuts the huge entry of page ${upage}`);
}

/** What a zap carries from one PTE to the next: the area whose pages it is counting off. */
interface ZapState {
  /** Area slot of the pages counted in `count`, or -1. */
  area: number;
  /** Pages of `area` cleared and not yet taken off its MAPCOUNT. */
  count: number;
  /** `area`'s frames `[runFirst, runEnd)`, if they are one contiguous run (else empty). */
  runFirst: number;
  runEnd: number;
}

/**
 * Drop what one cleared PTE outside the current run held: a page of a live area is counted for its
 * area (switching areas flushes the count), an orphan page loses its reference.
 */
function dropPte(mem: PhysMem, z: ZapState, pfn: number): void {
  const { i32 } = mem;
  // a mapped frame's owner changes only when vfree orphans its area, with every mmap_lock held
  const owner = i32[mem.frameTable + pfn * FRAME_WORDS + Frame.OWNER]!;
  if ((owner & OWNER_KIND_MASK) !== FrameKind.VMALLOC) {
    putFrame(mem, pfn);
    return;
  }
  const slot = owner >>> OWNER_ID_SHIFT;
  if (slot !== z.area) {
    if (z.count > 0) Atomics.sub(i32, mapcountIndex(mem, z.area), z.count);
    z.area = slot;
    z.count = 0;
    // a pinned area's record is stable: its vfree waits for this mmap_lock
    const areaBase = mem.areaTable + slot * AREA_WORDS;
    const first = i32[areaBase + Area.CONTIG]! - 1;
    z.runFirst = first < 0 ? 0 : first;
    z.runEnd = first < 0 ? 0 : first + i32[areaBase + Area.NR_PAGES]!;
  }
  z.count++;
}

/**
 * Clear every PTE in `[start, end)` (`zap_pte_range`, and `zap_huge_pmd` for a huge entry, which
 * the range must cover whole) and drop what each held: a page of a live area comes off its area's
 * MAPCOUNT (once per run of pages of one area), an orphan page (its area was freed) loses one
 * reference. Returns the number of pages cleared.
 * Context: the mm's mmap_lock held.
 */
export function zapPtesLocked(mem: PhysMem, pgdPfn: number, start: number, end: number): number {
  const { i32 } = mem;
  let cleared = 0;
  // a PTE inside the current area's contiguous run needs no frame-table lookup
  const z: ZapState = { area: -1, count: 0, runFirst: 0, runEnd: 0 };
  for (let upage = start; upage < end;) {
    const tableEnd = Math.min(end, slotEnd(upage));
    const pdeAt = pdeIndex(pgdPfn, upage);
    const pde = Atomics.load(i32, pdeAt);
    if (pdeIsHuge(pde)) {
      assertWholeSlot('zapPtesLocked', start, end, upage, tableEnd);
      Atomics.store(i32, pdeAt, 0);
      cleared += PTRS_PER_TABLE;
      // pages inside the current area's run are counted a stretch at a time
      const endPfn = ptePfn(pde) + PTRS_PER_TABLE;
      for (let pfn = ptePfn(pde); pfn < endPfn;) {
        const runEnd = z.runEnd;
        if (pfn >= z.runFirst && pfn < runEnd) {
          const stop = Math.min(endPfn, runEnd);
          z.count += stop - pfn;
          pfn = stop;
        } else {
          dropPte(mem, z, pfn);
          pfn++;
        }
      }
    } else if (pde !== 0) {
      const last = pteIndex(pde, tableEnd - 1);
      for (let index = pteIndex(pde, upage); index <= last; index++) {
        const pte = i32[index]!; // this thread is the only writer (mmap_lock)
        if (pte === 0) continue;
        i32[index] = 0;
        cleared++;
        const pfn = ptePfn(pte);
        if (pfn >= z.runFirst && pfn < z.runEnd) z.count++;
        else dropPte(mem, z, pfn);
      }
    }
    upage = tableEnd;
  }
  if (z.count > 0) Atomics.sub(i32, mapcountIndex(mem, z.area), z.count);
  return cleared;
}

/**
 * Rewrite what the PTEs of `[start, end)` grant (`change_pte_range`, and `change_huge_pmd` for a
 * huge entry, which the range must cover whole); the frames stay.
 * Context: the mm's mmap_lock held.
 */
export function changeProtLocked(
  mem: PhysMem,
  pgdPfn: number,
  start: number,
  end: number,
  prot: number,
): void {
  const { i32 } = mem;
  for (let upage = start; upage < end;) {
    const tableEnd = Math.min(end, slotEnd(upage));
    const pde = Atomics.load(i32, pdeIndex(pgdPfn, upage));
    if (pdeIsHuge(pde)) {
      assertWholeSlot('changeProtLocked', start, end, upage, tableEnd);
      Atomics.store(i32, pdeIndex(pgdPfn, upage), pteWithProt(pde, prot));
    } else if (pde !== 0) {
      for (let p = upage; p < tableEnd; p++) {
        const at = pteIndex(pde, p);
        const pte = i32[at]!; // the only writer holds the mmap_lock
        if (pte !== 0) i32[at] = pteWithProt(pte, prot);
      }
    }
    upage = tableEnd;
  }
}

/**
 * Free every page table of a directory — `nrTables` of them, the mm's `NR_PT` — and the directory
 * itself (`free_pgtables` + `pgd_free`). Every PTE must already be zapped. Returns the number of frames freed.
 * Context: the mm's mmap_lock held, the mm already unreachable (its generation bumped).
 */
export function freeTablesLocked(mem: PhysMem, pgdPfn: number, nrTables: number): number {
  const { i32 } = mem;
  let freed = 0;
  // the scan stops once the mm's NR_PT tables are found (none at all: no scan)
  for (let dir = 0; dir < PTRS_PER_TABLE && freed < nrTables; dir++) {
    const index = pdeSlotIndex(pgdPfn, dir);
    const pde = i32[index]!; // this thread is the only writer (mmap_lock)
    if (pde === 0) continue;
    Atomics.store(i32, index, 0);
    if (pdeIsHuge(pde)) continue; // not a table (and zapped already: never met here)
    putFrame(mem, ptePfn(pde));
    freed++;
  }
  putFrame(mem, pgdPfn);
  Atomics.sub(i32, Hdr.PT_FRAMES, freed + 1);
  return freed + 1;
}

/**
 * Split the huge entries that `[start, end)` cuts — at most two, the slots of its first and last
 * page when those are not slot-aligned — into page tables holding the same 1024 PTEs each
 * (`split_huge_pmd`), so that a zap or protection change of the range meets only huge entries
 * it covers whole. Translations do not change (a walker sees the same PTE before and after), so
 * no TLB generation moves. All or nothing: returns the number of tables made, or -1, having
 * split nothing, when the frames cannot be had.
 * Context: the mm's mmap_lock held; lock-free frame allocation.
 */
export function splitHugeEdgesLocked(
  mem: PhysMem,
  mmSlot: number,
  pgdPfn: number,
  start: number,
  end: number,
): number {
  const { i32 } = mem;
  const dirs: number[] = [];
  const cut = (page: number): void => {
    const dir = dirOf(page);
    if (slotAligned(page) || dir >= PTRS_PER_TABLE || dirs.includes(dir)) return;
    if (pdeIsHuge(i32[pdeSlotIndex(pgdPfn, dir)]!)) dirs.push(dir); // mmap_lock held
  };
  cut(start);
  cut(end);
  if (dirs.length === 0) return 0;
  const pfns = new Int32Array(dirs.length);
  if (!allocFrames(mem, dirs.length, ownerTag(FrameKind.PAGE_TABLE, mmSlot), pfns)) return -1;
  for (let i = 0; i < dirs.length; i++) {
    const index = pdeSlotIndex(pgdPfn, dirs[i]!);
    const pde = i32[index]!;
    const base = tableBase(pfns[i]!);
    const first = slotStart(dirs[i]!);
    // plain stores into a frame no walker can reach yet; the Atomics.store below publishes them
    for (let k = 0; k < PTRS_PER_TABLE; k++) i32[base + k] = hugePte(pde, first + k);
    Atomics.store(i32, index, mkTablePde(pfns[i]!));
  }
  Atomics.add(i32, Hdr.PT_FRAMES, dirs.length);
  return dirs.length;
}
