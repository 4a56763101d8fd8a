/**
 * VMA merging: neighbours that map the same object contiguously, with the same protection and
 * flags, become one VMA again.
 *
 * Kernel counterpart: `vma_merge_existing_range`/`vma_modify` and `is_mergeable_vma`,
 * `can_vma_merge_before`/`after` (`mm/vma.c`).
 *
 * Two neighbours `a` (lower) and `b` merge when
 * - they touch: `a.end === b.start`;
 * - they map the same object (`VmaWord.ANON`: the mmap that made them; separate `MAP_SHARED`
 *   mappings are separate objects in Linux, a shmem file each, and never merge) at contiguous
 *   offsets (`a.pgoff + (a.end - a.start) === b.pgoff`, which a move by mremap can break);
 * - they have the same `PROT_*` and `VM_*` flags;
 * - neither is `VM_SPECIAL` here: `VM_MIXEDMAP | VM_DONTEXPAND`, which every remap sets.
 *
 * Only calls that change VMAs in place merge (mprotect, madvise, mremap); mmap makes a new object
 * and munmap only removes, so neither needs to look (and neither is slowed).
 *
 * **The lower slot survives** (as a split keeps the existing slot for the lower part): `a` grows
 * to cover `b`, and `b`'s slot is freed once the change commits, so a `Vma` handle of `a` reads
 * the merged bounds and one of `b` goes stale, as a wholly unmapped VMA's does.
 *
 * ```
 *   before:  ├──── a ────┤├──── b ────┤        after:  ├────────── a ──────────┤
 *            (b's slot freed after the commit; a's handle reads the merged bounds)
 * ```
 *
 * @module
 */
import { VM_DONTEXPAND, VM_MIXEDMAP } from './errno.js';
import { VmaWord } from './layout.js';
import type { PhysMem } from './phys-mem.js';
import { nextVma, unlinkLocked, vmaAfterLocked } from './vma-list.js';
import { vmaGet, vmaSet } from './vma.js';

/** Flags that keep a VMA from ever merging (Linux's `VM_SPECIAL`, as far as sabvm sets them). */
export const VM_SPECIAL: number = VM_MIXEDMAP | VM_DONTEXPAND;

/** True if VMA `b` directly follows VMA `a` and the two should be one (`is_mergeable_vma`). */
export function mergeableLocked(mem: PhysMem, a: number, b: number): boolean {
  const flags = vmaGet(mem, a, VmaWord.FLAGS);
  const aStart = vmaGet(mem, a, VmaWord.START);
  const aEnd = vmaGet(mem, a, VmaWord.END);
  return (
    aEnd === vmaGet(mem, b, VmaWord.START) &&
    (flags & VM_SPECIAL) === 0 &&
    flags === vmaGet(mem, b, VmaWord.FLAGS) &&
    vmaGet(mem, a, VmaWord.PROT) === vmaGet(mem, b, VmaWord.PROT) &&
    vmaGet(mem, a, VmaWord.ANON) === vmaGet(mem, b, VmaWord.ANON) &&
    vmaGet(mem, a, VmaWord.PGOFF) + (aEnd - aStart) === vmaGet(mem, b, VmaWord.PGOFF)
  );
}

/**
 * Merge every pair of mergeable neighbours among the VMAs that touch `[start, end)` (pages),
 * including the one ending at `start` and the one starting at `end`. Returns the slots merged
 * away: unlinked, to be released (`releaseVmaSlots`) after the transaction commits.
 * Context: the mm's mmap_lock held, inside a transaction.
 */
export function mergeRangeLocked(mem: PhysMem, mm: number, start: number, end: number): number[] {
  const freed: number[] = [];
  let a = vmaAfterLocked(mem, mm, Math.max(0, start - 1));
  while (a >= 0 && vmaGet(mem, a, VmaWord.START) <= end) {
    const b = nextVma(mem, a);
    if (b < 0) break;
    if (mergeableLocked(mem, a, b)) {
      vmaSet(mem, a, VmaWord.END, vmaGet(mem, b, VmaWord.END));
      unlinkLocked(mem, mm, b);
      freed.push(b);
    } else {
      a = b;
    }
  }
  return freed;
}
