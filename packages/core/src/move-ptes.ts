/**
 * Moving PTEs from one user range to another of the same address space: mremap's page-table half.
 *
 * Kernel counterpart: `move_page_tables` (`mm/mremap.c`), with `move_huge_pmd` for huge entries.
 *
 * Nothing is copied but entries: the frames stay where they are, with their data and their
 * references (a PTE moved is neither a new reference nor a dropped one). The move is done in two
 * halves so that a thread dying in the middle leaves either the old mapping or the new one:
 * 1. {@link copyPtesLocked}, inside the transaction that also moves the VMAs: every PTE of the old
 *    range is written into the new range, which had none (logged as new PTEs: undoing clears
 *    them); the old PTEs stay.
 * 2. {@link clearMovedLocked}, after the commit, inside a TLB flush: the old PTEs are cleared,
 *    dropping no reference (recovery would clear them anyway, as PTEs outside every VMA, and
 *    recount the references).
 *
 * A huge entry whose whole 4 MiB slot moves to a slot-aligned place moves as one entry (the new
 * address is aligned: `(newStart - oldStart) % 1024 === 0`); otherwise it lands as 1024 PTEs.
 *
 * @module
 */
import { putFrame } from './frame-alloc.js';
import { HPAGE_PAGES, Hdr, PTRS_PER_TABLE, TABLE_SHIFT } from './layout.js';
import { allocTablesLocked } from './page-table.js';
import { hugePte, PDE_HUGE, ptePfn, tlbFlushBegin, tlbFlushEnd } from './pgtable.js';
import type { PhysMem } from './phys-mem.js';
import { txLogNewPtes } from './undo.js';

const TABLE_MASK = PTRS_PER_TABLE - 1;

/** Int32 index of the directory entry for user page `upage`. */
function pdeAt(pgd: number, upage: number): number {
  return pgd * PTRS_PER_TABLE + (upage >>> TABLE_SHIFT);
}

/**
 * The directory slots of the new range that a move of `n` pages from `oldStart` to `newStart`
 * fills with huge entries: slots the old range covers with a huge entry, when the shift keeps
 * slots aligned. Context: the mm's mmap_lock held.
 */
function hugeMoves(
  mem: PhysMem,
  pgd: number,
  oldStart: number,
  n: number,
  newStart: number,
): Set<number> {
  const out = new Set<number>();
  if (((newStart - oldStart) & TABLE_MASK) !== 0) return out;
  for (let p = oldStart; p < oldStart + n; p += HPAGE_PAGES - (p & TABLE_MASK)) {
    if (
      (p & TABLE_MASK) === 0 &&
      p + HPAGE_PAGES <= oldStart + n &&
      mem.i32[pdeAt(pgd, p)]! & PDE_HUGE
    )
      out.add((p + newStart - oldStart) >>> TABLE_SHIFT);
  }
  return out;
}

/**
 * Make the page tables a move of `n` pages from `oldStart` to `newStart` needs (all or nothing,
 * see `allocTablesLocked`); returns the tables made, or -1 with none made.
 * Context: the mm's mmap_lock held.
 */
export function moveTablesLocked(
  mem: PhysMem,
  mm: number,
  pgd: number,
  oldStart: number,
  n: number,
  newStart: number,
): number {
  const huge = hugeMoves(mem, pgd, oldStart, n, newStart);
  // hugeMoves gives whole slots: allocTablesLocked takes them as one [first, end) run at most once
  // per contiguous stretch, so pass the stretch only when every slot of it moves huge
  const dirs = [...huge].sort((a, b) => a - b);
  const contiguous = dirs.length > 0 && dirs[dirs.length - 1]! - dirs[0]! + 1 === dirs.length;
  const skip: [number, number] = contiguous ? [dirs[0]!, dirs[dirs.length - 1]! + 1] : [0, 0];
  return allocTablesLocked(mem, mm, pgd, newStart, newStart + n, skip);
}

/** Tables {@link moveTablesLocked} would make: to check for frames before anything changes. */
export function moveTablesNeeded(
  mem: PhysMem,
  pgd: number,
  oldStart: number,
  n: number,
  newStart: number,
): number {
  const huge = hugeMoves(mem, pgd, oldStart, n, newStart);
  let missing = 0;
  for (let dir = newStart >>> TABLE_SHIFT; dir <= (newStart + n - 1) >>> TABLE_SHIFT; dir++) {
    if (!huge.has(dir) && mem.i32[pgd * PTRS_PER_TABLE + dir] === 0) missing++;
  }
  return missing;
}

/**
 * Write every PTE of `[oldStart, oldStart + n)` into `[newStart, newStart + n)`, which has none
 * and has its tables ({@link moveTablesLocked}); huge entries that can move whole do (an empty
 * table in their new slot is freed). Returns the tables freed. The edges of the old range cut no
 * huge entry. Context: the mm's mmap_lock held, inside the transaction of the move.
 */
export function copyPtesLocked(
  mem: PhysMem,
  mm: number,
  pgd: number,
  oldStart: number,
  n: number,
  newStart: number,
): number {
  const { i32 } = mem;
  const huge = hugeMoves(mem, pgd, oldStart, n, newStart);
  txLogNewPtes(mem, mm, newStart, n); // the new range had no PTE: undoing clears it
  let freed = 0;
  let flushing = false;
  try {
    for (let p = oldStart; p < oldStart + n;) {
      const q = p + newStart - oldStart;
      const pde = i32[pdeAt(pgd, p)]!; // mmap_lock held: the only writer
      if (huge.has(q >>> TABLE_SHIFT)) {
        const old = i32[pdeAt(pgd, q)]!;
        if (old !== 0) {
          // an empty table in the new slot gives way, inside a TLB flush (a walker may read it)
          if (!flushing) tlbFlushBegin(mem, mm);
          flushing = true;
        }
        Atomics.store(i32, pdeAt(pgd, q), pde);
        if (old !== 0) {
          putFrame(mem, ptePfn(old));
          freed++;
        }
        p += HPAGE_PAGES;
        continue;
      }
      const stop = Math.min(oldStart + n, (p | TABLE_MASK) + 1);
      for (; p < stop; p++) {
        const pte =
          pde & PDE_HUGE
            ? hugePte(pde, p)
            : pde === 0
              ? 0
              : i32[ptePfn(pde) * PTRS_PER_TABLE + (p & TABLE_MASK)]!;
        if (pte === 0) continue;
        const to = p + newStart - oldStart;
        // plain store: the mmap_lock's release publishes it to walkers (Atomics.load)
        i32[ptePfn(i32[pdeAt(pgd, to)]!) * PTRS_PER_TABLE + (to & TABLE_MASK)] = pte;
      }
    }
  } finally {
    if (flushing) tlbFlushEnd(mem, mm);
  }
  if (freed > 0) Atomics.sub(i32, Hdr.PT_FRAMES, freed);
  return freed;
}

/**
 * Clear the PTEs of `[start, start + n)` without dropping a reference: they moved. Huge entries
 * are whole slots of the range. Context: the mm's mmap_lock held, inside a TLB flush.
 */
export function clearMovedLocked(mem: PhysMem, pgd: number, start: number, n: number): void {
  const { i32 } = mem;
  for (let p = start; p < start + n;) {
    const at = pdeAt(pgd, p);
    const pde = i32[at]!;
    const stop = Math.min(start + n, (p | TABLE_MASK) + 1);
    if (pde & PDE_HUGE) Atomics.store(i32, at, 0);
    else if (pde !== 0) {
      const base = ptePfn(pde) * PTRS_PER_TABLE;
      for (let q = p; q < stop; q++) i32[base + (q & TABLE_MASK)] = 0;
    }
    p = stop;
  }
}

/**
 * Huge entries that the edges of `[start, end)` cut (0, 1 or 2): the frames a split of them needs.
 * Context: the mm's mmap_lock held.
 */
export function hugeEdges(mem: PhysMem, pgd: number, start: number, end: number): number {
  const dirs = new Set<number>();
  for (const page of [start, end]) {
    if ((page & TABLE_MASK) === 0 || page >>> TABLE_SHIFT >= PTRS_PER_TABLE) continue;
    if (mem.i32[pdeAt(pgd, page)]! & PDE_HUGE) dirs.add(page >>> TABLE_SHIFT);
  }
  return dirs.size;
}

/** True if a huge entry maps any page of `[start, start + n)`. Context: the mmap_lock held. */
export function hugeInside(mem: PhysMem, pgd: number, start: number, n: number): boolean {
  for (let dir = start >>> TABLE_SHIFT; dir <= (start + n - 1) >>> TABLE_SHIFT; dir++) {
    if (mem.i32[pgd * PTRS_PER_TABLE + dir]! & PDE_HUGE) return true;
  }
  return false;
}
