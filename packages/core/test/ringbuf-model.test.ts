/**
 * Model-based test of the ring buffer: random sequences of reserve, output, batched output
 * (`RB_BATCH`, or `batchReserve`/`batchReserveBulk` and writes in place), flush, submit, discard,
 * consume and reads with `readRecord` (left open across other calls, ended early with `readDone`)
 * against a simple queue of records, from
 * positions that start anywhere (near 2^32 too), so rings fill up, wrap around the data area and
 * wrap their 32-bit position words. The model of a batch: records staged outside the ring, up to a
 * chunk (512 bytes at first, doubling each time a batch fills its chunk, shrinking to what an early
 * publish used, at most an eighth of the ring), reserved as one record of exactly their bytes when
 * the batch is published (when the ring has room: else the publish changes nothing, and the call
 * that needed it answers -EAGAIN or null). A batch's records of one length in a row form runs (one
 * ring record for many, no header between them: records reserved in bulk start one, and a record
 * of the length of the last one, more than 0 bytes, joins it or makes it one), which the consumer
 * hands out one by one and may stop inside: a `readDone`, a consume callback that returns < 0 or
 * throws.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  BPF_RB_AVAIL_DATA,
  BPF_RB_CONS_POS,
  BPF_RB_PROD_POS,
  EAGAIN,
  EINVAL,
  Kernel,
  PAGE_SIZE,
  RB_BATCH,
  RB_BATCH_MAX_RECORD,
  type RingBuf,
  type RingRecord,
} from '../src/index.js';
import { MiB } from './helpers/reliability.js';
import { fillRecord, readRecord, setPositions } from './helpers/ring-helpers.js';

/** One record in the model: where its reservation began, its bytes with the header, its state. */
interface ModelRecord {
  seq: number;
  /** position where its reservation began (the skipped tail's, if any) */
  start: number;
  /** bytes it took: skipped tail + header + data, 8-byte aligned */
  bytes: number;
  /** the tail skipped before it (0: none) */
  pad: number;
  len: number;
  state: 'busy' | 'submitted' | 'discarded';
  handle: RingRecord | null;
  /** a published batch: the records in it (seq, len), and the bytes they use; else null */
  batch: Batch | null;
}

/**
 * A batch: its records (seq, len, and the run they are in: -1 for none, else the same number for
 * the records of one run, which lie together) and the bytes they use, headers and all.
 */
interface Batch {
  records: { seq: number; len: number; run: number }[];
  used: number;
}

/** The stride of records reserved in bulk: their length padded to 8, at least 8. */
function bulkStride(len: number): number {
  return len > 0 ? Math.ceil(len / 8) * 8 : 8;
}

/** Numbers for runs, one for each run staged. */
let runIds = 0;

type Op =
  | { kind: 'reserve'; len: number }
  | { kind: 'output'; len: number }
  | { kind: 'batch'; len: number; inPlace: boolean }
  | { kind: 'bulk'; len: number; count: number }
  | { kind: 'flush' }
  | { kind: 'commit'; pick: number; discard: boolean }
  | { kind: 'consume'; stop: number | null; throws: boolean }
  | { kind: 'read'; take: number; done: boolean };

function opArb(size: number): fc.Arbitrary<Op> {
  const len = fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: size / 2 - 8 }));
  const batchLen = fc.oneof(
    fc.constantFrom(8, 24, 32), // records of one length in a row: runs
    fc.integer({ min: 0, max: 64 }),
    fc.integer({ min: 0, max: 300 }),
    fc.integer({ min: RB_BATCH_MAX_RECORD - 16, max: RB_BATCH_MAX_RECORD + 16 }),
  );
  return fc.oneof(
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('reserve' as const), len }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('output' as const), len }) },
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('batch' as const),
        len: batchLen,
        inPlace: fc.boolean(), // batchReserve and a write in place, else output(bytes, RB_BATCH)
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('bulk' as const), // batchReserveBulk and each record written in place
        len: fc.oneof(fc.constantFrom(8, 24, 32), fc.integer({ min: 0, max: 64 })),
        count: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 2000 })),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('flush' as const) }) },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('commit' as const),
        pick: fc.nat(),
        discard: fc.boolean(),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('consume' as const),
        // the callback stops at its stop-th record: returns -1 (it counts as consumed) or throws
        stop: fc.option(fc.oneof(fc.nat({ max: 4 }), fc.nat({ max: 300 }))),
        throws: fc.boolean(),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('read' as const), // up to `take` readRecord calls, then readDone or not
        take: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 400 })),
        done: fc.boolean(),
      }),
    },
  );
}

/**
 * What the consumer meets in the ring, one at a time: a skipped tail, a busy record, a record (a
 * batch's records one by one), at position `pos`, taking `bytes`. A run's records are all at the
 * run's position, the last taking the run's bytes and the others none (a consumer that stops
 * inside a run stores the run's position); `mid` for all but the first (no quarter of the ring
 * is stored between them).
 */
interface Entry {
  pos: number;
  bytes: number;
  kind: 'discard' | 'busy' | 'data';
  seq: number;
  len: number;
  mid: boolean;
}

/** The entries of a model record, in ring order. */
function entries(rec: ModelRecord): Entry[] {
  const out: Entry[] = [];
  if (rec.pad > 0)
    out.push({ pos: rec.start, bytes: rec.pad, kind: 'discard', seq: -1, len: 0, mid: false });
  let pos = rec.start + rec.pad;
  if (rec.batch !== null) {
    const records = rec.batch.records;
    for (let i = 0; i < records.length;) {
      const r = records[i]!;
      if (r.run < 0) {
        const bytes = Math.ceil((r.len + 8) / 8) * 8;
        out.push({ pos, bytes, kind: 'data', seq: r.seq, len: r.len, mid: false });
        pos += bytes;
        i++;
        continue;
      }
      let n = 0;
      while (records[i + n]?.run === r.run) n++;
      const bytes = 16 + n * bulkStride(r.len);
      for (let j = 0; j < n; j++) {
        const x = records[i + j]!;
        const last = j === n - 1;
        out.push({
          pos,
          bytes: last ? bytes : 0,
          kind: 'data',
          seq: x.seq,
          len: x.len,
          mid: j > 0,
        });
      }
      pos += bytes;
      i += n;
    }
    return out;
  }
  const kind = rec.state === 'busy' ? 'busy' : rec.state === 'discarded' ? 'discard' : 'data';
  out.push({ pos, bytes: rec.bytes - rec.pad, kind, seq: rec.seq, len: rec.len, mid: false });
  return out;
}

/** The model: records from the consumer position on, in reservation order. */
class Model {
  records: ModelRecord[] = [];
  seq = 0;
  /** the open batch, staged outside the ring (with its chunk's bytes), or null */
  staged: (Batch & { size: number }) | null = null;
  /** bytes of the next chunk */
  chunk = 512;
  /** where the consumer is: `cons`; what CONSUMER_POS says: `stored` (behind it in an open read) */
  stored: number;
  /** entries of records[0] the consumer has passed */
  skip = 0;
  /** a read is open (this thread holds the consumer lock), begun at `begun` */
  reading = false;
  begun = 0;
  constructor(
    readonly size: number,
    public cons: number,
    public prod: number,
  ) {
    this.stored = cons;
  }

  /** The entry at the consumer's position, or undefined at the producer position. */
  head(): Entry | undefined {
    const rec = this.records[0];
    return rec === undefined ? undefined : entries(rec)[this.skip];
  }

  /** Pass the entry at the consumer's position. */
  pass(): Entry {
    const e = this.head()!;
    this.cons = e.pos + e.bytes;
    if (++this.skip === entries(this.records[0]!).length) {
      this.records.shift();
      this.skip = 0;
    }
    return e;
  }

  /** A read is open (a method: the reads and calls in between may end it). */
  isReading(): boolean {
    return this.reading;
  }

  /** End an open read: CONSUMER_POS stored at the consumer's position. */
  endRead(): void {
    this.stored = this.cons;
    this.reading = false;
  }

  /**
   * What `readRecord` answers next: the record, or null for -EAGAIN (the read ends). Before each
   * look, a quarter of the ring past the stored position is stored, and a lap since the read
   * began ends it.
   */
  read(): Entry | null {
    for (;;) {
      if (this.head()?.mid !== true && this.cons - this.stored >= this.size / 4) {
        this.stored = this.cons;
        if (this.cons - this.begun >= this.size) {
          this.endRead();
          return null;
        }
      }
      const e = this.head();
      if (e === undefined || e.kind === 'busy') {
        this.endRead();
        return null;
      }
      this.pass();
      if (e.kind === 'data') return e;
    }
  }

  /** Bytes a reservation of `len` takes at the producer position (the tail too, if it wraps). */
  need(len: number): number {
    const total = Math.ceil((len + 8) / 8) * 8;
    const tail = this.size - (this.prod % this.size);
    return tail < total ? tail + total : total;
  }

  /** Where the oldest busy record is (after the tail it skipped), or the producer position. */
  pending(): number {
    const busy = this.records.find((r) => r.state === 'busy');
    return busy === undefined ? this.prod : busy.start + busy.pad;
  }

  /** Linux's room check: less than a whole ring ahead of the consumer and of the oldest busy one. */
  fits(len: number): boolean {
    const next = this.prod + this.need(len);
    return next - this.stored <= this.size - 1 && next - this.pending() <= this.size - 1;
  }

  /** The largest chunk on this ring. */
  get cap(): number {
    return Math.min(128 * 1024, this.size / 8);
  }

  /**
   * Publish the open batch: one submitted record of exactly its bytes, when the ring has room
   * (else nothing changes: false). `full`: it was published because a record did not fit.
   */
  publish(full: boolean): boolean {
    const b = this.staged;
    if (b === null) return true;
    if (!this.fits(b.used - 8)) return false;
    const bytes = this.need(b.used - 8);
    const pad = bytes - b.used;
    const batch = { records: b.records, used: b.used };
    const rec: ModelRecord = {
      seq: -1,
      start: this.prod,
      bytes,
      pad,
      len: b.used - 8,
      state: 'submitted',
      handle: null,
      batch,
    };
    this.records.push(rec);
    this.prod += bytes;
    this.staged = null;
    this.chunk = full
      ? Math.min(128 * 1024, this.chunk * 2)
      : Math.max(512, 2 ** Math.ceil(Math.log2(b.used)));
    return true;
  }

  add(len: number, state: ModelRecord['state'], handle: RingRecord | null): ModelRecord {
    const bytes = this.need(len);
    const pad = bytes - Math.ceil((len + 8) / 8) * 8;
    const rec = { seq: this.seq++, start: this.prod, bytes, pad, len, state, handle, batch: null };
    this.records.push(rec);
    this.prod += rec.bytes;
    return rec;
  }
}

function step(k: Kernel, rb: RingBuf, m: Model, op: Op): void {
  switch (op.kind) {
    case 'reserve': {
      if (!m.publish(false)) {
        expect(rb.reserve(op.len)).toBeNull(); // no room for this thread's batch before it
        return;
      }
      const rec = rb.reserve(op.len);
      expect(rec !== null, `reserve(${op.len}) at prod ${m.prod}`).toBe(m.fits(op.len));
      if (rec === null) return;
      expect(rec.data.length).toBe(op.len);
      fillRecord(rec.data, 1, m.seq);
      m.add(op.len, 'busy', rec);
      return;
    }
    case 'flush': {
      expect(rb.flush(0)).toBe(m.publish(false) ? 0 : -EAGAIN); // 0: never waits
      return;
    }
    case 'batch': {
      const bytes = new Uint8Array(op.len);
      fillRecord(bytes, 1, m.seq);
      const total = Math.ceil((op.len + 8) / 8) * 8;
      const max = RB_BATCH_MAX_RECORD;
      // batchReserve, then the bytes written where it says; or output: either answers 0 when taken
      const put = (expected: number): number => {
        if (!op.inPlace) return rb.output(bytes, RB_BATCH);
        const at = rb.batchReserve(op.len);
        if (at < 0) return at;
        expect(at).toBe(expected);
        new Uint8Array(rb.batchBuffer, at, op.len).set(bytes);
        return 0;
      };
      if (op.inPlace && (op.len > max || total > m.cap)) {
        expect(rb.batchReserve(op.len)).toBe(-EINVAL); // never out at once: nothing changes
        return;
      }
      const b = m.staged;
      // a record of the length of the batch's last (more than 0 bytes) joins it in a run: at the
      // end of a run, or after the last record, moved 8 bytes on for the run's descriptor
      const last = b?.records.at(-1);
      const join = last?.len === op.len && op.len > 0;
      const stride = bulkStride(op.len);
      const need = !join ? total : last.run >= 0 ? stride : 8 + stride;
      if (op.len <= max && b !== null && b.used + need <= b.size) {
        expect(put(join && last.run >= 0 ? b.used : b.used + 8)).toBe(0); // joins the open batch
        if (join && last.run < 0) last.run = runIds++;
        b.records.push({ seq: m.seq++, len: op.len, run: join ? last.run : -1 });
        b.used += need;
        return;
      }
      // the open batch is full (or the record too large for one): it goes out first
      if (!m.publish(op.len <= max)) {
        expect(put(-1)).toBe(-EAGAIN);
        return;
      }
      if (op.len <= max && total <= m.cap) {
        expect(put(8)).toBe(0); // a new batch, staged
        const size = Math.min(m.cap, Math.max(m.chunk, total));
        m.staged = { records: [{ seq: m.seq++, len: op.len, run: -1 }], used: total, size };
        return;
      }
      // output at once, as without RB_BATCH
      const fits = m.fits(op.len);
      expect(rb.output(bytes, RB_BATCH)).toBe(fits ? 0 : -EAGAIN);
      if (fits) m.add(op.len, 'submitted', null);
      return;
    }
    case 'bulk': {
      const stride = bulkStride(op.len);
      const grow = stride * op.count;
      if (16 + grow > m.cap) {
        expect(rb.batchReserveBulk(op.len, op.count)).toBe(-EINVAL); // more than a chunk
        return;
      }
      // every record joins the batch (in the open one when all fit, else in a new one); a bulk of
      // the length of the batch's last record, a run, grows that run
      const put = (expected: number): number => {
        const at = rb.batchReserveBulk(op.len, op.count);
        if (at < 0) return at;
        expect(at).toBe(expected); // after the open batch's records, or first in a new one
        for (let k = 0; k < op.count; k++) {
          const bytes = new Uint8Array(rb.batchBuffer, at + k * stride, op.len);
          fillRecord(bytes, 1, m.seq + k);
        }
        return 0;
      };
      const b = m.staged;
      const last = b?.records.at(-1);
      // the length of the batch's last record: they join its run, or make it one (more than 0
      // bytes: it moves 8 bytes on for the run's descriptor)
      const join = last?.len === op.len && (op.len > 0 || last.run >= 0);
      const convert = join && last.run < 0;
      if (convert) last.run = runIds++;
      const run = join ? last.run : runIds++;
      const records = Array.from({ length: op.count }, (_, k) => ({
        seq: m.seq + k,
        len: op.len,
        run,
      }));
      const need = !join ? 16 + grow : convert ? 8 + grow : grow;
      if (b !== null && b.used + need <= b.size) {
        expect(put(!join ? b.used + 16 : convert ? b.used + 8 : b.used)).toBe(0);
        b.records.push(...records);
        b.used += need;
        m.seq += op.count;
        return;
      }
      if (convert) last.run = -1; // it goes out as it is, with the batch
      if (!m.publish(true)) {
        expect(put(-1)).toBe(-EAGAIN); // nothing taken, the batch kept
        return;
      }
      expect(put(16)).toBe(0);
      if (join) {
        const fresh = runIds++; // the run went out with the batch: these start a new one
        for (const r of records) r.run = fresh;
      }
      const total = 16 + grow;
      m.staged = { records, used: total, size: Math.min(m.cap, Math.max(m.chunk, total)) };
      m.seq += op.count;
      return;
    }
    case 'output': {
      const bytes = new Uint8Array(op.len);
      fillRecord(bytes, 1, m.seq);
      if (!m.publish(false)) {
        expect(rb.output(bytes)).toBe(-EAGAIN); // no room for this thread's batch before it
        return;
      }
      const fits = m.fits(op.len);
      expect(rb.output(bytes)).toBe(fits ? 0 : -EAGAIN);
      if (fits) m.add(op.len, 'submitted', null);
      return;
    }
    case 'commit': {
      const busy = m.records.filter((r) => r.state === 'busy' && r.handle !== null);
      const rec = busy[op.pick % Math.max(1, busy.length)];
      if (rec === undefined) return;
      expect(op.discard ? rec.handle!.discard() : rec.handle!.submit()).toBe(0);
      expect(rec.handle!.submit()).toBe(-22); // once only
      rec.state = op.discard ? 'discarded' : 'submitted';
      return;
    }
    case 'consume': {
      m.endRead(); // a consume ends this handle's open read first
      m.publish(false); // a consume publishes this thread's batch first
      const expected: number[] = [];
      // every record up to the first busy one (the tail it skipped is passed), or up to the
      // callback's stop: a record whose callback returns -1 is consumed, one whose callback
      // throws is not (it comes again)
      let handed = 0;
      let stopped = false;
      for (let e = m.head(); e !== undefined && e.kind !== 'busy'; e = m.head()) {
        if (e.kind === 'data' && handed === op.stop) {
          expected.push(id(e.seq, e.len));
          if (!op.throws) m.pass();
          stopped = true;
          break;
        }
        m.pass();
        if (e.kind === 'data') {
          expected.push(id(e.seq, e.len));
          handed++;
        }
      }
      m.stored = m.cons;
      const got: number[] = [];
      const call = (): number =>
        rb.consume((v) => {
          got.push(id(v.length >= 8 ? readRecord(v)[1] : 0, v.length));
          if (got.length - 1 !== op.stop) return 0;
          if (op.throws) throw new Error('the callback stops');
          return -1;
        });
      if (stopped && op.throws) {
        expect(call).toThrow('the callback stops');
      } else {
        expect(call()).toBe(stopped ? -1 : expected.length);
      }
      expect(got).toEqual(expected);
      return;
    }
    case 'read': {
      if (!m.reading) {
        m.publish(false); // the read that opens publishes this thread's batch first
        m.reading = true;
        m.begun = m.cons;
      }
      for (let i = 0; i < op.take; i++) {
        const e = m.read();
        const at = rb.readRecord();
        if (e === null) {
          expect(at).toBe(-EAGAIN);
          break;
        }
        expect(at, `readRecord at ${m.cons - e.bytes}`).toBeGreaterThanOrEqual(0);
        expect(rb.readLength).toBe(e.len);
        const v = new Uint8Array(k.handle.buffer, at, e.len);
        expect(id(v.length >= 8 ? readRecord(v)[1] : 0, v.length)).toBe(id(e.seq, e.len));
      }
      if (!m.isReading()) return; // it ended at -EAGAIN
      if (op.done) {
        rb.readDone();
        m.endRead();
      } else {
        k.checkInvariants(); // this thread's open read holds the consumer lock
      }
    }
  }
}

/** A record's identity: its seq where it has room for one, else its length. */
function id(seq: number, len: number): number {
  return len >= 8 ? seq : -1 - len;
}

describe('the ring buffer against a queue model', () => {
  it('agrees on every reservation, commit and consumed record, across wrap-around and full rings', async () => {
    const size = 2 * PAGE_SIZE;
    const k = Kernel.boot({ memoryBytes: 16 * MiB });
    const boot = k.stats().freeFrames;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.constant(0),
          fc.integer({ min: 2 ** 29 - 64, max: 2 ** 29 - 1 }).map((p) => p * 8), // near 2^32
          fc.nat({ max: 2 ** 29 - 1 }).map((p) => p * 8),
        ),
        fc.array(opArb(size), { minLength: 1, maxLength: 120, size: 'max' }),
        (startPos, ops) => {
          const rb = k.ringbufCreate(size)!;
          setPositions(k, rb, startPos);
          const m = new Model(size, startPos, startPos);
          try {
            for (const op of ops) {
              step(k, rb, m, op);
              expect(rb.query(BPF_RB_PROD_POS)).toBe(m.prod % 2 ** 32);
              expect(rb.query(BPF_RB_CONS_POS)).toBe(m.stored % 2 ** 32);
              expect(rb.query(BPF_RB_AVAIL_DATA)).toBe(m.prod - m.stored);
            }
            for (const rec of m.records) {
              if (rec.state !== 'busy' || rec.handle === null) continue;
              expect(rec.handle.submit()).toBe(0);
              rec.state = 'submitted';
            }
            step(k, rb, m, { kind: 'consume', stop: null, throws: false });
            // a batch that found no room went out with the consume? if not, it goes now
            step(k, rb, m, { kind: 'flush' });
            step(k, rb, m, { kind: 'consume', stop: null, throws: false });
            expect(m.records).toEqual([]);
            expect(m.staged).toBeNull();
            k.checkInvariants();
          } finally {
            rb.free();
          }
        },
      ),
      { numRuns: 150 },
    );
    // a flush that found the ring full left a retry waiting for the consumer: the ring's free woke
    // it, and the area goes once it has let go of the ring
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(k.stats().freeFrames).toBe(boot);
  });
});
