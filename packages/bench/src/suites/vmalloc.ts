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
import { SuiteBench, type BenchCase, type CaseGroup } from '../harness.js';
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
    `test_loop_count ${params.loops}; full_fit junk_length ${params.junkLength} (fls(${cpus} cpus) × ${params.junkLength / fls(cpus)}); long_busy_list ${params.busyList} areas.`,
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
    const counts: RunCounts = { passed: 0, failed: 0, totalMs: 0 };
    const group = await bench.runGroup(
      vmallocGroup(tc, params.loops, new SabvmAllocator(kernel), counts),
    );
    groups.push(group);
    const avgUsec =
      counts.passed + counts.failed === 0
        ? 0
        : (counts.totalMs * 1000) / (counts.passed + counts.failed);
    lines.push(
      `Summary: ${tc.name} passed: ${counts.passed} failed: ${counts.failed} repeat: ${counts.passed + counts.failed} loops: ${params.loops} avg: ${Math.round(avgUsec)} usec`,
    );
    if (counts.failed > 0)
      notes.push(
        `${tc.label}: ${counts.failed} runs of sabvm failed (an allocation returned null).`,
      );
  }
  return { groups, measures: [], lines, notes, integrity: checkIntegrity(kernel, freeAfterBoot) };
}

function vmallocGroup(
  tc: VmallocTestCase,
  loops: number,
  sabvm: Allocator,
  counts: RunCounts,
): CaseGroup {
  const poolBytes = Math.ceil(tc.peakBytes * 1.25) + 8 * 2 ** 20;
  const bound: [string, BoundCase][] = [
    [VMALLOC_ROWS.sabvm, tc.bind(sabvm)],
    [VMALLOC_ROWS.thing, tc.bind(new ThingAllocator(poolBytes))],
    [VMALLOC_ROWS.sab, tc.bind(new SabPerAllocAllocator())],
  ];
  const failures = new Map<string, number>();
  const rowCase = ([name, b]: [string, BoundCase]): BenchCase => ({
    name,
    role: name === VMALLOC_ROWS.sabvm ? 'subject' : 'baseline',
    unit: 'loops',
    unitsPerIteration: loops,
    fn:
      name === VMALLOC_ROWS.sabvm
        ? () => {
            const t0 = performance.now();
            const ok = b.run();
            counts.totalMs += performance.now() - t0;
            if (ok) counts.passed++;
            else counts.failed++;
          }
        : () => {
            if (!b.run()) failures.set(name, (failures.get(name) ?? 0) + 1);
          },
  });
  return {
    name: tc.label,
    cases: bound.map(rowCase),
    ratios: [VMALLOC_ROWS.thing, VMALLOC_ROWS.sab].map((baseline) => ({
      name: `${VMALLOC_ROWS.sabvm} ÷ ${baseline}`,
      subject: VMALLOC_ROWS.sabvm,
      baseline,
      kind: 'throughput' as const,
    })),
    setup: () => {
      for (const [, b] of bound) b.setup();
    },
    teardown: () => {
      for (const [, b] of bound) b.teardown();
      if (failures.size > 0) {
        throw new Error(
          `${tc.label}: a baseline allocation failed (${[...failures.keys()].join(', ')})`,
        );
      }
    },
  };
}
