/**
 * The format of the dispatch area: the submission and completion queues through which the pool
 * hands tasks to its threads with no `postMessage` per task. The one home of this format; the
 * main thread (`dispatch.ts`) and the pool threads (`service.ts`) both import it and nothing else
 * of each other.
 *
 * Kernel counterpart: io_uring's shared rings (`io_uring/io_uring.c`, `struct io_rings`): a
 * submission queue of fixed-size entries (SQE) that the submitter fills and publishes by moving the
 * tail, a completion queue (CQE) that the other side fills the same way, head and tail indexes
 * read and written with acquire/release (here: `Atomics`), and `IORING_SQ_NEED_WAKEUP`, the flag
 * by which a polling thread that went to sleep asks to be woken.
 *
 * One vmalloc area (physically contiguous, seen through one typed array per kind of word), made by
 * the pool and never mapped into a user process:
 *
 * ```
 *  ┌──────────────┬─────────────────────┬────────────── ring 0 ──────────────┬── ring 1 … ─┐
 *  │ header       │ registry            │ ctl │ claims │ SQEs │ CQEs │ data  │             │
 *  │ 64 bytes     │ REGISTRY_BYTES      │ 64  │ 4 × N  │ 8×SQE_WORDS×N │8×CQE_WORDS×N│ DATA_BYTES × N │
 *  └──────────────┴─────────────────────┴─────┴────────┴──────┴──────┴───────┴─────────────┘
 * ```
 *
 * There is one ring per pool thread (at most Piscina's `maxThreads`): a single submitter (the
 * pool's owner thread) and a single consumer (the thread whose service loop runs on the ring), so
 * no index needs a compare-and-exchange. The thread takes entries in order and posts exactly one
 * CQE per SQE, in the same order, at the same index: CQE `i` answers SQE `i`, and an entry is
 * reused only after its CQE has been reaped, so the completion queue can never overflow.
 *
 * Who touches which word (every shared word is written either by Atomics or before it is
 * published by an Atomics store, as said next to it):
 *
 * | word | written by | read by | how |
 * | --- | --- | --- | --- |
 * | `H_DOORBELL` | threads (`Atomics.add` after each CQE) | owner (`Atomics.load`, `waitAsync`) | Atomics |
 * | `H_OWNER_WAITING` | owner (1 before it sleeps, 0 after) | threads (notify only when 1) | Atomics |
 * | registry bytes | owner, before the SQE that names them is published | threads | published by `C_SQ_TAIL` |
 * | `C_SQ_TAIL` | owner | thread | Atomics (publishes the SQE, its data and its claim word) |
 * | `C_SQ_HEAD` | thread (entry taken) | owner (what is running) | Atomics |
 * | `C_CQ_TAIL` | thread (publishes the CQE and its data) | owner | Atomics |
 * | `C_NEED_WAKEUP` | thread (1 before sleeping), owner (0 before notify) | both | Atomics |
 * | `C_STOP` | owner (1 + notify) | thread | Atomics |
 * | `C_MM` | owner, before the service starts | thread | before sharing |
 * | `C_THREAD` | thread (its `threadId` + 1 at start) | owner | Atomics |
 * | claim word of entry i | owner (ticket; cancel: CAS ticket → 0), thread (CAS ticket → claimed; 0 when done) | both | Atomics |
 * | SQE i, its data | owner, before `C_SQ_TAIL` passes i | thread, after | published by `C_SQ_TAIL` |
 * | CQE i, its data | thread, before `C_CQ_TAIL` passes i | owner, after | published by `C_CQ_TAIL` |
 *
 * @module
 */
import type { MessagePort } from 'node:worker_threads';

/** Entries of each submission queue (and of its completion queue). A power of two. */
export const SQ_ENTRIES = 64;
/** Bytes of data per entry: the serialized argument going in, the serialized result coming out. */
export const DATA_BYTES = 2048;
/** Ranges an SQE carries itself; a task with more sends them through the ring's port. */
export const SQE_MAX_RANGES = 4;
/** Bytes of the registry of task modules and export names. */
export const REGISTRY_BYTES = 16384;

/** Header word: completions posted by every thread (wraps); the owner waits on it. */
export const H_DOORBELL = 0;
/** Header word: 1 while the owner sleeps on `H_DOORBELL`. */
export const H_OWNER_WAITING = 1;
/** Bytes of the header. */
export const HEADER_BYTES = 64;

/** Ring control word: next SQE the thread takes (count, not masked). */
export const C_SQ_HEAD = 0;
/** Ring control word: next SQE the owner fills (count, not masked). */
export const C_SQ_TAIL = 1;
/** Ring control word: next CQE the thread posts (count, not masked). */
export const C_CQ_TAIL = 2;
/** Ring control word: 1 while the thread sleeps (or is about to): notify after a submission. */
export const C_NEED_WAKEUP = 3;
/** Ring control word: 1 asks the thread to leave the ring once it is empty. */
export const C_STOP = 4;
/** Ring control word: id of the address space the thread maps its tasks' areas into. */
export const C_MM = 5;
/** Ring control word: `threadId + 1` of the thread on the ring, 0 before it starts. */
export const C_THREAD = 6;
/** Bytes of a ring's control block. */
export const CTL_BYTES = 64;

/** SQE word: registry offset of the task's module and export name. */
export const E_HANDLER = 0;
/** SQE word: `SQE_F_*` flags. */
export const E_FLAGS = 1;
/** SQE word: the ticket the entry's claim word holds while the entry waits. */
export const E_TICKET = 2;
/** SQE word: the address space to run in (`SQE_F_MM_GIVEN`), else unused. */
export const E_MM = 3;
/** SQE word: `ARG_*`, how the argument travels. */
export const E_ARG_KIND = 4;
/** SQE word: the argument (`ARG_NUMBER`) or its serialized length (`ARG_DATA`). */
export const E_ARG = 5;
/** SQE word: the number of ranges (inline unless `ARG_PORT`). */
export const E_NR_RANGES = 6;
/** SQE word: the first range; each is `RANGE_WORDS` words: address, length, prot. */
export const E_RANGES = 8;
/**
 * A range's length or prot in an SQE that the caller did not give (the rest of the area; read +
 * write). Ranges sent through the port keep `undefined` instead.
 */
export const RANGE_NOT_GIVEN = -1;
/** Words per range in an SQE. */
export const RANGE_WORDS = 3;
/** Float64 words per SQE. */
export const SQE_WORDS: number = E_RANGES + RANGE_WORDS * SQE_MAX_RANGES;

/**
 * SQE flag: the ranges are mappings already made in the address space `E_MM` (a long-lived
 * process); without it, they are areas (`kaddr`, length or -1 for the rest, prot or -1 for
 * read + write) that the thread maps into its own address space for the task and unmaps after.
 */
export const SQE_F_MM_GIVEN = 1;

/** How an argument or result travels: it is `undefined`. */
export const ARG_UNDEFINED = 0;
/** How an argument or result travels: a number, in the entry itself. */
export const ARG_NUMBER = 1;
/** How an argument or result travels: `v8.serialize`d into the entry's data. */
export const ARG_DATA = 2;
/**
 * How an argument or result travels: structured-cloned through the ring's `MessagePort`
 * (a `SharedArrayBuffer`, a transferable, or too large for the entry's data); the entry is
 * published after the message is posted, so the other side reads it with `receiveMessageOnPort`.
 */
export const ARG_PORT = 3;

/** CQE word: `RES_*`. */
export const Q_KIND = 0;
/** CQE word: the result (`ARG_NUMBER`) or its serialized length (`ARG_DATA`). */
export const Q_VALUE = 1;
/** CQE word: how the value travels (`ARG_*`). */
export const Q_HOW = 2;
/** Float64 words per CQE. */
export const CQE_WORDS = 4;

/** CQE kind: the task returned a value. */
export const RES_OK = 1;
/** CQE kind: the task threw (the value is a `WireError`). */
export const RES_ERROR = 2;
/** CQE kind: the entry was cancelled before the thread claimed it; nothing ran. */
export const RES_CANCELLED = 3;

/** Bytes of one ring. */
export const RING_BYTES: number =
  CTL_BYTES +
  4 * SQ_ENTRIES +
  8 * SQE_WORDS * SQ_ENTRIES +
  8 * CQE_WORDS * SQ_ENTRIES +
  DATA_BYTES * SQ_ENTRIES;

/** Byte offset of the registry. */
export const REGISTRY_OFFSET: number = HEADER_BYTES;
/** Byte offset of ring 0. */
export const RINGS_OFFSET: number = HEADER_BYTES + REGISTRY_BYTES;

/** Bytes of a dispatch area for `rings` rings. Context: any; never throws. */
export function dispatchAreaBytes(rings: number): number {
  return RINGS_OFFSET + rings * RING_BYTES;
}

/** What the thread entering ring `ring` receives, once, through Piscina. */
export interface ServiceMessage {
  /** kaddr of the dispatch area. */
  readonly area: number;
  /** Bytes of the dispatch area. */
  readonly bytes: number;
  /** The ring's index. */
  readonly ring: number;
  /** The ring's port: arguments and results that do not travel in shared memory. */
  readonly port: MessagePort;
}

/** Typed views of one ring (both sides build the same). */
export interface RingViews {
  readonly ctl: Int32Array;
  readonly claims: Int32Array;
  readonly sqes: Float64Array;
  readonly cqes: Float64Array;
  /** The data of all entries; entry i's is `[i * DATA_BYTES, (i + 1) * DATA_BYTES)`. */
  readonly data: Uint8Array;
}

/**
 * Views of ring `ring` inside the dispatch area seen as `bytes` (one typed array over the
 * whole area). Context: any thread; never throws for a ring inside the area.
 */
export function ringViews(bytes: Uint8Array, ring: number): RingViews {
  const { buffer } = bytes;
  let at = bytes.byteOffset + RINGS_OFFSET + ring * RING_BYTES;
  const ctl = new Int32Array(buffer, at, CTL_BYTES / 4);
  at += CTL_BYTES;
  const claims = new Int32Array(buffer, at, SQ_ENTRIES);
  at += 4 * SQ_ENTRIES;
  const sqes = new Float64Array(buffer, at, SQE_WORDS * SQ_ENTRIES);
  at += 8 * SQE_WORDS * SQ_ENTRIES;
  const cqes = new Float64Array(buffer, at, CQE_WORDS * SQ_ENTRIES);
  at += 8 * CQE_WORDS * SQ_ENTRIES;
  const data = new Uint8Array(buffer, at, DATA_BYTES * SQ_ENTRIES);
  return { ctl, claims, sqes, cqes, data };
}

/** The header words of the dispatch area. Context: any thread. */
export function headerView(bytes: Uint8Array): Int32Array {
  return new Int32Array(bytes.buffer, bytes.byteOffset, HEADER_BYTES / 4);
}

/**
 * Registry entry at byte `offset`: `[u32 length][UTF-8 of "filename\nname"]`, 4-byte aligned.
 * Returns `[filename, name]` (name `''` for the default export). Context: any thread.
 */
export function readRegistry(bytes: Uint8Array, offset: number): [string, string] {
  const at = bytes.byteOffset + REGISTRY_OFFSET + offset;
  const length = new Uint32Array(bytes.buffer, at, 1)[0] ?? 0;
  // TextDecoder refuses views of shared memory: copy the few bytes first
  const text = new TextDecoder().decode(new Uint8Array(bytes.buffer, at + 4, length).slice());
  const cut = text.indexOf('\n');
  return [text.slice(0, cut), text.slice(cut + 1)];
}

/**
 * Append `filename` + `name` to the registry whose used length is `used`; returns
 * `[offset, new used length]`, or null when the registry is full. Owner thread only, before the
 * SQE that names the entry is published.
 */
export function writeRegistry(
  bytes: Uint8Array,
  used: number,
  filename: string,
  name: string,
): [number, number] | null {
  const encoded = new TextEncoder().encode(`${filename}\n${name}`);
  const size = (4 + encoded.length + 3) & ~3;
  if (used + size > REGISTRY_BYTES) return null;
  const at = bytes.byteOffset + REGISTRY_OFFSET + used;
  new Uint32Array(bytes.buffer, at, 1)[0] = encoded.length;
  new Uint8Array(bytes.buffer, at + 4, encoded.length).set(encoded);
  return [used, used + size];
}

/** `Atomics.pause` where the runtime has it (Node 24+), else nothing: the body of a spin loop. */
export const cpuRelax: () => void = (() => {
  const pause = (Atomics as unknown as { pause?: () => void }).pause;
  return typeof pause === 'function'
    ? () => {
        pause.call(Atomics);
      }
    : () => undefined;
})();

/**
 * Whether to poll before sleeping: polling a few tens of microseconds catches the other side's
 * next move without a wake-up, when both sides have a core each. When cores are short (more
 * runnable threads than cores), a poller only delays the thread it waits for. The policy judges by
 * how long each wait really lasted, polled or slept: waits that end within the polling window say
 * polling pays (even when the other side was asleep and slow to answer — it polls too once this
 * side does); long waits say it does not, and polling stops, to be probed again now and then.
 */
export class SpinPolicy {
  readonly #windowMs: number;
  #credit = 4;
  #probe = 0;

  /** @param windowMs - how long a poll lasts. */
  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  /** Poll this time? Context: the thread that owns the policy. */
  get spin(): boolean {
    return this.#credit > 0 || (++this.#probe & 15) === 0;
  }

  /** A wait ended after `elapsedMs` (from its start to the event it waited for). */
  waited(elapsedMs: number): void {
    this.#credit =
      elapsedMs <= 2 * this.#windowMs
        ? Math.min(8, this.#credit + 2)
        : Math.max(0, this.#credit - 1);
  }
}
