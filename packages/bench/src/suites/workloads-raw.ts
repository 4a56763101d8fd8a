/**
 * The plain sides of the `workloads` suite, in one Piscina worker module, as a user writes them
 * today: a raw `SharedArrayBuffer` with an element range in each task message, or an `ArrayBuffer`
 * transferred to the task (`transferList`) and transferred back with the result (`move`).
 *
 * @module
 */
import { move, transferableSymbol, valueSymbol } from 'piscina';
import {
  lookups,
  normalizeSlice,
  RawRing,
  RECORD_BYTES,
  recordValue,
  RECORDS_PER_BATCH,
  sliceStats,
  type RecordsTask,
} from './workloads-protocol.js';

/** A raw task: the buffer, the element range, and the program's numbers. */
export interface RawTask {
  readonly sab: SharedArrayBuffer;
  readonly start: number;
  readonly end: number;
  readonly mean?: number;
  readonly std?: number;
  readonly seed?: number;
}

const slice = (t: RawTask): Float32Array => new Float32Array(t.sab, t.start * 4, t.end - t.start);

export function stats(t: RawTask): [number, number] {
  return sliceStats(slice(t));
}

export function normalize(t: RawTask): number {
  normalizeSlice(slice(t), t.mean ?? 0, t.std ?? 1);
  return t.end - t.start;
}

export function lookup(t: RawTask): number {
  return lookups(slice(t), t.seed ?? 0);
}

/** A transfer task: the buffer (moved here), and the program's numbers. */
export interface MoveTask {
  readonly buf: ArrayBuffer;
  readonly mean?: number;
  readonly std?: number;
  readonly seed?: number;
}

/** What a transfer task sends back: the buffer (moved back) and its result. */
export interface MoveResult<R> {
  readonly buf: ArrayBuffer;
  readonly result: R;
}

/** Return `buf` to the caller by transfer, with `result` beside it. */
function moveBack(buf: ArrayBuffer, result: unknown): unknown {
  return move({
    [transferableSymbol]: [buf],
    [valueSymbol]: { buf, result } satisfies MoveResult<unknown>,
  });
}

export function statsMove(t: MoveTask): unknown {
  return moveBack(t.buf, sliceStats(new Float32Array(t.buf)));
}

export function normalizeMove(t: MoveTask): unknown {
  normalizeSlice(new Float32Array(t.buf), t.mean ?? 0, t.std ?? 1);
  return moveBack(t.buf, t.buf.byteLength / 4);
}

export function lookupMove(t: MoveTask): unknown {
  return moveBack(t.buf, lookups(new Float32Array(t.buf), t.seed ?? 0));
}

/**
 * Raw records: the producer end of this task's hand-written ring. Waits (Atomics.wait on HEAD)
 * while the ring is full; publishes TAIL after each record and wakes the consumer once per batch.
 */
export function records(t: RecordsTask): number {
  const sab = t.sab!;
  const ctl = new Int32Array(sab, 0, 2);
  const cap = (sab.byteLength - RawRing.HEADER_BYTES) / RECORD_BYTES;
  const i32 = new Int32Array(sab, RawRing.HEADER_BYTES);
  const f64 = new Float64Array(sab, RawRing.HEADER_BYTES);
  for (let seq = 0; seq < t.count; seq++) {
    for (;;) {
      const head = Atomics.load(ctl, RawRing.HEAD);
      if (seq - head < cap) break;
      Atomics.notify(ctl, RawRing.TAIL); // the consumer may be asleep on a full ring
      Atomics.wait(ctl, RawRing.HEAD, head, 10);
    }
    const slot = seq % cap;
    i32[slot * 4] = t.id;
    i32[slot * 4 + 1] = seq;
    f64[slot * 2 + 1] = recordValue(t.id, seq);
    Atomics.store(ctl, RawRing.TAIL, seq + 1);
    if ((seq + 1) % RECORDS_PER_BATCH === 0) Atomics.notify(ctl, RawRing.TAIL);
  }
  Atomics.notify(ctl, RawRing.TAIL);
  return t.count;
}

/** Transfer records: batches of records, each a new ArrayBuffer posted with its transfer list. */
export function recordsMove(t: RecordsTask): number {
  const port = t.port!;
  for (let first = 0; first < t.count; first += RECORDS_PER_BATCH) {
    const n = Math.min(RECORDS_PER_BATCH, t.count - first);
    const buf = new ArrayBuffer(n * RECORD_BYTES);
    const i32 = new Int32Array(buf);
    const f64 = new Float64Array(buf);
    for (let i = 0; i < n; i++) {
      i32[i * 4] = t.id;
      i32[i * 4 + 1] = first + i;
      f64[i * 2 + 1] = recordValue(t.id, first + i);
    }
    port.postMessage(buf, [buf]);
  }
  port.close();
  return t.count;
}
