/**
 * The ring service: what a pool thread runs to take tasks from its submission queue, io_uring
 * style, instead of one Piscina message per task. The pool posts it to a thread once (through
 * Piscina, with `filename` set to this module); it then drains the ring, spins briefly when the
 * ring is empty, and sleeps in `Atomics.wait` until the pool submits more or asks it to stop.
 *
 * Kernel counterpart: an `io_uring` SQPOLL thread (`io_uring/sqpoll.c`): it consumes SQEs,
 * posts one CQE each, and sets `IORING_SQ_NEED_WAKEUP` before it sleeps.
 *
 * For each entry it claims the task (an entry cancelled before the claim posts `RES_CANCELLED` and
 * runs nothing), maps the task's areas into the thread's own address space, runs the task function
 * inside a read section, unmaps them, and posts the result. The format is `dispatch-ring.ts`'s.
 *
 * Worker-thread code only.
 *
 * @module
 */
import { pathToFileURL } from 'node:url';
import { deserialize, serialize } from 'node:v8';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { receiveMessageOnPort, threadId, type MessagePort } from 'node:worker_threads';
import type { AddressSpace, Kernel } from '@sabvm/core';
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
  readRegistry,
  RES_CANCELLED,
  RES_ERROR,
  RES_OK,
  ringViews,
  SQ_ENTRIES,
  SQE_F_MM_GIVEN,
  SpinPolicy,
  SQE_WORDS,
  type RingViews,
  type ServiceMessage,
} from './dispatch-ring.js';
import { mapArea, pageRound, type Mapping } from './map-area.js';
import { claimedBy, SLOT_IDLE } from './protocol.js';
import {
  flushRings,
  kernelViewIn,
  TASK_FUNCTION,
  threadState,
  toWire,
  UserRange,
  type MappedRange,
  type TaskFunction,
} from './task-runtime.js';

/** How long a thread waits for an argument still on its way through the port, in milliseconds. */
const PORT_WAIT_MS = 5000;
/** How long an idle thread polls its ring before it sleeps, in milliseconds. */
const SPIN_MS = 0.05;

/**
 * What `#portMessage` gives for a message that arrived empty. The pool never posts one: a thread
 * that Node is terminating receives each message as `undefined` (its contents cannot be read
 * any more) while its code still runs for a while (seen on Node 26).
 */
const STOPPING = Symbol('stopping');

/** What travels through the port for an entry whose argument is `ARG_PORT`. */
interface PortArgument {
  readonly arg: unknown;
  readonly ranges: readonly (number | undefined)[];
}

type Handler = TaskFunction | Error;

class RingService {
  readonly #kernel: Kernel;
  readonly #header: Int32Array;
  readonly #ring: RingViews;
  readonly #port: MessagePort;
  readonly #registry: Uint8Array;
  /** The thread's own address space: a task's areas are mapped into it and unmapped after. */
  readonly #mm: AddressSpace;
  readonly #handlers = new Map<number, Handler>();
  readonly #claim: number = claimedBy(threadId);
  readonly #policy = new SpinPolicy(SPIN_MS);

  constructor(kernel: Kernel, message: ServiceMessage) {
    this.#kernel = kernel;
    const bytes = kernel.view(message.area, message.bytes);
    this.#registry = bytes;
    this.#header = headerView(bytes);
    this.#ring = ringViews(bytes, message.ring);
    this.#port = message.port;
    this.#mm = kernel.addressSpace(this.#ring.ctl[C_MM] ?? 0); // written before sharing
  }

  async run(): Promise<number> {
    const { ctl } = this.#ring;
    Atomics.store(ctl, C_THREAD, threadId + 1);
    let head = Atomics.load(ctl, C_SQ_HEAD);
    let ran = 0;
    for (;;) {
      if (head !== Atomics.load(ctl, C_SQ_TAIL)) {
        const index = head & (SQ_ENTRIES - 1);
        const offset = this.#ring.sqes[index * SQE_WORDS + E_HANDLER] ?? 0;
        const handler = this.#handlers.get(offset) ?? (await this.#load(offset));
        Atomics.store(ctl, C_SQ_HEAD, (head + 1) | 0);
        // an argument that travels by the port: take it first (it may still be on its way)
        const sent =
          this.#ring.sqes[index * SQE_WORDS + E_ARG_KIND] === ARG_PORT
            ? await this.#portMessage()
            : undefined;
        // the thread is being terminated: leave the entry unclaimed (the pool sends it again,
        // to another thread) and write no completion
        if (sent === STOPPING) return ran;
        const pending = this.#runEntry(index, handler, sent);
        if (pending !== undefined) await pending;
        flushRings(); // the task's batched ring records go out before its completion
        head = (head + 1) | 0;
        Atomics.store(ctl, C_CQ_TAIL, head); // publishes the CQE and its data
        Atomics.add(this.#header, H_DOORBELL, 1);
        if (Atomics.load(this.#header, H_OWNER_WAITING) !== 0) {
          Atomics.notify(this.#header, H_DOORBELL);
        }
        ran++;
        continue;
      }
      if (Atomics.load(ctl, C_STOP) !== 0) return ran;
      const since = performance.now();
      if (this.#policy.spin && this.#spin(head)) {
        this.#policy.waited(performance.now() - since);
        continue;
      }
      await nextTurn(); // timers and I/O that finished tasks left behind run before we sleep
      Atomics.store(ctl, C_NEED_WAKEUP, 1);
      if (head === Atomics.load(ctl, C_SQ_TAIL) && Atomics.load(ctl, C_STOP) === 0) {
        Atomics.wait(ctl, C_NEED_WAKEUP, 1);
      }
      Atomics.store(ctl, C_NEED_WAKEUP, 0);
      this.#policy.waited(performance.now() - since);
    }
  }

  /** Poll the ring for up to `SPIN_MS`: true when an entry (or a stop) arrived. */
  #spin(head: number): boolean {
    const { ctl } = this.#ring;
    const until = performance.now() + SPIN_MS;
    for (let i = 1; ; i++) {
      if (head !== Atomics.load(ctl, C_SQ_TAIL) || Atomics.load(ctl, C_STOP) !== 0) return true;
      if ((i & 63) === 0 && performance.now() > until) return false;
      cpuRelax();
    }
  }

  /** Load the task function of registry entry `offset` (once); an `Error` if there is none. */
  async #load(offset: number): Promise<Handler> {
    const [filename, name] = readRegistry(this.#registry, offset);
    let handler: Handler;
    try {
      const url = filename.startsWith('file:') ? filename : pathToFileURL(filename).href;
      const mod = (await import(url)) as Record<string, unknown>;
      const fallback = mod.default as Record<string, unknown> | undefined;
      const exported = name === '' ? mod.default : (mod[name] ?? fallback?.[name]);
      const fn = (exported as Record<symbol, unknown> | undefined)?.[TASK_FUNCTION];
      handler =
        typeof fn === 'function'
          ? (fn as TaskFunction)
          : exported === undefined
            ? new TypeError(
                `SabvmPool: the task module ${filename} has no export ${name === '' ? 'default' : `'${name}'`}`,
              )
            : new TypeError('SabvmPool: the task export was not made with defineTask()');
    } catch (error) {
      handler = error instanceof Error ? error : new Error(String(error));
    }
    this.#handlers.set(offset, handler);
    return handler;
  }

  /**
   * Claim entry `index`, run its task and write its CQE; a promise when the task is async.
   * Everything the task mapped is unmapped, and its read section closed, before the CQE is
   * written.
   */
  #runEntry(index: number, handler: Handler, sent: unknown): Promise<void> | undefined {
    const { sqes, claims } = this.#ring;
    const base = index * SQE_WORDS;
    const ticket = sqes[base + E_TICKET] ?? 0;
    if (Atomics.compareExchange(claims, index, ticket, this.#claim) !== ticket) {
      this.#complete(index, RES_CANCELLED, undefined);
      return undefined;
    }
    const kernel = this.#kernel;
    kernel.rcuReadLock();
    const mapped: Mapping[] = [];
    let value: unknown;
    try {
      const { arg, ranges: words, inline } = this.#argument(index, sent);
      if (handler instanceof Error) throw handler;
      const given = ((sqes[base + E_FLAGS] ?? 0) & SQE_F_MM_GIVEN) !== 0;
      const mm = given ? kernel.addressSpace(sqes[base + E_MM] ?? 0) : this.#mm;
      const ranges: MappedRange[] = [];
      for (let r = 0; r < words.length; r += RANGE_WORDS) {
        const addr = words[r]!;
        const length = words[r + 1];
        const prot = words[r + 2];
        if (given) {
          ranges.push(new UserRange(mm, addr, length!, prot!));
        } else {
          const m = mapArea(
            kernel,
            mm,
            addr,
            inline && length === RANGE_NOT_GIVEN ? undefined : length,
            inline && prot === RANGE_NOT_GIVEN ? undefined : prot,
          );
          mapped.push(m);
          ranges.push(new UserRange(mm, m.uaddr, m.length, m.prot));
        }
      }
      value = handler({ kernel, mm, ranges, arg });
    } catch (error) {
      this.#finish(index, mapped, RES_ERROR, error);
      return undefined;
    }
    if (typeof (value as PromiseLike<unknown> | null)?.then !== 'function') {
      this.#finish(index, mapped, RES_OK, value);
      return undefined;
    }
    return Promise.resolve(value).then(
      (settled) => {
        this.#finish(index, mapped, RES_OK, settled);
      },
      (error: unknown) => {
        this.#finish(index, mapped, RES_ERROR, error);
      },
    );
  }

  /** The argument and the range words of entry `index`, as the pool sent them. */
  #argument(
    index: number,
    sent: unknown,
  ): {
    arg: unknown;
    ranges: ArrayLike<number | undefined>;
    inline: boolean;
  } {
    const { sqes, data } = this.#ring;
    const base = index * SQE_WORDS;
    const kind = sqes[base + E_ARG_KIND];
    if (kind === ARG_PORT) {
      const received = sent as PortArgument | undefined;
      if (received === undefined) throw new Error('SabvmPool: the task argument was lost');
      return { ...received, inline: false };
    }
    const nr = sqes[base + E_NR_RANGES] ?? 0;
    const ranges = sqes.subarray(base + E_RANGES, base + E_RANGES + RANGE_WORDS * nr);
    if (kind === ARG_NUMBER) return { arg: sqes[base + E_ARG], ranges, inline: true };
    if (kind === ARG_DATA) {
      const start = index * DATA_BYTES;
      // a copy: v8.deserialize hands back typed arrays as views of its input
      const arg: unknown = deserialize(data.slice(start, start + (sqes[base + E_ARG] ?? 0)));
      return { arg, ranges, inline: true };
    }
    return { arg: undefined, ranges, inline: true };
  }

  /**
   * The next message of the ring's port: one per entry whose argument travels by it, in entry
   * order. A message posted while the port was on its way to this thread can reach it a little
   * later than the entry: wait for it, letting this thread's event loop run, up to
   * `PORT_WAIT_MS`; undefined after that (the task then fails, saying so). `STOPPING` when the
   * message arrived empty: the thread is being terminated.
   */
  async #portMessage(): Promise<unknown> {
    const until = performance.now() + PORT_WAIT_MS;
    for (;;) {
      const got = receiveMessageOnPort(this.#port);
      if (got !== undefined) return got.message === undefined ? STOPPING : got.message;
      if (performance.now() > until) return undefined;
      await nextTurn();
    }
  }

  /**
   * Check and post the task's outcome, then release what the task held: its mappings, its read
   * section and its claim. The caller publishes the CQE (`C_CQ_TAIL`).
   */
  #finish(index: number, mapped: readonly Mapping[], kind: number, value: unknown): void {
    let outcome = kind;
    let result = value;
    if (outcome === RES_OK) {
      const leak = kernelViewIn(result, this.#kernel.handle.buffer, 'the result', 0);
      if (leak !== null) {
        outcome = RES_ERROR;
        result = new TypeError(
          `the task returned ${leak}: a view over the kernel's physical memory, which would hand ` +
            'the caller all of it once cloned; return an address or a number, or a copy ' +
            '(view.slice())',
        );
      }
    }
    try {
      this.#complete(index, outcome, outcome === RES_ERROR ? toWire(result) : result);
    } catch (error) {
      // the result could not be cloned: the caller gets that error instead
      this.#complete(index, RES_ERROR, toWire(error));
    }
    for (const m of mapped) this.#mm.munmap(m.uaddr, pageRound(m.length));
    this.#kernel.rcuReadUnlock();
    Atomics.compareExchange(this.#ring.claims, index, this.#claim, SLOT_IDLE);
  }

  /** Write CQE `index`: `kind`, and `value` by the cheapest way it travels. */
  #complete(index: number, kind: number, value: unknown): void {
    const { cqes, data } = this.#ring;
    const base = index * CQE_WORDS;
    let how = ARG_UNDEFINED;
    let word = 0;
    if (typeof value === 'number') {
      how = ARG_NUMBER;
      word = value;
    } else if (value !== undefined) {
      let bytes: Uint8Array | null = null;
      try {
        bytes = serialize(value);
      } catch {
        bytes = null; // a SharedArrayBuffer or another host object: structured clone takes it
      }
      if (bytes !== null && bytes.length <= DATA_BYTES) {
        data.set(bytes, index * DATA_BYTES);
        how = ARG_DATA;
        word = bytes.length;
      } else {
        this.#port.postMessage(value);
        how = ARG_PORT;
      }
    }
    cqes[base + Q_KIND] = kind;
    cqes[base + Q_HOW] = how;
    cqes[base + Q_VALUE] = word;
  }
}

/**
 * The Piscina handler of the ring service: attach (once per thread), then serve ring
 * `message.ring` until the pool stops it; resolves with the number of entries taken.
 * Context: a pool thread, posted by the pool itself.
 */
export default async function service(message: ServiceMessage): Promise<number> {
  return new RingService(threadState().kernel, message).run();
}
