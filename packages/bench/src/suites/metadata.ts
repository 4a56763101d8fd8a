/**
 * Suite `metadata`: how much of physical memory the kernel's own bookkeeping takes when 1 GiB is
 * fully mapped — the frame table, allocator state and area/VMA/address-space tables (the
 * layout's metadata frames) plus the page tables of one address space mapping everything.
 *
 * Nothing here is timed, so it has no tinybench rows: it is one measurement, reported as a ratio.
 *
 * @module
 */
import {
  Kernel,
  MAP_FIXED,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  remapPartial,
} from '@sabvm/core';
import { checkIntegrity } from '../integrity.js';
import type { Measure } from '../results.js';
import type { Suite, SuiteContext, SuiteOutput } from './suite.js';

/** Physical memory of the measured kernel. */
export const METADATA_MEMORY_BYTES: number = 2 ** 30;
/** Measure names, shared with the targets. */
export const METADATA = {
  ratio: 'metadata ÷ physical memory',
  huge: 'metadata ÷ physical memory, huge entries',
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
  const placed: [kaddr: number, uaddr: number, pages: number][] = [];
  let mm4k: ReturnType<Kernel['createAddressSpace']> = null;
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
      placed.push([kaddr, uaddr, chunk]);
      mappedPages += chunk;
    }
    const s = kernel.stats();
    const metaFrames = s.metadataFrames + s.pageTableFrames;
    // the worst case: the same areas mapped into a second address space one page below, so that
    // no 4 MiB slot lines up with its frames and every page takes a 4 KiB PTE
    mm4k = kernel.createAddressSpace();
    if (mm4k === null) throw new Error('metadata: no second address space');
    for (const [kaddr, uaddr, pages] of placed) {
      const at = mm4k.mmap(
        uaddr - PAGE_SIZE,
        pages * PAGE_SIZE,
        PROT_READ | PROT_WRITE,
        MAP_SHARED | MAP_FIXED,
      );
      const vma = at > 0 ? mm4k.findVma(at) : null;
      if (vma === null || remapPartial(vma, at, kaddr, pages * PAGE_SIZE) !== 0)
        throw new Error('metadata: could not map the areas with 4 KiB PTEs');
    }
    const tables4k = kernel.stats().pageTableFrames - s.pageTableFrames;
    const meta4k = s.metadataFrames + tables4k;
    measures = [
      {
        name: METADATA.ratio,
        value: (meta4k * PAGE_SIZE) / METADATA_MEMORY_BYTES,
        unit: 'ratio',
        detail: `with a 4 KiB PTE for every page: ${s.metadataFrames} metadata frames + ${tables4k} page-table frames = ${meta4k} of ${s.totalFrames} frames`,
      },
      {
        name: METADATA.huge,
        value: (metaFrames * PAGE_SIZE) / METADATA_MEMORY_BYTES,
        unit: 'ratio',
        detail: `mapped as mmap and remapPartial place it (huge entries): ${s.metadataFrames} metadata frames + ${s.pageTableFrames} page-table frames = ${metaFrames} of ${s.totalFrames} frames`,
      },
      {
        name: METADATA.mapped,
        value: (mappedPages * PAGE_SIZE) / METADATA_MEMORY_BYTES,
        unit: 'ratio',
        detail: `${mappedPages} pages mapped through one address space`,
      },
    ];
  } finally {
    mm4k?.destroy();
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
