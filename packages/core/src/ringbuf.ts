/**
 * The BPF ring buffer's data path: reserve, commit (submit or discard), consume, query, wake-up.
 *
 * Kernel counterparts: `kernel/bpf/ringbuf.c` (`__bpf_ringbuf_reserve`, `bpf_ringbuf_commit`,
 * `bpf_ringbuf_query`) for producers and libbpf's `ringbuf.c` (`ringbuf_process_ring`) for the
 * consumer. The memory layout is in layout.ts (`RingMeta`, `RingCons`, `RingProd`, the record
 * header); the area itself (create, look up, free, reaping, invariants) is in ringbuf-area.ts, the
 * waiting calls in ringbuf-wait.ts and user-process mappings in ringbuf-user.ts. All of them work
 * on a {@link RingRef}: the Int32 indexes of the position words and the byte index of the data,
 * found once through the kernel mapping (a `RingBuf`) or through a user mapping (a `UserRingBuf`).
 *
 * Ordering, as Linux's:
 * - reservation is serialised by `RESV_LOCK`: under it a producer checks room against
 *   `CONSUMER_POS` and `PENDING_POS` (advancing `PENDING_POS` over committed records only when that
 *   check fails), writes the header `len | BUSY` and then publishes `PRODUCER_POS` (the commit
 *   point of a reservation); an `output` of up to 1 KiB copies its bytes and writes its header
 *   committed (`len`) before that publish, so it is never seen BUSY;
 * - submit and discard are one lock-free exchange of the header word (BUSY off, DISCARD on for a
 *   discard), then the wake-up check;
 * - the consumer reads `PRODUCER_POS`, then each header at its position: a BUSY record stops it
 *   (it holds back every record after it); it stores `CONSUMER_POS` after the callbacks, a quarter
 *   of the ring at a time and when it stops, then looks once more, so a record's bytes stay put
 *   while its callback runs and producers do not miss their cache on every record.
 *
 * **Records never wrap (a JavaScript choice).** Linux maps the data pages twice, back to back, so
 * a record that runs past the end continues at the start in one virtual range; one JavaScript view
 * cannot span two runs of a buffer. Here a record that would cross the end is placed at offset 0
 * instead, and the tail it skips becomes a discarded record (its header `(tail - 8) | DISCARD`),
 * written in the same reservation. So a record with its header may take at most half of the data
 * area ({@link maxRecordBytes}): then every empty ring has room for it wherever its positions are.
 *
 * **Wake-up, as Linux's.** A commit wakes the consumer only when the consumer has caught up with
 * the committed record (`CONSUMER_POS` is at it, or at the skipped tail before it), or with
 * `BPF_RB_FORCE_WAKEUP`; `BPF_RB_NO_WAKEUP` suppresses it. A producer reads `WAITERS` first and
 * checks the consumer position only when a consumer may sleep, so a busy consumer costs producers
 * one load of a word that seldom changes per commit. Waking bumps `WAKE_SEQ` and notifies it.
 *
 * @module
 */
import { EBUSY, EINVAL, PAGE_SHIFT, PAGE_SIZE } from './errno.js';
import {
  RINGBUF_BUSY_BIT,
  RINGBUF_DISCARD_BIT,
  RINGBUF_HDR_SZ,
  RINGBUF_LEN_MASK,
  RINGBUF_RUN_BIT,
  RINGBUF_RUN_DESC_SZ,
  RINGBUF_META_PAGES,
  RINGBUF_OWNER_SHIFT,
  RINGBUF_SETTLED_BIT,
  RING_HOLD_PROD,
  RING_HOLD_CONS,
  RING_HOLD_REF,
  RING_HOLD_SLOTS,
  RingCons,
  RingMeta,
  RingProd,
} from './layout.js';
import { spinLock, spinUnlock } from './lock.js';
import type { PhysMem } from './phys-mem.js';
import { checkAttached } from './thread.js';
import { vfree } from './vmalloc.js';
import { bug } from './bug.js';

/** `bpf_ringbuf_submit`/`_discard`/`_output` flag: do not wake the consumer. */
export const BPF_RB_NO_WAKEUP = 1;
/** `bpf_ringbuf_submit`/`_discard`/`_output` flag: wake the consumer even if it is busy. */
export const BPF_RB_FORCE_WAKEUP = 2;
/** `rb.query`: bytes reserved and not yet consumed (`producer - consumer`). */
export const BPF_RB_AVAIL_DATA = 0;
/** `rb.query`: bytes in the data area. */
export const BPF_RB_RING_SIZE = 1;
/** `rb.query`: the consumer position (bytes, modulo 2^32). */
export const BPF_RB_CONS_POS = 2;
/** `rb.query`: the producer position (bytes, modulo 2^32). */
export const BPF_RB_PROD_POS = 3;

/** What `consume` and `poll` call for each record: a negative return stops consumption. */
export type RingCallback = (data: Uint8Array) => unknown;

/**
 * What `consumeAt`, `pollAt` and `pollSyncAt` call for each record: its bytes are
 * `mem[offset … offset + length)`, where `mem` is one `Uint8Array` over all of physical memory
 * (the same object for every record: `kernel.handle.buffer` seen as bytes), so that reading a
 * record allocates nothing. A negative return stops consumption.
 */
export type RingSampleCallback = (mem: Uint8Array, offset: number, length: number) => unknown;

/** The words of one ring as some thread reaches them (all indexes into `mem.i32`/`mem.u8`). */
export interface RingRef {
  readonly mem: PhysMem;
  /** The ring's kaddr, or -1 (a user mapping). */
  readonly kaddr: number;
  /** Int32 index of the meta page's MAGIC, or -1 (a user mapping has no meta page). */
  readonly magic: number;
  /** The ring's stamp, MAGIC's value while it is live (0 through a user mapping). */
  readonly stamp: number;
  /** Int32 index of the meta page's REFS, or -1. */
  readonly refs: number;
  readonly consPos: number;
  readonly consSkip: number;
  readonly consSkipPos: number;
  readonly consLock: number;
  readonly waiters: number;
  readonly prodPos: number;
  readonly pendPos: number;
  readonly resvLock: number;
  readonly wakeSeq: number;
  readonly prodWaiters: number;
  /** Byte index of data offset 0 in physical memory. */
  readonly data: number;
  /** Bytes in the data area (a power of two). */
  readonly size: number;
}

/**
 * The words of a ring whose consumer page starts at Int32 index `cons` of physical memory (the
 * producer page and the data follow it, as one contiguous run). `meta` is the meta page's Int32
 * index, or -1 for a user mapping (which has none); `kaddr` is -1 there too; `stamp` is the
 * ring's MAGIC (see {@link RingRef.stamp}).
 */
export function ringRefAt(
  mem: PhysMem,
  kaddr: number,
  meta: number,
  cons: number,
  size: number,
  stamp = 0,
): RingRef {
  const prod = cons + PAGE_SIZE / 4;
  return {
    mem,
    kaddr,
    magic: meta < 0 ? -1 : meta + RingMeta.MAGIC,
    stamp,
    refs: meta < 0 ? -1 : meta + RingMeta.REFS,
    consPos: cons + RingCons.CONSUMER_POS,
    consSkip: cons + RingCons.CONSUMER_SKIP,
    consSkipPos: cons + RingCons.CONSUMER_SKIP_POS,
    consLock: cons + RingCons.CONSUMER_LOCK,
    waiters: cons + RingCons.WAITERS,
    prodPos: prod + RingProd.PRODUCER_POS,
    pendPos: prod + RingProd.PENDING_POS,
    resvLock: prod + RingProd.RESV_LOCK,
    wakeSeq: prod + RingProd.WAKE_SEQ,
    prodWaiters: prod + RingProd.PRODUCER_WAITERS,
    data: cons * 4 + 2 * PAGE_SIZE,
    size,
  };
}

/** Largest record (bytes, header excluded) a ring of `size` data bytes takes: half, less the header. */
export function maxRecordBytes(size: number): number {
  return size / 2 - RINGBUF_HDR_SZ;
}

/**
 * The stride of records of `len` bytes reserved in bulk (`batchReserveBulk`), and in a run record
 * (see `RINGBUF_RUN_BIT`): `len` padded to 8 bytes, and at least 8 (`len` is valid).
 */
export function bulkStride(len: number): number {
  return len > 0 ? (len + 7) & ~7 : 8;
}

/**
 * The stride of the records `batchReserveBulk(len, count)` hands out: `len` padded to 8 bytes, and
 * at least 8 (32 for 32-byte records). They lie one after the other with no header between them,
 * and go into the ring as one run record. -EINVAL for a `len` that is not a non-negative integer
 * up to 2^30.
 */
export function ringbufBulkStride(len: number): number {
  if (typeof len !== 'number' || !Number.isInteger(len) || len < 0 || len > 2 ** 30) return -EINVAL;
  return bulkStride(len);
}

/** Bytes a record of `len` takes with its header, 8-byte aligned (`round_up(len + 8, 8)`). */
export function recordBytes(len: number): number {
  return (len + RINGBUF_HDR_SZ + 7) & ~7;
}

/**
 * Bytes a record of `len` bytes takes in the ring and in a batch, its 8-byte header included,
 * padded to 8 (the kernel's `round_up(len + BPF_RINGBUF_HDR_SZ, 8)`), when it is a ring record of
 * its own (`output`, `reserve`; a batched record of another length than the one before it; the
 * records of a run take `ringbufBulkStride(len)` each). -EINVAL for a `len` that is not a non-negative integer up to 2^30.
 */
export function ringbufRecordBytes(len: number): number {
  if (typeof len !== 'number' || !Number.isInteger(len) || len < 0 || len > 2 ** 30) return -EINVAL;
  return recordBytes(len);
}

/** True unless the ring was freed (a kernel handle checks its meta page; a user mapping cannot). */
export function ringLive(r: RingRef): boolean {
  return r.magic < 0 || Atomics.load(r.mem.i32, r.magic) === r.stamp;
}

/**
 * {@link ringLive} for a producer's fast path: a plain load of MAGIC. The check is a courtesy
 * either way (a free may follow it at once; finishing calls before `free` is the caller's part),
 * so a stale read costs nothing that an atomic one would prevent.
 */
export function ringLiveHint(r: RingRef): boolean {
  return r.magic < 0 || r.mem.i32[r.magic] === r.stamp;
}

/**
 * A wait's hold on a ring: the reference it took and the waiter counts it added, recorded in its
 * thread's `SLOT_HOLDS` word of the ring's meta page (`word`, -1: not recorded) so that reaping a
 * thread that dies while it waits gives them back. This thread's own.
 */
export interface RingHold {
  readonly r: RingRef;
  /** Int32 index of the `SLOT_HOLDS` word it is recorded in, or -1. */
  word: number;
  /** What it has recorded there (sum of `RING_HOLD_*`). */
  recorded: number;
}

/** This thread's holds in progress (module state: one set per thread). */
const holds = new Set<RingHold>();

/**
 * Take a reference on the ring for a wait (a freed ring's area stays until the wait ends), noted
 * in this thread's `SLOT_HOLDS` word. Null for a freed ring. A user mapping keeps its frames alive
 * itself: its hold takes nothing and records nothing. Context: any thread.
 */
export function ringHold(r: RingRef): RingHold | null {
  if (r.refs < 0) return { r, word: -1, recorded: 0 };
  if (!ringLive(r)) return null;
  Atomics.add(r.mem.i32, r.refs, 1);
  const slot = r.mem.current.slot;
  const word = slot >= 0 && slot < RING_HOLD_SLOTS ? r.magic + RingMeta.SLOT_HOLDS + slot : -1;
  const h: RingHold = { r, word, recorded: 0 };
  holdNote(h, RING_HOLD_REF); // after the ring's own count: a death between leaves, never takes
  holds.add(h);
  return h;
}

/** Add `amount` (negative: take it) to what `h` records in its thread's word. */
function holdNote(h: RingHold, amount: number): void {
  if (h.word < 0) return;
  Atomics.add(h.r.mem.i32, h.word, amount);
  h.recorded += amount;
}

/**
 * Count the wait of `h` in the ring's WAITERS (`word === r.waiters`) or PRODUCER_WAITERS (+1), or
 * stop counting it (-1): the ring's word first when counting, the thread's own first when not.
 */
export function ringWaiting(h: RingHold, word: number, by: 1 | -1): void {
  const field = word === h.r.prodWaiters ? RING_HOLD_PROD : RING_HOLD_CONS;
  if (by > 0) {
    Atomics.add(h.r.mem.i32, word, 1);
    holdNote(h, field);
  } else {
    holdNote(h, -field);
    Atomics.sub(h.r.mem.i32, word, 1);
  }
}

/** End a wait's hold: its reference goes (the last one frees the area). */
export function ringRelease(h: RingHold): void {
  if (!holds.delete(h)) return;
  holdNote(h, -RING_HOLD_REF);
  ringPut(h.r);
}

/**
 * This thread gives its slot of `mem` back (a detach) while waits of its may still be in progress
 * (a pending `poll`): they stop being recorded under the slot, which another thread may take next
 * and whose reaping must not give them back. Context: this thread, detaching.
 */
export function forgetHolds(mem: PhysMem): void {
  for (const h of holds) {
    if (h.r.mem !== mem || h.word < 0) continue;
    Atomics.sub(mem.i32, h.word, h.recorded);
    h.word = -1;
    h.recorded = 0;
  }
}

/** Drop a reference taken by {@link ringHold} or the ring's own; the last one frees the area. */
export function ringPut(r: RingRef): void {
  if (r.refs >= 0 && Atomics.sub(r.mem.i32, r.refs, 1) === 1) vfree(r.mem, r.kaddr);
}

/** Wake the consumer: bump WAKE_SEQ, notify it if a consumer sleeps. Context: lock-free. */
export function ringWake(r: RingRef): void {
  const { i32 } = r.mem;
  Atomics.add(i32, r.wakeSeq, 1);
  if (Atomics.load(i32, r.waiters) !== 0) Atomics.notify(i32, r.wakeSeq);
}

/**
 * Reserve a record of `len` bytes (`__bpf_ringbuf_reserve`); `len` is valid (0 … maxRecordBytes).
 * Returns the data offset where the reservation starts (the record's header, or the tail skipped
 * before a record placed at offset 0: see {@link recordOffset}), or -1 when the ring is full.
 *
 * With `bytes` (`len` of them: an output of at most {@link OUTPUT_INLINE_MAX} bytes) the record is
 * written whole and committed before the publish: the consumer never sees it BUSY, so its header
 * line is written once and read once, not written again by a commit after the consumer looked at
 * it (where threads run on cores far apart, each such round trip of a line costs more than the
 * rest of the record). The caller then does only the wake-up check ({@link ringCommitted}).
 * Returns {@link RESERVE_BAD_BYTES} when the bytes cannot be read (a detached buffer).
 *
 * The fast path costs three `Atomics` operations (the lock, the publish of `PRODUCER_POS`, the
 * unlock): the consumer position is read with a plain load and reloaded atomically only when the
 * room check fails; the holder of `RESV_LOCK` reads `PRODUCER_POS` and `PENDING_POS`
 * with plain loads (only holders write them) and writes the new header with plain stores, which
 * the `Atomics.store` of `PRODUCER_POS` publishes; `PENDING_POS` is advanced only when the room
 * check against it fails (it is a lower bound, so a stale one can only make the ring look fuller).
 * Context: any attached thread; takes RESV_LOCK.
 */
export function ringReserve(r: RingRef, len: number, bytes: Uint8Array | null = null): number {
  const { mem, size } = r;
  const { i32 } = mem;
  const mask = size - 1;
  const dataWord = r.data >>> 2;
  const total = recordBytes(len);
  // a plain load first: a stale consumer position only makes the ring look fuller, and the room
  // check below reloads it with Atomics.load before it answers "full"
  let cons = i32[r.consPos]!;
  spinLock(mem, r.resvLock);
  const prod = i32[r.prodPos]!; // RESV_LOCK: only holders write it
  const start = prod & mask;
  const tail = size - start;
  const need = tail < total ? tail + total : total;
  const next = (prod + need) | 0;
  // room: the producer stays less than a whole ring ahead of the consumer and of the oldest
  // uncommitted record (unsigned distances; a consumer position that is garbage means "full")
  if ((next - cons) >>> 0 > mask) cons = Atomics.load(i32, r.consPos);
  if (
    (next - cons) >>> 0 > mask ||
    ((next - i32[r.pendPos]!) >>> 0 > mask && !passPending(r, next))
  ) {
    spinUnlock(mem, r.resvLock);
    return -1;
  }
  const owner = mem.current.slot << RINGBUF_OWNER_SHIFT;
  const at = tail < total ? 0 : start;
  if (bytes !== null) {
    // an output: the bytes first (the caller made them exactly `len` long: exactBytes). A copy
    // that throws (a buffer detached meanwhile) has written nothing: the call lets the lock go
    // and changes nothing
    try {
      mem.u8.set(bytes, r.data + at + RINGBUF_HDR_SZ); // exactly `len` bytes (exactBytes)
    } catch {
      spinUnlock(mem, r.resvLock);
      return RESERVE_BAD_BYTES;
    }
  }
  if (tail < total) {
    // the tail cannot hold the record: skip it as a discarded record, place the record at 0
    i32[dataWord + (start >> 2)] = (tail - RINGBUF_HDR_SZ) | RINGBUF_DISCARD_BIT;
    i32[dataWord + (start >> 2) + 1] = pgOff(start) | owner | RINGBUF_SETTLED_BIT;
  }
  // plain stores before the publish below: every reader of a header reads PRODUCER_POS first;
  // an output's header is committed at once (settled: the consumer may read it plainly), a
  // reservation's is BUSY until its commit
  i32[dataWord + (at >> 2) + 1] = pgOff(at) | owner | (bytes === null ? 0 : RINGBUF_SETTLED_BIT);
  i32[dataWord + (at >> 2)] = bytes === null ? len | RINGBUF_BUSY_BIT : len;
  Atomics.store(i32, r.prodPos, next); // publish: the consumer may now read up to `next`
  spinUnlock(mem, r.resvLock);
  lastReservePos = prod;
  return start;
}

/** The position (mod 2^32) where this thread's last successful {@link ringReserve} began. */
let lastReservePos = 0;

/** See {@link lastReservePos}. Context: right after a {@link ringReserve} on this thread. */
export function ringLastReservePos(): number {
  return lastReservePos;
}

/**
 * Advance `PENDING_POS` over the records committed since it last moved (Linux's `pending_pos`
 * loop); true when a reservation ending at `next` then fits behind it. Context: RESV_LOCK held.
 */
function passPending(r: RingRef, next: number): boolean {
  const { i32 } = r.mem;
  const mask = r.size - 1;
  const dataWord = r.data >>> 2;
  const prod = i32[r.prodPos]!;
  let pend = i32[r.pendPos]!;
  while (pend !== prod) {
    const word = Atomics.load(i32, dataWord + ((pend & mask) >> 2)); // committed lock-free
    if (word & RINGBUF_BUSY_BIT) break;
    pend = (pend + recordBytes(word & RINGBUF_LEN_MASK)) | 0;
  }
  i32[r.pendPos] = pend;
  return (next - pend) >>> 0 <= mask;
}

/**
 * Move `PENDING_POS` past a reservation committed whole (a published batch: every record in it is
 * committed) when it is the oldest uncommitted one: `startPos` is the position (mod 2^32) where
 * the reservation began ({@link ringLastReservePos}), `span` its bytes. So the room check does not
 * walk the batch's records one by one ({@link passPending}). Only when RESV_LOCK is free at once:
 * otherwise the walk passes them later. The whole position is compared, not its offset: once the
 * commit is visible the ring may move on by whole laps before this runs, and `PENDING_POS` may
 * then rest at the same offset a lap later, on another reservation. Context: the committing
 * thread, after its commit.
 */
export function ringPassCommitted(r: RingRef, startPos: number, span: number): void {
  const { mem } = r;
  const { i32 } = mem;
  if (Atomics.compareExchange(i32, r.resvLock, 0, mem.tid) !== 0) return;
  // a later lap is 2^32 bytes of traffic away from the same 32-bit position: never while the
  // reservation's own commit is the last thing this thread did to the ring
  if (i32[r.pendPos] === startPos) i32[r.pendPos] = (startPos + span) | 0; // RESV_LOCK
  spinUnlock(mem, r.resvLock);
}

/** Page offset of the header at data offset `at`, from the ring's first page (Linux's `pg_off`). */
export function pgOff(at: number): number {
  return RINGBUF_META_PAGES + (at >> PAGE_SHIFT);
}

/** Data offset of the record whose reservation began at `start` (see {@link ringReserve}). */
export function recordOffset(r: RingRef, start: number, len: number): number {
  return r.size - start < recordBytes(len) ? 0 : start;
}

/**
 * Commit the record at data offset `at`, reserved from `start` (`bpf_ringbuf_commit`): one
 * exchange of its header word, then the wake-up check. Context: the reserving thread, lock-free.
 */
export function ringCommit(
  r: RingRef,
  at: number,
  start: number,
  flags: number,
  discard: boolean,
): void {
  const { i32 } = r.mem;
  const word = (r.data + at) >>> 2;
  const len = i32[word]! & RINGBUF_LEN_MASK; // only this thread writes it until the exchange
  Atomics.exchange(i32, word, discard ? len | RINGBUF_DISCARD_BIT : len);
  ringCommitted(r, at, start, flags);
}

/** {@link ringReserve} with `bytes`: the bytes could not be read (nothing was reserved). */
export const RESERVE_BAD_BYTES = -2;

/** Records up to this many bytes are output whole under the reservation lock ({@link ringReserve}). */
export const OUTPUT_INLINE_MAX = 1024;

/**
 * The wake-up check after the record at data offset `at` (reserved from `start`) was committed.
 * Context: the committing thread, lock-free.
 */
export function ringCommitted(r: RingRef, at: number, start: number, flags: number): void {
  const { i32 } = r.mem;
  if (flags & BPF_RB_FORCE_WAKEUP) {
    ringWake(r);
    return;
  }
  // a consumer that is not asleep needs no wake-up: WAITERS first, the consumer position only
  // when one may sleep (it counts itself before its last look at the ring: ringbuf-wait.ts)
  if (flags & BPF_RB_NO_WAKEUP || Atomics.load(i32, r.waiters) === 0) return;
  const cons = Atomics.load(i32, r.consPos) & (r.size - 1);
  if (cons === at || cons === start) ringWake(r);
}

/** The flags a commit or output accepts. */
export function validCommitFlags(flags: unknown): flags is number | undefined {
  return (
    flags === undefined ||
    flags === 0 ||
    flags === BPF_RB_NO_WAKEUP ||
    flags === BPF_RB_FORCE_WAKEUP ||
    flags === (BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP)
  );
}

/**
 * Consume the committed records in order (`ring_buffer__consume`): `cb(view)` for each that was
 * not discarded. Every record committed when the call began, and those committed meanwhile up to
 * about one lap of the ring: a call that has handed out records stops once it has passed `size`
 * bytes (at the end of the pass it is in: up to a quarter of the ring past the position it last
 * stored, and the record that crosses it), where libbpf's loops on while producers keep up. On
 * JavaScript's one thread per event loop, a consume that producers never let catch up would
 * otherwise never return, and would hold up every timer and message of its thread
 * (`ring_buffer__consume_n` bounds libbpf's call in the same spirit). Returns the records handed
 * to `cb`, or the negative number `cb` returned (the record counts as consumed), `-EBUSY` when
 * another thread is consuming, `-EINVAL` for a freed ring. The view is valid only until `cb`
 * returns. Context: the consumer, lock-free for producers.
 */
export function ringConsume(r: RingRef, cb: RingCallback | RingSampleCallback, at = false): number {
  const { mem } = r;
  const { i32 } = mem;
  if (!ringLive(r)) return -EINVAL;
  if (Atomics.compareExchange(i32, r.consLock, 0, mem.tid) !== 0) return -EBUSY;
  const cons = Atomics.load(i32, r.consPos);
  const skip = consumerSkip(r, cons);
  const pos: ConsumePos = { cons, stored: cons, count: 0, skip, storedSkip: skip };
  const begun = pos.cons;
  try {
    // CONSUMER_POS is stored a quarter of the ring at a time and when the ring looks empty, then
    // the ring is looked at again: a producer that commits after that look finds the consumer
    // caught up at its record (the wake-up check of ringCommit). A lap ends the call: the records
    // there at the start lie within it, and the caller, who got a count, calls again. (Not with a
    // count of 0, a lap of discarded records: a poll would take "nothing" for "sleep", and the
    // records left behind were committed before it counted itself a waiter: none would wake it.)
    // A pass that ends without a stop ends between ring records: pos.skip is 0 there
    for (;;) {
      const ret = at ? consumeRecordsAt(r, cb, pos) : consumeRecords(r, cb as RingCallback, pos);
      if (ret < 0 || pos.cons === pos.stored) return ret < 0 ? ret : pos.count;
      storeConsumer(r, pos.cons, 0, pos.stored, pos.storedSkip);
      pos.stored = pos.cons;
      pos.storedSkip = 0;
      if (pos.count > 0 && (pos.cons - begun) >>> 0 >= r.size) return pos.count;
    }
  } finally {
    if (pos.cons !== pos.stored || pos.skip !== pos.storedSkip)
      storeConsumer(r, pos.cons, pos.skip, pos.stored, pos.storedSkip);
    Atomics.store(i32, r.consLock, 0);
  }
}

/** Store CONSUMER_POS and tell producers waiting for room. Context: the consumer. */
export function storeConsumerPos(r: RingRef, cons: number): void {
  const { i32 } = r.mem;
  Atomics.store(i32, r.consPos, cons);
  if (Atomics.load(i32, r.prodWaiters) !== 0) Atomics.notify(i32, r.consPos);
}

/**
 * Store where the consumer is: position `cons` and `skip` records of the run there consumed (0
 * for none, or no run), where `oldCons` and `oldSkip` are what is stored now, in the order
 * `RingCons.CONSUMER_SKIP` gives. Context: the consumer, CONSUMER_LOCK held.
 */
export function storeConsumer(
  r: RingRef,
  cons: number,
  skip: number,
  oldCons: number,
  oldSkip: number,
): void {
  const { i32 } = r.mem;
  if (cons === oldCons) {
    // further into the same run: the count grows (CONSUMER_SKIP_POS is already here if it counted)
    if (skip === oldSkip) return;
    Atomics.store(i32, r.consSkip, skip);
    if (oldSkip === 0) Atomics.store(i32, r.consSkipPos, cons);
    return;
  }
  storeConsumerPos(r, cons); // the old count stops counting here
  if (skip !== 0) {
    Atomics.store(i32, r.consSkip, skip);
    Atomics.store(i32, r.consSkipPos, cons); // and the new one starts here
  } else if (oldSkip !== 0) {
    Atomics.store(i32, r.consSkip, 0); // no count left for a later lap of the same position
  }
}

/**
 * The records of the run at `cons` (`CONSUMER_POS`) that earlier consumers passed: the stored
 * count when it is for `cons`, else 0 (a count that does not count, left by a consumer that died
 * as it moved on, is stored 0: a later lap of its position must not find it). Context: the
 * consumer, CONSUMER_LOCK held, as a consume or read opens.
 */
export function consumerSkip(r: RingRef, cons: number): number {
  const { i32 } = r.mem;
  const skip = Atomics.load(i32, r.consSkip);
  if (skip === 0 || Atomics.load(i32, r.consSkipPos) === cons) return skip;
  Atomics.store(i32, r.consSkip, 0);
  return 0;
}

/**
 * The header's bits as int32 constants of this module, for the consumer's loop: V8 folds these
 * where it loaded `RINGBUF_BUSY_BIT` (2^31, not a small integer) for every record.
 */
const BUSY_I32 = RINGBUF_BUSY_BIT | 0;
const DISCARD_I32 = RINGBUF_DISCARD_BIT | 0;
const SETTLED_I32 = RINGBUF_SETTLED_BIT | 0;
const LEN_I32 = RINGBUF_LEN_MASK | 0;
const RUN_I32 = RINGBUF_RUN_BIT | 0;

/**
 * Where a consume is: the position reached, the position last stored, records handed out, and
 * how many records of the run at the position reached (`skip`) and at the one stored
 * (`storedSkip`) are consumed.
 */
interface ConsumePos {
  cons: number;
  stored: number;
  count: number;
  skip: number;
  storedSkip: number;
}

/**
 * Hand `cb` a view of every committed record from `pos.cons` on, as {@link consumeRecordsAt}.
 * Context: the consumer, CONSUMER_LOCK held.
 */
function consumeRecords(r: RingRef, cb: RingCallback, pos: ConsumePos): number {
  const { mem } = r;
  return consumeRecordsAt(r, (_u8, from, len) => cb(new Uint8Array(mem.buffer, from, len)), pos);
}

/**
 * The count of the run whose bytes start at byte `body` of `i32`'s buffer, `len` bytes with its
 * descriptor (see `RINGBUF_RUN_BIT`), or -1 when the descriptor does not describe `len` bytes.
 * The descriptor was written before the store that committed the run, which the caller's load of
 * the header ordered. Context: the consumer.
 */
export function runCount(i32: Int32Array, body: number, len: number): number {
  const sub = i32[body >>> 2]!;
  const n = i32[(body >>> 2) + 1]!;
  return sub >= 0 && n >= 1 && RINGBUF_RUN_DESC_SZ + n * bulkStride(sub) === len ? n : -1;
}

/** The bug of a run whose descriptor does not describe its bytes (see {@link runCount}). */
export function badRun(i32: Int32Array, data: number, off: number, len: number): never {
  const body = (data + off + RINGBUF_HDR_SZ) >>> 2;
  bug(
    `ring at byte ${data}: the run at offset ${off} says ${i32[body + 1]} records of ${i32[body]} bytes in ${len}`,
  );
}

/**
 * Hand `cb(mem, offset, length)` every committed record from `pos.cons` on, up to a busy record,
 * `PRODUCER_POS` or a quarter of the ring past the position last stored (the caller stores it and
 * calls again: so producers get room a quarter of the ring at a time, and the loop holds no call
 * that runs only now and then, which V8 would compile without knowing and undo when it first
 * runs). Each record of a run is handed out as one record, from the `pos.skip`th of the run at
 * `pos.cons` on. Returns 0, or the negative number `cb` returned. One loop for both kinds of
 * callback would call `cb` from one site with two shapes of argument; here the site sees one
 * callback in a consumer's loop, which V8 inlines. Context: the consumer, CONSUMER_LOCK held.
 */
function consumeRecordsAt(r: RingRef, cb: RingSampleCallback, pos: ConsumePos): number {
  const { mem, size, data } = r;
  const { i32, u8 } = mem;
  const mask = size - 1;
  const quarter = size >>> 2;
  const prod = Atomics.load(i32, r.prodPos);
  let cons = pos.cons;
  // records of the run at `cons` consumed: while a run's records are handed out, the one being
  // handed out (a record whose cb throws is handed out again)
  let skip = pos.skip;
  const stored = pos.stored;
  let count = 0;
  try {
    while (cons !== prod && (cons - stored) >>> 0 < quarter) {
      const off = cons & mask;
      const hdr = (data + off) >>> 2;
      // word 1 was stored before the PRODUCER_POS (or batch header) store that ordered it; word 0
      // of a settled record too, and never changes until we pass it: no Atomics.load for it
      const word = i32[hdr + 1]! & SETTLED_I32 ? i32[hdr]! : Atomics.load(i32, hdr);
      if (word & BUSY_I32) return 0; // holds back every record after it
      const len = word & LEN_I32;
      if (len > size - off - RINGBUF_HDR_SZ)
        bug(`ring at byte ${data}: the record at offset ${off} runs past the end (${len} bytes)`);
      const next = (cons + ((len + RINGBUF_HDR_SZ + 7) & ~7)) | 0; // recordBytes(len)
      if (word & RUN_I32) {
        const body = data + off + RINGBUF_HDR_SZ;
        const n = runCount(i32, body, len);
        if (n < 0) badRun(i32, data, off, len);
        if (skip >= n) bug(`ring at byte ${data}: CONSUMER_SKIP is ${skip}, past the run's ${n}`);
        const sub = i32[body >>> 2]!;
        const stride = bulkStride(sub);
        for (let at = body + RINGBUF_RUN_DESC_SZ + skip * stride; skip < n; at += stride) {
          count++;
          const ret = cb(u8, at, sub);
          skip++;
          if (typeof ret === 'number' && ret < 0) {
            if (skip === n) {
              skip = 0;
              cons = next;
            }
            return ret; // the record counts as consumed
          }
        }
        skip = 0;
      } else if (skip !== 0) {
        bug(`ring at byte ${data}: CONSUMER_SKIP is ${skip} at offset ${off}, not a run`);
      } else if ((word & DISCARD_I32) === 0) {
        count++;
        const ret = cb(u8, data + off + RINGBUF_HDR_SZ, len);
        if (typeof ret === 'number' && ret < 0) {
          cons = next; // the record counts as consumed
          return ret;
        }
      }
      cons = next; // after cb: a record whose cb throws is handed out again
    }
    return 0;
  } finally {
    pos.cons = cons;
    pos.skip = skip;
    pos.count += count;
  }
}

/**
 * True when a consume would find something at `CONSUMER_POS`: a record that is not busy (committed
 * or discarded). Context: any thread, lock-free (`Atomics.load` only).
 */
export function ringReadable(r: RingRef): boolean {
  const { i32 } = r.mem;
  const cons = Atomics.load(i32, r.consPos);
  if (cons === Atomics.load(i32, r.prodPos)) return false;
  return (Atomics.load(i32, (r.data + (cons & (r.size - 1))) >>> 2) & RINGBUF_BUSY_BIT) === 0;
}

/** `bpf_ringbuf_query`: one of `BPF_RB_*`, or -EINVAL. Context: any thread, lock-free. */
export function ringQuery(r: RingRef, what: unknown): number {
  if (!ringLive(r)) return -EINVAL;
  const { i32 } = r.mem;
  switch (what) {
    case BPF_RB_AVAIL_DATA:
      return (Atomics.load(i32, r.prodPos) - Atomics.load(i32, r.consPos)) >>> 0;
    case BPF_RB_RING_SIZE:
      return r.size;
    case BPF_RB_CONS_POS:
      return Atomics.load(i32, r.consPos) >>> 0;
    case BPF_RB_PROD_POS:
      return Atomics.load(i32, r.prodPos) >>> 0;
    default:
      return -EINVAL; // stronger than Linux, which answers 0
  }
}

/** A valid record length for this ring, or -1. */
export function checkRecordLen(r: RingRef, len: unknown): number {
  return typeof len === 'number' &&
    Number.isSafeInteger(len) &&
    len >= 0 &&
    len <= maxRecordBytes(r.size)
    ? len
    : -1;
}

/** Throw unless this thread is attached (a producer's header names its thread slot). */
export function checkProducer(r: RingRef): void {
  if (r.mem.current.slot < 0) checkAttached(r.mem);
}
