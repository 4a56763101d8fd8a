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
import { Kernel, PAGE_SIZE } from '@sabvm/core';
import { SuiteBench, type BenchCase } from '../harness.js';
import { checkIntegrity } from '../integrity.js';
import type { GroupResult } from '../results.js';
import { Crew } from './crew.js';
import { Mode } from './scaling-protocol.js';
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
      workerUrl('./scaling-worker.js', import.meta.url),
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
