/**
 * Reading a ring record by record in the caller's own loop: the consumer's cursor.
 *
 * Kernel counterparts: libperf's reader of the perf ring (`perf_mmap__read_init`,
 * `perf_mmap__read_event`, `perf_mmap__consume`, `perf_mmap__read_done` in `tools/lib/perf/mmap.c`)
 * and liburing's `io_uring_for_each_cqe` with `io_uring_cq_advance`: the application walks the
 * entries itself and publishes how far it got. libbpf's BPF ring buffer has only the callback
 * (`ring_buffer__consume`), which sabvm has too (`consume`, `consumeAt`).
 *
 * **Why a cursor as well as a callback (a JavaScript reason).** A callback keeps what it computes
 * in variables of an enclosing function; V8 stores those in a heap context, and a number that is
 * not a small integer stored there is a new heap object each time (Node 20). A loop that the
 * caller writes keeps them in registers. A consumer that reads three fields of each of 2 M records
 * from a full ring took 28-30 ms with `consumeAt` and a callback, 12-16 ms with this cursor, and
 * 3 ms for the same loop over a plain `SharedArrayBuffer` with its variables in the loop.
 *
 * **How it reads.** `readRecord()` answers the byte offset of the next committed record's bytes
 * in physical memory (the same offsets `consumeAt` hands out); the record returned before it counts
 * as consumed. The first call of a read takes `CONSUMER_LOCK` (so the read is the one consumer, as
 * a `consume` is) and the last, the one that finds no record ready, stores `CONSUMER_POS` and lets
 * the lock go; `readDone()` ends a read early. In between the lock is held while the caller's code
 * runs: another thread's `consume` answers -EBUSY meanwhile, as during a `consume` whose callback
 * runs. The cursor stores `CONSUMER_POS` every quarter of the ring (the position before the record
 * it is about to return, so a returned record's bytes stay put until the next call) and ends a read
 * after a lap of the ring, as `consume` does, so a read that producers never let catch up still
 * returns to the event loop.
 *
 * State: the fields of a {@link RingReader} are this thread's own (one per ring handle); the shared
 * words it touches are the consumer's (`CONSUMER_POS` stored with `Atomics.store` under
 * `CONSUMER_LOCK`), the headers (read as `consume` reads them) and `PRODUCER_POS` (`Atomics.load`).
 *
 * @module
 */
import { EAGAIN, EBUSY, EINVAL } from './errno.js';
import {
  RINGBUF_BUSY_BIT,
  RINGBUF_DISCARD_BIT,
  RINGBUF_HDR_SZ,
  RINGBUF_LEN_MASK,
  RINGBUF_RUN_BIT,
  RINGBUF_RUN_DESC_SZ,
  RINGBUF_SETTLED_BIT,
} from './layout.js';
import { bug } from './bug.js';
import type { PhysMem } from './phys-mem.js';
import {
  ringHold,
  ringLive,
  ringRelease,
  badRun,
  bulkStride,
  consumerSkip,
  runCount,
  storeConsumer,
  type RingHold,
  type RingRef,
} from './ringbuf.js';

/**
 * The header's bits as int32 constants of this module: in the cursor's fast path, which inlines
 * into the caller's loop, V8 folds these where it loaded `RINGBUF_BUSY_BIT` (2^31, not a small
 * integer) each time (a consumer of 2 M records: 16 ms, 12 ms with these).
 */
const SETTLED = RINGBUF_SETTLED_BIT | 0;
const BUSY_OR_DISCARD = RINGBUF_BUSY_BIT | RINGBUF_DISCARD_BIT | 0;
const LEN_MASK = RINGBUF_LEN_MASK | 0;
const RUN = RINGBUF_RUN_BIT | 0;
const HDR = RINGBUF_HDR_SZ | 0;

/** {@link RingReader.next}'s answers when it returns no record (see there). */
const AT_PROD = -1;
const AT_QUARTER = -2;
const AT_BUSY = -3;
const SKIPPED = -4;
const BAD_LENGTH = -5;
const BAD_SKIP = -6;
const BAD_RUN = -7;

/** The readers this thread has open, on every ring (module state: one set per thread). */
const openReads = new Set<RingReader>();

/** One handle's cursor over its ring (this thread's own state; never shared). */
export class RingReader {
  /** The ring of the open read, or null when none is open. */
  #r: RingRef | null = null;
  /**
   * The read's reference on the ring: a ring that another thread frees while the read is open
   * stays in place (its frames go to no other ring) until the read ends.
   */
  #hold: RingHold | null = null;
  #i32: Int32Array = new Int32Array(0);
  #data = 0;
  #mask = 0;
  #quarter = 0;
  /** The position (mod 2^32) of the next record to look at. */
  #cons = 0;
  /** The position last stored in `CONSUMER_POS`. */
  #stored = 0;
  /** `PRODUCER_POS` as last loaded: records up to it may be ready. */
  #prod = 0;
  /** Where this read began: it ends after a lap. */
  #begun = 0;
  /** Bytes of the record last returned. */
  #len = 0;
  /** `CONSUMER_SKIP` as last stored (or loaded when the read opened). */
  #storedSkip = 0;
  /** Records of the run at the read's first position consumed before it opened (else 0). */
  #skipFirst = 0;
  /**
   * The run whose records the read is handing out: records of it left after the one last returned,
   * where the next one's bytes are, the stride, the run's position (mod 2^32) and its count.
   */
  #runLeft = 0;
  #runAt = 0;
  #runStride = 0;
  #runPos = 0;
  #runN = 0;

  /** Bytes of the record {@link RingReader.next} last returned in the open read (else 0). */
  get length(): number {
    return this.#len;
  }

  /** True while a read is open (this thread holds `CONSUMER_LOCK`). */
  get open(): boolean {
    return this.#r !== null;
  }

  /**
   * The fast path of `readRecord()`: the next committed record up to the `PRODUCER_POS` last
   * loaded and the next quarter of the ring. Returns the byte offset of its bytes in physical
   * memory, or why it stopped (a negative code for {@link RingReader.read}, which acts on it; the
   * header is loaded here only, so what it decides is what this load saw): {@link AT_PROD},
   * {@link AT_QUARTER}, {@link AT_BUSY}, {@link SKIPPED} (a discarded record, passed),
   * {@link BAD_LENGTH}, {@link BAD_RUN} (a run whose descriptor does not describe its bytes) or
   * {@link BAD_SKIP} (`CONSUMER_SKIP` at a record that is no run, or past its records); nothing
   * moves then. A run's records come one by one, as records of their own. Context: the
   * consumer, CONSUMER_LOCK held.
   */
  next(): number {
    if (this.#runLeft > 0) {
      // the next record of the run (the read is open: a drop or an open sets this to 0)
      this.#runLeft--;
      const at = this.#runAt;
      this.#runAt = at + this.#runStride;
      return at;
    }
    const cons = this.#cons;
    if (this.#r === null || cons === this.#prod) return AT_PROD;
    if ((cons - this.#stored) >>> 0 >= this.#quarter) return AT_QUARTER;
    const off = cons & this.#mask;
    const i32 = this.#i32;
    const hdr = (this.#data + off) >>> 2;
    // as consume: word 1 was stored before the PRODUCER_POS (or batch header) store that ordered
    // it, and word 0 of a settled record too; any other is read with Atomics.load
    const word = i32[hdr + 1]! & SETTLED ? i32[hdr]! : Atomics.load(i32, hdr);
    const len = word & LEN_MASK;
    if (len > this.#mask + 1 - off - HDR) return word < 0 ? AT_BUSY : BAD_LENGTH;
    if (word & BUSY_OR_DISCARD) {
      if (word < 0) return AT_BUSY; // BUSY is the sign bit: it holds back every record after it
      if (this.#skipFirst !== 0) return BAD_SKIP;
      this.#cons = (cons + ((len + HDR + 7) & ~7)) | 0;
      return SKIPPED;
    }
    if (word & RUN) return this.#run(cons, off, len);
    if (this.#skipFirst !== 0) return BAD_SKIP;
    this.#cons = (cons + ((len + HDR + 7) & ~7)) | 0; // recordBytes(len)
    this.#len = len;
    return this.#data + off + HDR;
  }

  /**
   * The first record to hand out of the run of `len` bytes at position `cons` (data offset `off`):
   * its first, or the first past those consumed before the read opened. Context: as next.
   */
  #run(cons: number, off: number, len: number): number {
    const body = this.#data + off + HDR;
    const n = runCount(this.#i32, body, len);
    if (n < 0) return BAD_RUN;
    const sub = this.#i32[body >>> 2]!;
    const stride = bulkStride(sub);
    const skip = this.#skipFirst;
    if (skip >= n) return BAD_SKIP;
    this.#skipFirst = 0;
    this.#cons = (cons + ((len + HDR + 7) & ~7)) | 0; // recordBytes(len)
    const first = body + RINGBUF_RUN_DESC_SZ + skip * stride;
    this.#runPos = cons;
    this.#runN = n;
    this.#runLeft = n - 1 - skip;
    this.#runStride = stride;
    this.#runAt = first + stride;
    this.#len = sub;
    return first;
  }

  /**
   * `readRecord()` past its fast path: open a read on ring `r` (or go on with the open one), then
   * the next committed record, storing `CONSUMER_POS` each quarter of the ring and skipping
   * discarded records. Returns the byte offset of its bytes, -EAGAIN when none is ready (the read
   * ends: `CONSUMER_POS` stored, the lock let go), -EBUSY when another thread consumes, -EINVAL
   * for a freed ring (`r` is used to open a read only). Context: the consumer's thread.
   */
  read(r: RingRef | null): number {
    if (this.#r === null) {
      if (r === null) return -EINVAL;
      const opened = this.#open(r);
      if (opened < 0) return opened;
    }
    for (;;) {
      const at = this.next();
      if (at >= 0) return at;
      if ((at === AT_PROD || at === AT_QUARTER) && !ringLive(this.#r!)) {
        this.drop(); // freed by another thread: its words may be a later ring's now
        return -EINVAL;
      }
      if (at === AT_PROD) {
        const prod = Atomics.load(this.#i32, this.#r!.prodPos);
        if (prod === this.#cons) return this.#end();
        this.#prod = prod;
      } else if (at === AT_QUARTER) {
        // the record returned before is passed: its bytes may go to producers now
        this.#store();
        if ((this.#cons - this.#begun) >>> 0 >= this.#mask + 1) return this.#end(); // a lap
      } else if (at === AT_BUSY) {
        return this.#end();
      } else if (at === BAD_LENGTH) {
        const off = this.#cons & this.#mask;
        if (!ringLive(this.#r!)) {
          this.drop(); // freed meanwhile: not the ring's bytes, not a broken ring
          return -EINVAL;
        }
        this.#end();
        bug(`ring at byte ${this.#data}: the record at offset ${off} runs past the end`);
      } else if (at === BAD_RUN) {
        const off = this.#cons & this.#mask;
        const len = this.#i32[(this.#data + off) >>> 2]! & LEN_MASK;
        this.#end();
        badRun(this.#i32, this.#data, off, len);
      } else if (at === BAD_SKIP) {
        const skip = this.#skipFirst;
        this.#skipFirst = 0;
        this.#end();
        bug(
          `ring at byte ${this.#data}: CONSUMER_SKIP is ${skip}, not within a run at its position`,
        );
      } // SKIPPED: look again
    }
  }

  /** Take a reference and CONSUMER_LOCK and start at `CONSUMER_POS`: 0, -EBUSY or -EINVAL. */
  #open(r: RingRef): number {
    const { mem } = r;
    const { i32 } = mem;
    const hold = ringHold(r); // null: freed
    if (hold === null) return -EINVAL;
    if (Atomics.compareExchange(i32, r.consLock, 0, mem.tid) !== 0) {
      ringRelease(hold);
      return -EBUSY;
    }
    this.#r = r;
    this.#hold = hold;
    this.#i32 = i32;
    this.#data = r.data;
    this.#mask = r.size - 1;
    this.#quarter = r.size >>> 2;
    this.#cons = this.#stored = this.#begun = Atomics.load(i32, r.consPos);
    this.#storedSkip = this.#skipFirst = consumerSkip(r, this.#cons);
    this.#prod = Atomics.load(i32, r.prodPos);
    this.#len = 0;
    this.#runLeft = 0;
    openReads.add(this);
    return 0;
  }

  /**
   * Store `CONSUMER_POS` at the cursor (every record before it is passed), or, inside a run, at the
   * run with `CONSUMER_SKIP` the records of it returned (the last one counts as consumed).
   */
  #store(): void {
    const inRun = this.#runLeft > 0;
    const cons = inRun ? this.#runPos : this.#cons;
    const skip = inRun ? this.#runN - this.#runLeft : 0;
    if (cons === this.#stored && skip === this.#storedSkip) return;
    storeConsumer(this.#r!, cons, skip, this.#stored, this.#storedSkip);
    this.#stored = cons;
    this.#storedSkip = skip;
  }

  /** End the read: -EAGAIN (see {@link RingReader.done}). */
  #end(): number {
    this.done();
    return -EAGAIN;
  }

  /**
   * End the open read, if any: the record last returned counts as consumed, `CONSUMER_POS` is
   * stored and `CONSUMER_LOCK` let go. Context: the consumer's thread.
   */
  done(): void {
    const r = this.#r;
    if (r === null) return;
    // a ring freed meanwhile by another thread: nothing to store or unlock (its frames stay, for
    // no other ring, until this read's reference goes below)
    if (ringLive(r)) {
      this.#store();
      Atomics.store(r.mem.i32, r.consLock, 0);
    }
    this.drop();
  }

  /** Forget the open read without writing anything (its ring is freed), and its reference. */
  drop(): void {
    this.#r = null;
    this.#len = 0;
    this.#runLeft = 0;
    openReads.delete(this);
    const hold = this.#hold;
    this.#hold = null;
    if (hold !== null) ringRelease(hold); // the last reference vfrees a freed ring's area
  }

  /** The ring of the open read, or null. */
  get ring(): RingRef | null {
    return this.#r;
  }
}

/** End every read this thread has open on `mem`'s rings (a detach). Context: this thread. */
export function endReads(mem: PhysMem): void {
  if (openReads.size === 0) return;
  for (const rd of [...openReads]) if (rd.ring?.mem === mem) rd.done();
}

/**
 * Forget this thread's open reads on the ring at byte `data` of `mem`, writing nothing: the ring is
 * being freed (its frames may soon hold another ring). Context: this thread (`free`).
 */
export function dropReads(mem: PhysMem, data: number): void {
  if (openReads.size === 0) return;
  for (const rd of [...openReads]) if (rd.ring?.mem === mem && rd.ring.data === data) rd.drop();
}

/**
 * True when this thread has a read open on the ring whose consumer lock is Int32 index `consLock`
 * of `mem`, and holds that lock (the invariant checker allows it held then). Context: this thread.
 */
export function readOpenOn(mem: PhysMem, consLock: number): boolean {
  if (Atomics.load(mem.i32, consLock) !== mem.tid) return false;
  for (const rd of openReads)
    if (rd.ring?.mem === mem && rd.ring.consLock === consLock) return true;
  return false;
}
