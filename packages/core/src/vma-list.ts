/**
 * The VMA list of one address space: lookup, link, unlink, free ranges, the per-mm VMA limit.
 *
 * Kernel counterparts: `find_vma`, `vma_link`/`vma_iter_store` (`mm/vma.c`, over Linux's maple
 * tree), `vm_unmapped_area` (`mm/mmap.c`, top-down), `sysctl_max_map_count` (`mm/mmap.c`).
 *
 * An address space's VMAs are a singly linked list sorted by address (`Mm.VMA_HEAD`,
 * `VmaWord.NEXT`). Every function here runs with the address space's **mmap_lock** held; its
 * writes go through `vmaSet`/`mmSet`, so inside a transaction they are logged for undo.
 *
 * @module
 */
import { PAGE_SIZE } from './errno.js';
import { Hdr, Mm, TASK_SIZE, VmaWord } from './layout.js';
import { mmCount, mmGet, mmSet } from './mm.js';
import type { PhysMem } from './phys-mem.js';
import { vmaGet, vmaSet } from './vma.js';
import { bug } from './bug.js';

/** User pages in the 4 GiB user address space. */
export const TASK_PAGES: number = TASK_SIZE / PAGE_SIZE;
/** The lowest page `mmap` may use: page 0 is never mapped. */
export const FIRST_USER_PAGE = 1;

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

/** Unlink VMA slot `slot` from the mm's list (the caller releases it after the commit). */
export function unlinkLocked(mem: PhysMem, mm: number, slot: number): void {
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

/** What a new VMA record holds besides its bounds. */
export interface VmaAttrs {
  readonly prot: number;
  readonly flags: number;
  /** The mapped object (`VmaWord.ANON`). */
  readonly anon: number;
  /** `vm_pgoff` of the VMA's first page. */
  readonly pgoff: number;
}

/** The attributes of VMA `v`, with its page offset advanced to page `at` of it. */
export function vmaAttrsAt(mem: PhysMem, v: number, at: number): VmaAttrs {
  return {
    prot: vmaGet(mem, v, VmaWord.PROT),
    flags: vmaGet(mem, v, VmaWord.FLAGS),
    anon: vmaGet(mem, v, VmaWord.ANON),
    pgoff: vmaGet(mem, v, VmaWord.PGOFF) + (at - vmaGet(mem, v, VmaWord.START)),
  };
}

/** Fill a fresh VMA slot with `[start, end)` and `attrs`, and link it. */
export function newVmaLocked(
  mem: PhysMem,
  mm: number,
  slot: number,
  start: number,
  end: number,
  attrs: VmaAttrs,
): void {
  vmaSet(mem, slot, VmaWord.MM, mm + 1);
  vmaSet(mem, slot, VmaWord.START, start);
  vmaSet(mem, slot, VmaWord.END, end);
  vmaSet(mem, slot, VmaWord.PROT, attrs.prot);
  vmaSet(mem, slot, VmaWord.FLAGS, attrs.flags);
  vmaSet(mem, slot, VmaWord.ANON, attrs.anon);
  vmaSet(mem, slot, VmaWord.PGOFF, attrs.pgoff);
  linkLocked(mem, mm, slot);
}

/** Move VMA `v`'s start up to page `start`, its page offset with it. */
export function trimStartLocked(mem: PhysMem, v: number, start: number): void {
  const delta = start - vmaGet(mem, v, VmaWord.START);
  vmaSet(mem, v, VmaWord.START, start);
  vmaSet(mem, v, VmaWord.PGOFF, vmaGet(mem, v, VmaWord.PGOFF) + delta);
}

/** A new object id for an mmap of `mm` (`VmaWord.ANON`). */
export function newAnonLocked(mem: PhysMem, mm: number): number {
  const id = (mmGet(mem, mm, Mm.NEXT_ANON) + 1) | 0;
  mmSet(mem, mm, Mm.NEXT_ANON, id);
  return id;
}

/** The first VMA (slot) of `mm` that ends above `page`, or -1 (`find_vma`). */
export function vmaAfterLocked(mem: PhysMem, mm: number, page: number): number {
  for (let cur = mmGet(mem, mm, Mm.VMA_HEAD); cur !== 0; cur = vmaGet(mem, cur - 1, VmaWord.NEXT)) {
    if (vmaGet(mem, cur - 1, VmaWord.END) > page) return cur - 1;
  }
  return -1;
}

/** The VMA (slot) of `mm` containing `page`, or -1 (`vma_lookup`). */
export function vmaAtLocked(mem: PhysMem, mm: number, page: number): number {
  const v = vmaAfterLocked(mem, mm, page);
  return v >= 0 && vmaGet(mem, v, VmaWord.START) <= page ? v : -1;
}

/** The VMA after `v` in address order, or -1. */
export function nextVma(mem: PhysMem, v: number): number {
  return vmaGet(mem, v, VmaWord.NEXT) - 1;
}

/** The VMAs of `mm` that overlap `[start, end)`, in address order. */
export function overlappingLocked(mem: PhysMem, mm: number, start: number, end: number): number[] {
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

/** True if no VMA overlaps `[start, end)` (pages). */
export function rangeFreeLocked(mem: PhysMem, mm: number, start: number, end: number): boolean {
  const v = vmaAfterLocked(mem, mm, start);
  return v < 0 || vmaGet(mem, v, VmaWord.START) >= end;
}

/**
 * The highest free range of `pages` pages starting at a multiple of `align` pages
 * (`vm_unmapped_area`, top-down), or -1.
 */
export function unmappedAreaLocked(mem: PhysMem, mm: number, pages: number, align = 1): number {
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
 * True if `mm` may hold `more` VMAs beyond the ones it has (`vm.max_map_count`): a call that needs
 * new VMA records while the address space already holds `kernel.maxMapCount` fails with -ENOMEM.
 */
export function mapCountAllowsLocked(mem: PhysMem, mm: number, more: number): boolean {
  return (
    more === 0 || mmGet(mem, mm, Mm.NR_VMAS) + more <= Atomics.load(mem.i32, Hdr.MAX_MAP_COUNT)
  );
}
