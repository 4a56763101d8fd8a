/**
 * Suite `ring`: streams of small records from worker threads to the main thread. sabvm's BPF ring
 * buffer (`output` per record with `RB_BATCH` and without, `batchReserve` with the record written
 * in place, and `reserve` + `submit`), consumed on the main thread with `pollAt`, against what a
 * user would write instead: one `postMessage` per record, `postMessage` of batches of 256 records,
 * and ringbuf.js (one producer, one consumer) with one `push` per record. Every consumer checks
 * that each record arrives once, in its producer's order. The last three groups are the user's
 * program run once per fresh worker: 32-byte records against a hand-written ring and transferred
 * batches (stream.ts), 24-byte records one ring record each and packed (stream-small.ts), and
 * records of 16 to 40 bytes (stream-var.ts), against hand-written rings.
 *
 * @module
 */
import { Kernel, type RingBuf } from '@sabvm/core';
import { RingBuffer } from 'ringbuf.js';
import { SuiteBench, type BenchCase, type CaseGroup, type RatioSpec } from '../harness.js';
import { checkIntegrity } from '../integrity.js';
import type { GroupResult } from '../results.js';
import { Crew } from './crew.js';
import { Ctl } from './crew-protocol.js';
import { POST_BATCH, RCtl, RING_BYTES, RMode, recordProducer, recordSeq } from './ring-protocol.js';
import { freshStreamGroup } from './stream.js';
import { freshSmallGroup } from './stream-small.js';
import { freshVarGroup } from './stream-var.js';
import type { Suite, SuiteContext, SuiteOutput } from './suite.js';
import { workerUrl } from './worker-url.js';

/** Group and row names, shared with the targets. */
export const RING = {
  small: '32-byte records, one producer → main thread',
  two: '32-byte records, two producers → main thread',
  large: '1 KiB records, one producer → main thread',
  output: 'ring output',
  outputBatch: 'ring output, RB_BATCH',
  reserveBatch: 'ring batchReserve, in place',
  reserve: 'ring reserve + submit',
  post: 'postMessage per record',
  batch: 'postMessage per 256 records',
  ringbufjs: 'ringbuf.js push per record',
  one: '1 producer, output',
  twoOutput: '2 producers, output',
  twoReserve: '2 producers, reserve + submit',
  oneBatch: '1 producer, output RB_BATCH',
  twoBatch: '2 producers, output RB_BATCH',
} as const;
if (!RING.batch.includes(String(POST_BATCH))) throw new Error('ring: RING.batch names POST_BATCH');

/** The `ring` suite. */
export const ringSuite: Suite = {
  name: 'ring',
  title:
    'BPF ring buffer: records from worker threads to the main thread vs postMessage and ringbuf.js',
  rateLabel: 'records/s',
  run: runRing,
};

/** Producers started (two rows use both; ringbuf.js, one producer and one consumer, uses one). */
const PRODUCERS = 2;
/** How long the main thread waits for a round's last record before it fails the row. */
const ROUND_TIMEOUT_MS = 30_000;

/** Counts and checks the records of a round as the main thread receives them. */
class Tally {
  next: number[] = [];
  got = 0;
  bad = 0;

  reset(k: number): void {
    this.next = new Array<number>(k).fill(0);
    this.got = 0;
    this.bad = 0;
  }

  /** One record at `off` of `bytes`: it must be its producer's next. */
  take(bytes: Uint8Array, off: number): void {
    const p = recordProducer(bytes, off);
    const seq = recordSeq(bytes, off);
    if (this.next[p] !== seq) this.bad++;
    this.next[p] = seq + 1;
    this.got++;
  }
}

/** The producers, the rings they write to, and the main thread's side of each kind of row. */
class Rig {
  readonly crew: Crew;
  readonly ring: RingBuf;
  readonly jsRing: RingBuffer;
  readonly tally = new Tally();
  private readonly takeAt: (mem: Uint8Array, offset: number) => void;
  /** Called with each message of a producer during a postMessage round. */
  private onMessage: (bytes: Uint8Array) => void = () => undefined;

  constructor(kernel: Kernel) {
    const ring = kernel.ringbufCreate(RING_BYTES);
    if (ring === null) throw new Error('ring: ringbufCreate failed');
    this.ring = ring;
    const storage = RingBuffer.getStorageForCapacity(RING_BYTES, Uint8Array);
    this.jsRing = new RingBuffer(storage, Uint8Array);
    const url = workerUrl('./ring-worker.js', import.meta.url);
    const datas = Array.from({ length: PRODUCERS }, (_, index) => ({
      handle: kernel.handle,
      index,
      ring: ring.kaddr,
      ringbufjs: storage,
    }));
    this.crew = new Crew(url, datas, RCtl.WORDS);
    for (const w of this.crew.workers) {
      w.on('message', (bytes: Uint8Array) => {
        this.onMessage(bytes);
      });
    }
    const { tally } = this;
    this.takeAt = (mem, offset) => {
      tally.take(mem, offset);
    };
  }

  /** Throw when a producer failed or the round ran out of time. */
  private check(deadline: number): void {
    if (Atomics.load(this.crew.ctl, Ctl.ERROR) !== 0) throw new Error('ring: a producer failed');
    if (Date.now() > deadline) throw new Error(`ring: the round stalled at ${this.tally.got}`);
  }

  /** The main thread's side of a round: take `total` records the round's way. */
  private async receive(mode: number, size: number, total: number): Promise<void> {
    const deadline = Date.now() + ROUND_TIMEOUT_MS;
    const { tally } = this;
    if (
      mode === RMode.OUTPUT ||
      mode === RMode.RESERVE ||
      mode === RMode.OUTPUT_BATCH ||
      mode === RMode.RESERVE_BATCH
    ) {
      while (tally.got < total) {
        const n = await this.ring.pollAt(this.takeAt, { timeoutMs: 100 });
        if (n < 0) throw new Error(`ring: poll returned ${n}`);
        this.check(deadline);
      }
    } else if (mode === RMode.RINGBUFJS) {
      const buf = new Uint8Array(size);
      for (let spins = 0; tally.got < total;) {
        if (this.jsRing.pop(buf) === size) tally.take(buf, 0);
        else if ((++spins & 0xfff) === 0) this.check(deadline);
      }
    } else {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error(`ring: the round stalled at ${tally.got}`));
        }, ROUND_TIMEOUT_MS);
        this.onMessage = (bytes) => {
          for (let off = 0; off < bytes.length; off += size) tally.take(bytes, off);
          if (tally.got >= total) {
            clearTimeout(timer);
            resolve();
          }
        };
      });
      this.onMessage = () => undefined;
    }
  }

  /** One round: `k` producers send `ops` records each; returns first start → last record, ms. */
  async round(mode: number, k: number, size: number, ops: number): Promise<number> {
    this.tally.reset(k);
    Atomics.store(this.crew.ctl, RCtl.SIZE, size);
    const done = this.crew.round(mode, k, ops);
    try {
      await this.receive(mode, size, k * ops);
    } finally {
      await done;
    }
    const end = performance.timeOrigin + performance.now();
    if (this.tally.got !== k * ops || this.tally.bad !== 0) {
      throw new Error(
        `ring: ${this.tally.got} of ${k * ops} records, ${this.tally.bad} out of order or repeated`,
      );
    }
    let start = Number.POSITIVE_INFINITY;
    for (let i = 0; i < k; i++) start = Math.min(start, this.crew.times[2 * i] ?? Number.NaN);
    return end - start;
  }

  async stop(): Promise<void> {
    await this.crew.stop();
    this.ring.free();
  }
}

/** A row: `k` producers sending `ops` records of `size` bytes each the `mode` way. */
function row(
  rig: Rig,
  name: string,
  role: 'subject' | 'baseline',
  mode: number,
  k: number,
  size: number,
  ops: number,
): BenchCase {
  return {
    name,
    role,
    unit: 'records',
    unitsPerIteration: k * ops,
    async: true,
    fn: async () => ({ overriddenDuration: await rig.round(mode, k, size, ops) }),
  };
}

const per = (subject: string, baseline: string): RatioSpec => ({
  name: `${subject} ÷ ${baseline}`,
  subject,
  baseline,
  kind: 'throughput',
});

/** The one-producer group of records of `size` bytes: the ring's two ways and the baselines. */
function oneProducerGroup(rig: Rig, name: string, size: number, quick: boolean): CaseGroup {
  const ops = (quick ? 1 : 4) * (size <= 64 ? 50_000 : 5000);
  const postOps = ops / 10;
  return {
    name,
    bytes: size,
    cases: [
      row(rig, RING.reserveBatch, 'subject', RMode.RESERVE_BATCH, 1, size, ops),
      row(rig, RING.outputBatch, 'subject', RMode.OUTPUT_BATCH, 1, size, ops),
      row(rig, RING.output, 'subject', RMode.OUTPUT, 1, size, ops),
      row(rig, RING.reserve, 'subject', RMode.RESERVE, 1, size, ops),
      row(rig, RING.post, 'baseline', RMode.POST, 1, size, postOps),
      row(rig, RING.batch, 'baseline', RMode.POST_BATCH, 1, size, ops),
      row(rig, RING.ringbufjs, 'baseline', RMode.RINGBUFJS, 1, size, ops),
    ],
    ratios: [
      per(RING.reserveBatch, RING.ringbufjs),
      per(RING.reserveBatch, RING.batch),
      per(RING.reserveBatch, RING.outputBatch),
      per(RING.outputBatch, RING.ringbufjs),
      per(RING.outputBatch, RING.post),
      per(RING.outputBatch, RING.batch),
      per(RING.output, RING.ringbufjs),
      per(RING.output, RING.post),
      per(RING.output, RING.batch),
      per(RING.reserve, RING.ringbufjs),
      per(RING.reserve, RING.batch),
    ],
  };
}

async function runRing(ctx: SuiteContext): Promise<SuiteOutput> {
  const kernel = Kernel.boot({ memoryBytes: 32 * 2 ** 20 });
  const freeAfterBoot = kernel.stats().freeFrames;
  const bench = new SuiteBench('ring', ctx.harness);
  const rig = new Rig(kernel);
  const groups: GroupResult[] = [];
  try {
    await rig.crew.ready();
    ctx.progress('32-byte records');
    groups.push(await bench.runGroup(oneProducerGroup(rig, RING.small, 32, ctx.quick)));
    ctx.progress('two producers');
    const ops = (ctx.quick ? 1 : 4) * 50_000;
    groups.push(
      await bench.runGroup({
        name: RING.two,
        bytes: 32,
        cases: [
          row(rig, RING.one, 'baseline', RMode.OUTPUT, 1, 32, ops),
          row(rig, RING.twoOutput, 'subject', RMode.OUTPUT, 2, 32, ops / 2),
          row(rig, RING.twoReserve, 'subject', RMode.RESERVE, 2, 32, ops / 2),
          row(rig, RING.oneBatch, 'baseline', RMode.OUTPUT_BATCH, 1, 32, ops),
          row(rig, RING.twoBatch, 'subject', RMode.OUTPUT_BATCH, 2, 32, ops / 2),
        ],
        ratios: [
          { ...per(RING.twoOutput, RING.one), name: '2 ÷ 1 producer' },
          { ...per(RING.twoReserve, RING.one), name: '2 reserve ÷ 1 producer' },
          { ...per(RING.twoBatch, RING.oneBatch), name: '2 ÷ 1 producer, RB_BATCH' },
        ],
      }),
    );
    ctx.progress('1 KiB records');
    groups.push(await bench.runGroup(oneProducerGroup(rig, RING.large, 1024, ctx.quick)));
    ctx.progress('a fresh worker per stream');
    groups.push(await bench.runGroup(freshStreamGroup(kernel, rig.ring, ctx.quick)));
    ctx.progress('a fresh worker per stream, 24-byte records');
    groups.push(await bench.runGroup(freshSmallGroup(kernel, rig.ring, ctx.quick)));
    ctx.progress('a fresh worker per stream, records of 16 to 40 bytes');
    groups.push(await bench.runGroup(freshVarGroup(kernel, rig.ring, ctx.quick)));
  } finally {
    await rig.stop();
  }
  return {
    groups,
    measures: [],
    lines: [],
    notes: [
      `Records go from worker threads to the main thread; a row's time runs from the first producer's start to the main thread's receipt of the last record, and every record is checked (once, in its producer's order). sabvm: one ring of ${RING_BYTES / 2 ** 20} MiB, consumed with pollAt (Atomics.waitAsync; each record read in place by its offset, no view per record); producers wait for room with outputWait/reserveWait. 'output, RB_BATCH' rows: the same output calls with the RB_BATCH flag (the ring publishes each producer's records a chunk of up to 128 KiB at a time; the producer flushes after its last record); 'ring batchReserve, in place' rows: each record written where batchReserve says in the producer's batch buffer (no record buffer, no copy into the batch), published as RB_BATCH's; 'ring output' rows publish every record at once, as Linux does. ringbuf.js: ${RING_BYTES / 2 ** 20} MiB, one producer and one consumer; it has no wait, so its producer retries a full ring and the main thread spins on pop. postMessage per record sends a tenth of the records of the other rows.`,
      `The fresh-worker group is the user's program of a stream, run as a user runs it: each run starts a new worker that writes 2 M records of 32 bytes (500 000 in a quick run) (a sequence number and a value), and the main thread checks each record's number and adds up the values. sabvm: batchReserveBulk of 64 records per call and two DataView stores per record, the main thread reading in its own loop (waitReadable, then readRecord until it answers -EAGAIN, two DataView loads per record) or, rows of their own, on pollAt, and with one batchReserve per record; hand-written ring: fixed 32-byte slots in a plain SharedArrayBuffer, the head published every 64 records, the main thread reading every slot and spinning through setImmediate while the ring is empty; transfer: batches of 256 records, a new ArrayBuffer each, posted with a transfer list. A row's time runs from the worker's first record (for sabvm, from just before its Kernel.attach) to the main thread's receipt of the last: the worker's start-up (its modules loaded) is left out, its warm-up (V8 compiling a fresh thread's loop) is in. Each hand-written ring uses one buffer for all its runs, every page written once before the first, as the sabvm ring is one ring for all its runs.`,
      `The 24-byte group is the program a user wrote from the docs alone, run the same way: records of a sequence number, a double and a kind (the number & 3), written and read through typed arrays made once. sabvm: batchReserveBulk of 64 records, read with waitReadable and readRecord (the records lie side by side, 24 bytes each, in run records of up to 128 KiB under one header); packed: 42 records side by side in one ring record of 1008 bytes (batchReserve), the consumer stepping through readLength 24 bytes at a time. Hand-written rings: 1 MiB of slots in a plain SharedArrayBuffer, the head published every 64 records, a full ring slept on with Atomics.wait (up to 10 ms), the consumer storing and notifying the tail after each pass and turning through setImmediate while the ring is empty; one of 24-byte slots, one of 32-byte slots (the bytes a ring record of its own carries with its 8-byte header: its ratio to the 24-byte ring is what 8 more bytes per record cost).`,
      `The group of records of 16 to 40 bytes runs the same way: record i is 16 + (i & 3) * 8 bytes (a sequence number, a double, the number again in each further word). sabvm: one batchReserveWait(length) per record, read with readRecord and readLength; hand-written: a ring of length-prefixed records (a length word and 4 bytes of padding before each record, a mark where a record that does not fit before the end leaves the tail), and a ring of 40-byte slots, the length not sent (the consumer knows it from the record's number, as from a kind). Both hand-written rings publish their head every 64 records; the sabvm ring publishes a chunk of up to 128 KiB at a time.`,
    ],
    integrity: checkIntegrity(kernel, freeAfterBoot),
  };
}
