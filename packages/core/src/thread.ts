/**
 * Threads: the thread table, kernel entry and exit, lock parking and the undo log.
 *
 * Kernel counterparts: `struct task_struct` (one slot per attachment), the robust-futex list that
 * the kernel walks when a thread dies (`exit_robust_list`), and `stop_machine` (recovery runs with
 * every other thread held outside the kernel).
 *
 * Every attachment (`Kernel.boot`/`Kernel.attach`) owns one thread slot:
 *
 * ```
 *   ┌───────┬─────┬─────────┬─────────────┬───────────┬──────────┬───┬──────────────────────┐
 *   │ STATE │ TID │ USER_ID │ RCU_NESTING │ RCU_EPOCH │ UNDO_LEN │ … │ undo log (UNDO_ENTRIES) │
 *   └───────┴─────┴─────────┴─────────────┴───────────┴──────────┴───┴──────────────────────┘
 * ```
 *
 * All its words are atomic and written only by the owning thread, except by a recovering thread
 * while the world is stopped. `STATE` says whether the thread is inside a kernel call (`IN`),
 * waiting for a lock before it changed anything (`PARKED`), or outside (`OUT`). A thread that dies
 * (a terminated worker) can be reaped by any other: `recovery.ts` waits until no live thread is
 * `IN`, undoes the dead thread's half-done call from its undo log, rebuilds the derived state and
 * releases its locks. Two rules make that safe, and every kernel path follows them:
 * 1. a thread waits for a lock only before it has changed anything in the call;
 * 2. a multi-word change under an mmap_lock is logged first (`txStore`), so it can be undone.
 *
 * @module
 */
import {
  Hdr,
  Thread,
  THREAD_HEADER_WORDS,
  THREAD_WORDS,
  ThreadState,
  Undo,
  UNDO_ENTRIES,
  UNDO_WORDS,
  VMA_STASH_SLOTS,
} from './layout.js';
import type { PhysMem } from './phys-mem.js';
import { cpuRelax } from './cpu-relax.js';

/** True where `Atomics.wait` may block (not on a browser's main thread). */
export const canBlock: boolean = (() => {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
})();

/** Sleep up to `ms` while `i32[index]` still holds `value` (spin where blocking is not allowed). */
export function pause(i32: Int32Array, index: number, value: number, ms: number): void {
  if (canBlock) Atomics.wait(i32, index, value, ms);
  else cpuRelax(); // a browser's main thread may not sleep: it spins
}

/** Int32 index of a thread slot's word. */
export function threadWord(mem: PhysMem, slot: number, word: Thread): number {
  return mem.threadTable + slot * THREAD_WORDS + word;
}

/**
 * Take a free thread slot for this attachment. Throws `RangeError` when every slot is taken.
 * Context: the attaching thread, lock-free.
 */
export function attachThread(mem: PhysMem, userId: number): void {
  const { i32 } = mem;
  for (let slot = 0; slot < mem.layout.maxThreads; slot++) {
    const state = threadWord(mem, slot, Thread.STATE);
    if (Atomics.compareExchange(i32, state, ThreadState.FREE, ThreadState.OUT) !== ThreadState.FREE)
      continue;
    Atomics.store(i32, threadWord(mem, slot, Thread.TID), mem.tid);
    Atomics.store(i32, threadWord(mem, slot, Thread.USER_ID), userId);
    Atomics.store(i32, threadWord(mem, slot, Thread.RCU_NESTING), 0);
    Atomics.store(i32, threadWord(mem, slot, Thread.RCU_EPOCH), 0);
    Atomics.store(i32, threadWord(mem, slot, Thread.UNDO_LEN), 0);
    for (let k = 0; k < VMA_STASH_SLOTS; k++)
      Atomics.store(i32, threadWord(mem, slot, Thread.VMA_STASH) + k, 0);
    mem.threadSlot = slot;
    mem.threadBase = threadWord(mem, slot, Thread.STATE);
    return;
  }
  throw new RangeError(
    `Kernel.attach: all ${mem.layout.maxThreads} thread slots are taken (detach or reap dead threads, or boot with a larger maxThreads)`,
  );
}

/** Give this attachment's slot back. Context: the owning thread, outside kernel calls. */
export function detachThread(mem: PhysMem): void {
  if (mem.threadSlot < 0) return;
  Atomics.store(mem.i32, mem.threadBase + Thread.STATE, ThreadState.FREE);
  mem.threadSlot = -1;
  mem.threadBase = -1;
}

/** Wait while a recovery is running. Context: any thread outside the kernel. */
export function waitForRecovery(mem: PhysMem): void {
  for (;;) {
    const owner = Atomics.load(mem.i32, Hdr.RECOVERY);
    if (owner === 0 || owner === mem.tid) return;
    pause(mem.i32, Hdr.RECOVERY, owner, 1);
  }
}

/**
 * Enter a kernel call (the outermost one marks the slot `IN`). Never enters while a recovery runs.
 * Context: the owning thread.
 */
export function kernelEnter(mem: PhysMem): void {
  if (mem.depth++ > 0 || mem.threadBase < 0) return;
  const { i32 } = mem;
  for (;;) {
    Atomics.store(i32, mem.threadBase + Thread.STATE, ThreadState.IN);
    // seq-cst store then load: either this thread sees the recovery, or the recovery sees IN
    const owner = Atomics.load(i32, Hdr.RECOVERY);
    if (owner === 0 || owner === mem.tid) return;
    Atomics.store(i32, mem.threadBase + Thread.STATE, ThreadState.OUT);
    waitForRecovery(mem);
  }
}

/**
 * Leave a kernel call. If an exception escaped from inside a transaction (a kernel bug), its
 * logged changes are undone first, so the call changed nothing. Context: the owning thread.
 */
export function kernelExit(mem: PhysMem): void {
  if (--mem.depth > 0 || mem.threadBase < 0) return;
  if (mem.txActive) {
    mem.txActive = false;
    undoThreadLog(mem, mem.threadSlot);
    mem.undoLen = 0;
  }
  Atomics.store(mem.i32, mem.threadBase + Thread.STATE, ThreadState.OUT);
}

/** Run `fn` as one kernel call. */
export function inKernel<T>(mem: PhysMem, fn: () => T): T {
  kernelEnter(mem);
  try {
    return fn();
  } finally {
    kernelExit(mem);
  }
}

/** Mark this thread as waiting for a lock (nothing changed yet in this call). */
export function park(mem: PhysMem): void {
  if (mem.threadBase >= 0 && mem.depth > 0) {
    Atomics.store(mem.i32, mem.threadBase + Thread.STATE, ThreadState.PARKED);
  }
}

/**
 * Back from waiting: mark the slot `IN` again. Returns false when a recovery started meanwhile;
 * the caller must then let go of the lock it just took and wait again.
 */
export function unpark(mem: PhysMem): boolean {
  if (mem.threadBase < 0 || mem.depth === 0) return true;
  const { i32 } = mem;
  Atomics.store(i32, mem.threadBase + Thread.STATE, ThreadState.IN);
  const owner = Atomics.load(i32, Hdr.RECOVERY);
  if (owner === 0 || owner === mem.tid) return true;
  Atomics.store(i32, mem.threadBase + Thread.STATE, ThreadState.PARKED);
  return false;
}

/** Start logging changes for undo. Context: the owning thread, under the lock it will change. */
export function txBegin(mem: PhysMem): void {
  mem.txActive = true;
}

/** Append one undo entry: restoring `count` words from `index` to `value`. */
function logUndo(mem: PhysMem, index: number, count: number, value: number): void {
  const { i32 } = mem;
  const len = mem.undoLen;
  if (len >= UNDO_ENTRIES)
    throw new Error(
      `undo log overflow (${UNDO_ENTRIES} entries): a kernel call changed too much at once`,
    );
  // plain entry words, published by the atomic store of UNDO_LEN before the change they undo
  const entry = mem.threadBase + THREAD_HEADER_WORDS + len * UNDO_WORDS;
  i32[entry + Undo.INDEX] = index;
  i32[entry + Undo.COUNT] = count;
  i32[entry + Undo.VALUE] = value;
  mem.undoLen = len + 1;
  Atomics.store(i32, mem.threadBase + Thread.UNDO_LEN, len + 1);
}

/**
 * Store `value` at `index` (a plain store: the caller holds the lock guarding the word), logging
 * the old value first if a transaction is open.
 */
export function txStore(mem: PhysMem, index: number, value: number): void {
  if (mem.txActive && mem.threadBase >= 0) logUndo(mem, index, 1, mem.i32[index]!);
  mem.i32[index] = value;
}

/**
 * Log that the user pages `[upage, upage + count)` of mm `mmSlot` had no PTE before the change
 * that follows (one entry, whatever the size: undoing clears those PTEs).
 */
export function txLogNewPtes(mem: PhysMem, mmSlot: number, upage: number, count: number): void {
  if (mem.txActive && mem.threadBase >= 0) logUndo(mem, -(mmSlot + 1), count, upage);
}

/** Clears the PTEs of a user range, for undo; page-table.ts registers it (it owns the format). */
type PteRangeClearer = (mem: PhysMem, mmSlot: number, upage: number, count: number) => void;
let clearNewPtes: PteRangeClearer | null = null;

/** Register how to clear a range of PTEs for undo. Context: module initialisation. */
export function registerPteUndo(fn: PteRangeClearer): void {
  clearNewPtes = fn;
}

/** The change is complete: nothing to undo any more. Context: the owning thread. */
export function txCommit(mem: PhysMem): void {
  mem.txActive = false;
  if (mem.undoLen === 0) return;
  mem.undoLen = 0;
  Atomics.store(mem.i32, mem.threadBase + Thread.UNDO_LEN, 0);
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
      if (clearNewPtes === null) throw new Error('undoThreadLog: no PTE undo registered');
      clearNewPtes(mem, -index - 1, value, count);
      continue;
    }
    for (let k = 0; k < count; k++) Atomics.store(i32, index + k, value);
  }
  Atomics.store(i32, base + Thread.UNDO_LEN, 0);
}
