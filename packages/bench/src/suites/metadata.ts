/**
 * Suite `metadata`: how much of physical memory the kernel's own bookkeeping takes when 1 GiB is
 * fully mapped — the frame table, allocator state and area/VMA/address-space tables (the
 * layout's metadata frames) plus the page tables of one address space mapping everything.
 *
 * Nothing here is timed, so it has no tinybench rows: it is one measurement, reported as a ratio.
 *
 * @module
 */
import { Kernel, MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE, remapPartial } from '@sabvm/core';
import { checkIntegrity } from '../integrity.js';
import type { Measure } from '../results.js';
import type { Suite, SuiteContext, SuiteOutput } from './suite.js';

/** Physical memory of the measured kernel. */
export const METADATA_MEMORY_BYTES: number = 2 ** 30;
/** Measure names, shared with the targets. */
export const METADATA = {
  ratio: 'metadata ÷ physical memory',
  mapped: 'mapped ÷ physical memory',
} as const;

/** The `metadata` suite. */
export const metadataSuite: Suite = {
  name: 'metadata',
  title: 'metadata (frame table, allocator, tables, page tables) of a fully mapped 1 GiB',
  rateLabel: '',
  run: runMetadata,
};

function runMetadata(ctx: SuiteContext): Promise<SuiteOutput> {
  ctx.progress('mapping 1 GiB');
  const kernel = Kernel.boot({ memoryBytes: METADATA_MEMORY_BYTES });
  const freeAfterBoot = kernel.stats().freeFrames;
  const mm = kernel.createAddressSpace();
  const areas: number[] = [];
  let mappedPages = 0;
  let measures: Measure[] = [];
  try {
    if (mm === null) throw new Error('metadata: no address space');
    const total = kernel.stats().totalFrames;
    const reserve = Math.ceil(total / 1024) + 16;
    let chunk = 4096;
    while (chunk > 0) {
      const free = kernel.stats().freeFrames;
      chunk = Math.min(chunk, free - reserve);
      if (chunk <= 0) break;
      const kaddr = kernel.vmallocUser(chunk * PAGE_SIZE);
      if (kaddr === null) {
        chunk >>= 1;
        continue;
      }
      const uaddr = mm.mmap(0, chunk * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED);
      const vma = uaddr > 0 ? mm.findVma(uaddr) : null;
      if (vma === null || remapPartial(vma, uaddr, kaddr, chunk * PAGE_SIZE) !== 0) {
        kernel.vfree(kaddr);
        if (uaddr > 0) mm.munmap(uaddr, chunk * PAGE_SIZE);
        chunk >>= 1;
        continue;
      }
      areas.push(kaddr);
      mappedPages += chunk;
    }
    const s = kernel.stats();
    const metaFrames = s.metadataFrames + s.pageTableFrames;
    measures = [
      {
        name: METADATA.ratio,
        value: (metaFrames * PAGE_SIZE) / METADATA_MEMORY_BYTES,
        unit: 'ratio',
        detail: `${s.metadataFrames} metadata frames + ${s.pageTableFrames} page-table frames = ${metaFrames} of ${s.totalFrames} frames`,
      },
      {
        name: METADATA.mapped,
        value: (mappedPages * PAGE_SIZE) / METADATA_MEMORY_BYTES,
        unit: 'ratio',
        detail: `${mappedPages} pages mapped through one address space`,
      },
    ];
  } finally {
    mm?.destroy();
    for (const a of areas) kernel.vfree(a);
  }
  return Promise.resolve({
    groups: [],
    measures,
    lines: [],
    notes: [],
    integrity: checkIntegrity(kernel, freeAfterBoot),
  });
}
