/**
 * Batched output (`RB_BATCH`): records a thread outputs with it reach the consumer a chunk at a
 * time. What is checked: when a batch becomes visible (flush, end of the job, a full chunk, any
 * other producing call on the handle, a consume on the same thread), that nothing is lost, repeated
 * or reordered, the wake-up, the ring's headers and positions (the invariant checker), full rings,
 * wrap-around, and a ring freed with a batch open.
 */
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { describe, expect, it, vi } from 'vitest';
import {
  BPF_RB_FORCE_WAKEUP,
  BPF_RB_NO_WAKEUP,
  BPF_RB_CONS_POS,
  BPF_RB_PROD_POS,
  EAGAIN,
  EINVAL,
  Kernel,
  PAGE_SIZE,
  RB_BATCH,
  RB_BATCH_MAX_RECORD,
  ringbufBulkStride,
  RINGBUF_BUSY_BIT,
  RINGBUF_DISCARD_BIT,
  type RingBuf,
} from '../src/index.js';
import { RINGBUF_SETTLED_BIT } from '../src/layout.js';
import { ringConsume, type RingRef } from '../src/ringbuf.js';
import { MiB } from './helpers/reliability.js';
import {
  countWaiter,
  fillRecord,
  readRecord,
  ringWord,
  setPositions,
  wakeSeq,
} from './helpers/ring-helpers.js';

function boot(): Kernel {
  return Kernel.boot({ memoryBytes: 16 * MiB });
}

/**
 * The sequence numbers a consumer on another thread would get now: consumes through the ring's
 * words directly, so this thread's open batches are not published first (as `consume` does).
 */
function ringRef(rb: RingBuf): RingRef {
  return (rb as unknown as { consumerRef(): RingRef }).consumerRef();
}

function seen(rb: RingBuf): number[] {
  const ref = ringRef(rb);
  const got: number[] = [];
  const n = ringConsume(ref, (v: Uint8Array) => void got.push(readRecord(v)[1]));
  expect(n).toBe(got.length);
  return got;
}

/** Output records `from` … `to - 1` of `len` bytes with `flags`; each must be taken. */
function outputRange(rb: RingBuf, from: number, to: number, len = 32, flags = RB_BATCH): void {
  const bytes = new Uint8Array(len);
  for (let seq = from; seq < to; seq++) {
    fillRecord(bytes, 1, seq);
    expect(rb.output(bytes, flags)).toBe(0);
  }
}

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from }, (_, i) => from + i);

/**
 * Records of lengths that change every round, from positions just below 2^32 in a ring of two
 * pages, so that records wrap around the data area and the positions wrap their 32-bit words:
 * `put(rb, len, seq)` sends record `seq` (0, or -EAGAIN when the ring is full: the consumer then
 * takes what is there and `put` is called again); a flush every third round. Every record must
 * arrive once, in order.
 */
function streamAcrossWraps(
  k: Kernel,
  put: (rb: RingBuf, len: number, seq: number) => number,
): void {
  const rb = k.ringbufCreate(2 * PAGE_SIZE)!;
  setPositions(k, rb, 2 ** 32 - 3 * PAGE_SIZE);
  const got: number[] = [];
  let seq = 0;
  for (let round = 0; round < 60; round++) {
    const len = 8 + ((round * 37) % 200);
    for (let i = 0; i < 1 + ((round * 13) % 40); i++) {
      let rc = put(rb, len, seq);
      if (rc === -EAGAIN) {
        got.push(...seen(rb));
        rc = put(rb, len, seq);
      }
      expect(rc).toBe(0);
      seq++;
    }
    if (round % 3 === 0) rb.flush();
    got.push(...seen(rb));
  }
  rb.flush();
  got.push(...seen(rb));
  expect(got).toEqual(range(0, seq));
  k.checkInvariants();
}

describe('RB_BATCH output', () => {
  it('holds records back until the batch is flushed, then delivers them all in order, intact', () => {
    const k = boot();
    const rb = k.ringbufCreate(16 * PAGE_SIZE)!;
    outputRange(rb, 0, 10);
    expect(seen(rb)).toEqual([]);
    k.checkInvariants(); // one busy record (the chunk) owned by this attached thread
    rb.flush();
    expect(seen(rb)).toEqual(range(0, 10));
    rb.flush(); // nothing open: nothing happens
    expect(seen(rb)).toEqual([]);
    k.checkInvariants();
  });

  it('publishes at the end of the current job (a microtask)', async () => {
    const k = boot();
    const rb = k.ringbufCreate(16 * PAGE_SIZE)!;
    outputRange(rb, 0, 3);
    expect(seen(rb)).toEqual([]);
    await Promise.resolve(); // the batch's microtask was queued first
    expect(seen(rb)).toEqual([0, 1, 2]);
    outputRange(rb, 3, 5); // a new batch, a new microtask
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen(rb)).toEqual([3, 4]);
    k.checkInvariants();
  });

  it('is published by a consume on the same thread, and by any other producing call of the handle', () => {
    const k = boot();
    const rb = k.ringbufCreate(16 * PAGE_SIZE)!;
    outputRange(rb, 0, 4);
    const got: number[] = [];
    expect(rb.consume((v) => void got.push(readRecord(v)[1]))).toBe(4);
    expect(got).toEqual([0, 1, 2, 3]);
    // an output without RB_BATCH goes after the batch's records, at once
    outputRange(rb, 4, 6);
    outputRange(rb, 6, 7, 32, 0);
    expect(seen(rb)).toEqual([4, 5, 6]);
    // a reservation too
    outputRange(rb, 7, 9);
    const rec = rb.reserve(32)!;
    fillRecord(rec.data, 1, 9);
    expect(seen(rb)).toEqual([7, 8]); // the reserved record holds back nothing before it
    rec.submit();
    expect(seen(rb)).toEqual([9]);
    k.checkInvariants();
  });

  it('publishes a chunk once it is full and goes on in a new one, doubling the chunk up to 128 KiB', () => {
    const k = Kernel.boot({ memoryBytes: 32 * MiB });
    const rb = k.ringbufCreate(256 * PAGE_SIZE)!; // 1 MiB: chunks up to 128 KiB (an eighth)
    const prod0 = rb.query(BPF_RB_PROD_POS);
    outputRange(rb, 0, 1);
    expect(rb.query(BPF_RB_PROD_POS)).toBe(prod0); // staged: nothing in the ring yet
    outputRange(rb, 1, 6638);
    // records of one length go into a run, 16 bytes of header and descriptor then 32 bytes each:
    // chunks of 512 B … 64 KiB, then 128 KiB: 15, 31, 63, 127, 255, 511, 1023, 2047 records
    // published, each batch as exactly its bytes, and the 9th open with the other 2566
    expect(seen(rb)).toEqual(range(0, 4072));
    expect(rb.query(BPF_RB_PROD_POS) - prod0).toBe(8 * 16 + 4072 * 32);
    rb.flush();
    expect(seen(rb)).toEqual(range(4072, 6638));
    expect(rb.query(BPF_RB_PROD_POS) - prod0).toBe(9 * 16 + 6638 * 32);
    k.checkInvariants();
    // a batch published early leaves a chunk fit for what it held: 2566 records, 82 128 bytes, so
    // 128 KiB again; then 100 records (3216 bytes) leave 4 KiB, which holds 127: the 128th
    // publishes them
    outputRange(rb, 0, 100);
    rb.flush();
    let p1 = rb.query(BPF_RB_PROD_POS);
    outputRange(rb, 0, 128);
    expect(rb.query(BPF_RB_PROD_POS) - p1).toBe(16 + 127 * 32);
    rb.flush(); // one record of its own, 40 bytes: back to 512, 15 records
    p1 = rb.query(BPF_RB_PROD_POS);
    outputRange(rb, 0, 16);
    expect(rb.query(BPF_RB_PROD_POS) - p1).toBe(16 + 15 * 32);
  });

  it('outputs a record larger than RB_BATCH_MAX_RECORD at once, after the open batch', () => {
    const k = boot();
    const rb = k.ringbufCreate(16 * PAGE_SIZE)!;
    outputRange(rb, 0, 2);
    outputRange(rb, 2, 3, RB_BATCH_MAX_RECORD + 1);
    expect(seen(rb)).toEqual([0, 1, 2]);
    outputRange(rb, 3, 4, RB_BATCH_MAX_RECORD); // the largest batched record
    expect(seen(rb)).toEqual([]);
    rb.flush();
    expect(seen(rb)).toEqual([3]);
    k.checkInvariants();
  });

  it('on a full ring publishes its batch, answers -EAGAIN, and goes on once the consumer made room', () => {
    const k = boot();
    const rb = k.ringbufCreate(2 * PAGE_SIZE)!; // chunks of at most 1 KiB
    const bytes = new Uint8Array(100);
    let seq = 0;
    for (;;) {
      fillRecord(bytes, 1, seq);
      const rc = rb.output(bytes, RB_BATCH);
      if (rc === -EAGAIN) break;
      expect(rc).toBe(0);
      seq++;
    }
    expect(seq).toBeGreaterThan(70); // 8 KiB of 112-byte records, and a batch the ring cannot take
    // every record before that batch is in the ring; the batch's stay in it, in order
    const first = seen(rb);
    expect(first.length).toBeGreaterThan(60);
    expect(first.length).toBeLessThan(seq);
    expect(first).toEqual(range(0, first.length));
    k.checkInvariants();
    // the consumer made room: the same output publishes the batch and starts a new one with it
    fillRecord(bytes, 1, seq);
    expect(rb.output(bytes, RB_BATCH)).toBe(0);
    expect(rb.flush()).toBe(0);
    expect(seen(rb)).toEqual(range(first.length, seq + 1));
    k.checkInvariants();
  });

  it('keeps a batch the full ring cannot take, and publishes it by itself once the consumer made room', async () => {
    const k = boot();
    const rb = k.ringbufCreate(2 * PAGE_SIZE)!;
    const filler = new Uint8Array(1000);
    fillRecord(filler, 1, 0);
    let fillers = 0;
    while (rb.output(filler) === 0) fillers++;
    while (rb.output(filler.subarray(0, 8)) === 0) fillers++; // full to the last 16 bytes
    outputRange(rb, 0, 3); // staged: taken while the batch has room, whatever the ring has
    expect(rb.flush(0)).toBe(-EAGAIN); // not waiting
    // this thread's other producing calls come after the batch, which has no room
    expect(rb.reserve(8)).toBeNull();
    expect(rb.output(new Uint8Array(8))).toBe(-EAGAIN);
    const prod = rb.query(BPF_RB_PROD_POS);
    expect(seen(rb)).toEqual(new Array<number>(fillers).fill(0)); // a consumer elsewhere
    // the failed flush left a retry waiting for the consumer: it publishes the batch
    for (let i = 0; i < 100 && rb.query(BPF_RB_PROD_POS) === prod; i++)
      await new Promise((resolve) => setTimeout(resolve, 5));
    expect(seen(rb)).toEqual([0, 1, 2]);
    k.checkInvariants();
  });

  it('keeps every record across wrap-around of the data area and of the 32-bit positions', () => {
    let bytes = new Uint8Array(0); // one buffer per length, reused: the fastest path too
    streamAcrossWraps(boot(), (rb, len, seq) => {
      if (bytes.length !== len) bytes = new Uint8Array(len);
      fillRecord(bytes, 1, seq);
      return rb.output(bytes, RB_BATCH);
    });
  });

  it('wakes a consumer that sleeps at the batch when it publishes, as a commit does', () => {
    const k = boot();
    const rb = k.ringbufCreate(16 * PAGE_SIZE)!;
    countWaiter(k, rb, 1); // a consumer that caught up and may sleep
    const seq0 = wakeSeq(k, rb);
    outputRange(rb, 0, 3);
    expect(wakeSeq(k, rb)).toBe(seq0); // nothing visible yet: no wake-up
    rb.flush();
    expect(wakeSeq(k, rb)).toBe(seq0 + 1);
    // behind the consumer (records waiting): no wake-up, unless one record forces it
    outputRange(rb, 3, 5);
    rb.flush();
    expect(wakeSeq(k, rb)).toBe(seq0 + 1);
    seen(rb);
    outputRange(rb, 5, 7, 32, RB_BATCH | BPF_RB_NO_WAKEUP);
    rb.flush();
    expect(wakeSeq(k, rb)).toBe(seq0 + 1); // every record said NO_WAKEUP
    outputRange(rb, 7, 8, 32, RB_BATCH | BPF_RB_NO_WAKEUP);
    outputRange(rb, 8, 9, 32, RB_BATCH | BPF_RB_FORCE_WAKEUP);
    rb.flush();
    expect(wakeSeq(k, rb)).toBe(seq0 + 2);
    countWaiter(k, rb, -1);
    expect(seen(rb)).toEqual(range(5, 9));
  });

  it('copies a reused record buffer exactly, whatever happens to it between outputs', () => {
    const k = boot();
    const rb = k.ringbufCreate(16 * PAGE_SIZE)!;
    const got = (): number[][] => {
      const out: number[][] = [];
      rb.consume((v) => void out.push([...v]));
      return out;
    };
    // a buffer output again and again is copied word by word: each record as it was at its output
    const bytes = new Uint8Array(12);
    for (let i = 0; i < 4; i++) {
      bytes.fill(i);
      expect(rb.output(bytes, RB_BATCH)).toBe(0);
    }
    expect(got()).toEqual([0, 1, 2, 3].map((i) => new Array<number>(12).fill(i)));
    // its own `buffer` and `byteOffset` properties are not what is read
    Object.defineProperty(bytes, 'buffer', { value: new ArrayBuffer(64) });
    Object.defineProperty(bytes, 'byteOffset', { value: 8 });
    bytes.fill(9);
    expect(rb.output(bytes, RB_BATCH)).toBe(0);
    expect(got()).toEqual([new Array<number>(12).fill(9)]);
    // a view that tracks a resizable buffer's length: each record has the length it had then
    // (ES2024's resizable ArrayBuffer, in every Node this runs on; typed here for the ES2023 lib)
    const Resizable = ArrayBuffer as unknown as new (
      bytes: number,
      options: { maxByteLength: number },
    ) => ArrayBuffer & { resize(bytes: number): void };
    const resizable = new Resizable(8, { maxByteLength: 64 });
    const tracking = new Uint8Array(resizable);
    // (the third output of one buffer is the first it could be taken as a reused one)
    const sizes = [8, 8, 8, 16, 16, 16, 4, 8];
    for (const size of sizes) {
      resizable.resize(size);
      tracking.fill(size);
      expect(rb.output(tracking, RB_BATCH)).toBe(0);
    }
    expect(got()).toEqual(sizes.map((size) => new Array<number>(size).fill(size)));
    // the same for a growable SharedArrayBuffer, which another thread may grow at any moment
    const Growable = SharedArrayBuffer as unknown as new (
      bytes: number,
      options: { maxByteLength: number },
    ) => SharedArrayBuffer & { grow(bytes: number): void };
    const growable = new Growable(8, { maxByteLength: 64 });
    const growing = new Uint8Array(growable);
    const grown = [8, 8, 8, 16, 16, 32];
    for (const size of grown) {
      growable.grow(size);
      growing.fill(size);
      expect(rb.output(growing, RB_BATCH)).toBe(0);
    }
    expect(got()).toEqual(grown.map((size) => new Array<number>(size).fill(size)));
    // once its buffer is detached it is refused, and nothing changes
    const reused = new Uint8Array(16);
    expect(rb.output(reused, RB_BATCH)).toBe(0);
    expect(rb.output(reused, RB_BATCH)).toBe(0);
    structuredClone(reused.buffer, { transfer: [reused.buffer] });
    const before = rb.query(BPF_RB_PROD_POS);
    expect(rb.output(reused, RB_BATCH)).toBe(-22);
    expect(rb.query(BPF_RB_PROD_POS)).toBe(before);
    expect(got()).toEqual([new Array<number>(16).fill(0), new Array<number>(16).fill(0)]);
    k.checkInvariants();
  });

  it("keeps this thread's order across two handles of one ring", () => {
    const k = boot();
    const a = k.ringbufCreate(16 * PAGE_SIZE)!;
    const b = k.ringbuf(a.kaddr)!;
    outputRange(a, 0, 1);
    outputRange(b, 1, 2, 32, 0); // publishes a's batch first
    outputRange(a, 2, 3);
    outputRange(b, 3, 4); // b's batch: a's goes out first
    outputRange(a, 4, 5); // and now b's
    const rec = b.reserve(32)!; // a's again
    fillRecord(rec.data, 1, 5);
    rec.submit();
    expect(seen(a)).toEqual([0, 1, 2, 3, 4, 5]);
    k.ringbufFlush(); // nothing open: nothing happens
    outputRange(a, 6, 7);
    outputRange(b, 7, 8, 32, RB_BATCH | BPF_RB_NO_WAKEUP); // (a published: one open batch a thread)
    k.ringbufFlush();
    expect(seen(b)).toEqual([6, 7]);
    k.checkInvariants();
  });

  it('moves PENDING_POS past a published batch only from where that batch began, a lap later too', () => {
    // the publish makes the chunk visible before PENDING_POS is moved: other threads may consume
    // it and go a whole lap round meanwhile, leaving PENDING_POS at the same offset a lap later,
    // at another thread's open reservation. Here that happens inside the publishing Atomics.store.
    const k = boot();
    const rb = k.ringbufCreate(2 * PAGE_SIZE)!; // 8 KiB of data
    const other = Kernel.attach(k.handle); // another thread's attachment
    const otherRb = other.ringbuf(rb.kaddr)!;
    const plain = k.ringbuf(rb.kaddr)!;
    const ref = (rb as unknown as { consumerRef(): RingRef }).consumerRef();
    const drain = (): number => ringConsume(ref, () => undefined);
    expect(rb.output(new Uint8Array(504), RB_BATCH)).toBe(0); // published at [0, 512)
    const big = new Uint8Array(504);
    const meanwhile = (): void => {
      expect(drain()).toBe(1);
      for (let i = 0; i < 15; i++) expect(plain.output(big)).toBe(0); // up to 8192
      drain();
      expect(otherRb.reserve(504)).not.toBeNull(); // open at 8192: offset 0, a lap later
      for (let i = 0; i < 14; i++) expect(plain.output(big)).toBe(0); // PENDING_POS stops at 8192
    };
    const store = Atomics.store;
    let fired = false;
    const patched = (array: Int32Array, index: number, value: number): number => {
      const ret = store(array, index, value);
      if (!fired && index === ref.data >> 2 && value === 504) {
        fired = true;
        Atomics.store = store;
        meanwhile();
      }
      return ret;
    };
    Atomics.store = patched as typeof Atomics.store;
    try {
      rb.flush();
    } finally {
      Atomics.store = store;
    }
    expect(fired).toBe(true);
    k.checkInvariants(); // was: "a busy record lies before PENDING_POS"
    // the other thread dies holding its reservation: reaping discards it and the ring flows again
    k.reapThread({ tid: other.tid });
    expect(drain()).toBe(14);
    k.checkInvariants();
  });

  it('flush waits for a consumer on another thread to make room, and never for this thread', async () => {
    const k = boot();
    const rb = k.ringbufCreate(2 * PAGE_SIZE)!;
    const filler = new Uint8Array(1000);
    let fillers = 0;
    while (rb.output(filler) === 0) fillers++;
    while (rb.output(filler.subarray(0, 8)) === 0) fillers++;
    outputRange(rb, 0, 3);
    const worker = new Worker(new URL('./fixtures/ring-consumer.mjs', import.meta.url), {
      workerData: { handle: k.handle, kaddr: rb.kaddr, delayMs: 50, total: fillers + 3 },
    });
    const counts = new Promise<number[]>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    expect(rb.flush()).toBe(0); // blocks until the consumer made room
    // the batch went in only once the consumer had made room: after every filler (its first
    // consume may have taken the batch too, when the flush got in while that consume ran)
    const [first, later] = await counts;
    expect(first! + later!).toBe(fillers + 3);
    expect(first).toBeGreaterThanOrEqual(fillers);
    await once(worker, 'exit');
    k.checkInvariants();
    // this thread consumes the ring now: a flush on a full ring does not wait for itself
    expect(rb.consume(() => undefined)).toBe(0); // the worker took everything
    while (rb.output(filler) === 0);
    while (rb.output(filler.subarray(0, 8)) === 0);
    outputRange(rb, 3, 4);
    expect(rb.flush()).toBe(-EAGAIN);
    expect(rb.consume(() => undefined)).toBeGreaterThan(0);
    expect(rb.flush()).toBe(0);
    expect(rb.flush('soon' as unknown as number)).toBe(-22);
    k.checkInvariants();
  });

  it('never waits for room behind a reservation this thread holds open', () => {
    const k = boot();
    const rb = k.ringbufCreate(2 * PAGE_SIZE)!;
    const held = rb.reserve(2000)!; // the consumer stops here until it is committed
    fillRecord(held.data, 1, 0);
    const filler = new Uint8Array(1000);
    fillRecord(filler, 1, 0);
    while (rb.output(filler) === 0);
    while (rb.output(filler.subarray(0, 8)) === 0);
    outputRange(rb, 1, 3);
    const t0 = Date.now();
    expect(rb.flush()).toBe(-EAGAIN); // would wait for ever: only this thread can make room
    expect(k.ringbufFlush()).toBe(-EAGAIN);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(held.submit()).toBe(0);
    expect(seen(rb).length).toBeGreaterThan(2); // the held record, then the fillers
    expect(rb.flush()).toBe(0); // nothing of this thread's holds the consumer now
    expect(seen(rb)).toEqual([1, 2]);
    k.checkInvariants();
  });

  it('lets go of a waiting retry when its thread detaches, so the ring can still be freed', async () => {
    const k = boot();
    const free0 = k.stats().freeFrames;
    const rb = k.ringbufCreate(2 * PAGE_SIZE)!;
    const other = Kernel.attach(k.handle); // another attachment: its own batches and retries
    const orb = other.ringbuf(rb.kaddr)!;
    expect(orb.consume(() => undefined)).toBe(0); // it consumes the ring: it never waits for room
    const filler = new Uint8Array(1000);
    while (orb.output(filler) === 0);
    while (orb.output(filler.subarray(0, 8)) === 0);
    const bytes = new Uint8Array(32);
    fillRecord(bytes, 1, 0);
    expect(orb.output(bytes, RB_BATCH)).toBe(0);
    expect(orb.flush()).toBe(-EAGAIN); // a retry now waits, holding a reference on the ring
    const refs = new Int32Array(k.handle.buffer);
    const ref = ringRef(rb);
    expect(Atomics.load(refs, ref.prodWaiters)).toBe(1);
    other.detach(); // cannot wait (it consumes the ring): the batch is dropped, the retry let go
    expect(Atomics.load(refs, ref.prodWaiters)).toBe(0);
    rb.free();
    expect(k.stats().freeFrames).toBe(free0); // the last reference went with the free
    await new Promise((resolve) => setTimeout(resolve, 80)); // past the retry's timeout: nothing runs
    k.checkInvariants();
  });

  it('reserves nothing until the publish, then exactly the batch, committed with its first header', () => {
    const k = boot();
    const rb = k.ringbufCreate(16 * PAGE_SIZE)!;
    const head = rb.kaddr + 3 * PAGE_SIZE; // data offset 0: the batch's first header
    const prod0 = rb.query(BPF_RB_PROD_POS);
    outputRange(rb, 0, 1, 32);
    outputRange(rb, 1, 2, 24); // another length: a ring record of its own, not a run
    expect(rb.query(BPF_RB_PROD_POS)).toBe(prod0);
    rb.flush();
    expect(rb.query(BPF_RB_PROD_POS) - prod0).toBe(72);
    expect(ringWord(k, head) & RINGBUF_BUSY_BIT).toBe(0);
    expect(ringWord(k, head)).toBe(32); // the first record's length, committed
    expect(ringWord(k, head + 40)).toBe(24); // the second's
    // the batch's first header was BUSY until the publish: read atomically; the others were
    // written before it and never change: settled, read with plain loads
    expect(ringWord(k, head + 4) & RINGBUF_SETTLED_BIT).toBe(0);
    expect(ringWord(k, head + 44) & RINGBUF_SETTLED_BIT).not.toBe(0);
    // an output is written committed before PRODUCER_POS moves: settled; a reservation is not
    outputRange(rb, 2, 3, 32, 0);
    expect(ringWord(k, head + 76) & RINGBUF_SETTLED_BIT).not.toBe(0);
    const rec = rb.reserve(32)!;
    fillRecord(rec.data, 1, 3);
    const i32 = new Int32Array(k.handle.buffer);
    const word1 = (ringRef(rb).data + 112 + 4) >> 2;
    expect(i32[word1]! & RINGBUF_SETTLED_BIT).toBe(0);
    // a busy record that says it is settled would be read without Atomics: the checker refuses it
    i32[word1]! |= RINGBUF_SETTLED_BIT;
    expect(() => {
      k.checkInvariants();
    }).toThrow(/offset 112 is busy but says it is settled/);
    i32[word1]! &= ~RINGBUF_SETTLED_BIT;
    rec.submit();
    expect(seen(rb)).toEqual([0, 1, 2, 3]);
    k.checkInvariants();
  });

  it('drops a batch whose ring was freed, and leaves the kernel as booted', async () => {
    const k = boot();
    const free0 = k.stats().freeFrames;
    const rb = k.ringbufCreate(16 * PAGE_SIZE)!;
    outputRange(rb, 0, 5);
    rb.free();
    // a new ring on the same frames: the old batch must never be written into it
    const again = k.ringbufCreate(16 * PAGE_SIZE)!;
    expect(again.kaddr).toBe(rb.kaddr);
    outputRange(again, 7, 8, 32, 0);
    const got: number[] = [];
    expect(again.consume((v) => void got.push(readRecord(v)[1]))).toBe(1);
    expect(got).toEqual([7]);
    await Promise.resolve(); // the old batch's microtask finds nothing to do
    expect(seen(again)).toEqual([]);
    k.checkInvariants();
    again.free();
    expect(k.stats().freeFrames).toBe(free0);
    k.checkInvariants();
  });
});

/**
 * Records of `len` bytes `from` … `to - 1`, each reserved with `batchReserve` and written in place
 * (its sequence number in its first word, when it has room for one); each must be taken.
 */
function reserveRange(rb: RingBuf, from: number, to: number, len = 32, flags?: number): number[] {
  const offsets: number[] = [];
  for (let seq = from; seq < to; seq++) {
    const at = rb.batchReserve(len, flags);
    expect(at).toBeGreaterThanOrEqual(0);
    writeAt(rb, at, len, seq);
    offsets.push(at);
  }
  return offsets;
}

/** Write record `seq` of `len` bytes where `batchReserve` said (as {@link fillRecord}). */
function writeAt(rb: RingBuf, at: number, len: number, seq: number): void {
  fillRecord(new Uint8Array(rb.batchBuffer, at, len), 1, seq);
}

describe('RB_BATCH retries', () => {
  it('hold a thread whose last batch found a fresh ring full alive until the consumer makes room', async () => {
    const k = boot();
    const rb = k.ringbufCreate(2 * PAGE_SIZE)!; // the consumer position is 0: it never moved
    const filler = new Uint8Array(1000);
    let fillers = 0;
    while (rb.output(filler) === 0) fillers++;
    while (rb.output(filler.subarray(0, 8)) === 0) fillers++;
    const worker = new Worker(new URL('./fixtures/ring-late-batch.mjs', import.meta.url), {
      workerData: { handle: k.handle, kaddr: rb.kaddr },
    });
    const [staged] = (await once(worker, 'message')) as [string];
    expect(staged).toBe('staged');
    const exited = once(worker, 'exit');
    await new Promise((resolve) => setTimeout(resolve, 200)); // its script has ended
    // the consumer takes the fillers (it moves); the retry then publishes the batch: the worker's
    // record (7s), once, after them
    const seen: number[] = [];
    const take = (v: Uint8Array): void => void seen.push(v.length === 8 && v[0] === 7 ? 7 : 0);
    ringConsume(ringRef(rb), take);
    for (let i = 0; i < 100 && !seen.includes(7); i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      ringConsume(ringRef(rb), take);
    }
    expect(seen.length).toBe(fillers + 1);
    expect(seen.indexOf(7)).toBe(fillers);
    await exited;
    expect(k.reapThread({ threadId: worker.threadId })).toBeGreaterThanOrEqual(0); // no detach
    k.checkInvariants();
  });
});

describe('batchReserve: records written in place', () => {
  it('hands out aligned room in one buffer, and delivers the records with the batch, in order, intact', () => {
    const k = boot();
    const rb = k.ringbufCreate(16 * PAGE_SIZE)!;
    const buffer = rb.batchBuffer;
    expect(buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(buffer.byteLength).toBe(128 * 1024);
    // records of several lengths: each starts 8 bytes after the last one's padded end
    const lens = [8, 13, 0, 32, 100, 8];
    let expected = 8;
    lens.forEach((len, seq) => {
      const at = rb.batchReserve(len);
      expect(at).toBe(expected);
      expect(at % 8).toBe(0);
      writeAt(rb, at, len, seq);
      expected += (len + 15) & ~7;
    });
    expect(rb.batchBuffer).toBe(buffer); // the same buffer for the life of the handle
    expect(seen(rb)).toEqual([]); // nothing in the ring yet
    expect(rb.flush()).toBe(0);
    const got: [number, number][] = [];
    ringConsume(ringRef(rb), (v: Uint8Array) => {
      got.push([v.length, v.length >= 8 ? readRecord(v)[1] : -1]);
    });
    expect(got).toEqual([
      [8, 0],
      [13, 1],
      [0, -1],
      [32, 3],
      [100, 4],
      [8, 5],
    ]);
    k.checkInvariants();
  });

  it('takes each header from its own lengths, not from the buffer: a stray write there spoils no header', () => {
    const k = boot();
    const rb = k.ringbufCreate(16 * PAGE_SIZE)!;
    // records of two lengths in turn (each a ring record of its own, with a header), then a run
    const offsets = [0, 1, 2, 3, 4].flatMap((i) => [
      ...reserveRange(rb, 2 * i, 2 * i + 1, 24),
      ...reserveRange(rb, 2 * i + 1, 2 * i + 2, 32),
    ]);
    const run = rb.batchReserveBulk(24, 5); // within the first chunk (512 bytes) with the others
    expect(run).toBe(360 + 16);
    writeBulk(rb, run, 24, 10, 5);
    const words = new Int32Array(rb.batchBuffer);
    // where the headers will go, a user writes garbage: a length past the ring, every flag bit
    for (const at of offsets) {
      words[(at >> 2) - 2] = -1;
      words[(at >> 2) - 1] = 0x7fffffff;
    }
    // and where the run's header and descriptor go: a count and a length that fit no run
    for (let w = (run >> 2) - 4; w < run >> 2; w++) words[w] = -1;
    expect(rb.flush()).toBe(0);
    k.checkInvariants(); // every header and descriptor as the ring wrote it
    expect(seen(rb)).toEqual(range(0, 15));
  });

  it('mixes with output(bytes, RB_BATCH) in one batch, in call order, and publishes before any other producing call', () => {
    const k = boot();
    const rb = k.ringbufCreate(16 * PAGE_SIZE)!;
    reserveRange(rb, 0, 2);
    outputRange(rb, 2, 4);
    reserveRange(rb, 4, 5);
    const rec = rb.reserve(32)!; // publishes the batch first
    fillRecord(rec.data, 1, 5);
    expect(seen(rb)).toEqual(range(0, 5));
    expect(rec.submit()).toBe(0);
    expect(seen(rb)).toEqual([5]);
    k.checkInvariants();
  });

  it('on a full ring publishes its batch, answers -EAGAIN, keeps the batch, and goes on once the consumer made room', () => {
    const k = boot();
    const rb = k.ringbufCreate(2 * PAGE_SIZE)!; // chunks of at most 1 KiB
    let seq = 0;
    for (;;) {
      const at = rb.batchReserve(100);
      if (at === -EAGAIN) break;
      expect(at).toBeGreaterThanOrEqual(0);
      writeAt(rb, at, 100, seq++);
    }
    expect(rb.batchReserveWait(100, 0, 10)).toBe(-EAGAIN); // 10 ms, and nobody consumed
    const first = seen(rb);
    expect(first.length).toBeGreaterThan(60);
    expect(first).toEqual(range(0, first.length));
    k.checkInvariants();
    // the consumer made room: the same call publishes the batch and starts a new one
    const at = rb.batchReserve(100);
    expect(at).toBe(8);
    writeAt(rb, at, 100, seq);
    expect(rb.flush()).toBe(0);
    expect(seen(rb)).toEqual(range(first.length, seq + 1));
    k.checkInvariants();
  });

  it('keeps every record across wrap-around of the data area and of the 32-bit positions', () => {
    streamAcrossWraps(boot(), (rb, len, seq) => {
      const at = rb.batchReserve(len);
      if (at >= 0) writeAt(rb, at, len, seq);
      return at < 0 ? at : 0;
    });
  });

  it('wakes a sleeping consumer as output does: not when every record said NO_WAKEUP', () => {
    const k = boot();
    const rb = k.ringbufCreate(16 * PAGE_SIZE)!;
    countWaiter(k, rb, 1); // a consumer that caught up and may sleep
    const seq0 = wakeSeq(k, rb);
    reserveRange(rb, 0, 2, 32, BPF_RB_NO_WAKEUP);
    reserveRange(rb, 2, 3, 32, RB_BATCH | BPF_RB_NO_WAKEUP);
    rb.flush();
    expect(wakeSeq(k, rb)).toBe(seq0);
    expect(seen(rb)).toEqual([0, 1, 2]);
    reserveRange(rb, 3, 4, 32, BPF_RB_NO_WAKEUP);
    reserveRange(rb, 4, 5); // this one wants the consumer woken
    rb.flush();
    expect(wakeSeq(k, rb)).toBe(seq0 + 1);
    countWaiter(k, rb, -1);
    expect(seen(rb)).toEqual([3, 4]);
  });

  it('answers -EINVAL once another thread freed the ring, open batch or not, and flush says the batch is lost', () => {
    const k = boot();
    const rb = k.ringbufCreate(16 * PAGE_SIZE)!;
    const other = Kernel.attach(k.handle); // another attachment: as another thread
    const record = new Uint8Array(8);
    reserveRange(rb, 0, 2);
    expect(rb.output(record, RB_BATCH)).toBe(0);
    expect(rb.output(record, RB_BATCH)).toBe(0); // the reused buffer's fastest path from now on
    other.ringbuf(rb.kaddr)!.free();
    expect(rb.batchReserve(8)).toBe(-EINVAL);
    expect(rb.batchReserve(8, RB_BATCH)).toBe(-EINVAL);
    expect(rb.output(record, RB_BATCH)).toBe(-EINVAL);
    expect(rb.output(new Uint8Array(12), RB_BATCH)).toBe(-EINVAL);
    expect(rb.flush()).toBe(-EINVAL); // the open batch's records never reached the ring
    expect(rb.flush()).toBe(0); // none open now
    other.detach();
    k.checkInvariants();
  });

  it('batchReserveWait, outputWait and reserveWait never wait for room only this thread could make', () => {
    const k = boot();
    const rb = k.ringbufCreate(2 * PAGE_SIZE)!;
    expect(rb.consume(() => undefined)).toBe(0); // this thread consumes the ring
    const filler = new Uint8Array(1000);
    while (rb.output(filler) === 0);
    while (rb.output(filler.subarray(0, 8)) === 0);
    reserveRange(rb, 0, 1); // staged; the ring cannot take the batch
    const t0 = Date.now();
    // with no limit: a wait here would last for ever (Node's main thread may block, as here)
    let at = 0;
    for (let i = 0; i < 200 && at >= 0; i++) at = rb.batchReserveWait(100, 0, -1);
    expect(at).toBe(-EAGAIN);
    expect(rb.outputWait(new Uint8Array(8), 0, -1)).toBe(-EAGAIN);
    expect(rb.reserveWait(8, -1)).toBeNull();
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(rb.consume(() => undefined)).toBeGreaterThan(0); // the consumer makes room
    expect(rb.flush()).toBe(0);
    k.checkInvariants();
  });

  it('loses the open batch of a ring freed meanwhile, and the next batch starts clean', () => {
    const k = boot();
    const free0 = k.stats().freeFrames;
    const rb = k.ringbufCreate(16 * PAGE_SIZE)!;
    reserveRange(rb, 0, 3);
    rb.free();
    expect(rb.batchReserve(8)).toBe(-EINVAL);
    expect(k.stats().freeFrames).toBe(free0);
    const rb2 = k.ringbufCreate(16 * PAGE_SIZE)!;
    reserveRange(rb2, 10, 12);
    rb2.flush();
    expect(seen(rb2)).toEqual([10, 11]);
    k.checkInvariants();
  });
});

/** Write records `from` … `from + count - 1` of `len` bytes at `at`, one stride apart. */
function writeBulk(rb: RingBuf, at: number, len: number, from: number, count: number): void {
  const stride = ringbufBulkStride(len);
  for (let k = 0; k < count; k++) writeAt(rb, at + k * stride, len, from + k);
}

describe('batchReserveBulk: many records written in place with one call', () => {
  it('hands out room for them all one stride apart, as one run with one header, and delivers each as its own record, in order, intact', () => {
    const k = boot();
    const rb = k.ringbufCreate(16 * PAGE_SIZE)!;
    const at = rb.batchReserveBulk(32, 10); // a run: its header and descriptor, then 32 bytes each
    expect(at).toBe(16);
    writeBulk(rb, at, 32, 0, 10);
    // a bulk of the same length right after grows the same run: no header between
    expect(rb.batchReserveBulk(32, 3)).toBe(16 + 10 * 32);
    writeBulk(rb, 16 + 10 * 32, 32, 10, 3);
    // the next call's room follows the run's last record, as a batchReserve's would
    expect(rb.batchReserve(13)).toBe(16 + 13 * 32 + 8);
    writeAt(rb, 16 + 13 * 32 + 8, 13, 13);
    const next = rb.batchReserveBulk(8, 3); // after a record of its own: a new run
    expect(next).toBe(16 + 13 * 32 + 24 + 16);
    writeBulk(rb, next, 8, 14, 3);
    expect(seen(rb)).toEqual([]); // nothing in the ring yet (the first chunk, 512 bytes, holds it)
    const prod = rb.query(BPF_RB_PROD_POS);
    expect(rb.flush()).toBe(0);
    // three ring records: a run of 13 (16 + 416), one record (24), a run of 3 (16 + 24)
    expect(rb.query(BPF_RB_PROD_POS) - prod).toBe(432 + 24 + 40);
    k.checkInvariants();
    const got: [number, number][] = [];
    ringConsume(ringRef(rb), (v: Uint8Array) => void got.push([v.length, readRecord(v)[1]]));
    expect(got).toEqual([
      ...range(0, 13).map((seq) => [32, seq]),
      [13, 13],
      ...range(14, 17).map((seq) => [8, seq]),
    ]);
    k.checkInvariants();
  });

  it('publishes the open batch first when the bulk does not fit in it, and keeps it on a full ring', () => {
    const k = boot();
    const rb = k.ringbufCreate(2 * PAGE_SIZE)!; // chunks of at most 1 KiB: 31 records of 32 bytes
    let seq = 0;
    for (;;) {
      const at = rb.batchReserveBulk(32, 20);
      if (at === -EAGAIN) break;
      expect(at).toBe(16); // never joins a batch of 20 (656 bytes): each starts a new one
      writeBulk(rb, at, 32, seq, 20);
      seq += 20;
    }
    const before = rb.query(BPF_RB_PROD_POS);
    expect(rb.batchReserveBulkWait(32, 20, 0, 10)).toBe(-EAGAIN); // 10 ms, and nobody consumed
    expect(rb.query(BPF_RB_PROD_POS)).toBe(before); // nothing moved
    const first = seen(rb);
    expect(first).toEqual(range(0, first.length));
    expect(first.length).toBe(seq - 20); // the last 20 are still staged
    k.checkInvariants();
    // room again: the same call publishes the kept batch and takes the next 20
    const at = rb.batchReserveBulk(32, 20);
    expect(at).toBe(16);
    writeBulk(rb, at, 32, seq, 20);
    expect(rb.flush()).toBe(0);
    expect(seen(rb)).toEqual(range(first.length, seq + 20));
    k.checkInvariants();
  });

  it('fills a chunk to its last byte on the fast path, and no further', () => {
    const k = boot();
    const rb = k.ringbufCreate(16 * PAGE_SIZE)!;
    // the first chunk is 512 bytes: a run of 16 records of 8 bytes takes 16 + 128 of it
    expect(rb.batchReserveBulk(8, 16)).toBe(16); // opens the batch
    writeBulk(rb, 16, 8, 0, 16);
    expect(rb.batchReserveBulk(8, 46)).toBe(144); // grows the run: 512 bytes exactly
    writeBulk(rb, 144, 8, 16, 46);
    expect(seen(rb)).toEqual([]);
    // not even one record more: the full batch goes out, and a new one takes it
    expect(rb.batchReserveBulk(8, 1)).toBe(16);
    writeBulk(rb, 16, 8, 62, 1);
    expect(seen(rb)).toEqual(range(0, 62));
    expect(rb.flush()).toBe(0);
    expect(seen(rb)).toEqual([62]);
    k.checkInvariants();
  });

  it('wakes a sleeping consumer unless every record of the batch said NO_WAKEUP', () => {
    const k = boot();
    const rb = k.ringbufCreate(16 * PAGE_SIZE)!;
    countWaiter(k, rb, 1); // a consumer that caught up and may sleep
    const seq0 = wakeSeq(k, rb);
    writeBulk(rb, rb.batchReserveBulk(32, 2, BPF_RB_NO_WAKEUP), 32, 0, 2);
    writeBulk(rb, rb.batchReserveBulk(32, 2, BPF_RB_NO_WAKEUP), 32, 2, 2);
    rb.flush();
    expect(wakeSeq(k, rb)).toBe(seq0);
    expect(seen(rb)).toEqual([0, 1, 2, 3]);
    writeBulk(rb, rb.batchReserveBulk(32, 2, BPF_RB_NO_WAKEUP), 32, 4, 2);
    writeBulk(rb, rb.batchReserveBulk(32, 2), 32, 6, 2); // these want the consumer woken
    rb.flush();
    expect(wakeSeq(k, rb)).toBe(seq0 + 1);
    expect(seen(rb)).toEqual([4, 5, 6, 7]);
    k.checkInvariants();
  });

  it('keeps every record across wrap-around of the data area and of the 32-bit positions', () => {
    // a bulk of one record per call here: the helper counts records one at a time
    streamAcrossWraps(boot(), (rb, len, seq) => {
      const at = rb.batchReserveBulk(len, 1);
      if (at >= 0) writeAt(rb, at, len, seq);
      return at < 0 ? at : 0;
    });
  });

  it('answers -EINVAL on a freed ring, and for more records than a chunk holds, taking none', () => {
    const k = boot();
    const rb = k.ringbufCreate(2 * PAGE_SIZE)!;
    expect(rb.batchReserveBulk(32, 31)).toBe(16); // 16 + 31 × 32 bytes: within the 1 KiB chunk
    writeBulk(rb, 16, 32, 0, 31);
    expect(rb.batchReserveBulk(32, 32)).toBe(-EINVAL); // 16 + 1024 bytes: never fits a chunk
    expect(rb.flush()).toBe(0);
    expect(seen(rb)).toEqual(range(0, 31)); // the refused call took none
    rb.free();
    expect(rb.batchReserveBulk(32, 1)).toBe(-EINVAL);
    k.checkInvariants();
  });
});

describe('runs: records reserved in bulk, one ring record for many', () => {
  /** A ring holding a run of 10 records of 32 bytes (seq 0 … 9), then a record of its own (10). */
  function runThenRecord(k: Kernel): RingBuf {
    const rb = k.ringbufCreate(16 * PAGE_SIZE)!;
    writeBulk(rb, rb.batchReserveBulk(32, 10), 32, 0, 10);
    expect(rb.flush()).toBe(0);
    const bytes = new Uint8Array(24);
    fillRecord(bytes, 1, 10);
    expect(rb.output(bytes)).toBe(0);
    return rb;
  }

  it('go on from where a consumer stopped inside them, whichever call or handle reads next', () => {
    const k = boot();
    const rb = runThenRecord(k);
    const cons = rb.query(BPF_RB_CONS_POS);
    const got: number[] = [];
    // a callback that returns < 0 at the run's fourth record: that one counts as consumed
    expect(rb.consume((v) => (got.push(readRecord(v)[1]) === 4 ? -1 : 0))).toBe(-1);
    expect(got).toEqual([0, 1, 2, 3]);
    expect(rb.query(BPF_RB_CONS_POS)).toBe(cons); // the run's records have no header to stop at
    k.checkInvariants();
    // a read through another handle of the same ring, ended early inside the run
    const other = k.ringbuf(rb.kaddr)!;
    const mem = new DataView(k.handle.buffer);
    for (const seq of [4, 5]) {
      const at = other.readRecord();
      expect(at).toBeGreaterThanOrEqual(0);
      expect(other.readLength).toBe(32);
      expect(mem.getUint32(at + 4, true)).toBe(seq);
    }
    other.readDone();
    expect(rb.query(BPF_RB_CONS_POS)).toBe(cons);
    k.checkInvariants();
    // a callback that throws at the run's eighth record: that one comes again
    got.length = 0;
    expect(() =>
      rb.consumeAt((_u8, at) => {
        got.push(mem.getUint32(at + 4, true));
        if (got.length === 2) throw new Error('stop');
      }),
    ).toThrow('stop');
    expect(got).toEqual([6, 7]);
    k.checkInvariants();
    got.length = 0;
    expect(rb.consume((v) => void got.push(readRecord(v)[1]))).toBe(4);
    expect(got).toEqual([7, 8, 9, 10]);
    expect(rb.query(BPF_RB_CONS_POS)).toBe(rb.query(BPF_RB_PROD_POS));
    k.checkInvariants();
  });

  it("count the run's last record as the run: a stop there passes the run whole", () => {
    const k = boot();
    const rb = runThenRecord(k);
    const cons = rb.query(BPF_RB_CONS_POS);
    const got: number[] = [];
    expect(rb.consume((v) => (got.push(readRecord(v)[1]) === 10 ? -1 : 0))).toBe(-1);
    expect(got).toEqual(range(0, 10));
    expect(rb.query(BPF_RB_CONS_POS)).toBe(cons + 16 + 10 * 32); // past the run
    k.checkInvariants();
    got.length = 0;
    expect(rb.consume((v) => void got.push(readRecord(v)[1]))).toBe(1);
    expect(got).toEqual([10]);
    // a read ended right after a run's last record stores the position past the run
    writeBulk(rb, rb.batchReserveBulk(32, 10), 32, 11, 10);
    expect(rb.flush()).toBe(0);
    const run = rb.query(BPF_RB_CONS_POS);
    for (let seq = 0; seq < 10; seq++) expect(rb.readRecord()).toBeGreaterThanOrEqual(0);
    rb.readDone();
    expect(rb.query(BPF_RB_CONS_POS)).toBe(run + 16 + 10 * 32);
    expect(rb.query(BPF_RB_CONS_POS)).toBe(rb.query(BPF_RB_PROD_POS));
    k.checkInvariants();
  });

  it('are checked by the invariant checker, and a consumer refuses a position that is not within a run', () => {
    const k = boot();
    const rb = runThenRecord(k);
    const data = rb.kaddr + 3 * PAGE_SIZE; // the run's header at data offset 0
    const put = (kaddr: number, v: number): void => {
      k.writeKernel(kaddr, new Uint8Array(new Int32Array([v]).buffer));
    };
    // CONSUMER_SKIP and CONSUMER_SKIP_POS (consumer page words 48 and 49): a count for where the
    // consumer is
    const setSkip = (n: number): void => {
      put(rb.kaddr + PAGE_SIZE + 49 * 4, rb.query(BPF_RB_CONS_POS));
      put(rb.kaddr + PAGE_SIZE + 48 * 4, n);
    };
    const check = (): void => {
      k.checkInvariants();
    };
    const consume = (): number => rb.consume(() => undefined);
    check();
    put(data + 12, 11); // the descriptor's count: 11 records of 32 bytes do not fill 328 bytes
    expect(check).toThrow('says 11 records of 32 bytes in 328');
    expect(consume).toThrow('says 11 records of 32 bytes in 328');
    expect(() => rb.readRecord()).toThrow('says 11 records of 32 bytes in 328'); // its read ended
    put(data + 12, 10);
    const word0 = ringWord(k, data);
    put(data, word0 | RINGBUF_DISCARD_BIT); // a run is discarded whole: never with the bit
    expect(check).toThrow('the run at offset 0 is busy or discarded');
    put(data, word0);
    setSkip(10); // all ten: the consumer would have passed the run
    expect(check).toThrow('CONSUMER_SKIP is 10, not within the 10 records');
    expect(consume).toThrow("CONSUMER_SKIP is 10, past the run's 10");
    expect(() => rb.readRecord()).toThrow('CONSUMER_SKIP is 10, not within a run');
    setSkip(0);
    let n = 0;
    expect(rb.consume(() => (++n === 10 ? -1 : 0))).toBe(-1); // the run, whole
    setSkip(1); // at a record of its own
    expect(check).toThrow('the record at CONSUMER_POS is no run');
    expect(consume).toThrow('CONSUMER_SKIP is 1 at offset 336');
    expect(() => rb.readRecord()).toThrow('CONSUMER_SKIP is 1, not within a run');
    setSkip(0);
    expect(consume()).toBe(1); // nothing moved, and no lock was left held
    check();
    // at a discarded record: no run either, and the reader does not pass it (to give the count to
    // the run after it)
    const rec = rb.reserve(24)!;
    rec.discard();
    writeBulk(rb, rb.batchReserveBulk(32, 2), 32, 11, 2);
    expect(rb.flush()).toBe(0);
    setSkip(1);
    expect(check).toThrow('the record at CONSUMER_POS is no run');
    expect(() => rb.readRecord()).toThrow('CONSUMER_SKIP is 1, not within a run');
    // a count for another position counts for nothing (a consumer died as it moved on): the next
    // consume stores it 0
    put(rb.kaddr + PAGE_SIZE + 49 * 4, rb.query(BPF_RB_CONS_POS) - 8);
    check();
    const got: number[] = [];
    expect(rb.consume((v) => void got.push(readRecord(v)[1]))).toBe(2);
    expect(got).toEqual([11, 12]);
    expect(ringWord(k, rb.kaddr + PAGE_SIZE + 48 * 4)).toBe(0);
    check();
  });

  it('fill a chunk to its last byte and no further: a record that would make the last one a run without room for it goes to the next batch', () => {
    for (const bulk of [false, true]) {
      const k = boot();
      const rb = k.ringbufCreate(16 * PAGE_SIZE)!;
      // the first chunk is 512 bytes: records of 8 and 16 bytes in turn (16 and 24 with their
      // headers) up to 456 bytes, then one of 24 (32 with its header) ends at 488
      let seq = 0;
      for (let i = 0; i < 23; i++) reserveRange(rb, seq, ++seq, i & 1 ? 16 : 8);
      reserveRange(rb, seq, ++seq, 24);
      // another record of 24 bytes would take 24 in a run, but making the last record a run takes
      // 8 more (its descriptor): 520 bytes, past the chunk. So the batch goes out first
      const at = bulk ? rb.batchReserveBulk(24, 1) : rb.batchReserve(24);
      expect(at).toBe(bulk ? 16 : 8);
      writeAt(rb, at, 24, seq++);
      expect(seen(rb)).toEqual(range(0, 24));
      expect(rb.flush()).toBe(0);
      expect(seen(rb)).toEqual([24]);
      k.checkInvariants();
    }
  });

  it('leave a consumer that dies between any two of its stores nothing lost, and nothing an earlier consumer stored given again', () => {
    // a run of 10 (0 … 9), a record of its own (10), a run of 10 (11 … 20); an earlier consume
    // stopped at record 2, so 0 … 2 are stored. The next call stops at record 5 (the same run) or
    // 14 (another run) (a consume whose callback returns -1, or a read ended there) and dies at
    // its k-th store to the consumer page, every k in turn; then its thread is reaped, and a
    // consume takes the rest
    for (const [how, stop] of [
      ['consume', 5],
      ['consume', 14],
      ['read', 5],
      ['read', 14],
    ] as const) {
      for (let k = 1; ; k++) {
        const kernel = boot();
        const rb = runThenRecord(kernel);
        writeBulk(rb, rb.batchReserveBulk(32, 10), 32, 11, 10);
        expect(rb.flush()).toBe(0);
        expect(rb.consume((v) => (readRecord(v)[1] === 2 ? -1 : 0))).toBe(-1);
        const i32 = new Int32Array(kernel.handle.buffer);
        const page = kernel.view(rb.kaddr + PAGE_SIZE, 4, Int32Array).byteOffset / 4;
        const lock = page + 16;
        const store = Atomics.store.bind(Atomics);
        let stores = 0;
        let dead = false;
        const spy = vi.spyOn(Atomics, 'store').mockImplementation(((
          ta: Int32Array,
          index: number,
          value: number,
        ): number => {
          if (dead) return value; // a dead thread stores nothing more
          if (ta.buffer === kernel.handle.buffer && index >= page && index < page + 1024) {
            if (index !== lock && ++stores === k) {
              dead = true;
              throw new Error('the thread dies');
            }
          }
          return store(ta, index, value);
        }) as typeof Atomics.store);
        let died = false;
        try {
          if (how === 'consume') {
            rb.consume((v) => (readRecord(v)[1] === stop ? -1 : 0));
          } else {
            const mem = new DataView(kernel.handle.buffer);
            for (let at = rb.readRecord(); at >= 0; at = rb.readRecord())
              if (mem.getUint32(at + 4, true) === stop) break;
            rb.readDone();
          }
        } catch {
          died = true;
        } finally {
          spy.mockRestore();
        }
        if (!died) break; // k is past the call's last store
        store(i32, lock, 0); // reaped: its lock let go
        const got: number[] = [];
        rb.consume((v) => void got.push(readRecord(v)[1]));
        // from where some stored state says, never before 3 and never past 15, each record once
        expect(got[0], `${how}, dead at store ${k}`).toBeGreaterThanOrEqual(3);
        expect(got[0], `${how}, dead at store ${k}`).toBeLessThanOrEqual(stop + 1);
        expect(got).toEqual(range(got[0]!, 21));
        kernel.checkInvariants();
      }
    }
  });
});
