import { describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import { Kernel } from '../src/index.js';
import {
  formatSummary,
  runTestVmalloc,
  TEST_VMALLOC_CASES,
  type TestVmallocParams,
  type TestVmallocResult,
} from '../src/test-vmalloc.js';

const MiB = 2 ** 20;
/** A small loop count, enough to cycle areas through the whole allocator. */
const PARAMS: TestVmallocParams = { loops: 100, junkLength: 512, busyListLength: 1500, seed: 7 };
const ALL_CASES = TEST_VMALLOC_CASES.reduce((mask, c) => mask | c.bit, 0);
const SUMMARY =
  /^Summary: (\w+) passed: (\d+) failed: (\d+) repeat: (\d+) loops: (\d+) avg: (\d+) usec$/;

function expectKernelOutcome(results: readonly TestVmallocResult[]): void {
  expect(results.map((r) => r.name)).toEqual(TEST_VMALLOC_CASES.map((c) => c.name));
  for (const r of results) {
    const line = formatSummary(r);
    console.log(line);
    const m = SUMMARY.exec(line);
    expect(m, line).not.toBeNull();
    // align_shift_alloc_test is "supposed to be failed" in the kernel too
    if (r.expectFailure) expect([r.passed, r.failed], line).toEqual([0, 1]);
    else expect([r.passed, r.failed], line).toEqual([1, 0]);
  }
}

describe('the lib/test_vmalloc.c port', () => {
  it('covers cases 1, 2, 4, 8, 16, 32 and 64 of the kernel module', () => {
    expect(TEST_VMALLOC_CASES.map((c) => c.bit)).toEqual([1, 2, 4, 8, 16, 32, 64]);
  });

  it('passes every case from one thread and leaves memory as it was after boot', () => {
    const k = Kernel.boot({ memoryBytes: 64 * MiB });
    const boot = k.stats();
    expectKernelOutcome(runTestVmalloc(k, { ...PARAMS, runTestMask: ALL_CASES }));
    k.checkInvariants();
    expect(k.stats()).toEqual(boot);
  });

  it('passes every case from four worker threads at once on one kernel', async () => {
    const k = Kernel.boot({ memoryBytes: 128 * MiB });
    const boot = k.stats();
    const start = new Int32Array(new SharedArrayBuffer(4));
    const runs = Array.from(
      { length: 4 },
      (_, i) =>
        new Promise<TestVmallocResult[]>((resolve, reject) => {
          const w = new Worker(new URL('./fixtures/test-vmalloc-worker.mjs', import.meta.url), {
            workerData: { handle: k.handle, params: { ...PARAMS, seed: 100 + i }, start },
          });
          w.once('message', resolve);
          w.once('error', reject);
        }),
    );
    Atomics.store(start, 0, 1);
    Atomics.notify(start, 0);
    for (const results of await Promise.all(runs)) expectKernelOutcome(results);
    k.checkInvariants();
    expect(k.stats()).toEqual(boot);
  });

  it('reports a case as failed when the kernel runs out of memory', () => {
    const k = Kernel.boot({ memoryBytes: 2 * MiB });
    const [r] = runTestVmalloc(k, { loops: 5, nrPages: 4096, runTestMask: 1 });
    expect(formatSummary(r!)).toMatch(/^Summary: fix_size_alloc_test passed: 0 failed: 1 /);
    expect(k.stats().freeFrames).toBe(k.stats().totalFrames - k.stats().metadataFrames);
  });
});
