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
 * 2. a multi-word change under an mmap_lock is logged first (`txStore`, undo.ts), so it can be
 *    undone.
 *
 * @module
 */
import { pause } from './cpu-relax.js';
import { Hdr, Thread, THREAD_WORDS, ThreadState, VMA_STASH_SLOTS } from './layout.js';
import type { PhysMem } from './phys-mem.js';
import { undoThreadLog } from './undo.js';

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
    Atomics.store(i32, threadWord(mem, slot, Thread.COPY_SEQ), 0);
    Atomics.store(i32, threadWord(mem, slot, Thread.COPY_MM), 0);
    for (let k = 0; k < VMA_STASH_SLOTS; k++)
      Atomics.store(i32, threadWord(mem, slot, Thread.VMA_STASH) + k, 0);
    mem.current.slot = slot;
    mem.current.base = threadWord(mem, slot, Thread.STATE);
    return;
  }
  throw new RangeError(
    `Kernel.attach: all ${mem.layout.maxThreads} thread slots are taken (detach or reap dead threads, or boot with a larger maxThreads)`,
  );
}

/** Give this attachment's slot back. Context: the owning thread, outside kernel calls. */
export function detachThread(mem: PhysMem): void {
  if (mem.current.slot < 0) return;
  Atomics.store(mem.i32, mem.current.base + Thread.STATE, ThreadState.FREE);
  mem.current.slot = -1;
  mem.current.base = -1;
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
 * Throw unless this attachment still owns a thread slot: calls through a detached handle would run
 * outside the thread table, invisible to recovery, so they are refused. Context: any call.
 */
export function checkAttached(mem: PhysMem): void {
  if (mem.current.base < 0) {
    throw new Error(
      'this kernel handle is detached (Kernel#detach gave its thread slot back): calls through it ' +
        'are refused; attach again with Kernel.attach(handle)',
    );
  }
}

/**
 * Enter a kernel call (the outermost one marks the slot `IN`). Never enters while a recovery runs.
 * Throws, changing nothing, when the handle is detached. Context: the owning thread.
 */
export function kernelEnter(mem: PhysMem): void {
  if (mem.current.base < 0) checkAttached(mem);
  if (mem.current.depth++ > 0) return;
  const { i32 } = mem;
  for (;;) {
    Atomics.store(i32, mem.current.base + Thread.STATE, ThreadState.IN);
    // seq-cst store then load: either this thread sees the recovery, or the recovery sees IN
    const owner = Atomics.load(i32, Hdr.RECOVERY);
    if (owner === 0 || owner === mem.tid) return;
    Atomics.store(i32, mem.current.base + Thread.STATE, ThreadState.OUT);
    waitForRecovery(mem);
  }
}

/**
 * Leave a kernel call. If an exception escaped from inside a transaction (a kernel bug), its
 * logged changes are undone first, so the call changed nothing. Context: the owning thread.
 */
export function kernelExit(mem: PhysMem): void {
  if (--mem.current.depth > 0 || mem.current.base < 0) return;
  if (mem.current.txActive) {
    mem.current.txActive = false;
    undoThreadLog(mem, mem.current.slot);
    mem.current.undoLen = 0;
  }
  Atomics.store(mem.i32, mem.current.base + Thread.STATE, ThreadState.OUT);
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
  if (mem.current.base >= 0 && mem.current.depth > 0) {
    Atomics.store(mem.i32, mem.current.base + Thread.STATE, ThreadState.PARKED);
  }
}

/**
 * Back from waiting: mark the slot `IN` again. Returns false when a recovery started meanwhile;
 * the caller must then let go of the lock it just took and wait again.
 */
export function unpark(mem: PhysMem): boolean {
  if (mem.current.base < 0 || mem.current.depth === 0) return true;
  const { i32 } = mem;
  Atomics.store(i32, mem.current.base + Thread.STATE, ThreadState.IN);
  const owner = Atomics.load(i32, Hdr.RECOVERY);
  if (owner === 0 || owner === mem.tid) return true;
  Atomics.store(i32, mem.current.base + Thread.STATE, ThreadState.PARKED);
  return false;
}
