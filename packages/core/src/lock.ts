/**
 * Spin locks in shared memory.
 *
 * Kernel counterpart: `spinlock_t` (`include/linux/spinlock.h`). A lock word is 0 when free and
 * holds the owner's thread id when taken; it is only ever touched through `Atomics`, and release
 * is an `Atomics.store`, so everything written under the lock is visible to the next owner.
 *
 * A waiter parks its thread slot (it has changed nothing yet in this call, see `thread.ts`), spins
 * briefly (each turn a `cpuRelax()`: `Atomics.pause` where the runtime has it), then sleeps in
 * short `Atomics.wait` slices where the thread may block (Node threads); a browser main thread,
 * which may not block, keeps spinning. No lock is taken while a recovery
 * from a dead thread runs, and the owner id lets that recovery release a dead owner's locks.
 *
 * @module
 */
import { cpuRelax, pause } from './cpu-relax.js';
import { Hdr } from './layout.js';
import type { PhysMem } from './phys-mem.js';
import { park, unpark, waitForRecovery } from './thread.js';
import { bug } from './bug.js';

const SPINS_BEFORE_SLEEP = 64;
/** Milliseconds per sleep slice; the holder does not notify, so a waiter re-checks this often. */
const SLEEP_SLICE_MS = 0.05;

/** Take the lock at word `index` (spin_lock). Context: any thread; spins or sleeps. */
export function spinLock(mem: PhysMem, index: number): void {
  const { i32, tid } = mem;
  if (Atomics.compareExchange(i32, index, 0, tid) === 0) return;
  park(mem);
  for (let spins = 0; ; spins++) {
    if (Atomics.load(i32, Hdr.RECOVERY) !== 0) waitForRecovery(mem);
    const owner = Atomics.load(i32, index);
    if (owner === 0) {
      if (Atomics.compareExchange(i32, index, 0, tid) === 0) {
        if (unpark(mem)) return;
        Atomics.store(i32, index, 0); // a recovery began meanwhile: let it run first
      }
    } else if (owner === tid) {
      bug(`spinLock: thread ${tid} already holds the lock at word ${index}`);
    } else if (spins > SPINS_BEFORE_SLEEP) {
      pause(i32, index, owner, SLEEP_SLICE_MS);
    } else {
      cpuRelax();
    }
  }
}

/** Release a lock taken by {@link spinLock}. Throws if this thread is not the owner (a kernel bug). */
export function spinUnlock(mem: PhysMem, index: number): void {
  if (Atomics.compareExchange(mem.i32, index, mem.tid, 0) !== mem.tid) {
    bug(`spinUnlock: thread ${mem.tid} does not hold the lock at word ${index}`);
  }
}
