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
