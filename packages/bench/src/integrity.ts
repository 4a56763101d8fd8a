/**
 * The end of every suite: the kernel's invariants hold and every frame is back in the free pool.
 *
 * @module
 */
import type { Kernel } from '@sabvm/core';
import type { Integrity } from './results.js';

/**
 * Run `kernel.checkInvariants()` and compare `freeFrames` with its value right after boot.
 * Never throws: a broken invariant is reported in the result (and makes the run exit non-zero).
 * Context: main thread, quiescent kernel (every suite's workers have stopped).
 */
export function checkIntegrity(kernel: Kernel, freeFramesAfterBoot: number): Integrity {
  let invariants = 'ok';
  try {
    kernel.checkInvariants();
  } catch (error) {
    invariants = error instanceof Error ? error.message : String(error);
  }
  const freeFramesAtEnd = kernel.stats().freeFrames;
  const leakedFrames = freeFramesAfterBoot - freeFramesAtEnd;
  return {
    invariants,
    freeFramesAfterBoot,
    freeFramesAtEnd,
    leakedFrames,
    ok: invariants === 'ok' && leakedFrames === 0,
  };
}
