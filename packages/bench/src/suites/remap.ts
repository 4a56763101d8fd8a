/**
 * Suite `remap`: `remapPartial` of 1 to 16384 pages into fresh VMAs, and `munmap` of the same,
 * against the per-PTE `Atomics.compareExchange` ceiling and the plain-store `Int32Array.fill`
 * ceiling over as many Int32 slots as there are PTEs.
 *
 * Kernel counterpart: `remap_vmalloc_range_partial` (`mm/vmalloc.c`) and `zap_page_range`.
 *
 * Small sizes are batched: one timed call maps at least {@link MIN_PAGES_PER_ITERATION} pages
 * (e.g. 256 one-page VMAs, each remapped end to end), so each sample sits well above the timer's
 * resolution; the baselines touch the same number of slots per call.
 *
 * @module
 */
import {
  Kernel,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  remapPartial,
  type AddressSpace,
  type Vma,
} from '@sabvm/core';
import { SuiteBench, type BenchCase, type CaseGroup } from '../harness.js';
import { checkIntegrity } from '../integrity.js';
import type { GroupResult } from '../results.js';
import type { Suite, SuiteContext, SuiteOutput } from './suite.js';

/** The sizes measured, in pages (4 KiB to 64 MiB). */
export const REMAP_SIZES_PAGES: readonly number[] = [1, 16, 512, 4096, 16384];
/** Pages one huge entry maps (4 MiB): from this size on, remapPartial can use huge entries. */
const HUGE_PAGES = 1024;
/** Each timed call handles at least this many pages (small sizes are batched). */
export const MIN_PAGES_PER_ITERATION = 256;

/** Row names, shared with the targets. */
export const REMAP_ROWS = {
  remap: 'remapPartial',
  munmap: 'munmap',
  remapPtes: 'remapPartial, 4 KiB PTEs only',
  munmapPtes: 'munmap, 4 KiB PTEs only',
  cas: 'Atomics.compareExchange',
  fill: 'Int32Array.fill',
} as const;

/** The group name of a size in pages (`1 page`, `16 pages`). Context: any; pure. */
export function remapGroupName(pages: number): string {
  return `${pages} ${pages === 1 ? 'page' : 'pages'}`;
}

/** The `remap` suite. */
export const remapSuite: Suite = {
  name: 'remap',
  title: 'remapPartial and munmap vs per-PTE Atomics and plain stores',
  rateLabel: 'pages/s',
  run: runRemap,
};

async function runRemap(ctx: SuiteContext): Promise<SuiteOutput> {
  const maxPages = Math.max(...REMAP_SIZES_PAGES);
  const kernel = Kernel.boot({ memoryBytes: (maxPages + 8192) * PAGE_SIZE });
  const freeAfterBoot = kernel.stats().freeFrames;
  // one page more than the largest mapping: the "4 KiB PTEs only" rows map from its second page
  const kaddr = kernel.vmallocUser((maxPages + 1) * PAGE_SIZE);
  const groups: GroupResult[] = [];
  try {
    if (kaddr === null) throw new Error('remap: could not allocate the vmalloc area');
    const bench = new SuiteBench('remap', ctx.harness);
    for (const pages of REMAP_SIZES_PAGES) {
      groups.push(await bench.runGroup(remapGroup(kernel, kaddr, pages)));
    }
  } finally {
    kernel.vfree(kaddr);
  }
  return {
    groups,
    measures: [],
    lines: [],
    notes: [
      `"${REMAP_ROWS.remap}" maps each whole 4 MiB slot of the range with one huge entry (the area is one aligned contiguous run and mmap aligns the VMA), so from 1024 pages on it writes one entry per 4 MiB.`,
      `"${REMAP_ROWS.remapPtes}" and "${REMAP_ROWS.munmapPtes}" (sizes of 1024 pages and more) map the same number of pages from the area's second page: one page off every slot boundary, so every page gets its own PTE.`,
    ],
    integrity: checkIntegrity(kernel, freeAfterBoot),
  };
}

/** Map, remap and unmap `batch` VMAs of `size` bytes in one address space, from `from`. */
function mapper(mm: () => AddressSpace, from: number, size: number, batch: number) {
  const uaddrs: number[] = [];
  const vmas: Vma[] = [];
  const map = (): void => {
    for (let b = 0; b < batch; b++) {
      const uaddr = mm().mmap(0, size, PROT_READ | PROT_WRITE, MAP_SHARED);
      const vma = uaddr > 0 ? mm().findVma(uaddr) : null;
      if (vma === null) throw new Error(`remap: mmap of ${size} bytes failed (${uaddr})`);
      uaddrs.push(uaddr);
      vmas.push(vma);
    }
  };
  const remap = (): void => {
    for (let b = 0; b < batch; b++) {
      const rc = remapPartial(vmas[b]!, uaddrs[b]!, from, size);
      if (rc !== 0) throw new Error(`remap: remapPartial of ${size} bytes returned ${rc}`);
    }
  };
  const unmap = (): void => {
    for (const uaddr of uaddrs) {
      const rc = mm().munmap(uaddr, size);
      if (rc !== 0) throw new Error(`remap: munmap of ${size} bytes returned ${rc}`);
    }
    uaddrs.length = 0;
    vmas.length = 0;
  };
  return { map, remap, unmap };
}

function remapGroup(kernel: Kernel, kaddr: number, pages: number): CaseGroup {
  const batch = Math.max(1, Math.ceil(MIN_PAGES_PER_ITERATION / pages));
  const size = pages * PAGE_SIZE;
  const units = pages * batch;
  // one address space per kind of row, made fresh for each size, so that each row times only its
  // own path (a huge-entry remap into a slot holding an empty page table, left by a "4 KiB PTEs
  // only" row or a smaller size, would also free that table)
  let spaces: AddressSpace[] = [];
  const space = (i: number) => (): AddressSpace => {
    const mm = spaces[i];
    if (mm === undefined) throw new Error('remap: the group has no address space');
    return mm;
  };
  const huge = mapper(space(0), kaddr, size, batch);
  const ptes = mapper(space(1), kaddr + PAGE_SIZE, size, batch);
  const mapVmas = huge.map;
  const remapAll = huge.remap;
  const unmapAll = huge.unmap;
  const common = { unit: 'pages', unitsPerIteration: units } as const;
  const cases: BenchCase[] = [
    {
      ...common,
      name: REMAP_ROWS.remap,
      role: 'subject',
      beforeEach: mapVmas,
      fn: remapAll,
      afterEach: unmapAll,
    },
    {
      ...common,
      name: REMAP_ROWS.munmap,
      role: 'subject',
      beforeEach: () => {
        mapVmas();
        remapAll();
      },
      fn: unmapAll,
      afterEach: unmapAll,
    },
    ...(pages < HUGE_PAGES
      ? []
      : [
          {
            ...common,
            name: REMAP_ROWS.remapPtes,
            role: 'subject' as const,
            beforeEach: ptes.map,
            fn: ptes.remap,
            afterEach: ptes.unmap,
          },
          {
            ...common,
            name: REMAP_ROWS.munmapPtes,
            role: 'subject' as const,
            beforeEach: () => {
              ptes.map();
              ptes.remap();
            },
            fn: ptes.unmap,
            afterEach: ptes.unmap,
          },
        ]),
    { ...common, name: REMAP_ROWS.cas, role: 'baseline', fn: casLoop(units) },
    { ...common, name: REMAP_ROWS.fill, role: 'baseline', fn: fillLoop(units) },
  ];
  const subjects: string[] = [REMAP_ROWS.remap, REMAP_ROWS.munmap];
  if (pages >= HUGE_PAGES) subjects.push(REMAP_ROWS.remapPtes, REMAP_ROWS.munmapPtes);
  const ratios = subjects.flatMap((subject) =>
    [REMAP_ROWS.cas, REMAP_ROWS.fill].map((baseline) => ({
      name: `${subject} ÷ ${baseline}`,
      subject,
      baseline,
      kind: 'throughput' as const,
    })),
  );
  return {
    name: remapGroupName(pages),
    bytes: size,
    cases,
    ratios,
    setup: () => {
      spaces = [0, 1].map(() => {
        const mm = kernel.createAddressSpace();
        if (mm === null) throw new Error('remap: could not create an address space');
        return mm;
      });
    },
    teardown: () => {
      for (const mm of spaces) mm.destroy();
      spaces = [];
    },
  };
}

/**
 * The per-PTE Atomics ceiling: one successful compare-and-exchange per slot, as a PTE install
 * that takes no lock would do. Every call moves every slot from generation `g` to `g + 1`.
 */
function casLoop(slots: number): () => void {
  const i32 = new Int32Array(new SharedArrayBuffer(slots * 4));
  let gen = 0;
  return () => {
    const old = gen;
    const next = (old + 1) | 0;
    for (let i = 0; i < slots; i++) {
      Atomics.compareExchange(i32, i, old, next);
    }
    gen = next;
    if (i32[slots - 1] !== next) throw new Error('remap: compareExchange baseline lost a store');
  };
}

/** The plain-store ceiling: `Int32Array.prototype.fill` over the same number of slots. */
function fillLoop(slots: number): () => void {
  const i32 = new Int32Array(new SharedArrayBuffer(slots * 4));
  let gen = 0;
  return () => {
    gen = (gen + 1) | 0;
    i32.fill(gen, 0, slots);
  };
}
