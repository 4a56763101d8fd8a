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
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
} from './errno.js';
import { Mm, TASK_SIZE, VmaWord } from './layout.js';
import { mmCount, mmGet, mmSet } from './mm.js';
import {
  changeProtLocked,
  HPAGE_PAGES,
  splitHugeEdgesLocked,
  tlbFlushBegin,
  tlbFlushEnd,
  zapPtesLocked,
} from './page-table.js';
import type { PhysMem } from './phys-mem.js';
import { waitForCopies } from './user-access.js';
import { txBegin, txCommit } from './thread.js';
import { releaseVmaSlots, reserveVmaSlots, vmaGet, vmaSet } from './vma.js';
import { bug } from './bug.js';

/** User pages in the 4 GiB user address space. */
const TASK_PAGES = TASK_SIZE / PAGE_SIZE;
/** The lowest page `mmap` may use: page 0 is never mapped. */
const FIRST_USER_PAGE = 1;
const KNOWN_PROT = PROT_READ | PROT_WRITE;
const KNOWN_MAP_FLAGS = MAP_SHARED | MAP_FIXED;

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
  mmCount(mem, mm, Mm.NR_VMAS, 1);
}

/** Unlink VMA slot `slot` from the mm's list. */
function unlinkLocked(mem: PhysMem, mm: number, slot: number): void {
  let prev = 0;
  let cur = mmGet(mem, mm, Mm.VMA_HEAD);
  while (cur !== 0 && cur !== slot + 1) {
    prev = cur;
    cur = vmaGet(mem, cur - 1, VmaWord.NEXT);
  }
  if (cur === 0) bug(`unlinkLocked: VMA slot ${slot} is not on mm ${mm}'s list`);
  const next = vmaGet(mem, slot, VmaWord.NEXT);
  if (prev === 0) mmSet(mem, mm, Mm.VMA_HEAD, next);
  else vmaSet(mem, prev - 1, VmaWord.NEXT, next);
  mmCount(mem, mm, Mm.NR_VMAS, -1);
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

/** The first VMA (slot) of `mm` that ends above `page`, or -1 (`find_vma`). */
export function vmaAfterLocked(mem: PhysMem, mm: number, page: number): number {
  for (let cur = mmGet(mem, mm, Mm.VMA_HEAD); cur !== 0; cur = vmaGet(mem, cur - 1, VmaWord.NEXT)) {
    if (vmaGet(mem, cur - 1, VmaWord.END) > page) return cur - 1;
  }
  return -1;
}

/** The VMAs of `mm` that overlap `[start, end)`, in address order. */
function overlappingLocked(mem: PhysMem, mm: number, start: number, end: number): number[] {
  const out: number[] = [];
  for (
    let v = vmaAfterLocked(mem, mm, start);
    v >= 0 && vmaGet(mem, v, VmaWord.START) < end;
    v = nextVma(mem, v)
  ) {
    out.push(v);
  }
  return out;
}

/** The VMA after `v` in address order, or -1. */
function nextVma(mem: PhysMem, v: number): number {
  return vmaGet(mem, v, VmaWord.NEXT) - 1;
}

/** True if no VMA overlaps `[start, end)` (pages). */
function rangeFreeLocked(mem: PhysMem, mm: number, start: number, end: number): boolean {
  const v = vmaAfterLocked(mem, mm, start);
  return v < 0 || vmaGet(mem, v, VmaWord.START) >= end;
}

/**
 * The highest free range of `pages` pages starting at a multiple of `align` pages
 * (`vm_unmapped_area`, top-down), or -1.
 */
function unmappedAreaLocked(mem: PhysMem, mm: number, pages: number, align = 1): number {
  let best = -1;
  let gapStart = FIRST_USER_PAGE;
  const fit = (gapEnd: number): void => {
    const at = Math.floor((gapEnd - pages) / align) * align;
    if (at >= gapStart) best = at;
  };
  for (let v = vmaAfterLocked(mem, mm, 0); v >= 0; v = nextVma(mem, v)) {
    fit(vmaGet(mem, v, VmaWord.START));
    gapStart = Math.max(gapStart, vmaGet(mem, v, VmaWord.END));
  }
  fit(TASK_PAGES);
  return best;
}

/**
 * Split the huge entries that the edges of `[start, end)` cut (see `splitHugeEdgesLocked`) and
 * count the tables made. False, with nothing split, when no frame is left for a table.
 */
function splitEdgesLocked(mem: PhysMem, mm: number, start: number, end: number): boolean {
  const made = splitHugeEdgesLocked(mem, mm, mmGet(mem, mm, Mm.PGD), start, end);
  if (made < 0) return false;
  if (made > 0) mmCount(mem, mm, Mm.NR_PT, made);
  return true;
}

/** VMA slots a munmap of `[start, end)` needs: 1 when it punches a hole inside one VMA. */
function unmapSlotsNeeded(mem: PhysMem, mm: number, start: number, end: number): number {
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
function unmapVmasLocked(
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
      const prot = vmaGet(mem, v, VmaWord.PROT);
      newVmaLocked(mem, mm, upper, end, ve, prot, vmaGet(mem, v, VmaWord.FLAGS));
    } else if (vs < start) {
      vmaSet(mem, v, VmaWord.END, start);
    } else {
      vmaSet(mem, v, VmaWord.START, end);
    }
  }
  return freed;
}

/** VMAs one transaction may change, so that every change fits the thread's undo log. */
const VMAS_PER_TX = 16;

/** The end of the first piece of `[start, end)` that touches at most VMAS_PER_TX VMAs. */
function chunkEnd(mem: PhysMem, mm: number, start: number, end: number): number {
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
function unmapRangeLocked(
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
  // a range check before any bit test: bitwise operators would truncate large values
  if (!isSafe(flags) || flags < 0 || flags > KNOWN_MAP_FLAGS) return -EINVAL;
  if ((flags & MAP_SHARED) === 0 || (flags & ~KNOWN_MAP_FLAGS) !== 0) return -EINVAL;
  if (!isSafe(length) || length <= 0) return -EINVAL;
  if (!validProt(prot)) return -EINVAL;
  if (!isSafe(addr) || addr < 0) return -EINVAL;
  const fixed = (flags & MAP_FIXED) !== 0;
  if (fixed && addr % PAGE_SIZE !== 0) return -EINVAL;
  if (length > TASK_SIZE) return -ENOMEM;
  const pages = Math.ceil(length / PAGE_SIZE);
  let start: number;
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
      // a length of whole 4 MiB slots gets a slot-aligned range when one is free, so that a remap
      // of a large area can use huge entries (as Linux aligns such mappings to PMD_SIZE)
      start = pages % HPAGE_PAGES === 0 ? unmappedAreaLocked(mem, mm, pages, HPAGE_PAGES) : -1;
      if (start < 0) start = unmappedAreaLocked(mem, mm, pages);
      if (start < 0) return -ENOMEM;
    }
  }
  const needed = 1 + (fixed ? unmapSlotsNeeded(mem, mm, start, start + pages) : 0);
  const slots = reserveVmaSlots(mem, needed);
  if (slots === null) return -ENOMEM;
  if (fixed && !splitEdgesLocked(mem, mm, start, start + pages)) {
    releaseVmaSlots(mem, slots);
    return -ENOMEM;
  }
  const slot = slots.pop()!;
  if (fixed) unmapRangeLocked(mem, mm, start, start + pages, slots);
  txBegin(mem);
  newVmaLocked(mem, mm, slot, start, start + pages, prot, VM_SHARED | protFlags(prot));
  txCommit(mem);
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
  if (!splitEdgesLocked(mem, mm, start, end)) {
    releaseVmaSlots(mem, spare);
    return -ENOMEM;
  }
  unmapRangeLocked(mem, mm, start, end, spare);
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
  for (const v of overlappingLocked(mem, mm, start, end)) {
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
  if (!splitEdgesLocked(mem, mm, start, end)) {
    releaseVmaSlots(mem, spare);
    return -ENOMEM;
  }
  const pgd = mmGet(mem, mm, Mm.PGD);
  for (let s = start; s < end;) {
    const e = chunkEnd(mem, mm, s, end);
    txBegin(mem);
    splitForProtLocked(mem, mm, s, e, prot, spare);
    txCommit(mem);
    // PTEs follow their VMA; a dead thread's half-done rewrite is finished by recovery
    tlbFlushBegin(mem, mm);
    try {
      changeProtLocked(mem, pgd, s, e, prot);
    } finally {
      tlbFlushEnd(mem, mm);
    }
    s = e;
  }
  waitForCopies(mem, mm); // copies checked against the old protection have landed
  return 0;
}

/**
 * Give `[start, end)` the protection `prot`, splitting the VMAs cut by either end (the existing
 * VMA keeps the lowest piece). Context: the mm's mmap_lock held, inside a transaction.
 */
function splitForProtLocked(
  mem: PhysMem,
  mm: number,
  start: number,
  end: number,
  prot: number,
  spare: number[],
): void {
  for (const v of overlappingLocked(mem, mm, start, end)) {
    const vs = vmaGet(mem, v, VmaWord.START);
    const ve = vmaGet(mem, v, VmaWord.END);
    if (ve <= start || vs >= end) continue;
    const oldProt = vmaGet(mem, v, VmaWord.PROT);
    const flags = vmaGet(mem, v, VmaWord.FLAGS);
    if (vs < start) {
      vmaSet(mem, v, VmaWord.END, start);
      newVmaLocked(mem, mm, spare.pop()!, start, Math.min(ve, end), oldProt, flags);
    } else if (ve > end) {
      vmaSet(mem, v, VmaWord.END, end);
    }
    if (ve > end) newVmaLocked(mem, mm, spare.pop()!, end, ve, oldProt, flags);
  }
  // every VMA inside [start, end) is now exactly one piece: give it the new protection
  for (const v of overlappingLocked(mem, mm, start, end)) {
    const vs = vmaGet(mem, v, VmaWord.START);
    if (vs >= start && vmaGet(mem, v, VmaWord.END) <= end) setProt(mem, v, prot);
  }
}
