/**
 * What the `handoff` suite's main thread and its plain-Piscina worker agree on (one protocol
 * module, imported by both sides, which never import each other).
 *
 * @module
 */

/** The page size tasks step by when they touch "every page" (4 KiB, as sabvm's frames). */
export const TOUCH_STRIDE = 4096;

/** Piscina `workerData` of the plain pool: the buffer shared once at start (the lower bound). */
export interface HandoffWorkerData {
  readonly shared: SharedArrayBuffer;
}

/** The lower-bound task: only where the bytes are in the buffer shared at start. */
export interface OffsetTask {
  readonly offset: number;
  readonly length: number;
}

/** Named exports of the plain worker module (Piscina's `name` option). */
export const HANDOFF_TASKS = {
  clone: 'touchClone',
  transfer: 'touchTransfer',
  sab: 'touchShared',
  offset: 'touchOffset',
} as const;

/**
 * Write one byte in every page of `u8` (increment it) and return how many pages were touched.
 * Context: any thread; the bytes must be writable by the caller.
 */
export function touchPages(u8: Uint8Array): number {
  let pages = 0;
  for (let i = 0; i < u8.length; i += TOUCH_STRIDE) {
    u8[i] = (u8[i]! + 1) & 255;
    pages++;
  }
  return pages;
}
