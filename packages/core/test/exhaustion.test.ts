/**
 * Exhaustion: four threads at once run a resource out (physical memory, the vmalloc area table, the
 * vmalloc address range, the user address space, the VMA pool, the address-space table). Every
 * failing call answers exactly `null` or `-ENOMEM` and takes nothing with it; at the full point the
 * invariants hold and the resource is exactly used up; after the threads give everything back the
 * whole observable state is what it was before they started, and a second round gets exactly as
 * much again.
 *
 * The worker fixtures import `@sabvm/core` (packages/core/dist): build it first.
 */
import { describe, expect, it } from 'vitest';
import {
  ENOMEM,
  Kernel,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  TASK_SIZE,
  VMALLOC_START,
  type BootOptions,
} from '../src/index.js';
import { MiB, WorkerHarness, diffSnapshots, sharedInts, snapshot } from './helpers/reliability.js';

const P = PAGE_SIZE;
const RW = PROT_READ | PROT_WRITE;
const THREADS = 4;
const ROUNDS = 2;
/** Control words shared with the fixtures (torture-common.mjs `Ctl`). */
const Ctl = { BARRIER_GEN: 1, ABORT: 2, GO: 7, WORDS: 16 } as const;

type Mode = 'frames' | 'areas' | 'vaspace' | 'user' | 'vmas' | 'mms';

/** What a thread reports when its fill ends. */
interface Full {
  readonly phase: 'full';
  readonly round: number;
  readonly id: number;
  readonly failures: number;
  readonly wrong: readonly string[];
  readonly count?: number;
  readonly pages?: number;
  readonly pfns?: readonly number[];
  readonly mapped?: number;
}

interface Empty {
  readonly phase: 'empty';
  readonly wrong: readonly string[];
}

interface Run {
  readonly boot: BootOptions;
  readonly mode: Mode;
  /** Single-threaded setup before the threads start; returns the shared address space id, if any. */
  readonly setup?: (k: Kernel) => number;
  /** Checks at the full point (threads waiting). */
  readonly atFull: (k: Kernel, fulls: readonly Full[]) => void;
}

function release(ctl: Int32Array, word: number, value: number): void {
  Atomics.store(ctl, word, value);
  Atomics.notify(ctl, word);
}

/** Run `THREADS` threads through `ROUNDS` fill/empty rounds; returns each round's fill reports. */
async function exhaust(run: Run): Promise<Full[][]> {
  const k = Kernel.boot({ maxThreads: THREADS + 4, ...run.boot });
  const sharedMmId = run.setup?.(k) ?? 0;
  const baseline = snapshot(k, false);
  const ctl = sharedInts(Ctl.WORDS);
  const workers = Array.from(
    { length: THREADS },
    (_, id) =>
      new WorkerHarness('exhaust-worker.mjs', {
        handle: k.handle,
        id,
        parties: THREADS,
        mode: run.mode,
        ctl,
        rounds: ROUNDS,
        seed: 7_000 + id,
        sharedMmId,
      }),
  );
  const rounds: Full[][] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const fulls = await Promise.all(workers.map((w) => w.next<Full>()));
      expect(fulls.map((f) => [f.phase, f.round])).toEqual(fulls.map(() => ['full', round]));
      expect(fulls.flatMap((f) => f.wrong)).toEqual([]);
      for (const f of fulls) expect(f.failures).toBeGreaterThan(0);
      k.checkInvariants();
      run.atFull(k, fulls);
      k.checkInvariants();
      rounds.push(fulls);
      release(ctl, Ctl.GO, 2 * round + 1);

      const empties = await Promise.all(workers.map((w) => w.next<Empty>()));
      expect(empties.flatMap((e) => e.wrong)).toEqual([]);
      expect(diffSnapshots(baseline, snapshot(k, false))).toEqual([]);
      k.checkInvariants();
      release(ctl, Ctl.GO, 2 * round + 2);
    }
    expect(await Promise.all(workers.map((w) => w.exited))).toEqual(workers.map(() => 0));
  } finally {
    // on a failed expectation, let the waiting threads go so they exit
    Atomics.store(ctl, Ctl.ABORT, 1);
    Atomics.notify(ctl, Ctl.GO);
    Atomics.notify(ctl, Ctl.BARRIER_GEN);
  }
  return rounds;
}

const sum = (fulls: readonly Full[], key: 'count' | 'pages' | 'mapped'): number =>
  fulls.reduce((s, f) => s + (f[key] ?? 0), 0);

/** Each round got exactly as much as the first: nothing was lost in between. */
function expectSameEachRound(rounds: readonly Full[][], key: 'count' | 'pages'): void {
  const totals = rounds.map((r) => sum(r, key));
  expect(totals).toEqual(totals.map(() => totals[0]));
}

describe('exhaustion from four threads at once: null or -ENOMEM, nothing leaked, everything back', () => {
  it('runs physical memory out: vmalloc family null, remap and createAddressSpace refused, every frame accounted for', async () => {
    const rounds = await exhaust({
      boot: { memoryBytes: 2 * MiB, maxAreas: 1024, maxVmas: 1024 },
      mode: 'frames',
      atFull: (k, fulls) => {
        const s = k.stats();
        expect(s.freeFrames).toBe(0);
        // every frame is metadata, an area page or a page table, and no frame went to two areas
        expect(s.metadataFrames + sum(fulls, 'pages') + s.pageTableFrames).toBe(s.totalFrames);
        const pfns = fulls.flatMap((f) => f.pfns ?? []);
        expect(new Set(pfns).size).toBe(pfns.length);
        expect(sum(fulls, 'mapped')).toBeGreaterThan(0);
        expect(k.vmalloc(P)).toBeNull();
        expect(k.vmallocUser(P)).toBeNull();
        expect(k.createAddressSpace()).toBeNull();
        expect(k.stats()).toEqual(s);
      },
    });
    for (const fulls of rounds) {
      // the pages areas got plus the page tables they needed is all free memory, each round
      expect(sum(fulls, 'pages')).toBeGreaterThan(0);
    }
  });

  it('runs the vmalloc area table (maxAreas) out: exactly maxAreas areas, failed calls give their frames back', async () => {
    const maxAreas = 40;
    const rounds = await exhaust({
      boot: { memoryBytes: 4 * MiB, maxAreas },
      mode: 'areas',
      atFull: (k, fulls) => {
        expect(sum(fulls, 'count')).toBe(maxAreas);
        const s = k.stats();
        expect(s.vmallocAreas).toBe(maxAreas);
        expect(s.freeFrames).toBe(s.totalFrames - s.metadataFrames - maxAreas);
        expect(k.vzalloc(P)).toBeNull();
        expect(k.stats()).toEqual(s);
      },
    });
    expectSameEachRound(rounds, 'count');
  });

  it('runs the vmalloc address range out while frames are free: null, and the frames taken are given back', async () => {
    let expected = 0;
    let freeBefore = 0;
    const rounds = await exhaust({
      // a vmalloc range of 2 pages per frame and 300 more: after the 1-page areas, a 300-page tail
      boot: { memoryBytes: 4 * MiB, maxAreas: 2048, vmallocPages: 2 * 1024 + 300 },
      mode: 'vaspace',
      setup: (k) => {
        // fill memory with 1-page areas, then free every other one: the holes are 2 pages (area +
        // guard), too small for a 2-page area, though half the frames are free again
        const kaddrs: number[] = [];
        for (;;) {
          const kaddr = k.vmalloc(P);
          if (kaddr === null) break;
          kaddrs.push(kaddr);
        }
        expect(k.stats().freeFrames).toBe(0);
        kaddrs.forEach((kaddr, i) => {
          if (i % 2 === 0) k.vfree(kaddr);
        });
        expected = twoPageFits(k);
        freeBefore = k.stats().freeFrames;
        expect(expected).toBeGreaterThan(THREADS);
        expect(2 * expected).toBeLessThan(freeBefore);
        return 0;
      },
      atFull: (k, fulls) => {
        expect(sum(fulls, 'count')).toBe(expected);
        const s = k.stats();
        expect(s.freeFrames).toBe(freeBefore - 2 * expected);
        expect(k.vmalloc(2 * P)).toBeNull();
        expect(k.stats()).toEqual(s);
        // a 1-page area still fits a hole: it was the address range that ran out, not the frames
        const one = k.vmalloc(P);
        expect(one).not.toBeNull();
        k.vfree(one);
      },
    });
    expectSameEachRound(rounds, 'count');
  });

  it('runs a shared user address space out with 64 MiB mmaps: exactly the 63 that fit above page 0, then -ENOMEM', async () => {
    const big = 64 * MiB;
    let mmId = 0;
    const rounds = await exhaust({
      boot: { memoryBytes: 4 * MiB },
      mode: 'user',
      setup: (k) => {
        const mm = k.createAddressSpace();
        expect(mm).not.toBeNull();
        mmId = mm!.id;
        return mmId;
      },
      atFull: (k, fulls) => {
        expect(sum(fulls, 'count')).toBe(Math.floor((TASK_SIZE - P) / big));
        const mm = k.addressSpace(mmId);
        expect(mm.mmap(0, big, RW, MAP_SHARED)).toBe(-ENOMEM);
        expect(mm.vmas()).toHaveLength(sum(fulls, 'count'));
      },
    });
    expectSameEachRound(rounds, 'count');
  });

  it('runs the VMA pool (maxVmas) out: exactly maxVmas VMAs, splits refused with -ENOMEM', async () => {
    const maxVmas = 48;
    const rounds = await exhaust({
      boot: { memoryBytes: 4 * MiB, maxVmas },
      mode: 'vmas',
      atFull: (k, fulls) => {
        expect(sum(fulls, 'count')).toBe(maxVmas);
        const mm = k.createAddressSpace();
        expect(mm).not.toBeNull();
        expect(mm!.mmap(0, P, RW, MAP_SHARED)).toBe(-ENOMEM);
        mm!.destroy();
      },
    });
    expectSameEachRound(rounds, 'count');
  });

  it('runs the address-space table (maxAddressSpaces) out: exactly maxAddressSpaces, then null', async () => {
    const maxAddressSpaces = 12;
    const rounds = await exhaust({
      boot: { memoryBytes: 4 * MiB, maxAddressSpaces },
      mode: 'mms',
      atFull: (k, fulls) => {
        expect(sum(fulls, 'count')).toBe(maxAddressSpaces);
        expect(k.stats().addressSpaces).toBe(maxAddressSpaces);
        expect(k.createAddressSpace()).toBeNull();
      },
    });
    expectSameEachRound(rounds, 'count');
  });
});

/** How many 2-page areas (3 pages of range with the guard) fit the gaps of the vmalloc range. */
function twoPageFits(k: Kernel): number {
  const end = VMALLOC_START + k.layout.vmallocPages * P;
  let fits = 0;
  let prevEnd = VMALLOC_START;
  for (const a of [...k.vmallocAreas(), { addr: end, size: 0 }]) {
    fits += Math.floor((a.addr - prevEnd) / (3 * P));
    prevEnd = a.addr + a.size;
  }
  return fits;
}
