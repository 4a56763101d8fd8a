/**
 * A port of the kernel's vmalloc self-test module, `lib/test_vmalloc.c`.
 *
 * Test-only: compiled into `dist` for the tests' worker threads (which import it by path), but
 * neither exported by the package nor shipped in its tarball (the bench has its own port, over
 * its allocator interface). Each case returns 0 on success and -1 on failure, as in the kernel;
 * {@link runTestVmalloc} runs the cases selected by a `runTestMask` (the kernel's `run_test_mask`
 * bit per case), times them and reports them in the kernel's `Summary:` line format.
 *
 * @module
 */
import { PAGE_SIZE } from './errno.js';
import type { Kernel } from './kernel.js';

/** The high-resolution clock every runtime core supports (Node, browsers) has. */
declare const performance: { now(): number };

/** A deterministic pseudo-random source (xorshift32), so a failing run replays. */
export class TestRng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0 || 0x9e3779b9;
  }

  /** A uniform 32-bit unsigned value (`get_random_u32`). */
  u32(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state;
  }

  /** A uniform value in `[lo, hi]` (`get_random_u32_inclusive`). */
  inclusive(lo: number, hi: number): number {
    return lo + (this.u32() % (hi - lo + 1));
  }
}

/** Parameters of one run (the kernel module's parameters). */
export interface TestVmallocParams {
  /** Iterations of each case's loop (`test_loop_count`). Default 1000. */
  readonly loops?: number;
  /** Runs of each case (`test_repeat_count`). Default 1. */
  readonly repeat?: number;
  /** Pages of fix_size_alloc_test (`nr_pages`). Default 1. */
  readonly nrPages?: number;
  /** Bit mask of the cases to run (`run_test_mask`). Default: every case. */
  readonly runTestMask?: number;
  /** One-page areas kept busy by full_fit_alloc_test. Default 2048 (the kernel: 8192 per CPU bit). */
  readonly junkLength?: number;
  /** One-page areas kept busy by long_busy_list_alloc_test. Default 15000, as the kernel. */
  readonly busyListLength?: number;
  /** Seed of the random cases. Default 1. */
  readonly seed?: number;
}

type CaseFn = (k: Kernel, p: Required<TestVmallocParams>, rng: TestRng) => number;

/** Write one byte through the vmalloc mapping, as the kernel cases do (`*((u8 *)ptr) = v`). */
function touch(k: Kernel, kaddr: number, value: number): void {
  k.writeKernel(kaddr, Uint8Array.of(value));
}

const fixSizeAllocTest: CaseFn = (k, p) => {
  for (let i = 0; i < p.loops; i++) {
    const ptr = k.vmalloc(Math.max(1, p.nrPages) * PAGE_SIZE);
    if (ptr === null) return -1;
    touch(k, ptr, 0);
    k.vfree(ptr);
  }
  return 0;
};

const fullFitAllocTest: CaseFn = (k, p) => {
  const ptr: (number | null)[] = [];
  const junk: (number | null)[] = [];
  let rv = -1;
  for (let i = 0; i < p.junkLength; i++) {
    ptr.push(k.vmalloc(PAGE_SIZE));
    junk.push(k.vmalloc(PAGE_SIZE));
  }
  for (const j of junk) k.vfree(j);
  fit: {
    for (let i = 0; i < p.loops; i++) {
      const tmp = k.vmalloc(PAGE_SIZE);
      if (tmp === null) break fit;
      touch(k, tmp, 1);
      k.vfree(tmp);
    }
    rv = 0;
  }
  for (const q of ptr) k.vfree(q);
  return rv;
};

const longBusyListAllocTest: CaseFn = (k, p) => {
  const ptr: (number | null)[] = [];
  let rv = -1;
  for (let i = 0; i < p.busyListLength; i++) ptr.push(k.vmalloc(PAGE_SIZE));
  busy: {
    for (let i = 0; i < p.loops; i++) {
      const ptr1 = k.vmalloc(100 * PAGE_SIZE);
      if (ptr1 === null) break busy;
      const ptr2 = k.vmalloc(PAGE_SIZE);
      if (ptr2 === null) {
        k.vfree(ptr1);
        break busy;
      }
      touch(k, ptr1, 0);
      touch(k, ptr2, 1);
      k.vfree(ptr1);
      k.vfree(ptr2);
    }
    rv = 0;
  }
  for (const q of ptr) k.vfree(q);
  return rv;
};

const randomSizeAllocTest: CaseFn = (k, p, rng) => {
  for (let i = 0; i < p.loops; i++) {
    const ptr = k.vmalloc(rng.inclusive(1, 100) * PAGE_SIZE);
    if (ptr === null) return -1;
    touch(k, ptr, 1);
    k.vfree(ptr);
  }
  return 0;
};

/** `THREAD_ALIGN << 1` on x86-64 with 16 KiB stacks. */
const FIX_ALIGN = 16384 * 2;

const fixAlignAllocTest: CaseFn = (k, p) => {
  for (let i = 0; i < p.loops; i++) {
    const ptr = k.vmallocAligned(5 * PAGE_SIZE, FIX_ALIGN);
    if (ptr === null) return -1;
    k.vfree(ptr);
  }
  return 0;
};

const randomSizeAlignAllocTest: CaseFn = (k, p, rng) => {
  for (let i = 0; i < p.loops; i++) {
    const rnd = rng.u32() & 0xff;
    const align = 2 ** (rnd % 23); // at most 1024 pages
    const size = ((rnd % 10) + 1) * PAGE_SIZE; // at most 10 pages
    const ptr = k.vmallocAligned(size, align);
    if (ptr === null) return -1;
    k.vfree(ptr);
  }
  return 0;
};

/** Supposed to fail, as in the kernel: alignments grow past what the vmalloc range can give. */
const alignShiftAllocTest: CaseFn = (k) => {
  for (let i = 0; i < 64; i++) {
    const ptr = k.vmallocAligned(PAGE_SIZE, 2 ** i);
    if (ptr === null) return -1;
    k.vfree(ptr);
  }
  return 0;
};

/** One case of the module: its `run_test_mask` bit, its kernel name and its body. */
export interface TestVmallocCase {
  readonly bit: number;
  readonly name: string;
  /** Run the case once: 0 on success, -1 on failure. */
  readonly run: CaseFn;
  /** True for the case the kernel marks "supposed to be failed". */
  readonly expectFailure: boolean;
}

/** The ported cases, in the kernel's order (bits 1, 2, 4, 8, 16, 32, 64). */
export const TEST_VMALLOC_CASES: readonly TestVmallocCase[] = [
  { bit: 1, name: 'fix_size_alloc_test', run: fixSizeAllocTest, expectFailure: false },
  { bit: 2, name: 'full_fit_alloc_test', run: fullFitAllocTest, expectFailure: false },
  { bit: 4, name: 'long_busy_list_alloc_test', run: longBusyListAllocTest, expectFailure: false },
  { bit: 8, name: 'random_size_alloc_test', run: randomSizeAllocTest, expectFailure: false },
  { bit: 16, name: 'fix_align_alloc_test', run: fixAlignAllocTest, expectFailure: false },
  {
    bit: 32,
    name: 'random_size_align_alloc_test',
    run: randomSizeAlignAllocTest,
    expectFailure: false,
  },
  { bit: 64, name: 'align_shift_alloc_test', run: alignShiftAllocTest, expectFailure: true },
];

/** The outcome of one case over its repeats. */
export interface TestVmallocResult {
  readonly name: string;
  readonly passed: number;
  readonly failed: number;
  readonly repeat: number;
  readonly loops: number;
  /** Average microseconds per run, as the kernel's `avg:` field. */
  readonly avgUsec: number;
  readonly expectFailure: boolean;
}

/**
 * Run the selected cases on `kernel` (`run_parallel_test` for one thread). Context: any attached
 * thread; several threads may run it on one kernel at once, as the kernel runs one per CPU.
 */
export function runTestVmalloc(
  kernel: Kernel,
  params: TestVmallocParams = {},
): TestVmallocResult[] {
  const p: Required<TestVmallocParams> = {
    loops: params.loops ?? 1000,
    repeat: params.repeat ?? 1,
    nrPages: params.nrPages ?? 1,
    runTestMask: params.runTestMask ?? 0x7f,
    junkLength: params.junkLength ?? 2048,
    busyListLength: params.busyListLength ?? 15000,
    seed: params.seed ?? 1,
  };
  const rng = new TestRng(p.seed);
  const results: TestVmallocResult[] = [];
  for (const c of TEST_VMALLOC_CASES) {
    if ((p.runTestMask & c.bit) === 0) continue;
    let passed = 0;
    let failed = 0;
    const t0 = performance.now();
    for (let r = 0; r < p.repeat; r++) {
      if (c.run(kernel, p, rng) === 0) passed++;
      else failed++;
    }
    const avgUsec = Math.round(((performance.now() - t0) * 1000) / p.repeat);
    results.push({
      name: c.name,
      passed,
      failed,
      repeat: p.repeat,
      loops: p.loops,
      avgUsec,
      expectFailure: c.expectFailure,
    });
  }
  return results;
}

/** The kernel's summary line: `Summary: <name> passed: N failed: N repeat: N loops: N avg: N usec`. */
export function formatSummary(r: TestVmallocResult): string {
  return `Summary: ${r.name} passed: ${r.passed} failed: ${r.failed} repeat: ${r.repeat} loops: ${r.loops} avg: ${r.avgUsec} usec`;
}
