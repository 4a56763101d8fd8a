/**
 * Suite `vmalloc`: the kernel's `lib/test_vmalloc.c` cases, timed by tinybench and printed in the
 * kernel's own `Summary:` line format, against `@thi.ng/malloc` in a SharedArrayBuffer and a new
 * SharedArrayBuffer per allocation.
 *
 * Kernel counterpart: `lib/test_vmalloc.c` (`run_parallel` / `do_concurrent_test` report).
 *
 * @module
 */
import { availableParallelism } from 'node:os';
import { Kernel, PAGE_SIZE } from '@sabvm/core';
import { SuiteBench, type BenchCase } from '../harness.js';
import { checkIntegrity } from '../integrity.js';
import type { GroupResult } from '../results.js';
import {
  findAlignedVmalloc,
  SabPerAllocAllocator,
  SabvmAllocator,
  ThingAllocator,
  type Allocator,
} from './allocators.js';
import type { Suite, SuiteContext, SuiteOutput } from './suite.js';
import { testVmallocCases, type BoundCase, type VmallocTestCase } from './test-vmalloc.js';

/** Row names, shared with the targets. */
export const VMALLOC_ROWS = {
  sabvm: 'vmalloc + vfree',
  thing: '@thi.ng/malloc',
  sab: 'new SharedArrayBuffer',
} as const;

/** The `vmalloc` suite. */
export const vmallocSuite: Suite = {
  name: 'vmalloc',
  title: "the kernel's test_vmalloc cases vs @thi.ng/malloc and a SharedArrayBuffer per allocation",
  rateLabel: 'loops/s',
  run: runVmalloc,
};

/** Counts of one row's runs, for the `Summary:` line. */
interface RunCounts {
  passed: number;
  failed: number;
  totalMs: number;
}

/** `fls(x)`: the position of the highest set bit, 1-based (`fls(2)` is 2). */
function fls(x: number): number {
  return x <= 0 ? 0 : 32 - Math.clz32(x);
}

/** About how long one run of the sabvm row may take; `test_loop_count` is capped to fit. */
function runBudgetMs(quick: boolean): number {
  return quick ? 5 : 20;
}

async function runVmalloc(ctx: SuiteContext): Promise<SuiteOutput> {
  const cpus = availableParallelism();
  const params = {
    loops: ctx.quick ? 100 : 1000,
    junkLength: fls(cpus) * (ctx.quick ? 256 : (32 * 1024 * 1024) / PAGE_SIZE),
    busyList: 15000,
    seed: 0x6b65726e,
  };
  const cases = testVmallocCases(params);
  const needFrames = 2 * params.junkLength + params.busyList + 4096;
  const kernel = Kernel.boot({
    memoryBytes: Math.max(256 * 2 ** 20, needFrames * PAGE_SIZE * 1.25),
    maxAreas: 2 * params.junkLength + params.busyList + 1024,
  });
  const freeAfterBoot = kernel.stats().freeFrames;
  const hasAligned = findAlignedVmalloc(kernel) !== null;
  const notes: string[] = [
    `test_loop_count ${params.loops}, capped per case so that one sabvm run takes about ${runBudgetMs(ctx.quick)} ms (the loops: field of each Summary line); full_fit junk_length ${params.junkLength} (fls(${cpus} cpus) × ${params.junkLength / fls(cpus)}); long_busy_list ${params.busyList} areas.`,
    'Loops/s counts one loop of the case (long_busy_list: one 100-page plus one 1-page allocation).',
  ];
  if (!hasAligned) {
    notes.push(
      'core exposes no aligned vmalloc: fix_align_alloc_test and random_size_align_alloc_test were not run.',
    );
  }
  const groups: GroupResult[] = [];
  const lines: string[] = [];
  const bench = new SuiteBench('vmalloc', ctx.harness);
  for (const tc of cases) {
    if (tc.aligned && !hasAligned) continue;
    ctx.progress(`${tc.label}: setup`);
    const counts: RunCounts = { passed: 0, failed: 0, totalMs: 0 };
    const { group, loops } = await measureCase(bench, tc, {
      sabvm: new SabvmAllocator(kernel),
      maxLoops: params.loops,
      budgetMs: runBudgetMs(ctx.quick),
      counts,
    });
    groups.push(group);
    const repeat = counts.passed + counts.failed;
    const avgUsec = repeat === 0 ? 0 : (counts.totalMs * 1000) / repeat;
    lines.push(
      `Summary: ${tc.name} passed: ${counts.passed} failed: ${counts.failed} repeat: ${repeat} loops: ${loops} avg: ${Math.round(avgUsec)} usec`,
    );
    if (counts.failed > 0) {
      notes.push(
        `${tc.label}: ${counts.failed} runs of sabvm failed (an allocation returned null).`,
      );
    }
  }
  return { groups, measures: [], lines, notes, integrity: checkIntegrity(kernel, freeAfterBoot) };
}

/** What {@link measureCase} needs besides the case. */
interface CaseSettings {
  readonly sabvm: Allocator;
  readonly maxLoops: number;
  readonly budgetMs: number;
  readonly counts: RunCounts;
}

/**
 * Loops per run so that one run of `b` takes about `budgetMs`: at most `maxLoops` (the kernel's
 * `test_loop_count`), at least 10 (or `maxLoops` if smaller). The fastest of a few probe runs
 * decides, so a burst of load during calibration does not shrink the loop.
 */
function calibrateLoops(b: BoundCase, maxLoops: number, budgetMs: number): number {
  const probe = Math.min(10, maxLoops);
  let ms = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 4; i++) {
    const t0 = performance.now();
    b.run(probe);
    ms = Math.min(ms, performance.now() - t0);
  }
  const perLoop = Math.max(ms / probe, 1e-6);
  return Math.max(probe, Math.min(maxLoops, Math.floor(budgetMs / perLoop)));
}

/** Build the case for every allocator, calibrate its loop count, measure it, tear it down. */
async function measureCase(
  bench: SuiteBench,
  tc: VmallocTestCase,
  settings: CaseSettings,
): Promise<{ group: GroupResult; loops: number }> {
  const { counts } = settings;
  const poolBytes = Math.ceil(tc.peakBytes * 1.25) + 8 * 2 ** 20;
  const bound: [string, BoundCase][] = [
    [VMALLOC_ROWS.sabvm, tc.bind(settings.sabvm)],
    [VMALLOC_ROWS.thing, tc.bind(new ThingAllocator(poolBytes))],
    [VMALLOC_ROWS.sab, tc.bind(new SabPerAllocAllocator())],
  ];
  const failures = new Set<string>();
  try {
    for (const [, b] of bound) b.setup();
    const loops = calibrateLoops(bound[0]![1], settings.maxLoops, settings.budgetMs);
    const rowCase = ([name, b]: [string, BoundCase]): BenchCase => ({
      name,
      role: name === VMALLOC_ROWS.sabvm ? 'subject' : 'baseline',
      unit: 'loops',
      unitsPerIteration: loops,
      fn:
        name === VMALLOC_ROWS.sabvm
          ? () => {
              const t0 = performance.now();
              const ok = b.run(loops);
              counts.totalMs += performance.now() - t0;
              if (ok) counts.passed++;
              else counts.failed++;
            }
          : () => {
              if (!b.run(loops)) failures.add(name);
            },
    });
    const group = await bench.runGroup({
      name: tc.label,
      cases: bound.map(rowCase),
      ratios: [VMALLOC_ROWS.thing, VMALLOC_ROWS.sab].map((baseline) => ({
        name: `${VMALLOC_ROWS.sabvm} ÷ ${baseline}`,
        subject: VMALLOC_ROWS.sabvm,
        baseline,
        kind: 'throughput' as const,
      })),
    });
    if (failures.size > 0) {
      throw new Error(`${tc.label}: a baseline allocation failed (${[...failures].join(', ')})`);
    }
    return { group, loops };
  } finally {
    for (const [, b] of bound) b.teardown();
  }
}
