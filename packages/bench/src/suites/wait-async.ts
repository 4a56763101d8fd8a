/**
 * `Atomics.waitAsync` (ES2024, in every Node line the bench runs on), typed: the ES2023 library
 * the project compiles against does not declare it. The main thread's waits of the suites use
 * {@link waitAsyncAlive}: a pending `waitAsync` — its timeout included — does not keep Node's event
 * loop alive (nodejs/node #61941), so a wait with nothing else pending would end the process.
 *
 * @module
 */

/** The signature of `Atomics.waitAsync`. */
type WaitAsync = (
  i32: Int32Array,
  index: number,
  value: number,
  timeoutMs?: number,
) => { async: false; value: string } | { async: true; value: Promise<string> };

/** `Atomics.waitAsync`. Context: any thread; never blocks. */
export const waitAsync: WaitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/**
 * Wait until `i32[index]` is no longer `value` (or `timeoutMs` passes; default: no limit) without
 * blocking, holding a timer meanwhile so that the process stays alive for the wake-up.
 * Context: any thread; never blocks.
 */
export async function waitAsyncAlive(
  i32: Int32Array,
  index: number,
  value: number,
  timeoutMs?: number,
): Promise<void> {
  const w = waitAsync(i32, index, value, timeoutMs);
  if (!w.async) return;
  const keepAlive = setInterval(() => undefined, 2 ** 30);
  try {
    await w.value;
  } finally {
    clearInterval(keepAlive);
  }
}
