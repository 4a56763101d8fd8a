/**
 * Waiting for a word of shared memory to change: the spin-then-sleep step of every wait loop.
 *
 * Kernel counterparts: `cpu_relax()` (`arch/x86/include/asm/vdso/processor.h`) inside spin loops,
 * and a futex wait (`FUTEX_WAIT` with a timeout) once spinning has gone on long enough.
 *
 * @module
 */

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
}
