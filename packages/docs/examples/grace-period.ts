/**
 * Grace periods: frames released while another thread is inside a read section are deferred, not
 * freed, until that section ends — so zero-copy views taken inside it never point into frames
 * that someone else already owns.
 */
import { Kernel, MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE, remapPartial } from '@sabvm/core';
import { consolePrint, type Print } from './print.js';

/** Run the example. */
export function gracePeriodTour(print: Print = consolePrint): void {
  const kernel = Kernel.boot({ memoryBytes: 16 * 2 ** 20 });
  const kaddr = kernel.vmallocUser(4 * PAGE_SIZE);
  const mm = kernel.createAddressSpace();
  if (kaddr === null || mm === null) throw new Error('out of memory');
  const uaddr = mm.mmap(0, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED);
  const vma = mm.findVma(uaddr);
  if (vma === null || remapPartial(vma, uaddr, kaddr, 4 * PAGE_SIZE) !== 0)
    throw new Error('remap');
  const freeBefore = kernel.stats().freeFrames;
  // #region example
  // A second attachment stands in for another thread (a worker would attach the same way).
  const reader = Kernel.attach(kernel.handle);
  reader.rcuReadLock(); // the reader enters a read section …
  const views = reader.addressSpace(mm.id).segments(uaddr, 4 * PAGE_SIZE, { write: true });

  kernel.vfree(kaddr); // meanwhile the owner frees the area …
  mm.munmap(uaddr, 4 * PAGE_SIZE); // … and drops the last mapping: the frames' last references
  print('deferred', kernel.stats().deferredFrames); // 4: held back, not free
  views[0]?.fill(1); // still the same frames; no one else can have them yet

  reader.rcuReadUnlock(); // the section ends: the grace period is over
  print('deferred after', kernel.stats().deferredFrames); // 0
  print('free again', kernel.stats().freeFrames - freeBefore); // 4
  reader.detach(); // give the reader's thread slot back
  // #endregion example
  mm.destroy();
  kernel.checkInvariants();
}
