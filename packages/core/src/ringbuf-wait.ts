/**
 * Waiting on a ring: the consumer for a wake-up (`ring_buffer__poll`), a producer for room.
 *
 * Kernel counterparts: the ring's wait queue (`rb->waitq`, woken from `bpf_ringbuf_notify`) and
 * `epoll_wait` on the map's fd in libbpf's `ring_buffer__poll`.
 *
 * A consumer that found nothing first busy-polls `PRODUCER_POS` for up to 50 µs (Linux's
 * `busy_poll`), uncounted, so a stream whose records come microseconds apart needs no sleep and no
 * wake-up. Then it waits on `WAKE_SEQ`: it counts itself in `WAITERS`,
 * reads `WAKE_SEQ`, consumes once more (the last look, which also stores `CONSUMER_POS`), and only
 * if nothing was ready waits for `WAKE_SEQ` to move. A committing producer reads `WAITERS` after
 * its commit and, when a consumer may sleep, wakes it if `CONSUMER_POS` is at its record: it bumps
 * `WAKE_SEQ` after its commit, so a commit the last look missed has moved the word and the wait
 * returns at once (every access is a sequentially consistent `Atomics` operation). A consumer that
 * is busy is not counted, so producers skip the wake-up check while it keeps up. Producers wait
 * for room on `CONSUMER_POS` the same way, counted in `PRODUCER_WAITERS`.
 *
 * On the main thread `Atomics.waitAsync` waits without blocking; a pending `waitAsync` does not
 * keep Node's event loop alive (nodejs/node#61941), so a timer is held while it waits. Where
 * `Atomics.waitAsync` is missing (older browsers) the consumer re-checks every few milliseconds.
 *
 * @module
 */
import { EAGAIN, EBUSY, EINVAL } from './errno.js';
import {
  ringConsume,
  ringHold,
  ringReadable,
  ringLive,
  ringRelease,
  ringWaiting,
  type RingHold,
  type RingCallback,
  type RingSampleCallback,
  type RingRef,
} from './ringbuf.js';
import { canBlock, cpuRelax, deadlineAfter, validTimeout } from './cpu-relax.js';
import type { PhysMem } from './phys-mem.js';

declare const performance: { now(): number };

/** Options of `poll`/`pollSync`. */
export interface PollOptions {
  /** Milliseconds to wait when nothing is ready: 0 does not wait, negative (default -1) has no limit. */
  readonly timeoutMs?: number;
}

/** `Atomics.waitAsync` (ES2024), where the runtime has it. */
type WaitAsync = (
  i32: Int32Array,
  index: number,
  value: number,
  timeoutMs?: number,
) => { async: false; value: string } | { async: true; value: Promise<string> };
const waitAsync = (Atomics as unknown as { waitAsync?: WaitAsync }).waitAsync;

/** The host's timers (Node and browsers both have them; core has no `node:` imports). */
interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(id: unknown): void;
}
const timers = globalThis as unknown as Timers;
/** The longest delay a host timer takes (2^31 - 1 ms). */
const MAX_TIMER_MS = 0x7fffffff;
/** How often a consumer re-checks where `Atomics.waitAsync` is missing. */
const FALLBACK_POLL_MS = 4;

/**
 * How long a consumer that found the ring empty watches `PRODUCER_POS` before it sleeps (Linux's
 * `busy_poll`, 50 µs by default). A sleep costs the consumer a wake-up through the event loop or
 * the futex, and each committing producer an `Atomics.notify`; while records stream, the next one
 * is usually a few hundred nanoseconds away.
 */
const BUSY_POLL_MS = 0.05;

/**
 * A sleep that a record ends within this many milliseconds turns busy polling back on: the
 * records still stream, only further apart than a busy poll waits. (A wake-up alone takes about
 * 0.1 to 0.5 ms through the event loop on a 2-vCPU virtual machine, and a sleep that ends within
 * it still says the stream goes on; with 0.2 ms, four busy polls, a stream woken that slowly
 * never polled again and slept at every gap: bench fresh-worker stream ratio medians 0.56–0.81
 * before, 0.70–0.88 after, four alternating processes of five runs each.)
 */
const BUSY_POLL_AGAIN_MS = 1;

/**
 * When a consumer busy-polls (one per ring handle and thread; the handle's {@link RingRef} is the
 * key). It stops polling after a poll that saw nothing, and polls again after a sleep that a
 * record ended within {@link BUSY_POLL_AGAIN_MS}: a stream that pauses costs one wasted poll, a
 * quiet ring none.
 */
const busyPolls = new WeakMap<RingRef, { on: boolean }>();

function busyPollState(r: RingRef): { on: boolean } {
  let state = busyPolls.get(r);
  if (state === undefined) busyPolls.set(r, (state = { on: true }));
  return state;
}

/**
 * What a wait does each time it looks at the ring: a consume (`poll`), or a check that a record is
 * ready (`waitReadable`). Returns what it found: a count or an errno, 0 for nothing.
 */
type Look = () => number;

/**
 * Watch `PRODUCER_POS` for up to {@link BUSY_POLL_MS} (never past `deadline`) and `look` as soon
 * as a record may be committed. Returns what `look` returned, 0 when nothing came.
 * Context: the consumer; reads the positions with `Atomics.load` only.
 */
function busyPoll(r: RingRef, look: Look, deadline: number): number {
  const state = busyPollState(r);
  if (!state.on) return 0;
  const { i32 } = r.mem;
  const end = performance.now() + Math.min(BUSY_POLL_MS, remaining(deadline));
  for (let i = 1; ; i++) {
    // a reservation moves PRODUCER_POS before its commit: consume decides whether it is ready
    if (Atomics.load(i32, r.prodPos) !== Atomics.load(i32, r.consPos)) {
      const n = look();
      if (n !== 0) return n;
    }
    if ((i & 31) === 0 && performance.now() >= end) break;
    cpuRelax();
  }
  state.on = false;
  return 0;
}

/** After a sleep of `sleptMs`: busy-poll again when a record ended it soon. */
function judgeSleep(r: RingRef, sleptMs: number): void {
  if (busyPollAfterSleep(sleptMs)) busyPollState(r).on = true;
}

/** Whether a consumer busy-polls again after a sleep of `sleptMs` (see {@link BUSY_POLL_AGAIN_MS}). */
export function busyPollAfterSleep(sleptMs: number): boolean {
  return sleptMs < BUSY_POLL_AGAIN_MS;
}

/** True for valid `poll` options (see {@link PollOptions}). */
export function validPollOptions(options: unknown): boolean {
  return timeoutOf(options) !== null;
}

/** The timeout of `poll` options, or null when they are not valid. */
function timeoutOf(options: unknown): number | null {
  if (typeof options !== 'object' || options === null) return null;
  const t = (options as PollOptions).timeoutMs;
  if (t === undefined) return -1;
  return validTimeout(t) ? t : null;
}

/** Milliseconds left until `deadline` (Infinity: none). */
function remaining(deadline: number): number {
  return deadline === Infinity ? Infinity : Math.max(0, deadline - Date.now());
}

function deadlineOf(timeoutMs: number): number {
  return timeoutMs < 0 || timeoutMs === Infinity ? Infinity : Date.now() + timeoutMs;
}

/**
 * Wait asynchronously until `i32[index]` is not `value` or `ms` pass, holding the process alive
 * unless `hold` is false.
 */
async function sleepAsync(
  i32: Int32Array,
  index: number,
  value: number,
  ms: number,
  hold = true,
): Promise<void> {
  const keepAlive = hold ? timers.setInterval(() => undefined, MAX_TIMER_MS) : null;
  try {
    if (waitAsync === undefined) {
      await new Promise<void>((resolve) => {
        timers.setTimeout(resolve, Math.min(ms, FALLBACK_POLL_MS));
      });
      return;
    }
    const result = waitAsync(i32, index, value, ms === Infinity ? undefined : ms);
    if (result.async) await result.value;
  } finally {
    if (keepAlive !== null) timers.clearInterval(keepAlive);
  }
}

/** How long a batch's retry waits for the consumer before it looks at the ring again. */
const RETRY_MS = 50;

/** A retry waiting for a ring's consumer to move (see {@link whenConsumerMoves}). */
interface Retry {
  readonly h: RingHold;
  settled: boolean;
}

/** The retries this thread has waiting (module state: this thread's own). */
const retries = new Set<Retry>();

/** Let a retry go: its count in PRODUCER_WAITERS and its reference on the ring. */
function settle(retry: Retry): boolean {
  if (retry.settled) return false;
  retry.settled = true;
  retries.delete(retry);
  ringWaiting(retry.h, retry.h.r.prodWaiters, -1);
  ringRelease(retry.h);
  return true;
}

/**
 * Call `then` once, when the consumer position of `r` moves, after {@link RETRY_MS}, or when the
 * ring is freed. With `hold`, a timer holds the thread alive meanwhile (a pending
 * `Atomics.waitAsync` does not keep Node's event loop alive). Counted in `PRODUCER_WAITERS` while
 * it waits, as a producer waiting for room, so the consumer notifies it. Context: a producer's
 * thread (a batch that found the ring full at its publish), never blocks.
 */
export function whenConsumerMoves(r: RingRef, hold: boolean, then: () => void): void {
  const h = ringHold(r);
  if (h === null) {
    then();
    return;
  }
  const { i32 } = r.mem;
  const retry: Retry = { h, settled: false };
  retries.add(retry);
  ringWaiting(h, r.prodWaiters, 1);
  void sleepAsync(i32, r.consPos, Atomics.load(i32, r.consPos), RETRY_MS, hold).then(() => {
    if (settle(retry)) then();
  });
}

/**
 * Let go of every retry this thread has waiting on `mem`'s rings, without calling it (the thread
 * detaches: its batches are gone, and a reference dropped after the detach could not free a ring).
 * Context: this thread, attached.
 */
export function cancelRetries(mem: PhysMem): void {
  for (const retry of [...retries]) if (retry.h.r.mem === mem) settle(retry);
}

/** `ring_buffer__poll` with `Atomics.waitAsync`. Context: the consumer, any thread. */
export function pollAsync(
  r: RingRef,
  cb: RingCallback | RingSampleCallback,
  at: boolean,
  options: PollOptions,
): Promise<number> {
  return lookAsync(r, () => ringConsume(r, cb, at), options);
}

/** `ring_buffer__poll` with `Atomics.wait`. Context: the consumer, a thread that may block. */
export function pollSync(
  r: RingRef,
  cb: RingCallback | RingSampleCallback,
  at: boolean,
  options: PollOptions,
): number {
  return lookSync(r, () => ringConsume(r, cb, at), options);
}

/**
 * 1 when a record is ready for the consumer ({@link ringReadable}), else 0; -EBUSY while another
 * consumer holds the ring (its reads are ahead of `CONSUMER_POS`: only it may read on), as
 * `ringConsume` answers; -EINVAL for a freed ring.
 */
function readable(r: RingRef): number {
  if (!ringLive(r)) return -EINVAL;
  if (Atomics.load(r.mem.i32, r.consLock) !== 0) return -EBUSY;
  return ringReadable(r) ? 1 : 0;
}

/**
 * `epoll_wait` on the ring without consuming (`waitReadable`): resolves to 1 once a record is
 * ready at `CONSUMER_POS`, 0 on timeout, as {@link pollAsync} waits. Context: the consumer (whose
 * read, if one was open, ended: `CONSUMER_POS` is where it stopped).
 */
export function readableAsync(r: RingRef, options: PollOptions): Promise<number> {
  return lookAsync(r, () => readable(r), options);
}

/** {@link readableAsync} with `Atomics.wait`. Context: the consumer, a thread that may block. */
export function readableSync(r: RingRef, options: PollOptions): number {
  return lookSync(r, () => readable(r), options);
}

/**
 * The wait of `poll` and `waitReadable` with `Atomics.waitAsync`: `look`, busy-poll, then sleep on
 * `WAKE_SEQ` counted in `WAITERS`. Context: the consumer, any thread.
 */
async function lookAsync(r: RingRef, look: Look, options: PollOptions): Promise<number> {
  const timeoutMs = timeoutOf(options);
  const h = timeoutMs === null ? null : ringHold(r);
  if (timeoutMs === null || h === null) return -EINVAL;
  const deadline = deadlineOf(timeoutMs);
  const { i32 } = r.mem;
  // the reference keeps a ring freed meanwhile (by this thread, too) in place until the last consume
  try {
    for (;;) {
      // uncounted first: while the consumer finds records, producers skip the wake-up check
      let n = look();
      if (n !== 0 || remaining(deadline) === 0) return n;
      n = busyPoll(r, look, deadline);
      if (n !== 0) return n;
      ringWaiting(h, r.waiters, 1);
      try {
        const seq = Atomics.load(i32, r.wakeSeq);
        n = look(); // the last look, counted in WAITERS: a commit after it wakes us
        const left = remaining(deadline);
        if (n !== 0 || left === 0) return n;
        const slept = performance.now();
        await sleepAsync(i32, r.wakeSeq, seq, left);
        judgeSleep(r, performance.now() - slept);
        // woken: as Linux, the consume after the wait decides (the fallback's tick goes on waiting)
        n = look();
        if (n !== 0 || waitAsync !== undefined || remaining(deadline) === 0) return n;
      } finally {
        ringWaiting(h, r.waiters, -1);
      }
    }
  } finally {
    ringRelease(h);
  }
}

/** {@link lookAsync} with `Atomics.wait`. Context: the consumer, a thread that may block. */
function lookSync(r: RingRef, look: Look, options: PollOptions): number {
  const timeoutMs = timeoutOf(options);
  const h = timeoutMs === null ? null : ringHold(r);
  if (timeoutMs === null || h === null) return -EINVAL;
  const { i32 } = r.mem;
  let counted = false;
  try {
    const n = look();
    if (n !== 0 || timeoutMs === 0) return n;
    if (!canBlock) return -EAGAIN;
    const polled = busyPoll(r, look, deadlineOf(timeoutMs));
    if (polled !== 0) return polled;
    ringWaiting(h, r.waiters, 1);
    counted = true;
    const seq = Atomics.load(i32, r.wakeSeq);
    const again = look(); // the last look, counted: a commit after it wakes us
    if (again !== 0) return again;
    const slept = performance.now();
    Atomics.wait(i32, r.wakeSeq, seq, timeoutMs < 0 ? Infinity : timeoutMs);
    judgeSleep(r, performance.now() - slept);
    return look();
  } finally {
    if (counted) ringWaiting(h, r.waiters, -1);
    ringRelease(h);
  }
}

/**
 * How long a producer that waits for room re-checks the consumer position on its own before it
 * counts itself in `PRODUCER_WAITERS` and sleeps until the consumer notifies it (ms), and how long
 * each of those sleeps lasts (ms). While the consumer keeps moving, a producer that finds the ring
 * full gets its room within a fraction of a millisecond, and a consumer that had to notify it paid
 * for the wake-up: on the 2-vCPU machine an `Atomics.notify` that wakes a thread took the
 * consumer 50 to 150 µs (a fresh worker streaming 2 M records of 24 bytes through a 1 MiB ring:
 * about 240 notifies, 12 to 36 ms of the consumer's 70 to 145 ms, timed around each notify). A
 * hand-written ring's producer sleeps in such slices for the same reason.
 */
const ROOM_POLL_MS = 2;
const ROOM_POLL_SLICE_MS = 0.05;

/**
 * Wait for room (back-pressure): call `retry` after each move of the consumer position until it
 * returns true or `timeoutMs` passes (negative: no limit). For up to {@link ROOM_POLL_MS} it looks
 * again every {@link ROOM_POLL_SLICE_MS} uncounted (so the consumer owes it no notify); then it
 * counts itself in `PRODUCER_WAITERS` and sleeps until the consumer stores its position. Returns at
 * once where blocking is not allowed. Context: a producer, a thread that may block.
 */
export function waitForRoom(r: RingRef, timeoutMs: unknown, retry: () => boolean): void {
  if (!canBlock || !validTimeout(timeoutMs)) return;
  const h = ringHold(r);
  if (h === null) return;
  const deadline = deadlineAfter(timeoutMs);
  const { i32 } = r.mem;
  try {
    const polled = Math.min(deadline, performance.now() + ROOM_POLL_MS);
    for (let now = performance.now(); now < polled; now = performance.now()) {
      if (!ringLive(r)) return;
      const cons = Atomics.load(i32, r.consPos);
      if (retry()) return;
      Atomics.wait(i32, r.consPos, cons, Math.min(ROOM_POLL_SLICE_MS, polled - now));
    }
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0 || !ringLive(r)) return;
      ringWaiting(h, r.prodWaiters, 1);
      try {
        const cons = Atomics.load(i32, r.consPos);
        if (retry()) return;
        Atomics.wait(i32, r.consPos, cons, left);
        if (retry()) return;
      } finally {
        ringWaiting(h, r.prodWaiters, -1);
      }
    }
  } finally {
    ringRelease(h);
  }
}
