/**
 * Read sections and grace periods: frames released while another thread may still hold a
 * zero-copy view of them are not handed to a new owner until that thread's section ends.
 *
 * Kernel counterpart: RCU (`rcu_read_lock`, `rcu_read_unlock`, `call_rcu`, `synchronize_rcu`),
 * used here the way `get_user_pages_fast` relies on the TLB-shootdown grace period: a page
 * released by `munmap` is not reused while a walker that saw it may still touch it.
 *
 * Shared words (all atomic):
 * - `Hdr.RCU_EPOCH`: the grace-period epoch, bumped by every deferred release;
 * - `Hdr.RCU_READERS`: threads inside a read section;
 * - per thread slot: `RCU_NESTING` and `RCU_EPOCH` (the epoch when its outermost section began);
 * - the deferred list: `Hdr.DEFER_HEAD` (an llist through `Frame.LINK`) and `Hdr.DEFERRED_FRAMES`.
 *   A deferred frame keeps its bitmap bit, has no references, and its owner word is
 *   `DEFERRED | epoch << OWNER_ID_SHIFT` (the epoch of its release, 28 bits, compared modulo 2^28).
 *
 * The rule: a frame released at epoch `t` is freed once every thread inside a section began it at
 * an epoch `>= t`. A thread with no other thread inside a section frees at once. Entering and
 * leaving a section, and reclaiming, happen inside kernel calls (kernelEnter/kernelExit), so a
 * recovery from a dead thread, which recounts all of these words, never runs in the middle of one.
 *
 * @module
 */
import {
  Frame,
  FRAME_WORDS,
  FrameKind,
  Hdr,
  OWNER_ID_SHIFT,
  Thread,
  THREAD_WORDS,
  ThreadState,
} from './layout.js';
import { llistAdd, llistDelAll } from './llist.js';
import type { PhysMem } from './phys-mem.js';
import { kernelEnter, kernelExit } from './thread.js';

const EPOCH_MASK = 0x0fffffff;

/** `a >= b` for epochs compared modulo 2^28. */
function epochReached(a: number, b: number): boolean {
  return ((a - b) & EPOCH_MASK) < 0x08000000;
}

/** Enter a read section (`rcu_read_lock`); sections nest. Context: the owning thread, lock-free. */
export function rcuReadLock(mem: PhysMem): void {
  if (mem.current.base < 0) throw new Error('rcuReadLock: this kernel handle is detached');
  // a kernel call of its own: a recovery, which recounts readers, never sees it half done
  kernelEnter(mem);
  try {
    if (mem.current.rcuNesting++ > 0) {
      Atomics.store(mem.i32, mem.current.base + Thread.RCU_NESTING, mem.current.rcuNesting);
      return;
    }
    Atomics.store(
      mem.i32,
      mem.current.base + Thread.RCU_EPOCH,
      Atomics.load(mem.i32, Hdr.RCU_EPOCH) & EPOCH_MASK,
    );
    Atomics.store(mem.i32, mem.current.base + Thread.RCU_NESTING, 1);
    Atomics.add(mem.i32, Hdr.RCU_READERS, 1);
  } finally {
    kernelExit(mem);
  }
}

/**
 * Leave a read section (`rcu_read_unlock`); the outermost exit frees the deferred frames no
 * other section still holds back. Throws when no section is open. Context: the owning thread.
 */
export function rcuReadUnlock(mem: PhysMem): void {
  if (mem.current.rcuNesting === 0)
    throw new Error('rcuReadUnlock: no read section is open in this thread');
  kernelEnter(mem);
  try {
    mem.current.rcuNesting--;
    Atomics.store(mem.i32, mem.current.base + Thread.RCU_NESTING, mem.current.rcuNesting);
    if (mem.current.rcuNesting > 0) return;
    Atomics.sub(mem.i32, Hdr.RCU_READERS, 1);
    if (Atomics.load(mem.i32, Hdr.DEFERRED_FRAMES) > 0) reclaimDeferred(mem);
  } finally {
    kernelExit(mem);
  }
}

/** True when a thread other than this one is inside a read section now. */
export function othersReading(mem: PhysMem): boolean {
  return Atomics.load(mem.i32, Hdr.RCU_READERS) > (mem.current.rcuNesting > 0 ? 1 : 0);
}

/** Give a frame with no references left straight back to the pool. */
export function freeFrameNow(mem: PhysMem, pfn: number): void {
  const { i32 } = mem;
  Atomics.store(i32, mem.frameTable + pfn * FRAME_WORDS + Frame.OWNER, FrameKind.FREE);
  Atomics.and(i32, mem.frameBitmap + (pfn >>> 5), ~(1 << (pfn & 31)));
  Atomics.add(i32, Hdr.FREE_FRAMES, 1);
  // the next search starts at the lowest freed frame: memory the OS has already committed, still
  // warm in the caches, instead of fresh pages that fault in one by one
  if (pfn >>> 5 < Atomics.load(i32, Hdr.FRAME_HINT)) Atomics.store(i32, Hdr.FRAME_HINT, pfn >>> 5);
}

/**
 * A frame's last reference is gone: free it, or defer it past the current grace period when
 * another thread is inside a read section (`call_rcu`). Context: any thread, lock-free.
 */
export function releaseFrame(mem: PhysMem, pfn: number): void {
  if (!othersReading(mem)) {
    freeFrameNow(mem, pfn);
    return;
  }
  deferFrame(mem, pfn);
  // the readers seen above may all have left since, and the last one out may have looked at the
  // deferred list before this frame was on it: look again (seq-cst: either this load sees no
  // reader, or that reader's reclaim comes after the frame was added and finds it)
  if (!othersReading(mem)) reclaimDeferred(mem);
}

/** Put a released frame on the deferred list, stamped with a new epoch. */
function deferFrame(mem: PhysMem, pfn: number): void {
  const { i32 } = mem;
  const epoch = (Atomics.add(i32, Hdr.RCU_EPOCH, 1) + 1) & EPOCH_MASK;
  const entry = mem.frameTable + pfn * FRAME_WORDS;
  Atomics.store(i32, entry + Frame.OWNER, FrameKind.DEFERRED | (epoch << OWNER_ID_SHIFT));
  Atomics.add(i32, Hdr.DEFERRED_FRAMES, 1);
  llistAdd(i32, Hdr.DEFER_HEAD, entry + Frame.LINK, pfn);
}

/** The oldest epoch a live thread's open section began at, or -1 when no section is open. */
function oldestReader(mem: PhysMem): number {
  const { i32 } = mem;
  let oldest = -1;
  for (let slot = 0; slot < mem.layout.maxThreads; slot++) {
    const base = mem.threadTable + slot * THREAD_WORDS;
    const state = Atomics.load(i32, base + Thread.STATE);
    if (state === ThreadState.FREE || Atomics.load(i32, base + Thread.RCU_NESTING) === 0) continue;
    const epoch = Atomics.load(i32, base + Thread.RCU_EPOCH);
    if (oldest < 0 || !epochReached(epoch, oldest)) oldest = epoch;
  }
  return oldest;
}

/**
 * Free every deferred frame whose grace period is over; keep the others deferred.
 * Returns the number freed. Context: any thread, lock-free.
 *
 * The order is the grace-period rule's proof. The list is taken *before* the readers are looked
 * at: a frame on it was released after its PTE was cleared, so a reader that can hold a view of it
 * entered its section before that release, hence before this look, and the look sees it. (Looking
 * first would miss a reader that enters between the look and the take, and free a frame released
 * under its view.) Kept frames go back on the list; if the readers that held them back left
 * meanwhile, their own reclaim may have found the list empty, so look once more and repeat.
 */
export function reclaimDeferred(mem: PhysMem): number {
  const { i32 } = mem;
  let freed = 0;
  while (Atomics.load(i32, Hdr.DEFERRED_FRAMES) > 0) {
    const taken = llistDelAll(i32, Hdr.DEFER_HEAD);
    if (taken === 0) break;
    const oldest = oldestReader(mem);
    let minKept = -1; // the oldest epoch among the frames kept back
    for (let cur = taken; cur !== 0;) {
      const pfn = cur - 1;
      const entry = mem.frameTable + pfn * FRAME_WORDS;
      cur = Atomics.load(i32, entry + Frame.LINK);
      const epoch = Atomics.load(i32, entry + Frame.OWNER) >>> OWNER_ID_SHIFT;
      if (oldest < 0 || epochReached(oldest, epoch)) {
        Atomics.sub(i32, Hdr.DEFERRED_FRAMES, 1);
        freeFrameNow(mem, pfn);
        freed++;
      } else {
        if (minKept < 0 || !epochReached(epoch, minKept)) minKept = epoch;
        llistAdd(i32, Hdr.DEFER_HEAD, entry + Frame.LINK, pfn);
      }
    }
    if (minKept < 0) break;
    const now = oldestReader(mem);
    if (now >= 0 && !epochReached(now, minKept)) break; // still held back by a live section
  }
  return freed;
}
