/**
 * Huge directory entries: a remap of whole aligned 4 MiB slots of a contiguous area installs one
 * entry per slot instead of a page table; every walker, munmap, mprotect, vfree and recovery must
 * see exactly the pages that 1024 PTEs would give. The property test runs the same calls on a
 * huge-mapped and a table-mapped view of one area and compares everything observable.
 */
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ENOMEM,
  Kernel,
  MAP_FIXED,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  remapPartial,
  SegmentationFault,
  BusError,
  type AddressSpace,
} from '../src/index.js';
import {
  areaPfns,
  eatFrames,
  expectFailsCleanly,
  expectSegv,
  MiB,
  pattern,
  runLengths,
  RW,
} from './helpers/mm-helpers.js';

const SLOT = 4 * MiB;
const SLOT_PAGES = SLOT / PAGE_SIZE;
const LONG = process.env.SABVM_LONG === '1';

/** Assert two byte arrays are equal (vitest's deep equality is far too slow for megabytes). */
function expectBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.length).toBe(expected.length);
  const at = Buffer.from(actual.buffer, actual.byteOffset, actual.length).compare(
    Buffer.from(expected.buffer, expected.byteOffset, expected.length),
  );
  if (at !== 0) {
    let i = 0;
    while (actual[i] === expected[i]) i++;
    expect(`byte ${i}: ${actual[i]}`).toBe(`byte ${i}: ${expected[i]}`);
  }
}

/** Map `bytes` of `kaddr` into `mm` (at `at` with MAP_FIXED, else where mmap likes). */
function mapAt(mm: AddressSpace, kaddr: number, bytes: number, at = 0, prot = RW): number {
  const uaddr = mm.mmap(at, bytes, prot, MAP_SHARED | (at === 0 ? 0 : MAP_FIXED));
  expect(uaddr).toBeGreaterThan(0);
  expect(remapPartial(mm.findVma(uaddr)!, uaddr, kaddr, bytes)).toBe(0);
  return uaddr;
}

/** A kernel, an aligned contiguous area of `bytes` with a pattern, and an address space. */
function setup(bytes: number, memory = 64 * MiB) {
  const k = Kernel.boot({ memoryBytes: memory });
  const boot = k.stats().freeFrames;
  const kaddr = k.vmallocUser(bytes)!;
  expect(kaddr).not.toBeNull();
  const data = pattern(bytes, 7);
  k.writeKernel(kaddr, data);
  const mm = k.createAddressSpace()!;
  return { k, boot, kaddr, data, mm };
}

describe('huge directory entries', () => {
  it('give a large area one aligned contiguous run, and a 4 MiB-multiple mmap an aligned range', () => {
    const { k, kaddr, mm } = setup(16 * MiB);
    const pfns = areaPfns(k, kaddr, (16 * MiB) / PAGE_SIZE) as number[];
    expect(runLengths(pfns)).toEqual([(16 * MiB) / PAGE_SIZE]);
    expect(pfns[0]! % SLOT_PAGES).toBe(0);
    mm.mmap(0, PAGE_SIZE, RW, MAP_SHARED); // an odd page at the top: the next range must skip down
    const uaddr = mm.mmap(0, 8 * MiB, RW, MAP_SHARED);
    expect(uaddr % SLOT).toBe(0);
    // other lengths are placed as before: right below the lowest mapping
    const odd = mm.mmap(0, 5 * MiB, RW, MAP_SHARED);
    expect(odd).toBe(uaddr - 5 * MiB);
  });

  it('map 16 MiB with four entries and no page table; every page reads as its own PTE', () => {
    const { k, kaddr, data, mm } = setup(16 * MiB);
    const tablesBefore = k.stats().pageTableFrames;
    const uaddr = mapAt(mm, kaddr, 16 * MiB);
    expect(k.stats().pageTableFrames).toBe(tablesBefore); // the page directory only
    const pfns = areaPfns(k, kaddr, (16 * MiB) / PAGE_SIZE) as number[];
    expect(mm.pagemap()).toEqual(
      pfns.map((pfn, i) => ({ uaddr: uaddr + i * PAGE_SIZE, pfn, prot: RW })),
    );
    const views = mm.segments(uaddr, 16 * MiB);
    expect(views).toHaveLength(1);
    expect(views[0]!.byteOffset).toBe(pfns[0]! * PAGE_SIZE);
    expectBytes(mm.read(uaddr + 3 * MiB + 5, 2 * MiB), data.subarray(3 * MiB + 5, 5 * MiB + 5));
    mm.write(uaddr + SLOT - 2, Uint8Array.of(1, 2, 3, 4)); // across two huge entries
    expect(k.readKernel(kaddr + SLOT - 2, 4)).toEqual(Uint8Array.of(1, 2, 3, 4));
    const word = new DataView(data.buffer).getInt32(12 * MiB + 8, true);
    expect(mm.getUser32(uaddr + 12 * MiB + 8)).toBe(word);
    expect(mm.segments(uaddr + SLOT - 4096, 8192)).toHaveLength(1);
    k.checkInvariants();
  });

  it('fall back to page tables where the frames do not line up with the slots', () => {
    const { k, kaddr, mm } = setup(16 * MiB);
    const tablesBefore = k.stats().pageTableFrames;
    const uaddr = mapAt(mm, kaddr, 8 * MiB, 0x4000_1000); // one page past a slot boundary
    expect(k.stats().pageTableFrames).toBe(tablesBefore + 3);
    // a range that covers one whole slot, starting inside the area at a slot-aligned frame
    const mm2 = k.createAddressSpace()!;
    const u2 = mm2.mmap(0x1000_0000 - MiB, 6 * MiB, RW, MAP_SHARED | MAP_FIXED);
    expect(remapPartial(mm2.findVma(u2)!, u2, kaddr + 3 * MiB, 6 * MiB)).toBe(0);
    // slots: [-1 MiB, 0) part (table), [0, 4 MiB) whole (huge), [4, 5 MiB) part (table)
    expect(k.stats().pageTableFrames).toBe(tablesBefore + 3 + 1 + 2);
    expectBytes(mm2.read(u2, 6 * MiB), k.readKernel(kaddr + 3 * MiB, 6 * MiB));
    expectBytes(mm.read(uaddr, 8 * MiB), k.readKernel(kaddr, 8 * MiB));
    k.checkInvariants();
  });

  it('replace the empty page table of a slot with a huge entry and free the table', () => {
    const { k, boot, kaddr, data, mm } = setup(8 * MiB);
    const tables = k.stats().pageTableFrames;
    // a small mapping leaves page tables in both slots; unmapped, they stay (empty)
    const small = mapAt(mm, kaddr + PAGE_SIZE, 8 * MiB - PAGE_SIZE, 0x4000_0000);
    expect(k.stats().pageTableFrames).toBe(tables + 2);
    expect(mm.munmap(small, 8 * MiB - PAGE_SIZE)).toBe(0);
    expect(k.stats().pageTableFrames).toBe(tables + 2);
    const uaddr = mapAt(mm, kaddr, 8 * MiB, 0x4000_0000);
    expect(k.stats().pageTableFrames).toBe(tables); // both tables freed, two huge entries
    expect(mm.segments(uaddr, 8 * MiB)).toHaveLength(1);
    expectBytes(mm.read(uaddr + 3 * MiB, 2 * MiB), data.subarray(3 * MiB, 5 * MiB));
    k.checkInvariants();
    mm.destroy();
    k.vfree(kaddr);
    expect(k.stats().freeFrames).toBe(boot);
  });

  it('split on a partial munmap: the hole faults, the rest keeps its frames, nothing leaks', () => {
    const { k, boot, kaddr, data, mm } = setup(8 * MiB);
    const uaddr = mapAt(mm, kaddr, 8 * MiB);
    const before = mm.pagemap();
    const tables = k.stats().pageTableFrames;
    const hole = uaddr + SLOT + 5 * PAGE_SIZE;
    expect(mm.munmap(hole, 2 * PAGE_SIZE)).toBe(0);
    expect(k.stats().pageTableFrames).toBe(tables + 1);
    expect(mm.pagemap()).toEqual(before.filter((e) => e.uaddr < hole || e.uaddr >= hole + 8192));
    expectSegv(() => mm.segments(hole + PAGE_SIZE, 4), 'SEGV_MAPERR', hole + PAGE_SIZE);
    expectBytes(mm.read(uaddr, SLOT + 5 * PAGE_SIZE), data.subarray(0, SLOT + 5 * PAGE_SIZE));
    expectBytes(
      mm.read(hole + 8192, 3 * MiB),
      data.subarray(SLOT + 7 * PAGE_SIZE, SLOT + 7 * PAGE_SIZE + 3 * MiB),
    );
    k.checkInvariants();
    expect(mm.munmap(uaddr, 8 * MiB)).toBe(0);
    k.vfree(kaddr);
    mm.destroy();
    k.checkInvariants();
    expect(k.stats().freeFrames).toBe(boot);
  });

  it('change a whole slot with one entry, and split only for a part of one', () => {
    const { k, kaddr, mm } = setup(8 * MiB);
    const uaddr = mapAt(mm, kaddr, 8 * MiB);
    const tables = k.stats().pageTableFrames;
    expect(mm.mprotect(uaddr, SLOT, PROT_READ)).toBe(0);
    expect(k.stats().pageTableFrames).toBe(tables);
    expectSegv(
      () => {
        mm.write(uaddr + 100, Uint8Array.of(1));
      },
      'SEGV_ACCERR',
      uaddr + 100,
    );
    expect(mm.segments(uaddr + SLOT - 8, 16, { write: false })).toHaveLength(1);
    expect(mm.mprotect(uaddr + SLOT + PAGE_SIZE, PAGE_SIZE, PROT_NONE)).toBe(0);
    expect(k.stats().pageTableFrames).toBe(tables + 1);
    const prots = mm.pagemap().map((e) => e.prot);
    expect(prots.slice(0, SLOT_PAGES).every((p) => p === PROT_READ)).toBe(true);
    expect(prots[SLOT_PAGES]).toBe(RW);
    expect(prots[SLOT_PAGES + 1]).toBe(0);
    expect(prots[SLOT_PAGES + 2]).toBe(RW);
    expect(mm.vmas().map((v) => [v.start - uaddr, v.end - uaddr, v.prot])).toEqual([
      [0, SLOT, PROT_READ],
      [SLOT, SLOT + PAGE_SIZE, RW],
      [SLOT + PAGE_SIZE, SLOT + 2 * PAGE_SIZE, PROT_NONE],
      [SLOT + 2 * PAGE_SIZE, 8 * MiB, RW],
    ]);
    k.checkInvariants();
  });

  it('refuse a split with -ENOMEM and change nothing when no frame is left for the table', () => {
    const { k, kaddr, mm } = setup(8 * MiB, 24 * MiB);
    const uaddr = mapAt(mm, kaddr, 8 * MiB);
    const eater = eatFrames(k);
    expectFailsCleanly(k, () => mm.munmap(uaddr + PAGE_SIZE, PAGE_SIZE), ENOMEM);
    expectFailsCleanly(k, () => mm.mprotect(uaddr + SLOT - PAGE_SIZE, 2 * PAGE_SIZE, 0), ENOMEM);
    expectFailsCleanly(
      k,
      () => mm.mmap(uaddr + 3 * PAGE_SIZE, PAGE_SIZE, RW, MAP_SHARED | MAP_FIXED),
      ENOMEM,
    );
    // whole slots need no table
    expect(mm.mprotect(uaddr, SLOT, PROT_READ)).toBe(0);
    expect(mm.munmap(uaddr + SLOT, SLOT)).toBe(0);
    k.checkInvariants();
    k.vfree(eater);
  });

  it('keep the frames of a vfree-d huge-mapped area until the last mapping goes', () => {
    const { k, boot, kaddr, data, mm } = setup(8 * MiB);
    const uaddr = mapAt(mm, kaddr, 8 * MiB);
    const mm2 = k.createAddressSpace()!;
    const u2 = mapAt(mm2, kaddr, 8 * MiB, 0x4000_1000); // page tables
    const free = k.stats().freeFrames;
    k.vfree(kaddr);
    expect(k.stats().freeFrames).toBe(free);
    expect(mm.read(uaddr + SLOT, 64)).toEqual(data.subarray(SLOT, SLOT + 64));
    expect(mm.munmap(uaddr + PAGE_SIZE, PAGE_SIZE)).toBe(0); // a split of orphan pages
    expect(mm.munmap(uaddr, SLOT)).toBe(0);
    expect(k.stats().freeFrames).toBe(free - 1); // the split's table; mm2 still maps every page
    expect(mm2.munmap(u2, SLOT)).toBe(0);
    expect(k.stats().freeFrames).toBe(free - 1 + SLOT_PAGES);
    k.checkInvariants();
    mm.destroy();
    mm2.destroy();
    expect(k.stats().freeFrames).toBe(boot);
    k.checkInvariants();
  });

  it(
    'see the same pages through huge entries as through page tables, whatever is cut (property)',
    () => {
      const bytes = 12 * MiB;
      const pages = bytes / PAGE_SIZE;
      const op = fc.oneof(
        fc.record({
          kind: fc.constant('munmap' as const),
          first: fc.integer({ min: 0, max: pages - 1 }),
          count: fc.integer({ min: 1, max: pages }),
        }),
        fc.record({
          kind: fc.constant('mprotect' as const),
          first: fc.integer({ min: 0, max: pages - 1 }),
          count: fc.integer({ min: 0, max: pages }),
          prot: fc.constantFrom(PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE),
        }),
        fc.record({
          kind: fc.constant('fixed' as const),
          first: fc.integer({ min: 0, max: pages - 1 }),
          count: fc.integer({ min: 1, max: 2 * SLOT_PAGES }),
        }),
        fc.record({ kind: fc.constant('vfree' as const) }),
      );
      fc.assert(
        fc.property(
          fc.array(op, { maxLength: 12 }),
          fc.integer({ min: 0, max: pages - 1 }),
          (ops, probe) => {
            const { k, boot, kaddr, mm } = setup(bytes, 40 * MiB);
            const twin = k.createAddressSpace()!;
            const huge = mapAt(mm, kaddr, bytes);
            const flat = mapAt(twin, kaddr, bytes, 0x4000_1000);
            const hugeTables = k.stats().pageTableFrames;
            expect(hugeTables).toBe(2 + bytes / SLOT + 1); // two directories, the twin's tables
            let freed = false;
            const view = (m: AddressSpace, base: number) => ({
              ptes: m.pagemap().map((e) => [e.uaddr - base, e.pfn, e.prot]),
              vmas: m.vmas().map((v) => [v.start - base, v.end - base, v.prot]),
            });
            const probeBoth = (first: number, n: number, write: boolean) => {
              const one = (m: AddressSpace, base: number) => {
                try {
                  return m
                    .segments(base + first * PAGE_SIZE, n * PAGE_SIZE, { write })
                    .map((v) => [v.byteOffset, v.length]);
                } catch (e) {
                  if (!(e instanceof SegmentationFault) && !(e instanceof BusError)) throw e;
                  return [e.code, e.address - base];
                }
              };
              expect(one(mm, huge)).toEqual(one(twin, flat));
            };
            for (const o of ops) {
              if (o.kind === 'vfree') {
                if (!freed) k.vfree(kaddr);
                freed = true;
                continue;
              }
              const n = Math.min(o.count, pages - o.first);
              const rel = o.first * PAGE_SIZE;
              if (o.kind === 'munmap') {
                expect(mm.munmap(huge + rel, n * PAGE_SIZE)).toBe(
                  twin.munmap(flat + rel, n * PAGE_SIZE),
                );
              } else if (o.kind === 'mprotect') {
                expect(mm.mprotect(huge + rel, n * PAGE_SIZE, o.prot)).toBe(
                  twin.mprotect(flat + rel, n * PAGE_SIZE, o.prot),
                );
              } else {
                const a = mm.mmap(huge + rel, n * PAGE_SIZE, RW, MAP_SHARED | MAP_FIXED);
                const b = twin.mmap(flat + rel, n * PAGE_SIZE, RW, MAP_SHARED | MAP_FIXED);
                expect([a - huge, b - flat]).toEqual([rel, rel]);
              }
              expect(view(mm, huge)).toEqual(view(twin, flat));
              probeBoth(probe, Math.min(3 * SLOT_PAGES, pages - probe), false);
              probeBoth(probe, 1, true);
            }
            k.checkInvariants();
            mm.destroy();
            twin.destroy();
            if (!freed) k.vfree(kaddr);
            k.checkInvariants();
            expect(k.stats().freeFrames).toBe(boot);
          },
        ),
        { numRuns: LONG ? 400 : 60 },
      );
    },
    LONG ? 900_000 : undefined,
  );

  it(
    'never let a reader in another thread see a wrong or reused frame while slots are split and unmapped',
    async () => {
      const bytes = 8 * MiB;
      const k = Kernel.boot({ memoryBytes: 64 * MiB });
      const mm = k.createAddressSpace()!;
      const uaddr = 0x8000_0000;
      const fill = (kaddr: number, round: number) => {
        const words = new Int32Array(bytes / 4);
        for (let w = 0; w < words.length; w++) words[w] = (round << 24) | w;
        k.writeKernel(kaddr, new Uint8Array(words.buffer));
      };
      let kaddr = k.vmallocUser(bytes)!;
      fill(kaddr, 0);
      mapAt(mm, kaddr, bytes, uaddr);
      const ctl = new Int32Array(new SharedArrayBuffer(4));
      const readers = [1, 2].map(
        (seed) =>
          new Worker(new URL('./fixtures/huge-reader-worker.mjs', import.meta.url), {
            workerData: { handle: k.handle, mmId: mm.id, uaddr, bytes, ctl, seed },
          }),
      );
      const results = readers.map(
        (w) =>
          new Promise<{ ok: number; faults: number; bad: number; firstBad: string }>((res, rej) => {
            w.once('message', res);
            w.once('error', rej);
          }),
      );
      const rounds = LONG ? 2000 : 150;
      for (let round = 1; round <= rounds; round++) {
        // cut a page out of a slot (a split), then unmap everything and free the frames
        const hole = Math.floor(Math.random() * (bytes / PAGE_SIZE));
        expect(mm.munmap(uaddr + hole * PAGE_SIZE, PAGE_SIZE)).toBe(0);
        // let the readers walk the split table for a while
        for (const until = performance.now() + 0.5; performance.now() < until;);
        expect(mm.munmap(uaddr, bytes)).toBe(0);
        // the old frames are scribbled over while still the area's: a reader whose translation
        // outlived the munmap would read 0xffffffff from them
        k.writeKernel(kaddr, new Uint8Array(bytes).fill(0xff));
        k.vfree(kaddr);
        // the old frames may still wait out the readers' read sections (a descheduled reader
        // holds its grace period open): give them time before calling memory short
        let next = k.vmallocUser(bytes);
        for (let tries = 0; next === null && tries < 2000; tries++) {
          await new Promise((resolve) => setTimeout(resolve, 1));
          next = k.vmallocUser(bytes);
        }
        expect(next).not.toBeNull();
        kaddr = next!;
        fill(kaddr, round & 0x7f);
        mapAt(mm, kaddr, bytes, uaddr);
        if (round % 16 === 0) await new Promise((r) => setTimeout(r, 1));
      }
      Atomics.store(ctl, 0, 1);
      const counts = await Promise.all(results);
      for (const c of counts) {
        expect(c.firstBad).toBe('');
        expect(c.bad).toBe(0);
        expect(c.ok).toBeGreaterThan(0);
      }
      mm.destroy();
      k.vfree(kaddr);
      k.checkInvariants();
    },
    LONG ? 900_000 : undefined,
  );
});
