/**
 * The `ring` suite's third fresh-worker stream: records of four lengths (16, 24, 32 and 40 bytes,
 * in turn), as a log or a stream of events has, from a new worker per run to the main thread.
 * Three ways, side by side: sabvm's ring, one `batchReserveWait` per record and the main thread's
 * own loop of `readRecord`; a hand-written single-producer ring of length-prefixed records in a
 * plain SharedArrayBuffer, as a user writes one for records whose length the consumer cannot
 * tell (a length word before each record, a mark where a record that does not fit before the end
 * leaves the tail), which carries a length with each record as the BPF ring's header does; and a
 * hand-written ring of fixed slots as long as the longest record, the length not sent, as a user
 * writes one when each record's kind tells its length (here its number does).
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
  StreamMode,
  VAR_SLOT,
  VAR_WRAP,
  varLength,
  varRawBytes,
} from './stream-protocol.js';
import { rawRingBuffer, rawRingControl, startRun, streamRow, type Tally } from './stream.js';

/** Names of the group and its rows. */
export const STREAM_VAR = {
  group: 'a fresh worker streams records of 16 to 40 bytes to the main thread',
  sabvm: 'sabvm ring, batchReserve per record + readRecord',
  raw: 'hand-written ring of length-prefixed records',
  slots: 'hand-written ring of 40-byte slots (each length known from the record)',
} as const;

/**
 * Check record `i` (`len` bytes at byte `at` of `u32`'s buffer): its length, its sequence number
 * and, past its first 16 bytes (number and value), the number in its last word. Returns 1 for a
 * bad record, else 0.
 */
function badRecord(u32: Uint32Array, at: number, len: number, i: number): number {
  if (len !== varLength(i) || u32[at >> 2] !== i) return 1;
  return len > 16 && u32[(at + len - 4) >> 2] !== i ? 1 : 0;
}

/**
 * One run of the sabvm program: `waitReadable`, then `readRecord` until it answers -EAGAIN, each
 * record's length from `readLength` and its fields read through typed arrays made once.
 */
export async function runVarSabvm(
  kernel: Kernel,
  rb: RingBuf,
  count: number,
  t: Tally,
): Promise<number> {
  const run = startRun(
    { mode: StreamMode.VAR_SABVM, handle: kernel.handle, ring: rb.kaddr },
    count,
    t,
  );
  const u32 = new Uint32Array(kernel.handle.buffer);
  const f64 = new Float64Array(kernel.handle.buffer);
  let got = 0;
  let bad = 0;
  let sum = 0;
  while (got < count) {
    const n = await rb.waitReadable({ timeoutMs: 100 });
    run.check(got);
    if (n < 0) throw new Error(`stream: waitReadable returned ${n}`);
    for (let at; (at = rb.readRecord()) >= 0; got++) {
      bad += badRecord(u32, at, rb.readLength, got);
      sum += f64[(at >> 3) + 1]!;
    }
  }
  Object.assign(t, { got, bad, sum });
  return run.finish(performance.timeOrigin + performance.now());
}

/**
 * One run of the hand-written ring of length-prefixed records in `raw` (see `rawRingBuffer`):
 * every record up to the head (a VAR_WRAP length sends the reader to byte 0), then the tail stored
 * and `Atomics.notify`d; `setImmediate` while the ring is empty. A length that is not the record's
 * or a read past the head means the ring is broken: it throws at once (reading on would not end).
 */
export async function runVarRaw(count: number, t: Tally, raw: SharedArrayBuffer): Promise<number> {
  const ctl = rawRingControl(raw);
  const u32 = new Uint32Array(raw, RAW_SLOTS_AT);
  const f64 = new Float64Array(raw, RAW_SLOTS_AT);
  const size = RAW_RING_BYTES;
  const run = startRun({ mode: StreamMode.VAR_RAW, raw }, count, t);
  let got = 0;
  let tail = 0; // bytes consumed
  let off = 0; // tail's byte in the ring
  let bad = 0;
  let sum = 0;
  while (got < count) {
    const head = Atomics.load(ctl, RAW_HEAD);
    if (head === tail) {
      // nothing yet: let the event loop run (and a failure surface), then look again
      await new Promise((resolve) => setImmediate(resolve));
      run.check(got);
      continue;
    }
    while (tail < head) {
      let len = u32[off >> 2]!;
      if (len === VAR_WRAP) {
        tail += size - off;
        off = 0;
        len = u32[0]!;
      }
      if (len !== varLength(got)) throw new Error(`stream: record ${got} has length ${len}`);
      const at = off + 8;
      bad += badRecord(u32, at, len, got);
      sum += f64[(at >> 3) + 1]!;
      got++;
      tail += varRawBytes(len);
      off += varRawBytes(len);
      if (off === size) off = 0;
    }
    if (tail !== head) throw new Error(`stream: read to byte ${tail}, past the head at ${head}`);
    Atomics.store(ctl, RAW_TAIL, tail);
    Atomics.notify(ctl, RAW_TAIL);
  }
  Object.assign(t, { got, bad, sum });
  return run.finish(performance.timeOrigin + performance.now());
}

/**
 * One run of the hand-written ring of VAR_SLOT-byte slots in `raw`: every slot up to the head,
 * each record's length from its number, then the tail stored and `Atomics.notify`d; `setImmediate`
 * while the ring is empty.
 */
export async function runVarSlots(
  count: number,
  t: Tally,
  raw: SharedArrayBuffer,
): Promise<number> {
  const ctl = rawRingControl(raw);
  const u32 = new Uint32Array(raw, RAW_SLOTS_AT);
  const f64 = new Float64Array(raw, RAW_SLOTS_AT);
  const slots = Math.floor(RAW_RING_BYTES / VAR_SLOT);
  const run = startRun({ mode: StreamMode.VAR_SLOTS, raw }, count, t);
  let tail = 0;
  let s = 0; // the slot of record `tail`
  let bad = 0;
  let sum = 0;
  while (tail < count) {
    const head = Atomics.load(ctl, RAW_HEAD);
    if (head === tail) {
      // nothing yet: let the event loop run (and a failure surface), then look again
      await new Promise((resolve) => setImmediate(resolve));
      run.check(tail);
      continue;
    }
    for (; tail < head; tail++) {
      const at = s * VAR_SLOT;
      bad += badRecord(u32, at, varLength(tail), tail);
      sum += f64[(at >> 3) + 1]!;
      if (++s === slots) s = 0;
    }
    Atomics.store(ctl, RAW_TAIL, tail);
    Atomics.notify(ctl, RAW_TAIL);
  }
  Object.assign(t, { got: tail, bad, sum });
  return run.finish(performance.timeOrigin + performance.now());
}

/** The group: the three programs, a new worker per run, `count` records each. */
export function freshVarGroup(kernel: Kernel, rb: RingBuf, quick: boolean): CaseGroup {
  const count = quick ? 500_000 : 2_000_000;
  const t: Tally = { got: 0, bad: 0, sum: 0 };
  const raw = rawRingBuffer(); // both hand-written rings' (one run at a time)
  const row = (name: string, role: 'subject' | 'baseline', run: () => Promise<number>) =>
    streamRow(name, role, count, run);
  const ratio = (baseline: string) => ({
    name: `${STREAM_VAR.sabvm} ÷ ${baseline}`,
    subject: STREAM_VAR.sabvm,
    baseline,
    kind: 'throughput' as const,
  });
  return {
    name: STREAM_VAR.group,
    cases: [
      row(STREAM_VAR.sabvm, 'subject', () => runVarSabvm(kernel, rb, count, t)),
      row(STREAM_VAR.raw, 'baseline', () => runVarRaw(count, t, raw)),
      row(STREAM_VAR.slots, 'baseline', () => runVarSlots(count, t, raw)),
    ],
    ratios: [ratio(STREAM_VAR.raw), ratio(STREAM_VAR.slots)],
  };
}
