/**
 * `SabvmProcess`: one user address space driven from the main thread, and the mappings in it.
 *
 * Kernel counterpart: a process's `mm_struct` seen from its parent — `mmap` of a driver that maps
 * a vmalloc buffer (`remap_vmalloc_range_partial`), `munmap`, `mprotect`, `/proc/<pid>/maps`, and
 * `exit_mmap` when the process goes away.
 *
 * Main-thread code only.
 *
 * @module
 */
import { EBUSY, EINVAL, type AddressSpace, type Kernel } from '@sabvm/core';
import { inspect } from 'node:util';
import { SabvmError } from './errors.js';
import { mapArea, pageRound, type AreaSpec, type Mapping } from './map-area.js';

export type { AreaSpec, Mapping } from './map-area.js';

/** Options of one task run (`SabvmPool.run`, {@link SabvmProcess.run}). */
export interface RunOptions<A = unknown> {
  /** An argument for the task function: structured-cloned, so keep it small. */
  readonly arg?: A;
  /** Aborts the task: it is dequeued, or its thread is terminated. */
  readonly signal?: AbortSignal;
  /** Aborts the task after this many milliseconds. */
  readonly timeout?: number;
  /** Another task module than the pool's. */
  readonly filename?: string | URL;
  /** A named export of the task module instead of the default export. */
  readonly name?: string;
}

/**
 * What a process needs from the pool that made it: a way to run one task. The pool gives each
 * process a closure over its own (private) dispatch, so this module never imports `pool.ts`.
 */
export interface TaskDispatcher {
  /**
   * Post one task for address space `mmId` with `mappings`; settle only when no thread touches
   * the address space for it any more. Rejects as `SabvmPool.run` does. Context: main thread.
   */
  dispatch<R>(mmId: number, mappings: readonly Mapping[], options: RunOptions): Promise<R>;
}

/** Options of {@link SabvmProcess.run}. */
export interface ProcessRunOptions<A = unknown> extends RunOptions<A> {
  /**
   * The mappings the task receives, in order; default: all of the process's, by address (none when
   * `areas` is given).
   */
  readonly mappings?: readonly Mapping[];
  /**
   * Areas to map for this task alone, after `mappings` — the same shape as `SabvmPool.run`'s
   * `areas`; they are unmapped when the task settles.
   */
  readonly areas?: readonly (AreaSpec | number)[];
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/**
 * A long-lived user process: an address space that outlives tasks. Several tasks, on any thread of
 * the pool, may use it in turn or at once; mappings may be added and removed between them. Made by
 * `SabvmPool.createProcess`; destroyed by {@link SabvmProcess.destroy} or the pool's `close`.
 */
export class SabvmProcess {
  /** The address-space id a task message carries (`mm.id`). */
  readonly id: number;
  /** The address space itself, for main-thread access (`segments`, `read`, `pagemap`…). */
  readonly mm: AddressSpace;
  readonly #kernel: Kernel;
  readonly #dispatcher: TaskDispatcher;
  readonly #onDestroy: () => void;
  #mappings: Mapping[] = [];
  readonly #pins = new Map<Mapping, number>();
  readonly #inFlight = new Set<Promise<unknown>>();
  #dying = false;
  #dead = false;

  /**
   * Use `SabvmPool.createProcess`. Context: main thread.
   * @internal
   */
  constructor(kernel: Kernel, mm: AddressSpace, dispatcher: TaskDispatcher, onDestroy: () => void) {
    this.#kernel = kernel;
    this.#dispatcher = dispatcher;
    this.mm = mm;
    this.id = mm.id;
    this.#onDestroy = onDestroy;
  }

  /**
   * A small plain form for `JSON.stringify` and `util.inspect`: its id, whether it is alive, and
   * its mappings (numbers only — never the kernel, whose memory would serialize whole).
   */
  toJSON(): { type: 'SabvmProcess'; id: number; alive: boolean; mappings: readonly Mapping[] } {
    return { type: 'SabvmProcess', id: this.id, alive: this.alive, mappings: this.mappings };
  }

  /** `false` once {@link SabvmProcess.destroy} has begun. Context: any. */
  get alive(): boolean {
    return !this.#dying && !this.#dead;
  }

  /** The current mappings, by user address. Context: main thread. */
  get mappings(): readonly Mapping[] {
    return [...this.#mappings].sort((a, b) => a.uaddr - b.uaddr);
  }

  /**
   * Map a vmalloc area (or `length` bytes of it from `kaddr`) with `prot`: `mmap(0, …, MAP_SHARED)`
   * picks a user range, `remapPartial` fills it with the area's frames. A number is shorthand for
   * `{ kaddr }`. Returns the new mapping. Throws {@link SabvmError}: `EINVAL` when no live vmalloc
   * area contains `kaddr`, or `mmap`'s / `remapPartial`'s errno (`EINVAL` for an area not made by
   * `vmallocUser` or a range past its end, `ENOMEM` when the address space or the page tables are
   * full); nothing stays mapped after a failure. Throws `Error` when the process is destroyed.
   * Context: main thread; takes the address space's locks briefly.
   */
  map(area: AreaSpec | number): Mapping {
    this.#assertAlive();
    const spec: AreaSpec = typeof area === 'number' ? { kaddr: area } : area;
    const mapping = mapArea(this.#kernel, this.mm, spec.kaddr, spec.length, spec.prot);
    this.#mappings.push(mapping);
    return mapping;
  }

  /**
   * Remove a mapping (`munmap`): its PTEs go, its frames lose a reference (a frame whose area was
   * already `vfree`d returns to the free pool). Throws {@link SabvmError} `EBUSY` while a running
   * task has the mapping, `EINVAL` for a mapping not of this process (or already unmapped), or
   * `munmap`'s errno; `Error` when the process is destroyed. Context: main thread.
   */
  unmap(mapping: Mapping): void {
    this.#assertAlive();
    this.#assertOwnIdle(mapping, 'munmap');
    const rc = this.mm.munmap(mapping.uaddr, pageRound(mapping.length));
    if (rc < 0) throw new SabvmError('munmap', rc, `uaddr ${hex(mapping.uaddr)}`);
    this.#mappings = this.#mappings.filter((m) => m !== mapping);
  }

  /**
   * Change a mapping's protection (`mprotect`) and return the mapping that replaces it. Throws as
   * {@link SabvmProcess.unmap} does (`EBUSY`, `EINVAL`, `mprotect`'s errno). Context: main thread.
   */
  protect(mapping: Mapping, prot: number): Mapping {
    this.#assertAlive();
    this.#assertOwnIdle(mapping, 'mprotect');
    const rc = this.mm.mprotect(mapping.uaddr, pageRound(mapping.length), prot);
    if (rc < 0) throw new SabvmError('mprotect', rc, `uaddr ${hex(mapping.uaddr)}, prot ${prot}`);
    const next: Mapping = { ...mapping, prot };
    this.#mappings = this.#mappings.map((m) => (m === mapping ? next : m));
    return next;
  }

  /**
   * Run one task in this process with `options.mappings` (default: all its mappings). The
   * mappings are pinned until the promise settles (unmap/protect throw `EBUSY` meanwhile); when it
   * settles, no thread touches them for this task any more. Rejects as `SabvmPool.run` does, plus
   * `Error` when the process is destroyed and {@link SabvmError} `EINVAL` for a mapping that is not
   * this process's. Context: main thread; does not block.
   */
  async run<R = unknown, A = unknown>(options: ProcessRunOptions<A> = {}): Promise<R> {
    this.#assertAlive();
    const temporary = this.#mapAll(options.areas ?? []);
    try {
      const given = options.mappings ?? (options.areas === undefined ? this.mappings : []);
      return await this.#run<R>([...given, ...temporary], options);
    } finally {
      if (this.alive) for (const m of temporary) this.unmap(m);
    }
  }

  /** Map every area of `areas`, or none: a failure unmaps the ones made, then throws. */
  #mapAll(areas: readonly (AreaSpec | number)[]): Mapping[] {
    const made: Mapping[] = [];
    try {
      for (const a of areas) made.push(this.map(a));
    } catch (error) {
      for (const m of made) this.unmap(m);
      throw error;
    }
    return made;
  }

  async #run<R>(mappings: readonly Mapping[], options: RunOptions): Promise<R> {
    for (const m of mappings) this.#assertOwn(m, 'run');
    for (const m of mappings) this.#pins.set(m, (this.#pins.get(m) ?? 0) + 1);
    const task = this.#dispatcher.dispatch<R>(this.id, mappings, options);
    this.#inFlight.add(task);
    try {
      return await task;
    } finally {
      this.#inFlight.delete(task);
      for (const m of mappings) {
        const pins = (this.#pins.get(m) ?? 1) - 1;
        if (pins === 0) this.#pins.delete(m);
        else this.#pins.set(m, pins);
      }
    }
  }

  /** The address space as `/proc/<pid>/maps` text; `''` once destroyed. Context: any thread. */
  maps(): string {
    return this.mm.maps();
  }

  /**
   * Refuse new tasks, wait for the running ones to settle, then destroy the address space
   * (`exit_mmap`: every mapping and page table freed). Idempotent; never rejects.
   * Context: main thread; awaits the tasks in flight.
   */
  async destroy(): Promise<void> {
    this.#dying = true;
    while (this.#inFlight.size > 0) {
      await Promise.allSettled([...this.#inFlight]);
    }
    this.destroySync();
  }

  /**
   * Destroy the address space now. The caller guarantees that no task of this process is in
   * flight. Context: main thread.
   * @internal
   */
  destroySync(): void {
    this.#dying = true;
    if (this.#dead) return;
    this.#dead = true;
    this.#mappings = [];
    this.mm.destroy();
    this.#onDestroy();
  }

  #assertAlive(): void {
    if (!this.alive) throw new Error(`SabvmProcess ${this.id}: the process is destroyed`);
  }

  #assertOwn(mapping: Mapping, syscall: string): void {
    if (!this.#mappings.includes(mapping)) {
      throw new SabvmError(syscall, -EINVAL, `not a current mapping of process ${this.id}`);
    }
  }

  #assertOwnIdle(mapping: Mapping, syscall: string): void {
    this.#assertOwn(mapping, syscall);
    if (this.#pins.has(mapping)) {
      throw new SabvmError(
        syscall,
        -EBUSY,
        `a running task of process ${this.id} uses the mapping`,
      );
    }
  }
}

// `util.inspect` and `console.log` print the small form too (set on the prototype: a computed
// class member would not survive isolatedDeclarations)
Object.defineProperty(SabvmProcess.prototype, inspect.custom, {
  value(this: SabvmProcess): object {
    return this.toJSON();
  },
  configurable: true,
  writable: true,
});
