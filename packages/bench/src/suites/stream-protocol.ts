/**
 * What the fresh-worker stream of the `ring` suite shares between the main thread and the worker
 * it starts for each run: the user's program of a stream (a new worker writes `count` records of
 * 32 bytes, the main thread reads and checks each), written three ways; and the program a user
 * wrote from the docs alone, of 24-byte records through typed arrays, written four ways.
 *
 * ```
 *  record: │ sequence number (u32 LE) │ 4 bytes │ value (f64 LE) = the sequence number │ 16 bytes │
 *  times:  │ the worker's clock (performance.timeOrigin + now, ms) at its first record │
 *  raw ring (a SharedArrayBuffer): │ head (i32) │ … │ tail (i32, at byte 64) │ … │ slots from byte 128 │
 *  record of varLength(i) bytes: │ i (u32) │ 4 bytes │ i (f64) │ i (u32) in each of its other words │
 *  raw ring of those: │ length (u32; VAR_WRAP: go on at byte 0) │ 4 bytes │ the record, padded to 8 │
 *  or in fixed slots of VAR_SLOT bytes: │ the record │ the rest of the slot │
 * ```
 *
 * @module
 */
import type { KernelHandle } from '@sabvm/core';

/** How the worker sends its records. */
export const StreamMode = {
  /** sabvm: `rb.batchReserve(32)` and the fields written in place, the main thread on `pollAt` */
  SABVM: 0,
  /** a hand-written single-producer ring of fixed 32-byte slots in a SharedArrayBuffer */
  RAW: 1,
  /** batches of 256 records, each a new ArrayBuffer posted with its transfer list */
  TRANSFER: 2,
  /** sabvm: `rb.batchReserveBulk(32, STREAM_BULK)` and each record's fields written in place */
  SABVM_BULK: 3,
  /** small records: `rb.batchReserveBulk(24, STREAM_BULK)`, fields written through typed arrays */
  SMALL_BULK: 4,
  /** small records: SMALL_PACK of them in one ring record (`rb.batchReserve(24 * SMALL_PACK)`) */
  SMALL_PACKED: 5,
  /** small records: a hand-written ring of `slot`-byte slots, fields through typed arrays */
  SMALL_RAW: 6,
  /** records of four lengths: `rb.batchReserveWait(varLength(i))` each, through typed arrays */
  VAR_SABVM: 7,
  /** records of four lengths in a hand-written ring of length-prefixed records */
  VAR_RAW: 8,
  /** records of four lengths in a hand-written ring of VAR_SLOT-byte slots (the length not sent) */
  VAR_SLOTS: 9,
} as const;

/** Bytes of a record. */
export const STREAM_RECORD = 32;
/**
 * Bytes of a small record (the second group, the program a user wrote from the docs): u32 sequence
 * number at byte 0, f64 value (= the number) at 8, i32 kind (= the number & 3) at 16, 4 bytes
 * over. In a run record (`batchReserveBulk`) it takes 24 bytes of the ring; a ring record of its
 * own would take 32 with its 8-byte header.
 */
export const SMALL_RECORD = 24;
/** Small records per ring record in the packed program: 1008 bytes, within `RB_BATCH_MAX_RECORD`. */
export const SMALL_PACK = 42;
/** Records per posted batch in the transfer baseline. */
export const STREAM_BATCH = 256;
/** Records per `batchReserveBulk` in the sabvm bulk program (as the raw ring's RAW_PUBLISH). */
export const STREAM_BULK = 64;
/** Slots of the hand-written ring (1 MiB of records, as the sabvm ring). */
export const RAW_SLOTS = 32_768;
/** Int32 index of the raw ring's head (written by the worker) and tail (by the main thread). */
export const RAW_HEAD = 0;
export const RAW_TAIL = 16;
/** Byte where the raw ring's slots start. */
export const RAW_SLOTS_AT = 128;
/** The raw ring's worker publishes its head once per this many records. */
export const RAW_PUBLISH = 64;

/** Bytes of record `i` of the stream of records of four lengths: 16, 24, 32, 40, 16, … */
export function varLength(i: number): number {
  return 16 + (i & 3) * 8;
}

/**
 * A hand-written ring's length word that says "the record is at byte 0": the tail is skipped. No
 * record's length, and not what `rawRingBuffer` fills the ring with (0xff bytes), so that a
 * producer that forgot to write it is caught.
 */
export const VAR_WRAP = 0x80000000;

/**
 * Bytes the record of `len` bytes takes in the hand-written ring of length-prefixed records: its
 * length (4 bytes and 4 of padding, so that the record's double stays 8-byte aligned), then itself
 * padded to 8.
 */
export function varRawBytes(len: number): number {
  return (len + 15) & ~7;
}

/** Bytes of a slot of the fixed-slot ring of records of four lengths: the longest record. */
export const VAR_SLOT = 40;

/** Bytes of a hand-written ring's records (slots, or length-prefixed records), from RAW_SLOTS_AT. */
export const RAW_RING_BYTES: number = 2 ** 20;

/** What the worker gets in `workerData`. */
export interface StreamWorkerData {
  readonly mode: number;
  readonly count: number;
  /** Float64Array word 0: the worker's clock at its first record. */
  readonly times: SharedArrayBuffer;
  /** SABVM: the kernel and the ring's kaddr. */
  readonly handle?: KernelHandle;
  readonly ring?: number;
  /** RAW, SMALL_RAW, VAR_RAW, VAR_SLOTS: the ring's buffer. */
  readonly raw?: SharedArrayBuffer;
  /** SMALL_RAW: bytes of a slot (24: the record alone; 32: as much as the sabvm ring carries). */
  readonly slot?: number;
}
