/**
 * Page tables: the PTE format, the kernel page table of the vmalloc range, and the two-level user
 * page tables of each address space.
 *
 * Kernel counterparts: `arch/x86/include/asm/pgtable.h` (`mk_pte`, `pte_present`, `pte_pfn`),
 * `mm/memory.c` (`__pte_alloc`, `zap_pte_range`, `free_pgtables`) and `mm/mprotect.c`
 * (`change_pte_range`).
 *
 * A user address space is 4 GiB of pages: the **page directory** (one frame, 1024 entries) points
 * to **page tables** (one frame each, 1024 PTEs, 4 MiB of user space). Table frames are frames of
 * physical memory like any other, taken from the frame allocator and zeroed before they are
 * published.
 *
 * ```
 *   PTE / PDE word (Int32)
 *   ┌──────────────────────────────┬───┬───┬───┬───┐
 *   │ pfn (27 bits)                │ H │ W │ R │ P │
 *   └──────────────────────────────┴───┴───┴───┴───┘
 *    31                           4   3   2   1   0
 * ```
 *
 * **Huge entries** (x86's `_PAGE_PSE`, Linux's PMD mappings): a directory entry with H set maps its
 * whole 4 MiB slot directly — 1024 physically contiguous frames starting at its pfn, which is a
 * multiple of 1024 — with no page table. `remapPartial` installs one wherever a directory slot is
 * wholly inside the range, still empty, and the frames behind it are one aligned contiguous run
 * (vmalloc gives large areas such runs, and `mmap` aligns lengths that are multiples of 4 MiB);
 * 64 MiB then costs 16 entry writes instead of 16384. Every walker reads a huge entry as the 1024
 * PTEs it stands for ({@link walkPte}, {@link forEachPteLocked}), so translation, accounting
 * (`Mm.NR_PTES` and the areas' MAPCOUNT count pages, not entries) and recovery see pages either
 * way. An munmap or mprotect that cuts a huge entry first splits it into a page table holding the
 * same 1024 PTEs ({@link splitHugeEdgesLocked}, Linux's `split_huge_pmd`), so zaps and
 * protection changes only ever meet huge entries that they cover whole.
 *
 * Every PTE and PDE is written only under the address space's mmap_lock (PDEs with `Atomics.store`,
 * PTEs with plain stores published by the lock's release, an `Atomics` store) and read lock-free
 * only through `Atomics.load`; an aligned Int32 store never tears, so a concurrent walker sees an
 * entry either absent (0) or complete. A PTE with P set and R, W clear is a `PROT_NONE` PTE: it keeps its frame but grants
 * nothing.
 *
 * @module
 */
import { PROT_READ, PROT_WRITE } from './errno.js';
import { allocFrames, ownerTag, putFrame } from './frame-alloc.js';
import {
  Area,
  AREA_WORDS,
  Frame,
  FRAME_WORDS,
  FrameKind,
  Hdr,
  Mm,
  MM_WORDS,
  OWNER_ID_SHIFT,
  OWNER_KIND_MASK,
  PTRS_PER_TABLE,
} from './layout.js';
import { clearFrames, type PhysMem } from './phys-mem.js';
import { registerPteUndo, txLogNewPtes } from './thread.js';
import { bug } from './bug.js';

/** PTE bit: the entry is present. */
export const PTE_PRESENT = 0x1;
/** PTE bit: reads allowed. */
export const PTE_READ = 0x2;
/** PTE bit: writes allowed. */
export const PTE_WRITE = 0x4;
/** PDE bit: a huge entry, mapping its 4 MiB directory slot directly (x86 `_PAGE_PSE`). */
export const PDE_HUGE = 0x8;
/** The permission and presence bits of a PTE. */
const PTE_BITS = 0xf;
/** Shift of the pfn in a PTE. */
export const PTE_PFN_SHIFT = 4;
/** log2 of {@link PTRS_PER_TABLE}. */
export const TABLE_SHIFT = 10;
const TABLE_MASK = PTRS_PER_TABLE - 1;

/** The PTE for `pfn` granting `prot` (`mk_pte`). `PROT_WRITE` implies read, as on x86. */
export function mkPte(pfn: number, prot: number): number {
  let bits = PTE_PRESENT;
  if (prot & PROT_WRITE) bits |= PTE_READ | PTE_WRITE;
  else if (prot & PROT_READ) bits |= PTE_READ;
  return (pfn << PTE_PFN_SHIFT) | bits;
}

/** The frame a present PTE points to (`pte_pfn`). */
export function ptePfn(pte: number): number {
  return pte >>> PTE_PFN_SHIFT;
}

/** The `PROT_*` a present PTE grants (`PROT_READ | PROT_WRITE` for a writable one). */
export function ptePprot(pte: number): number {
  if (pte & PTE_WRITE) return PROT_READ | PROT_WRITE;
  return pte & PTE_READ ? PROT_READ : 0;
}

/** Int32 index of the entry for user page `upage` in the page table at `ptPfn`. */
function pteIndex(ptPfn: number, upage: number): number {
  return ptPfn * PTRS_PER_TABLE + (upage & TABLE_MASK);
}

/** Int32 index of the directory entry for user page `upage`. */
function pdeIndex(pgdPfn: number, upage: number): number {
  return pgdPfn * PTRS_PER_TABLE + (upage >>> TABLE_SHIFT);
}

/** Pages one huge directory entry maps (4 MiB). */
export const HPAGE_PAGES: number = PTRS_PER_TABLE;

/**
 * The PTE that huge directory entry `pde` stands for at user page `upage` of its slot: the same
 * permission bits, the pfn advanced by the page's place in the slot.
 */
export function hugePte(pde: number, upage: number): number {
  return (pde & ~PDE_HUGE) | ((upage & TABLE_MASK) << PTE_PFN_SHIFT);
}

/**
 * The PTE of user page `upage`, or 0 (`follow_pte`; a huge entry answers for each of its pages).
 * Context: any thread, lock-free; the caller validates the address space's generation around the
 * walk.
 */
export function walkPte(i32: Int32Array, pgdPfn: number, upage: number): number {
  const pde = Atomics.load(i32, pdeIndex(pgdPfn, upage));
  if (pde === 0) return 0;
  if (pde & PDE_HUGE) return hugePte(pde, upage);
  return Atomics.load(i32, pteIndex(ptePfn(pde), upage));
}

/**
 * The directory slots `[first, end)` that a remap of `[start, start + nrPages)` may fill with huge
 * entries: slots wholly inside the range, when the frames are one contiguous run (`firstPfn` ≥ 0)
 * whose pfns line up with the user pages modulo 1024. An empty range otherwise. (Only the slots
 * whose entry is still empty get one; a slot that already has a page table keeps it.)
 */
export function hugeSlots(start: number, nrPages: number, firstPfn: number): [number, number] {
  if (firstPfn < 0 || ((firstPfn - start) & TABLE_MASK) !== 0) return [0, 0];
  const first = (start + TABLE_MASK) >>> TABLE_SHIFT;
  const end = (start + nrPages) >>> TABLE_SHIFT;
  return first < end ? [first, end] : [0, 0];
}

/** True if any page of `[start, end)` has a PTE. Context: the mm's mmap_lock held. */
export function anyPteLocked(mem: PhysMem, pgdPfn: number, start: number, end: number): boolean {
  const { i32 } = mem;
  for (let upage = start; upage < end;) {
    const tableEnd = Math.min(end, ((upage >>> TABLE_SHIFT) + 1) << TABLE_SHIFT);
    const pde = i32[pdeIndex(pgdPfn, upage)]!; // this thread is the only writer (mmap_lock)
    if (pde & PDE_HUGE) return true;
    if (pde !== 0) {
      const base = ptePfn(pde) * PTRS_PER_TABLE;
      for (let p = upage; p < tableEnd; p++) {
        if (i32[base + (p & TABLE_MASK)] !== 0) return true;
      }
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
  for (let dir = start >>> TABLE_SHIFT; dir <= (end - 1) >>> TABLE_SHIFT; dir++) {
    if (dir >= huge[0] && dir < huge[1]) continue;
    if (Atomics.load(i32, pgdPfn * PTRS_PER_TABLE + dir) === 0) missing.push(dir);
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
    Atomics.store(i32, pgdPfn * PTRS_PER_TABLE + missing[i]!, (pt << PTE_PFN_SHIFT) | PTE_PRESENT);
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
  const bits = mkPte(0, prot);
  txLogNewPtes(mem, mmSlot, start, nrPages); // every PTE of the range was empty
  let freed = 0;
  let flushing = false;
  try {
    for (let i = 0; i < nrPages;) {
      const upage = start + i;
      const dir = upage >>> TABLE_SHIFT;
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
        Atomics.store(i32, pdeIndex(pgdPfn, upage), mkPte(firstPfn + i, prot) | PDE_HUGE);
        if (pde !== 0) {
          putFrame(mem, ptePfn(pde));
          freed++;
        }
        i += PTRS_PER_TABLE;
        continue;
      }
      const base = ptePfn(pde) * PTRS_PER_TABLE;
      const first = upage & TABLE_MASK;
      const n = Math.min(nrPages - i, PTRS_PER_TABLE - first);
      if (firstPfn >= 0) {
        // one contiguous run: the PTEs are consecutive values, no kernel PTE to read
        let pte = mkPte(firstPfn + i, prot);
        for (
          let k = base + first, stop = base + first + n;
          k < stop;
          k++, pte += 1 << PTE_PFN_SHIFT
        )
          i32[k] = pte;
      } else {
        // kernel PTEs of a pinned area have no writer until its vfree, which waits for this mmap_lock
        for (let k = 0; k < n; k++) {
          i32[base + first + k] = (i32[kpt + i + k]! & ~PTE_BITS) | bits;
        }
      }
      i += n;
    }
  } finally {
    if (flushing) tlbFlushEnd(mem, mmSlot);
  }
  if (freed > 0) Atomics.sub(i32, Hdr.PT_FRAMES, freed);
  return freed;
}

/**
 * Begin taking pages or permissions away from an mm (`inc_mm_tlb_gen`): its TLB generation turns
 * odd, so translation caches stop trusting their entries before any frame is released.
 * Context: the mm's mmap_lock held.
 */
export function tlbFlushBegin(mem: PhysMem, mmSlot: number): void {
  Atomics.add(mem.i32, mem.mmTable + mmSlot * MM_WORDS + Mm.TLB_GEN, 1);
}

/** End a {@link tlbFlushBegin}: the TLB generation is even again. Context: as tlbFlushBegin. */
export function tlbFlushEnd(mem: PhysMem, mmSlot: number): void {
  Atomics.add(mem.i32, mem.mmTable + mmSlot * MM_WORDS + Mm.TLB_GEN, 1);
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
  if ((upage & TABLE_MASK) !== 0 || stop - upage !== PTRS_PER_TABLE)
    bug(`${fn}: [${start}, ${end}) cuts the huge entry of page ${upage}`);
}

/** What a zap carries from one PTE to the next: the area whose pages it is counting off. */
interface ZapState {
  /** Area slot of the pages counted in `count`, or -1. */
  area: number;
  /** Pages of `area` cleared and not yet taken off its MAPCOUNT. */
  count: number;
  /** `area`'s frames as a range of PTE values, if it is one contiguous run (else empty). */
  runLo: number;
  runHi: number;
}

/**
 * Drop what one cleared PTE outside the current run held: a page of a live area is counted for its
 * area (switching areas flushes the count), an orphan page loses its reference.
 */
function dropPte(mem: PhysMem, z: ZapState, pte: number): void {
  const { i32 } = mem;
  const pfn = ptePfn(pte);
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
    // products, not shifts: a run that ends at the last frame of the largest memory ends at 2^31
    z.runLo = first < 0 ? 0 : first * 2 ** PTE_PFN_SHIFT;
    z.runHi = first < 0 ? 0 : (first + i32[areaBase + Area.NR_PAGES]!) * 2 ** PTE_PFN_SHIFT;
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
  // (PTE = pfn << PTE_PFN_SHIFT | bits, bits < 1 << PTE_PFN_SHIFT)
  const z: ZapState = { area: -1, count: 0, runLo: 0, runHi: 0 };
  for (let upage = start; upage < end;) {
    const tableEnd = Math.min(end, ((upage >>> TABLE_SHIFT) + 1) << TABLE_SHIFT);
    const pdeAt = pdeIndex(pgdPfn, upage);
    const pde = Atomics.load(i32, pdeAt);
    if (pde & PDE_HUGE) {
      assertWholeSlot('zapPtesLocked', start, end, upage, tableEnd);
      Atomics.store(i32, pdeAt, 0);
      cleared += PTRS_PER_TABLE;
      // pages inside the current area's run are counted a stretch at a time
      const bits = pde & PTE_BITS & ~PDE_HUGE;
      const endPfn = ptePfn(pde) + PTRS_PER_TABLE;
      for (let pfn = ptePfn(pde); pfn < endPfn;) {
        const runEnd = z.runHi >>> PTE_PFN_SHIFT;
        if (pfn >= z.runLo >>> PTE_PFN_SHIFT && pfn < runEnd) {
          const stop = Math.min(endPfn, runEnd);
          z.count += stop - pfn;
          pfn = stop;
        } else {
          dropPte(mem, z, (pfn << PTE_PFN_SHIFT) | bits);
          pfn++;
        }
      }
    } else if (pde !== 0) {
      const base = ptePfn(pde) * PTRS_PER_TABLE;
      const last = base + ((tableEnd - 1) & TABLE_MASK);
      for (let index = base + (upage & TABLE_MASK); index <= last; index++) {
        const pte = i32[index]!; // this thread is the only writer (mmap_lock)
        if (pte === 0) continue;
        i32[index] = 0;
        cleared++;
        if (pte >= z.runLo && pte < z.runHi) z.count++;
        else dropPte(mem, z, pte);
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
    const tableEnd = Math.min(end, ((upage >>> TABLE_SHIFT) + 1) << TABLE_SHIFT);
    const pde = Atomics.load(i32, pdeIndex(pgdPfn, upage));
    if (pde & PDE_HUGE) {
      assertWholeSlot('changeProtLocked', start, end, upage, tableEnd);
      Atomics.store(i32, pdeIndex(pgdPfn, upage), mkPte(ptePfn(pde), prot) | PDE_HUGE);
    } else if (pde !== 0) {
      const base = ptePfn(pde) * PTRS_PER_TABLE;
      for (let p = upage; p < tableEnd; p++) {
        const pte = i32[base + (p & TABLE_MASK)]!; // the only writer holds the mmap_lock
        if (pte !== 0) i32[base + (p & TABLE_MASK)] = mkPte(ptePfn(pte), prot);
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
    const index = pgdPfn * PTRS_PER_TABLE + dir;
    const pde = i32[index]!; // this thread is the only writer (mmap_lock)
    if (pde === 0) continue;
    Atomics.store(i32, index, 0);
    if (pde & PDE_HUGE) continue; // not a table (and zapped already: never met here)
    putFrame(mem, ptePfn(pde));
    freed++;
  }
  putFrame(mem, pgdPfn);
  Atomics.sub(i32, Hdr.PT_FRAMES, freed + 1);
  return freed + 1;
}

/**
 * Visit every present PTE of a directory, in address order (a huge entry as the 1024 PTEs it stands
 * for). Context: the mm's mmap_lock held.
 */
export function forEachPteLocked(
  mem: PhysMem,
  pgdPfn: number,
  visit: (upage: number, pte: number) => void,
): void {
  const { i32 } = mem;
  for (let dir = 0; dir < PTRS_PER_TABLE; dir++) {
    const pde = Atomics.load(i32, pgdPfn * PTRS_PER_TABLE + dir);
    if (pde === 0) continue;
    if (pde & PDE_HUGE) {
      for (let k = 0; k < PTRS_PER_TABLE; k++) {
        const upage = (dir << TABLE_SHIFT) | k;
        visit(upage, hugePte(pde, upage));
      }
      continue;
    }
    const base = ptePfn(pde) * PTRS_PER_TABLE;
    for (let k = 0; k < PTRS_PER_TABLE; k++) {
      const pte = Atomics.load(i32, base + k);
      if (pte !== 0) visit((dir << TABLE_SHIFT) | k, pte);
    }
  }
}

/** The page-table frames a directory points to. Context: the mm's mmap_lock held. */
export function tableFramesLocked(mem: PhysMem, pgdPfn: number): number[] {
  const out: number[] = [];
  for (let dir = 0; dir < PTRS_PER_TABLE; dir++) {
    const pde = Atomics.load(mem.i32, pgdPfn * PTRS_PER_TABLE + dir);
    if (pde !== 0 && (pde & PDE_HUGE) === 0) out.push(ptePfn(pde));
  }
  return out;
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
    if ((page & TABLE_MASK) === 0 || page >>> TABLE_SHIFT >= PTRS_PER_TABLE) return;
    const dir = page >>> TABLE_SHIFT;
    if (dirs.includes(dir)) return;
    if (i32[pgdPfn * PTRS_PER_TABLE + dir]! & PDE_HUGE) dirs.push(dir); // mmap_lock held
  };
  cut(start);
  cut(end);
  if (dirs.length === 0) return 0;
  const pfns = new Int32Array(dirs.length);
  if (!allocFrames(mem, dirs.length, ownerTag(FrameKind.PAGE_TABLE, mmSlot), pfns)) return -1;
  for (let i = 0; i < dirs.length; i++) {
    const index = pgdPfn * PTRS_PER_TABLE + dirs[i]!;
    const lo = i32[index]! & ~PDE_HUGE;
    const base = pfns[i]! * PTRS_PER_TABLE;
    // plain stores into a frame no walker can reach yet; the Atomics.store below publishes them
    for (let k = 0; k < PTRS_PER_TABLE; k++) i32[base + k] = lo + (k << PTE_PFN_SHIFT);
    Atomics.store(i32, index, (pfns[i]! << PTE_PFN_SHIFT) | PTE_PRESENT);
  }
  Atomics.add(i32, Hdr.PT_FRAMES, dirs.length);
  return dirs.length;
}

/**
 * Clear the PTEs of `[upage, upage + count)` in mm `mmSlot` without touching references: undoing
 * a remap that never committed (the area's pin is recounted by whoever undoes it).
 * Context: the undoing thread holds the mm's mmap_lock, or recovery runs with the world stopped.
 */
function clearNewPtes(mem: PhysMem, mmSlot: number, upage: number, count: number): void {
  const { i32 } = mem;
  const pgdPfn = i32[mem.mmTable + mmSlot * MM_WORDS + Mm.PGD]!;
  // a lock-free walker may have cached a translation of these PTEs: they are being taken away
  tlbFlushBegin(mem, mmSlot);
  try {
    clearRange(i32, pgdPfn, upage, count);
  } finally {
    tlbFlushEnd(mem, mmSlot);
  }
}

/** The loop of {@link clearNewPtes}. */
function clearRange(i32: Int32Array, pgdPfn: number, upage: number, count: number): void {
  for (let p = upage; p < upage + count; p++) {
    const pde = Atomics.load(i32, pdeIndex(pgdPfn, p));
    if (pde & PDE_HUGE) {
      // a huge entry of the remap covers its whole slot, inside the logged range
      Atomics.store(i32, pdeIndex(pgdPfn, p), 0);
      p |= TABLE_MASK;
    } else if (pde !== 0) Atomics.store(i32, pteIndex(ptePfn(pde), p), 0);
  }
}
registerPteUndo(clearNewPtes);
