/**
 * mmap, munmap and mprotect on one address space's VMA list.
 *
 * Kernel counterparts: `do_mmap`/`vm_unmapped_area` and `do_vmi_munmap` (`mm/mmap.c`,
 * `mm/vma.c`), `do_mprotect_pkey` (`mm/mprotect.c`).
 *
 * Every function here runs with the address space's **mmap_lock** held and is all or nothing: the
 * VMA slots a split needs are reserved before anything changes, so an error leaves the VMA list,
 * the PTEs and the frame references exactly as they were.
 *
 * A split keeps the existing slot for the lowest remaining part (its `Vma` handle stays live and
 * reads the new bounds) and takes a new slot for each part above it:
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
  EINVAL,
  ENOMEM,
  EPERM,
  MAP_FIXED,
  MAP_SHARED,
  PAGE_SHIFT,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
} from './errno.js';
import { Mm, TASK_SIZE, VmaWord } from './layout.js';
import { mmGet, mmSet, vmaSlotsLocked } from './mm.js';
import { changeProtLocked, zapPtesLocked } from './page-table.js';
import type { PhysMem } from './phys-mem.js';
import { releaseVmaSlots, reserveVmaSlots, vmaGet, vmaSet } from './vma.js';

/** User pages in the 4 GiB user address space. */
const TASK_PAGES = TASK_SIZE / PAGE_SIZE;
/** The lowest page `mmap` may use: page 0 is never mapped. */
const FIRST_USER_PAGE = 1;
const KNOWN_PROT = PROT_READ | PROT_WRITE;
const KNOWN_MAP_FLAGS = MAP_SHARED | MAP_FIXED;

/** True for a valid `PROT_*` combination. */
export function validProt(prot: unknown): prot is number {
  return (
    typeof prot === 'number' && Number.isInteger(prot) && (prot & ~KNOWN_PROT) === 0 && prot >= 0
  );
}

/** The `VM_*` VMA flags of a protection (`calc_vm_prot_bits`). */
function protFlags(prot: number): number {
  let flags = 0;
  if (prot & (PROT_READ | PROT_WRITE)) flags |= VM_READ;
  if (prot & PROT_WRITE) flags |= VM_WRITE;
  return flags;
}

function setProt(mem: PhysMem, slot: number, prot: number): void {
  vmaSet(mem, slot, VmaWord.PROT, prot);
  const flags = vmaGet(mem, slot, VmaWord.FLAGS) & ~(VM_READ | VM_WRITE);
  vmaSet(mem, slot, VmaWord.FLAGS, flags | protFlags(prot));
}

/** Link VMA slot `slot` into the mm's sorted list. */
function linkLocked(mem: PhysMem, mm: number, slot: number): void {
  const start = vmaGet(mem, slot, VmaWord.START);
  let prev = 0;
  let cur = mmGet(mem, mm, Mm.VMA_HEAD);
  while (cur !== 0 && vmaGet(mem, cur - 1, VmaWord.START) < start) {
    prev = cur;
    cur = vmaGet(mem, cur - 1, VmaWord.NEXT);
  }
  vmaSet(mem, slot, VmaWord.NEXT, cur);
  if (prev === 0) mmSet(mem, mm, Mm.VMA_HEAD, slot + 1);
  else vmaSet(mem, prev - 1, VmaWord.NEXT, slot + 1);
  mmSet(mem, mm, Mm.NR_VMAS, mmGet(mem, mm, Mm.NR_VMAS) + 1);
}

/** Unlink VMA slot `slot` from the mm's list. */
function unlinkLocked(mem: PhysMem, mm: number, slot: number): void {
  let prev = 0;
  let cur = mmGet(mem, mm, Mm.VMA_HEAD);
  while (cur !== 0 && cur !== slot + 1) {
    prev = cur;
    cur = vmaGet(mem, cur - 1, VmaWord.NEXT);
  }
  if (cur === 0) throw new Error(`unlinkLocked: VMA slot ${slot} is not on mm ${mm}'s list`);
  const next = vmaGet(mem, slot, VmaWord.NEXT);
  if (prev === 0) mmSet(mem, mm, Mm.VMA_HEAD, next);
  else vmaSet(mem, prev - 1, VmaWord.NEXT, next);
  mmSet(mem, mm, Mm.NR_VMAS, mmGet(mem, mm, Mm.NR_VMAS) - 1);
}

/** Fill a fresh VMA slot and link it. */
function newVmaLocked(
  mem: PhysMem,
  mm: number,
  slot: number,
  start: number,
  end: number,
  prot: number,
  flags: number,
): void {
  vmaSet(mem, slot, VmaWord.MM, mm + 1);
  vmaSet(mem, slot, VmaWord.START, start);
  vmaSet(mem, slot, VmaWord.END, end);
  vmaSet(mem, slot, VmaWord.PROT, prot);
  vmaSet(mem, slot, VmaWord.FLAGS, flags);
  linkLocked(mem, mm, slot);
}

/** True if no VMA overlaps `[start, end)` (pages). */
function rangeFreeLocked(mem: PhysMem, mm: number, start: number, end: number): boolean {
  for (const v of vmaSlotsLocked(mem, mm)) {
    if (vmaGet(mem, v, VmaWord.START) < end && vmaGet(mem, v, VmaWord.END) > start) return false;
  }
  return true;
}

/** The highest free range of `pages` pages (`vm_unmapped_area`, top-down), or -1. */
function unmappedAreaLocked(mem: PhysMem, mm: number, pages: number): number {
  let best = -1;
  let gapStart = FIRST_USER_PAGE;
  for (const v of vmaSlotsLocked(mem, mm)) {
    const s = vmaGet(mem, v, VmaWord.START);
    if (s - gapStart >= pages) best = s - pages;
    gapStart = Math.max(gapStart, vmaGet(mem, v, VmaWord.END));
  }
  if (TASK_PAGES - gapStart >= pages) best = TASK_PAGES - pages;
  return best;
}

/** VMA slots a munmap of `[start, end)` needs: 1 when it punches a hole inside one VMA. */
function unmapSlotsNeeded(mem: PhysMem, mm: number, start: number, end: number): number {
  for (const v of vmaSlotsLocked(mem, mm)) {
    if (vmaGet(mem, v, VmaWord.START) < start && vmaGet(mem, v, VmaWord.END) > end) return 1;
  }
  return 0;
}

/**
 * Unmap `[start, end)` (pages): zap the PTEs, drop their references, shrink, split or free VMAs.
 * `spare` holds the slot a middle split needs. Returns the VMA slots to release after unlock.
 */
function unmapLocked(
  mem: PhysMem,
  mm: number,
  start: number,
  end: number,
  spare: number[],
): number[] {
  const pgd = mmGet(mem, mm, Mm.PGD);
  const freed: number[] = [];
  for (const v of vmaSlotsLocked(mem, mm)) {
    const vs = vmaGet(mem, v, VmaWord.START);
    const ve = vmaGet(mem, v, VmaWord.END);
    if (ve <= start || vs >= end) continue;
    const cleared = zapPtesLocked(mem, pgd, Math.max(vs, start), Math.min(ve, end));
    mmSet(mem, mm, Mm.NR_PTES, mmGet(mem, mm, Mm.NR_PTES) - cleared);
    if (vs >= start && ve <= end) {
      unlinkLocked(mem, mm, v);
      freed.push(v);
    } else if (vs < start && ve > end) {
      const upper = spare.pop();
      if (upper === undefined) throw new Error('unmapLocked: no spare VMA slot for a split');
      vmaSet(mem, v, VmaWord.END, start);
      newVmaLocked(
        mem,
        mm,
        upper,
        end,
        ve,
        vmaGet(mem, v, VmaWord.PROT),
        vmaGet(mem, v, VmaWord.FLAGS),
      );
    } else if (vs < start) {
      vmaSet(mem, v, VmaWord.END, start);
    } else {
      vmaSet(mem, v, VmaWord.START, end);
    }
  }
  return freed;
}

/** Is `n` a safe integer? */
function isSafe(n: unknown): n is number {
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
  if (!isSafe(flags) || (flags & MAP_SHARED) === 0 || (flags & ~KNOWN_MAP_FLAGS) !== 0)
    return -EINVAL;
  if (!isSafe(length) || length <= 0) return -EINVAL;
  if (!validProt(prot)) return -EINVAL;
  if (!isSafe(addr) || addr < 0) return -EINVAL;
  const fixed = (flags & MAP_FIXED) !== 0;
  if (fixed && addr % PAGE_SIZE !== 0) return -EINVAL;
  if (length > TASK_SIZE) return -ENOMEM;
  const pages = Math.ceil(length / PAGE_SIZE);
  let start: number;
  let spare: number[] = [];
  if (fixed) {
    if (addr === 0) return -EPERM;
    start = addr / PAGE_SIZE;
    if (start + pages > TASK_PAGES) return -ENOMEM;
  } else {
    const hint = addr % PAGE_SIZE === 0 ? addr / PAGE_SIZE : 0;
    if (
      hint >= FIRST_USER_PAGE &&
      hint + pages <= TASK_PAGES &&
      rangeFreeLocked(mem, mm, hint, hint + pages)
    ) {
      start = hint;
    } else {
      start = unmappedAreaLocked(mem, mm, pages);
      if (start < 0) return -ENOMEM;
    }
  }
  const needed = 1 + (fixed ? unmapSlotsNeeded(mem, mm, start, start + pages) : 0);
  const slots = reserveVmaSlots(mem, needed);
  if (slots === null) return -ENOMEM;
  const slot = slots.pop()!;
  spare = slots;
  let freed: number[] = [];
  if (fixed) freed = unmapLocked(mem, mm, start, start + pages, spare);
  newVmaLocked(mem, mm, slot, start, start + pages, prot, VM_SHARED | protFlags(prot));
  releaseVmaSlots(mem, freed);
  return start * PAGE_SIZE;
}

/** `munmap(addr, length)`: 0 or `-errno`. Context: the mm's mmap_lock held. */
export function munmapLocked(mem: PhysMem, mm: number, addr: unknown, length: unknown): number {
  if (!isSafe(addr) || addr < 0 || addr % PAGE_SIZE !== 0) return -EINVAL;
  if (!isSafe(length) || length <= 0) return -EINVAL;
  if (length > TASK_SIZE || addr > TASK_SIZE - length) return -EINVAL;
  const start = addr / PAGE_SIZE;
  const end = start + Math.ceil(length / PAGE_SIZE);
  const spare = reserveVmaSlots(mem, unmapSlotsNeeded(mem, mm, start, end));
  if (spare === null) return -ENOMEM;
  const freed = unmapLocked(mem, mm, start, end, spare);
  releaseVmaSlots(mem, freed);
  return 0;
}

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
  // the range must be covered with no hole, and each VMA cut at start and end needs a slot
  let covered = start;
  let needed = 0;
  for (const v of vmaSlotsLocked(mem, mm)) {
    const vs = vmaGet(mem, v, VmaWord.START);
    const ve = vmaGet(mem, v, VmaWord.END);
    if (ve <= start || vs >= end) continue;
    if (vs > covered) return -ENOMEM;
    covered = ve;
    if (vs < start) needed++;
    if (ve > end) needed++;
  }
  if (covered < end) return -ENOMEM;
  const spare = reserveVmaSlots(mem, needed);
  if (spare === null) return -ENOMEM;
  for (const v of vmaSlotsLocked(mem, mm)) {
    const vs = vmaGet(mem, v, VmaWord.START);
    const ve = vmaGet(mem, v, VmaWord.END);
    if (ve <= start || vs >= end) continue;
    const oldProt = vmaGet(mem, v, VmaWord.PROT);
    const flags = vmaGet(mem, v, VmaWord.FLAGS);
    const midStart = Math.max(vs, start);
    const midEnd = Math.min(ve, end);
    if (vs < start) {
      vmaSet(mem, v, VmaWord.END, start);
      newVmaLocked(mem, mm, spare.pop()!, midStart, midEnd, oldProt, flags);
    } else {
      vmaSet(mem, v, VmaWord.END, midEnd);
    }
    if (ve > end) newVmaLocked(mem, mm, spare.pop()!, end, ve, oldProt, flags);
  }
  // now every VMA inside [start, end) is exactly one of the pieces: give them the new protection
  for (const v of vmaSlotsLocked(mem, mm)) {
    const vs = vmaGet(mem, v, VmaWord.START);
    if (vs >= start && vmaGet(mem, v, VmaWord.END) <= end) setProt(mem, v, prot);
  }
  changeProtLocked(mem, mmGet(mem, mm, Mm.PGD), start, end, prot);
  return 0;
}

/** User page of a user address. */
export function userPage(uaddr: number): number {
  return Math.floor(uaddr / 2 ** PAGE_SHIFT);
}
