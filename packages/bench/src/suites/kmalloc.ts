/**
 * Suite `kmalloc`: small shared objects. `kmalloc(64)` + `kfree` against `@thi.ng/malloc`'s
 * `malloc(64)` + `free` in one thread (it is not thread-safe, so it has no threaded rows); the
 * same from one and two worker threads on their own objects, and objects allocated in one thread
 * and freed in another through a ring; the frames one million live 64-byte objects take; and, for
 * reference, `vmalloc` + `vfree` of one page beside Linux's published figure.
 *
 * @module
 */
import { Kernel, PAGE_SIZE } from '@sabvm/core';
import { MemPool } from '@thi.ng/malloc';
import { SuiteBench, type BenchCase, type RatioSpec } from '../harness.js';
import { checkIntegrity } from '../integrity.js';
import type { GroupResult, Integrity, Measure } from '../results.js';
import { Crew } from './crew.js';
import { KCtl, KMode, OBJECT_SIZE, RING_BATCHES, BATCH } from './kmalloc-protocol.js';
import type { Suite, SuiteContext, SuiteOutput } from './suite.js';
import { workerUrl } from './worker-url.js';

/** Group, row and measure names, shared with the targets. */
export const KMALLOC = {
  pairGroup: 'kmalloc(64) + kfree, one thread',
  liveGroup: '1000 × kmalloc(64), then 1000 × kfree, one thread',
  threadGroup: 'kmalloc(64) + kfree in worker threads',
  vmallocGroup: 'vmalloc + vfree of 1 page',
  sabvm: 'kmalloc + kfree',
  thing: '@thi.ng/malloc malloc + free',
  vmalloc: 'vmalloc + vfree',
  one: '1 thread',
  own: '2 threads, own objects',
  cross: '2 threads, allocated on one, freed on the other (kfreeBulk)',
  crossEach: '2 threads, allocated on one, freed on the other (kfree each)',
  controlOne: 'control: 1 thread, own @thi.ng/malloc pool',
  controlTwo: 'control: 2 threads, own @thi.ng/malloc pool each',
  controlRatio: 'control: 2 ÷ 1 thread (@thi.ng/malloc, nothing shared)',
  memory: 'frames of 1M live 64-byte objects ÷ 64 MB',
  memoryThing: '@thi.ng/malloc heap of 1M live 64-byte objects ÷ 64 MB',
  vmallocUs: 'vmalloc + vfree of 1 page, µs (Linux: 0.9–1.2 µs)',
} as const;

/** The `kmalloc` suite. */
export const kmallocSuite: Suite = {
  name: 'kmalloc',
  title: 'kmalloc and slab caches vs @thi.ng/malloc; threads; memory; vmalloc for reference',
  rateLabel: 'ops/s',
  run: runKmalloc,
};

/** Objects per timed call of the one-thread rows. */
const PAIRS = 1000;
/** Live objects of the memory measure. */
const MILLION = 1_000_000;

/** The two workers: a crew whose rounds also zero the ring's HEAD and TAIL. */
class Pair {
  private readonly crew: Crew;

  constructor(kernel: Kernel) {
    const ring = new SharedArrayBuffer(RING_BATCHES * BATCH * 8);
    const url = workerUrl('./kmalloc-worker.js', import.meta.url);
    const datas = [0, 1].map((index) => ({ handle: kernel.handle, index, ring }));
    this.crew = new Crew(url, datas, KCtl.WORDS);
  }

  ready(): Promise<void> {
    return this.crew.ready();
  }

  /** One round: first start → last end, in ms. */
  round(mode: number, k: number, ops: number): Promise<number> {
    return this.crew.round(mode, k, ops, [KCtl.HEAD, KCtl.TAIL]);
  }

  stop(): Promise<void> {
    return this.crew.stop();
  }
}

/** Objects per thread and round so that a one-thread round takes about `targetMs`. */
async function calibrate(pair: Pair, targetMs: number): Promise<number> {
  let ops = 16 * BATCH;
  for (let i = 0; i < 20; i++)
    await pair.round(i % 2 === 0 ? KMode.OWN : KMode.CROSS, (i % 2) + 1, ops);
  for (let step = 0; step < 2; step++) {
    let ms = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 3; i++) ms = Math.min(ms, await pair.round(KMode.OWN, 1, ops));
    ops = Math.max(
      BATCH,
      Math.ceil((ops * targetMs) / Math.max(ms, targetMs / 64) / BATCH) * BATCH,
    );
  }
  return ops;
}

/** The one-thread groups: a pair at a time, and 1000 live objects at a time. */
async function oneThreadGroups(bench: SuiteBench, kernel: Kernel): Promise<GroupResult[]> {
  const pool = new MemPool({ buf: new SharedArrayBuffer(16 * 2 ** 20) });
  const held = new Float64Array(PAIRS);
  const fail = (what: string): never => {
    throw new Error(`kmalloc: ${what} returned no memory`);
  };
  const ratio = {
    name: `${KMALLOC.sabvm} ÷ ${KMALLOC.thing}`,
    subject: KMALLOC.sabvm,
    baseline: KMALLOC.thing,
    kind: 'throughput' as const,
  };
  const row = (name: string, fn: () => void): BenchCase => ({
    name,
    role: name === KMALLOC.sabvm ? 'subject' : 'baseline',
    unit: 'ops',
    unitsPerIteration: PAIRS,
    fn,
  });
  const pairs = await bench.runGroup({
    name: KMALLOC.pairGroup,
    cases: [
      row(KMALLOC.sabvm, () => {
        for (let i = 0; i < PAIRS; i++)
          kernel.kfree(kernel.kmalloc(OBJECT_SIZE) ?? fail('kmalloc'));
      }),
      row(KMALLOC.thing, () => {
        for (let i = 0; i < PAIRS; i++) pool.free(pool.malloc(OBJECT_SIZE) || fail('malloc'));
      }),
    ],
    ratios: [ratio],
  });
  const live = await bench.runGroup({
    name: KMALLOC.liveGroup,
    cases: [
      row(KMALLOC.sabvm, () => {
        for (let i = 0; i < PAIRS; i++) held[i] = kernel.kmalloc(OBJECT_SIZE) ?? fail('kmalloc');
        for (let i = 0; i < PAIRS; i++) kernel.kfree(held[i]!);
      }),
      row(KMALLOC.thing, () => {
        for (let i = 0; i < PAIRS; i++) held[i] = pool.malloc(OBJECT_SIZE) || fail('malloc');
        for (let i = 0; i < PAIRS; i++) pool.free(held[i]!);
      }),
    ],
    ratios: [ratio],
  });
  return [pairs, live];
}

/** The worker-thread group: 1 thread, 2 threads on their own objects, 2 threads handing over. */
async function threadGroup(
  bench: SuiteBench,
  kernel: Kernel,
  quick: boolean,
): Promise<GroupResult> {
  const pair = new Pair(kernel);
  try {
    await pair.ready();
    const ops = await calibrate(pair, quick ? 10 : 30);
    const row = (name: string, mode: number, k: number): BenchCase => ({
      name,
      role: name === KMALLOC.one ? 'baseline' : 'subject',
      unit: 'ops',
      unitsPerIteration: mode === KMode.OWN || mode === KMode.CONTROL ? k * ops : ops,
      async: true,
      fn: async () => ({ overriddenDuration: await pair.round(mode, k, ops) }),
    });
    const ratio = (name: string, subject: string, baseline: string = KMALLOC.one): RatioSpec => ({
      name,
      subject,
      baseline,
      kind: 'throughput',
    });
    return await bench.runGroup({
      name: KMALLOC.threadGroup,
      cases: [
        row(KMALLOC.one, KMode.OWN, 1),
        row(KMALLOC.own, KMode.OWN, 2),
        row(KMALLOC.cross, KMode.CROSS, 2),
        row(KMALLOC.crossEach, KMode.CROSS_EACH, 2),
        row(KMALLOC.controlOne, KMode.CONTROL, 1),
        row(KMALLOC.controlTwo, KMode.CONTROL, 2),
      ],
      ratios: [
        ratio('2 own ÷ 1 thread', KMALLOC.own),
        ratio('cross ÷ 1 thread', KMALLOC.cross),
        ratio('cross, kfree each ÷ 1 thread', KMALLOC.crossEach),
        ratio(KMALLOC.controlRatio, KMALLOC.controlTwo, KMALLOC.controlOne),
      ],
    });
  } finally {
    await pair.stop();
  }
}

/** Frames taken by a million live 64-byte objects (and @thi.ng/malloc's heap for the same). */
function memoryMeasures(): { measures: Measure[]; integrity: Integrity } {
  const kernel = Kernel.boot({ memoryBytes: 128 * 2 ** 20 });
  const boot = kernel.stats().freeFrames;
  const objs = new Float64Array(MILLION);
  for (let i = 0; i < MILLION; i++) {
    const kaddr = kernel.kmalloc(OBJECT_SIZE);
    if (kaddr === null) throw new Error('kmalloc: a million 64-byte objects do not fit 128 MiB');
    objs[i] = kaddr;
  }
  const frames = boot - kernel.stats().freeFrames;
  const pool = new MemPool({ buf: new SharedArrayBuffer(128 * 2 ** 20) });
  const before = pool.stats().top;
  for (let i = 0; i < MILLION; i++)
    if (pool.malloc(OBJECT_SIZE) === 0) throw new Error('malloc failed');
  const heap = pool.stats().top - before;
  for (let i = 0; i < MILLION; i++) kernel.kfree(objs[i]!);
  const bytes = MILLION * OBJECT_SIZE;
  return {
    measures: [
      {
        name: KMALLOC.memory,
        value: (frames * PAGE_SIZE) / bytes,
        unit: 'ratio',
        detail: `${frames} frames (${((frames * PAGE_SIZE) / 2 ** 20).toFixed(1)} MiB) for ${MILLION} objects of ${OBJECT_SIZE} bytes: slab descriptors and bitmaps included`,
      },
      {
        name: KMALLOC.memoryThing,
        value: heap / bytes,
        unit: 'ratio',
        detail: `${heap} bytes of heap (a block header per object)`,
      },
    ],
    integrity: checkIntegrity(kernel, boot),
  };
}

async function runKmalloc(ctx: SuiteContext): Promise<SuiteOutput> {
  const kernel = Kernel.boot({ memoryBytes: 64 * 2 ** 20 });
  const freeAfterBoot = kernel.stats().freeFrames;
  const bench = new SuiteBench('kmalloc', ctx.harness);
  ctx.progress('one thread');
  const groups = await oneThreadGroups(bench, kernel);
  ctx.progress('vmalloc');
  const vmallocGroup = await bench.runGroup({
    name: KMALLOC.vmallocGroup,
    cases: [
      {
        name: KMALLOC.vmalloc,
        role: 'subject',
        unit: 'loops',
        unitsPerIteration: 100,
        fn: () => {
          for (let i = 0; i < 100; i++) kernel.vfree(kernel.vmalloc(PAGE_SIZE));
        },
      },
    ],
    ratios: [],
  });
  groups.push(vmallocGroup);
  ctx.progress('threads');
  groups.push(await threadGroup(bench, kernel, ctx.quick));
  ctx.progress('memory');
  const memory = memoryMeasures();
  const vmallocRate = vmallocGroup.rows[0]!.rate.median;
  const measures: Measure[] = [
    ...memory.measures,
    {
      name: KMALLOC.vmallocUs,
      value: Math.round((1e6 / vmallocRate) * 1000) / 1000,
      unit: 'µs',
      detail:
        'Linux vmalloc + vfree of one page: 0.9–1.2 µs (published test_vmalloc figures); information only',
    },
  ];
  const integrity = checkIntegrity(kernel, freeAfterBoot);
  const notes = [
    `One-thread rows: ${PAIRS} pairs per timed call. Threaded rows: a round of calibrated size per thread; the cross-thread rows hand objects over in batches of ${BATCH} through a ring of ${RING_BATCHES} batches (one Atomics store per batch; a thread that finds the ring full or empty spins 50 µs before it sleeps in Atomics.wait) and free each batch with one kfreeBulk (the target) or one kfree at a time.`,
    'The control rows run @thi.ng/malloc in a private pool per thread (no memory shared at all): their 2 ÷ 1 ratio is what this machine gives two threads at that moment, the bound of the 2-thread kmalloc ratio.',
    '@thi.ng/malloc is not thread-safe, so it has no threaded rows.',
  ];
  if (!memory.integrity.ok)
    notes.push(
      `memory kernel: ${memory.integrity.invariants}, ${memory.integrity.leakedFrames} frames leaked`,
    );
  return {
    groups,
    measures,
    lines: [],
    notes,
    integrity: memory.integrity.ok ? integrity : { ...integrity, ok: false },
  };
}
