/**
 * Waiting for a word of shared memory to change: the spin-wait hint and the sleep of every wait
 * loop.
 *
 * Kernel counterparts: `cpu_relax()` (`arch/x86/include/asm/vdso/processor.h`, the x86 `pause`
 * instruction) inside spin loops, and a futex wait (`FUTEX_WAIT` with a timeout) once spinning has
 * gone on long enough. `Atomics.pause` (ES2026; Node 24+, Chrome 133+) tells the CPU that this
 * thread is spinning on a shared word: the core backs off briefly instead of flooding the memory
 * system with loads, and a sibling hyperthread gets the execution units. Where the runtime lacks
 * it (Node 20 and 22) the hint is a no-op, and the spin loops behave as before.
 *
 * @module
 */

/** `Atomics` with the ES2026 method this module feature-detects (the ES2023 lib lacks it). */
type AtomicsWithPause = typeof Atomics & { readonly pause?: (iterationNumber?: number) => void };

const atomicsPause = (Atomics as AtomicsWithPause).pause;

/**
 * One iteration's spin-wait hint (`cpu_relax`): `Atomics.pause()` where the runtime has it, else
 * nothing. Resolved once, when the module loads. Context: any thread; never blocks.
 */
export const cpuRelax: () => void =
  typeof atomicsPause === 'function' ? atomicsPause : () => undefined;

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

/** The host's clock (Node and browsers have it; core's types name no host). */
declare const performance: { now(): number };

/** A valid timeout: a number that is not NaN (negative and Infinity mean no limit). */
export function validTimeout(t: unknown): t is number {
  return typeof t === 'number' && !Number.isNaN(t);
}

/** The `performance.now()` time `timeoutMs` from now (negative: `Infinity`, no limit). */
export function deadlineAfter(timeoutMs: number): number {
  return timeoutMs < 0 ? Infinity : performance.now() + timeoutMs;
}

/**
 * One slice (up to 1 ms) of a wait with a limit: false, without waiting, once `deadline` (a
 * `performance.now()` time; `Infinity`: none) has passed, else {@link pause} and true.
 */
export function pauseUntil(
  i32: Int32Array,
  index: number,
  value: number,
  deadline: number,
): boolean {
  const left = deadline - performance.now();
  if (left <= 0) return false;
  pause(i32, index, value, Math.min(1, left));
  return true;
}
