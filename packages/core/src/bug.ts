/**
 * `KernelBug`: what the kernel throws when it meets a broken invariant at run time.
 *
 * Kernel counterpart: `BUG()` / `BUG_ON()` (`include/asm-generic/bug.h`). Linux stops the thread;
 * here the call throws a `KernelBug`, which no library path catches: retry loops that expect a
 * `SegmentationFault` (a walk that overlapped a flush) rethrow anything else at once, so a bug is
 * never swallowed as a fault. `kernel.checkInvariants()` throws it too.
 *
 * @module
 */

/** A broken kernel invariant: a defect in sabvm (please report it), never a user error. */
export class KernelBug extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KernelBug';
  }
}

/** Throw a {@link KernelBug} (`BUG()`). */
export function bug(message: string): never {
  throw new KernelBug(message);
}
