/**
 * mmap and munmap on one address space's VMA list.
 *
 * Kernel counterparts: `do_mmap`/`get_unmapped_area` and `do_vmi_munmap` (`mm/mmap.c`,
 * `mm/vma.c`). mprotect is in mprotect.ts, mremap in mremap.ts, madvise in madvise.ts.
 *
 * Every function here runs with the address space's **mmap_lock** held and is all or nothing: the
 * VMA slots a split needs are reserved before anything changes, so an error leaves the VMA list,
 * the PTEs and the frame references exactly as they were.
 *
 * A split keeps the existing slot for the lowest remaining part (its `Vma` handle stays live and
 * reads the new bounds) and takes a new slot for each part above it; a piece keeps the object
 * (`VmaWord.ANON`) and its offset in it (`VmaWord.PGOFF`), so that pieces can merge again
 * (vma-merge.ts):
 *
 * ```
 *   munmap [s, e) inside one VMA:     mprotect [s, e) inside one VMA:
 *   ├──── vma ────┤                   ├────────── vma ──────────┤
 *   ├ vma ┤░░░░░░░├ new ┤             ├ vma ┤ new (prot) ├ new ┤
 *         s       e                         s            e
 * ```
 *
 * @module
 */
import {
  EEXIST,
  EINVAL,
  ENOMEM,
  EPERM,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
} from './errno.js';
import { HPAGE_PAGES, Mm, TASK_SIZE, VmaWord } from './layout.js';
import { mmCount, mmGet } from './mm.js';
import { splitHugeEdgesLocked, zapPtesLocked } from './page-table.js';
import { tlbFlushBegin, tlbFlushEnd } from './pgtable.js';
import type { PhysMem } from './phys-mem.js';
import { waitForCopies } from './user-access.js';
import { txBegin, txCommit } from './undo.js';
import {
  FIRST_USER_PAGE,
  mapCountAllowsLocked,
  newAnonLocked,
  newVmaLocked,
  nextVma,
  overlappingLocked,
  rangeFreeLocked,
  TASK_PAGES,
  trimStartLocked,
  unlinkLocked,
  unmappedAreaLocked,
  vmaAfterLocked,
  vmaAttrsAt,
} from './vma-list.js';
import { releaseVmaSlots, reserveVmaSlots, vmaGet, vmaSet } from './vma.js';
import { bug } from './bug.js';

const KNOWN_PROT = PROT_READ | PROT_WRITE;
const KNOWN_MAP_FLAGS = MAP_SHARED | MAP_FIXED | MAP_FIXED_NOREPLACE;

/** True for a valid `PROT_*` combination. */
export function validProt(prot: unknown): prot is number {
  // a range check before any bit test: bitwise operators would truncate 2^53 to 0
  return typeof prot === 'number' && Number.isInteger(prot) && prot >= 0 && prot <= KNOWN_PROT;
}

/**
 * The `VM_*` VMA flags of a protection (`calc_vm_prot_bits`): `PROT_WRITE` alone is `VM_WRITE`
 * without `VM_READ` (its PTEs still let reads through, as on x86).
 */
export function protFlags(prot: number): number {
  let flags = 0;
  if (prot & PROT_READ) flags |= VM_READ;
  if (prot & PROT_WRITE) flags |= VM_WRITE;
  return flags;
}

/**
 * Split the huge entries that the edges of `[start, end)` cut (see `splitHugeEdgesLocked`) and
 * count the tables made. False, with nothing split, when no frame is left for a table.
 */
export function splitEdgesLocked(mem: PhysMem, mm: number, start: number, end: number): boolean {
  const made = splitHugeEdgesLocked(mem, mm, mmGet(mem, mm, Mm.PGD), start, end);
  if (made < 0) return false;
  if (made > 0) mmCount(mem, mm, Mm.NR_PT, made);
  return true;
}

/** VMA slots a munmap of `[start, end)` needs: 1 when it punches a hole inside one VMA. */
export function unmapSlotsNeeded(mem: PhysMem, mm: number, start: number, end: number): number {
  const v = vmaAfterLocked(mem, mm, start);
  return v >= 0 && vmaGet(mem, v, VmaWord.START) < start && vmaGet(mem, v, VmaWord.END) > end
    ? 1
    : 0;
}

/**
 * Unmap `[start, end)` (pages) from the VMA list: shrink, split or unlink VMAs; PTEs are left to
 * the caller. `spare` holds the slot a middle split needs. Returns the VMA slots to release.
 * Context: the mm's mmap_lock held, inside a transaction.
 */
export function unmapVmasLocked(
  mem: PhysMem,
  mm: number,
  start: number,
  end: number,
  spare: number[],
): number[] {
  const freed: number[] = [];
  for (const v of overlappingLocked(mem, mm, start, end)) {
    const vs = vmaGet(mem, v, VmaWord.START);
    const ve = vmaGet(mem, v, VmaWord.END);
    if (ve <= start || vs >= end) continue;
    if (vs >= start && ve <= end) {
      unlinkLocked(mem, mm, v);
      freed.push(v);
    } else if (vs < start && ve > end) {
      const upper = spare.pop();
      if (upper === undefined) bug('unmapVmasLocked: no spare VMA slot for a split');
      vmaSet(mem, v, VmaWord.END, start);
      newVmaLocked(mem, mm, upper, end, ve, vmaAttrsAt(mem, v, end));
    } else if (vs < start) {
      vmaSet(mem, v, VmaWord.END, start);
    } else {
      trimStartLocked(mem, v, end);
    }
  }
  return freed;
}

/** VMAs one transaction may change, so that every change fits the thread's undo log. */
const VMAS_PER_TX = 16;

/** The end of the first piece of `[start, end)` that touches at most VMAS_PER_TX VMAs. */
export function chunkEnd(mem: PhysMem, mm: number, start: number, end: number): number {
  let n = 0;
  for (
    let v = vmaAfterLocked(mem, mm, start);
    v >= 0 && vmaGet(mem, v, VmaWord.START) < end;
    v = nextVma(mem, v)
  ) {
    if (++n === VMAS_PER_TX) return Math.min(vmaGet(mem, v, VmaWord.END), end);
  }
  return end;
}

/**
 * Unmap `[start, end)`: each piece's VMA changes are one transaction (undone if the thread dies
 * inside it); once committed, the piece's PTEs are zapped and their references dropped (a dead
 * thread's zap is completed by recovery, which clears every PTE outside a VMA).
 * Context: the mm's mmap_lock held; the slots for a split are in `spare`.
 */
export function unmapRangeLocked(
  mem: PhysMem,
  mm: number,
  start: number,
  end: number,
  spare: number[],
): void {
  const pgd = mmGet(mem, mm, Mm.PGD);
  for (let s = start; s < end;) {
    const e = chunkEnd(mem, mm, s, end);
    txBegin(mem);
    const freed = unmapVmasLocked(mem, mm, s, e, spare);
    txCommit(mem);
    tlbFlushBegin(mem, mm);
    let cleared: number;
    try {
      cleared = zapPtesLocked(mem, pgd, s, e);
    } finally {
      tlbFlushEnd(mem, mm); // even after a kernel bug: the generation must not stay odd
    }
    mmCount(mem, mm, Mm.NR_PTES, -cleared);
    releaseVmaSlots(mem, freed);
    s = e;
  }
  // as Linux's TLB shootdown: copies checked against the old PTEs have landed before we return
  waitForCopies(mem, mm);
}

/** Is `n` a safe integer? */
export function isSafe(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n);
}

/**
 * `mmap(addr, length, prot, flags)`: reserve a VMA with no pages in it. Returns the user address or
 * `-errno`. Context: the mm's mmap_lock held.
 */
export function mmapLocked(
  mem: PhysMem,
  mm: number,
  addr: unknown,
  length: unknown,
  prot: unknown,
  flags: unknown,
): number {
  // a range check before any bit test: bitwise operators would truncate large values
  if (!isSafe(flags) || flags < 0 || flags > KNOWN_MAP_FLAGS) return -EINVAL;
  if ((flags & MAP_SHARED) === 0 || (flags & ~KNOWN_MAP_FLAGS) !== 0) return -EINVAL;
  if (!isSafe(length) || length <= 0) return -EINVAL;
  if (!validProt(prot)) return -EINVAL;
  if (!isSafe(addr) || addr < 0) return -EINVAL;
  const noReplace = (flags & MAP_FIXED_NOREPLACE) !== 0;
  const fixed = noReplace || (flags & MAP_FIXED) !== 0;
  if (fixed && addr % PAGE_SIZE !== 0) return -EINVAL;
  if (length > TASK_SIZE) return -ENOMEM;
  const pages = Math.ceil(length / PAGE_SIZE);
  let start: number;
  if (fixed) {
    if (addr === 0) return -EPERM;
    start = addr / PAGE_SIZE;
    if (start + pages > TASK_PAGES) return -ENOMEM;
    // MAP_FIXED_NOREPLACE: anything mapped in the range is an error, and nothing changes
    if (noReplace && !rangeFreeLocked(mem, mm, start, start + pages)) return -EEXIST;
  } else {
    start = hintedAreaLocked(mem, mm, addr, pages);
    if (start < 0) return -ENOMEM;
  }
  const needed = 1 + (fixed ? unmapSlotsNeeded(mem, mm, start, start + pages) : 0);
  if (!mapCountAllowsLocked(mem, mm, needed)) return -ENOMEM;
  const slots = reserveVmaSlots(mem, needed);
  if (slots === null) return -ENOMEM;
  if (fixed && !splitEdgesLocked(mem, mm, start, start + pages)) {
    releaseVmaSlots(mem, slots);
    return -ENOMEM;
  }
  const slot = slots.pop()!;
  if (fixed) unmapRangeLocked(mem, mm, start, start + pages, slots);
  txBegin(mem);
  // a new object: separate shared mappings never merge (each is its own shmem file in Linux)
  const attrs = {
    prot,
    flags: VM_SHARED | protFlags(prot),
    anon: newAnonLocked(mem, mm),
    pgoff: 0,
  };
  newVmaLocked(mem, mm, slot, start, start + pages, attrs);
  txCommit(mem);
  return start * PAGE_SIZE;
}

/**
 * Where an mmap without MAP_FIXED goes (`get_unmapped_area`): at the hint, rounded up to a page
 * boundary, if that range is free; else the highest free range (slot-aligned for a length of
 * whole 4 MiB slots, when one is). -1 when nothing is free.
 */
export function hintedAreaLocked(mem: PhysMem, mm: number, addr: number, pages: number): number {
  const hint = Math.ceil(addr / PAGE_SIZE);
  if (
    hint >= FIRST_USER_PAGE &&
    hint + pages <= TASK_PAGES &&
    rangeFreeLocked(mem, mm, hint, hint + pages)
  ) {
    return hint;
  }
  // a length of whole 4 MiB slots gets a slot-aligned range when one is free, so that a remap
  // of a large area can use huge entries (as Linux aligns such mappings to PMD_SIZE)
  const aligned = pages % HPAGE_PAGES === 0 ? unmappedAreaLocked(mem, mm, pages, HPAGE_PAGES) : -1;
  return aligned >= 0 ? aligned : unmappedAreaLocked(mem, mm, pages);
}

/** `munmap(addr, length)`: 0 or `-errno`. Context: the mm's mmap_lock held. */
export function munmapLocked(mem: PhysMem, mm: number, addr: unknown, length: unknown): number {
  if (!isSafe(addr) || addr < 0 || addr % PAGE_SIZE !== 0) return -EINVAL;
  if (!isSafe(length) || length <= 0) return -EINVAL;
  if (length > TASK_SIZE || addr > TASK_SIZE - length) return -EINVAL;
  const start = addr / PAGE_SIZE;
  const end = start + Math.ceil(length / PAGE_SIZE);
  const needed = unmapSlotsNeeded(mem, mm, start, end);
  if (!mapCountAllowsLocked(mem, mm, needed)) return -ENOMEM;
  const spare = reserveVmaSlots(mem, needed);
  if (spare === null) return -ENOMEM;
  if (!splitEdgesLocked(mem, mm, start, end)) {
    releaseVmaSlots(mem, spare);
    return -ENOMEM;
  }
  unmapRangeLocked(mem, mm, start, end, spare);
  return 0;
}
