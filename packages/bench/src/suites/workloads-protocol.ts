/**
 * What the `workloads` suite's tasks share: the names of their exports and the arithmetic both
 * the sabvm task and the raw-SharedArrayBuffer worker run, so the two sides do the same work.
 *
 * @module
 */
import type { MessagePort } from 'node:worker_threads';

/** Exports of the task modules (sabvm and raw), by program. */
export const WORKLOAD_TASKS = {
  /** Tensor pass 1: sum and sum of squares of a slice. */
  stats: 'stats',
  /** Tensor pass 2: normalise a slice in place. */
  normalize: 'normalize',
  /** Table: `LOOKUPS` reads at pseudo-random indexes; their sum. */
  lookup: 'lookup',
  /** Transfer side of `stats`: the slice's buffer moved in and back. */
  statsMove: 'statsMove',
  /** Transfer side of `normalize`. */
  normalizeMove: 'normalizeMove',
  /** Transfer side of `lookup`: the whole table moved in and back. */
  lookupMove: 'lookupMove',
  /** Records: send `count` records from producer `id` to the main thread. */
  records: 'records',
  /** Records, transfer side: batches of records in ArrayBuffers posted to a port. */
  recordsMove: 'recordsMove',
  /** Nothing: a task round trip over its mappings (the read-only check's cost). */
  touch: 'touch',
} as const;

/** Reads per lookup task. */
export const LOOKUPS = 4096;

/** Sum and sum of squares of `v` (pass 1). */
export function sliceStats(v: Float32Array): [number, number] {
  let sum = 0;
  let sq = 0;
  for (const x of v) {
    sum += x;
    sq += x * x;
  }
  return [sum, sq];
}

/** `(x - mean) / std` in place (pass 2). */
export function normalizeSlice(v: Float32Array, mean: number, std: number): void {
  const inv = 1 / std;
  for (let i = 0; i < v.length; i++) v[i] = (v[i]! - mean) * inv;
}

/** The sum of `LOOKUPS` entries of `table` at indexes from `seed` (an LCG). */
export function lookups(table: Float32Array, seed: number): number {
  let s = seed >>> 0;
  let sum = 0;
  for (let i = 0; i < LOOKUPS; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    sum += table[s % table.length]!;
  }
  return sum;
}

/** The value of tensor element `i` before normalisation. */
export function tensorValue(i: number): number {
  return (i % 1000) * 0.001;
}

/** Bytes of one record: producer id and sequence number (Int32 each), then a Float64 value. */
export const RECORD_BYTES = 16;

/** Records per message on the transfer side (one 4 KiB ArrayBuffer). */
export const RECORDS_PER_BATCH = 256;

/** The value of record `seq` of producer `id`. */
export function recordValue(id: number, seq: number): number {
  return id * 0.5 + seq * 0.25;
}

/** A records task, for every side: who produces, how many, and where to (one of the three). */
export interface RecordsTask {
  readonly id: number;
  readonly count: number;
  /** sabvm: the kaddr of the ring (`kernel.ringbufCreate`). */
  readonly ring?: number;
  /** raw: this producer's ring, {@link RawRing} words then the records. */
  readonly sab?: SharedArrayBuffer;
  /** transfer: the port batches are posted to. */
  readonly port?: MessagePort;
}

/**
 * The raw side's hand-written ring, one per producer (single producer, single consumer): two
 * Int32 positions in records (`HEAD`, written by the consumer; `TAIL`, by the producer, both with
 * Atomics), padded to 16 bytes, then `capacity` records.
 */
export const enum RawRing {
  HEAD = 0,
  TAIL = 1,
  /** Bytes before the first record. */
  HEADER_BYTES = 16,
}
