/**
 * The calls every ring handle has (a `RingBuf` through the kernel mapping, a `UserRingBuf` through
 * a user process's mapping), and the reserved record.
 *
 * Kernel counterparts: the BPF helpers `bpf_ringbuf_reserve`, `bpf_ringbuf_submit`,
 * `bpf_ringbuf_discard`, `bpf_ringbuf_output`, `bpf_ringbuf_query` (`kernel/bpf/ringbuf.c`) and
 * libbpf's `ring_buffer__consume`/`ring_buffer__poll` (`tools/lib/bpf/ringbuf.c`).
 *
 * Kernel-style calls answer bad input with `null` or `-EINVAL` and change nothing.
 *
 * @module
 */
import { EAGAIN, EINVAL } from './errno.js';
import { RINGBUF_HDR_SZ } from './layout.js';
import {
  checkProducer,
  checkRecordLen,
  maxRecordBytes,
  recordOffset,
  OUTPUT_INLINE_MAX,
  RESERVE_BAD_BYTES,
  ringCommit,
  ringCommitted,
  ringConsume,
  ringLiveHint,
  ringQuery,
  ringReserve,
  validCommitFlags,
  type RingCallback,
  type RingRef,
  type RingSampleCallback,
} from './ringbuf.js';
import { RingReader } from './ringbuf-read.js';
import {
  pollAsync,
  pollSync,
  readableAsync,
  readableSync,
  validPollOptions,
  waitForRoom,
  type PollOptions,
} from './ringbuf-wait.js';
import { validTimeout } from './cpu-relax.js';
import {
  BATCH_DECLINED,
  noteConsumer,
  noteReservation,
  publishBatches,
  RB_BATCH,
  RB_BATCH_MAX_RECORD,
  retryForRoom,
  RingBatch,
  waitsForSelf,
} from './ringbuf-batch.js';
import { bytesLength, exactBytes } from './typed-intrinsics.js';

/** Flags a batched fast path takes as they are: none, 0 or `RB_BATCH` (else the whole path checks them). */
function plainBatchFlags(flags: number | undefined): boolean {
  return flags === undefined || flags === 0 || flags === RB_BATCH;
}

/**
 * A reserved record (`bpf_ringbuf_reserve`'s sample): write its bytes in place through
 * {@link RingRecord.data}, then {@link RingRecord.submit} or {@link RingRecord.discard} it once.
 * Until then it holds back every record reserved after it.
 */
export class RingRecord {
  /** The record's bytes, one view over the ring's frames (contents not zeroed). */
  readonly data: Uint8Array;
  readonly #ring: RingRef;
  readonly #at: number;
  readonly #start: number;
  #open = true;

  /** @internal */
  constructor(ring: RingRef, start: number, len: number) {
    this.#ring = ring;
    this.#start = start;
    this.#at = recordOffset(ring, start, len);
    this.data = new Uint8Array(ring.mem.buffer, ring.data + this.#at + RINGBUF_HDR_SZ, len);
  }

  /**
   * Commit the record for the consumer (`bpf_ringbuf_submit`). `flags`: 0, `BPF_RB_NO_WAKEUP` or
   * `BPF_RB_FORCE_WAKEUP`. Returns 0, or -EINVAL (bad flags, or committed already) changing
   * nothing; -EINVAL also when the ring was freed meanwhile (the record is closed, its frames are
   * not the ring's any more). Do not touch `data` afterwards. Context: any thread, lock-free.
   */
  submit(flags?: number): number {
    return this.#commit(flags, false);
  }

  /** Commit the record as discarded: the consumer skips it (`bpf_ringbuf_discard`). As submit. */
  discard(flags?: number): number {
    return this.#commit(flags, true);
  }

  #commit(flags: unknown, discard: boolean): number {
    if (!this.#open || !validCommitFlags(flags)) return -EINVAL;
    this.#open = false;
    noteReservation(this.#ring, -1);
    // freed by another thread: a later ring may have its frames (a commit would write into it)
    if (!ringLiveHint(this.#ring)) return -EINVAL;
    ringCommit(this.#ring, this.#at, this.#start, flags ?? 0, discard);
    return 0;
  }
}

/** The producer and consumer calls of a ring handle. */
export abstract class RingOps {
  /** This handle's batch of `RB_BATCH` outputs (this thread's own). */
  readonly #batch = new RingBatch();
  /** This handle's cursor for `readRecord` (this thread's own). */
  readonly #reader = new RingReader();

  /** The ring as a producer reaches it (a user consumer's mapping faults here). */
  protected abstract producerRef(): RingRef;
  /** The ring as the consumer reaches it (a user producer's mapping faults here). */
  protected abstract consumerRef(): RingRef;

  /** {@link RingOps.consumerRef}, after this thread's own batched records on the ring went out. */
  #consumer(): RingRef {
    this.#reader.done(); // a consume or a wait comes after this handle's open read
    const r = this.consumerRef();
    noteConsumer(r);
    publishBatches(r.mem, r.data);
    return r;
  }
  /** The ring for reading only (`query`). */
  protected abstract readerRef(): RingRef;
  /** Bytes of the data area, any view of the ring. */
  protected abstract get ringSize(): number;

  /** Bytes in the data area (`BPF_RB_RING_SIZE`). */
  get dataBytes(): number {
    return this.ringSize;
  }

  /**
   * The largest record this ring takes: half the data area less the 8-byte header (records never
   * wrap, see the ring buffer guide; Linux's limit is the whole area).
   */
  get maxRecordBytes(): number {
    return maxRecordBytes(this.ringSize);
  }

  /**
   * Reserve a record of `len` bytes (`bpf_ringbuf_reserve`). Null when the ring is full, `len` is
   * not an integer in `[0, maxRecordBytes]`, `flags` is not 0 (as Linux) or the ring was freed.
   * Context: any attached thread; takes the ring's reservation lock briefly.
   */
  reserve(len: number, flags?: number): RingRecord | null {
    const r = this.producerRef();
    checkProducer(r);
    if (checkRecordLen(r, len) < 0 || (flags !== undefined && flags !== 0) || !ringLiveHint(r))
      return null;
    // after this thread's batched records on the ring (any handle's), as they were output first:
    // a batch the ring has no room for means no room for this record either
    if (!publishBatches(r.mem, r.data)) return null;
    const start = ringReserve(r, len);
    if (start < 0) return null;
    noteReservation(r, 1); // a flush of this thread's must not wait behind it
    return new RingRecord(r, start, len);
  }

  /**
   * Copy `bytes` into a new record and submit it (`bpf_ringbuf_output`). Returns 0, -EAGAIN when
   * the ring is full, -EINVAL for bytes that are not a Uint8Array or longer than
   * `maxRecordBytes` (Linux: -EAGAIN), bad flags or a freed ring, and -EINVAL for bytes that
   * cannot be read (a buffer detached meanwhile): up to 1 KiB nothing is reserved, above it the
   * record goes to the consumer as discarded. With `RB_BATCH` in `flags` (sabvm's own flag) a
   * record of up to 1 KiB joins this handle's batch and becomes visible with it: when the batch
   * fills its chunk, at the end of this thread's current job, or at `flush()` (see `RB_BATCH`).
   * It is taken while the batch has room, whatever the ring has; -EAGAIN then means the batch is
   * full and the ring has no room for it (the record not taken, the batch kept). This thread's
   * other producing calls on the ring come after its open batch: while the ring has no room for
   * the batch they answer -EAGAIN or null. Context: as reserve.
   */
  output(bytes: Uint8Array, flags?: number): number {
    // the fast path (small, so that it inlines into the caller's loop): a record that joins this
    // handle's open batch
    if (flags === RB_BATCH) {
      const batch = this.#batch;
      if (batch.appendSeen(bytes) === 0 || batch.append(bytes, bytesLength(bytes)) === 0) return 0;
    }
    return this.#output(bytes, flags);
  }

  /** {@link RingOps.output} but for its fast path. */
  #output(bytes: Uint8Array, flags: number | undefined): number {
    const r = this.producerRef();
    checkProducer(r);
    const len = checkRecordLen(r, bytesLength(bytes));
    if (len < 0 || !ringLiveHint(r)) return -EINVAL;
    let f = 0;
    if (flags !== undefined) {
      if (typeof flags !== 'number') return -EINVAL;
      const batch = flags & RB_BATCH; // the rest must be exactly a commit's flags
      if (!validCommitFlags(flags - batch)) return -EINVAL;
      f = flags - batch;
      if (batch !== 0 && len <= RB_BATCH_MAX_RECORD) {
        const ret = this.#batch.add(r, bytes, len, f, 1, 0);
        if (ret !== BATCH_DECLINED) return ret >= 0 ? 0 : ret; // -EAGAIN, -EINVAL
      }
    }
    const source = exactBytes(bytes, len);
    if (source === null) return -EINVAL; // a detached buffer: nothing changed
    // after this thread's batched records on the ring (any handle's), as they were output first
    if (!publishBatches(r.mem, r.data)) return -EAGAIN;
    if (len <= OUTPUT_INLINE_MAX) {
      // written and committed under the reservation lock (see ringReserve)
      const start = ringReserve(r, len, source);
      if (start < 0) return start === RESERVE_BAD_BYTES ? -EINVAL : -EAGAIN;
      ringCommitted(r, recordOffset(r, start, len), start, f);
      return 0;
    }
    const start = ringReserve(r, len);
    if (start < 0) return -EAGAIN;
    const at = recordOffset(r, start, len);
    try {
      r.mem.u8.set(source, r.data + at + RINGBUF_HDR_SZ);
    } catch {
      ringCommit(r, at, start, f, true); // unreadable bytes: the record is discarded
      return -EINVAL;
    }
    ringCommit(r, at, start, f, false);
    return 0;
  }

  /**
   * Reserve a record of `len` bytes in this handle's batch, to be written in place: io_uring's
   * `io_uring_get_sqe` for the ring's batched output (sabvm's own call). Returns the byte offset
   * of the record's bytes in {@link RingOps.batchBuffer} (8-byte aligned, contents not zeroed);
   * write them there, through a view made once over that buffer. The record joins the batch as
   * `output(bytes, RB_BATCH)` would: no submit, it goes to the consumer with the whole batch,
   * which takes its bytes as they are then. So **write a record's bytes before the next producing
   * call on this ring by this thread** (the next `batchReserve` may publish the batch) **and
   * before this thread's current job ends** (any `await`): what is written later is lost, or lands
   * in a later record (a record of the length of the one before it joins it in a run, and the
   * one before moves 8 bytes on then, see `batchReserveBulk`: use the offset this call returned
   * for each record, never one computed from another's). The header is not in the buffer: a write
   * out of the record's bytes can spoil only this thread's other records, never the ring.
   *
   * `flags`: 0, `BPF_RB_NO_WAKEUP`, `BPF_RB_FORCE_WAKEUP` (`RB_BATCH` is implied and may be
   * given). Returns -EAGAIN when the batch is full and the ring has no room for it (the record not
   * taken, the batch kept: `batchReserveWait` waits), -EINVAL for a `len` that is not an integer
   * from 0 to `RB_BATCH_MAX_RECORD` or larger than the ring's batches (an eighth of its data
   * area), bad flags or a freed ring. Context: the producer's thread, as `output`.
   */
  batchReserve(len: number, flags?: number): number {
    // the fast path (small, so that it inlines into the caller's loop)
    if (plainBatchFlags(flags)) {
      const at = this.#batch.reserve(len);
      if (at >= 0) return at;
    }
    return this.#batchReserve(len, flags, 1, 0);
  }

  /**
   * {@link RingOps.batchReserve} (or, `count` records at once, `batchReserveBulk`; with
   * `timeoutMs`, their waiting forms) but for its fast path. The checks, the rest and the wait
   * are in `RingBatch.add`, which V8 does not inline: the user's loop around the fast path
   * compiles sooner, and holds no branch that runs only once a ring first fills (optimized code
   * that meets a branch it has no feedback for is thrown away and compiled again). Returns as it
   * is what `add` answers: an offset, -EAGAIN or -EINVAL.
   */
  #batchReserve(
    len: number,
    flags: number | undefined,
    count: number,
    timeoutMs: number,
    bulk = false,
  ): number {
    return this.#batch.add(this.producerRef(), null, len, flags, count, timeoutMs, bulk);
  }

  /**
   * As {@link RingOps.batchReserve}, waiting up to `timeoutMs` (negative: no limit) for the
   * consumer to make room when the batch is full and the ring cannot take it, as
   * {@link RingOps.outputWait} does.
   */
  batchReserveWait(len: number, flags: number | undefined, timeoutMs: number): number {
    if (!validTimeout(timeoutMs)) return -EINVAL;
    // the fast path as batchReserve's; the wait is in RingBatch.add (see #batchReserve)
    if (plainBatchFlags(flags)) {
      const at = this.#batch.reserve(len);
      if (at >= 0) return at;
    }
    return this.#batchReserve(len, flags, 1, timeoutMs);
  }

  /**
   * Reserve `count` records of `len` bytes each in this handle's batch at once, to be written in
   * place (sabvm's own call; a bulk `batchReserve`, as `kmem_cache_alloc_bulk` is a bulk
   * `kmem_cache_alloc`). Returns the byte offset of the first record's bytes in
   * {@link RingOps.batchBuffer}; record `k`'s bytes are at `offset + k * ringbufBulkStride(len)`
   * (`len` padded to 8 bytes, at least 8: 32 for 32-byte records). The records lie one after the
   * other with no header between them, and go into the ring as one *run* record (sabvm's own
   * format: one header for them all; the batch's records of one length in a row, bulk or not, grow
   * the same run), which every consuming call hands out as `count` records of `len` bytes: `consume`,
   * `consumeAt`, `readRecord` and the polls see no difference. All or nothing, and the same rules
   * hold as for `batchReserve(len, flags)` (write each record before the next producing call on
   * this ring by this thread and before its current job ends). It takes the call out of the
   * per-record loop of a stream of fixed-size records, and the ring's 8-byte header out of each
   * record. A reader of the ring's raw layout that does not know runs (libbpf's) sees a run as one
   * record: produce without `RB_BATCH` (`output`, `reserve`) for rings such a reader consumes.
   *
   * Returns -EAGAIN when the batch has no room for them all and the ring none for the batch
   * (nothing taken, the batch kept: `batchReserveBulkWait` waits); -EINVAL for a `len` as
   * `batchReserve` refuses it, a `count` that is not an integer of at least 1, `count` records
   * that together exceed the ring's chunk (`16 + count * ringbufBulkStride(len)` above an eighth
   * of the data area, or 128 KiB), bad flags or a freed ring. Nothing changes then. Context: the
   * producer's thread, as `output`.
   */
  batchReserveBulk(len: number, count: number, flags?: number): number {
    // the fast path (small, so that it inlines into the caller's loop)
    if (plainBatchFlags(flags)) {
      const at = this.#batch.reserveBulk(len, count);
      if (at >= 0) return at;
    }
    return this.#batchReserve(len, flags, count, 0, true);
  }

  /**
   * As {@link RingOps.batchReserveBulk}, waiting up to `timeoutMs` (negative: no limit) for the
   * consumer to make room, as {@link RingOps.batchReserveWait} does.
   */
  batchReserveBulkWait(
    len: number,
    count: number,
    flags: number | undefined,
    timeoutMs: number,
  ): number {
    if (!validTimeout(timeoutMs)) return -EINVAL;
    if (plainBatchFlags(flags)) {
      const at = this.#batch.reserveBulk(len, count);
      if (at >= 0) return at;
    }
    return this.#batchReserve(len, flags, count, timeoutMs, true);
  }

  /**
   * The buffer {@link RingOps.batchReserve}'s offsets point into: this handle's staging chunk, a
   * `SharedArrayBuffer` of 128 KiB, the same for the life of the handle. Make one view over it
   * (a `DataView`, or typed arrays: records are 8-byte aligned) and write records through it.
   */
  get batchBuffer(): SharedArrayBuffer {
    return this.#batch.buffer;
  }

  /**
   * Publish this handle's batch of `RB_BATCH` outputs now (see `RB_BATCH`): its records become
   * visible to the consumer. When the ring has no room for the batch, waits for the consumer to
   * make it, up to `timeoutMs` milliseconds (negative, the default: no limit; 0: not at all),
   * where the thread may block, does not consume this ring and holds no reservation on it (only it
   * could make the room). Returns 0 (also when no batch was open), -EAGAIN when the batch is still
   * not out: it stays open and goes out as soon as the consumer makes room (the thread is held
   * alive until then), or at the next producing call; -EINVAL for a `timeoutMs` that is not a
   * number, and when the ring was freed with the batch open (its records are lost: they were
   * never in the ring). Context: the producer's thread.
   */
  flush(timeoutMs = -1): number {
    if (!validTimeout(timeoutMs)) return -EINVAL;
    const r = this.#batch.ring;
    if (r !== null && !ringLiveHint(r)) {
      this.#batch.drop(); // freed by another thread: its frames are not the ring's any more
      return -EINVAL;
    }
    return this.#batch.publishWait(timeoutMs) ? 0 : -EAGAIN;
  }

  /**
   * As {@link RingOps.reserve}, but waits up to `timeoutMs` (negative: no limit) for the consumer
   * to make room when the ring is full (back-pressure, with `Atomics.wait` on the consumer
   * position). It does not wait on a thread that may not block, nor where only this thread could
   * make the room: it consumes this ring, or holds a reservation on it open (it would wait for
   * itself). Context: a worker thread.
   */
  reserveWait(len: number, timeoutMs: number): RingRecord | null {
    let rec = this.reserve(len);
    const r = this.producerRef();
    if (rec !== null || checkRecordLen(r, len) < 0 || waitsForSelf(r)) return rec;
    waitForRoom(r, timeoutMs, () => (rec = this.reserve(len)) !== null);
    return rec;
  }

  /** As {@link RingOps.output}, waiting for room as {@link RingOps.reserveWait} does. */
  outputWait(bytes: Uint8Array, flags: number | undefined, timeoutMs: number): number {
    const ret = this.output(bytes, flags);
    return retryForRoom(this.producerRef(), timeoutMs, ret, () => this.output(bytes, flags));
  }

  /** `bpf_ringbuf_query`: `BPF_RB_AVAIL_DATA`, `_RING_SIZE`, `_CONS_POS` or `_PROD_POS`; else -EINVAL. */
  query(what: number): number {
    return ringQuery(this.readerRef(), what);
  }

  /**
   * Hand the committed records to `cb`, in reservation order (`ring_buffer__consume`): every one
   * committed when the call began, and those committed meanwhile up to about a lap of the ring (a
   * call returns even while producers keep adding records: call again for the rest). The view is
   * valid until `cb` returns. Returns how many records `cb` got, or the negative number `cb`
   * returned (it stops there), -EBUSY while another thread consumes, -EINVAL for a `cb` that is not
   * a function or a freed ring. Context: the consumer (one at a time), never blocks.
   */
  consume(cb: RingCallback): number {
    if (typeof cb !== 'function') return -EINVAL;
    return ringConsume(this.#consumer(), cb);
  }

  /**
   * Consume, and when nothing was ready wait up to `timeoutMs` (negative: no limit) for a wake-up,
   * then consume (`ring_buffer__poll`). Resolves to the count as {@link RingOps.consume}; 0 on
   * timeout. Watches the producer position for up to 50 µs first (a busy poll, while records
   * stream), then sleeps with `Atomics.waitAsync` (no core spins) and keeps a Node process alive
   * while it waits. Context: any thread, the consumer.
   */
  poll(cb: RingCallback, options: PollOptions = {}): Promise<number> {
    if (typeof cb !== 'function' || !validPollOptions(options)) return Promise.resolve(-EINVAL);
    return pollAsync(this.#consumer(), cb, false, options);
  }

  /**
   * As {@link RingOps.poll} (the same busy poll first), blocking the thread with `Atomics.wait` (a
   * worker thread). On a thread
   * that may not block it returns -EAGAIN when nothing was ready.
   */
  pollSync(cb: RingCallback, options: PollOptions = {}): number {
    if (typeof cb !== 'function' || !validPollOptions(options)) return -EINVAL;
    return pollSync(this.#consumer(), cb, false, options);
  }

  /**
   * As {@link RingOps.consume}, but `cb(mem, offset, length)` gets where each record is instead of
   * a view of it: its bytes are `mem[offset … offset + length)`, `mem` being one `Uint8Array` over
   * all of physical memory, the same object every time. Nothing is allocated per record; read the
   * fields with one `DataView` or typed array made once over `mem.buffer` (`kernel.handle.buffer`).
   * The bytes are the record's until `cb` returns.
   */
  consumeAt(cb: RingSampleCallback): number {
    if (typeof cb !== 'function') return -EINVAL;
    return ringConsume(this.#consumer(), cb, true);
  }

  /** As {@link RingOps.poll}, with the callback of {@link RingOps.consumeAt}. */
  pollAt(cb: RingSampleCallback, options: PollOptions = {}): Promise<number> {
    if (typeof cb !== 'function' || !validPollOptions(options)) return Promise.resolve(-EINVAL);
    return pollAsync(this.#consumer(), cb, true, options);
  }

  /** As {@link RingOps.pollSync}, with the callback of {@link RingOps.consumeAt}. */
  pollSyncAt(cb: RingSampleCallback, options: PollOptions = {}): number {
    if (typeof cb !== 'function' || !validPollOptions(options)) return -EINVAL;
    return pollSync(this.#consumer(), cb, true, options);
  }

  /**
   * The next committed record, for a loop of the caller's own (sabvm's own call, after libperf's
   * `perf_mmap__read_event`): returns the byte offset of its bytes in physical memory (the offsets
   * of {@link RingOps.consumeAt}: read them through one `DataView` or typed array made once over
   * `kernel.handle.buffer`), its length in {@link RingOps.readLength}. The record returned before
   * counts as consumed; the bytes of the one returned stay put until the next call.
   *
   * The first call takes the ring's consumer lock (the read is the one consumer, as a `consume`
   * is), and the call that finds no record ready answers -EAGAIN, stores the consumer position and
   * lets the lock go: so `for (let at; (at = rb.readRecord()) >= 0; )` reads every record ready,
   * and records that come while it reads, up to a lap of the ring. Then wait with
   * {@link RingOps.waitReadable}. A loop that stops early ends the read with
   * {@link RingOps.readDone}; until then any other consumer (another thread, or another handle
   * of this one) gets -EBUSY. Returns -EAGAIN also after a lap with records left (call again),
   * -EBUSY while another consumer reads, -EINVAL for a freed ring (a read holds a reference on
   * its ring: one freed meanwhile stays in place until the read ends, and the read answers -EINVAL
   * once it next looks at the producer position). Discarded records are skipped.
   * Context: the consumer, any thread; never blocks.
   */
  readRecord(): number {
    // the fast path (small, so that it inlines into the caller's loop)
    const at = this.#reader.next();
    if (at >= 0) return at;
    return this.#readRecord();
  }

  /** {@link RingOps.readRecord} but for its fast path: opens the read, stores, skips, ends. */
  #readRecord(): number {
    const rd = this.#reader;
    return rd.read(rd.open ? null : this.#consumer());
  }

  /** Bytes of the record {@link RingOps.readRecord} last returned, while its read is open; else 0. */
  get readLength(): number {
    return this.#reader.length;
  }

  /**
   * End this handle's read (`perf_mmap__read_done`): the record last returned counts as consumed,
   * the consumer position is stored and the consumer lock let go. A no-op when no read is open.
   * A `consume`, `poll` or `waitReadable` through this handle, `kernel.detach()` and `free()` end
   * it too.
   */
  readDone(): void {
    this.#reader.done();
  }

  /**
   * Wait until a record is ready for {@link RingOps.readRecord} (`epoll_wait` on the ring, where
   * `poll` also consumes): resolves to 1 at once when one is, else waits as {@link RingOps.poll}
   * does (a busy poll of up to 50 µs, then `Atomics.waitAsync`, holding a Node process alive) up
   * to `timeoutMs` (negative, the default: no limit), and resolves to 1, or 0 on timeout (or a
   * wake-up that found nothing, as `poll`'s 0). A discarded record counts as ready (the read
   * passes it). -EBUSY while another consumer holds the ring, -EINVAL for bad options or a freed
   * ring. Ends this handle's open read first. Context: the consumer.
   */
  waitReadable(options: PollOptions = {}): Promise<number> {
    if (!validPollOptions(options)) return Promise.resolve(-EINVAL);
    return readableAsync(this.#consumer(), options);
  }

  /**
   * As {@link RingOps.waitReadable}, blocking the thread with `Atomics.wait` (a worker thread). On
   * a thread that may not block it returns -EAGAIN when nothing was ready.
   */
  waitReadableSync(options: PollOptions = {}): number {
    if (!validPollOptions(options)) return -EINVAL;
    return readableSync(this.#consumer(), options);
  }
}
