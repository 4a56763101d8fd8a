/**
 * The shared words between the `kmalloc` suite's main thread and its workers (one protocol
 * module, imported by both sides, which never import each other).
 *
 * ```
 *  ctl: Int32Array over a SharedArrayBuffer
 *  ┌────┬──────┬───────┬─────────┬──────┬──────┬─────┬───┬───────┬──────┬──────┐
 *  │ GO │ STOP │ READY │ ARRIVED │ DONE │ MODE │ OPS │ K │ ERROR │ HEAD │ TAIL │
 *  └────┴──────┴───────┴─────────┴──────┴──────┴─────┴───┴───────┴──────┴──────┘
 *  times: Float64Array, [start, end] per thread, ms since the epoch (timeOrigin + now)
 *  ring:  Float64Array, RING_BATCHES × BATCH kaddrs, from the allocating to the freeing thread
 * ```
 * Main writes MODE, OPS, K, zeroes ARRIVED, DONE, HEAD and TAIL, then bumps GO and notifies.
 * Workers: READY once at start; per round ARRIVED (the start barrier), DONE at the end. In the
 * cross-thread mode worker 0 allocates batches into the ring and bumps HEAD; worker 1 frees them
 * and bumps TAIL (each waits on the other's word with `Atomics.wait`). ERROR: -1 when a worker
 * failed (an allocation returned null, or it threw).
 *
 * @module
 */
import type { KernelHandle } from '@sabvm/core';

/** Word indices of the control array. */
export const KCtl = {
  GO: 0,
  STOP: 1,
  READY: 2,
  ARRIVED: 3,
  DONE: 4,
  MODE: 5,
  OPS: 6,
  K: 7,
  ERROR: 8,
  HEAD: 9,
  TAIL: 10,
  WORDS: 11,
} as const;

/** MODE values. */
export const KMode = {
  /** each of the first K workers: OPS × (kmalloc(64) + kfree) of its own objects */
  OWN: 0,
  /** worker 0 allocates OPS objects, worker 1 frees them, through the ring */
  CROSS: 1,
} as const;

/** kaddrs per ring batch: one Atomics store publishes a batch. */
export const BATCH = 256;
/** Batches in the ring. */
export const RING_BATCHES = 16;
/** The object size every row allocates. */
export const OBJECT_SIZE = 64;

/** What each worker gets in `workerData`. */
export interface KmallocWorkerData {
  readonly handle: KernelHandle;
  readonly index: number;
  readonly ctl: SharedArrayBuffer;
  readonly times: SharedArrayBuffer;
  readonly ring: SharedArrayBuffer;
}
