/**
 * The shared words between the `scaling` suite's main thread and its workers (one protocol
 * module, imported by both sides, which never import each other).
 *
 * ```
 *  ctl: Int32Array over a SharedArrayBuffer
 *  ┌────┬──────┬───────┬──────────┬──────┬──────┬─────┬──────┬───────┐
 *  │ GO │ STOP │ READY │ ARRIVED  │ DONE │ MODE │ OPS │ K    │ ERROR │
 *  └────┴──────┴───────┴──────────┴──────┴──────┴─────┴──────┴───────┘
 *  times: Float64Array, [start, end] per thread, ms since the epoch (timeOrigin + now)
 * ```
 * Main writes MODE, OPS, K, zeroes ARRIVED and DONE, then bumps GO (release) and notifies.
 * Workers: READY once at start; per round ARRIVED (the start barrier), DONE at the end;
 * ERROR is the first failure's negative errno (or -1000 for a throw).
 *
 * @module
 */
import type { KernelHandle } from '@sabvm/core';

/** Word indices of the control array. */
export const Ctl = {
  GO: 0,
  STOP: 1,
  READY: 2,
  ARRIVED: 3,
  DONE: 4,
  MODE: 5,
  OPS: 6,
  K: 7,
  ERROR: 8,
  WORDS: 9,
} as const;

/** MODE values: every thread in its own address space, or all in one. */
export const Mode = {
  OWN: 0,
  SHARED: 1,
} as const;

/** ERROR value for an exception in a worker. */
export const ERROR_THROWN = -1000;

/** What each worker gets in `workerData`. */
export interface ScalingWorkerData {
  readonly handle: KernelHandle;
  readonly index: number;
  readonly ctl: SharedArrayBuffer;
  readonly times: SharedArrayBuffer;
  /** Address-space id of this thread's own mm. */
  readonly ownMm: number;
  /** Address-space id of the mm all threads share. */
  readonly sharedMm: number;
  /** This thread's vmallocUser area. */
  readonly kaddr: number;
  /** Bytes mapped and unmapped per operation. */
  readonly bytes: number;
  /** This thread's user address (disjoint from every other thread's). */
  readonly uaddr: number;
}
