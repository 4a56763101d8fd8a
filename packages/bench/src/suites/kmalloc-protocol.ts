/**
 * What the `kmalloc` suite's main thread and its two workers share besides the crew's control words
 * (crew-protocol.ts): two more words and a ring of kaddrs for the cross-thread rows.
 *
 * ```
 *  ctl: … ERROR │ HEAD │ TAIL │      (after the crew's words)
 *  ring: Float64Array, RING_BATCHES × BATCH kaddrs, from the allocating to the freeing thread
 * ```
 * In the cross-thread modes worker 0 allocates batches into the ring and bumps HEAD; worker 1 frees
 * them (a batch per `kfreeBulk`, or one `kfree` at a time) and bumps TAIL; each waits on the other's word, spinning 50 µs before it sleeps in `Atomics.wait`. Main zeroes both before
 * a round.
 *
 * @module
 */
import type { KernelHandle } from '@sabvm/core';
import { Ctl } from './crew-protocol.js';

/** Word indices of the suite's own control words. */
export const KCtl: { readonly HEAD: number; readonly TAIL: number; readonly WORDS: number } = {
  HEAD: Ctl.WORDS,
  TAIL: Ctl.WORDS + 1,
  WORDS: Ctl.WORDS + 2,
};

/** MODE values. */
export const KMode = {
  /** each of the first K workers: OPS × (kmalloc(64) + kfree) of its own objects */
  OWN: 0,
  /** worker 0 allocates OPS objects, worker 1 frees them, a batch at a time with kfreeBulk */
  CROSS: 1,
  /** as CROSS, worker 1 freeing one kfree at a time */
  CROSS_EACH: 2,
  /** control: each of the first K workers, OPS × malloc(64) + free in its own @thi.ng/malloc pool */
  CONTROL: 3,
} as const;

/** kaddrs per ring batch: one Atomics store publishes a batch. */
export const BATCH = 256;
/** Batches in the ring. */
export const RING_BATCHES = 16;
/** The object size every row allocates. */
export const OBJECT_SIZE = 64;

/** What each worker gets in `workerData` (the crew adds `ctl` and `times`). */
export interface KmallocWorkerData {
  readonly handle: KernelHandle;
  readonly index: number;
  readonly ctl: SharedArrayBuffer;
  readonly times: SharedArrayBuffer;
  readonly ring: SharedArrayBuffer;
}
