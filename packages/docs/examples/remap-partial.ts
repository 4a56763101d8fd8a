/**
 * `remapPartial`: one call per row of the check table, each returning the row's result, and a
 * proof that a failed call leaves nothing behind.
 */
import { Kernel, MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE, remapPartial } from '@sabvm/core';
import { consolePrint, type Print } from './print.js';

/** Run the example. */
export function checkTableTour(print: Print = consolePrint): void {
  const kernel = Kernel.boot({ memoryBytes: 16 * 2 ** 20 });
  const mm = kernel.createAddressSpace();
  if (mm === null) throw new Error('no address space left');
  const rw = PROT_READ | PROT_WRITE;
  // #region example
  const area = kernel.vmallocUser(4 * PAGE_SIZE); // remappable, 4 backed pages
  const plain = kernel.vmalloc(4 * PAGE_SIZE); // not VM_USERMAP
  const freed = kernel.vmallocUser(PAGE_SIZE);
  kernel.vfree(freed); // a dead kernel address
  const uaddr = mm.mmap(0, 8 * PAGE_SIZE, rw, MAP_SHARED);
  const vma = mm.findVma(uaddr);
  const gone = mm.findVma(mm.mmap(0, PAGE_SIZE, rw, MAP_SHARED));
  if (area === null || plain === null || freed === null || vma === null || gone === null)
    throw new Error('setup');
  mm.munmap(gone.start, PAGE_SIZE); // `gone` is now a stale Vma

  const P = PAGE_SIZE;
  print('1 stale vma', remapPartial(gone, gone.start, area, P)); // -EINVAL
  print('2 size 0', remapPartial(vma, uaddr, area, 0)); // -EINVAL (Linux does not check)
  print('4 unaligned', remapPartial(vma, uaddr + 1, area, P)); // -EINVAL
  print('5 no area', remapPartial(vma, uaddr, freed, P)); // -EINVAL
  print('6 no VM_USERMAP', remapPartial(vma, uaddr, plain, P)); // -EINVAL
  print('7 past the area', remapPartial(vma, uaddr, area + P, 4 * P)); // -EINVAL (Linux checks less)
  print('8 outside the vma', remapPartial(vma, uaddr + 6 * P, area, 4 * P)); // -EFAULT

  const free = kernel.stats().freeFrames;
  print('11 success', remapPartial(vma, uaddr + 2 * P, area, 4 * P)); // 0: 4 PTEs installed
  print('9 PTE present', remapPartial(vma, uaddr, area, 3 * P)); // -EBUSY: page 2 is taken …
  print('nothing left behind', mm.pagemap().length); // … and pages 0, 1 stayed empty: 4 PTEs
  print('table frames taken', free - kernel.stats().freeFrames); // 1 page-table frame, no more
  // #endregion example

  // Row 10: no frame for a page table. A tiny kernel whose frames are all taken.
  const tiny = Kernel.boot({
    memoryBytes: 2 ** 20,
    maxAreas: 256,
    maxVmas: 16,
    maxAddressSpaces: 4,
  });
  const tinyMm = tiny.createAddressSpace();
  const tinyArea = tiny.vmallocUser(PAGE_SIZE);
  if (tinyMm === null || tinyArea === null) throw new Error('setup');
  const tinyUaddr = tinyMm.mmap(0, PAGE_SIZE, rw, MAP_SHARED);
  const tinyVma = tinyMm.findVma(tinyUaddr);
  if (tinyVma === null) throw new Error('setup');
  // #region enomem
  while (tiny.vmalloc(PAGE_SIZE) !== null); // take every free frame
  const before = tiny.stats().freeFrames; // 0
  print('10 no table frame', remapPartial(tinyVma, tinyUaddr, tinyArea, PAGE_SIZE)); // -ENOMEM
  print('unchanged', [tiny.stats().freeFrames === before, tinyMm.pagemap().length]); // [true, 0]
  // #endregion enomem
  tiny.checkInvariants();
  kernel.checkInvariants();
}
