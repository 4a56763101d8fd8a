/**
 * What the `ring` suite's main thread and its producer threads share besides the crew's control
 * words (crew-protocol.ts): the record size of a round, and the format of a record, which every
 * row's producer writes and every row's consumer checks.
 *
 * ```
 *  ctl: … ERROR │ SIZE │       (after the crew's words; main writes SIZE before a round)
 *  record: │ producer index (u32 LE) │ sequence number in this round (u32 LE) │ filler … │
 * ```
 *
 * @module
 */
import type { KernelHandle } from '@sabvm/core';
import { Ctl } from './crew-protocol.js';

/** Word indices of the suite's own control words. */
export const RCtl: { readonly SIZE: number; readonly WORDS: number } = {
  SIZE: Ctl.WORDS,
  WORDS: Ctl.WORDS + 1,
};

/** MODE values: how a producer hands its records to the main thread. */
export const RMode = {
  /** `ring.output(record)`, one call per record (waiting for room when the ring is full) */
  OUTPUT: 0,
  /** `ring.reserve(size)`, copy the record into `rec.data`, `rec.submit()` */
  RESERVE: 1,
  /** `parentPort.postMessage(record)`, one message per record */
  POST: 2,
  /** records copied into a batch of {@link POST_BATCH}, `postMessage(batch)` per batch */
  POST_BATCH: 3,
  /** ringbuf.js `push(record)`, one call per record (spinning while the ring is full) */
  RINGBUFJS: 4,
  /** `ring.output(record, RB_BATCH)`, one call per record (waiting for room when the ring is full) */
  OUTPUT_BATCH: 5,
  /** `ring.batchReserve(size)`, the record written in place in `ring.batchBuffer` (RB_BATCH's batch) */
  RESERVE_BATCH: 6,
} as const;

/** Records per `postMessage` in the batched baseline. */
export const POST_BATCH = 256;
/** Bytes of the sabvm ring's data area and of ringbuf.js's storage. */
export const RING_BYTES: number = 2 ** 20;
/** Milliseconds a producer waits for room before it fails the round. */
export const ROOM_TIMEOUT_MS = 10_000;

/** What each producer gets in `workerData` (the crew adds `ctl` and `times`). */
export interface RingWorkerData {
  readonly handle: KernelHandle;
  readonly index: number;
  /** The sabvm ring's kaddr. */
  readonly ring: number;
  /** One ringbuf.js storage per producer (ringbuf.js has one producer and one consumer). */
  readonly ringbufjs: SharedArrayBuffer;
  readonly ctl: SharedArrayBuffer;
  readonly times: SharedArrayBuffer;
}

/** Write the header of record `seq` of producer `index` into `rec` (little-endian u32s). */
export function stampRecord(rec: Uint8Array, index: number, seq: number): void {
  rec[0] = index;
  rec[4] = seq & 0xff;
  rec[5] = (seq >>> 8) & 0xff;
  rec[6] = (seq >>> 16) & 0xff;
  rec[7] = seq >>> 24;
}

/** The producer index of the record at `off` of `bytes`. */
export function recordProducer(bytes: Uint8Array, off: number): number {
  return bytes[off] ?? -1;
}

/** The sequence number of the record at `off` of `bytes`. */
export function recordSeq(bytes: Uint8Array, off: number): number {
  return (
    ((bytes[off + 4] ?? 0) |
      ((bytes[off + 5] ?? 0) << 8) |
      ((bytes[off + 6] ?? 0) << 16) |
      ((bytes[off + 7] ?? 0) << 24)) >>>
    0
  );
}
