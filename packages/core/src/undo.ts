/**
 * The undo log: how a kernel call that changes several words under a lock can be undone if its
 * thread dies in the middle (or a kernel bug throws out of it), so every call is all or nothing.
 *
 * Kernel counterpart: a journal (`jbd2`'s revoke records, in spirit), and the robust-futex list
 * that `exit_robust_list` walks: state a dead thread leaves behind that another can act on.
 *
 * Each thread slot holds a log of {@link UNDO_ENTRIES} entries after its header (layout.ts):
 * `INDEX`, `COUNT`, `VALUE` — "restore `COUNT` words from `INDEX` to `VALUE`", or, with a negative
 * `INDEX` = -(mm slot + 1), "clear the `COUNT` new PTEs of that mm from user page `VALUE`". Entry
 * words are plain stores by the owner, published by the atomic store of `Thread.UNDO_LEN` before
 * the change they undo; the log is applied newest first by `kernelExit` (the owner, after a kernel
 * bug) or by recovery (the world stopped, for a dead owner).
 *
 * @module
 */
import {
  Mm,
  MM_WORDS,
  Thread,
  THREAD_HEADER_WORDS,
  THREAD_WORDS,
  Undo,
  UNDO_ENTRIES,
  UNDO_WORDS,
} from './layout.js';
import { pdeIndex, pdeIsHuge, pteIndex, slotEnd, tlbFlushBegin, tlbFlushEnd } from './pgtable.js';
import type { PhysMem } from './phys-mem.js';
import { bug } from './bug.js';

/** Start logging changes for undo. Context: the owning thread, under the lock it will change. */
export function txBegin(mem: PhysMem): void {
  mem.current.txActive = true;
}

/** Append one undo entry: restoring `count` words from `index` to `value`. */
function logUndo(mem: PhysMem, index: number, count: number, value: number): void {
  const { i32 } = mem;
  const len = mem.current.undoLen;
  if (len >= UNDO_ENTRIES)
    bug(`undo log overflow (${UNDO_ENTRIES} entries): a kernel call changed too much at once`);
  // plain entry words, published by the atomic store of UNDO_LEN before the change they undo
  const entry = mem.current.base + THREAD_HEADER_WORDS + len * UNDO_WORDS;
  i32[entry + Undo.INDEX] = index;
  i32[entry + Undo.COUNT] = count;
  i32[entry + Undo.VALUE] = value;
  mem.current.undoLen = len + 1;
  Atomics.store(i32, mem.current.base + Thread.UNDO_LEN, len + 1);
}

/**
 * Store `value` at `index` (a plain store: the caller holds the lock guarding the word), logging
 * the old value first if a transaction is open.
 */
export function txStore(mem: PhysMem, index: number, value: number): void {
  if (mem.current.txActive && mem.current.base >= 0) logUndo(mem, index, 1, mem.i32[index]!);
  mem.i32[index] = value;
}

/**
 * Log that the user pages `[upage, upage + count)` of mm `mmSlot` had no PTE before the change
 * that follows (one entry, whatever the size: undoing clears those PTEs).
 */
export function txLogNewPtes(mem: PhysMem, mmSlot: number, upage: number, count: number): void {
  if (mem.current.txActive && mem.current.base >= 0) logUndo(mem, -(mmSlot + 1), count, upage);
}

/** The change is complete: nothing to undo any more. Context: the owning thread. */
export function txCommit(mem: PhysMem): void {
  mem.current.txActive = false;
  if (mem.current.undoLen === 0) return;
  mem.current.undoLen = 0;
  Atomics.store(mem.i32, mem.current.base + Thread.UNDO_LEN, 0);
}

/**
 * Undo a dead thread's logged changes, newest first. Context: recovery, the world stopped.
 */
export function undoThreadLog(mem: PhysMem, slot: number): void {
  const { i32 } = mem;
  const base = mem.threadTable + slot * THREAD_WORDS;
  for (let e = Atomics.load(i32, base + Thread.UNDO_LEN) - 1; e >= 0; e--) {
    const entry = base + THREAD_HEADER_WORDS + e * UNDO_WORDS;
    const index = Atomics.load(i32, entry + Undo.INDEX);
    const count = Atomics.load(i32, entry + Undo.COUNT);
    const value = Atomics.load(i32, entry + Undo.VALUE);
    if (index < 0) {
      // new PTEs of mm -(index) - 1 from user page `value`
      clearNewPtes(mem, -index - 1, value, count);
      continue;
    }
    for (let k = 0; k < count; k++) Atomics.store(i32, index + k, value);
  }
  Atomics.store(i32, base + Thread.UNDO_LEN, 0);
}

/**
 * Clear the PTEs of `[upage, upage + count)` in mm `mmSlot` without touching references: undoing
 * a remap that never committed (the area's pin is recounted by whoever undoes it).
 * Context: the undoing thread holds the mm's mmap_lock, or recovery runs with the world stopped.
 */
function clearNewPtes(mem: PhysMem, mmSlot: number, upage: number, count: number): void {
  const { i32 } = mem;
  const pgdPfn = i32[mem.mmTable + mmSlot * MM_WORDS + Mm.PGD]!;
  // a lock-free walker may have cached a translation of these PTEs: they are being taken away
  tlbFlushBegin(mem, mmSlot);
  try {
    for (let p = upage; p < upage + count; p++) {
      const pde = Atomics.load(i32, pdeIndex(pgdPfn, p));
      if (pdeIsHuge(pde)) {
        // a huge entry of the remap covers its whole slot, inside the logged range
        Atomics.store(i32, pdeIndex(pgdPfn, p), 0);
        p = slotEnd(p) - 1;
      } else if (pde !== 0) Atomics.store(i32, pteIndex(pde, p), 0);
    }
  } finally {
    tlbFlushEnd(mem, mmSlot);
  }
}
