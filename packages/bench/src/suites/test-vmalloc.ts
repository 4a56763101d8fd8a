/**
 * The cases of the kernel's `lib/test_vmalloc.c`, written once over an {@link Allocator} so that
 * sabvm and the baselines run exactly the same loop with the same sizes.
 *
 * Each case has an untimed `setup` (the busy list or the holes the kernel test builds first), a
 * timed `run(loops)` (one "repeat" of `loops` loops; false when an allocation failed, as the kernel's
 * `return -1`) and an untimed `teardown`.
 *
 * @module
 */
import { PAGE_SIZE } from '@sabvm/core';
import type { Allocator } from './allocators.js';

/** One test case bound to one allocator. */
export interface BoundCase {
  setup(): void;
  /** One repeat of `loops` loops (at most the `loops` the case was made for). */
  run(loops: number): boolean;
  teardown(): void;
}

/** A test case of `lib/test_vmalloc.c`. */
export interface VmallocTestCase {
  /** The kernel's name, used in the `Summary:` line. */
  readonly name: string;
  /** Row label (the kernel name plus a parameter where there is one). */
  readonly label: string;
  /** Needs an aligned allocation (`__vmalloc_node(size, align)`). */
  readonly aligned: boolean;
  /** Upper bound of the bytes live at once, to size the baselines' pools. */
  readonly peakBytes: number;
  bind(a: Allocator): BoundCase;
}

/** Parameters scaled by the run mode. */
export interface TestVmallocParams {
  /** `test_loop_count`: the most loops a run may be asked for. */
  readonly loops: number;
  /** `full_fit_alloc_test`'s junk_length: pairs of one-page allocations made before the loop. */
  readonly junkLength: number;
  /** `long_busy_list_alloc_test`'s busy list length (15000 in the kernel). */
  readonly busyList: number;
  /** Seed of the random sizes (the same sequence for every allocator). */
  readonly seed: number;
}

/**
 * mulberry32: a small deterministic PRNG (values in [0, 1)), so every allocator sees the same
 * "random" sizes. Context: any; the returned function keeps its own state.
 */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const noop = (): void => undefined;

/** `fix_size_alloc_test`: vmalloc(nr_pages), write a byte, vfree — `loops` times. */
function fixSize(pages: number): VmallocTestCase {
  const size = pages * PAGE_SIZE;
  return {
    name: 'fix_size_alloc_test',
    label: `fix_size_alloc_test (${pages} ${pages === 1 ? 'page' : 'pages'})`,
    aligned: false,
    peakBytes: size,
    bind: (a) => ({
      setup: noop,
      teardown: noop,
      run: (loops) => {
        for (let i = 0; i < loops; i++) {
          const p = a.alloc(size, 0);
          if (p === 0) return false;
          a.touch(p, 0);
          a.free(p);
        }
        return true;
      },
    }),
  };
}

/** `full_fit_alloc_test`: one-page holes between live one-page areas; each loop fills one. */
function fullFit(junkLength: number): VmallocTestCase {
  return {
    name: 'full_fit_alloc_test',
    label: 'full_fit_alloc_test',
    aligned: false,
    peakBytes: 2 * junkLength * PAGE_SIZE,
    bind: (a) => {
      const ptr: number[] = [];
      return {
        setup: () => {
          const junk: number[] = [];
          for (let i = 0; i < junkLength; i++) {
            ptr.push(a.alloc(PAGE_SIZE, 0));
            junk.push(a.alloc(PAGE_SIZE, 0));
          }
          for (const j of junk) if (j !== 0) a.free(j);
          if (ptr.includes(0)) throw new Error('full_fit_alloc_test: setup ran out of memory');
        },
        run: (loops) => {
          for (let i = 0; i < loops; i++) {
            const tmp = a.alloc(PAGE_SIZE, 0);
            if (tmp === 0) return false;
            a.touch(tmp, 1);
            a.free(tmp);
          }
          return true;
        },
        teardown: () => {
          for (const p of ptr) if (p !== 0) a.free(p);
          ptr.length = 0;
        },
      };
    },
  };
}

/** `long_busy_list_alloc_test`: a long list of live one-page areas; loops of 100 + 1 pages. */
function longBusyList(busy: number): VmallocTestCase {
  return {
    name: 'long_busy_list_alloc_test',
    label: 'long_busy_list_alloc_test',
    aligned: false,
    peakBytes: (busy + 101) * PAGE_SIZE,
    bind: (a) => {
      const ptr: number[] = [];
      return {
        setup: () => {
          for (let i = 0; i < busy; i++) ptr.push(a.alloc(PAGE_SIZE, 0));
          if (ptr.includes(0))
            throw new Error('long_busy_list_alloc_test: setup ran out of memory');
        },
        run: (loops) => {
          for (let i = 0; i < loops; i++) {
            const p1 = a.alloc(100 * PAGE_SIZE, 0);
            const p2 = a.alloc(PAGE_SIZE, 0);
            if (p1 === 0 || p2 === 0) {
              if (p1 !== 0) a.free(p1);
              if (p2 !== 0) a.free(p2);
              return false;
            }
            a.touch(p1, 0);
            a.touch(p2, 1);
            a.free(p1);
            a.free(p2);
          }
          return true;
        },
        teardown: () => {
          for (const p of ptr) if (p !== 0) a.free(p);
          ptr.length = 0;
        },
      };
    },
  };
}

/** `random_size_alloc_test`: 1 to 100 pages, chosen at random each loop. */
function randomSize(maxLoops: number, seed: number): VmallocTestCase {
  const rnd = prng(seed);
  const pages = Array.from({ length: maxLoops }, () => 1 + Math.floor(rnd() * 100));
  return {
    name: 'random_size_alloc_test',
    label: 'random_size_alloc_test',
    aligned: false,
    peakBytes: 100 * PAGE_SIZE,
    bind: (a) => ({
      setup: noop,
      teardown: noop,
      run: (loops) => {
        for (let i = 0; i < loops; i++) {
          const p = a.alloc((pages[i] ?? 1) * PAGE_SIZE, 0);
          if (p === 0) return false;
          a.touch(p, 1);
          a.free(p);
        }
        return true;
      },
    }),
  };
}

/** `fix_align_alloc_test`: 5 pages aligned to THREAD_ALIGN << 1 (32 KiB on x86-64). */
function fixAlign(): VmallocTestCase {
  const align = 32 * 1024;
  return {
    name: 'fix_align_alloc_test',
    label: 'fix_align_alloc_test',
    aligned: true,
    peakBytes: 5 * PAGE_SIZE + align,
    bind: (a) => ({
      setup: noop,
      teardown: noop,
      run: (loops) => {
        for (let i = 0; i < loops; i++) {
          const p = a.alloc(5 * PAGE_SIZE, align);
          if (p === 0) return false;
          a.touch(p, 0);
          a.free(p);
        }
        return true;
      },
    }),
  };
}

/**
 * `random_size_align_alloc_test`: a random byte `rnd`; align `1 << (rnd % 23)` bytes (at most
 * 4 MiB; vmalloc areas are page-aligned anyway, so only larger alignments need the aligned call)
 * and size `(rnd % 10 + 1)` pages.
 */
function randomSizeAlign(maxLoops: number, seed: number): VmallocTestCase {
  const rnd = prng(seed ^ 0x5a5a);
  const bytes = Array.from({ length: maxLoops }, () => Math.floor(rnd() * 256));
  return {
    name: 'random_size_align_alloc_test',
    label: 'random_size_align_alloc_test',
    aligned: true,
    peakBytes: 10 * PAGE_SIZE + (1 << 22),
    bind: (a) => ({
      setup: noop,
      teardown: noop,
      run: (loops) => {
        for (let i = 0; i < loops; i++) {
          const r = bytes[i] ?? 0;
          const align = 1 << (r % 23);
          const p = a.alloc(((r % 10) + 1) * PAGE_SIZE, align);
          if (p === 0) return false;
          a.free(p);
        }
        return true;
      },
    }),
  };
}

/**
 * The seven cases, in the kernel's order (fix_size at 1 and 4 pages). Bound cases throw
 * from `setup` when the allocator runs out while building the busy list or the holes.
 * Context: any; pure until bound and run.
 */
export function testVmallocCases(p: TestVmallocParams): VmallocTestCase[] {
  return [
    fixSize(1),
    fixSize(4),
    fullFit(p.junkLength),
    longBusyList(p.busyList),
    randomSize(p.loops, p.seed),
    fixAlign(),
    randomSizeAlign(p.loops, p.seed),
  ];
}
