/**
 * Suite `scaling`: total map/unmap operations per second from 1 thread, from N threads in their
 * own address spaces (disjoint: they share only the kernel's frame allocator and area table), and
 * from N threads contending on one address space (its mmap_lock and page tables).
 *
 * Each round releases every participant at once through an Atomics start barrier; the round's
 * time is from the first thread's start to the last thread's end (reported to tinybench as the
 * sample's duration), so a thread that starts late counts against the total.
 *
 * @module
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { Kernel, PAGE_SIZE } from '@sabvm/core';
import { SuiteBench, type BenchCase } from '../harness.js';
import { checkIntegrity } from '../integrity.js';
import type { GroupResult } from '../results.js';
import { Ctl, Mode, type ScalingWorkerData } from './scaling-protocol.js';
import type { Suite, SuiteContext, SuiteOutput } from './suite.js';
import { workerUrl } from './worker-url.js';

/** Pages each operation maps and unmaps. */
export const SCALING_PAGES = 16;
/** Group and row names, shared with the targets. */
export const SCALING: {
  readonly group: string;
  readonly one: string;
  readonly own: (n: number) => string;
  readonly shared: (n: number) => string;
} = {
  group: `map + unmap ${SCALING_PAGES} pages`,
  one: '1 thread',
  own: (n) => `${n} threads, own address spaces`,
  shared: (n) => `${n} threads, one address space`,
};

/** The `scaling` suite. */
export const scalingSuite: Suite = {
  name: 'scaling',
  title: 'map/unmap throughput from 1 and N threads (own address spaces, then one shared)',
  rateLabel: 'ops/s',
  run: runScaling,
};

type WaitAsync = (
  i32: Int32Array,
  index: number,
  value: number,
) => { async: false; value: string } | { async: true; value: Promise<string> };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/** The main side of the worker threads: start them, run rounds, stop them. */
class Crew {
  readonly ctl = new Int32Array(new SharedArrayBuffer(Ctl.WORDS * 4));
  readonly times: Float64Array;
  private readonly workers: Worker[] = [];
  private readonly exited: Promise<void>[] = [];
  private failure: Error | null = null;

  constructor(datas: Omit<ScalingWorkerData, 'ctl' | 'times'>[]) {
    const timesSab = new SharedArrayBuffer(datas.length * 2 * 8);
    this.times = new Float64Array(timesSab);
    const url = workerUrl('./scaling-worker.js', import.meta.url);
    for (const d of datas) {
      const worker = new Worker(url, {
        workerData: { ...d, ctl: this.ctl.buffer, times: timesSab },
      });
      this.workers.push(worker);
      this.exited.push(
        new Promise((resolve) => {
          worker.on('error', (e: Error) => {
            this.failure ??= e;
            Atomics.store(this.ctl, Ctl.ERROR, -1);
            Atomics.notify(this.ctl, Ctl.DONE);
            Atomics.notify(this.ctl, Ctl.READY);
          });
          worker.on('exit', () => {
            resolve();
          });
        }),
      );
    }
  }

  /** Wait until `ctl[index] >= target` without blocking the event loop. */
  private async until(index: number, target: number): Promise<void> {
    for (;;) {
      const now = Atomics.load(this.ctl, index);
      if (now >= target) return;
      if (this.failure !== null) throw this.failure;
      const r = waitAsync(this.ctl, index, now);
      if (r.async) await r.value;
    }
  }

  async ready(): Promise<void> {
    await this.until(Ctl.READY, this.workers.length);
  }

  /** One round: `k` threads, `ops` operations each. Returns the first-start → last-end time. */
  async round(mode: number, k: number, ops: number): Promise<number> {
    const { ctl } = this;
    Atomics.store(ctl, Ctl.ARRIVED, 0);
    Atomics.store(ctl, Ctl.DONE, 0);
    Atomics.store(ctl, Ctl.MODE, mode);
    Atomics.store(ctl, Ctl.OPS, ops);
    Atomics.store(ctl, Ctl.K, k);
    Atomics.add(ctl, Ctl.GO, 1);
    Atomics.notify(ctl, Ctl.GO);
    await this.until(Ctl.DONE, k);
    const error = Atomics.load(ctl, Ctl.ERROR);
    if (error !== 0) throw this.failure ?? new Error(`scaling: a worker failed with ${error}`);
    let start = Number.POSITIVE_INFINITY;
    let end = 0;
    for (let i = 0; i < k; i++) {
      start = Math.min(start, this.times[2 * i] ?? Number.NaN);
      end = Math.max(end, this.times[2 * i + 1] ?? Number.NaN);
    }
    return end - start;
  }

  async stop(): Promise<void> {
    Atomics.store(this.ctl, Ctl.STOP, 1);
    Atomics.add(this.ctl, Ctl.GO, 1);
    Atomics.notify(this.ctl, Ctl.GO);
    await Promise.all(this.exited);
  }
}

async function runScaling(ctx: SuiteContext): Promise<SuiteOutput> {
  const cores = availableParallelism();
  const threadCounts = [...new Set([2, cores])].sort((a, b) => a - b);
  const nThreads = Math.max(...threadCounts);
  const bytes = SCALING_PAGES * PAGE_SIZE;
  const kernel = Kernel.boot({ memoryBytes: 64 * 2 ** 20 });
  const freeAfterBoot = kernel.stats().freeFrames;
  const sharedMm = kernel.createAddressSpace();
  const own = Array.from({ length: nThreads }, () => kernel.createAddressSpace());
  const areas = Array.from({ length: nThreads }, () => kernel.vmallocUser(bytes));
  const groups: GroupResult[] = [];
  const notes = [
    `${cores} cores; each operation is mmap (MAP_FIXED) + remapPartial + munmap of ${SCALING_PAGES} pages.`,
  ];
  let crew: Crew | null = null;
  try {
    if (sharedMm === null || own.includes(null) || areas.includes(null)) {
      throw new Error('scaling: could not set up address spaces and areas');
    }
    crew = new Crew(
      own.map((mm, index) => ({
        handle: kernel.handle,
        index,
        ownMm: mm?.id ?? 0,
        sharedMm: sharedMm.id,
        kaddr: areas[index] ?? 0,
        bytes,
        uaddr: 0x1000_0000 + index * 0x100_0000,
      })),
    );
    await crew.ready();
    const c = crew;
    const ops = await calibrate(c, ctx.quick ? 15 : 40);
    notes.push(`${ops} operations per thread per timed round.`);
    const row = (name: string, mode: number, k: number): BenchCase => ({
      name,
      role: k === 1 ? 'baseline' : 'subject',
      unit: 'ops',
      unitsPerIteration: k * ops,
      async: true,
      fn: async () => ({ overriddenDuration: await c.round(mode, k, ops) }),
    });
    const cases = [row(SCALING.one, Mode.OWN, 1)];
    for (const n of threadCounts) {
      cases.push(row(SCALING.own(n), Mode.OWN, n), row(SCALING.shared(n), Mode.SHARED, n));
    }
    const bench = new SuiteBench('scaling', ctx.harness);
    groups.push(
      await bench.runGroup({
        name: SCALING.group,
        cases,
        ratios: threadCounts.flatMap((n) => [
          {
            name: `${n} own ÷ 1 thread`,
            subject: SCALING.own(n),
            baseline: SCALING.one,
            kind: 'throughput' as const,
          },
          {
            name: `${n} shared ÷ 1 thread`,
            subject: SCALING.shared(n),
            baseline: SCALING.one,
            kind: 'throughput' as const,
          },
        ]),
      }),
    );
  } finally {
    await crew?.stop();
    for (const mm of own) mm?.destroy();
    sharedMm?.destroy();
    for (const a of areas) kernel.vfree(a);
  }
  return {
    groups,
    measures: [],
    lines: [],
    notes,
    integrity: checkIntegrity(kernel, freeAfterBoot),
  };
}

/**
 * Operations per thread so that a one-thread round takes about `targetMs`: warm rounds first
 * (about ten rounds' worth, so the JIT has compiled the loop), then scale by the fastest of three rounds (a burst of
 * load during calibration must not shrink the rounds).
 */
async function calibrate(crew: Crew, targetMs: number): Promise<number> {
  let ops = 256;
  let warmMs = 0;
  for (let i = 0; i < 100 && warmMs < 10 * targetMs; i++) {
    warmMs += await crew.round(i % 2 === 0 ? Mode.OWN : Mode.SHARED, 1, ops);
  }
  for (let step = 0; step < 2; step++) {
    let ms = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 3; i++) ms = Math.min(ms, await crew.round(Mode.OWN, 1, ops));
    ops = Math.max(16, Math.ceil((ops * targetMs) / Math.max(ms, targetMs / 64)));
  }
  return ops;
}
