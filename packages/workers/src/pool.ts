/**
 * `SabvmPool`: a Piscina pool whose threads attach one kernel and run tasks as user processes.
 *
 * Kernel counterpart: the scheduler's side of `fork`/`exec`/`exit` — the pool creates address
 * spaces, maps vmalloc areas into them (`mmap` + `remapPartial`, as a driver's `mmap` handler
 * does), hands a thread nothing but numbers, and tears the address space down when the process is
 * done (`exit_mmap`).
 *
 * Main-thread code only. The worker side lives in `worker.ts`; the two share `protocol.ts`.
 *
 * @module
 */
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { serialize } from 'node:v8';
import type { Worker } from 'node:worker_threads';
import {
  EAGAIN,
  EINVAL,
  ENOMEM,
  Kernel,
  PAGE_SIZE,
  SegmentationFault,
  type BootOptions,
  type RingBuf,
} from '@sabvm/core';
import { Piscina } from 'piscina';
import { DispatchRings, type RingTask } from './dispatch.js';
import { errorFromWire, SabvmError } from './errors.js';
import {
  SabvmProcess,
  type AreaSpec,
  type Mapping,
  type RunOptions,
  type TaskDispatcher,
} from './process.js';
import { firstChangedPage, snapshotReadOnly } from './ro-check.js';
import {
  claimant,
  MAX_TICKET,
  RANGE_LENGTH,
  RANGE_PROT,
  RANGE_REGS,
  RANGE_UADDR,
  REG_MM,
  REG_NR_RANGES,
  REG_RANGES,
  REG_SLOT,
  REG_TICKET,
  regsLength,
  SLOT_IDLE,
  WORKER_DATA_KEY,
  type PoolWorkerData,
  type TaskMessage,
  type TaskReply,
} from './protocol.js';

/** Piscina's own options, minus the ones the pool sets itself. */
export type PiscinaOptions = Omit<
  NonNullable<ConstructorParameters<typeof Piscina>[0]>,
  'filename' | 'workerData'
>;

/** Options of {@link SabvmPool}. Give exactly one of `kernel` and `boot`. */
export interface SabvmPoolOptions {
  /**
   * The task module: compiled JavaScript whose export is made with `defineTask` from
   * `@sabvm/workers/worker`. A path or a `file:` URL.
   */
  readonly filename: string | URL;
  /** A booted kernel to share with the threads. */
  readonly kernel?: Kernel;
  /** Boot a new kernel with these options instead. */
  readonly boot?: BootOptions;
  /** Anything else for Piscina (`maxThreads`, `minThreads`, `idleTimeout`, …). */
  readonly piscina?: PiscinaOptions;
  /** Your own `workerData`; a task reads it with `poolWorkerData()`. */
  readonly workerData?: unknown;
  /** Tasks that may be posted at once (queued or running); more wait for a slot. Default 1024. */
  readonly maxTasksInFlight?: number;
  /**
   * Check read-only mappings around each task: hash their pages before the task and after it,
   * and fail a task that changed one with a `SegmentationFault` (`SEGV_ACCERR`, the first changed
   * page's address, the task's name). JavaScript cannot refuse a store through a view of a
   * read-only mapping; this finds it afterwards. It costs a read of those pages twice per task
   * (see the bench's `workloads` suite for the figure per MiB). Default false.
   */
  readonly readOnlyCheck?: boolean;
  /**
   * Give the pool a ring buffer of this many data bytes (a power of two, at least 2 pages) that
   * every task can write to (`poolRing()` in the task) and the main thread reads
   * ({@link SabvmPool.ring}): results, logs, progress, with no message per record.
   */
  readonly ringBytes?: number;
  /**
   * How tasks reach the threads. `'ring'` (the default): through submission and completion queues
   * in shared memory, io_uring style — a thread stays in its ring while there is work and takes a
   * task in microseconds, with no `postMessage` per task. `'message'`: one Piscina message per task
   * (the transport of earlier versions; kept for comparison). A pool with `readOnlyCheck` always
   * uses `'message'`.
   */
  readonly transport?: 'ring' | 'message';
}

/** Options of a process-per-task run ({@link SabvmPool.run}). */
export interface TaskOptions<A = unknown> extends RunOptions<A> {
  /**
   * The vmalloc areas (from `kernel.vmallocUser`) to map into the task's address space, in order;
   * none (the default) runs a task with no mappings.
   */
  readonly areas?: readonly (AreaSpec | number)[];
}

const DEFAULT_MAX_TASKS_IN_FLIGHT = 1024;
/**
 * How long a dead thread's first reap waits for the other threads to leave their kernel calls
 * while another thread is being terminated too (ms): that one may be marked inside a call until
 * its own reap.
 */
const REAP_FIRST_MS = 5;
/** The longest a reap waits (ms): longer than any live call (the longest take about 0.5 s). */
const REAP_MAX_MS = 1000;

function toPath(filename: string | URL): string {
  return filename instanceof URL ? fileURLToPath(filename) : filename;
}

function combineSignals(
  signal: AbortSignal | undefined,
  timeout: AbortSignal | undefined,
): AbortSignal | undefined {
  if (signal === undefined) return timeout;
  if (timeout === undefined) return signal;
  return AbortSignal.any([signal, timeout]);
}

/** The error of a task stopped by its `timeout`: it says so, and what became of the task. */
function timeoutError(options: RunOptions, cause: unknown): Error {
  const task = options.name === undefined ? 'the default export' : `'${options.name}'`;
  const error = new Error(
    `SabvmPool: the task (${task}) did not settle within its timeout of ${String(options.timeout)} ms; ` +
      'it was aborted (its thread stopped if it had started) and its address space destroyed',
    { cause },
  );
  error.name = 'TimeoutError';
  return error;
}

/** Why `createAddressSpace` returned null: which resource ran out. */
function noAddressSpace(kernel: Kernel): string {
  const { addressSpaces, freeFrames } = kernel.stats();
  const slots = kernel.layout.maxAddressSpaces;
  if (addressSpaces >= slots) {
    return `no address-space slot: all ${slots} are in use (destroy processes, or boot the kernel with a larger maxAddressSpaces)`;
  }
  if (freeFrames === 0) return 'no free frame for the page directory: physical memory is full';
  return 'no address-space slot or page-directory frame was free at that moment';
}

function kernelOf({ kernel, boot }: SabvmPoolOptions): Kernel {
  if (kernel !== undefined && boot === undefined) return kernel;
  if (boot !== undefined && kernel === undefined) return Kernel.boot(boot);
  throw new TypeError('SabvmPool: give exactly one of `kernel` and `boot`');
}

/** The pool's ring: none without `ringBytes`; `SabvmError` when it cannot be made. */
function poolRingOf(kernel: Kernel, ringBytes: number | undefined): RingBuf | null {
  if (ringBytes === undefined) return null;
  const ring = kernel.ringbufCreate(ringBytes);
  if (ring !== null) return ring;
  const valid =
    Number.isSafeInteger(ringBytes) &&
    ringBytes >= 2 * PAGE_SIZE &&
    (ringBytes & (ringBytes - 1)) === 0;
  throw new SabvmError(
    'ringbufCreate',
    valid ? -ENOMEM : -EINVAL,
    `the pool's ring of ${String(ringBytes)} bytes`,
  );
}

function isTaskReply(value: unknown): value is TaskReply<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { ok?: unknown }).ok === 'boolean'
  );
}

/**
 * A Piscina pool of user processes sharing one kernel. Every thread receives `kernel.handle` once,
 * through `workerData`, and attaches it once; a task message carries only numbers.
 *
 * Two process models:
 * - {@link SabvmPool.run}: a process per task — the pool creates an address space, maps the named
 *   areas, runs the task and always destroys the address space afterwards;
 * - {@link SabvmPool.createProcess}: a long-lived process whose mappings change between tasks.
 */
export class SabvmPool {
  /** The kernel shared by every thread of the pool. */
  readonly kernel: Kernel;
  /** The underlying Piscina pool (events, `threads`, …); post sabvm tasks through this class. */
  readonly piscina: Piscina;
  /**
   * The pool's ring (option `ringBytes`), or null: every task may produce into it, the main thread
   * consumes it (`await pool.ring.poll(cb)`). Freed by {@link SabvmPool.close}.
   */
  readonly ring: RingBuf | null;
  readonly #slots: Int32Array;
  readonly #freeSlots: number[] = [];
  readonly #slotWaiters: ((slot: number) => void)[] = [];
  readonly #threadExits = new Map<number, Promise<void>>();
  /** Threads being terminated (by Piscina or the rings) whose reap has not completed yet. */
  readonly #dying = new Set<number>();
  /** Threads that have exited, however they died, and whose reap has not completed yet. */
  readonly #reaping = new Set<number>();
  readonly #processes = new Set<SabvmProcess>();
  /** What each process of this pool gets to run its tasks: this pool's private dispatch. */
  readonly #dispatcher: TaskDispatcher = {
    dispatch: <R>(mmId: number, mappings: readonly Mapping[], options: RunOptions) =>
      this.#dispatch<R>(mmId, mappings, options),
  };
  readonly #readOnlyCheck: boolean;
  /** The ring transport, or null for one message per task. */
  readonly #rings: DispatchRings | null;
  readonly #filename: string;
  #ticket = 0;
  #closed = false;

  /**
   * Create the pool (Piscina starts its threads as it needs them).
   * Throws `TypeError` when neither or both of `kernel` and `boot` are given, or
   * `maxTasksInFlight` is not a positive integer; `RangeError` when the kernel has fewer thread
   * slots (`maxThreads` of its layout) than Piscina's `maxThreads` plus this thread;
   * `Kernel.boot`'s errors for bad `boot` options; Piscina's `TypeError`/`RangeError` for bad
   * `piscina` options.
   * Context: main thread (or any thread that owns the pool); may allocate physical memory.
   */
  constructor(options: SabvmPoolOptions) {
    const maxInFlight = options.maxTasksInFlight ?? DEFAULT_MAX_TASKS_IN_FLIGHT;
    if (!Number.isSafeInteger(maxInFlight) || maxInFlight < 1) {
      throw new TypeError('SabvmPool: maxTasksInFlight must be a positive integer');
    }
    if (options.readOnlyCheck !== undefined && typeof options.readOnlyCheck !== 'boolean') {
      throw new TypeError('SabvmPool: readOnlyCheck must be a boolean');
    }
    this.#readOnlyCheck = options.readOnlyCheck ?? false;
    const transport: unknown = options.transport ?? 'ring';
    if (transport !== 'ring' && transport !== 'message') {
      throw new TypeError(
        `SabvmPool: transport must be 'ring' or 'message', not ${inspect(transport)}`,
      );
    }
    this.kernel = kernelOf(options);
    const slots = new SharedArrayBuffer(maxInFlight * Int32Array.BYTES_PER_ELEMENT);
    this.#slots = new Int32Array(slots);
    for (let slot = maxInFlight - 1; slot >= 0; slot--) this.#freeSlots.push(slot);
    this.ring = poolRingOf(this.kernel, options.ringBytes);
    const data: PoolWorkerData = {
      handle: this.kernel.handle,
      slots,
      user: options.workerData,
      ring: this.ring?.kaddr ?? -1,
    };
    this.#filename = toPath(options.filename);
    this.piscina = new Piscina({
      ...options.piscina,
      filename: this.#filename,
      workerData: { [WORKER_DATA_KEY]: data },
    });
    this.piscina.on('workerCreate', () => {
      this.#trackThreads();
    });
    // Piscina terminates a thread (abort, timeout, close): it is on its way out
    this.piscina.on('workerDestroy', (worker: { id: number }) => {
      this.#dying.add(worker.id);
    });
    const needed = this.piscina.maxThreads + 1;
    if (needed > this.kernel.layout.maxThreads) {
      void this.piscina.destroy();
      throw new RangeError(
        `SabvmPool: ${this.piscina.maxThreads} threads and this one need ${needed} kernel thread ` +
          `slots; the kernel has ${this.kernel.layout.maxThreads} (boot it with a larger maxThreads)`,
      );
    }
    try {
      this.#rings =
        transport === 'ring' && !this.#readOnlyCheck
          ? new DispatchRings(this.kernel, this.piscina, maxInFlight, {
              exited: (threadId) => this.#threadExit(threadId),
              terminating: (threadId) => this.#dying.add(threadId),
            })
          : null;
      if (this.#rings !== null) {
        // a task posted to Piscina directly must not wait behind threads parked in their rings
        const rings = this.#rings;
        const direct = this.piscina.run.bind(this.piscina);
        this.piscina.run = (task, options) => {
          rings.yieldThreads();
          return direct(task, options);
        };
      }
    } catch (error) {
      void this.piscina.destroy();
      this.ring?.free();
      throw error;
    }
  }

  /**
   * Process model 1, a process per task: create an address space, map each area of
   * `options.areas` (`mmap` + `remapPartial`, in order), run the task with those mappings, and
   * destroy the address space afterwards — whether the task returns, throws, times out, is aborted
   * or its thread dies. When the promise settles, no thread touches the address space any more.
   *
   * Resolves with the task function's return value. Rejects with: the task's own error, rebuilt
   * (`SegmentationFault` keeps `code` and `address`); {@link SabvmError} when an address space or a
   * mapping cannot be made (`ENOMEM`, `EINVAL` for an area that is not a `vmallocUser` area…);
   * Piscina's `AbortError` on abort or timeout; an `Error` when the thread exits mid-task; an
   * `Error` after {@link SabvmPool.close}.
   * Context: main thread (the pool's owner); does not block, awaits the task.
   */
  run<R = unknown, A = unknown>(options: TaskOptions<A>): Promise<R> {
    if (this.#rings === null || this.#closed) return this.#runMessage<R>(options);
    // no async wrapper: a task's promise is the ring's own, settled one tick sooner
    return this.#rings.submit(this.#ringTask(-1, areaWords(options.areas), options)) as Promise<R>;
  }

  /** `run` over the message transport (and the closed pool's refusal). */
  async #runMessage<R>(options: TaskOptions): Promise<R> {
    this.#assertOpen();
    // one message per task: the address space is made only once the task has a slot, so that any
    // number of tasks may wait for one
    const slot = await this.#acquireSlot();
    let proc: SabvmProcess | null = null;
    try {
      this.#assertOpen(); // close() may have run while this task waited for a slot
      proc = this.createProcess();
      const made = proc;
      const mappings = (options.areas ?? []).map((area) => made.map(area));
      return await this.#post<R>(slot, proc.id, mappings, options);
    } finally {
      proc?.destroySync();
      this.#releaseSlot(slot);
    }
  }

  /**
   * Ids of the address spaces the pool's threads map tasks' areas into (the ring transport: one
   * per thread in its ring, with no mapping between tasks; destroyed when the thread leaves its
   * ring, which it does after a short idle time and on close).
   */
  get threadAddressSpaceIds(): readonly number[] {
    return this.#rings?.addressSpaceIds ?? [];
  }

  /**
   * Check the invariants of the pool's submission and completion rings (indexes in order, every
   * entry out accounted for, claim words valid) — safe while tasks run — and, when no task is out
   * and no thread that exited waits for its reap, the kernel's (`kernel.checkInvariants`, which
   * needs every thread outside kernel calls and every dead one reaped: a reap that met another
   * thread inside a kernel call tries again a moment later). Throws the first broken rule with its
   * values. Context: main thread.
   */
  checkInvariants(): void {
    const idle = this.#rings?.check() ?? true;
    if (idle && this.#reaping.size === 0) this.kernel.checkInvariants();
  }

  /** kaddr of the vmalloc area of the submission and completion rings, or null (`'message'`). */
  get dispatchArea(): number | null {
    return this.#rings?.area ?? null;
  }

  #ringTask(mmId: number, ranges: readonly unknown[], options: RunOptions): RingTask {
    return {
      filename: options.filename === undefined ? this.#filename : toPath(options.filename),
      name: options.name ?? '',
      mmId,
      ranges,
      arg: options.arg,
      signal: options.signal,
      timeout: options.timeout,
      timeoutError: (cause) => timeoutError(options, cause),
    };
  }

  /**
   * Process model 2: a long-lived process — a new, empty address space that outlives tasks.
   * Map areas into it with `process.map`, run tasks on it with `process.run` (on any thread, in
   * turn or at once), unmap between tasks, and `await process.destroy()` at the end (or let
   * {@link SabvmPool.close} do it). Throws {@link SabvmError} `ENOMEM` when the kernel cannot make
   * an address space, `Error` after {@link SabvmPool.close}.
   * Context: main thread (the pool's owner).
   */
  createProcess(): SabvmProcess {
    this.#assertOpen();
    const mm = this.kernel.createAddressSpace();
    if (mm === null)
      throw new SabvmError('createAddressSpace', -ENOMEM, noAddressSpace(this.kernel));
    const proc: SabvmProcess = new SabvmProcess(this.kernel, mm, this.#dispatcher, () =>
      this.#processes.delete(proc),
    );
    this.#processes.add(proc);
    return proc;
  }

  /** A small plain form for `JSON.stringify`: the kernel's and Piscina's sizes, not memory. */
  toJSON(): { type: 'SabvmPool'; kernel: object; threads: number; processes: number } {
    return {
      type: 'SabvmPool',
      kernel: this.kernel.toJSON(),
      threads: this.piscina.threads.length,
      processes: this.#processes.size,
    };
  }

  /** Live long-lived processes of this pool. Context: main thread. */
  get processes(): readonly SabvmProcess[] {
    return [...this.#processes];
  }

  /**
   * Wait for queued and running tasks (Piscina's `close`), stop the threads, then destroy every
   * process of this pool that is still alive. The kernel stays usable. Never rejects.
   * Context: main thread; awaits the tasks in flight.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#rings?.close();
    await this.piscina.close();
    await Promise.all([...this.#processes].map((proc) => proc.destroy()));
    this.ring?.free(); // a poll still waiting on it returns
  }

  /**
   * Post one task for address space `mmId` with `mappings`; settle only when no thread touches
   * the address space for it any more. Rejects as {@link SabvmPool.run} does.
   * Context: main thread.
   */
  async #dispatch<R>(mmId: number, mappings: readonly Mapping[], options: RunOptions): Promise<R> {
    this.#assertOpen();
    if (this.#rings !== null) {
      const words = mappings.flatMap((m) => [m.uaddr, m.length, m.prot]);
      return (await this.#rings.submit(this.#ringTask(mmId, words, options))) as R;
    }
    const slot = await this.#acquireSlot();
    try {
      this.#assertOpen(); // close() may have run while this task waited for a slot
      return await this.#post<R>(slot, mmId, mappings, options);
    } finally {
      this.#releaseSlot(slot);
    }
  }

  /** Post one task through Piscina in task-state slot `slot`; settle as `#dispatch` does. */
  async #post<R>(
    slot: number,
    mmId: number,
    mappings: readonly Mapping[],
    options: RunOptions,
  ): Promise<R> {
    this.#trackThreads();
    {
      const ticket = this.#nextTicket();
      const message: TaskMessage = {
        regs: encodeRegs(mmId, slot, ticket, mappings),
        arg: options.arg,
      };
      const before = this.#readOnlyCheck ? snapshotReadOnly(this.kernel, mmId, mappings) : null;
      const timeout =
        options.timeout === undefined ? undefined : AbortSignal.timeout(options.timeout);
      const signal = combineSignals(options.signal, timeout);
      Atomics.store(this.#slots, slot, ticket);
      let reply: unknown;
      try {
        reply = await this.piscina.run(message, {
          ...(signal === undefined ? {} : { signal }),
          ...(options.filename === undefined ? {} : { filename: toPath(options.filename) }),
          ...(options.name === undefined ? {} : { name: options.name }),
        });
      } catch (error) {
        if (timeout?.aborted === true && options.signal?.aborted !== true)
          throw timeoutError(options, error);
        throw error;
      } finally {
        await this.#quiesce(slot, ticket);
      }
      if (!isTaskReply(reply)) {
        throw new TypeError('SabvmPool: the task export was not made with defineTask()');
      }
      if (reply.ok) {
        const changed = before === null ? null : firstChangedPage(this.kernel, mmId, before);
        if (changed !== null) {
          const task = options.name === undefined ? 'the default export' : `'${options.name}'`;
          throw new SegmentationFault(
            'SEGV_ACCERR',
            changed,
            'write',
            `task ${task} wrote through a view of a read-only mapping: found by readOnlyCheck`,
          );
        }
        return reply.value as R;
      }
      if ('error' in reply) throw errorFromWire(reply.error);
      throw new Error('SabvmPool: the task was cancelled before it started');
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('SabvmPool: the pool is closed');
  }

  /** Wait until no thread works on the task of `slot` (posted with `ticket`). */
  async #quiesce(slot: number, ticket: number): Promise<void> {
    const word = Atomics.compareExchange(this.#slots, slot, ticket, SLOT_IDLE);
    if (word === ticket || word === SLOT_IDLE) return;
    // Claimed: the thread is still running the task, or is being terminated, or is dead.
    const waited = Atomics.waitAsync(this.#slots, slot, word);
    if (!waited.async) return;
    await Promise.race([waited.value, this.#threadExit(claimant(word))]);
    Atomics.notify(this.#slots, slot); // wake our own waiter if the thread's exit came first
  }

  #threadExit(threadId: number): Promise<void> {
    this.#trackThreads();
    return this.#threadExits.get(threadId) ?? Promise.resolve();
  }

  /** Remember an `exit` promise for every thread Piscina has started. */
  #trackThreads(): void {
    for (const worker of this.piscina.threads) this.#track(worker);
  }

  /**
   * On a thread's exit, reap its kernel attachment (its thread slot, and — if it died inside a
   * kernel call — its locks, half-done call and read sections) before anyone learns it is gone.
   * Threads terminated together: the first one's reap may find another still marked inside the
   * call it died in, whose own `exit` cannot run while this thread waits for it. So while another
   * thread is on its way out, the first try waits only `REAP_FIRST_MS`; otherwise (a live thread in
   * a long call is all it can wait for) `REAP_MAX_MS`. After an `-EAGAIN` the next try, with twice
   * the limit, waits for a timer: the other `exit` gets its turn, and its reap recovers this thread
   * too. Until the reap, the dead thread's locks stay held.
   */
  #track(worker: Worker): void {
    const { threadId } = worker;
    if (this.#threadExits.has(threadId)) return;
    this.#threadExits.set(
      threadId,
      new Promise((resolve) => {
        let limit = -1;
        const reap = (): void => {
          if (limit < 0) {
            const others = this.#dying.size - (this.#dying.has(threadId) ? 1 : 0);
            limit = others > 0 ? REAP_FIRST_MS : REAP_MAX_MS;
          }
          let reaped: number;
          try {
            reaped = this.kernel.reapThread({ threadId }, limit);
          } catch {
            reaped = 0; // this handle was detached: nothing can reap through it
          }
          if (reaped === -EAGAIN) {
            limit = Math.min(2 * limit, REAP_MAX_MS);
            setTimeout(reap, 1);
            return;
          }
          this.#dying.delete(threadId);
          this.#reaping.delete(threadId);
          resolve();
        };
        worker.once('exit', () => {
          this.#reaping.add(threadId);
          reap();
        });
      }),
    );
  }

  #acquireSlot(): Promise<number> | number {
    const slot = this.#freeSlots.pop();
    if (slot !== undefined) return slot;
    return new Promise((resolve) => this.#slotWaiters.push(resolve));
  }

  #releaseSlot(slot: number): void {
    Atomics.store(this.#slots, slot, SLOT_IDLE);
    const waiter = this.#slotWaiters.shift();
    if (waiter === undefined) this.#freeSlots.push(slot);
    else waiter(slot);
  }

  #nextTicket(): number {
    this.#ticket = this.#ticket >= MAX_TICKET ? 1 : this.#ticket + 1;
    return this.#ticket;
  }
}

// `util.inspect` and `console.log` print the small form too (set on the prototype: a computed
// class member would not survive isolatedDeclarations)
Object.defineProperty(SabvmPool.prototype, inspect.custom, {
  value(this: SabvmPool): object {
    return this.toJSON();
  },
  configurable: true,
  writable: true,
});

/**
 * Bytes of the task object that a run with these mappings posts through Piscina, serialized as
 * structured clone serializes it (`v8.serialize`): a few dozen bytes per mapping, whatever their
 * length. (Piscina's envelope adds a task id, the filename and the export name.) Throws
 * `v8.serialize`'s error for an `arg` that cannot be cloned. Context: any thread.
 */
export function taskMessageBytes(mappings: readonly Mapping[], arg?: unknown): number {
  const message: TaskMessage = { regs: encodeRegs(0, 0, 1, mappings), arg };
  return serialize(message).length;
}

/**
 * A task's areas as `[kaddr, length, prot]` triples, as given (`undefined` for a length or prot
 * not given); the rings carry them, and the thread's mapping refuses bad ones with the same errors
 * as `SabvmProcess.map`.
 */
function areaWords(areas: readonly (AreaSpec | number)[] | undefined): unknown[] {
  const words: unknown[] = [];
  for (const area of (areas ?? []) as unknown[]) {
    // a caller without types may pass anything: a non-object maps as { kaddr: area }
    const spec = (
      typeof area === 'object' && area !== null ? area : { kaddr: area }
    ) as Partial<AreaSpec>;
    words.push(spec.kaddr, spec.length, spec.prot);
  }
  return words;
}

function encodeRegs(
  mmId: number,
  slot: number,
  ticket: number,
  mappings: readonly Mapping[],
): Float64Array {
  const regs = new Float64Array(regsLength(mappings.length));
  regs[REG_MM] = mmId;
  regs[REG_SLOT] = slot;
  regs[REG_TICKET] = ticket;
  regs[REG_NR_RANGES] = mappings.length;
  mappings.forEach((m, i) => {
    const base = REG_RANGES + RANGE_REGS * i;
    regs[base + RANGE_UADDR] = m.uaddr;
    regs[base + RANGE_LENGTH] = m.length;
    regs[base + RANGE_PROT] = m.prot;
  });
  return regs;
}
