/**
 * Batched output (`RB_BATCH`, sabvm's own flag): a thread's small records go to the consumer a
 * chunk at a time instead of one at a time.
 *
 * Kernel counterparts: none in the BPF ring buffer, whose every `bpf_ringbuf_output` is visible at
 * once. The idea is io_uring's: an application fills submission entries with plain stores and
 * publishes the queue's tail once for many (`io_uring_submit`), and TCP_CORK's: hold small writes
 * until a full frame goes. Here one `Atomics` operation costs ~10 ns, and where the producer's and
 * the consumer's threads run on cores far apart every record the consumer reads while the producer
 * writes it costs a cache-line round trip; a batch costs those once for up to a chunk of records.
 *
 * **Format: a batch is one reservation.** The first output with `RB_BATCH` reserves a chunk (512 B
 * to 64 KiB, at most an eighth of the ring) as one record: its header `(chunk - 8) | BUSY`, owned
 * by this thread, like any reservation. Records go into the chunk one after the other, each with
 * its own header, by plain stores (nobody reads inside a busy record). Publishing writes the
 * unused rest of the chunk as a discarded record (`(rest - 8) | DISCARD`), then stores the first
 * header `len` of the first record with one `Atomics.store`, which makes every record of the
 * batch visible at once (the consumer reads each header with `Atomics.load` after it). So the ring
 * is well-formed at every moment: the consumer, the checker and the reaper see one busy record
 * until the publish and ordinary records after it, and reaping a thread that died with a batch
 * open discards the batch as it discards any open reservation.
 *
 * **When a batch is published:** when the next record does not fit in its chunk; when this thread's
 * current job ends (a microtask queued when the batch opens: the end of a task, of a script, any
 * `await`); before any other call on the same handle that produces or waits (`output` without
 * `RB_BATCH`, `reserve`, `outputWait`'s wait, `flush`); when this thread consumes the same ring;
 * and at `kernel.detach()`. Until then the records are written but not visible, and they hold back
 * every record reserved after the chunk, as an open reservation does.
 *
 * State: the fields of a {@link RingBatch} are this thread's own (one per ring handle, never shared).
 *
 * @module
 */
import { RINGBUF_DISCARD_BIT, RINGBUF_HDR_SZ, RINGBUF_OWNER_SHIFT } from './layout.js';
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
  pgOff,
  recordBytes,
  recordOffset,
  ringCommitted,
  ringLastReservePos,
  ringLiveHint,
  ringPassCommitted,
  ringReserve,
  type RingRef,
} from './ringbuf.js';

declare function queueMicrotask(callback: () => void): void;

/**
 * `output` flag (sabvm's own, not Linux's; bit 30, far from Linux's flags, which answer -EINVAL
 * for any other bit as here): the record joins this thread's batch on the ring, and
 * reaches the consumer with the whole batch, a chunk of records at a time. A batch is published
 * when the next record does not fit in its chunk (512 bytes to 64 KiB), when this thread's current
 * job ends (a microtask), before any other producing call on the same handle, when this thread
 * consumes the ring, at `rb.flush()` and at `kernel.detach()`. Until then its records are not
 * visible and hold back the records reserved after them. Records of more than
 * `RB_BATCH_MAX_RECORD` bytes, and records that find no room for a chunk, are output at once.
 */
export const RB_BATCH = 0x40000000;

/** The largest record `RB_BATCH` batches (bytes, header excluded). */
export const RB_BATCH_MAX_RECORD = 1024;

/** Bytes of a batch's first chunk, and the least a chunk shrinks to. */
const MIN_CHUNK = 512;
/** The largest chunk (bytes); a ring's chunks are also at most an eighth of its data area. */
const MAX_CHUNK = 64 * 1024;

/** Records up to this many bytes are copied word by word from a reused buffer (see append). */
const SMALL_RECORD = 128;

/** `output`'s answer when the record must go out on its own (the batch could not take it). */
export const BATCH_DECLINED = 1;

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

/** The batches this thread holds open, on every ring (module state: one set per thread). */
const openBatches = new Set<RingBatch>();

/** One handle's batch (this thread's own state; never shared). */
export class RingBatch {
  /** The ring of the open batch, or null when none is open. */
  #r: RingRef | null = null;
  /** Where the batch's reservation started (its header, or the tail skipped before it). */
  #start = 0;
  /** The same as a position (mod 2^32). */
  #startPos = 0;
  /** Data offset of the batch's first header (the chunk's start). */
  #head = 0;
  /** Bytes of the chunk. */
  #size = 0;
  /** Offset in the chunk where the next record goes. */
  #cur = 0;
  /** Length of the first record (its header says the chunk's length until the publish). */
  #len0 = 0;
  /** Records in the batch. */
  #count = 0;
  /** Wake-up flags of the batch: NO_WAKEUP when every record had it, FORCE when one had it. */
  #noWakeup = true;
  #force = false;
  /** Bytes of the next chunk: doubles while batches fill, shrinks to what an early publish used. */
  #chunk = MIN_CHUNK;
  /** This thread's slot when the batch opened (the owner in its headers). */
  #slot = -1;
  /**
   * The batch's records as they will lie in the chunk, headers and all, in this thread's own
   * memory (not shared): the publish copies them into the ring in one go. Written there one by
   * one, each record would cost a cache-line transfer from the consumer's core; one copy of the
   * chunk costs what a `postMessage` of it costs.
   */
  #stage: Uint8Array | null = null;
  #stage32: Int32Array | null = null;
  /** The last record buffer a batched output copied, and the one before (see #remember). */
  #seen: Uint8Array | null = null;
  #src: Uint8Array | null = null;
  /** Int32 view of #src's bytes. */
  #src32: Int32Array | null = null;
  /** A microtask that publishes is queued. */
  #queued = false;
  readonly #task = (): void => {
    this.#queued = false;
    this.publish();
  };

  /** The ring of the open batch, or null when none is open. */
  get ring(): RingRef | null {
    return this.#r;
  }

  /**
   * The fast path of an `output(bytes, RB_BATCH)`: append the record (`len` bytes, or -1 for
   * bytes that are no Uint8Array) to the open batch when it has room, the ring is live and this
   * thread is attached as when the batch opened. Returns 0 when appended, else 1 (nothing done:
   * the caller takes the whole path). Context: the producer's thread.
   */
  append(bytes: Uint8Array, len: number): number {
    const r = this.#r;
    const stage = this.#stage;
    if (r === null || stage === null || len < 0 || len > RB_BATCH_MAX_RECORD) return 1;
    const at = this.#cur;
    const total = (len + RINGBUF_HDR_SZ + 7) & ~7;
    const { mem } = r;
    if (at + total > this.#size || mem.current.slot !== this.#slot || !ringLiveHint(r)) return 1;
    try {
      // `len` is the intrinsic length measured just before (no user code ran since), and `set`
      // copies by the source's own length, not by a `length` property a caller put on it
      stage.set(bytes, at + RINGBUF_HDR_SZ);
    } catch {
      return 1; // the whole path answers it
    }
    this.#remember(bytes, len);
    this.#record(at, len, total);
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
    const total = (len + RINGBUF_HDR_SZ + 7) & ~7;
    if (words === 0 || at + total > this.#size) return 1;
    if (r.mem.current.slot !== this.#slot || !ringLiveHint(r)) return 1;
    const s32 = this.#stage32!;
    const to = (at + RINGBUF_HDR_SZ) >> 2;
    for (let i = 0; i < words; i++) s32[to + i] = src[i]!;
    this.#record(at, len, total);
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
   * Add a record of `len` bytes (`bytes`, at most {@link RB_BATCH_MAX_RECORD}, a valid length for
   * the ring) to the batch on ring `r`. Returns 0, {@link BATCH_DECLINED} when the record must be
   * output on its own (no room for a chunk: the open batch is published first), or -1 when `bytes`
   * cannot be read (then nothing changed). Context: the producer's thread.
   */
  add(r: RingRef, bytes: Uint8Array, len: number, flags: number): number {
    // bytes that cannot be read (a detached buffer, or a view out of its shrunk buffer) measure 0
    // bytes: refused before anything moves
    if (len === 0 && !readable(bytes)) return -1;
    const source = exactBytes(bytes, len);
    if (source === null) return -1;
    const total = recordBytes(len);
    // (a handle's batch is always on the handle's one ring)
    if (this.#r !== null && this.#cur + total > this.#size) this.publish(true);
    if (this.#r === null) {
      const cap = Math.min(MAX_CHUNK, r.size >>> 3);
      if (total > cap) return BATCH_DECLINED;
      const size = Math.min(cap, Math.max(this.#chunk, total));
      // at most one open batch per thread and ring: records keep this thread's order whichever
      // handle outputs them
      publishBatches(r.mem, r.data);
      const start = ringReserve(r, size - RINGBUF_HDR_SZ); // one busy record: the chunk
      if (start < 0) return BATCH_DECLINED;
      this.#startPos = ringLastReservePos();
      if (this.#stage === null) {
        const buf = new ArrayBuffer(MAX_CHUNK);
        this.#stage = new Uint8Array(buf);
        this.#stage32 = new Int32Array(buf);
      }
      this.#r = r;
      this.#start = start;
      this.#head = recordOffset(r, start, size - RINGBUF_HDR_SZ);
      this.#size = size;
      this.#cur = 0;
      this.#count = 0;
      this.#slot = r.mem.current.slot;
      this.#noWakeup = true;
      this.#force = false;
      openBatches.add(this);
      if (!this.#queued) {
        this.#queued = true;
        queueMicrotask(this.#task);
      }
    }
    const at = this.#cur;
    this.#stage!.set(source, at + RINGBUF_HDR_SZ); // exactly `len` bytes, readable (above)
    this.#record(at, len, total);
    if ((flags & BPF_RB_NO_WAKEUP) === 0) this.#noWakeup = false;
    if (flags & BPF_RB_FORCE_WAKEUP) this.#force = true;
    return 0;
  }

  /** The header of the record just staged at chunk offset `at`. */
  #record(at: number, len: number, total: number): void {
    if (this.#count === 0) {
      this.#len0 = len; // the chunk's header in the ring stays busy until the publish
    } else {
      const s32 = this.#stage32!;
      s32[(at >> 2) + 1] = pgOff(this.#head + at) | (this.#slot << RINGBUF_OWNER_SHIFT);
      s32[at >> 2] = len;
    }
    this.#cur = at + total;
    this.#count++;
  }

  /** Forget the open batch without writing anything (its ring is being freed). */
  drop(): void {
    this.#r = null;
    openBatches.delete(this);
  }

  /**
   * Publish the open batch (nothing to do when none is open): the staged records and, after them,
   * the unused rest of the chunk as a discarded record are copied into the chunk (all but its
   * first header, which stays busy), then one `Atomics.store` of the first header commits every
   * record, then the wake-up check as a commit's. `full`: the batch filled its chunk (the next
   * chunk doubles). A batch on a ring freed meanwhile is dropped. Context: the producer's thread,
   * lock-free but for a try of RESV_LOCK ({@link ringPassCommitted}).
   */
  publish(full = false): void {
    const r = this.#r;
    if (r === null) return;
    this.#r = null;
    openBatches.delete(this);
    const used = this.#cur;
    this.#chunk = full
      ? Math.min(MAX_CHUNK, this.#chunk * 2)
      : Math.max(MIN_CHUNK, 2 ** Math.ceil(Math.log2(Math.max(used, 1))));
    if (!ringLiveHint(r)) return; // freed: its frames are not the ring's any more
    const { mem } = r;
    // an open batch holds at least its first record: add checks the bytes before it reserves
    const rest = this.#size - used;
    let end = used;
    if (rest > 0) {
      const s32 = this.#stage32!;
      s32[(used >> 2) + 1] = pgOff(this.#head + used) | (this.#slot << RINGBUF_OWNER_SHIFT);
      s32[used >> 2] = (rest - RINGBUF_HDR_SZ) | RINGBUF_DISCARD_BIT;
      end += RINGBUF_HDR_SZ;
    }
    // everything but the first header (written by the reservation, busy): nobody reads inside
    // a busy record, so the copy's order does not matter
    mem.u8.set(this.#stage!.subarray(RINGBUF_HDR_SZ, end), r.data + this.#head + RINGBUF_HDR_SZ);
    Atomics.store(mem.i32, (r.data + this.#head) >> 2, this.#len0); // publish: the whole batch
    ringPassCommitted(r, this.#startPos, (this.#head + this.#size - this.#start) & (r.size - 1));
    const flags = this.#force ? BPF_RB_FORCE_WAKEUP : this.#noWakeup ? BPF_RB_NO_WAKEUP : 0;
    ringCommitted(r, this.#head, this.#start, flags);
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

/** {@link RingBatch.publish} when the open batch is on `mem`'s ring at byte `data` (-1: any). */
export function publishIf(b: RingBatch, mem: PhysMem, data: number): void {
  const r = b.ring;
  if (r !== null && r.mem === mem && (data < 0 || r.data === data)) b.publish();
}

/**
 * Publish this thread's open batches on the ring whose data starts at byte `data` of `mem`, or on
 * every ring of `mem` when `data` is -1. Context: this thread (a consume, a detach).
 */
export function publishBatches(mem: PhysMem, data: number): void {
  if (openBatches.size === 0) return;
  for (const b of [...openBatches]) publishIf(b, mem, data);
}
