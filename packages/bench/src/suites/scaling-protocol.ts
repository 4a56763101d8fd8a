/**
 * What the `scaling` suite's main thread and its workers share besides the crew's control words
 * (crew-protocol.ts): the MODE values and each worker's data. One protocol module, imported by both
 * sides, which never import each other.
 *
 * @module
 */
import type { KernelHandle } from '@sabvm/core';

export { Ctl, ERROR_THROWN } from './crew-protocol.js';

/** MODE values: every thread in its own address space, or all in one. */
export const Mode = {
  OWN: 0,
  SHARED: 1,
} as const;

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
