/**
 * The address-space table and the mm record helpers: create, look up, lock, walk the VMA list.
 *
 * Kernel counterpart: `struct mm_struct`, `mm_alloc`/`mmput` (`kernel/fork.c`) and the
 * `mmap_lock`.
 *
 * ```
 *   mm slot (MM_WORDS, one cache line)
 *   ┌─────┬──────┬─────┬──────────┬─────────┬───────┬─────────┬───────────┬─────────┐
 *   │ GEN │ LOCK │ PGD │ VMA_HEAD │ NR_VMAS │ NR_PT │ NR_PTES │ NEXT_FREE │ TLB_GEN │
 *   └─────┴──────┴─────┴──────────┴─────────┴───────┴─────────┴───────────┴─────────┘
 * ```
 * - `GEN` (atomic): even = free, odd = live; bumped at create and at destroy. Handles and lock-free
 *   walkers compare it, so a destroyed or recycled address space is never trusted.
 * - `LOCK`: the **mmap_lock**; `PGD`, `VMA_HEAD`, `NR_*` and the mm's VMAs and PTEs are written
 *   only under it.
 * - `NEXT_FREE`: the free list, an llist (slots taken under **mm_table_lock**, given back
 *   lock-free).
 * - `TLB_GEN` (atomic, changed under the mmap_lock): a seqcount, odd while a munmap, mprotect or
 *   destroy takes pages or permissions away; lock-free walkers validate against it (pgtable.ts).
 *
 * @module
 */
import { allocFrame, ownerTag } from './frame-alloc.js';
import { FrameKind, Hdr, Mm, MM_WORDS, VmaWord } from './layout.js';
import { llistAdd, llistDelFirst } from './llist.js';
import { spinLock, spinUnlock } from './lock.js';
import { clearFrames, type PhysMem } from './phys-mem.js';
import { txStore } from './undo.js';
import { vmaGet } from './vma.js';

/** Index of an mm record's word. */
export function mmWord(mem: PhysMem, slot: number, word: Mm): number {
  return mem.mmTable + slot * MM_WORDS + word;
}

/** Read an mm word. Context: the mmap_lock held (a plain read: the lock orders it). */
export function mmGet(mem: PhysMem, slot: number, word: Mm): number {
  return mem.i32[mmWord(mem, slot, word)]!;
}

/** Read an mm word without the lock: an `Atomics.load` snapshot. Context: any thread. */
export function mmLoad(mem: PhysMem, slot: number, word: Mm): number {
  return Atomics.load(mem.i32, mmWord(mem, slot, word));
}

/**
 * Add to one of an mm's counters (`NR_*`), unlogged: recovery recounts them from the structures.
 * Context: the mmap_lock held.
 */
export function mmCount(
  mem: PhysMem,
  slot: number,
  word: Mm.NR_VMAS | Mm.NR_PT | Mm.NR_PTES,
  delta: number,
): void {
  mem.i32[mmWord(mem, slot, word)]! += delta;
}

/** Write an mm word (logged for undo inside a transaction). Context: the mmap_lock held. */
export function mmSet(mem: PhysMem, slot: number, word: Mm, value: number): void {
  txStore(mem, mmWord(mem, slot, word), value);
}

/** Boot-time setup: every mm slot free. Context: boot, before sharing. */
export function initMms(mem: PhysMem): void {
  const { maxAddressSpaces } = mem.layout;
  for (let slot = 0; slot < maxAddressSpaces; slot++) {
    mem.i32[mmWord(mem, slot, Mm.NEXT_FREE)] = slot + 1 < maxAddressSpaces ? slot + 2 : 0;
  }
  mem.i32[Hdr.MM_FREE_HEAD] = 1;
}

/**
 * Make a new address space (`mm_alloc` + `pgd_alloc`): a slot and a zeroed page directory.
 * Returns `[slot, gen]`, or null when the table is full or no frame is free.
 * Context: any thread; takes mm_table_lock.
 */
export function mmCreate(mem: PhysMem): [number, number] | null {
  const { i32 } = mem;
  const link = (slot: number): number => mmWord(mem, slot, Mm.NEXT_FREE);
  spinLock(mem, Hdr.MM_TABLE_LOCK);
  const slot = llistDelFirst(i32, Hdr.MM_FREE_HEAD, link);
  if (slot < 0) {
    spinUnlock(mem, Hdr.MM_TABLE_LOCK);
    return null;
  }
  const pgd = allocFrame(mem, ownerTag(FrameKind.PAGE_TABLE, slot));
  if (pgd < 0) {
    llistAdd(i32, Hdr.MM_FREE_HEAD, link(slot), slot);
    spinUnlock(mem, Hdr.MM_TABLE_LOCK);
    return null;
  }
  clearFrames(mem, pgd, 1); // zeroed before the generation publishes the mm
  Atomics.add(i32, Hdr.PT_FRAMES, 1);
  mmSet(mem, slot, Mm.NEXT_FREE, 0);
  mmSet(mem, slot, Mm.PGD, pgd);
  mmSet(mem, slot, Mm.VMA_HEAD, 0);
  mmSet(mem, slot, Mm.NR_VMAS, 0);
  mmSet(mem, slot, Mm.NR_PT, 0);
  mmSet(mem, slot, Mm.NR_PTES, 0);
  const gen = Atomics.add(i32, mmWord(mem, slot, Mm.GEN), 1) + 1; // odd: live
  Atomics.add(i32, Hdr.NR_MMS, 1);
  spinUnlock(mem, Hdr.MM_TABLE_LOCK);
  return [slot, gen];
}

/** Put a dead slot (generation already even) back on the free list. Context: any thread, lock-free. */
export function mmRelease(mem: PhysMem, slot: number): void {
  llistAdd(mem.i32, Hdr.MM_FREE_HEAD, mmWord(mem, slot, Mm.NEXT_FREE), slot);
  Atomics.sub(mem.i32, Hdr.NR_MMS, 1);
}

/**
 * Take the mmap_lock of `slot` and check the mm is still generation `gen`. Returns false (lock not
 * held) when it is not. Context: any thread; may spin on the mmap_lock.
 */
export function mmLockLive(mem: PhysMem, slot: number, gen: number): boolean {
  spinLock(mem, mmWord(mem, slot, Mm.LOCK));
  if (mmLoad(mem, slot, Mm.GEN) === gen) return true;
  spinUnlock(mem, mmWord(mem, slot, Mm.LOCK));
  return false;
}

/** Release the mmap_lock of `slot`. */
export function mmUnlock(mem: PhysMem, slot: number): void {
  spinUnlock(mem, mmWord(mem, slot, Mm.LOCK));
}

/**
 * Take the mmap_lock of every live address space, in slot order (the lock order), and return
 * their slots. Context: any thread that holds no mmap_lock and has changed nothing yet.
 */
export function lockAllMms(mem: PhysMem): number[] {
  const locked: number[] = [];
  for (let slot = 0; slot < mem.layout.maxAddressSpaces; slot++) {
    const gen = mmLiveGen(mem, slot);
    if (gen !== 0 && mmLockLive(mem, slot, gen)) locked.push(slot);
  }
  return locked;
}

/** The generation of a live mm slot, or 0 when the slot is free. Context: any thread. */
export function mmLiveGen(mem: PhysMem, slot: number): number {
  const gen = mmLoad(mem, slot, Mm.GEN);
  return gen & 1 ? gen : 0;
}

/** The VMA slots of an mm in address order. Context: the mmap_lock held. */
export function vmaSlotsLocked(mem: PhysMem, slot: number): number[] {
  const out: number[] = [];
  for (
    let cur = mmGet(mem, slot, Mm.VMA_HEAD);
    cur !== 0;
    cur = vmaGet(mem, cur - 1, VmaWord.NEXT)
  ) {
    out.push(cur - 1);
  }
  return out;
}
