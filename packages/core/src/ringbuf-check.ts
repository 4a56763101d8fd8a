/**
 * Rings and dead threads, rings and the invariant checker: both walk the records between the
 * positions.
 *
 * Kernel counterparts: none in Linux (a BPF program cannot die holding a reservation: the verifier
 * proves every reservation is committed); here a worker thread can be terminated anywhere, so
 * reaping it discards its open records (`reapRings`), as the robust-futex list releases a dead
 * thread's locks. `checkRings` is the ring's share of `CONFIG_DEBUG_VM`.
 *
 * @module
 */
import { PAGE_SIZE } from './errno.js';
import {
  Area,
  AreaCaller,
  Hdr,
  RINGBUF_BUSY_BIT,
  RINGBUF_DISCARD_BIT,
  RINGBUF_HDR_SZ,
  RINGBUF_LEN_MASK,
  RINGBUF_META_PAGES,
  RINGBUF_OWNER_SHIFT,
  RINGBUF_PG_OFF_MASK,
  RINGBUF_RUN_BIT,
  RINGBUF_SETTLED_BIT,
  RING_HOLD_BITS,
  RING_HOLD_SLOTS,
  RingMeta,
  Thread,
  ThreadState,
  PTRS_PER_TABLE,
  VMALLOC_START,
} from './layout.js';
import { pauseUntil } from './cpu-relax.js';
import { spinLock, spinUnlock } from './lock.js';
import type { PhysMem } from './phys-mem.js';
import { ringWake, runCount, type RingRef } from './ringbuf.js';
import { kernelRingRef } from './ringbuf-area.js';
import { readOpenOn } from './ringbuf-read.js';
import { threadWord } from './thread.js';
import { areaGet } from './vmalloc.js';
import { bug } from './bug.js';

/** Every live ring, through the kernel mapping. Context: the area list is stable (recovery, check). */
function liveRings(mem: PhysMem): RingRef[] {
  return ringAreas(mem, false);
}

/**
 * Every ring area, through the kernel mapping: the live rings, and with `freed` also the rings
 * freed whose area a wait's reference still keeps. Context: the area list is stable.
 */
function ringAreas(mem: PhysMem, freed: boolean): RingRef[] {
  const { i32 } = mem;
  const rings: RingRef[] = [];
  for (
    let cur = Atomics.load(i32, Hdr.AREA_HEAD);
    cur !== 0;
    cur = areaGet(mem, cur - 1, Area.NEXT)
  ) {
    const slot = cur - 1;
    if (areaGet(mem, slot, Area.CALLER) !== (AreaCaller.RINGBUF as number)) continue;
    const contig = areaGet(mem, slot, Area.CONTIG);
    if (contig === 0) bug(`ring area slot ${slot} is not one contiguous run`);
    const meta = (contig - 1) * PTRS_PER_TABLE;
    if (!freed && Atomics.load(i32, meta + RingMeta.MAGIC) === 0) continue; // freed
    const kaddr = VMALLOC_START + areaGet(mem, slot, Area.START) * PAGE_SIZE;
    const dataPages = areaGet(mem, slot, Area.NR_PAGES) - RINGBUF_META_PAGES;
    rings.push(kernelRingRef(mem, kaddr, contig - 1, dataPages));
  }
  return rings;
}

/** One record header as a walk meets it. */
interface Header {
  /** Data offset of the header. */
  readonly at: number;
  /** Position of the header (mod 2^32). */
  readonly pos: number;
  readonly word: number;
  readonly word1: number;
}

/**
 * Visit the headers from position `from` to `to`; returns null when the records land exactly on
 * `to`, else what is wrong (a header that cannot be one, a record past the end or past `to`).
 */
function walkRecords(
  r: RingRef,
  from: number,
  to: number,
  visit: (h: Header) => void,
): string | null {
  const { i32 } = r.mem;
  const mask = r.size - 1;
  let pos = from;
  while (pos !== to) {
    const at = pos & mask;
    const word = Atomics.load(i32, (r.data + at) >>> 2);
    const word1 = Atomics.load(i32, ((r.data + at) >>> 2) + 1);
    const len = word & RINGBUF_LEN_MASK;
    if (len > r.size - at - RINGBUF_HDR_SZ) return `the record at offset ${at} runs past the end`;
    const step = (len + RINGBUF_HDR_SZ + 7) & ~7;
    if ((to - pos) >>> 0 < step) return `the record at offset ${at} runs past position ${to >>> 0}`;
    visit({ at, pos, word, word1 });
    pos = (pos + step) | 0;
  }
  return null;
}

/**
 * Wait until no ring's reservation lock is held by a thread outside `deadTids` (which
 * {@link reapRings} then releases). A producer holds that lock outside kernel calls, so the stopped
 * world does not wait for it: a holder terminated inside a reservation and not reaped yet would
 * hold it for ever, and the reap that takes it next would wait for ever. False, with nothing
 * changed, when one is still held at `deadline`. Context: recovery, before anything changes.
 */
export function ringLocksFree(mem: PhysMem, deadTids: Set<number>, deadline: number): boolean {
  const { i32 } = mem;
  for (const r of liveRings(mem)) {
    for (;;) {
      const owner = Atomics.load(i32, r.resvLock);
      if (owner === 0 || deadTids.has(owner)) break;
      if (!pauseUntil(i32, r.resvLock, owner, deadline)) return false;
    }
  }
  return true;
}

/**
 * Give back what the dead thread slots held on every ring area for their waits (references, and
 * counts in WAITERS and PRODUCER_WAITERS: their `SLOT_HOLDS` words), then discard their open
 * records in every live ring, release ring locks held by dead tids, and wake every ring's
 * consumer. Returns the kaddrs of rings freed whose last reference was a dead thread's: the caller
 * vfrees them once recovery is over. Context: recovery, the world stopped (producers and
 * consumers outside kernel calls may still run: the walk holds each ring's reservation lock).
 */
export function reapRings(mem: PhysMem, deadSlots: Set<number>, deadTids: Set<number>): number[] {
  const { i32 } = mem;
  const unused: number[] = [];
  for (const r of ringAreas(mem, true)) {
    let refs = 0;
    for (const slot of deadSlots) {
      if (slot >= RING_HOLD_SLOTS) continue;
      const held = Atomics.exchange(i32, r.magic + RingMeta.SLOT_HOLDS + slot, 0);
      refs += held & HOLD_FIELD;
      Atomics.sub(i32, r.waiters, (held >>> RING_HOLD_BITS) & HOLD_FIELD);
      Atomics.sub(i32, r.prodWaiters, (held >>> (2 * RING_HOLD_BITS)) & HOLD_FIELD);
    }
    if (refs > 0 && Atomics.sub(i32, r.refs, refs) === refs) unused.push(r.kaddr);
  }
  for (const r of liveRings(mem)) {
    for (const lock of [r.resvLock, r.consLock]) {
      const owner = Atomics.load(i32, lock);
      if (owner !== 0 && deadTids.has(owner)) Atomics.compareExchange(i32, lock, owner, 0);
    }
    spinLock(mem, r.resvLock);
    // every record before PENDING_POS is committed; the ones after it are intact (no reservation
    // passes PENDING_POS + size) even where the consumer has read them
    walkRecords(r, Atomics.load(i32, r.pendPos), Atomics.load(i32, r.prodPos), (h) => {
      if (!(h.word & RINGBUF_BUSY_BIT) || !deadSlots.has(h.word1 >>> RINGBUF_OWNER_SHIFT)) return;
      const word = (r.data + h.at) >>> 2;
      Atomics.compareExchange(i32, word, h.word, (h.word & RINGBUF_LEN_MASK) | RINGBUF_DISCARD_BIT);
    });
    spinUnlock(mem, r.resvLock);
    // every consumer is woken, not only those a discard unblocks: a producer that died after it
    // published a committed record (an output) and before its wake-up check left a consumer
    // asleep on a record it can take; a needless wake-up only makes a consumer look again
    ringWake(r);
  }
  return unused;
}

/** One field of a `SLOT_HOLDS` word. */
const HOLD_FIELD = (1 << RING_HOLD_BITS) - 1;

function fail(message: string): never {
  bug(`checkInvariants: ${message}`);
}

/** Check one ring: positions, locks, and every header from the older position to the producer's. */
function checkRing(mem: PhysMem, r: RingRef): void {
  const { i32 } = mem;
  const name = `ring 0x${r.kaddr.toString(16)}`;
  const mask = r.size - 1;
  const cons = Atomics.load(i32, r.consPos);
  const prod = Atomics.load(i32, r.prodPos);
  const pend = Atomics.load(i32, r.pendPos);
  if (Atomics.load(i32, r.resvLock) !== 0) fail(`${name}: the reservation lock is held`);
  // (held between the calls of this thread's open read: its cursor is past CONSUMER_POS)
  if (Atomics.load(i32, r.consLock) !== 0 && !readOpenOn(mem, r.consLock))
    fail(`${name}: the consumer lock is held`);
  if ((cons | prod | pend) & 7) fail(`${name}: a position is not 8-byte aligned`);
  if ((prod - cons) >>> 0 > mask)
    fail(`${name}: the producer is a ring or more ahead of the consumer`);
  if ((prod - pend) >>> 0 > mask) fail(`${name}: PENDING_POS is not within a ring of the producer`);
  // from whichever of the consumer and pending positions is older, through the other, to prod
  const consFirst = (prod - cons) >>> 0 >= (prod - pend) >>> 0;
  const [from, via] = consFirst ? [cons, pend] : [pend, cons];
  let passed = from === via || via === prod;
  const problem = walkRecords(r, from, prod, (h) => {
    if (h.pos === via) passed = true;
    if ((h.word1 & RINGBUF_PG_OFF_MASK) !== RINGBUF_META_PAGES + Math.floor(h.at / PAGE_SIZE))
      fail(`${name}: the header at offset ${h.at} has a wrong page offset`);
    if (h.word & RINGBUF_RUN_BIT) checkRun(mem, r, name, h);
    if (!(h.word & RINGBUF_BUSY_BIT)) return;
    if (h.word1 & RINGBUF_SETTLED_BIT)
      fail(`${name}: the record at offset ${h.at} is busy but says it is settled`);
    if ((prod - h.pos) >>> 0 > (prod - pend) >>> 0)
      fail(`${name}: a busy record lies before PENDING_POS`);
    const slot = h.word1 >>> RINGBUF_OWNER_SHIFT;
    const state =
      slot < mem.layout.maxThreads
        ? Atomics.load(i32, threadWord(mem, slot, Thread.STATE))
        : ThreadState.FREE;
    if (state === ThreadState.FREE || state === ThreadState.DEAD)
      fail(
        `${name}: the busy record at offset ${h.at} belongs to thread slot ${slot}, not attached`,
      );
  });
  if (problem !== null) fail(`${name}: ${problem}`);
  if (!passed) fail(`${name}: position ${via >>> 0} is not on a record boundary`);
  // records of the run at CONSUMER_POS consumed: none, or fewer than the run holds (a count for
  // another position counts for nothing: a dead consumer's, stored 0 by the next consume)
  const skip = Atomics.load(i32, r.consSkipPos) === cons ? Atomics.load(i32, r.consSkip) : 0;
  if (skip !== 0) {
    const word = cons === prod ? 0 : Atomics.load(i32, (r.data + (cons & mask)) >>> 2);
    if (!(word & RINGBUF_RUN_BIT))
      fail(`${name}: CONSUMER_SKIP is ${skip} but the record at CONSUMER_POS is no run`);
    const count = Atomics.load(i32, ((r.data + (cons & mask)) >>> 2) + 3);
    if (!(skip > 0 && skip < count))
      fail(`${name}: CONSUMER_SKIP is ${skip}, not within the ${count} records of its run`);
  }
  // what the threads' SLOT_HOLDS words record is in the ring's counts (which also count waits
  // not recorded: through a user mapping, of a slot past RING_HOLD_SLOTS, of a detached thread)
  let refs = 0;
  let consumers = 0;
  let producers = 0;
  for (let slot = 0; slot < Math.min(mem.layout.maxThreads, RING_HOLD_SLOTS); slot++) {
    const word = Atomics.load(i32, r.magic + RingMeta.SLOT_HOLDS + slot);
    refs += word & HOLD_FIELD;
    consumers += (word >>> RING_HOLD_BITS) & HOLD_FIELD;
    producers += (word >>> (2 * RING_HOLD_BITS)) & HOLD_FIELD;
  }
  if (Atomics.load(i32, r.refs) < 1 + refs)
    fail(`${name}: REFS is below the ring's own and the ${refs} its threads' waits hold`);
  if (Atomics.load(i32, r.waiters) < consumers)
    fail(`${name}: WAITERS is below the ${consumers} sleeping consumers its threads record`);
  if (Atomics.load(i32, r.prodWaiters) < producers)
    fail(
      `${name}: PRODUCER_WAITERS is below the ${producers} waiting producers its threads record`,
    );
}

/**
 * Check the run record whose header `h` a walk met: committed (never busy or discarded: the bit is
 * set in the store that commits it) and its descriptor's records filling its bytes exactly.
 */
function checkRun(mem: PhysMem, r: RingRef, name: string, h: Header): void {
  if (h.word & (RINGBUF_BUSY_BIT | RINGBUF_DISCARD_BIT))
    fail(`${name}: the run at offset ${h.at} is busy or discarded`);
  const body = r.data + h.at + RINGBUF_HDR_SZ;
  const len = h.word & RINGBUF_LEN_MASK;
  if (runCount(mem.i32, body, len) < 0) {
    const [sub, n] = [mem.i32[body >>> 2], mem.i32[(body >>> 2) + 1]];
    fail(`${name}: the run at offset ${h.at} says ${n} records of ${sub} bytes in ${len}`);
  }
}

/** Check every live ring. Context: a quiescent kernel (`checkInvariants`). */
export function checkRings(mem: PhysMem): void {
  for (const r of liveRings(mem)) checkRing(mem, r);
}
