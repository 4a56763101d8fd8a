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
import { threadId } from 'node:worker_threads';
import { BPF_RB_RING_SIZE, type AddressSpace, type Kernel, type RingBuf } from '@sabvm/core';
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
  type TaskMessage,
  type TaskReply,
} from './protocol.js';
import {
  flushRings,
  kernelViewIn,
  TASK_FUNCTION,
  threadState,
  toWire,
  UserRange,
  type MappedRange,
  type TaskFunction,
  type TaskHandler,
} from './task-runtime.js';

export type {
  MappedRange,
  SegmentOptions,
  TaskContext,
  TaskFunction,
  TaskHandler,
} from './task-runtime.js';
export type { TypedArrayConstructor } from './typed.js';

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
export function defineTask<A = unknown, R = unknown>(fn: TaskFunction<A, R>): TaskHandler<R, A> {
  const handler = async (message: TaskMessage): Promise<TaskReply<R>> => {
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
      const leak = kernelViewIn(value, kernel.handle.buffer, 'the result', 0);
      if (leak !== null) {
        throw new TypeError(
          `the task returned ${leak}: a view over the kernel's physical memory, which would hand ` +
            'the caller all of it once cloned; return an address or a number, or a copy ' +
            '(view.slice())',
        );
      }
      return { ok: true, value };
    } catch (error) {
      return { ok: false, error: toWire(error) };
    } finally {
      kernel.rcuReadUnlock();
      // the task's batched ring records go out before its reply (outside the read section: this
      // may wait for the consumer, and frames released meanwhile must not wait for it)
      flushRings();
      Atomics.compareExchange(slots, slot, claim, SLOT_IDLE);
      Atomics.notify(slots, slot);
    }
  };
  // the ring transport calls the task function itself, with no message
  Object.defineProperty(handler, TASK_FUNCTION, { value: fn });
  return handler;
}
