/**
 * The page-table format, and every walk that reads page tables: the one home of the PTE and PDE
 * words, their indexes, the huge-aware range walker and the validated (seqcount) walk.
 *
 * Kernel counterparts: `arch/x86/include/asm/pgtable.h` and `pgtable_types.h` (`mk_pte`,
 * `pte_pfn`, `pmd_large`, `pte_index`, `pmd_index`), `mm/pagewalk.c` (`walk_page_range`), the
 * lockless walk of `get_user_pages_fast` in `mm/gup.c`, and `inc_mm_tlb_gen` in
 * `arch/x86/mm/tlb.c`. The tables are *changed* in page-table.ts (under the mmap_lock); this module
 * only builds entries and reads them.
 *
 * A user address space is one page directory (one frame, {@link PTRS_PER_TABLE} entries); each
 * directory entry maps a 4 MiB slot, through a page table (one frame of PTEs) or as one huge entry.
 *
 * ```
 *   PTE / PDE word (Int32)
 *   ┌──────────────────────────────┬───┬───┬───┬───┐
 *   │ pfn (27 bits)                │ H │ W │ R │ P │
 *   └──────────────────────────────┴───┴───┴───┴───┘
 *    31                           4   3   2   1   0
 * ```
 *
 * P present; R, W the permissions (a PTE with P and neither is a `PROT_NONE` PTE: it keeps its
 * frame and grants nothing); H, in a directory entry only, a huge entry (x86's `_PAGE_PSE`): the
 * slot's 1024 pages are the 1024 frames from its pfn, a multiple of 1024. A directory entry without
 * H names the frame of a page table. A walker reads a huge entry as the 1024 PTEs it stands for
 * ({@link hugePte}).
 *
 * Entries are written only under the address space's mmap_lock and read lock-free with
 * `Atomics.load`; an aligned Int32 never tears. A lock-free walk is a read section of the address
 * space's TLB generation (`Mm.TLB_GEN`, a seqcount: odd while a munmap, mprotect or destroy takes
 * pages or permissions away): {@link validatedWalk} retries a walk that overlapped such a flush.
 *
 * @module
 */
import { PROT_READ, PROT_WRITE } from './errno.js';
import { cpuRelax, pause } from './cpu-relax.js';
import { SegmentationFault } from './fault.js';
import { Mm, MM_WORDS, PTRS_PER_TABLE, TABLE_SHIFT } from './layout.js';
import type { PhysMem } from './phys-mem.js';

// ---------------------------------------------------------------------------------------------
// The format

/** PTE bit: the entry is present. */
export const PTE_PRESENT = 0x1;
/** PTE bit: reads allowed. */
export const PTE_READ = 0x2;
/** PTE bit: writes allowed. */
export const PTE_WRITE = 0x4;
/** PDE bit: a huge entry, mapping its 4 MiB directory slot directly (x86 `_PAGE_PSE`). */
export const PDE_HUGE = 0x8;
/** The presence and permission bits. */
const PTE_PROT_BITS = PTE_PRESENT | PTE_READ | PTE_WRITE;
/** Shift of the pfn in an entry: the bits above {@link PDE_HUGE}. */
export const PTE_PFN_SHIFT = 4;
/** The difference between the PTEs of two consecutive frames with the same bits. */
export const PTE_PFN_STEP = 16; // 2 ** PTE_PFN_SHIFT, a literal so that it folds into loops
/** Page index within its directory slot. */
const TABLE_MASK = PTRS_PER_TABLE - 1;

/** The presence and permission bits granting `prot`. `PROT_WRITE` implies read, as on x86. */
function protBits(prot: number): number {
  if (prot & PROT_WRITE) return PTE_PRESENT | PTE_READ | PTE_WRITE;
  return prot & PROT_READ ? PTE_PRESENT | PTE_READ : PTE_PRESENT;
}

/**
 * The PTE for `pfn` granting `prot` (`mk_pte`). Entry values are Int32 arithmetic: a pfn is below
 * `MAX_FRAMES` (2^27), so `pfn << PTE_PFN_SHIFT` never passes 2^31 (unlike word *indexes* of
 * frames, which are products below).
 */
export function mkPte(pfn: number, prot: number): number {
  return (pfn << PTE_PFN_SHIFT) | protBits(prot);
}

/** The huge directory entry mapping the 1024 frames from `pfn` with `prot` (`pfn_pmd`). */
export function mkHugePde(pfn: number, prot: number): number {
  return mkPte(pfn, prot) | PDE_HUGE;
}

/** The directory entry naming the page table in frame `pfn` (`pmd_populate`). */
export function mkTablePde(pfn: number): number {
  return (pfn << PTE_PFN_SHIFT) | PTE_PRESENT;
}

/** The same entry granting `prot` instead (`pte_modify`); a huge entry stays huge. */
export function pteWithProt(pte: number, prot: number): number {
  return (pte & ~PTE_PROT_BITS) | protBits(prot);
}

/** The frame an entry points to (`pte_pfn`, `pmd_pfn`). */
export function ptePfn(pte: number): number {
  return pte >>> PTE_PFN_SHIFT;
}

/** The `PROT_*` a present PTE grants (`PROT_READ | PROT_WRITE` for a writable one). */
export function ptePprot(pte: number): number {
  if (pte & PTE_WRITE) return PROT_READ | PROT_WRITE;
  return pte & PTE_READ ? PROT_READ : 0;
}

/** True when a present PTE allows a read (`write` false) or a write. */
export function pteAllows(pte: number, write: boolean): boolean {
  return (pte & (write ? PTE_WRITE : PTE_READ)) !== 0;
}

/** True when the `nrPages` frames from the one `pte` names are all inside physical memory. */
export function pteInMemory(mem: PhysMem, pte: number, nrPages: number): boolean {
  return ptePfn(pte) + nrPages <= mem.layout.totalFrames;
}

/** True for a huge directory entry (`pmd_large`). */
export function pdeIsHuge(pde: number): boolean {
  return (pde & PDE_HUGE) !== 0;
}

/**
 * The PTE that huge directory entry `pde` stands for at user page `upage` of its slot: the same
 * permission bits, the pfn advanced by the page's place in the slot.
 */
export function hugePte(pde: number, upage: number): number {
  return (pde & ~PDE_HUGE) + ((upage & TABLE_MASK) << PTE_PFN_SHIFT);
}

// ---------------------------------------------------------------------------------------------
// Indexes and slots (products, not shifts: word indexes of frames above 8 GiB pass 2^31)

/** The directory slot of user page `upage` (`pmd_index`). */
export function dirOf(upage: number): number {
  return upage >>> TABLE_SHIFT;
}

/** The first user page of directory slot `dir`. */
export function slotStart(dir: number): number {
  return dir * PTRS_PER_TABLE;
}

/** The first user page after the directory slot of `upage`. */
export function slotEnd(upage: number): number {
  return slotStart(dirOf(upage) + 1);
}

/** True when `upage` is the first page of its directory slot. */
export function slotAligned(upage: number): boolean {
  return (upage & TABLE_MASK) === 0;
}

/** Int32 index of directory entry `dir` of the directory in frame `pgdPfn`. */
export function pdeSlotIndex(pgdPfn: number, dir: number): number {
  return pgdPfn * PTRS_PER_TABLE + dir;
}

/** Int32 index of the directory entry for user page `upage`. */
export function pdeIndex(pgdPfn: number, upage: number): number {
  return pdeSlotIndex(pgdPfn, dirOf(upage));
}

/** Int32 index of entry 0 of the table in frame `pfn` (a page table, or a directory). */
export function tableBase(pfn: number): number {
  return pfn * PTRS_PER_TABLE;
}

/** Int32 index of the PTE for user page `upage` in the page table that directory entry `pde` names. */
export function pteIndex(pde: number, upage: number): number {
  return tableBase(ptePfn(pde)) + (upage & TABLE_MASK);
}

// ---------------------------------------------------------------------------------------------
// Walks

/**
 * The PTE of user page `upage`, or 0 (`follow_pte`; a huge entry answers for each of its pages).
 * Context: any thread, lock-free; a lock-free caller validates the walk ({@link validatedWalk}).
 */
export function walkPte(mem: PhysMem, pgdPfn: number, upage: number): number {
  const { i32 } = mem;
  const pde = Atomics.load(i32, pdeIndex(pgdPfn, upage));
  if (pde === 0) return 0;
  if (pde & PDE_HUGE) return hugePte(pde, upage);
  // a table past memory is garbage from a table freed under a lock-free walk: no PTE
  if (ptePfn(pde) >= mem.layout.totalFrames) return 0;
  return Atomics.load(i32, pteIndex(pde, upage));
}

/**
 * The directory entry of user page `upage`: a huge entry, a table entry, or 0.
 * Context: any thread, lock-free (validated by the caller, as {@link walkPte}).
 */
export function walkPde(mem: PhysMem, pgdPfn: number, upage: number): number {
  return Atomics.load(mem.i32, pdeIndex(pgdPfn, upage));
}

/**
 * What {@link walkRange} hands its visitor: `nrPages` pages from `upage` on, all with no PTE
 * (`pte` 0), or all mapped by one huge entry (`pte` is the first page's; the next pages' follow
 * frame by frame), or one page of a page table (`nrPages` 1). Return false to stop the walk.
 */
export type PteVisitor = (upage: number, pte: number, nrPages: number) => boolean;

/**
 * The one range walker (`walk_page_range`): the PTEs of user pages `[start, end)` in address order,
 * a directory slot at a time; a huge entry is one visit for the part of its slot in the range, an
 * empty slot one visit with `pte` 0. A directory entry naming a table past memory (garbage from a
 * table freed under a lock-free walk) reads as an empty slot, so the walk itself never throws; PTE
 * values are handed over as they are (a lock-free visitor checks their frames, {@link pteInMemory}).
 * Context: under the mm's mmap_lock, or lock-free inside a {@link validatedWalk}.
 */
export function walkRange(
  mem: PhysMem,
  pgdPfn: number,
  start: number,
  end: number,
  visit: PteVisitor,
): void {
  const { i32 } = mem;
  const frames = mem.layout.totalFrames;
  for (let upage = start; upage < end;) {
    const stop = Math.min(end, slotEnd(upage));
    const pde = Atomics.load(i32, pdeIndex(pgdPfn, upage));
    if (pde === 0 || (!(pde & PDE_HUGE) && ptePfn(pde) >= frames)) {
      if (!visit(upage, 0, stop - upage)) return;
    } else if (pde & PDE_HUGE) {
      if (!visit(upage, hugePte(pde, upage), stop - upage)) return;
    } else {
      const base = tableBase(ptePfn(pde)) - slotStart(dirOf(upage));
      for (let p = upage; p < stop; p++) {
        if (!visit(p, Atomics.load(i32, base + p), 1)) return;
      }
    }
    upage = stop;
  }
}

/**
 * Visit every present PTE of a directory, in address order, one page at a time (a huge entry as
 * the 1024 PTEs it stands for). Context: the mm's mmap_lock held.
 */
export function forEachPteLocked(
  mem: PhysMem,
  pgdPfn: number,
  visit: (upage: number, pte: number) => void,
): void {
  walkRange(mem, pgdPfn, 0, slotStart(PTRS_PER_TABLE), (upage, pte, nrPages) => {
    if (pte === 0) return true;
    for (let k = 0; k < nrPages; k++) visit(upage + k, pte + k * PTE_PFN_STEP);
    return true;
  });
}

/**
 * The directory entries of a directory, as `visit(dir, pde)` for each non-empty one.
 * Context: the mm's mmap_lock held, or the world stopped (recovery).
 */
export function forEachPde(
  mem: PhysMem,
  pgdPfn: number,
  visit: (dir: number, pde: number) => void,
): void {
  for (let dir = 0; dir < PTRS_PER_TABLE; dir++) {
    const pde = Atomics.load(mem.i32, pdeSlotIndex(pgdPfn, dir));
    if (pde !== 0) visit(dir, pde);
  }
}

/** The page-table frames a directory points to. Context: the mm's mmap_lock held. */
export function tableFramesLocked(mem: PhysMem, pgdPfn: number): number[] {
  const out: number[] = [];
  forEachPde(mem, pgdPfn, (_dir, pde) => {
    if (!pdeIsHuge(pde)) out.push(ptePfn(pde));
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// The TLB generation: a seqcount around every change that takes pages or permissions away

/** What a validated walk needs of an address space handle. */
export interface MmRef {
  readonly mem: PhysMem;
  readonly slot: number;
  readonly gen: number;
}

/** Int32 index of mm `slot`'s word `word`. */
function mmIndex(mem: PhysMem, slot: number, word: Mm): number {
  return mem.mmTable + slot * MM_WORDS + word;
}

/**
 * Begin taking pages or permissions away from an mm (`inc_mm_tlb_gen`): its TLB generation turns
 * odd, so walkers and translation caches stop trusting what they saw before any frame is released.
 * Context: the mm's mmap_lock held (or the world stopped).
 */
export function tlbFlushBegin(mem: PhysMem, mmSlot: number): void {
  Atomics.add(mem.i32, mmIndex(mem, mmSlot, Mm.TLB_GEN), 1);
}

/** End a {@link tlbFlushBegin}: the TLB generation is even again. Context: as tlbFlushBegin. */
export function tlbFlushEnd(mem: PhysMem, mmSlot: number): void {
  Atomics.add(mem.i32, mmIndex(mem, mmSlot, Mm.TLB_GEN), 1);
}

/** How long a walk waits for another thread's TLB flush of the same address space to end. */
const FLUSH_WAIT_MS = 2000;

/**
 * The address space's TLB generation once it is even (no flush in progress), to open a read
 * section of the seqcount. Flushes are short; one that lasts is a thread that died inside munmap or
 * mprotect and has not been reaped yet. Throws SegmentationFault (`SEGV_MAPERR` at `addr`) when
 * the address space is destroyed meanwhile, and `Error` after {@link FLUSH_WAIT_MS} of waiting.
 * Context: any thread, lock-free (spins, then sleeps in short slices where it may block).
 */
export function evenTlbGen(mm: MmRef, addr: number, write: boolean): number {
  const { mem, slot, gen } = mm;
  const { i32 } = mem;
  const index = mmIndex(mem, slot, Mm.TLB_GEN);
  let value = Atomics.load(i32, index);
  if ((value & 1) === 0) return value;
  const deadline = Date.now() + FLUSH_WAIT_MS;
  for (let spins = 0; ; spins++) {
    if (Atomics.load(i32, mmIndex(mem, slot, Mm.GEN)) !== gen) {
      throw new SegmentationFault('SEGV_MAPERR', addr, write ? 'write' : 'read');
    }
    value = Atomics.load(i32, index);
    if ((value & 1) === 0) return value;
    if (spins > 64) pause(i32, index, value, 0.05);
    else cpuRelax();
    if (Date.now() > deadline) {
      throw new Error(
        `address space ${slot + 1}: a TLB flush has not ended in ${FLUSH_WAIT_MS} ms — a thread ` +
          'died inside munmap or mprotect and was not reaped (kernel.reapThread)',
      );
    }
  }
}

/**
 * Run a lock-free walk of `mm`'s page tables as a read section of its TLB generation (the
 * seqcount validation of `get_user_pages_fast`): `walk(before)` runs with `before` the even
 * generation it began under, and its result is returned only if no flush overlapped it; a walk
 * that overlapped one (a munmap, mprotect or destroy, a page table freed under it) runs again. A
 * `SegmentationFault` it throws counts only if no flush overlapped it either; anything else is a
 * kernel bug and is thrown at once, never retried. A flush that never ends ends the walk with
 * {@link evenTlbGen}'s error; a destroyed address space with `SEGV_MAPERR` at `addr`.
 * The one retry loop of every lock-free reader (user-access.ts). Context: any thread, lock-free.
 */
export function validatedWalk<T>(
  mm: MmRef,
  addr: number,
  write: boolean,
  walk: (before: number) => T,
): T {
  const { mem, slot, gen } = mm;
  const { i32 } = mem;
  const tlbGen = mmIndex(mem, slot, Mm.TLB_GEN);
  for (;;) {
    const before = evenTlbGen(mm, addr, write);
    let result: T;
    try {
      result = walk(before);
    } catch (error) {
      if (!(error instanceof SegmentationFault) || Atomics.load(i32, tlbGen) === before)
        throw error;
      continue;
    }
    if (Atomics.load(i32, tlbGen) !== before) continue;
    if (Atomics.load(i32, mmIndex(mem, slot, Mm.GEN)) !== gen) {
      throw new SegmentationFault('SEGV_MAPERR', addr, write ? 'write' : 'read');
    }
    return result;
  }
}
