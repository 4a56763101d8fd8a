/**
 * mprotect, and the change of a range's VMA attributes that it shares with madvise.
 *
 * Kernel counterparts: `do_mprotect_pkey`/`mprotect_fixup` (`mm/mprotect.c`) and
 * `vma_modify_flags` (`mm/vma.c`), `madvise_update_vma` (`mm/madvise.c`).
 *
 * The range must be mapped with no hole (else -ENOMEM, and nothing changes: stronger than Linux,
 * which changes the VMAs before the hole). A VMA whose attributes the change leaves as they are is
 * not touched at all, so an mprotect to the protection a VMA already has splits nothing
 * (`mprotect_fixup` returns early when `newflags == oldflags`). A VMA that changes is split where
 * the range cuts it (the existing slot keeps the lowest piece), gets its new attributes, and then
 * merges with its neighbours where it can (vma-merge.ts): split, set protection back, and there
 * is one VMA again.
 *
 * @module
 */
import { EINVAL, ENOMEM, PAGE_SIZE, VM_READ, VM_WRITE } from './errno.js';
import { HPAGE_PAGES, Mm, VmaWord } from './layout.js';
import { mmGet } from './mm.js';
import { chunkEnd, isSafe, protFlags, splitEdgesLocked, validProt } from './mmap.js';
import { changeProtLocked } from './page-table.js';
import { tlbFlushBegin, tlbFlushEnd } from './pgtable.js';
import type { PhysMem } from './phys-mem.js';
import { txBegin, txCommit } from './undo.js';
import { waitForCopies } from './user-access.js';
import {
  mapCountAllowsLocked,
  newVmaLocked,
  overlappingLocked,
  TASK_PAGES,
  vmaAttrsAt,
} from './vma-list.js';
import { mergeRangeLocked } from './vma-merge.js';
import { releaseVmaSlots, reserveVmaSlots, vmaGet, vmaSet } from './vma.js';

/** A VMA's new `[PROT_*, VM_* flags]` from its old ones; must be idempotent. */
export type VmaChange = (prot: number, flags: number) => readonly [number, number];

/** `mprotect(addr, length, prot)`: 0 or `-errno`. Context: the mm's mmap_lock held. */
export function mprotectLocked(
  mem: PhysMem,
  mm: number,
  addr: unknown,
  length: unknown,
  prot: unknown,
): number {
  if (!isSafe(addr) || addr < 0 || addr % PAGE_SIZE !== 0) return -EINVAL;
  if (!validProt(prot)) return -EINVAL;
  if (!isSafe(length) || length < 0) return -EINVAL;
  if (length === 0) return 0;
  const start = addr / PAGE_SIZE;
  const end = start + Math.ceil(length / PAGE_SIZE);
  if (end > TASK_PAGES) return -ENOMEM;
  const vmFlags = protFlags(prot);
  return modifyRangeLocked(mem, mm, start, end, (_prot, flags) => [
    prot,
    (flags & ~(VM_READ | VM_WRITE)) | vmFlags,
  ]);
}

/**
 * Give every VMA of `[start, end)` (pages) the attributes `change` makes of its own, splitting the
 * ones that change where the range cuts them and merging what can merge afterwards; PTEs of pieces
 * whose protection changed are rewritten. 0, or -ENOMEM (a hole, the VMA limit, no VMA slot or no
 * frame to split a huge entry) with nothing changed. Context: the mm's mmap_lock held.
 */
export function modifyRangeLocked(
  mem: PhysMem,
  mm: number,
  start: number,
  end: number,
  change: VmaChange,
): number {
  // the range must be covered with no hole; each VMA that changes needs a slot per cut
  let covered = start;
  let cutStart = false;
  let cutEnd = false;
  for (const v of overlappingLocked(mem, mm, start, end)) {
    const vs = vmaGet(mem, v, VmaWord.START);
    const ve = vmaGet(mem, v, VmaWord.END);
    if (vs > covered) return -ENOMEM;
    covered = ve;
    if (!changes(mem, v, change)) continue;
    if (vs < start) cutStart = true;
    if (ve > end) cutEnd = true;
  }
  if (covered < end) return -ENOMEM;
  const needed = (cutStart ? 1 : 0) + (cutEnd ? 1 : 0);
  if (!mapCountAllowsLocked(mem, mm, needed)) return -ENOMEM;
  const spare = reserveVmaSlots(mem, needed);
  if (spare === null) return -ENOMEM;
  // huge entries are split only where a changing VMA is cut (a slot-aligned page cuts nothing)
  const lo = cutStart ? start : start - (start % HPAGE_PAGES);
  const hi = cutEnd ? end : end - (end % HPAGE_PAGES);
  if (!splitEdgesLocked(mem, mm, lo, hi)) {
    releaseVmaSlots(mem, spare);
    return -ENOMEM;
  }
  const pgd = mmGet(mem, mm, Mm.PGD);
  let rewrote = false;
  for (let s = start; s < end;) {
    const e = chunkEnd(mem, mm, s, end);
    txBegin(mem);
    const changed = splitAndChangeLocked(mem, mm, s, e, change, spare);
    const merged = mergeRangeLocked(mem, mm, s, e);
    txCommit(mem);
    if (changed.length > 0) {
      // PTEs follow their VMA; a dead thread's half-done rewrite is finished by recovery
      tlbFlushBegin(mem, mm);
      try {
        for (const [ps, pe, prot] of changed) changeProtLocked(mem, pgd, ps, pe, prot);
      } finally {
        tlbFlushEnd(mem, mm);
      }
      rewrote = true;
    }
    releaseVmaSlots(mem, merged);
    s = e;
  }
  if (rewrote) waitForCopies(mem, mm); // copies checked against the old protection have landed
  return 0;
}

/** Would `change` give VMA `v` other attributes? */
function changes(mem: PhysMem, v: number, change: VmaChange): boolean {
  const prot = vmaGet(mem, v, VmaWord.PROT);
  const flags = vmaGet(mem, v, VmaWord.FLAGS);
  const [p, f] = change(prot, flags);
  return p !== prot || f !== flags;
}

/**
 * Split the VMAs of `[start, end)` that change where the range cuts them (the existing slot keeps
 * the lowest piece) and give each piece inside its new attributes. Returns the pieces whose
 * protection changed, as `[start, end, prot]`. Context: the mm's mmap_lock held, inside a
 * transaction; `spare` holds a slot per cut.
 */
function splitAndChangeLocked(
  mem: PhysMem,
  mm: number,
  start: number,
  end: number,
  change: VmaChange,
  spare: number[],
): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (const v of overlappingLocked(mem, mm, start, end)) {
    if (!changes(mem, v, change)) continue;
    const vs = vmaGet(mem, v, VmaWord.START);
    const ve = vmaGet(mem, v, VmaWord.END);
    let piece = v;
    if (ve > end) {
      newVmaLocked(mem, mm, spare.pop()!, end, ve, vmaAttrsAt(mem, v, end));
      vmaSet(mem, v, VmaWord.END, end);
    }
    if (vs < start) {
      piece = spare.pop()!;
      newVmaLocked(mem, mm, piece, start, Math.min(ve, end), vmaAttrsAt(mem, v, start));
      vmaSet(mem, v, VmaWord.END, start);
    }
    const prot = vmaGet(mem, piece, VmaWord.PROT);
    const [p, f] = change(prot, vmaGet(mem, piece, VmaWord.FLAGS));
    vmaSet(mem, piece, VmaWord.PROT, p);
    vmaSet(mem, piece, VmaWord.FLAGS, f);
    if (p !== prot) out.push([Math.max(vs, start), Math.min(ve, end), p]);
  }
  return out;
}
