/**
 * Batched output (`RB_BATCH`, sabvm's own flag): a thread's small records go to the consumer a
 * chunk at a time instead of one at a time.
 *
 * Kernel counterparts: none in the BPF ring buffer, whose every `bpf_ringbuf_output` is visible at
 * once. The idea is io_uring's: an application fills submission entries with plain stores and
 * publishes the queue's tail once for many (`io_uring_submit`), and TCP_CORK's or stdio's: hold
 * small writes in the writer's own buffer until a full frame goes. Here one `Atomics` operation
 * costs ~10 ns, and where the producer's and the consumer's threads run on cores far apart every
 * record the consumer reads while the producer writes it costs a cache-line round trip; a batch
 * costs those once for up to a chunk of records.
 *
 * **Format: a batch is staged, then output as one reservation.** Records with `RB_BATCH` go one
 * after the other into a staging copy of a chunk (512 B to 128 KiB, at most an eighth of the ring),
 * each 8 bytes after the last one's padded end, with room for its header there (but in a run,
 * below); their lengths go
 * to a list of the batch's own. Records of one length in a row go into one *run* (see
 * `RINGBUF_RUN_BIT`): a ring record with one header and a descriptor (the records' length and
 * count), then the records side by side at a stride of their length padded to 8 (`bulkStride`).
 * `batchReserveBulk` starts or grows a run; a batched record of the length of the batch's last
 * ring record (more than 0 bytes) grows it too, or, when that is a record of its own, first makes
 * it a run of one (its bytes move 8 bytes on, for the descriptor: it is written by then, as every
 * batched record is before its thread's next producing call on the ring). A `batchReserve` hands the user the place of a record in the
 * staging chunk (`rb.batchBuffer`), to write in place (io_uring's `io_uring_get_sqe`). Nothing is
 * in the ring yet. Publishing reserves exactly the staged bytes in the ring as one record (its
 * header `(bytes - 8) | BUSY`, owned by this thread, like any reservation), copies the staged
 * records in behind that header, writes every other record's header from the list of lengths (the
 * staged bytes are the user's to write: their header words are not trusted) and every run's
 * descriptor from the batch's own counts, then stores the first header (`len`, or a run's with its
 * RUN bit) of the first record with one `Atomics.store`, which makes
 * every record of the batch visible at once (the consumer reads that header with `Atomics.load`,
 * and the others, marked settled, with plain loads after it). So the ring is well-formed at every
 * moment: the consumer, the checker and the reaper see one busy record for the few microseconds of
 * the copy and ordinary records after it, and reaping a thread that died inside a publish discards
 * the batch as it discards any open reservation.
 *
 * **Why the reservation waits for the publish:** a reservation holds back every record reserved
 * after it. Reserved when the batch opened, the chunk stayed busy for as long as its thread took to
 * fill it, and a producer thread that the scheduler took off its core meanwhile (three threads on
 * two cores) stopped the consumer and, once the ring filled, every other producer, until it ran
 * again. Staged, a batch holds back nothing.
 *
 * **The price: room is found at the publish, not at the output.** A record joins the batch (0)
 * while the batch has room, whether the ring has or not; the output that finds the batch full
 * publishes it, and answers -EAGAIN (the record not taken, the batch kept) when the ring cannot
 * take it. A publish at the end of the job, at `flush()` or by `kernel.ringbufFlush()` that finds
 * the ring full keeps the batch and tries again each time the consumer moves, holding the thread
 * alive while the consumer keeps moving (up to `HOLD_MS` after it last moved). A flush, and
 * `kernel.detach()`, wait for room where the thread may block and only another thread can make it
 * (this thread neither consumes the ring nor holds a reservation on it); a detach that cannot wait
 * drops the batch.
 *
 * **When a batch is published:** when the next record does not fit in its chunk; when this thread's
 * current job ends (a microtask queued when the batch opens: the end of a task, of a script, any
 * `await`); before any other producing call on the same ring by this thread, through any handle
 * (`output` without `RB_BATCH`, `reserve`, the first batched output of another handle), so a
 * thread's records keep its order; when this thread consumes the same ring; at `flush()`,
 * `kernel.ringbufFlush()` and `kernel.detach()`. Until then the records are not visible.
 *
 * State: the fields of a {@link RingBatch} are this thread's own (one per ring handle). The staging
 * chunk is a `SharedArrayBuffer` only so that it cannot be detached: the runtime never shares it,
 * and reads nothing from it that decides the ring's format (the headers come from `#lens`).
 *
 * @module
 */
import { EAGAIN, EINVAL, PAGE_SHIFT } from './errno.js';
import {
  RINGBUF_HDR_SZ,
  RINGBUF_LEN_MASK,
  RINGBUF_META_PAGES,
  RINGBUF_OWNER_SHIFT,
  RINGBUF_RUN_BIT,
  RINGBUF_RUN_DESC_SZ,
  RINGBUF_SETTLED_BIT,
} from './layout.js';
import type { PhysMem } from './phys-mem.js';
import {
  exactBytes,
  fixedLengthBuffer,
  typedArrayBuffer,
  typedArrayByteOffset,
} from './typed-intrinsics.js';
import {
  BPF_RB_FORCE_WAKEUP,
  BPF_RB_NO_WAKEUP,
  checkProducer,
  checkRecordLen,
  recordBytes,
  recordOffset,
  ringCommitted,
  ringLastReservePos,
  ringLiveHint,
  ringPassCommitted,
  ringReserve,
  bulkStride,
  validCommitFlags,
  type RingRef,
} from './ringbuf.js';
import { waitForRoom, whenConsumerMoves } from './ringbuf-wait.js';
import { validTimeout } from './cpu-relax.js';

declare function queueMicrotask(callback: () => void): void;

/**
 * `output` flag (sabvm's own, not Linux's; bit 30, far from Linux's flags, which answer -EINVAL
 * for any other bit as here): the record joins this thread's batch on the ring, and
 * reaches the consumer with the whole batch, a chunk of records at a time. A batch is published
 * when the next record does not fit in its chunk (512 bytes to 128 KiB), when this thread's current
 * job ends (a microtask), before any other producing call on the same ring by this thread, when
 * this thread consumes the ring, at `rb.flush()` and at `kernel.detach()`. Until then its records
 * are not visible. The ring's room is found at the publish: an output that finds the batch full
 * and the ring too full for it answers -EAGAIN. Records of more than `RB_BATCH_MAX_RECORD` bytes
 * are output at once.
 */
export const RB_BATCH = 0x40000000;

/** The largest record `RB_BATCH` batches (bytes, header excluded). */
export const RB_BATCH_MAX_RECORD = 1024;

/** Bytes of a batch's first chunk, and the least a chunk shrinks to. */
const MIN_CHUNK = 512;
/** The largest chunk (bytes); a ring's chunks are also at most an eighth of its data area. */
const MAX_CHUNK = 128 * 1024;

/** Records up to this many bytes are copied word by word from a reused buffer (see append). */
const SMALL_RECORD = 128;

/**
 * How long a batch that waits for room holds its thread alive after the consumer last moved
 * (milliseconds): a ring nobody reads any more must not keep a process from exiting.
 */
const HOLD_MS = 1000;

/**
 * {@link RingBatch.add}'s answer when the record must go out on its own (too large a record): no
 * errno, never returned to a user. (Its other answers are the call's own: an offset, -EAGAIN or
 * -EINVAL, so that the caller returns them as they are: a test of which one it was would be a
 * branch that the caller's optimized code first meets when the ring first fills, and V8 undoes
 * optimized code that meets a branch it has no feedback for. The slow path of `batchReserve`
 * inlines into the user's loop, `add` does not.)
 */
export const BATCH_DECLINED = -0x10000;

/** The most ring records a chunk holds (each takes at least its 8-byte header). */
const MAX_RECORDS = MAX_CHUNK / RINGBUF_HDR_SZ;

/** Bytes before a run's first record: its header and descriptor. */
const RUN_HEAD = RINGBUF_HDR_SZ + RINGBUF_RUN_DESC_SZ;

const RUN = RINGBUF_RUN_BIT | 0;
const LEN = RINGBUF_LEN_MASK | 0;

/** Bytes a fresh run of `count` records of `len` bytes takes in a batch, header included. */
function runBytes(len: number, count: number): number {
  return RUN_HEAD + bulkStride(len) * count;
}

const EMPTY = new Uint8Array(0);

/** False for bytes whose buffer is detached or out of bounds (a copy of them throws). */
function readable(bytes: Uint8Array): boolean {
  try {
    EMPTY.set(bytes); // called for bytes of length 0 only
    return true;
  } catch {
    return false;
  }
}

/** The largest chunk on ring `r` (bytes): 128 KiB, and at most an eighth of its data area. */
export function batchCap(r: RingRef): number {
  return Math.min(MAX_CHUNK, r.size >>> 3);
}

/** The batches this thread holds open, on every ring (module state: one set per thread). */
const openBatches = new Set<RingBatch>();

/** One handle's batch (this thread's own state; never shared). */
export class RingBatch {
  /** The ring of the open batch, or null when none is open. */
  #r: RingRef | null = null;
  /** Bytes of the chunk: the most the batch stages. */
  #size = 0;
  /** Bytes staged: the offset in the chunk where the next record goes. */
  #cur = 0;
  /** Wake-up flags of the batch: NO_WAKEUP when every record had it, FORCE when one had it. */
  #noWakeup = true;
  #force = false;
  /** Bytes of the next chunk: doubles while batches fill, shrinks to what an early publish used. */
  #chunk = MIN_CHUNK;
  /** This thread's slot when the batch opened (the owner in its headers). */
  #slot = -1;
  /**
   * The batch's records as they will lie in the ring, 8 bytes of room for each header before its
   * bytes (16 for a run's header and descriptor before its first record, none between its
   * records): the publish reserves the staged bytes and copies them into the ring in one go. A
   * `SharedArrayBuffer` of its own (never detached), which {@link RingBatch.buffer} hands to the
   * user who writes records in place ({@link RingBatch.reserve}); so the headers are not taken
   * from it but written into the ring from {@link RingBatch.#lens} after the copy.
   */
  #stage: Uint8Array | null = null;
  #stage32: Int32Array | null = null;
  /**
   * The staged ring records' header words 0, in order (this thread's own: the user cannot reach
   * them): a record's length, or a run's `len | RUN` (its descriptor and records' bytes).
   */
  #lens: Int32Array | null = null;
  /** For a run among them, its records' length (the rest of its descriptor is in #lens). */
  #subs: Int32Array | null = null;
  /** Ring records staged. */
  #n = 0;
  /**
   * The length of the records of the batch's last ring record (-1 while the batch is empty), and
   * whether that ring record is a run: a record of that length (more than 0 bytes) joins it.
   */
  #lastLen = -1;
  #lastRun = false;
  /** The last record buffer a batched output copied, and the one before (see #remember). */
  #seen: Uint8Array | null = null;
  #src: Uint8Array | null = null;
  /** Int32 view of #src's bytes. */
  #src32: Int32Array | null = null;
  /** A microtask that publishes is queued. */
  #queued = false;
  /** A retry of a publish that found the ring full waits for the consumer to move. */
  #retrying = false;
  /**
   * The consumer position a retry last saw, and when it last saw it move (Date.now()); -1: no
   * retry since the last publish (the next one starts the clock).
   */
  #retryCons = 0;
  #retryMoved = -1;
  readonly #task = (): void => {
    this.#queued = false;
    this.publishOrRetry();
  };

  /** The ring of the open batch, or null when none is open. */
  get ring(): RingRef | null {
    return this.#r;
  }

  /**
   * The fast path of an `output(bytes, RB_BATCH)`: append the record (`len` bytes, or -1 for
   * bytes that are no Uint8Array) to the open batch when it has room and the ring is live (one
   * plain load of its MAGIC: a ring freed by another thread answers -EINVAL through the whole
   * path). Returns 0 when appended, else 1 (nothing done: the caller takes the whole path). An open
   * batch means this thread is attached as when it opened: a detach closes every batch of the
   * thread, so the slot is not checked here (the publish checks it). Context: the producer's
   * thread.
   */
  append(bytes: Uint8Array, len: number): number {
    const r = this.#r;
    const stage = this.#stage;
    if (r === null || stage === null || len < 0 || len > RB_BATCH_MAX_RECORD) return 1;
    const at = this.#cur;
    // the length of the last record: it joins the run, or (the whole path) makes it one
    const join = len === this.#lastLen && len !== 0;
    if (join && !this.#lastRun) return 1;
    const to = join ? at : at + RINGBUF_HDR_SZ;
    const total = join ? (len + 7) & ~7 : (len + RINGBUF_HDR_SZ + 7) & ~7;
    if (at + total > this.#size || !ringLiveHint(r)) return 1;
    try {
      // `len` is the intrinsic length measured just before (no user code ran since), and `set`
      // copies by the source's own length, not by a `length` property a caller put on it
      stage.set(bytes, to);
    } catch {
      return 1; // the whole path answers it
    }
    this.#remember(bytes, len);
    this.#took(len, total, join);
    this.#cur = at + total;
    this.#noWakeup = false;
    return 0;
  }

  /**
   * The fastest path of an `output(bytes, RB_BATCH)`: `bytes` is the small record buffer this
   * thread reuses ({@link RingBatch.#remember}), so its length is its Int32 view's (fixed: its
   * buffer can be neither resized nor grown, and a detach makes the view's length 0, which does
   * not come here) and nothing needs measuring; the record costs a few word copies. Returns 0
   * when appended, else 1 (nothing done: the caller takes {@link RingBatch.append}).
   * Context: the producer's thread.
   */
  appendSeen(bytes: Uint8Array): number {
    const r = this.#r;
    if (bytes !== this.#src || r === null) return 1;
    const src = this.#src32!;
    const words = src.length;
    const len = words << 2;
    const at = this.#cur;
    const join = len === this.#lastLen; // (words is at least 1)
    if (join && !this.#lastRun) return 1;
    const total = join ? (len + 7) & ~7 : (len + RINGBUF_HDR_SZ + 7) & ~7;
    if (words === 0 || at + total > this.#size || !ringLiveHint(r)) return 1;
    const s32 = this.#stage32!;
    const to = join ? at >> 2 : (at >> 2) + 2;
    for (let i = 0; i < words; i++) s32[to + i] = src[i]!;
    this.#took(len, total, join);
    this.#cur = at + total;
    this.#noWakeup = false;
    return 0;
  }

  /**
   * Note the record buffer just copied: the second time in a row the same small buffer comes, and
   * its bytes are whole Int32 words, keep an Int32 view of them (built from the intrinsic
   * `buffer` and `byteOffset`, never from the caller's own properties) for {@link append}.
   */
  #remember(bytes: Uint8Array, len: number): void {
    if (bytes !== this.#seen) {
      this.#seen = bytes;
      return;
    }
    if (bytes === this.#src || len === 0 || len > SMALL_RECORD || (len & 3) !== 0) return;
    const offset = typedArrayByteOffset.call(bytes) as number;
    const buffer = typedArrayBuffer.call(bytes) as ArrayBufferLike;
    // a view of a resizable or growable buffer may track its length: only a fixed one is seen
    if ((offset & 3) !== 0 || !fixedLengthBuffer(buffer)) return;
    this.#src = bytes;
    this.#src32 = new Int32Array(buffer, offset, len >> 2);
  }

  /**
   * The fast path of a `batchReserve(len)`: take `len` bytes (a small non-negative integer, else
   * nothing is done) for a record in the open batch when it has room and the ring is live (see
   * {@link RingBatch.append}). Returns the byte offset of the record's bytes in
   * {@link RingBatch.buffer}, else -1 (nothing done: the caller takes the whole path).
   * Context: the producer's thread.
   */
  reserve(len: number): number {
    const r = this.#r;
    // (a BigInt would throw at `>>>`)
    if (r === null || typeof len !== 'number' || len >>> 0 !== len || len > RB_BATCH_MAX_RECORD)
      return -1;
    const at = this.#cur;
    const join = len === this.#lastLen && len !== 0;
    if (join && !this.#lastRun) return -1;
    const total = join ? (len + 7) & ~7 : (len + RINGBUF_HDR_SZ + 7) & ~7;
    if (at + total > this.#size || !ringLiveHint(r)) return -1;
    this.#took(len, total, join);
    this.#cur = at + total;
    this.#noWakeup = false;
    return join ? at : at + RINGBUF_HDR_SZ;
  }

  /**
   * Note a record of `len` bytes staged in `total` bytes at the end of the batch: in the batch's
   * last run (`join`), else as a ring record of its own.
   */
  #took(len: number, total: number, join: boolean): void {
    const lens = this.#lens!;
    if (join) {
      lens[this.#n - 1]! += total; // (a run's bytes stay far below its RUN bit)
      return;
    }
    lens[this.#n++] = len;
    this.#lastLen = len;
    this.#lastRun = false;
  }

  /**
   * Make the batch's last ring record, a record of its own of `#lastLen` bytes (more than 0), a
   * run of that one record: its bytes move 8 bytes on, to make room for the run's descriptor. The
   * batch has room for those 8 bytes. The record is written (a batched record is written before
   * the next producing call of its thread on the ring), and moves within the staging chunk only.
   */
  #toRun(): void {
    const len = this.#lastLen;
    const stride = bulkStride(len);
    const at = this.#cur - RINGBUF_HDR_SZ - stride; // its header (recordBytes(len) from the end)
    const stage = this.#stage!;
    stage.copyWithin(at + RUN_HEAD, at + RINGBUF_HDR_SZ, at + RINGBUF_HDR_SZ + len);
    this.#lens![this.#n - 1] = (RINGBUF_RUN_DESC_SZ + stride) | RUN;
    this.#subs![this.#n - 1] = len;
    this.#lastRun = true;
    this.#cur = at + RUN_HEAD + stride;
  }

  /**
   * The fast path of a `batchReserveBulk(len, count)`: take room for `count` records of `len`
   * bytes each (small non-negative integers, `count` at least 1, else nothing is done), one after
   * the other at a stride of `ringbufBulkStride(len)` with no header between them, in the
   * open batch when it has room for them all and the ring is live (see {@link RingBatch.append}):
   * they join the batch's last run when it is its last record and of records of `len` bytes, else
   * start a run (see `RINGBUF_RUN_BIT`). Returns the byte offset of the first
   * record's bytes in {@link RingBatch.buffer}, else -1 (nothing done: the caller takes the whole
   * path). Context: the producer's thread.
   */
  reserveBulk(len: number, count: number): number {
    const r = this.#r;
    if (
      r === null ||
      typeof len !== 'number' ||
      len >>> 0 !== len ||
      len > RB_BATCH_MAX_RECORD ||
      typeof count !== 'number' ||
      count >>> 0 !== count ||
      count === 0 ||
      count > MAX_RECORDS
    )
      return -1;
    const grow = bulkStride(len) * count;
    const join = len === this.#lastLen && (len !== 0 || this.#lastRun);
    if (join && !this.#lastRun) return -1; // the whole path makes the last record a run
    if (this.#cur + (join ? grow : RUN_HEAD + grow) > this.#size || !ringLiveHint(r)) return -1;
    this.#noWakeup = false;
    return this.#stageRun(len, grow, join);
  }

  /**
   * Stage `grow` bytes of records of `len` bytes (a stride's multiple) at the end of the batch,
   * which has room for them: on the last run when `extend` (it is the last record, of that
   * length), else in a new run. Returns the byte offset of the first of them in the chunk.
   */
  #stageRun(len: number, grow: number, extend: boolean): number {
    const at = this.#cur;
    const lens = this.#lens!;
    if (extend) {
      lens[this.#n - 1]! += grow; // (a run's bytes stay far below its RUN bit)
      this.#cur = at + grow;
      return at;
    }
    const n = this.#n;
    lens[n] = (RINGBUF_RUN_DESC_SZ + grow) | RUN;
    this.#subs![n] = len;
    this.#lastLen = len;
    this.#lastRun = true;
    this.#n = n + 1;
    this.#cur = at + RUN_HEAD + grow;
    return at + RUN_HEAD;
  }

  /**
   * The staging chunk's buffer, where {@link RingBatch.reserve}'s offsets point: a
   * `SharedArrayBuffer` of `MAX_CHUNK` bytes, the same one for the life of the handle.
   */
  get buffer(): SharedArrayBuffer {
    return this.#stageOf().buffer as SharedArrayBuffer;
  }

  /** The staging chunk, made on first use. */
  #stageOf(): Uint8Array {
    if (this.#stage === null) {
      // shared: a user who writes records in place holds it, and a SharedArrayBuffer can be
      // neither detached (transferred) nor, made so, resized under the publish's copy
      const buf = new SharedArrayBuffer(MAX_CHUNK);
      this.#stage = new Uint8Array(buf);
      this.#stage32 = new Int32Array(buf);
      this.#lens = new Int32Array(MAX_RECORDS);
      this.#subs = new Int32Array(MAX_RECORDS);
    }
    return this.#stage;
  }

  /**
   * Add a record of `len` bytes to the batch on ring `r`: a copy of `bytes` (`len` at most
   * {@link RB_BATCH_MAX_RECORD} and a valid length for the ring, `flags` a commit's, both checked
   * by the caller), or, for null, room for `count` records of `len` bytes one after the other,
   * which the caller fills in place (`len`, `count` and the caller's `flags` checked here, as
   * {@link reserveFlags} says). Returns the byte offset of the (first) record's bytes in
   * {@link RingBatch.buffer}; -EAGAIN when the batch had no room for it and the ring none for the
   * batch (nothing changed: the batch stays open); {@link BATCH_DECLINED} when the record must be
   * output on its own (larger than a chunk); -EINVAL when `bytes` cannot be read or a check fails
   * (then nothing changed). With `timeoutMs` other than 0 (room to write in place only: the
   * waiting forms `batchReserveWait` and `batchReserveBulkWait`), a batch and ring without room
   * wait for the consumer as {@link RingBatch.#addWait} says before -EAGAIN is answered.
   * Context: the producer's thread.
   */
  add(
    r: RingRef,
    bytes: Uint8Array | null,
    len: number,
    flags: number | undefined,
    count: number,
    timeoutMs: number,
    bulk = false,
  ): number {
    let source: Uint8Array | null = null;
    let f = flags ?? 0;
    if (bytes !== null) {
      // bytes that cannot be read (a detached buffer, or a view out of its shrunk buffer) measure
      // 0 bytes: refused before anything moves
      if (len === 0 && !readable(bytes)) return -EINVAL;
      source = exactBytes(bytes, len);
      if (source === null) return -EINVAL;
    } else {
      // room to write in place: the call's own checks are made here, in this large function
      // that V8 does not inline, so that none of them inlines into the user's loop around the
      // fast path (the loop compiles sooner, and meets no branch it has no feedback for)
      f = reserveFlags(r, len, flags, count, bulk);
      if (f < 0 || !validTimeout(timeoutMs)) return -EINVAL;
    }
    // (a record with bytes, or room for one without `bulk`, comes alone: count is 1). Records of
    // the length of the batch's last ring record join it as a run (made one first, 8 bytes more,
    // when it is a record of its own); records in bulk that do not start a run
    const total = bulk ? runBytes(len, count) : recordBytes(len);
    const grow = bulkStride(len) * count;
    let join = this.#r !== null && len === this.#lastLen && (len !== 0 || (bulk && this.#lastRun));
    const need = !join ? total : this.#lastRun ? grow : RINGBUF_HDR_SZ + grow;
    // (a handle's batch is always on the handle's one ring)
    if (this.#r !== null && this.#cur + need > this.#size) {
      if (!this.publish(true)) return this.#addWait(r, len, flags, count, timeoutMs, bulk);
      join = false; // published: a new batch opens below
    }
    if (this.#r === null) {
      const cap = batchCap(r);
      if (total > cap) return BATCH_DECLINED;
      // at most one open batch per thread and ring: records keep this thread's order whichever
      // handle outputs them
      if (!publishBatches(r.mem, r.data))
        return this.#addWait(r, len, flags, count, timeoutMs, bulk);
      this.#stageOf();
      this.#r = r;
      this.#size = Math.min(cap, Math.max(this.#chunk, total));
      this.#cur = 0;
      this.#n = 0;
      this.#lastLen = -1;
      this.#lastRun = false;
      this.#slot = r.mem.current.slot;
      this.#noWakeup = true;
      this.#force = false;
      openBatches.add(this);
      if (!this.#queued) {
        this.#queued = true;
        queueMicrotask(this.#task);
      }
    }
    if ((f & BPF_RB_NO_WAKEUP) === 0) this.#noWakeup = false;
    if (f & BPF_RB_FORCE_WAKEUP) this.#force = true;
    if (join && !this.#lastRun) this.#toRun();
    if (bulk) return this.#stageRun(len, grow, join);
    const at = join ? this.#cur : this.#cur + RINGBUF_HDR_SZ;
    if (source !== null) this.#stage!.set(source, at); // exactly `len` bytes, readable (above)
    const bytesTaken = join ? grow : total;
    this.#took(len, bytesTaken, join);
    this.#cur += bytesTaken;
    return at;
  }

  /**
   * {@link RingBatch.add} of room found none (the batch full, the ring without room for it):
   * -EAGAIN at once for `timeoutMs` 0 (an output: `outputWait` waits around it), where only this
   * thread could make the room ({@link waitsForSelf}), and where the thread may not block; else
   * the same `add` again each time the consumer moves, for up to `timeoutMs` (negative: no limit),
   * as {@link waitForRoom} says. Context: the producer's thread.
   */
  #addWait(
    r: RingRef,
    len: number,
    flags: number | undefined,
    count: number,
    timeoutMs: number,
    bulk: boolean,
  ): number {
    if (timeoutMs === 0) return -EAGAIN;
    return retryForRoom(r, timeoutMs, -EAGAIN, () => this.add(r, null, len, flags, count, 0, bulk));
  }

  /** Forget the open batch without writing anything (its ring is being freed). */
  drop(): void {
    this.#r = null;
    openBatches.delete(this);
  }

  /**
   * Publish the open batch (true at once when none is open): reserve its bytes in the ring as one
   * busy record, copy the staged records in behind the first header, write every other record's
   * header (length, page offset, owner) from the batch's own lengths, then one `Atomics.store` of
   * the first header commits every record, then the wake-up check as a commit's. False when the ring has no room for the batch: nothing changed,
   * the batch stays open. `full`: the batch filled its chunk (the next chunk doubles). A batch on
   * a ring freed meanwhile is dropped. Context: the producer's thread; takes RESV_LOCK briefly.
   */
  publish(full = false): boolean {
    const r = this.#r;
    if (r === null) return true;
    // freed: its frames are not the ring's any more. (Not attached as when the batch opened
    // cannot happen: a detach closes the thread's batches; checked all the same, as the owner in
    // the headers would be wrong)
    if (!ringLiveHint(r) || r.mem.current.slot !== this.#slot) {
      this.drop();
      return true;
    }
    const used = this.#cur; // an open batch holds at least its first record
    const start = ringReserve(r, used - RINGBUF_HDR_SZ);
    if (start < 0) return false;
    const startPos = ringLastReservePos();
    this.drop();
    this.#retryMoved = -1; // out: a later retry starts its clock afresh
    this.#chunk = full
      ? Math.min(MAX_CHUNK, this.#chunk * 2)
      : Math.max(MIN_CHUNK, 2 ** Math.ceil(Math.log2(used)));
    const { mem } = r;
    const head = recordOffset(r, start, used - RINGBUF_HDR_SZ);
    const lens = this.#lens!;
    const n = this.#n;
    // everything but the first header: nobody reads inside a busy record, so the order of the
    // copy and the stores below does not matter
    mem.u8.set(this.#stage!.subarray(RINGBUF_HDR_SZ, used), r.data + head + RINGBUF_HDR_SZ);
    // the headers, from this thread's own lengths (the copy brought whatever the staged bytes
    // held there: a user who writes records in place can write anything). The first record's is
    // the reservation's (busy, its page offset and owner written); the others get theirs here,
    // settled: written before the store that publishes them, never changed after it
    const { i32 } = mem;
    const settled = (mem.current.slot << RINGBUF_OWNER_SHIFT) | RINGBUF_SETTLED_BIT;
    writeHeaders(i32, lens, this.#subs!, n, r.data, head, settled);
    Atomics.store(i32, (r.data + head) >>> 2, lens[0]!); // publish: the whole batch
    ringPassCommitted(r, startPos, (head + used - start) & (r.size - 1));
    const flags = this.#force ? BPF_RB_FORCE_WAKEUP : this.#noWakeup ? BPF_RB_NO_WAKEUP : 0;
    ringCommitted(r, head, start, flags);
    return true;
  }

  /**
   * {@link RingBatch.publish}; when the ring has no room, try again each time the consumer moves
   * (and every few milliseconds), holding the thread alive until the batch is out or its ring is
   * freed. Returns what the first publish returned. Context: the producer's thread.
   */
  publishOrRetry(): boolean {
    if (this.publish()) return true;
    const r = this.#r;
    if (r !== null && !this.#retrying) {
      this.#retrying = true;
      // the thread is held alive while the consumer moves: not past HOLD_MS of a consumer that
      // holds still (nobody may ever read the ring again), then the retry goes on unheld
      const cons = Atomics.load(r.mem.i32, r.consPos);
      const now = Date.now();
      if (cons !== this.#retryCons || this.#retryMoved < 0) {
        this.#retryCons = cons;
        this.#retryMoved = now;
      }
      whenConsumerMoves(r, now - this.#retryMoved < HOLD_MS, () => {
        this.#retrying = false;
        if (this.#r === r) this.publishOrRetry();
      });
    }
    return false;
  }

  /**
   * {@link RingBatch.publish}, waiting for the consumer to make room for up to `timeoutMs`
   * (negative: no limit) where this thread may block, does not consume the ring itself and holds
   * no reservation on it (it would wait for itself); else, or when the time is up, as
   * {@link RingBatch.publishOrRetry}.
   * True when the batch is out (or none was open). Context: the producer's thread.
   */
  publishWait(timeoutMs: number): boolean {
    if (this.publish()) return true;
    const r = this.#r;
    if (r !== null && timeoutMs !== 0 && !waitsForSelf(r))
      waitForRoom(r, timeoutMs, () => this.publish());
    return this.#r === null || this.publishOrRetry();
  }
}

/**
 * The checks of a `batchReserve(len, flags)` or `batchReserveBulk(len, count, flags)` on ring `r`:
 * the commit flags to use (RB_BATCH, which may be given, taken out), or -1 when a check fails: a
 * thread not attached, a `len` that is no record length or larger than `RB_BATCH_MAX_RECORD`, a
 * `count` that is not an integer of at least 1, records that together exceed the ring's chunk (a
 * record larger than a chunk never joins a batch), bad flags, or a freed ring.
 */
function reserveFlags(
  r: RingRef,
  len: number,
  flags: unknown,
  count: unknown,
  bulk: boolean,
): number {
  checkProducer(r);
  if (
    checkRecordLen(r, len) < 0 ||
    len > RB_BATCH_MAX_RECORD ||
    typeof count !== 'number' ||
    !Number.isInteger(count) ||
    count < 1 ||
    (bulk ? runBytes(len, count) : recordBytes(len) * count) > batchCap(r) ||
    !ringLiveHint(r)
  )
    return -1;
  if (flags === undefined) return 0;
  if (typeof flags !== 'number') return -1;
  const f = flags - (flags & RB_BATCH); // the rest must be exactly a commit's flags
  return validCommitFlags(f) ? f : -1;
}

/**
 * Write the headers of a batch's ring records but the first, at data offset `head` of the ring
 * whose data starts at byte `data`: each record's header word 0 (`lens[i]`: a length, or a run's
 * with RUN), then its page offset (`pgOff`) with `settled` (the owner and the SETTLED bit); and
 * every run's descriptor, the first record's too (its records' length `subs[i]`, their count).
 * A function of its own, with no call in its loop, so that V8 compiles it early: a fresh thread
 * publishes a few hundred batches before its code is optimized. Context: the publishing thread,
 * inside its busy reservation.
 */
function writeHeaders(
  i32: Int32Array,
  lens: Int32Array,
  subs: Int32Array,
  n: number,
  data: number,
  head: number,
  settled: number,
): void {
  let at = 0;
  for (let i = 0; i < n; i++) {
    const word = lens[i]!;
    const len = word & LEN;
    const w = (data + head + at) >>> 2;
    if (i > 0) {
      i32[w] = word;
      i32[w + 1] = (RINGBUF_META_PAGES + ((head + at) >> PAGE_SHIFT)) | settled; // pgOff(head + at)
    }
    if (word & RUN) {
      const sub = subs[i]!;
      i32[w + 2] = sub;
      i32[w + 3] = (len - RINGBUF_RUN_DESC_SZ) / bulkStride(sub);
    }
    at += (len + RINGBUF_HDR_SZ + 7) & ~7; // recordBytes(len)
  }
}

/**
 * Forget this thread's open batches on the ring at byte `data` of `mem`, writing nothing: the ring
 * is being freed (its frames may soon hold another ring). Context: this thread (`free`).
 */
export function dropBatches(mem: PhysMem, data: number): void {
  if (openBatches.size === 0) return;
  for (const b of [...openBatches]) if (b.ring?.mem === mem && b.ring.data === data) b.drop();
}

/**
 * What this thread does on a ring that a wait for room would wait for itself: whether it consumes
 * the ring and how many reservations it holds open on it (the consumer stops at an open
 * reservation); `stamp` says which ring (see `RingMeta.MAGIC`).
 */
interface SelfWait {
  stamp: number;
  consumes: boolean;
  open: number;
}

/** {@link SelfWait}s per kernel memory and ring (its data's byte). This thread's own. */
const selfWaits = new WeakMap<PhysMem, Map<number, SelfWait>>();

/**
 * This thread's note on ring `r`, made on first use; null for a ring freed meanwhile (nothing to
 * note on it). A note left by an earlier ring on the same frames gives way to the live ring's. A
 * user mapping's ref (stamp 0) shares the note of the ring it maps.
 */
function selfWait(r: RingRef): SelfWait | null {
  let rings = selfWaits.get(r.mem);
  if (rings === undefined) selfWaits.set(r.mem, (rings = new Map<number, SelfWait>()));
  let w = rings.get(r.data);
  if (w === undefined || (r.stamp !== 0 && w.stamp !== r.stamp)) {
    if (!ringLiveHint(r)) return null;
    // (a user mapping's note, stamp 0, is this ring's: its frames stay while they are mapped)
    if (w?.stamp === 0) w.stamp = r.stamp;
    else rings.set(r.data, (w = { stamp: r.stamp, consumes: false, open: 0 }));
  }
  return w;
}

/**
 * Note that this thread consumes the ring `r` (any handle): a flush here never waits for room on
 * it, since only this thread would make the room. Context: the consumer's thread, each consume.
 */
export function noteConsumer(r: RingRef): void {
  const w = selfWait(r);
  if (w !== null) w.consumes = true;
}

/** Note a reservation this thread opened (+1) or committed (-1) on ring `r`. */
export function noteReservation(r: RingRef, delta: number): void {
  const w = selfWait(r);
  if (w !== null) w.open += delta;
}

/** Forget what this thread did on the ring at `data` of `mem` (it is being freed). */
export function forgetRing(mem: PhysMem, data: number): void {
  selfWaits.get(mem)?.delete(data);
}

/**
 * A producing call's answer `ret`, and on -EAGAIN the answers of `attempt` (the call again) each
 * time the consumer moves, up to `timeoutMs` (see {@link waitForRoom}); not where only this thread
 * could make the room ({@link waitsForSelf}). Returns the last answer. Context: the producer.
 */
export function retryForRoom(
  r: RingRef,
  timeoutMs: number,
  ret: number,
  attempt: () => number,
): number {
  if (ret !== -EAGAIN || waitsForSelf(r)) return ret;
  waitForRoom(r, timeoutMs, () => (ret = attempt()) !== -EAGAIN);
  return ret;
}

/** True when only this thread could make room on `r`: it consumes it, or holds a reservation on it. */
export function waitsForSelf(r: RingRef): boolean {
  const w = selfWaits.get(r.mem)?.get(r.data);
  return w !== undefined && (r.stamp === 0 || w.stamp === r.stamp) && (w.consumes || w.open > 0);
}

/** Forget every batch this thread holds open on `mem`'s rings (a detach that could not wait). */
export function dropAllBatches(mem: PhysMem): void {
  if (openBatches.size === 0) return;
  for (const b of [...openBatches]) if (b.ring?.mem === mem) b.drop();
}

/**
 * Publish this thread's open batches on the ring whose data starts at byte `data` of `mem`, or on
 * every ring of `mem` when `data` is -1, waiting for room up to `timeoutMs` (0: not at all;
 * negative: no limit) where this thread may block. A batch that finds no room stays open and goes
 * out once the consumer makes room (see {@link RingBatch.publishOrRetry}). True when none is left
 * open. Context: this thread (a producing call, a consume, a flush, a detach).
 */
export function publishBatches(mem: PhysMem, data: number, timeoutMs = 0): boolean {
  if (openBatches.size === 0) return true;
  let all = true;
  for (const b of [...openBatches]) {
    const r = b.ring;
    if (r !== null && r.mem === mem && (data < 0 || r.data === data))
      all = (timeoutMs === 0 ? b.publishOrRetry() : b.publishWait(timeoutMs)) && all;
  }
  return all;
}
