/**
 * Page tables: a user PTE and the kernel's vmalloc mapping point at the same frame; page-table
 * frames are frames of physical memory, owned by their address space.
 */
import {
  FRAME_PAGE_TABLE,
  Kernel,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  remapPartial,
} from '@sabvm/core';
import { consolePrint, type Print } from './print.js';

/** Run the example. */
export function pageTablesTour(print: Print = consolePrint): void {
  const kernel = Kernel.boot({ memoryBytes: 16 * 2 ** 20 });
  const kaddr = kernel.vmallocUser(2 * PAGE_SIZE);
  const mm = kernel.createAddressSpace();
  if (kaddr === null || mm === null) throw new Error('out of memory');
  const uaddr = mm.mmap(0, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED);
  const vma = mm.findVma(uaddr);
  if (vma === null) throw new Error('mmap failed');
  // #region example
  print('remap', remapPartial(vma, uaddr, kaddr, 2 * PAGE_SIZE)); // 0
  const [first] = mm.pagemap(); // every installed PTE: { uaddr, pfn, prot }
  print('same frame', first?.pfn === kernel.vmallocToPfn(kaddr)); // true: user and kernel share it
  print('pte prot', first?.prot === (PROT_READ | PROT_WRITE)); // true: the VMA's protection

  const { kinds, owners } = kernel.frameSnapshot(); // per frame: owner kind and owner id
  const tables = [...kinds.keys()].filter(
    (pfn) => kinds[pfn] === FRAME_PAGE_TABLE && owners[pfn] === mm.id,
  );
  print('page-table frames', tables.length); // 2: the page directory and one page table
  // #endregion example
  mm.destroy();
  kernel.vfree(kaddr);
}

/** Run the huge-entry example: a 4 MiB-aligned mapping of a large area needs no page table. */
export function hugeEntriesTour(print: Print = consolePrint): void {
  const kernel = Kernel.boot({ memoryBytes: 32 * 2 ** 20 });
  const tablesNow = (): number => kernel.stats().pageTableFrames;
  // #region huge
  const kaddr = kernel.vmallocUser(8 * 2 ** 20); // 8 MiB: one contiguous run on a 4 MiB boundary
  const mm = kernel.createAddressSpace();
  if (kaddr === null || mm === null) throw new Error('out of memory');
  const uaddr = mm.mmap(0, 8 * 2 ** 20, PROT_READ | PROT_WRITE, MAP_SHARED); // 4 MiB-aligned
  const vma = mm.findVma(uaddr);
  if (vma === null) throw new Error('mmap failed');
  print('huge remap', remapPartial(vma, uaddr, kaddr, 8 * 2 ** 20)); // 0: two huge entries
  print('tables after remap', tablesNow()); // 1: the page directory only
  print('pages mapped', mm.pagemap().length); // 2048: every page still reads as its own PTE
  print('views', mm.segments(uaddr, 8 * 2 ** 20).length); // 1: one contiguous run

  print('split munmap', mm.munmap(uaddr + PAGE_SIZE, PAGE_SIZE)); // 0: cuts the first entry
  print('tables after split', tablesNow()); // 2: that 4 MiB now has a page table
  print('pages left', mm.pagemap().length); // 2047
  // #endregion huge
  mm.destroy();
  kernel.vfree(kaddr);
}
