/**
 * The ring transport of `SabvmPool`: tasks go to the pool's threads through submission queues in
 * shared memory and come back through completion queues, io_uring style, with no `postMessage`
 * per task. Piscina stays the thread manager: it starts each thread, replaces one that dies and
 * terminates them; the pool posts one long-running service task (`service.ts`) per thread it
 * uses, and the service stays in its ring until the pool goes idle or closes.
 *
 * Kernel counterpart: the submitting side of io_uring (`io_uring_enter`, `io_cqring_wait`): fill
 * SQEs, move the SQ tail, wake the poller only if it asked (`IORING_SQ_NEED_WAKEUP`), reap CQEs.
 *
 * Tasks wait in a queue here until a ring has room (`maxTasksInFlight` in all rings together), so
 * any number may be submitted at once; a task's areas are mapped by the thread that takes it, into
 * that thread's own address space, and unmapped when it ends.
 *
 * Main-thread code only. The format is `dispatch-ring.ts`'s; the worker side is `service.ts`.
 *
 * @module
 */
import { fileURLToPath } from 'node:url';
import { deserialize, serialize } from 'node:v8';
import { MessageChannel, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { ENOMEM, type AddressSpace, type Kernel } from '@sabvm/core';
import type { Piscina } from 'piscina';
import {
  ARG_DATA,
  ARG_NUMBER,
  ARG_PORT,
  ARG_UNDEFINED,
  C_CQ_TAIL,
  C_MM,
  C_NEED_WAKEUP,
  C_SQ_HEAD,
  C_SQ_TAIL,
  C_STOP,
  C_THREAD,
  cpuRelax,
  CQE_WORDS,
  DATA_BYTES,
  dispatchAreaBytes,
  E_ARG,
  E_ARG_KIND,
  E_FLAGS,
  E_HANDLER,
  E_MM,
  E_NR_RANGES,
  E_RANGES,
  E_TICKET,
  H_DOORBELL,
  H_OWNER_WAITING,
  headerView,
  Q_HOW,
  Q_KIND,
  Q_VALUE,
  RANGE_NOT_GIVEN,
  RANGE_WORDS,
  RES_CANCELLED,
  RES_OK,
  ringViews,
  SQ_ENTRIES,
  SQE_F_MM_GIVEN,
  SQE_MAX_RANGES,
  SpinPolicy,
  SQE_WORDS,
  writeRegistry,
  type RingViews,
  type ServiceMessage,
} from './dispatch-ring.js';
import { errorFromWire, SabvmError } from './errors.js';
import { claimant, MAX_TICKET, SLOT_IDLE, type WireError } from './protocol.js';

/** How long the owner polls the completion queues before it sleeps, in milliseconds. */
const SPIN_MS = 0.05;
/** Microtask turns the owner yields before it polls (a caller's `await` chain to its next run). */
const YIELD_TURNS = 4;
/** Longest run of completions handled before the event loop gets a turn, in milliseconds. */
const SLICE_MS = 2;
/** Idle time after which the threads leave their rings (and stop keeping the process alive). */
const IDLE_MS = 100;
/** How long a ring with tasks may wait for its thread before idle threads hand theirs over. */
const START_WAIT_MS = 20;
/** Threads in a row that may die before entering their ring before the queued tasks fail. */
const START_ATTEMPTS = 3;
/** A keep-alive timer's period: never fires in practice. */
const MAX_TIMER_MS = 0x7fffffff;

/**
 * The ring service's module: the built one next to this file, or, when this file runs from
 * source (the package's own tests), the built one in `dist` — as task modules import it.
 */
const SERVICE = fileURLToPath(
  new URL(import.meta.url.endsWith('.ts') ? '../dist/service.js' : './service.js', import.meta.url),
);

/** One task on its way through the rings. */
export interface RingTask {
  /** The task module (a path) and the export name (`''` for the default). */
  readonly filename: string;
  readonly name: string;
  /** The address space to run in (a long-lived process), or -1: the thread maps `ranges` itself. */
  readonly mmId: number;
  /** Flat `[addr, length, prot]` triples (areas, or mappings of `mmId`). */
  readonly ranges: readonly unknown[];
  readonly arg: unknown;
  readonly signal: AbortSignal | undefined;
  /** Milliseconds, or undefined. */
  readonly timeout: number | undefined;
  /** Builds the error of a timed-out task. */
  readonly timeoutError: (cause: unknown) => Error;
}

interface Job {
  readonly task: RingTask;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  settled: boolean;
  ring: number;
  index: number;
  ticket: number;
  /** Why the owner stopped it while it ran (abort, timeout): the error its caller gets. */
  stopReason: Error | null;
  /**
   * Taken back, unclaimed, from a ring whose thread is being terminated (its claim word reset to
   * idle by the pool): it goes back to the queue when its cancelled CQE is reaped, or when the
   * thread is gone, and runs on another thread.
   */
  revoked: boolean;
  cleanup: (() => void) | null;
}

interface Ring {
  readonly id: number;
  readonly views: RingViews;
  readonly entries: (Job | undefined)[];
  port: MessagePort | null;
  mm: AddressSpace | null;
  /** Settles when the thread leaves the ring; null when no thread serves it. */
  service: Promise<unknown> | null;
  stopping: boolean;
  /** When the pool posted the ring's service (`performance.now()`). */
  servedAt: number;
  tail: number;
  reaped: number;
}

function abortError(reason: unknown): Error {
  const error = new Error('The task has been aborted', { cause: reason });
  Object.defineProperty(error, 'name', { value: 'AbortError', configurable: true, writable: true });
  return error;
}

/**
 * Whether `ranges` fit an SQE: few enough, numbers only, and no length or prot of
 * `RANGE_NOT_GIVEN` itself (which the SQE could not tell from one not given).
 */
function inlineRanges(ranges: readonly unknown[]): boolean {
  if (ranges.length > RANGE_WORDS * SQE_MAX_RANGES) return false;
  for (let i = 0; i < ranges.length; i++) {
    const v = ranges[i];
    if (
      i % RANGE_WORDS === 0
        ? typeof v !== 'number'
        : v !== undefined && (typeof v !== 'number' || v === RANGE_NOT_GIVEN)
    ) {
      return false;
    }
  }
  return true;
}

/** What the rings learn from, and tell, the pool about its threads. */
export interface PoolThreads {
  /** Resolves once the thread has exited and its kernel attachment is reaped. */
  exited(threadId: number): Promise<void>;
  /** The rings are terminating this thread (its reap may have to wait for another's). */
  terminating(threadId: number): void;
}

/** Submission and completion rings for the threads of one pool. */
export class DispatchRings {
  readonly #kernel: Kernel;
  readonly #piscina: Piscina;
  readonly #threads: PoolThreads;
  readonly #maxInFlight: number;
  readonly #maxQueue: number;
  readonly #area: number;
  readonly #bytes: Uint8Array;
  readonly #header: Int32Array;
  readonly #rings: Ring[] = [];
  /** Registry offsets, by task module and export name. */
  readonly #handlers = new Map<string, Map<string, number>>();
  #count = 0;
  #registryUsed = 0;
  readonly #pending: Job[] = [];
  #pendingHead = 0;
  #inFlight = 0;
  #ticket = 0;
  #reaping = false;
  #idleTimer: ReturnType<typeof setTimeout> | null = null;
  #drained: (() => void)[] = [];
  #closed = false;
  readonly #policy = new SpinPolicy(SPIN_MS);
  /** Threads that died in a row before they entered their ring. */
  #startFailures = 0;

  /** Piscina's own `run`, for the service tasks (the pool wraps the public one). */
  readonly #postService: Piscina['run'];

  /**
   * Make the rings (one vmalloc area). Throws {@link SabvmError} `ENOMEM` when the kernel has no
   * room for them. Context: main thread.
   */
  constructor(kernel: Kernel, piscina: Piscina, maxInFlight: number, threads: PoolThreads) {
    this.#kernel = kernel;
    this.#piscina = piscina;
    this.#postService = piscina.run.bind(piscina);
    this.#threads = threads;
    this.#maxInFlight = maxInFlight;
    const { maxQueue } = piscina.options;
    this.#maxQueue = typeof maxQueue === 'number' ? maxQueue : Infinity;
    const rings = piscina.maxThreads;
    const size = dispatchAreaBytes(rings);
    const area = kernel.vzalloc(size, { contiguous: true });
    if (area === null) {
      throw new SabvmError(
        'vzalloc',
        -ENOMEM,
        `the pool's submission and completion rings need ${size} bytes of contiguous memory`,
      );
    }
    this.#area = area;
    this.#bytes = kernel.view(area, size);
    this.#header = headerView(this.#bytes);
    for (let id = 0; id < rings; id++) {
      this.#rings.push({
        id,
        views: ringViews(this.#bytes, id),
        entries: new Array<Job | undefined>(SQ_ENTRIES).fill(undefined),
        port: null,
        mm: null,
        service: null,
        stopping: false,
        servedAt: 0,
        tail: 0,
        reaped: 0,
      });
    }
  }

  /** kaddr of the rings' area (`vmallocinfo` shows it). */
  get area(): number {
    return this.#area;
  }

  /** Ids of the address spaces the threads map their tasks into (empty between tasks). */
  get addressSpaceIds(): number[] {
    return this.#rings.flatMap((r) => (r.mm === null ? [] : [r.mm.id]));
  }

  /**
   * Queue a task; it is submitted as soon as a ring has room. Resolves with its result; rejects
   * with its error, `AbortError`, the timeout's error, the error of a thread that died running
   * it, or `Error('Task queue is at limit')`. Context: main thread.
   */
  submit(task: RingTask): Promise<unknown> {
    if (this.#closed) return Promise.reject(new Error('SabvmPool: the pool is closed'));
    if (task.signal?.aborted === true) return Promise.reject(abortError(task.signal.reason));
    if (this.#pending.length - this.#pendingHead >= this.#maxQueue) {
      return Promise.reject(new Error('Task queue is at limit'));
    }
    return new Promise((resolve, reject) => {
      const job: Job = {
        task,
        resolve,
        reject,
        settled: false,
        ring: -1,
        index: -1,
        ticket: 0,
        stopReason: null,
        revoked: false,
        cleanup: null,
      };
      this.#watch(job);
      this.#pending.push(job);
      this.#pump();
    });
  }

  /**
   * Wait for every task, then take the threads out of their rings, destroy their address spaces
   * and free the rings. Never rejects. Context: main thread.
   */
  async close(): Promise<void> {
    while (this.#inFlight > 0 || this.#pendingHead < this.#pending.length) {
      await new Promise<void>((resolve) => this.#drained.push(resolve));
    }
    this.#closed = true;
    await this.#stopAll();
    this.#kernel.vfree(this.#area);
  }

  /**
   * Ask every thread to leave its ring once the tasks already in it are done, so that a task
   * posted to Piscina directly (`pool.piscina.run`) gets a thread at once rather than after the
   * idle time; the pool's next tasks bring the threads back. Context: main thread.
   */
  yieldThreads(): void {
    for (const ring of this.#rings) {
      if (ring.service !== null && !ring.stopping) this.#leave(ring);
    }
  }

  /**
   * Check the rings against the pool's own record: for every ring a thread serves, the indexes
   * are in order (CQ tail ≤ SQ head ≤ SQ tail, as read in that order; at most one entry running;
   * no more than `SQ_ENTRIES` entries out), the SQ tail is the one the pool published, every entry
   * out has its job, and every claim word is idle, its entry's ticket, or claimed by the ring's
   * thread for the entry it runs. Throws `Error` naming the ring, the rule and the values.
   * Returns whether no task is out (queued here or in a ring).
   * Context: main thread; safe while threads work (it reads each index once, oldest first).
   */
  check(): boolean {
    for (const ring of this.#rings) {
      if (ring.service === null) continue;
      const { ctl, claims } = ring.views;
      const cqTail = Atomics.load(ctl, C_CQ_TAIL);
      const sqHead = Atomics.load(ctl, C_SQ_HEAD);
      const sqTail = Atomics.load(ctl, C_SQ_TAIL);
      const thread = Atomics.load(ctl, C_THREAD) - 1;
      const fail = (rule: string): never => {
        throw new Error(
          `dispatch ring ${ring.id}: ${rule} (CQ tail ${cqTail}, SQ head ${sqHead}, SQ tail ${sqTail}, reaped ${ring.reaped}, submitted ${ring.tail})`,
        );
      };
      const running = (sqHead - cqTail) | 0;
      const waiting = (sqTail - sqHead) | 0;
      const out = (ring.tail - ring.reaped) | 0;
      if (sqTail !== ring.tail) fail('the SQ tail is not the one the pool published');
      if (running < 0 || running > 1) fail('more than one entry taken and not completed');
      if (waiting < 0) fail('the SQ head passed the SQ tail');
      if (out < 0 || out > SQ_ENTRIES) fail(`${out} entries out, of ${SQ_ENTRIES}`);
      if (((cqTail - ring.reaped) | 0) < 0) fail('the pool reaped a CQE that was not posted');
      for (let seq = ring.reaped; seq !== ring.tail; seq = (seq + 1) | 0) {
        const index = seq & (SQ_ENTRIES - 1);
        const job = ring.entries[index];
        if (job === undefined) fail(`entry ${index} is out with no task`);
        const word = Atomics.load(claims, index);
        if (word !== SLOT_IDLE && word !== job?.ticket && claimant(word) !== thread) {
          fail(`entry ${index}'s claim word is ${word}: not idle, its ticket or its thread's`);
        }
      }
    }
    return this.#inFlight === 0 && this.#pendingHead === this.#pending.length;
  }

  /** Abort and timeout of one job. */
  #watch(job: Job): void {
    const { signal, timeout } = job.task;
    if (signal === undefined && timeout === undefined) return;
    const onAbort = (): void => {
      this.#stop(job, abortError(signal?.reason));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer =
      timeout === undefined
        ? null
        : setTimeout(() => {
            this.#stop(job, job.task.timeoutError(abortError(new Error('timeout'))));
          }, timeout);
    timer?.unref();
    job.cleanup = () => {
      signal?.removeEventListener('abort', onAbort);
      if (timer !== null) clearTimeout(timer);
    };
  }

  #settle(job: Job, ok: boolean, value: unknown): void {
    if (job.settled) return;
    job.settled = true;
    job.cleanup?.();
    if (ok) job.resolve(value);
    else job.reject(value);
  }

  /** Stop a job: dequeue it, cancel its entry, or terminate the thread that runs it. */
  #stop(job: Job, reason: Error): void {
    if (job.settled || job.stopReason !== null) return;
    if (job.ring < 0) {
      this.#settle(job, false, reason); // still queued here: the pump drops it
      this.#pump();
      return;
    }
    const ring = this.#rings[job.ring]!;
    const word = Atomics.compareExchange(ring.views.claims, job.index, job.ticket, SLOT_IDLE);
    if (word === job.ticket || word === SLOT_IDLE) {
      // cancelled before the thread claimed it (its CQE will say so), or already finished
      this.#settle(job, false, reason);
      return;
    }
    // running: as Piscina does, stop the thread; the job fails once the thread is gone. The
    // ring's other entries must not die with it: the pool takes back those not claimed yet (the
    // thread, which may finish this task before the termination lands, finds them cancelled), and
    // sends no new entry to the ring
    job.stopReason = reason;
    ring.stopping = true;
    this.#revokeQueued(ring, job);
    // The thread may have finished this task meanwhile and claimed the next entry before it could
    // be taken back. A thread releases a task's claim before it claims another, so this claim
    // still being held means nothing behind it was claimed when the loop above took entries back;
    // released, the task has finished: nothing is stopped, the task settles as aborted (as one
    // found finished above), and the thread leaves the ring once its claimed entries end.
    if (Atomics.load(ring.views.claims, job.index) !== word) {
      job.stopReason = null;
      this.#settle(job, false, reason);
      this.#leave(ring);
      return;
    }
    const threadId = claimant(word);
    const worker = this.#piscina.threads.find((w) => w.threadId === threadId);
    if (worker !== undefined) {
      this.#threads.terminating(threadId);
      void worker.terminate();
    }
    // Piscina is already taking the thread away (it is no longer in its list): should it still
    // be running, it leaves the ring once its task ends, and the ring is cleaned up then
    else this.#leave(ring);
  }

  /**
   * Take back every entry of `ring` that its thread has not claimed, but `running`'s: reset its
   * claim word from its ticket to idle (the thread's claim then fails) and mark the job revoked.
   */
  #revokeQueued(ring: Ring, running: Job): void {
    for (let seq = ring.reaped; seq !== ring.tail; seq = (seq + 1) | 0) {
      const index = seq & (SQ_ENTRIES - 1);
      const job = ring.entries[index];
      if (job === undefined || job === running || job.settled || job.revoked) continue;
      const word = Atomics.compareExchange(ring.views.claims, index, job.ticket, SLOT_IDLE);
      if (word === job.ticket) job.revoked = true;
    }
  }

  /** Put revoked or never-claimed jobs back at the head of the queue, in their order. */
  #requeue(jobs: Job[]): void {
    if (jobs.length === 0) return;
    for (const job of jobs) {
      job.ring = -1;
      job.revoked = false;
    }
    this.#pending.splice(this.#pendingHead, 0, ...jobs);
  }

  /** Move queued jobs into rings while there is room. */
  #pump(): void {
    while (this.#pendingHead < this.#pending.length && this.#inFlight < this.#maxInFlight) {
      const job = this.#pending[this.#pendingHead]!;
      if (job.settled) {
        this.#pendingHead++;
        continue;
      }
      const ring = this.#pickRing();
      if (ring === null) break;
      this.#pendingHead++;
      this.#push(ring, job);
    }
    if (this.#pendingHead === this.#pending.length) {
      this.#pending.length = 0;
      this.#pendingHead = 0;
    }
    this.#checkIdle();
  }

  /** The ring for the next job: an idle served ring, else a new one, else the least loaded. */
  #pickRing(): Ring | null {
    let best: Ring | null = null;
    let bestLoad = SQ_ENTRIES;
    let unserved: Ring | null = null;
    for (const ring of this.#rings) {
      if (ring.service === null) {
        unserved ??= ring;
        continue;
      }
      if (ring.stopping) continue;
      const load = (ring.tail - ring.reaped) | 0;
      if (load < bestLoad) {
        best = ring;
        bestLoad = load;
      }
    }
    if (best !== null && bestLoad === 0) return best;
    if (unserved !== null && this.#serve(unserved)) return unserved;
    return best;
  }

  /** Start a thread on `ring` (through Piscina); false when no address space is left for it. */
  #serve(ring: Ring): boolean {
    const mm = this.#kernel.createAddressSpace();
    if (mm === null) return false;
    const { ctl, claims } = ring.views;
    for (let i = 0; i < ctl.length; i++) Atomics.store(ctl, i, 0);
    for (let i = 0; i < claims.length; i++) Atomics.store(claims, i, SLOT_IDLE);
    ctl[C_MM] = mm.id; // before sharing: the service reads it when it starts
    ring.mm = mm;
    ring.tail = 0;
    ring.reaped = 0;
    ring.stopping = false;
    ring.servedAt = performance.now();
    const { port1, port2 } = new MessageChannel();
    port1.unref();
    ring.port = port1;
    const message: ServiceMessage = {
      area: this.#area,
      bytes: this.#bytes.length,
      ring: ring.id,
      port: port2,
    };
    // settles once the thread has left the ring and the ring is cleaned up
    ring.service = this.#postService(message, {
      filename: SERVICE,
      transferList: [port2],
    }).then(
      () => this.#left(ring, null),
      (error: unknown) => this.#left(ring, error),
    );
    return true;
  }

  /** Fill the next SQE of `ring` with `job` and publish it. */
  #push(ring: Ring, job: Job): void {
    const { views } = ring;
    const index = ring.tail & (SQ_ENTRIES - 1);
    const base = index * SQE_WORDS;
    const { sqes } = views;
    const { task } = job;
    try {
      sqes[base + E_HANDLER] = this.#handler(task.filename, task.name);
      sqes[base + E_FLAGS] = task.mmId >= 0 ? SQE_F_MM_GIVEN : 0;
      sqes[base + E_MM] = task.mmId;
      this.#encodeArgument(ring, index, task);
    } catch (error) {
      this.#settle(job, false, error); // an argument that cannot be cloned: nothing was sent
      return;
    }
    this.#ticket = this.#ticket >= MAX_TICKET ? 1 : this.#ticket + 1;
    job.ticket = this.#ticket;
    sqes[base + E_TICKET] = job.ticket;
    Atomics.store(views.claims, index, job.ticket);
    job.ring = ring.id;
    job.index = index;
    ring.entries[index] = job;
    ring.tail = (ring.tail + 1) | 0;
    this.#inFlight++;
    Atomics.store(views.ctl, C_SQ_TAIL, ring.tail); // publishes the SQE, its data and its claim
    if (Atomics.load(views.ctl, C_NEED_WAKEUP) !== 0) {
      Atomics.store(views.ctl, C_NEED_WAKEUP, 0);
      Atomics.notify(views.ctl, C_NEED_WAKEUP);
    }
    if (!this.#reaping) {
      this.#reaping = true;
      void this.#reap();
    }
  }

  /** The registry offset of a task module's export; registers it on first use. */
  #handler(filename: string, name: string): number {
    let names = this.#handlers.get(filename);
    if (names === undefined) {
      names = new Map();
      this.#handlers.set(filename, names);
    }
    const known = names.get(name);
    if (known !== undefined) return known;
    const written = writeRegistry(this.#bytes, this.#registryUsed, filename, name);
    if (written === null) {
      throw new RangeError(
        `SabvmPool: too many task modules and export names for the rings' registry (${this.#count} so far)`,
      );
    }
    this.#registryUsed = written[1];
    names.set(name, written[0]);
    this.#count++;
    return written[0];
  }

  #encodeArgument(ring: Ring, index: number, task: RingTask): void {
    const { sqes, data } = ring.views;
    const base = index * SQE_WORDS;
    const { arg, ranges } = task;
    if (inlineRanges(ranges)) {
      sqes[base + E_NR_RANGES] = ranges.length / RANGE_WORDS;
      for (let i = 0; i < ranges.length; i++) {
        sqes[base + E_RANGES + i] = (ranges[i] as number | undefined) ?? RANGE_NOT_GIVEN;
      }
      if (arg === undefined) {
        sqes[base + E_ARG_KIND] = ARG_UNDEFINED;
        return;
      }
      if (typeof arg === 'number') {
        sqes[base + E_ARG_KIND] = ARG_NUMBER;
        sqes[base + E_ARG] = arg;
        return;
      }
      let bytes: Uint8Array | null;
      try {
        bytes = serialize(arg);
      } catch {
        bytes = null; // a SharedArrayBuffer or another host object: structured clone takes it
      }
      if (bytes !== null && bytes.length <= DATA_BYTES) {
        data.set(bytes, index * DATA_BYTES);
        sqes[base + E_ARG_KIND] = ARG_DATA;
        sqes[base + E_ARG] = bytes.length;
        return;
      }
    }
    ring.port!.postMessage({ arg, ranges });
    sqes[base + E_ARG_KIND] = ARG_PORT;
  }

  /**
   * Reap completions while tasks are in flight: poll briefly when none is ready (a short task
   * answers within microseconds), then sleep on the doorbell with `Atomics.waitAsync`, holding a
   * timer so that Node's event loop stays alive while tasks are out.
   */
  async #reap(): Promise<void> {
    let slice = performance.now();
    try {
      while (this.#inFlight > 0) {
        if (performance.now() - slice > SLICE_MS) {
          await new Promise((resolve) => setImmediate(resolve)); // the event loop gets a turn
          slice = performance.now();
        }
        const seen = Atomics.load(this.#header, H_DOORBELL);
        if (this.#reapAll() > 0) {
          await Promise.resolve(); // the callers' continuations run first (they may submit more)
          continue;
        }
        // a caller awaiting one task at a time submits its next a few microtask turns later
        for (let turn = 0; turn < YIELD_TURNS; turn++) await Promise.resolve();
        if (this.#inFlight === 0) continue;
        const since = performance.now();
        if (this.#policy.spin && this.#pollDoorbell(seen)) {
          this.#policy.waited(performance.now() - since);
          continue;
        }
        Atomics.store(this.#header, H_OWNER_WAITING, 1);
        const starving = this.#handOver();
        const wait = Atomics.waitAsync(
          this.#header,
          H_DOORBELL,
          seen,
          starving ? START_WAIT_MS : undefined,
        );
        if (wait.async) {
          const keepAlive = setInterval(() => undefined, MAX_TIMER_MS);
          try {
            await wait.value;
          } finally {
            clearInterval(keepAlive);
          }
        }
        Atomics.store(this.#header, H_OWNER_WAITING, 0);
        slice = performance.now();
        this.#policy.waited(slice - since);
      }
    } finally {
      this.#reaping = false;
    }
  }

  /**
   * A ring with tasks whose service Piscina has not started yet (its thread died young, or
   * Piscina holds the service in its queue) must not wait behind threads parked idle in other
   * rings: after `START_WAIT_MS`, the idle ones leave, and Piscina gives their threads to the
   * waiting service. Returns whether a ring is still waiting for its thread (poll again soon).
   */
  #handOver(): boolean {
    const now = performance.now();
    let starving = false;
    for (const ring of this.#rings) {
      if (ring.service === null || ring.stopping || ring.tail === ring.reaped) continue;
      if (Atomics.load(ring.views.ctl, C_THREAD) !== 0) continue;
      starving = true;
      if (now - ring.servedAt < START_WAIT_MS) continue;
      for (const idle of this.#rings) {
        if (idle.service !== null && !idle.stopping && idle.tail === idle.reaped) {
          this.#leave(idle);
        }
      }
    }
    return starving;
  }

  /** Ask the thread on `ring` to leave it once it has taken the entries already there. */
  #leave(ring: Ring): void {
    ring.stopping = true;
    Atomics.store(ring.views.ctl, C_STOP, 1);
    Atomics.store(ring.views.ctl, C_NEED_WAKEUP, 0);
    Atomics.notify(ring.views.ctl, C_NEED_WAKEUP);
  }

  /** Poll the doorbell for up to `SPIN_MS`: true when it rang. */
  #pollDoorbell(seen: number): boolean {
    const until = performance.now() + SPIN_MS;
    for (let i = 1; ; i++) {
      if (Atomics.load(this.#header, H_DOORBELL) !== seen) return true;
      if ((i & 63) === 0 && performance.now() > until) return false;
      cpuRelax();
    }
  }

  /** Settle the jobs of every posted CQE; returns how many. */
  #reapAll(): number {
    let reaped = 0;
    const revoked: Job[] = [];
    for (const ring of this.#rings) {
      if (ring.service === null) continue;
      const tail = Atomics.load(ring.views.ctl, C_CQ_TAIL);
      while (ring.reaped !== tail) {
        this.#complete(ring, ring.reaped & (SQ_ENTRIES - 1), revoked);
        ring.reaped = (ring.reaped + 1) | 0;
        reaped++;
      }
    }
    this.#requeue(revoked);
    if (reaped > 0) this.#pump();
    return reaped;
  }

  /**
   * Settle the job of CQE `index` of `ring` and free its entry; a revoked job (its CQE says
   * cancelled) goes to `revoked` instead, to be queued again.
   */
  #complete(ring: Ring, index: number, revoked: Job[]): void {
    const job = ring.entries[index]!;
    ring.entries[index] = undefined;
    this.#inFlight--;
    const { cqes, data } = ring.views;
    const base = index * CQE_WORDS;
    const kind = cqes[base + Q_KIND];
    const how = cqes[base + Q_HOW];
    const word = cqes[base + Q_VALUE] ?? 0;
    let value: unknown;
    if (how === ARG_NUMBER) value = word;
    else if (how === ARG_DATA) {
      const start = index * DATA_BYTES;
      // a copy: v8.deserialize hands back typed arrays as views of its input
      value = deserialize(data.slice(start, start + word));
    } else if (how === ARG_PORT) value = receiveMessageOnPort(ring.port!)?.message;
    if (kind === RES_CANCELLED && job.revoked && !job.settled) revoked.push(job);
    else if (kind === RES_CANCELLED) this.#settle(job, false, abortError(undefined));
    else if (kind === RES_OK) this.#settle(job, true, value);
    else this.#settle(job, false, errorFromWire(value as WireError));
  }

  /** Arm or disarm the idle timer that takes the threads out of their rings. */
  #checkIdle(): void {
    const idle = this.#inFlight === 0 && this.#pendingHead === this.#pending.length;
    if (!idle) {
      if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
      this.#idleTimer = null;
      return;
    }
    for (const resolve of this.#drained.splice(0)) resolve();
    if (this.#idleTimer !== null || this.#closed) return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = null;
      if (this.#inFlight === 0) void this.#stopAll();
    }, IDLE_MS);
    this.#idleTimer.unref();
  }

  /** Ask every served ring's thread to leave; resolves when all have. */
  async #stopAll(): Promise<void> {
    this.yieldThreads();
    await Promise.all(this.#rings.flatMap((ring) => (ring.service === null ? [] : [ring.service])));
  }

  /**
   * The thread left `ring`: it stopped (`error` null), or it died (crashed, terminated). Reap what
   * it completed; a dead thread's claimed job fails, its unclaimed jobs go back to the queue. Then
   * destroy the ring's address space (after the thread's kernel attachment is reaped).
   */
  async #left(ring: Ring, error: unknown): Promise<void> {
    this.#reapAll();
    const { ctl, claims } = ring.views;
    const thread = Atomics.load(ctl, C_THREAD) - 1;
    if (error !== null && thread >= 0) await this.#threads.exited(thread);
    this.#reapAll(); // a CQE published just before the end
    // a thread that dies before it enters its ring was killed early, or the service cannot start
    // at all (then every retry fails the same way): after a few such deaths in a row, fail the
    // waiting tasks with the error rather than retry forever
    this.#startFailures = thread < 0 && error !== null ? this.#startFailures + 1 : 0;
    const hopeless = this.#startFailures >= START_ATTEMPTS;
    const requeue: Job[] = [];
    for (let seq = ring.reaped; seq !== ring.tail; seq = (seq + 1) | 0) {
      const index = seq & (SQ_ENTRIES - 1);
      const job = ring.entries[index]!;
      ring.entries[index] = undefined;
      this.#inFlight--;
      const word = Atomics.compareExchange(claims, index, job.ticket, SLOT_IDLE);
      if (hopeless) {
        this.#settle(job, false, error);
      } else if ((word === job.ticket || job.revoked) && !job.settled) {
        requeue.push(job); // never claimed: it runs on another thread
      } else {
        const cause = error ?? new Error('the thread left its ring');
        this.#settle(job, false, job.stopReason ?? cause);
      }
    }
    ring.reaped = ring.tail;
    ring.mm?.destroy();
    ring.mm = null;
    ring.port?.close();
    ring.port = null;
    ring.service = null;
    ring.stopping = false;
    this.#requeue(requeue);
    if (!this.#closed) this.#pump();
    else this.#checkIdle();
  }
}
