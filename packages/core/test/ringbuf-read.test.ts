/**
 * The consumer's cursor: `readRecord` in the caller's own loop, `readLength`, `readDone`,
 * `waitReadable`. Its model test is in ringbuf-model.test.ts ('read' steps), its real threads in
 * ringbuf-threads.test.ts (consumers 'read' and 'read-spin').
 */
import { describe, expect, it, vi } from 'vitest';
import {
  BPF_RB_CONS_POS,
  BPF_RB_PROD_POS,
  EAGAIN,
  EBUSY,
  EINVAL,
  Kernel,
  PAGE_SIZE,
  RB_BATCH,
  type RingBuf,
} from '../src/index.js';
import { MiB } from './helpers/reliability.js';
import { fillRecord, readRecord, setPositions } from './helpers/ring-helpers.js';

const DATA = 4 * PAGE_SIZE;

function boot(): Kernel {
  return Kernel.boot({ memoryBytes: 16 * MiB });
}

/** Output a record of `len` bytes named `seq` (producer 1). */
function put(rb: RingBuf, seq: number, len = 24): void {
  const bytes = new Uint8Array(len);
  fillRecord(bytes, 1, seq);
  expect(rb.output(bytes)).toBe(0);
}

/** The bytes of record `seq` (producer 1), 24 of them. */
function fill(seq: number): Uint8Array {
  const bytes = new Uint8Array(24);
  fillRecord(bytes, 1, seq);
  return bytes;
}

/** Every record readRecord hands out now (their seqs), until it answers -EAGAIN. */
function readAll(k: Kernel, rb: RingBuf): number[] {
  const seqs: number[] = [];
  let at: number;
  while ((at = rb.readRecord()) >= 0) {
    seqs.push(readRecord(new Uint8Array(k.handle.buffer, at, rb.readLength))[1]);
  }
  expect(at).toBe(-EAGAIN);
  return seqs;
}

describe('readRecord, a loop of the caller’s own', () => {
  it('hands out every committed record in order with its length, skips discarded ones, stops at a busy one', () => {
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    put(rb, 0, 16);
    const gone = rb.reserve(40)!;
    expect(gone.discard()).toBe(0);
    put(rb, 1, 100);
    const busy = rb.reserve(24)!;
    put(rb, 2, 8);
    const lengths: number[] = [];
    const seqs: number[] = [];
    for (let at; (at = rb.readRecord()) >= 0;) {
      lengths.push(rb.readLength);
      seqs.push(readRecord(new Uint8Array(k.handle.buffer, at, rb.readLength))[1]);
      expect(at % 8).toBe(0);
    }
    expect(seqs).toEqual([0, 1]);
    expect(lengths).toEqual([16, 100]);
    // the read ended at the busy record: the consumer position is stored there, the lock let go
    const cons = rb.query(BPF_RB_CONS_POS);
    expect(cons).toBe(24 + 48 + 112);
    expect(rb.consume(() => undefined)).toBe(0); // not -EBUSY
    fillRecord(busy.data, 1, 9);
    expect(busy.submit()).toBe(0);
    expect(readAll(k, rb)).toEqual([9, 2]);
    expect(rb.query(BPF_RB_CONS_POS)).toBe(rb.query(BPF_RB_PROD_POS));
    k.checkInvariants();
    rb.free();
  });

  it('keeps the record it returned in place until the next call: the consumer position stays behind it', () => {
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    // enough records to cross a quarter of the ring (4 KiB) while the read is open
    for (let i = 0; i < 200; i++) put(rb, i, 24);
    let stored = 0;
    for (let i = 0; i < 150; i++) {
      expect(rb.readRecord()).toBeGreaterThanOrEqual(0);
      const pos = rb.query(BPF_RB_CONS_POS);
      expect(pos).toBeGreaterThanOrEqual(stored); // it only moves forward
      expect(pos).toBeLessThanOrEqual(i * 32); // never past record i (32 bytes each, from 0)
      stored = pos;
    }
    // 150 records of 32 bytes = 4800 bytes: a quarter (4096) was stored on the way
    expect(rb.query(BPF_RB_CONS_POS)).toBe(4096);
    rb.readDone();
    expect(rb.query(BPF_RB_CONS_POS)).toBe(150 * 32);
    expect(readAll(k, rb)).toEqual(Array.from({ length: 50 }, (_, i) => 150 + i));
    rb.free();
  });

  it('holds the consumer lock while a read is open: another consume answers -EBUSY until readDone', () => {
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    const other = k.ringbuf(rb.kaddr)!; // a second handle (another consumer)
    put(rb, 0);
    put(rb, 1);
    expect(rb.readRecord()).toBeGreaterThanOrEqual(0);
    expect(other.consume(() => undefined)).toBe(-EBUSY);
    expect(other.readRecord()).toBe(-EBUSY);
    k.checkInvariants(); // this thread's open read may hold the lock
    rb.readDone();
    rb.readDone(); // a no-op now
    const seqs: number[] = [];
    expect(other.consume((v) => void seqs.push(readRecord(v)[1]))).toBe(1);
    expect(seqs).toEqual([1]); // the record read before readDone counts as consumed
    rb.free();
  });

  it('stores the consumer position before it lets the consumer lock go, at readDone and at -EAGAIN', () => {
    // the other order would let another consumer take the lock and start at the old position: the
    // records this read returned would come again
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    // the consumer page (RINGBUF_PGOFF): CONSUMER_POS at word 0, CONSUMER_LOCK at word 16
    const posAt = k.view(rb.kaddr + PAGE_SIZE, 4, Int32Array).byteOffset / 4;
    const lockAt = posAt + 16;
    const order: string[] = [];
    const store = Atomics.store.bind(Atomics);
    const spy = vi.spyOn(Atomics, 'store').mockImplementation(((
      ta: Int32Array,
      index: number,
      value: number,
    ): number => {
      if (ta.buffer === k.handle.buffer && (index === posAt || index === lockAt))
        order.push(index === posAt ? `pos ${value}` : `lock ${value}`);
      return store(ta, index, value);
    }) as typeof Atomics.store);
    try {
      put(rb, 0);
      put(rb, 1);
      expect(rb.readRecord()).toBeGreaterThanOrEqual(0);
      rb.readDone();
      expect(order).toEqual(['pos 32', 'lock 0']); // one 24-byte record: 32 bytes with its header
      order.length = 0;
      let at: number;
      while ((at = rb.readRecord()) >= 0) expect(at).toBeGreaterThan(0);
      expect(at).toBe(-EAGAIN);
      expect(order).toEqual(['pos 64', 'lock 0']);
    } finally {
      spy.mockRestore();
    }
    rb.free();
  });

  it('ends the open read when the same handle consumes, polls or waits', async () => {
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    for (let i = 0; i < 4; i++) put(rb, i);
    expect(rb.readRecord()).toBeGreaterThanOrEqual(0);
    const seqs: number[] = [];
    expect(rb.consume((v) => void seqs.push(readRecord(v)[1]))).toBe(3);
    expect(seqs).toEqual([1, 2, 3]);
    put(rb, 4);
    put(rb, 5);
    expect(rb.readRecord()).toBeGreaterThanOrEqual(0);
    expect(await rb.waitReadable({ timeoutMs: 0 })).toBe(1); // the read ended: record 5 is ready
    expect(readAll(k, rb)).toEqual([5]);
    put(rb, 6);
    expect(rb.readRecord()).toBeGreaterThanOrEqual(0);
    expect(await rb.poll(() => undefined, { timeoutMs: 0 })).toBe(0);
    expect(rb.query(BPF_RB_CONS_POS)).toBe(rb.query(BPF_RB_PROD_POS));
    rb.free();
  });

  it('ends a read after a lap of the ring, though producers keep it from catching up', () => {
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    let seq = 0;
    let read = 0;
    for (let i = 0; i < 100; i++) put(rb, seq++, 56);
    // each record read makes room for one more: the read never finds the ring empty
    let at: number;
    while ((at = rb.readRecord()) >= 0) {
      expect(readRecord(new Uint8Array(k.handle.buffer, at, rb.readLength))[1]).toBe(read++);
      put(rb, seq++, 56);
      if (read > 10 * (DATA / 64)) throw new Error('the read never ended');
    }
    expect(at).toBe(-EAGAIN);
    // a lap (DATA bytes of 64-byte records), ended at the quarter it crossed it in
    expect(read).toBeGreaterThanOrEqual(DATA / 64);
    expect(read).toBeLessThanOrEqual(DATA / 64 + DATA / 4 / 64);
    expect(seq - read).toBe(100); // records were left: the next read goes on with them
    expect(readAll(k, rb)).toEqual(Array.from({ length: 100 }, (_, i) => read + i));
    rb.free();
  });

  it('reads records a batch published and ones across the end of the ring and the 2^32 wrap', () => {
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    setPositions(k, rb, 2 ** 32 - 200);
    for (let i = 0; i < 10; i++) put(rb, i, 24);
    const seqs = readAll(k, rb);
    expect(seqs).toEqual(Array.from({ length: 10 }, (_, i) => i));
    for (let i = 0; i < 300; i++) {
      const bytes = new Uint8Array(24);
      fillRecord(bytes, 1, 10 + i);
      expect(rb.output(bytes, RB_BATCH)).toBe(0);
    }
    expect(rb.flush(0)).toBe(0);
    expect(readAll(k, rb)).toEqual(Array.from({ length: 300 }, (_, i) => 10 + i));
    k.checkInvariants();
    rb.free();
  });

  it('answers -EINVAL on a freed ring, and a free ends this thread’s open read', () => {
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    put(rb, 0);
    put(rb, 1);
    expect(rb.readRecord()).toBeGreaterThanOrEqual(0);
    rb.free();
    expect(rb.readRecord()).toBe(-EINVAL);
    rb.readDone(); // nothing open: a no-op
    const again = k.ringbufCreate(DATA)!; // the same frames, a new ring: its lock is free
    put(again, 5);
    expect(readAll(k, again)).toEqual([5]);
    k.checkInvariants();
    again.free();
  });

  it('lets the consumer lock go at detach', () => {
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    put(rb, 0);
    put(rb, 1);
    const second = Kernel.attach(k.handle); // another attachment of this thread
    const mine = second.ringbuf(rb.kaddr)!;
    expect(mine.readRecord()).toBeGreaterThanOrEqual(0);
    expect(rb.consume(() => undefined)).toBe(-EBUSY);
    second.detach();
    const seqs: number[] = [];
    expect(rb.consume((v) => void seqs.push(readRecord(v)[1]))).toBe(1);
    expect(seqs).toEqual([1]);
    k.checkInvariants();
    rb.free();
  });
});

describe('readRecord and the rest of the ring', () => {
  it('at detach, ends the read before this thread publishes its batches, so they find the room the read made', () => {
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    let seq = 0;
    while (rb.output(fill(seq)) === 0) seq++; // full
    const second = Kernel.attach(k.handle);
    const mine = second.ringbuf(rb.kaddr)!;
    for (let i = 0; i < 100; i++) expect(mine.readRecord()).toBeGreaterThanOrEqual(0);
    // five batched records: no room while the read's position is not stored
    for (let i = 0; i < 5; i++) expect(mine.output(fill(1000 + i), RB_BATCH)).toBe(0);
    second.detach();
    const seqs: number[] = [];
    rb.consume((v) => void seqs.push(readRecord(v)[1]));
    expect(seqs.slice(-5)).toEqual([1000, 1001, 1002, 1003, 1004]);
    expect(seqs.length).toBe(seq - 100 + 5);
    k.checkInvariants();
    rb.free();
  });

  it('keeps a ring another thread frees in place while a read is open, and ends the read there', () => {
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    for (let i = 0; i < 10; i++) put(rb, i);
    const reader = Kernel.attach(k.handle); // as another thread: its own attachment
    const mine = reader.ringbuf(rb.kaddr)!;
    expect(mine.readRecord()).toBeGreaterThanOrEqual(0);
    rb.free(); // by this attachment, not the reader's
    // the read's hold keeps the area: a new ring does not get its frames meanwhile
    const next = k.ringbufCreate(DATA)!;
    expect(next.kaddr).not.toBe(rb.kaddr);
    for (let i = 0; i < 10; i++) put(next, 100 + i);
    // the read hands out at most the old ring's records, never the new one's, then -EINVAL
    const seqs: number[] = [];
    let at: number;
    while ((at = mine.readRecord()) >= 0)
      seqs.push(readRecord(new Uint8Array(k.handle.buffer, at, mine.readLength))[1]);
    expect(at).toBe(-EINVAL);
    expect(seqs.every((s, i) => s === i + 1)).toBe(true);
    reader.detach();
    expect(readAll(k, next)).toEqual(Array.from({ length: 10 }, (_, i) => 100 + i));
    k.checkInvariants();
    next.free();
  });

  it('a free of one ring leaves this thread’s read on another ring open', () => {
    const k = boot();
    const a = k.ringbufCreate(DATA)!;
    const b = k.ringbufCreate(DATA)!;
    put(b, 0);
    put(b, 1);
    expect(b.readRecord()).toBeGreaterThanOrEqual(0);
    a.free();
    expect(k.ringbuf(b.kaddr)!.consume(() => undefined)).toBe(-EBUSY); // still open
    expect(readAll(k, b)).toEqual([1]);
    expect(k.ringbuf(b.kaddr)!.consume(() => undefined)).toBe(0); // and let go
    k.checkInvariants();
    b.free();
  });

  it('readLength is the length of the record last returned while the read is open, 0 after it ends', () => {
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    expect(rb.readLength).toBe(0);
    put(rb, 0, 40);
    const gone = rb.reserve(100)!;
    expect(gone.discard()).toBe(0);
    put(rb, 1, 16);
    expect(rb.readRecord()).toBeGreaterThanOrEqual(0);
    expect(rb.readLength).toBe(40);
    expect(rb.readRecord()).toBeGreaterThanOrEqual(0); // the discarded record passed
    expect(rb.readLength).toBe(16);
    expect(rb.readRecord()).toBe(-EAGAIN);
    expect(rb.readLength).toBe(0);
    put(rb, 2, 8);
    expect(rb.readRecord()).toBeGreaterThanOrEqual(0);
    rb.readDone();
    expect(rb.readLength).toBe(0);
    rb.free();
  });
});

describe('waitReadable', () => {
  it('answers -EBUSY while another consumer holds the ring, as poll does', async () => {
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    const other = k.ringbuf(rb.kaddr)!;
    put(rb, 0);
    put(rb, 1);
    expect(other.readRecord()).toBeGreaterThanOrEqual(0); // another handle's read is open
    expect(await rb.waitReadable({ timeoutMs: 0 })).toBe(-EBUSY);
    expect(rb.waitReadableSync({ timeoutMs: 0 })).toBe(-EBUSY);
    expect(await rb.poll(() => undefined, { timeoutMs: 0 })).toBe(-EBUSY);
    other.readDone();
    expect(await rb.waitReadable({ timeoutMs: 0 })).toBe(1);
    rb.free();
  });

  it('resolves 1 at once when a record is ready, 0 on timeout when none is, and wakes for a record', async () => {
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    expect(await rb.waitReadable({ timeoutMs: 0 })).toBe(0);
    expect(await rb.waitReadable({ timeoutMs: 20 })).toBe(0);
    expect(rb.waitReadableSync({ timeoutMs: 0 })).toBe(0);
    put(rb, 0);
    expect(await rb.waitReadable()).toBe(1);
    expect(rb.waitReadableSync({ timeoutMs: 0 })).toBe(1);
    expect(readAll(k, rb)).toEqual([0]);
    // a record committed while it sleeps wakes it (the producer's wake-up check)
    setTimeout(() => {
      put(rb, 1);
    }, 30);
    const t = Date.now();
    expect(await rb.waitReadable({ timeoutMs: 5000 })).toBe(1);
    expect(Date.now() - t).toBeLessThan(4000);
    expect(readAll(k, rb)).toEqual([1]);
    // a busy record is not ready; a discarded one is (the read passes it)
    const rec = rb.reserve(8)!;
    expect(await rb.waitReadable({ timeoutMs: 0 })).toBe(0);
    expect(rec.discard()).toBe(0);
    expect(await rb.waitReadable({ timeoutMs: 0 })).toBe(1);
    expect(readAll(k, rb)).toEqual([]);
    expect(await rb.waitReadable({ timeoutMs: 0 })).toBe(0);
    rb.free();
    expect(await rb.waitReadable({ timeoutMs: 0 })).toBe(-EINVAL);
    expect(rb.waitReadableSync({ timeoutMs: 0 })).toBe(-EINVAL);
  });
});
