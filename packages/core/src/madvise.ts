/**
 * madvise and mincore.
 *
 * Kernel counterparts: `do_madvise`, `madvise_update_vma`, `madvise_dontneed_single_vma`
 * (`mm/madvise.c`) and `do_mincore` (`mm/mincore.c`).
 *
 * - `MADV_NORMAL`, `MADV_RANDOM`, `MADV_SEQUENTIAL` set the VMA's read-ahead flags (`VM_RAND_READ`,
 *   `VM_SEQ_READ`), splitting and merging VMAs as mprotect does (vma_modify); `MADV_WILLNEED` is a
 *   hint that changes nothing. They change no PTE: sabvm has no read-ahead to tune.
 * - `MADV_DONTNEED` zaps the PTEs of the range (`zap_page_range_single`): the VMAs stay, the frame
 *   references drop as for munmap, and a later access faults with `BusError` until something is
 *   remapped there.
 * - Unknown advice, an unaligned address, a malformed length → -EINVAL; a hole in the range →
 *   -ENOMEM with nothing changed (stronger than Linux, which advises the mapped parts first).
 *
 * mincore answers, for each page of a mapped range, whether it has a PTE (Linux: whether it is
 * resident; a sabvm page is resident exactly when mapped).
 *
 * @module
 */
import {
  EINVAL,
  ENOMEM,
  MADV_DONTNEED,
  MADV_NORMAL,
  MADV_RANDOM,
  MADV_SEQUENTIAL,
  MADV_WILLNEED,
  PAGE_SIZE,
  VM_RAND_READ,
  VM_SEQ_READ,
} from './errno.js';
import { Mm, VmaWord } from './layout.js';
import { mmCount, mmGet } from './mm.js';
import { isSafe, splitEdgesLocked } from './mmap.js';
import { modifyRangeLocked } from './mprotect.js';
import { zapPtesLocked } from './page-table.js';
import { tlbFlushBegin, tlbFlushEnd, walkPte } from './pgtable.js';
import type { PhysMem } from './phys-mem.js';
import { waitForCopies } from './user-access.js';
import { overlappingLocked, TASK_PAGES } from './vma-list.js';
import { vmaGet } from './vma.js';

/** `[start, end)` in pages of a call's `(addr, len)`, or an errno. */
function pagesOf(addr: unknown, len: unknown): [number, number] | number {
  if (!isSafe(addr) || addr < 0 || addr % PAGE_SIZE !== 0) return -EINVAL;
  if (!isSafe(len) || len < 0) return -EINVAL;
  const start = addr / PAGE_SIZE;
  const end = start + Math.ceil(len / PAGE_SIZE);
  return end > TASK_PAGES ? -ENOMEM : [start, end];
}

/** True if VMAs cover `[start, end)` with no hole. Context: the mm's mmap_lock held. */
function coveredLocked(mem: PhysMem, mm: number, start: number, end: number): boolean {
  let covered = start;
  for (const v of overlappingLocked(mem, mm, start, end)) {
    if (vmaGet(mem, v, VmaWord.START) > covered) return false;
    covered = vmaGet(mem, v, VmaWord.END);
  }
  return covered >= end;
}

/** `madvise(addr, len, advice)`: 0 or `-errno`. Context: the mm's mmap_lock held. */
export function madviseLocked(
  mem: PhysMem,
  mm: number,
  addr: unknown,
  len: unknown,
  advice: unknown,
): number {
  if (!isSafe(advice) || advice < MADV_NORMAL || advice > MADV_DONTNEED) return -EINVAL;
  if (!isSafe(addr) || addr < 0 || addr % PAGE_SIZE !== 0) return -EINVAL;
  if (!isSafe(len) || len < 0) return -EINVAL;
  if (len === 0) return 0;
  const range = pagesOf(addr, len);
  if (typeof range === 'number') return range;
  const [start, end] = range;
  switch (advice) {
    case MADV_WILLNEED:
      return coveredLocked(mem, mm, start, end) ? 0 : -ENOMEM;
    case MADV_DONTNEED:
      return dontNeedLocked(mem, mm, start, end);
    default: {
      const set =
        advice === MADV_RANDOM ? VM_RAND_READ : advice === MADV_SEQUENTIAL ? VM_SEQ_READ : 0;
      return modifyRangeLocked(mem, mm, start, end, (prot, flags) => [
        prot,
        (flags & ~(VM_RAND_READ | VM_SEQ_READ)) | set,
      ]);
    }
  }
}

/** MADV_DONTNEED: zap the PTEs of `[start, end)`, the VMAs staying. */
function dontNeedLocked(mem: PhysMem, mm: number, start: number, end: number): number {
  if (!coveredLocked(mem, mm, start, end)) return -ENOMEM;
  // a huge entry the range cuts is split first (no frame for its table: -ENOMEM, nothing done)
  if (!splitEdgesLocked(mem, mm, start, end)) return -ENOMEM;
  tlbFlushBegin(mem, mm);
  let cleared: number;
  try {
    cleared = zapPtesLocked(mem, mmGet(mem, mm, Mm.PGD), start, end);
  } finally {
    tlbFlushEnd(mem, mm);
  }
  mmCount(mem, mm, Mm.NR_PTES, -cleared);
  waitForCopies(mem, mm); // copies through the zapped PTEs have landed
  return 0;
}

/**
 * `mincore(addr, len)`: one byte per page of the range, 1 where the page has a PTE; -EINVAL for an
 * unaligned address or a malformed length, -ENOMEM where the range has a hole.
 * Context: the mm's mmap_lock held.
 */
export function mincoreLocked(
  mem: PhysMem,
  mm: number,
  addr: unknown,
  len: unknown,
): Uint8Array | number {
  const range = pagesOf(addr, len);
  if (typeof range === 'number') return range;
  const [start, end] = range;
  if (!coveredLocked(mem, mm, start, end)) return -ENOMEM;
  const out = new Uint8Array(end - start);
  const pgd = mmGet(mem, mm, Mm.PGD);
  for (let p = start; p < end; p++) out[p - start] = walkPte(mem, pgd, p) !== 0 ? 1 : 0;
  return out;
}
