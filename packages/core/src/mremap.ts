/**
 * mremap: shrink, grow or move a mapping, carrying its PTEs (never its data).
 *
 * Kernel counterpart: `SYSCALL_DEFINE5(mremap)`, `mremap_to`, `vma_to_resize`, `move_vma` and
 * `vma_expandable` (`mm/mremap.c`), with Linux's rules:
 * - flags other than `MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP`, `MREMAP_FIXED` without
 *   `MREMAP_MAYMOVE`, `MREMAP_DONTUNMAP` without `MREMAP_MAYMOVE` or with a new length, an
 *   unaligned `oldAddr`, a new length of 0 → -EINVAL (and an old length of 0: stronger than Linux,
 *   which duplicates a shared mapping there);
 * - no VMA at `oldAddr` → -EFAULT;
 * - shrinking unmaps the tail (from `oldAddr + newLen`) and returns `oldAddr`;
 * - growing needs the old range inside one VMA (-EFAULT), not `VM_DONTEXPAND` (-EFAULT: anything
 *   remapped), then grows in place when the old range ends the VMA and the room after it is free,
 *   else moves with `MREMAP_MAYMOVE`, else -ENOMEM;
 * - `MREMAP_FIXED` moves to exactly `newAddr` (aligned, inside the user space, not overlapping the
 *   old range, else -EINVAL), unmapping what is there; `MREMAP_DONTUNMAP` moves and leaves the old
 *   VMA in place, empty (refused, -EINVAL, for `VM_DONTEXPAND` VMAs, so never with PTEs);
 * - a move keeps the VMA's protection, flags and object; its PTEs move with it; a huge entry stays
 *   one where the new address is slot-aligned with the old (a move picks such an address).
 *
 * All or nothing: every check, the VMA slots and the frames for page tables come before the first
 * change. A thread that dies inside is undone or completed step by step as in Linux: unmapping the
 * destination (`MREMAP_FIXED`), unmapping the tail and the move itself are each one transaction.
 *
 * @module
 */
import {
  EFAULT,
  EINVAL,
  ENOMEM,
  EPERM,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PAGE_SIZE,
  VM_DONTEXPAND,
} from './errno.js';
import { HPAGE_PAGES, Hdr, Mm, TASK_SIZE, VmaWord } from './layout.js';
import { mmCount, mmGet, vmaSlotsLocked } from './mm.js';
import {
  hintedAreaLocked,
  isSafe,
  munmapLocked,
  splitEdgesLocked,
  unmapRangeLocked,
  unmapVmasLocked,
} from './mmap.js';
import {
  clearMovedLocked,
  copyPtesLocked,
  hugeEdges,
  hugeInside,
  moveTablesLocked,
  moveTablesNeeded,
} from './move-ptes.js';
import { tlbFlushBegin, tlbFlushEnd } from './pgtable.js';
import type { PhysMem } from './phys-mem.js';
import { txBegin, txCommit } from './undo.js';
import { waitForCopies } from './user-access.js';
import {
  mapCountAllowsLocked,
  newVmaLocked,
  rangeFreeLocked,
  TASK_PAGES,
  unmappedAreaLocked,
  vmaAtLocked,
  vmaAttrsAt,
} from './vma-list.js';
import { mergeRangeLocked } from './vma-merge.js';
import { releaseVmaSlots, reserveVmaSlots, vmaGet, vmaSet } from './vma.js';

const KNOWN_FLAGS = MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP;

/** A move, once every check has passed: pages, VMA and flags. */
interface Move {
  readonly v: number;
  readonly oldStart: number;
  readonly oldPages: number;
  readonly newStart: number;
  readonly newPages: number;
  readonly fixed: boolean;
  readonly dontUnmap: boolean;
}

/**
 * `mremap(oldAddr, oldLen, newLen, flags, newAddr)`: the mapping's address afterwards, or
 * `-errno` with nothing changed. Context: the mm's mmap_lock held.
 */
export function mremapLocked(
  mem: PhysMem,
  mm: number,
  oldAddr: unknown,
  oldLen: unknown,
  newLen: unknown,
  flags: unknown,
  newAddr: unknown,
): number {
  // a range check before any bit test: bitwise operators would truncate large values
  if (!isSafe(flags) || flags < 0 || flags > KNOWN_FLAGS) return -EINVAL;
  const mayMove = (flags & MREMAP_MAYMOVE) !== 0;
  const fixed = (flags & MREMAP_FIXED) !== 0;
  const dontUnmap = (flags & MREMAP_DONTUNMAP) !== 0;
  if (fixed && !mayMove) return -EINVAL;
  if (!isSafe(oldLen) || oldLen < 0 || !isSafe(newLen) || newLen < 0) return -EINVAL;
  if (dontUnmap && (!mayMove || oldLen !== newLen)) return -EINVAL;
  if (!isSafe(oldAddr) || oldAddr < 0 || oldAddr % PAGE_SIZE !== 0) return -EINVAL;
  if (newLen === 0 || oldLen === 0) return -EINVAL;
  if (oldLen > TASK_SIZE || oldAddr > TASK_SIZE - oldLen) return -EINVAL;
  const oldStart = oldAddr / PAGE_SIZE;
  const oldPages = Math.ceil(oldLen / PAGE_SIZE);
  const newPages = Math.ceil(newLen / PAGE_SIZE);
  const v = vmaAtLocked(mem, mm, oldStart);
  if (v < 0) return -EFAULT;
  if (fixed || dontUnmap) {
    const to = newAddr === undefined && !fixed ? 0 : newAddr;
    if (!isSafe(to) || to < 0 || to % PAGE_SIZE !== 0) return -EINVAL;
    if (newLen > TASK_SIZE || to > TASK_SIZE - newLen) return -EINVAL;
    const to0 = to / PAGE_SIZE;
    if (oldStart + oldPages > to0 && to0 + newPages > oldStart) return -EINVAL; // overlap
    const err = resizeCheck(mem, v, oldStart, Math.min(oldPages, newPages), newPages, dontUnmap);
    if (err !== 0) return err;
    let newStart = to0;
    if (fixed) {
      if (to === 0) return -EPERM;
    } else {
      newStart = moveAreaLocked(mem, mm, to, newPages, oldStart, Math.min(oldPages, newPages));
      if (newStart < 0) return -ENOMEM;
    }
    return moveLocked(mem, mm, { v, oldStart, oldPages, newStart, newPages, fixed, dontUnmap });
  }
  if (newPages <= oldPages) {
    // shrinking: unmap the tail (nothing to do for the same length)
    if (newPages === oldPages) return oldAddr;
    const rc = munmapLocked(
      mem,
      mm,
      oldAddr + newPages * PAGE_SIZE,
      (oldPages - newPages) * PAGE_SIZE,
    );
    return rc < 0 ? rc : oldAddr;
  }
  const err = resizeCheck(mem, v, oldStart, oldPages, newPages, false);
  if (err !== 0) return err;
  if (oldStart + oldPages === vmaGet(mem, v, VmaWord.END)) {
    const end = oldStart + newPages;
    if (end <= TASK_PAGES && rangeFreeLocked(mem, mm, oldStart + oldPages, end)) {
      growLocked(mem, mm, v, end);
      return oldAddr;
    }
  }
  if (!mayMove || newLen > TASK_SIZE) return -ENOMEM;
  const newStart = moveAreaLocked(mem, mm, 0, newPages, oldStart, oldPages);
  if (newStart < 0) return -ENOMEM;
  return moveLocked(mem, mm, { v, oldStart, oldPages, newStart, newPages, fixed, dontUnmap });
}

/**
 * `vma_to_resize`: 0, or the errno of a resize of `[oldStart, oldStart + oldPages)` (in VMA `v`)
 * to `newPages`. Context: the mm's mmap_lock held.
 */
function resizeCheck(
  mem: PhysMem,
  v: number,
  oldStart: number,
  oldPages: number,
  newPages: number,
  dontUnmap: boolean,
): number {
  const flags = vmaGet(mem, v, VmaWord.FLAGS);
  if (dontUnmap && (flags & VM_DONTEXPAND) !== 0) return -EINVAL;
  if (oldStart + oldPages > vmaGet(mem, v, VmaWord.END)) return -EFAULT; // across VMAs
  if (newPages > oldPages && (flags & VM_DONTEXPAND) !== 0) return -EFAULT;
  return 0;
}

/** Grow VMA `v` in place to end at page `end` (free up to there), merging what can merge. */
function growLocked(mem: PhysMem, mm: number, v: number, end: number): void {
  txBegin(mem);
  const start = vmaGet(mem, v, VmaWord.START);
  vmaSet(mem, v, VmaWord.END, end);
  const merged = mergeRangeLocked(mem, mm, start, end);
  txCommit(mem);
  releaseVmaSlots(mem, merged);
}

/**
 * Where a move of `pages` goes without MREMAP_FIXED (`get_unmapped_area`): at the hint if free;
 * else, when the `moved` pages from `oldStart` hold a huge entry, a free range at the same place
 * in a 4 MiB slot (so the entries stay huge); else as mmap places it. -1 when nothing is free.
 */
function moveAreaLocked(
  mem: PhysMem,
  mm: number,
  hint: number,
  pages: number,
  oldStart: number,
  moved: number,
): number {
  if (hint !== 0) {
    const at = hint / PAGE_SIZE;
    if (at + pages <= TASK_PAGES && rangeFreeLocked(mem, mm, at, at + pages)) return at;
  }
  if (hugeInside(mem, mmGet(mem, mm, Mm.PGD), oldStart, moved)) {
    const gap = unmappedAreaLocked(mem, mm, pages + HPAGE_PAGES - 1);
    if (gap >= 0) return gap + ((((oldStart - gap) % HPAGE_PAGES) + HPAGE_PAGES) % HPAGE_PAGES);
  }
  return hintedAreaLocked(mem, mm, 0, pages);
}

/** The VMAs of `mm` as page ranges, cut by the ranges in `cuts` in turn; returns the splits. */
function splitsLocked(mem: PhysMem, mm: number, cuts: readonly [number, number][]): number {
  let ranges = vmaSlotsLocked(mem, mm).map((v) => [
    vmaGet(mem, v, VmaWord.START),
    vmaGet(mem, v, VmaWord.END),
  ]);
  let splits = 0;
  for (const [s, e] of cuts) {
    const next: number[][] = [];
    for (const [a, b] of ranges as [number, number][]) {
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

/** `move_vma`, with the unmaps before it: every check has passed. Returns the new address. */
function moveLocked(mem: PhysMem, mm: number, m: Move): number {
  const { v, oldStart, newStart, newPages, fixed, dontUnmap } = m;
  const moved = Math.min(m.oldPages, newPages);
  const tail: [number, number] = [oldStart + moved, oldStart + m.oldPages];
  const dest: [number, number] = [newStart, newStart + newPages];
  const cuts: [number, number][] = [];
  if (fixed) cuts.push(dest);
  if (tail[1] > tail[0]) cuts.push(tail);
  if (!dontUnmap) cuts.push([oldStart, oldStart + moved]);
  const needed = 1 + splitsLocked(mem, mm, cuts);
  if (!mapCountAllowsLocked(mem, mm, needed)) return -ENOMEM;
  const pgd = mmGet(mem, mm, Mm.PGD);
  // frames: huge entries cut by any edge, and the new range's page tables, all before any change
  const frames =
    (fixed ? hugeEdges(mem, pgd, dest[0], dest[1]) : 0) +
    hugeEdges(mem, pgd, oldStart, oldStart + m.oldPages) +
    hugeEdges(mem, pgd, tail[0], tail[0]) +
    moveTablesNeeded(mem, pgd, oldStart, moved, newStart);
  if (frames > Atomics.load(mem.i32, Hdr.FREE_FRAMES)) return -ENOMEM;
  const spare = reserveVmaSlots(mem, needed);
  if (spare === null) return -ENOMEM;
  const newSlot = spare.pop()!;
  const fail = (): number => {
    releaseVmaSlots(mem, [newSlot, ...spare]);
    return -ENOMEM;
  };
  // each unmap is a step of its own, as Linux's do_munmap calls in mremap_to
  if (fixed) {
    if (!splitEdgesLocked(mem, mm, dest[0], dest[1])) return fail();
    unmapRangeLocked(mem, mm, dest[0], dest[1], spare);
  }
  if (!splitEdgesLocked(mem, mm, oldStart, tail[0]) || !splitEdgesLocked(mem, mm, tail[1], tail[1]))
    return fail(); // (only under a race for frames with another thread: checked above)
  if (tail[1] > tail[0]) unmapRangeLocked(mem, mm, tail[0], tail[1], spare);
  const tables = moveTablesLocked(mem, mm, pgd, oldStart, moved, newStart);
  if (tables < 0) return fail();
  mmCount(mem, mm, Mm.NR_PT, tables);
  // the move: new PTEs and the VMA change commit together
  const attrs = vmaAttrsAt(mem, v, oldStart);
  txBegin(mem);
  const freedTables = copyPtesLocked(mem, mm, pgd, oldStart, moved, newStart);
  const freed = dontUnmap ? [] : unmapVmasLocked(mem, mm, oldStart, oldStart + moved, spare);
  newVmaLocked(mem, mm, newSlot, newStart, newStart + newPages, attrs);
  freed.push(...mergeRangeLocked(mem, mm, newStart, newStart + newPages));
  txCommit(mem);
  mmCount(mem, mm, Mm.NR_PT, -freedTables);
  tlbFlushBegin(mem, mm);
  try {
    clearMovedLocked(mem, pgd, oldStart, moved); // they moved: no reference drops
  } finally {
    tlbFlushEnd(mem, mm);
  }
  releaseVmaSlots(mem, [...freed, ...spare]);
  waitForCopies(mem, mm); // copies through the old PTEs have landed
  return newStart * PAGE_SIZE;
}
