/**
 * The wire protocol between the main-thread pool (`pool.ts`) and the worker-side task wrapper
 * (`worker.ts`). Both import this module; they never import each other.
 *
 * Kernel counterpart: the system-call ABI. A task message is a register file: a handful of numbers
 * (address-space id, user addresses, lengths, protections) in one fixed-width `Float64Array`, so
 * its serialized size never depends on how many bytes the task works on.
 *
 * ```
 *  TaskMessage.regs (Float64Array)
 *  ┌────────┬──────┬────────┬──────────┬────────────────────────────────────┐
 *  │ mm id  │ slot │ ticket │ nrRanges │ uaddr, length, prot  × nrRanges     │
 *  └────────┴──────┴────────┴──────────┴────────────────────────────────────┘
 *    REG_MM   REG_SLOT REG_TICKET REG_NR_RANGES  REG_RANGES + 3 * i + RANGE_*
 * ```
 *
 * The task-state table (one `Int32Array` over a `SharedArrayBuffer`, given to every thread once in
 * `workerData`) holds one word per task in flight, and decides who may touch the address space:
 *
 * | word value | meaning | written by |
 * | --- | --- | --- |
 * | `SLOT_IDLE` (0) | nobody touches the address space for it | pool (cancel), worker (done) |
 * | `ticket` (> 0) | posted, not yet claimed | pool, before posting |
 * | `-(threadId + 1)` (< 0) | claimed: that thread may touch it | worker (CAS from `ticket`) |
 *
 * A worker claims a slot with `compareExchange(ticket → claimed)`; the pool cancels with
 * `compareExchange(ticket → SLOT_IDLE)`. Exactly one of them wins, so a task message that arrives
 * after its task was aborted never touches an address space that may have been destroyed (or whose
 * id was reused by another process).
 *
 * @module
 */

/** Register index: the address-space (`mm`) id. */
export const REG_MM = 0;
/** Register index: the task-state slot of this task. */
export const REG_SLOT = 1;
/** Register index: the ticket that the slot holds while the task is posted. */
export const REG_TICKET = 2;
/** Register index: the number of mapped ranges that follow. */
export const REG_NR_RANGES = 3;
/** Register index of the first range. */
export const REG_RANGES = 4;
/** Registers per range. */
export const RANGE_REGS = 3;
/** Offset in a range: user address. */
export const RANGE_UADDR = 0;
/** Offset in a range: length in bytes. */
export const RANGE_LENGTH = 1;
/** Offset in a range: protection (`PROT_*`). */
export const RANGE_PROT = 2;

/** A task-state word: nobody touches the address space for this slot. */
export const SLOT_IDLE = 0;
/** Largest ticket; tickets count 1, 2, … and wrap back to 1. */
export const MAX_TICKET = 0x7fffffff;

/** The key under which the pool's data sits in Piscina's `workerData`. */
export const WORKER_DATA_KEY = '@sabvm/workers';

/** What every pool thread receives once, in `workerData[WORKER_DATA_KEY]`. */
export interface PoolWorkerData {
  /** `kernel.handle`: the physical memory to attach. */
  readonly handle: { readonly buffer: SharedArrayBuffer };
  /** The task-state table (see the module comment). */
  readonly slots: SharedArrayBuffer;
  /** The user's own `workerData`, passed through unchanged. */
  readonly user: unknown;
  /** kaddr of the pool's ring (`SabvmPool.ring`), or -1 when it has none. */
  readonly ring: number;
}

/** The task object posted through Piscina for every sabvm task. */
export interface TaskMessage {
  /** Fixed-width numbers, laid out as the module comment shows. */
  readonly regs: Float64Array;
  /** The caller's own argument (structured-cloned: keep it small). */
  readonly arg: unknown;
}

/** An error as it crosses the thread boundary: structured clone drops custom properties. */
export interface WireError {
  readonly name: string;
  readonly message: string;
  readonly stack: string | undefined;
  /** `SegmentationFault.code`, or a Node-style `code` string of any error. */
  readonly code: string | undefined;
  /** `SegmentationFault.address`. */
  readonly address: number | undefined;
  /** `errno` of a Node-style system error. */
  readonly errno: number | undefined;
  /** `syscall` of a Node-style system error (`SabvmError`'s kernel call). */
  readonly syscall?: string | undefined;
}

/** A worker's answer to one task. */
export type TaskReply<R> =
  | { readonly ok: true; readonly value: R }
  | { readonly ok: false; readonly error: WireError }
  | { readonly ok: false; readonly cancelled: true };

/**
 * The task-state word of a slot claimed by thread `threadId` (never 0, even for thread 0).
 * Context: any thread; never throws.
 */
export function claimedBy(threadId: number): number {
  return -(threadId + 1);
}

/** The thread id that a claimed task-state word names. Context: any thread; never throws. */
export function claimant(word: number): number {
  return -word - 1;
}

/** Number of registers a message with `nrRanges` ranges needs. Context: any; never throws. */
export function regsLength(nrRanges: number): number {
  return REG_RANGES + RANGE_REGS * nrRanges;
}
