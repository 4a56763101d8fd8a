/**
 * Waiting on a ring: the consumer for a wake-up (`ring_buffer__poll`), a producer for room.
 *
 * Kernel counterparts: the ring's wait queue (`rb->waitq`, woken from `bpf_ringbuf_notify`) and
 * `epoll_wait` on the map's fd in libbpf's `ring_buffer__poll`.
 *
 * The consumer waits on `WAKE_SEQ`: when a consume found nothing, it counts itself in `WAITERS`,
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
import { EAGAIN, EINVAL } from './errno.js';
import {
  ringConsume,
  ringGet,
  ringLive,
  ringPut,
  type RingCallback,
  type RingRef,
} from './ringbuf.js';
import { canBlock } from './cpu-relax.js';

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

/** A valid timeout: a number that is not NaN (negative and Infinity mean no limit). */
function timeoutOf(options: unknown): number | null {
  if (typeof options !== 'object' || options === null) return null;
  const t = (options as PollOptions).timeoutMs;
  if (t === undefined) return -1;
  return typeof t === 'number' && !Number.isNaN(t) ? t : null;
}

/** Milliseconds left until `deadline` (Infinity: none). */
function remaining(deadline: number): number {
  return deadline === Infinity ? Infinity : Math.max(0, deadline - Date.now());
}

function deadlineOf(timeoutMs: number): number {
  return timeoutMs < 0 || timeoutMs === Infinity ? Infinity : Date.now() + timeoutMs;
}

/** Wait asynchronously until `i32[index]` is not `value` or `ms` pass, holding the process alive. */
async function sleepAsync(
  i32: Int32Array,
  index: number,
  value: number,
  ms: number,
): Promise<void> {
  const keepAlive = timers.setInterval(() => undefined, MAX_TIMER_MS);
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
    timers.clearInterval(keepAlive);
  }
}

/** `ring_buffer__poll` with `Atomics.waitAsync`. Context: the consumer, any thread. */
export async function pollAsync(
  r: RingRef,
  cb: RingCallback,
  options: PollOptions,
): Promise<number> {
  const timeoutMs = timeoutOf(options);
  if (timeoutMs === null || !ringGet(r)) return -EINVAL;
  const deadline = deadlineOf(timeoutMs);
  const { i32 } = r.mem;
  // the reference keeps a ring freed meanwhile (by this thread, too) in place until the last consume
  try {
    for (;;) {
      // uncounted first: while the consumer finds records, producers skip the wake-up check
      let n = ringConsume(r, cb);
      if (n !== 0 || remaining(deadline) === 0) return n;
      Atomics.add(i32, r.waiters, 1);
      try {
        const seq = Atomics.load(i32, r.wakeSeq);
        n = ringConsume(r, cb); // the last look, counted in WAITERS: a commit after it wakes us
        const left = remaining(deadline);
        if (n !== 0 || left === 0) return n;
        await sleepAsync(i32, r.wakeSeq, seq, left);
        // woken: as Linux, the consume after the wait decides (the fallback's tick goes on waiting)
        n = ringConsume(r, cb);
        if (n !== 0 || waitAsync !== undefined || remaining(deadline) === 0) return n;
      } finally {
        Atomics.sub(i32, r.waiters, 1);
      }
    }
  } finally {
    ringPut(r);
  }
}

/** `ring_buffer__poll` with `Atomics.wait`. Context: the consumer, a thread that may block. */
export function pollSync(r: RingRef, cb: RingCallback, options: PollOptions): number {
  const timeoutMs = timeoutOf(options);
  if (timeoutMs === null || !ringGet(r)) return -EINVAL;
  const { i32 } = r.mem;
  let counted = false;
  try {
    const n = ringConsume(r, cb);
    if (n !== 0 || timeoutMs === 0) return n;
    if (!canBlock) return -EAGAIN;
    Atomics.add(i32, r.waiters, 1);
    counted = true;
    const seq = Atomics.load(i32, r.wakeSeq);
    const again = ringConsume(r, cb); // the last look, counted: a commit after it wakes us
    if (again !== 0) return again;
    Atomics.wait(i32, r.wakeSeq, seq, timeoutMs < 0 ? Infinity : timeoutMs);
    return ringConsume(r, cb);
  } finally {
    if (counted) Atomics.sub(i32, r.waiters, 1);
    ringPut(r);
  }
}

/**
 * Wait for room (back-pressure): call `retry` after each move of the consumer position until it
 * returns true or `timeoutMs` passes (negative: no limit). Returns at once where blocking is not
 * allowed. Context: a producer, a thread that may block.
 */
export function waitForRoom(r: RingRef, timeoutMs: unknown, retry: () => boolean): void {
  if (!canBlock || typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || !ringGet(r)) return;
  const deadline = deadlineOf(timeoutMs);
  const { i32 } = r.mem;
  try {
    for (;;) {
      const left = remaining(deadline);
      if (left === 0 || !ringLive(r)) return;
      Atomics.add(i32, r.prodWaiters, 1);
      try {
        const cons = Atomics.load(i32, r.consPos);
        if (retry()) return;
        Atomics.wait(i32, r.consPos, cons, left);
        if (retry()) return;
      } finally {
        Atomics.sub(i32, r.prodWaiters, 1);
      }
    }
  } finally {
    ringPut(r);
  }
}
