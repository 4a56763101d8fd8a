/**
 * Thread torture: 2 to 8 real worker threads doing random operations on one kernel (vmallocUser,
 * vfree, mmap, remapPartial, munmap, mprotect, write, read, segments, destroy), each writing a
 * pattern of its own into its own areas and mappings and checking nobody else ever changes it.
 * Rounds end at a barrier where the quiescent kernel's invariants are checked. At the end every
 * thread frees everything: `freeFrames` is back to its value after boot and the invariants hold.
 *
 * CI runs a bounded number of operations per thread. `SABVM_LONG=1` runs each scenario for
 * `SABVM_LONG_SECONDS` (default 60) instead. `SABVM_SEED` changes the base seed; each thread's
 * seed is printed on failure (the interleaving of threads is not replayable, a thread's own
 * sequence of operations is).
 *
 * The worker fixtures import `@sabvm/core` (packages/core/dist): build it first.
 */
import { describe, expect, it } from 'vitest';
import { Kernel, MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../src/index.js';
import {
  LONG,
  LONG_SECONDS,
  MiB,
  WorkerHarness,
  envInt,
  sharedInts,
} from './helpers/reliability.js';

const P = PAGE_SIZE;
/** Control words shared with the fixtures (torture-common.mjs `Ctl`). */
const Ctl = { ABORT: 2, VIOLATIONS: 4, OPS: 5, CHECKS: 6, BUSY: 9, WORDS: 16 } as const;

type Scenario = 'disjoint' | 'shared' | 'contended';

interface Result {
  readonly ok: boolean;
  readonly id: number;
  readonly seed: number;
  readonly ops: number;
  readonly lastOp?: string;
  readonly error?: string;
  readonly violations: readonly string[];
}

/** Ops per round and rounds in CI: the whole file stays well under 30 s on two busy cores. */
const OPS_PER_ROUND = 40;
const ROUNDS = envInt('SABVM_TORTURE_ROUNDS', 12);
const BASE_SEED = envInt('SABVM_SEED', 20_261_126);
const COMMON_PAGES = 16;

async function torture(scenario: Scenario, threads: number): Promise<void> {
  const k = Kernel.boot({ memoryBytes: 32 * MiB, maxThreads: threads + 2 });
  const bootStats = k.stats();
  const shared = scenario === 'disjoint' ? null : k.createAddressSpace();
  let common = 0;
  if (scenario === 'contended' && shared !== null) {
    common = shared.mmap(0, COMMON_PAGES * P, PROT_READ | PROT_WRITE, MAP_SHARED);
    expect(common).toBeGreaterThan(0);
  }
  const ctl = sharedInts(Ctl.WORDS);
  const seeds = Array.from({ length: threads }, (_, i) => BASE_SEED * 16 + threads * 1000 + i);
  const deadline = LONG ? Date.now() + LONG_SECONDS * 1000 : 0;
  const started = performance.now();
  const workers = seeds.map(
    (seed, id) =>
      new WorkerHarness('torture-worker.mjs', {
        handle: k.handle,
        id,
        parties: threads,
        seed,
        scenario,
        sharedMmId: shared?.id ?? 0,
        common: { start: common, pages: COMMON_PAGES },
        opsPerRound: OPS_PER_ROUND,
        rounds: ROUNDS,
        deadline,
        ctl,
      }),
  );
  const results = await Promise.all(
    workers.map((w) =>
      w.next<Result>().catch((e: unknown) => {
        // a worker that died without reporting: make every other one give up too
        Atomics.store(ctl, Ctl.ABORT, 1);
        Atomics.notify(ctl, 1);
        Atomics.notify(ctl, 7);
        throw e;
      }),
    ),
  );
  await Promise.all(workers.map((w) => w.exited));
  const seconds = (performance.now() - started) / 1000;
  const failures = results.filter((r) => !r.ok && r.error !== 'aborted');
  const report =
    `torture ${scenario}: threads ${threads}, operations ${Atomics.load(ctl, Ctl.OPS)}, ` +
    `invariant checks ${Atomics.load(ctl, Ctl.CHECKS)}, invariant violations ` +
    `${Atomics.load(ctl, Ctl.VIOLATIONS)}, contended remaps refused with -EBUSY ` +
    `${Atomics.load(ctl, Ctl.BUSY)}, ${seconds.toFixed(1)} s, seeds ${seeds.join(',')}`;
  console.log(report);
  expect(
    failures.map(
      (r) => `thread ${r.id} seed ${r.seed} after ${r.ops} ops (${r.lastOp}): ${r.error}`,
    ),
  ).toEqual([]);
  expect(results.every((r) => r.ok)).toBe(true);
  expect(results.flatMap((r) => r.violations)).toEqual([]);
  expect(Atomics.load(ctl, Ctl.VIOLATIONS)).toBe(0);
  expect(Atomics.load(ctl, Ctl.OPS)).toBeGreaterThanOrEqual(threads * OPS_PER_ROUND);
  // each contended round makes more attempts than the common VMA has pages: some must lose
  if (scenario === 'contended') {
    expect(Atomics.load(ctl, Ctl.BUSY)).toBeGreaterThanOrEqual(Atomics.load(ctl, Ctl.CHECKS));
  }

  // everything the threads made is gone; the shared address space goes last
  if (shared !== null) {
    if (common > 0) expect(shared.munmap(common, COMMON_PAGES * P)).toBe(0);
    expect(shared.maps()).toBe('');
    expect(shared.pagemap()).toEqual([]);
    shared.destroy();
  }
  k.checkInvariants();
  const after = k.stats();
  expect(after.freeFrames + after.deferredFrames).toBe(bootStats.freeFrames);
  expect(after.freeFrames).toBe(bootStats.freeFrames);
  expect(after.vmallocAreas).toBe(0);
  expect(after.vmallocPages).toBe(0);
  expect(after.pageTableFrames).toBe(0);
  expect(after.addressSpaces).toBe(0);
  expect(after.badFrees).toBe(0);
  expect(k.vmallocinfo()).toBe('');
}

const timeout = LONG ? (LONG_SECONDS + 120) * 1000 : 60_000;

describe('thread torture: random operations from real threads, nothing lost, nothing shared by mistake', () => {
  it('holds with 2 threads, each in an address space of its own', { timeout }, async () => {
    await torture('disjoint', 2);
  });

  it('holds with 8 threads, each in an address space of its own', { timeout }, async () => {
    await torture('disjoint', 8);
  });

  it(
    'holds with 4 threads mapping disjoint ranges of one shared address space',
    { timeout },
    async () => {
      await torture('shared', 4);
    },
  );

  it(
    'holds with 4 threads racing remapPartial over the same ranges of one address space (-EBUSY is the only failure)',
    { timeout },
    async () => {
      await torture('contended', 4);
    },
  );
});
