/**
 * The `ring` suite's fresh-worker stream: the user's program of a stream of records, run as a
 * user runs it. Each run starts a new worker that writes `count` records of 32 bytes; the main
 * thread reads each, checks its sequence number and adds up its value. Three ways, side by side:
 * sabvm's ring (records written in place with `batchReserve` or `batchReserveBulk`, read with
 * `pollAt` or in the program's own loop of `readRecord`), a hand-written
 * single-producer ring in a plain SharedArrayBuffer, and batches of 256 records transferred with
 * `postMessage`. A row's time runs from the worker's first record (sabvm's: from just before its
 * `Kernel.attach`, which a user's program pays for every worker) to the main thread's receipt of
 * the last: the worker's start-up (its modules loaded) is the same for all three and left out, its
 * warm-up (V8 compiling a fresh thread's loop) is in, as in the user's program. A hand-written ring
 * keeps one buffer for all its runs, every page written once before the first (as the sabvm ring is
 * one ring for all its runs): no run pays the first touch of a page.
 *
 * @module
 */
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { Kernel, RingBuf } from '@sabvm/core';
import type { BenchCase, CaseGroup } from '../harness.js';
import {
  RAW_HEAD,
  RAW_RING_BYTES,
  RAW_SLOTS,
  RAW_SLOTS_AT,
  RAW_TAIL,
  STREAM_RECORD,
  StreamMode,
  type StreamWorkerData,
} from './stream-protocol.js';
import { workerUrl } from './worker-url.js';

/** Names of the group and its rows. */
export const STREAM = {
  group: 'a fresh worker streams 32-byte records to the main thread',
  sabvm: 'sabvm ring, batchReserve + pollAt',
  bulk: 'sabvm ring, batchReserveBulk of 64 + pollAt',
  read: 'sabvm ring, batchReserveBulk of 64 + readRecord',
  raw: 'hand-written ring in a SharedArrayBuffer',
  transfer: 'postMessage of 256-record batches, transferred',
} as const;

/** How long a run may take before it fails the row. */
const RUN_TIMEOUT_MS = 30_000;

/** What a run's consumer counts: records, the next sequence number, the values' sum. */
export interface Tally {
  got: number;
  bad: number;
  sum: number;
}

/**
 * A run under way: its worker, a promise that rejects when the worker throws, the same as a check
 * to make after each wait, and its end.
 */
export interface Run {
  readonly worker: Worker;
  readonly failed: Promise<never>;
  /**
   * Throw the worker's error if it threw, else a "stalled at `got`" error once the run has taken
   * longer than RUN_TIMEOUT_MS. Made after each wait in a consumer's loop, instead of a
   * `Promise.race` with {@link Run.failed} per wait: each race adds a reaction to that promise,
   * which is never settled while the run goes well, and the hand-written ring's consumer waits
   * tens of thousands of times a run (the races took its rate from 46 to 33 M records/s).
   */
  check(got: number): void;
  /** Once the last record came at `end` (ms, timeOrigin-based): the worker's exit, the checks. */
  finish(end: number): Promise<number>;
}

/**
 * Start a run of `count` records the `data` way, counted into `t` (reset here). `finish(end)`
 * waits for the worker to exit, checks the tally and returns the worker's first record → `end`.
 */
export function startRun(
  data: Omit<StreamWorkerData, 'times' | 'count'>,
  count: number,
  t: Tally,
): Run {
  const times = new SharedArrayBuffer(8);
  t.got = t.bad = t.sum = 0;
  const worker = new Worker(workerUrl('./stream-worker.js', import.meta.url), {
    workerData: { ...data, count, times },
  });
  const deadline = Date.now() + RUN_TIMEOUT_MS;
  let error: { thrown: unknown } | null = null;
  const failed = new Promise<never>((_, reject) => {
    worker.once('error', (e) => {
      error = { thrown: e };
      reject(e);
    });
  });
  failed.catch(() => undefined); // read where the run waits
  const exited = once(worker, 'exit');
  // (rejects when the worker throws: a run that fails before its finish never awaits it, and the
  // failure is thrown from the consumer's loop instead)
  exited.catch(() => undefined);
  return {
    worker,
    failed,
    check: (got) => {
      if (error !== null) throw error.thrown;
      if (Date.now() > deadline) throw new Error(`stream: the run stalled at ${got}`);
    },
    finish: async (end) => {
      await exited;
      checkRun(t, count);
      return end - new Float64Array(times)[0]!;
    },
  };
}

/** Throw unless the run got every record once, in order, with its value. */
function checkRun(t: Tally, count: number): void {
  if (t.got !== count || t.bad !== 0 || t.sum !== (count * (count - 1)) / 2) {
    throw new Error(`stream: ${t.got} of ${count} records, ${t.bad} out of order, sum ${t.sum}`);
  }
}

/** One run of the sabvm program on `rb`. Returns the worker's first record → the last received, ms. */
export async function runSabvm(
  kernel: Kernel,
  rb: RingBuf,
  count: number,
  t: Tally,
  onRecord: (m: Uint8Array, offset: number) => void,
  mode: number = StreamMode.SABVM,
): Promise<number> {
  const run = startRun({ mode, handle: kernel.handle, ring: rb.kaddr }, count, t);
  while (t.got < count) {
    const n = await rb.pollAt(onRecord, { timeoutMs: 100 });
    run.check(t.got);
    if (n < 0) throw new Error(`stream: pollAt returned ${n}`);
  }
  return run.finish(performance.timeOrigin + performance.now());
}

/**
 * One run of the sabvm program that reads in its own loop: `waitReadable`, then `readRecord` until
 * it answers -EAGAIN, the fields read through one DataView (as the hand-written ring's consumer).
 */
export async function runSabvmRead(
  kernel: Kernel,
  rb: RingBuf,
  count: number,
  t: Tally,
  mode: number = StreamMode.SABVM_BULK,
): Promise<number> {
  const run = startRun({ mode, handle: kernel.handle, ring: rb.kaddr }, count, t);
  const mem = new DataView(kernel.handle.buffer);
  let got = 0;
  let bad = 0;
  let sum = 0;
  while (got < count) {
    const n = await rb.waitReadable({ timeoutMs: 100 });
    run.check(got);
    if (n < 0) throw new Error(`stream: waitReadable returned ${n}`);
    for (let at; (at = rb.readRecord()) >= 0; got++) {
      if (mem.getUint32(at, true) !== got) bad++;
      sum += mem.getFloat64(at + 8, true);
    }
  }
  Object.assign(t, { got, bad, sum });
  return run.finish(performance.timeOrigin + performance.now());
}

/**
 * The buffer of a hand-written ring (its head and tail words, then 1 MiB of slots), every page
 * written once: made once per group and used by every run, as the sabvm ring is, so that no run
 * of either pays the first touch of its pages.
 */
export function rawRingBuffer(): SharedArrayBuffer {
  const raw = new SharedArrayBuffer(RAW_SLOTS_AT + RAW_RING_BYTES);
  new Uint8Array(raw).fill(0xff);
  return raw;
}

/**
 * The head and tail words of the hand-written ring in `raw`, set back to 0 for a new run (the last
 * run's worker has exited).
 */
export function rawRingControl(raw: SharedArrayBuffer): Int32Array {
  const ctl = new Int32Array(raw, 0, 32);
  Atomics.store(ctl, RAW_HEAD, 0);
  Atomics.store(ctl, RAW_TAIL, 0);
  return ctl;
}

/** One run of the hand-written ring in `raw` (see {@link rawRingBuffer}). */
export async function runRaw(count: number, t: Tally, raw: SharedArrayBuffer): Promise<number> {
  const ctl = rawRingControl(raw);
  const dv = new DataView(raw, RAW_SLOTS_AT);
  const run = startRun({ mode: StreamMode.RAW, raw }, count, t);
  let tail = 0;
  while (tail < count) {
    const head = Atomics.load(ctl, RAW_HEAD);
    if (head === tail) {
      // nothing yet: let the event loop run (and a failure surface), then look again
      await new Promise((resolve) => setImmediate(resolve));
      run.check(tail);
      continue;
    }
    for (; tail !== head; tail++) {
      const o = (tail % RAW_SLOTS) * STREAM_RECORD;
      if (dv.getUint32(o, true) !== tail) t.bad++;
      t.sum += dv.getFloat64(o + 8, true);
    }
    Atomics.store(ctl, RAW_TAIL, tail);
    Atomics.notify(ctl, RAW_TAIL);
  }
  t.got = tail;
  return run.finish(performance.timeOrigin + performance.now());
}

/** One run of the transferred batches. */
export async function runTransfer(count: number, t: Tally): Promise<number> {
  const run = startRun({ mode: StreamMode.TRANSFER }, count, t);
  const done = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`stream: the run stalled at ${t.got}`));
    }, RUN_TIMEOUT_MS);
    run.worker.on('message', (buf: ArrayBuffer) => {
      const dv = new DataView(buf);
      for (let o = 0; o < buf.byteLength; o += STREAM_RECORD) {
        if (dv.getUint32(o, true) !== t.got) t.bad++;
        t.sum += dv.getFloat64(o + 8, true);
        t.got++;
      }
      if (t.got >= count) {
        clearTimeout(timer);
        resolve(performance.timeOrigin + performance.now());
      }
    });
  });
  return run.finish(await Promise.race([done, run.failed]));
}

/**
 * The sabvm program's `pollAt` callback: counts each record into `t`, checking its sequence number
 * and adding up its value, read where it lies in `kernel`'s memory.
 */
export function recordCounter(kernel: Kernel, t: Tally): (mem: Uint8Array, offset: number) => void {
  const mem = new DataView(kernel.handle.buffer);
  return (_m, offset) => {
    if (mem.getUint32(offset, true) !== t.got) t.bad++;
    t.sum += mem.getFloat64(offset + 8, true);
    t.got++;
  };
}

/**
 * A row of a fresh-worker group: `run` is one run of `count` records, timed by the run itself
 * (from the worker's first record to the last one's receipt).
 */
export function streamRow(
  name: string,
  role: 'subject' | 'baseline',
  count: number,
  run: () => Promise<number>,
): BenchCase {
  return {
    name,
    role,
    unit: 'records',
    unitsPerIteration: count,
    async: true,
    fn: async () => ({ overriddenDuration: await run() }),
  };
}

/** The group: the three programs, a new worker per run, `count` records each. */
export function freshStreamGroup(kernel: Kernel, rb: RingBuf, quick: boolean): CaseGroup {
  const count = quick ? 500_000 : 2_000_000;
  const t: Tally = { got: 0, bad: 0, sum: 0 };
  const onRecord = recordCounter(kernel, t); // one callback for every run, as one program has one
  const raw = rawRingBuffer();
  const row = (name: string, role: 'subject' | 'baseline', run: () => Promise<number>) =>
    streamRow(name, role, count, run);
  return {
    name: STREAM.group,
    bytes: STREAM_RECORD,
    cases: [
      row(STREAM.sabvm, 'subject', () => runSabvm(kernel, rb, count, t, onRecord)),
      row(STREAM.bulk, 'subject', () =>
        runSabvm(kernel, rb, count, t, onRecord, StreamMode.SABVM_BULK),
      ),
      row(STREAM.read, 'subject', () => runSabvmRead(kernel, rb, count, t)),
      row(STREAM.raw, 'baseline', () => runRaw(count, t, raw)),
      row(STREAM.transfer, 'baseline', () => runTransfer(count, t)),
    ],
    ratios: [
      {
        name: `${STREAM.read} ÷ ${STREAM.raw}`,
        subject: STREAM.read,
        baseline: STREAM.raw,
        kind: 'throughput',
      },
      {
        name: `${STREAM.bulk} ÷ ${STREAM.raw}`,
        subject: STREAM.bulk,
        baseline: STREAM.raw,
        kind: 'throughput',
      },
      {
        name: `${STREAM.sabvm} ÷ ${STREAM.raw}`,
        subject: STREAM.sabvm,
        baseline: STREAM.raw,
        kind: 'throughput',
      },
      {
        name: `${STREAM.sabvm} ÷ ${STREAM.transfer}`,
        subject: STREAM.sabvm,
        baseline: STREAM.transfer,
        kind: 'throughput',
      },
    ],
  };
}
