/**
 * Suite `handoff`: hand a buffer to a Piscina task that touches every page and returns — by
 * structured clone, by `Piscina.move` (transferred there and back), as a new SharedArrayBuffer per
 * task, through sabvm (`@sabvm/workers`: vmallocUser + map + run + unmap, everything included; and
 * the same with an area that already holds the data, over the pool's rings and, for comparison,
 * over one message per task), and the lower bound: a task that receives
 * only an offset into a SharedArrayBuffer shared once at start.
 *
 * Both pools run one thread (`minThreads = maxThreads = 1`), so each row is one task round trip.
 *
 * @module
 */
import { Kernel } from '@sabvm/core';
import type { SabvmPool } from '@sabvm/workers';
import { Piscina } from 'piscina';
import { SuiteBench, type BenchCase, type CaseGroup, type RatioSpec } from '../harness.js';
import { checkIntegrity } from '../integrity.js';
import type { GroupResult } from '../results.js';
import { bytes as formatBytes } from '../format.js';
import { HANDOFF_TASKS, TOUCH_STRIDE, type HandoffWorkerData } from './handoff-protocol.js';
import type { Suite, SuiteContext, SuiteOutput } from './suite.js';
import { workerUrl } from './worker-url.js';

/** Buffer sizes handed off. */
export const HANDOFF_SIZES: readonly number[] = [4096, 2 ** 20, 16 * 2 ** 20, 64 * 2 ** 20];

/** Row names, shared with the targets. */
export const HANDOFF = {
  clone: 'structured clone',
  move: 'Piscina.move',
  sab: 'new SharedArrayBuffer',
  sabvm: 'sabvm',
  sabvmExisting: 'sabvm, existing area',
  sabvmMessage: 'sabvm, existing area, one message per task',
  offset: 'pre-shared offset (lower bound)',
} as const;

/** The `handoff` suite. */
export const handoffSuite: Suite = {
  name: 'handoff',
  title: 'hand a buffer to a Piscina task that touches every page',
  rateLabel: 'bytes/s',
  run: runHandoff,
};

/** The pools of the suite (plain Piscina for the baselines, sabvm's for the subjects). */
interface Pools {
  readonly kernel: Kernel;
  readonly plain: Piscina;
  readonly sabvm: SabvmPool;
  /** The same pool over the message transport (one Piscina message per task), for comparison. */
  readonly message: SabvmPool;
}

async function runHandoff(ctx: SuiteContext): Promise<SuiteOutput> {
  const workers = await import('@sabvm/workers');
  const maxSize = Math.max(...HANDOFF_SIZES);
  const kernel = Kernel.boot({ memoryBytes: 2 * maxSize + 32 * 2 ** 20 });
  const freeAfterBoot = kernel.stats().freeFrames;
  const shared = new SharedArrayBuffer(maxSize);
  fillPattern(new Uint8Array(shared));
  const threads = { minThreads: 1, maxThreads: 1, idleTimeout: 60_000 };
  const workerData: HandoffWorkerData = { shared };
  const plain = new Piscina({
    filename: workerUrl('./handoff-worker.js', import.meta.url).href,
    workerData,
    ...threads,
  });
  const sabvm = new workers.SabvmPool({
    filename: workerUrl('./handoff-task.js', import.meta.url),
    kernel,
    piscina: threads,
  });
  const message = new workers.SabvmPool({
    filename: workerUrl('./handoff-task.js', import.meta.url),
    kernel,
    piscina: threads,
    transport: 'message',
  });
  const pools: Pools = { kernel, plain, sabvm, message };
  const groups: GroupResult[] = [];
  try {
    const bench = new SuiteBench('handoff', ctx.harness);
    for (const size of HANDOFF_SIZES) {
      groups.push(await bench.runGroup(handoffGroup(pools, size)));
    }
  } finally {
    await sabvm.close();
    await message.close();
    await plain.close();
  }
  return {
    groups,
    measures: [],
    lines: [],
    notes: [
      'One pool thread per pool; every row is one task round trip touching one byte per 4 KiB page.',
      `"${HANDOFF.move}" transfers the buffer to the task and back (the caller keeps its data).`,
      `"${HANDOFF.sabvm}" includes vmallocUser (zeroed), mmap + remapPartial, the task, munmap/destroy and vfree.`,
    ],
    integrity: checkIntegrity(kernel, freeAfterBoot),
  };
}

function fillPattern(u8: Uint8Array): void {
  for (let i = 0; i < u8.length; i++) u8[i] = (i * 131) & 255;
}

function handoffGroup(pools: Pools, size: number): CaseGroup {
  const { kernel, plain, sabvm, message } = pools;
  const pages = Math.ceil(size / TOUCH_STRIDE);
  const check = (touched: unknown, row: string): void => {
    if (touched !== pages)
      throw new Error(`handoff: ${row} touched ${String(touched)} pages, expected ${pages}`);
  };
  let source = new ArrayBuffer(0);
  let moved = new ArrayBuffer(0);
  let existing: number | null = null;
  const common = { unit: 'bytes', unitsPerIteration: size, async: true } as const;
  const cases: BenchCase[] = [
    {
      ...common,
      name: HANDOFF.clone,
      role: 'baseline',
      fn: async () => {
        check(await plain.run(source, { name: HANDOFF_TASKS.clone }), HANDOFF.clone);
      },
    },
    {
      ...common,
      name: HANDOFF.move,
      role: 'baseline',
      fn: async () => {
        moved = (await plain.run(Piscina.move(moved), {
          name: HANDOFF_TASKS.transfer,
        })) as ArrayBuffer;
        if (moved.byteLength !== size)
          throw new Error('handoff: the moved buffer did not come back');
      },
    },
    {
      ...common,
      name: HANDOFF.sab,
      role: 'baseline',
      fn: async () => {
        check(
          await plain.run(new SharedArrayBuffer(size), { name: HANDOFF_TASKS.sab }),
          HANDOFF.sab,
        );
      },
    },
    {
      ...common,
      name: HANDOFF.sabvm,
      role: 'subject',
      fn: async () => {
        const kaddr = kernel.vmallocUser(size);
        if (kaddr === null) throw new Error(`handoff: vmallocUser(${size}) failed`);
        try {
          check(await sabvm.run<number>({ areas: [kaddr] }), HANDOFF.sabvm);
        } finally {
          kernel.vfree(kaddr);
        }
      },
    },
    {
      ...common,
      name: HANDOFF.sabvmExisting,
      role: 'subject',
      fn: async () => {
        check(await sabvm.run<number>({ areas: [existing ?? 0] }), HANDOFF.sabvmExisting);
      },
    },
    {
      ...common,
      name: HANDOFF.sabvmMessage,
      role: 'control',
      fn: async () => {
        check(await message.run<number>({ areas: [existing ?? 0] }), HANDOFF.sabvmMessage);
      },
    },
    {
      ...common,
      name: HANDOFF.offset,
      role: 'baseline',
      fn: async () => {
        check(
          await plain.run({ offset: 0, length: size }, { name: HANDOFF_TASKS.offset }),
          HANDOFF.offset,
        );
      },
    },
  ];
  const vs = (subject: string, baseline: string, label: string): RatioSpec => ({
    name: `${subject} ÷ ${label}`,
    subject,
    baseline,
    kind: 'throughput',
  });
  return {
    name: formatBytes(size),
    bytes: size,
    cases,
    ratios: [
      vs(HANDOFF.sabvm, HANDOFF.clone, 'clone'),
      vs(HANDOFF.sabvm, HANDOFF.move, 'move'),
      vs(HANDOFF.sabvm, HANDOFF.sab, 'new SAB'),
      vs(HANDOFF.sabvm, HANDOFF.offset, 'lower bound'),
      vs(HANDOFF.sabvmExisting, HANDOFF.clone, 'clone'),
      vs(HANDOFF.sabvmExisting, HANDOFF.move, 'move'),
      vs(HANDOFF.sabvmExisting, HANDOFF.offset, 'lower bound'),
      vs(HANDOFF.sabvmMessage, HANDOFF.offset, 'lower bound'),
    ],
    setup: () => {
      const u8 = new Uint8Array(size);
      fillPattern(u8);
      source = u8.buffer;
      moved = u8.slice().buffer;
      existing = kernel.vmallocUser(size);
      if (existing === null) throw new Error(`handoff: vmallocUser(${size}) failed`);
      kernel.writeKernel(existing, u8);
    },
    teardown: () => {
      kernel.vfree(existing);
      existing = null;
    },
  };
}
