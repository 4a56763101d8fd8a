/**
 * `Atomics.waitAsync` (ES2024, in every Node line the bench runs on), typed: the ES2023 library
 * the project compiles against does not declare it. The main thread's waits of the suites use it.
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
