/**
 * Spin locks in shared memory.
 *
 * Kernel counterpart: `spinlock_t` (`include/linux/spinlock.h`). A lock word is 0 when free and
 * holds the owner's thread id when taken; it is only ever touched through `Atomics`, and release
 * is an `Atomics.store`, so everything written under the lock is visible to the next owner.
 *
 * A waiter spins briefly, then sleeps in short `Atomics.wait` slices where the thread may block
 * (Node threads); a browser main thread, which may not block, keeps spinning.
 *
 * @module
 */

const canBlock: boolean = (() => {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
})();

const SPINS_BEFORE_SLEEP = 64;
/** Milliseconds per sleep slice; the holder does not notify, so a waiter re-checks this often. */
const SLEEP_SLICE_MS = 0.05;

/** Take the lock at `i32[index]` for thread `tid`. Context: any thread; spins or sleeps. */
export function spinLock(i32: Int32Array, index: number, tid: number): void {
  if (Atomics.compareExchange(i32, index, 0, tid) === 0) return;
  for (let spins = 0; ; spins++) {
    const owner = Atomics.load(i32, index);
    if (owner === 0) {
      if (Atomics.compareExchange(i32, index, 0, tid) === 0) return;
    } else if (owner === tid) {
      throw new Error(`spinLock: thread ${tid} already holds the lock at word ${index}`);
    } else if (canBlock && spins > SPINS_BEFORE_SLEEP) {
      Atomics.wait(i32, index, owner, SLEEP_SLICE_MS);
    }
  }
}

/** Release a lock taken by {@link spinLock}. Throws if `tid` is not the owner (a kernel bug). */
export function spinUnlock(i32: Int32Array, index: number, tid: number): void {
  if (Atomics.compareExchange(i32, index, tid, 0) !== tid) {
    throw new Error(`spinUnlock: thread ${tid} does not hold the lock at word ${index}`);
  }
}
