/**
 * The worker side of `@sabvm/workers`: what a task module imports (`@sabvm/workers/worker`).
 *
 * Kernel counterpart: a user process's view of the world — it finds its address space already
 * set up by its parent and touches memory through it; a bad access is a `SIGSEGV`.
 *
 * ```ts
 * // task.ts, compiled to task.js and given to SabvmPool as `filename`
 * import { defineTask } from '@sabvm/workers/worker';
 * export default defineTask(({ ranges }) => {
 *   for (const seg of ranges[0].segments({ write: true })) seg.fill(7);
 * });
 * ```
 *
 * Worker-thread code only; it never imports the main-thread modules (`pool.ts`, `process.ts`).
 *
 * @module
 */
import { inspect } from 'node:util';
import { threadId, workerData } from 'node:worker_threads';
import { BPF_RB_RING_SIZE, Kernel, type AddressSpace, type RingBuf } from '@sabvm/core';
import {
  claimedBy,
  RANGE_LENGTH,
  RANGE_PROT,
  RANGE_REGS,
  RANGE_UADDR,
  REG_MM,
  REG_NR_RANGES,
  REG_RANGES,
  REG_SLOT,
  REG_TICKET,
  SLOT_IDLE,
  WORKER_DATA_KEY,
  type PoolWorkerData,
  type TaskMessage,
  type TaskReply,
  type WireError,
} from './protocol.js';

/** `PROT_WRITE`, as in `@sabvm/core` (kept local: this module needs no other constant). */
const PROT_WRITE_BIT = 2;

/** One range the task received: a mapping in its address space. */
export interface MappedRange {
  /** User address of the first byte. */
  readonly uaddr: number;
  /** Bytes in the range. */
  readonly length: number;
  /** `PROT_*` of the mapping. */
  readonly prot: number;
  /** Whether the mapping allows writes (`PROT_WRITE`). */
  readonly writable: boolean;
  /**
   * Zero-copy views into the frames of `[uaddr + offset, uaddr + offset + length)`, one per
   * physically contiguous run, in address order (`mm.segments`). Pass `{ write: true }` to write
   * through them. Throws `SegmentationFault` (`SEGV_ACCERR` for `write` on a read-only mapping,
   * `SEGV_MAPERR` where nothing is mapped any more), `RangeError` for a sub-range outside the
   * range.
   * Context: the task's thread; lock-free page-table walk.
   */
  segments(options?: {
    readonly write?: boolean;
    readonly offset?: number;
    readonly length?: number;
  }): Uint8Array[];
}

/** What a task function receives. */
export interface TaskContext<A = unknown> {
  /** This thread's kernel (attached once per thread). */
  readonly kernel: Kernel;
  /** The task's address space. */
  readonly mm: AddressSpace;
  /** The mapped ranges, in the order the caller gave them. */
  readonly ranges: readonly MappedRange[];
  /** The caller's `arg`. */
  readonly arg: A;
}

/** A task function: runs in a pool thread with its address space and ranges. */
export type TaskFunction<A = unknown, R = unknown> = (context: TaskContext<A>) => R | Promise<R>;

/** The function Piscina calls with each task message (what `defineTask` returns). */
export type TaskHandler<R = unknown> = (message: TaskMessage) => Promise<TaskReply<R>>;

interface ThreadState {
  readonly kernel: Kernel;
  readonly slots: Int32Array;
  readonly user: unknown;
  /** kaddr of the pool's ring, or -1. */
  readonly ring: number;
  /** Rings this thread opened, by kaddr: one handle each. */
  readonly rings: Map<number, RingBuf>;
}

let thread: ThreadState | undefined;

function threadState(): ThreadState {
  if (thread !== undefined) return thread;
  const data = (workerData as Record<string, PoolWorkerData | undefined> | null | undefined)?.[
    WORKER_DATA_KEY
  ];
  if (data === undefined) {
    throw new Error(
      '@sabvm/workers/worker: this thread was not started by a SabvmPool (no kernel in workerData)',
    );
  }
  thread = {
    kernel: Kernel.attach(data.handle, { threadId }),
    slots: new Int32Array(data.slots),
    user: data.user,
    ring: data.ring,
    rings: new Map(),
  };
  return thread;
}

/**
 * The kernel this pool thread attached (once, from `workerData`, under its `threadId` so that the
 * pool can reap the attachment when the thread exits). Throws `Error` outside a `SabvmPool`
 * thread, and `Kernel.attach`'s errors (a foreign buffer, no free thread slot).
 * Context: a pool thread.
 */
export function currentKernel(): Kernel {
  return threadState().kernel;
}

/**
 * The `workerData` given to the `SabvmPool` (its `workerData` option), unchanged.
 * Throws `Error` outside a `SabvmPool` thread. Context: a pool thread.
 */
export function poolWorkerData(): unknown {
  return threadState().user;
}

/**
 * A producer (or the consumer) on the ring whose area is at `kaddr` — a ring the task was given,
 * say as `arg`, from `kernel.ringbufCreate` on the main thread: `openRing(arg.ring).output(bytes)`.
 * The handle is made once per thread. Throws `Error` when `kaddr` is not a live ring, or outside a
 * `SabvmPool` thread. Context: a pool thread.
 */
export function openRing(kaddr: number): RingBuf {
  const state = threadState();
  const cached = state.rings.get(kaddr);
  if (cached !== undefined && cached.query(BPF_RB_RING_SIZE) > 0) return cached;
  const ring = state.kernel.ringbuf(kaddr);
  if (ring === null) throw new Error(`openRing: ${String(kaddr)} is not the kaddr of a live ring`);
  state.rings.set(kaddr, ring);
  return ring;
}

/**
 * The pool's ring (`SabvmPool` option `ringBytes`), which the main thread reads as `pool.ring`:
 * write results, logs or progress to it with `output` or `reserve`/`submit`. Throws `Error` when
 * the pool has no ring. Context: a pool thread.
 */
export function poolRing(): RingBuf {
  const { ring } = threadState();
  if (ring < 0) throw new Error('poolRing: this pool has no ring (give SabvmPool a ringBytes)');
  return openRing(ring);
}

class UserRange implements MappedRange {
  readonly uaddr: number;
  readonly length: number;
  readonly prot: number;
  readonly #mm: AddressSpace;

  constructor(mm: AddressSpace, uaddr: number, length: number, prot: number) {
    this.#mm = mm;
    this.uaddr = uaddr;
    this.length = length;
    this.prot = prot;
  }

  get writable(): boolean {
    return (this.prot & PROT_WRITE_BIT) !== 0;
  }

  segments(
    options: { readonly write?: boolean; readonly offset?: number; readonly length?: number } = {},
  ): Uint8Array[] {
    const offset = options.offset ?? 0;
    const length = options.length ?? this.length - offset;
    if (
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(length) ||
      offset < 0 ||
      length < 0 ||
      offset + length > this.length
    ) {
      throw new RangeError(
        `segments: [${offset}, ${offset + length}) is outside the range of ${this.length} bytes`,
      );
    }
    return this.#mm.segments(this.uaddr + offset, length, { write: options.write ?? false });
  }
}

function decodeRanges(mm: AddressSpace, regs: Float64Array): MappedRange[] {
  const nr = regs[REG_NR_RANGES] ?? 0;
  const ranges: MappedRange[] = [];
  for (let i = 0; i < nr; i++) {
    const base = REG_RANGES + RANGE_REGS * i;
    ranges.push(
      new UserRange(
        mm,
        regs[base + RANGE_UADDR] ?? 0,
        regs[base + RANGE_LENGTH] ?? 0,
        regs[base + RANGE_PROT] ?? 0,
      ),
    );
  }
  return ranges;
}

/**
 * Serialize an error for the trip to the main thread: structured clone would drop
 * `SegmentationFault`'s `code` and `address` (and any custom class). Context: any thread.
 */
function toWire(error: unknown): WireError {
  if (error instanceof Error) {
    const fields = error as Error & { code?: unknown; address?: unknown; errno?: unknown };
    return {
      name: error.name,
      message: error.message,
      stack: error.stack,
      code: typeof fields.code === 'string' ? fields.code : undefined,
      address: typeof fields.address === 'number' ? fields.address : undefined,
      errno: typeof fields.errno === 'number' ? fields.errno : undefined,
    };
  }
  return {
    name: 'Error',
    message: `the task threw a value that is not an Error: ${inspect(error)}`,
    stack: undefined,
    code: undefined,
    address: undefined,
    errno: undefined,
  };
}

/**
 * Make a task: wrap `fn` so that a `SabvmPool` can run it. Default-export the result (or export it
 * under a name and pass `name` to `run`). For each task the wrapper claims the task (a task
 * aborted before it started is skipped without touching memory), looks the address space up by id
 * (`kernel.addressSpace`), calls `fn` with it and its ranges inside a read section
 * (`kernel.rcuReadLock`: zero-copy views taken in the task stay safe to touch until it settles,
 * whatever other threads unmap), and releases the task when `fn` settles.
 *
 * Errors: whatever `fn` throws (or rejects with) reaches the caller of `run` rebuilt on the main
 * thread — `SegmentationFault` with its `code` and `address`, built-in errors with their class,
 * others as `Error` with their `name`, `code` and `errno`. A thread not started by a `SabvmPool`
 * rejects with `Error`. Do not return views of the frames (`segments`): the mapping may be gone
 * when the caller reads them; return numbers or copies.
 * Context: called by Piscina in a pool thread; `fn` may block that thread (it owns it).
 */
export function defineTask<A = unknown, R = unknown>(fn: TaskFunction<A, R>): TaskHandler<R> {
  return async (message: TaskMessage): Promise<TaskReply<R>> => {
    const { kernel, slots } = threadState();
    const { regs } = message;
    const slot = regs[REG_SLOT] ?? -1;
    const ticket = regs[REG_TICKET] ?? 0;
    const claim = claimedBy(threadId);
    if (Atomics.compareExchange(slots, slot, ticket, claim) !== ticket) {
      return { ok: false, cancelled: true };
    }
    // the task runs inside a read section: frames that any other thread releases meanwhile (an
    // unmap, a vfree, a destroy) are not handed to a new owner until it has returned
    kernel.rcuReadLock();
    try {
      const mm = kernel.addressSpace(regs[REG_MM] ?? 0);
      const value = await fn({ kernel, mm, ranges: decodeRanges(mm, regs), arg: message.arg as A });
      return { ok: true, value };
    } catch (error) {
      return { ok: false, error: toWire(error) };
    } finally {
      kernel.rcuReadUnlock();
      Atomics.compareExchange(slots, slot, claim, SLOT_IDLE);
      Atomics.notify(slots, slot);
    }
  };
}
