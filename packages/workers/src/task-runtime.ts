/**
 * What a task runs with, on the worker side: the thread's kernel attachment, the ranges a task
 * receives, and the checks and encodings around a task's result. Shared by the two ways a pool
 * thread runs tasks — one Piscina message per task (`worker.ts`) and the dispatch rings
 * (`service.ts`) — and exported to users through `worker.ts` only.
 *
 * Worker-thread code only.
 *
 * @module
 */
import { inspect } from 'node:util';
import { threadId, workerData } from 'node:worker_threads';
import { Kernel, type AddressSpace, type RingBuf } from '@sabvm/core';
import {
  WORKER_DATA_KEY,
  type PoolWorkerData,
  type TaskMessage,
  type TaskReply,
  type WireError,
} from './protocol.js';
import { asType, checkAlignment, checkType, hex, type TypedArrayConstructor } from './typed.js';

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
  segments(options?: SegmentOptions): Uint8Array[];
  /**
   * The same views as typed arrays of `options.type` (`Float32Array`, …), one per physically
   * contiguous run. The sub-range must start and end on a multiple of the element size (runs
   * break only at page boundaries, so no element straddles two views). Throws as `segments`, plus
   * `TypeError` for a type that is not a typed-array constructor and `RangeError` for a misaligned
   * sub-range.
   */
  segments<T extends TypedArrayConstructor>(
    options: SegmentOptions & { readonly type: T },
  ): InstanceType<T>[];
  /**
   * One zero-copy typed array (`Float32Array`, …) over `[uaddr + offset, uaddr + offset + length)`
   * (default: the whole range) — when that memory is one physically contiguous run. Throws
   * `Error` when it is several runs (it says how many, and that an area allocated with
   * `kernel.vmallocUser(size, { contiguous: true })` is always one), `RangeError` for a sub-range
   * that is outside the range or not a multiple of the element size, and `segments`' faults.
   * Context: the task's thread; lock-free page-table walk.
   */
  view<T extends TypedArrayConstructor>(Type: T, options?: SegmentOptions): InstanceType<T>;
}

/** Which part of a range, and for what access (`segments`, `view`). */
export interface SegmentOptions {
  /** Views for writing: a read-only mapping throws `SegmentationFault` (`SEGV_ACCERR`). */
  readonly write?: boolean;
  /** Byte offset in the range; default 0. */
  readonly offset?: number;
  /** Bytes from `offset`; default: to the end of the range. */
  readonly length?: number;
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
export type TaskHandler<R = unknown, A = unknown> = ((
  message: TaskMessage,
) => Promise<TaskReply<R>>) & {
  /**
   * Never set: the argument type of the task, carried for `bindTasks` (a phantom field).
   * @internal
   */
  readonly __arg?: A;
};

export interface ThreadState {
  readonly kernel: Kernel;
  readonly slots: Int32Array;
  readonly user: unknown;
  /** kaddr of the pool's ring, or -1. */
  readonly ring: number;
  /** Rings this thread opened, by kaddr: one handle each. */
  readonly rings: Map<number, RingBuf>;
}

let thread: ThreadState | undefined;

export function threadState(): ThreadState {
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
 * Publish the `RB_BATCH` records this thread's tasks wrote to any ring, through any handle
 * (`openRing`, `poolRing`, one of their own): a task's records are visible once the task has
 * completed. A batch whose ring is full waits for its consumer to make room, with no limit: a
 * pool thread may block between tasks (Piscina waits for the next task with `Atomics.wait`), so a
 * retry left for later might not run until the next task. Context: a pool thread, after a task.
 */
export function flushRings(): void {
  thread?.kernel.ringbufFlush(-1);
}

export class UserRange implements MappedRange {
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

  segments(options?: SegmentOptions): Uint8Array[];
  segments<T extends TypedArrayConstructor>(
    options: SegmentOptions & { readonly type: T },
  ): InstanceType<T>[];
  segments(
    options: SegmentOptions & { readonly type?: TypedArrayConstructor } = {},
  ): ArrayBufferView[] {
    const { type } = options;
    if (type === undefined) return this.#bytes(options, 'segments');
    checkType(type, 'segments');
    const [start, length] = this.#subRange(options, 'segments');
    checkAlignment(type, start, length, 'segments');
    return this.#bytes(options, 'segments').map((bytes) => asType(type, bytes));
  }

  view<T extends TypedArrayConstructor>(Type: T, options: SegmentOptions = {}): InstanceType<T> {
    checkType(Type, 'view');
    const [start, length] = this.#subRange(options, 'view');
    checkAlignment(Type, start, length, 'view');
    const runs = this.#bytes(options, 'view');
    if (runs.length > 1) {
      throw new Error(
        `view: [${hex(start)}, ${hex(start + length)}) is ${runs.length} physically separate runs ` +
          `of frames, and one ${Type.name} can only cover one; allocate the area with ` +
          `kernel.vmallocUser(size, { contiguous: true }) to get one run, or use ` +
          `segments({ type: ${Type.name} }) to work run by run`,
      );
    }
    return asType(Type, runs[0] ?? new Uint8Array(0));
  }

  /** `[user address, length]` of the sub-range, checked against the range. */
  #subRange(options: SegmentOptions, call: string): [number, number] {
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
        `${call}: [${String(offset)}, ${String(offset + length)}) is outside the range of ${this.length} bytes at ${hex(this.uaddr)}`,
      );
    }
    return [this.uaddr + offset, length];
  }

  #bytes(options: SegmentOptions, call: string): Uint8Array[] {
    const [start, length] = this.#subRange(options, call);
    return this.#mm.segments(start, length, { write: options.write ?? false });
  }
}

/**
 * Where `value` holds a view over `buffer` (itself, or inside arrays and plain objects down to a
 * few levels), described for an error message; null when it holds none.
 */
export function kernelViewIn(
  value: unknown,
  buffer: SharedArrayBuffer,
  path: string,
  depth: number,
): string | null {
  if (ArrayBuffer.isView(value)) {
    return value.buffer === buffer ? `a ${value.constructor.name} (${path})` : null;
  }
  if (value === buffer) return `the kernel's SharedArrayBuffer (${path})`;
  if (depth >= 4 || typeof value !== 'object' || value === null) return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length && i < 1024; i++) {
      const found = kernelViewIn(value[i], buffer, `${path}[${i}]`, depth + 1);
      if (found !== null) return found;
    }
    return null;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype) return null;
  for (const [key, item] of Object.entries(value)) {
    const found = kernelViewIn(item, buffer, `${path}.${key}`, depth + 1);
    if (found !== null) return found;
  }
  return null;
}

/**
 * Serialize an error for the trip to the main thread: structured clone would drop
 * `SegmentationFault`'s `code` and `address` (and any custom class). Context: any thread.
 */
export function toWire(error: unknown): WireError {
  if (error instanceof Error) {
    const fields = error as Error & {
      code?: unknown;
      address?: unknown;
      errno?: unknown;
      syscall?: unknown;
    };
    return {
      name: error.name,
      message: error.message,
      stack: error.stack,
      code: typeof fields.code === 'string' ? fields.code : undefined,
      address: typeof fields.address === 'number' ? fields.address : undefined,
      errno: typeof fields.errno === 'number' ? fields.errno : undefined,
      syscall: typeof fields.syscall === 'string' ? fields.syscall : undefined,
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
 * Where a `defineTask` handler keeps the task function itself, for the ring transport, which calls
 * it with no message. `Symbol.for`: the same key in every copy of this module.
 */
export const TASK_FUNCTION: unique symbol = Symbol.for('@sabvm/workers.taskFunction') as never;
