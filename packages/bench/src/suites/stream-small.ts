/**
 * The `ring` suite's second fresh-worker stream: the program a user wrote from the docs alone, of
 * 24-byte records written and read through typed arrays, run as a user runs it (a new worker per
 * run, 2 M records). Four ways, side by side: sabvm's ring with one record per record
 * (`batchReserveBulk` of 64, which puts the records side by side in run records, read with
 * `readRecord`), sabvm's ring with 42 records packed by hand into one ring record, and two
 * hand-written single-producer rings in a plain SharedArrayBuffer: one of 24-byte slots (the record
 * alone) and one of 32-byte slots, which carries as many bytes a record as a ring record of its own
 * with its 8-byte header would: what 8 more bytes per record cost a hand-written ring.
 *
 * @module
 */
import type { Kernel, RingBuf } from '@sabvm/core';
import type { CaseGroup } from '../harness.js';
import {
  RAW_HEAD,
  RAW_RING_BYTES,
  RAW_SLOTS_AT,
  RAW_TAIL,
  SMALL_RECORD,
  StreamMode,
} from './stream-protocol.js';
import { rawRingBuffer, rawRingControl, startRun, streamRow, type Tally } from './stream.js';

/** Names of the group and its rows. */
export const STREAM_SMALL = {
  group: 'a fresh worker streams 24-byte records to the main thread (typed arrays)',
  read: 'sabvm ring, 24 B records, batchReserveBulk of 64 + readRecord',
  packed: 'sabvm ring, 42 records of 24 B per ring record + readRecord',
  raw: 'hand-written ring, 24-byte slots',
  raw32: 'hand-written ring, 32-byte slots (24 B + 8 B)',
} as const;

/** Σ (i & 3) for i below `count`: what the records' kinds add up to. */
function kindsOf(count: number): number {
  const whole = Math.floor(count / 4) * 6;
  const rest = count % 4; // the last partial cycle: 0, 1, 2 …
  return whole + (rest * (rest - 1)) / 2;
}

/**
 * One run of a sabvm program of small records (`mode`: SMALL_BULK, one ring record per record;
 * SMALL_PACKED, many per ring record), read in the main thread's own loop: `waitReadable`, then
 * `readRecord` until it answers -EAGAIN, each ring record's small records read through typed
 * arrays made once over `kernel.handle.buffer`. A wrong kind total counts as one bad record.
 */
export async function runSmallRead(
  kernel: Kernel,
  rb: RingBuf,
  count: number,
  t: Tally,
  mode: number,
): Promise<number> {
  const run = startRun({ mode, handle: kernel.handle, ring: rb.kaddr }, count, t);
  const u32 = new Uint32Array(kernel.handle.buffer);
  const f64 = new Float64Array(kernel.handle.buffer);
  const i32 = new Int32Array(kernel.handle.buffer);
  let got = 0;
  let bad = 0;
  let sum = 0;
  let kinds = 0;
  while (got < count) {
    const n = await rb.waitReadable({ timeoutMs: 100 });
    run.check(got);
    if (n < 0) throw new Error(`stream: waitReadable returned ${n}`);
    for (let at; (at = rb.readRecord()) >= 0;) {
      // a ring record holds one small record (SMALL_BULK) or readLength / 24 of them (SMALL_PACKED)
      for (const end = at + rb.readLength; at < end; at += SMALL_RECORD, got++) {
        if (u32[at >> 2] !== got) bad++;
        sum += f64[(at >> 3) + 1]!;
        kinds += i32[(at >> 2) + 4]!;
      }
    }
  }
  if (kinds !== kindsOf(count)) bad++;
  Object.assign(t, { got, bad, sum });
  return run.finish(performance.timeOrigin + performance.now());
}

/**
 * One run of a hand-written ring of `slot`-byte slots (1 MiB of them) in `raw` (see
 * `rawRingBuffer`), read through typed arrays: every slot up to the head, then the tail stored and
 * `Atomics.notify`d; `setImmediate` while the ring is empty.
 */
export async function runSmallRaw(
  count: number,
  t: Tally,
  slot: number,
  raw: SharedArrayBuffer,
): Promise<number> {
  const slots = Math.floor(RAW_RING_BYTES / slot);
  const ctl = rawRingControl(raw);
  const u32 = new Uint32Array(raw, RAW_SLOTS_AT);
  const f64 = new Float64Array(raw, RAW_SLOTS_AT);
  const i32 = new Int32Array(raw, RAW_SLOTS_AT);
  const words = slot >> 2;
  const run = startRun({ mode: StreamMode.SMALL_RAW, raw, slot }, count, t);
  let tail = 0;
  let s = 0; // the slot of record `tail`
  let bad = 0;
  let sum = 0;
  let kinds = 0;
  while (tail < count) {
    const head = Atomics.load(ctl, RAW_HEAD);
    if (head === tail) {
      // nothing yet: let the event loop run (and a failure surface), then look again
      await new Promise((resolve) => setImmediate(resolve));
      run.check(tail);
      continue;
    }
    for (; tail < head; tail++) {
      const w = s * words;
      if (u32[w] !== tail) bad++;
      sum += f64[(w >> 1) + 1]!;
      kinds += i32[w + 4]!;
      if (++s === slots) s = 0;
    }
    Atomics.store(ctl, RAW_TAIL, tail);
    Atomics.notify(ctl, RAW_TAIL);
  }
  if (kinds !== kindsOf(count)) bad++;
  Object.assign(t, { got: tail, bad, sum });
  return run.finish(performance.timeOrigin + performance.now());
}

/** The group: the four programs, a new worker per run, `count` records each. */
export function freshSmallGroup(kernel: Kernel, rb: RingBuf, quick: boolean): CaseGroup {
  const count = quick ? 500_000 : 2_000_000;
  const t: Tally = { got: 0, bad: 0, sum: 0 };
  const raw = rawRingBuffer(); // both hand-written rings' (one run at a time)
  const row = (name: string, role: 'subject' | 'baseline', run: () => Promise<number>) =>
    streamRow(name, role, count, run);
  const ratio = (subject: string, baseline: string) => ({
    name: `${subject} ÷ ${baseline}`,
    subject,
    baseline,
    kind: 'throughput' as const,
  });
  return {
    name: STREAM_SMALL.group,
    bytes: SMALL_RECORD,
    cases: [
      row(STREAM_SMALL.read, 'subject', () =>
        runSmallRead(kernel, rb, count, t, StreamMode.SMALL_BULK),
      ),
      row(STREAM_SMALL.packed, 'subject', () =>
        runSmallRead(kernel, rb, count, t, StreamMode.SMALL_PACKED),
      ),
      row(STREAM_SMALL.raw, 'baseline', () => runSmallRaw(count, t, SMALL_RECORD, raw)),
      row(STREAM_SMALL.raw32, 'baseline', () => runSmallRaw(count, t, 32, raw)),
    ],
    ratios: [
      ratio(STREAM_SMALL.read, STREAM_SMALL.raw),
      ratio(STREAM_SMALL.packed, STREAM_SMALL.raw),
      ratio(STREAM_SMALL.raw32, STREAM_SMALL.raw),
      ratio(STREAM_SMALL.read, STREAM_SMALL.raw32),
    ],
  };
}
