/**
 * Lifetimes: `vfree` kills the kernel address at once, but frames still mapped into a user address
 * space keep their data until the last mapping goes; then they return to the free pool.
 */
import { Kernel, MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE, remapPartial } from '@sabvm/core';
import { consolePrint, type Print } from './print.js';

/** Run the example. */
export function lifetimesTour(print: Print = consolePrint): void {
  const kernel = Kernel.boot({ memoryBytes: 16 * 2 ** 20 });
  // #region example
  const freeAtStart = kernel.stats().freeFrames;
  const mm = kernel.createAddressSpace(); // takes 1 frame: its page directory
  if (mm === null) throw new Error('no address space left');
  const kaddr = kernel.vmallocUser(2 * PAGE_SIZE);
  if (kaddr === null) throw new Error('out of memory');
  kernel.writeKernel(kaddr, new TextEncoder().encode('still here'));
  const pfn = kernel.vmallocToPfn(kaddr);

  const uaddr = mm.mmap(0, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED);
  const vma = mm.findVma(uaddr);
  if (vma === null || remapPartial(vma, uaddr, kaddr, 2 * PAGE_SIZE) !== 0)
    throw new Error('remap');
  print('refcount while mapped', kernel.frameSnapshot().refcounts[pfn ?? 0]); // 2: the area's + the PTE's

  kernel.vfree(kaddr); // the area is gone …
  print('findVmArea', kernel.findVmArea(kaddr)); // null
  print('user still reads', new TextDecoder().decode(mm.read(uaddr, 10))); // 'still here'
  print('refcount after vfree', kernel.frameSnapshot().refcounts[pfn ?? 0]); // 1: the PTE's
  print('frames in use', freeAtStart - kernel.stats().freeFrames); // 4: 2 data + 2 page-table frames

  mm.munmap(uaddr, 2 * PAGE_SIZE); // the last reference goes: the frames are free again
  print('frames in use after munmap', freeAtStart - kernel.stats().freeFrames); // 2: page tables
  mm.destroy(); // exit_mmap frees the page-table frames too
  print('all back', kernel.stats().freeFrames === freeAtStart); // true
  // #endregion example
  kernel.checkInvariants();
}
