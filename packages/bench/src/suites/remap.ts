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
/** Each timed call handles at least this many pages (small sizes are batched). */
export const MIN_PAGES_PER_ITERATION = 256;

/** Row names, shared with the targets. */
export const REMAP_ROWS = {
  remap: 'remapPartial',
  munmap: 'munmap',
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
  const kaddr = kernel.vmallocUser(maxPages * PAGE_SIZE);
  const mm = kernel.createAddressSpace();
  const groups: GroupResult[] = [];
  try {
    if (kaddr === null || mm === null) {
      throw new Error('remap: could not set up the vmalloc area and address space');
    }
    const bench = new SuiteBench('remap', ctx.harness);
    for (const pages of REMAP_SIZES_PAGES) {
      groups.push(await bench.runGroup(remapGroup(mm, kaddr, pages)));
    }
  } finally {
    mm?.destroy();
    kernel.vfree(kaddr);
  }
  return {
    groups,
    measures: [],
    lines: [],
    notes: [],
    integrity: checkIntegrity(kernel, freeAfterBoot),
  };
}

function remapGroup(mm: AddressSpace, kaddr: number, pages: number): CaseGroup {
  const batch = Math.max(1, Math.ceil(MIN_PAGES_PER_ITERATION / pages));
  const size = pages * PAGE_SIZE;
  const units = pages * batch;
  const uaddrs: number[] = [];
  const vmas: Vma[] = [];
  const mapVmas = (): void => {
    for (let b = 0; b < batch; b++) {
      const uaddr = mm.mmap(0, size, PROT_READ | PROT_WRITE, MAP_SHARED);
      const vma = uaddr > 0 ? mm.findVma(uaddr) : null;
      if (vma === null) throw new Error(`remap: mmap of ${size} bytes failed (${uaddr})`);
      uaddrs.push(uaddr);
      vmas.push(vma);
    }
  };
  const remapAll = (): void => {
    for (let b = 0; b < batch; b++) {
      const rc = remapPartial(vmas[b]!, uaddrs[b]!, kaddr, size);
      if (rc !== 0) throw new Error(`remap: remapPartial of ${pages} pages returned ${rc}`);
    }
  };
  const unmapAll = (): void => {
    for (const uaddr of uaddrs) {
      const rc = mm.munmap(uaddr, size);
      if (rc !== 0) throw new Error(`remap: munmap of ${pages} pages returned ${rc}`);
    }
    uaddrs.length = 0;
    vmas.length = 0;
  };
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
    { ...common, name: REMAP_ROWS.cas, role: 'baseline', fn: casLoop(units) },
    { ...common, name: REMAP_ROWS.fill, role: 'baseline', fn: fillLoop(units) },
  ];
  const ratios = [REMAP_ROWS.remap, REMAP_ROWS.munmap].flatMap((subject) =>
    [REMAP_ROWS.cas, REMAP_ROWS.fill].map((baseline) => ({
      name: `${subject} ÷ ${baseline}`,
      subject,
      baseline,
      kind: 'throughput' as const,
    })),
  );
  const group = { name: remapGroupName(pages), bytes: size, cases, ratios };
  return group;
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
