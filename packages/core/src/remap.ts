/**
 * The seed: `remapVmallocRangePartial` — map vmalloc pages to userspace.
 *
 * Kernel counterpart: `remap_vmalloc_range_partial` and `remap_vmalloc_range` (`mm/vmalloc.c`),
 * which check that `kaddr` is a valid vmalloc'ed area big enough to cover the range starting at
 * `uaddr` in `vma`, then `vm_insert_page` each page; they return 0 for success, -Exxx on failure.
 *
 * The checks run in the contract's order (the first that fails decides the result):
 *
 * | # | condition | result |
 * | - | --------- | ------ |
 * | 1 | `vma` is not a live VMA of this kernel | `-EINVAL` |
 * | 2 | `size` is not a positive safe integer (stronger than Linux) | `-EINVAL` |
 * | 3 | `size` is rounded up to whole pages | |
 * | 4 | `uaddr` or `kaddr` is not a page-aligned non-negative safe integer | `-EINVAL` |
 * | 5 | no live vmalloc area contains `kaddr` | `-EINVAL` |
 * | 6 | the area lacks `VM_USERMAP` | `-EINVAL` |
 * | 7 | `(kaddr - area.addr) + size` exceeds the area's backed size (stronger than Linux) | `-EINVAL` |
 * | 8 | `[uaddr, uaddr + size)` is not inside the VMA | `-EFAULT` |
 * | 9 | a page of the user range already has a PTE | `-EBUSY` |
 * | 10 | a page-table frame cannot be allocated | `-ENOMEM` |
 * | 11 | success: PTEs with the VMA's protection, one reference per frame, `VM_MIXEDMAP \| VM_DONTEXPAND \| VM_DONTDUMP` | `0` |
 *
 * All or nothing (stronger than Linux): every check, including the PTE check and the page-table
 * allocation, happens before the first PTE is written, under the address space's mmap_lock, so a
 * failed call leaves no PTE, no reference and no page-table frame behind, and of two threads
 * racing for overlapping ranges exactly one wins while the other sees `-EBUSY`.
 *
 * Locks: the VMA's mmap_lock, then vmap_area_lock, held only while the area is checked and pinned
 * (its MAPCOUNT raised by the pages to map). A pinned area's frames cannot go: `vfree` of an area
 * with a MAPCOUNT takes every mmap_lock first, so it waits for this call to finish. PTEs are then
 * installed under the mmap_lock alone, without one atomic operation per page.
 *
 * @module
 */
import {
  EBUSY,
  EFAULT,
  EINVAL,
  ENOMEM,
  PAGE_SIZE,
  VM_DONTDUMP,
  VM_DONTEXPAND,
  VM_MIXEDMAP,
  VM_USERMAP,
} from './errno.js';
import { Area, Hdr, Mm, VmaWord } from './layout.js';
import { spinLock, spinUnlock } from './lock.js';
import { mmCount, mmGet, mmLoad, mmUnlock, mmWord } from './mm.js';
import { allocTablesLocked, anyPteLocked, hugeSlots, installPtesLocked } from './page-table.js';
import { areaGet, areaOfPageLocked, areaWord, vmallocPageIndex } from './vmalloc.js';
import { PhysMem } from './phys-mem.js';
import { kernelEnter, kernelExit } from './thread.js';
import { txBegin, txCommit } from './undo.js';
import { Vma, vmaGet, vmaLoad, vmaSet } from './vma.js';

/** What a remap takes from a `Vma` handle: its fields, read once. */
interface VmaRef {
  readonly mem: PhysMem;
  readonly slot: number;
  readonly gen: number;
}

/**
 * The fields of a real `Vma` handle, each read exactly once and validated, or null. Caller code
 * (a getter on a forged handle) runs here, before any lock is taken, and never again: a getter that
 * throws, changes its value between reads or calls back into the kernel cannot reach a locked path.
 */
function vmaFields(vma: unknown): VmaRef | null {
  if (!(vma instanceof Vma)) return null;
  let mem: unknown;
  let slot: unknown;
  let gen: unknown;
  try {
    ({ mem, slot, gen } = vma);
  } catch {
    return null;
  }
  if (!(mem instanceof PhysMem)) return null;
  if (typeof slot !== 'number' || !Number.isSafeInteger(slot)) return null;
  if (slot < 0 || slot >= mem.layout.maxVmas) return null;
  if (typeof gen !== 'number' || !Number.isSafeInteger(gen)) return null;
  return { mem, slot, gen };
}

function isPageAligned(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 && n % PAGE_SIZE === 0;
}

/**
 * Map the vmalloc pages at `kaddr` into `vma` at `uaddr` (`remap_vmalloc_range_partial`).
 * Returns 0, or `-EINVAL`, `-EFAULT`, `-EBUSY`, `-ENOMEM` as the check table above says; a failed
 * call changes nothing. Context: any thread attached to the VMA's kernel; takes the VMA's
 * mmap_lock, then vmap_area_lock.
 */
export function remapVmallocRangePartial(
  vma: Vma,
  uaddr: number,
  kaddr: number,
  size: number,
): number {
  // 1: a live VMA of a kernel (the VMA's own)
  const ref = vmaFields(vma);
  if (ref === null) return -EINVAL;
  kernelEnter(ref.mem);
  try {
    return remapIn(ref, uaddr, kaddr, size);
  } finally {
    kernelExit(ref.mem);
  }
}

/** The body of remapVmallocRangePartial, inside a kernel call. */
function remapIn(vma: VmaRef, uaddr: number, kaddr: number, size: number): number {
  const { mem } = vma;
  const mm = vmaLoad(mem, vma.slot, VmaWord.MM) - 1;
  if (mm < 0) return -EINVAL;
  // lock first, then check: the VMA's generation and owner are re-read under the lock below, so
  // a stale VMA (or an mm slot freed or reused meanwhile) is refused there
  spinLock(mem, mmWord(mem, mm, Mm.LOCK));
  if ((mmLoad(mem, mm, Mm.GEN) & 1) === 0) {
    mmUnlock(mem, mm);
    return -EINVAL;
  }
  try {
    // under the mmap_lock a VMA of this mm cannot be freed: plain reads
    if (
      vmaGet(mem, vma.slot, VmaWord.GEN) !== vma.gen ||
      vmaGet(mem, vma.slot, VmaWord.MM) !== mm + 1
    ) {
      return -EINVAL;
    }
    // 2, 3: a positive safe size, rounded up to pages
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0) return -EINVAL;
    const nrPages = Math.ceil(size / PAGE_SIZE);
    // 4: aligned addresses
    if (!isPageAligned(uaddr) || !isPageAligned(kaddr)) return -EINVAL;
    const kpage = vmallocPageIndex(mem, kaddr);
    const upage = uaddr / PAGE_SIZE;
    const vmaStart = vmaGet(mem, vma.slot, VmaWord.START);
    const vmaEnd = vmaGet(mem, vma.slot, VmaWord.END);
    const pgd = mmGet(mem, mm, Mm.PGD);
    let area: number;
    let firstPfn = -1; // the frame of the first page, when the area is one contiguous run
    spinLock(mem, Hdr.VMAP_LOCK);
    try {
      // 5: a live area contains kaddr (its guard page counts as part of it)
      area = kpage < 0 ? -1 : areaOfPageLocked(mem, kpage);
      if (area < 0) return -EINVAL;
      // 6: remappable
      if ((areaGet(mem, area, Area.FLAGS) & VM_USERMAP) === 0) return -EINVAL;
      // 7: the range stays inside the area's backed pages
      const offset = kpage - areaGet(mem, area, Area.START);
      if (offset + nrPages > areaGet(mem, area, Area.NR_PAGES)) return -EINVAL;
      const contig = areaGet(mem, area, Area.CONTIG);
      if (contig !== 0) firstPfn = contig - 1 + offset;
      // pin the area for the PTEs to come: from now on vfree waits for this mmap_lock
      Atomics.add(mem.i32, areaWord(mem, area, Area.MAPCOUNT), nrPages);
    } finally {
      spinUnlock(mem, Hdr.VMAP_LOCK);
    }
    // 8: the user range lies inside the VMA; 9: no PTE there yet
    let errno = 0;
    if (upage < vmaStart || upage + nrPages > vmaEnd) errno = EFAULT;
    else if (anyPteLocked(mem, pgd, upage, upage + nrPages)) errno = EBUSY;
    if (errno !== 0) {
      Atomics.sub(mem.i32, areaWord(mem, area, Area.MAPCOUNT), nrPages); // unpin
      return -errno;
    }
    // 10: page tables for the whole range. From here on every change is logged, so that a thread
    // dying inside the call is undone by recovery (all or nothing, even then).
    txBegin(mem);
    // whole aligned 4 MiB slots of a contiguous run take one huge entry each, and no table
    const huge = hugeSlots(upage, nrPages, firstPfn);
    const tables = allocTablesLocked(mem, mm, pgd, upage, upage + nrPages, huge);
    if (tables < 0) {
      txCommit(mem);
      Atomics.sub(mem.i32, areaWord(mem, area, Area.MAPCOUNT), nrPages); // unpin
      return -ENOMEM;
    }
    // 11: install; the references are the area's MAPCOUNT taken above
    mmCount(mem, mm, Mm.NR_PT, tables);
    const prot = vmaGet(mem, vma.slot, VmaWord.PROT);
    const freedTables = installPtesLocked(
      mem,
      mm,
      pgd,
      upage,
      kpage,
      nrPages,
      prot,
      firstPfn,
      huge,
    );
    if (freedTables > 0) mmCount(mem, mm, Mm.NR_PT, -freedTables);
    mmCount(mem, mm, Mm.NR_PTES, nrPages);
    const flags = vmaGet(mem, vma.slot, VmaWord.FLAGS);
    const remapped = flags | VM_MIXEDMAP | VM_DONTEXPAND | VM_DONTDUMP;
    if (remapped !== flags) vmaSet(mem, vma.slot, VmaWord.FLAGS, remapped);
    txCommit(mem);
    return 0;
  } finally {
    mmUnlock(mem, mm);
  }
}

/** The project's name for {@link remapVmallocRangePartial}: the same function. */
export const remapPartial: typeof remapVmallocRangePartial = remapVmallocRangePartial;

/**
 * Map a whole VMA from `kaddr + pgoff * PAGE_SIZE` (`remap_vmalloc_range`). `pgoff` must be a
 * non-negative safe integer whose byte offset stays a safe integer, else `-EINVAL`; then the result
 * is that of {@link remapVmallocRangePartial}. Context: as remapVmallocRangePartial.
 */
export function remapVmallocRange(vma: Vma, kaddr: number, pgoff: number): number {
  const ref = vmaFields(vma);
  if (ref === null) return -EINVAL;
  if (typeof pgoff !== 'number' || !Number.isSafeInteger(pgoff) || pgoff < 0) return -EINVAL;
  const offset = pgoff * PAGE_SIZE;
  if (
    !Number.isSafeInteger(offset) ||
    typeof kaddr !== 'number' ||
    !Number.isSafeInteger(kaddr + offset)
  ) {
    return -EINVAL;
  }
  // the bounds through a handle of our own making: no caller getter runs
  const own = new Vma(ref.mem, ref.slot, ref.gen);
  if (!own.live) return -EINVAL;
  return remapVmallocRangePartial(own, own.start, kaddr + offset, own.end - own.start);
}
