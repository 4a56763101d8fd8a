/**
 * User access: `read`/`write` copy, `segments` gives zero-copy views; touching an unmapped page
 * or writing a read-only one throws `SegmentationFault`, as a CPU would fault.
 */
import {
  BusError,
  Kernel,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  remapPartial,
  SegmentationFault,
} from '@sabvm/core';
import { consolePrint, type Print } from './print.js';

function faultOf(access: () => unknown): string {
  try {
    access();
    return 'no fault';
  } catch (error) {
    if (error instanceof SegmentationFault || error instanceof BusError) return error.code;
    throw error;
  }
}

/** Run the example. */
export function userAccessTour(print: Print = consolePrint): void {
  const kernel = Kernel.boot({ memoryBytes: 16 * 2 ** 20 });
  const kaddr = kernel.vmallocUser(2 * PAGE_SIZE);
  const mm = kernel.createAddressSpace();
  if (kaddr === null || mm === null) throw new Error('out of memory');
  const uaddr = mm.mmap(0, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED);
  const vma = mm.findVma(uaddr);
  if (vma === null) throw new Error('mmap failed');
  // #region example
  remapPartial(vma, uaddr, kaddr, 2 * PAGE_SIZE); // the first 2 of the VMA's 4 pages get PTEs

  mm.write(uaddr + 10, new Uint8Array([1, 2, 3])); // copy_to_user
  print('kernel sees', [...kernel.readKernel(kaddr + 10, 3)]); // [1, 2, 3]: the same frames

  const views = mm.segments(uaddr, 2 * PAGE_SIZE, { write: true }); // views over the frames
  print(
    'view bytes',
    views.reduce((sum, view) => sum + view.length, 0),
  ); // 8192, in 1 or 2 views
  views[0]?.fill(7, 0, 4); // a plain store into physical memory …
  print('read back', [...mm.read(uaddr, 4)]); // … [7, 7, 7, 7]: no copy was involved

  // Page 2 of the VMA has no PTE: the VMA permits the read but nothing backs it, like SIGBUS.
  print(
    'no PTE',
    faultOf(() => mm.read(uaddr + 2 * PAGE_SIZE, 1)),
  ); // 'BUS_ADRERR'
  // Past the VMA there is no mapping at all: SIGSEGV with si_code SEGV_MAPERR.
  print(
    'no VMA',
    faultOf(() => mm.read(uaddr + 4 * PAGE_SIZE, 1)),
  ); // 'SEGV_MAPERR'
  mm.mprotect(uaddr, 4 * PAGE_SIZE, PROT_READ); // the PTEs stay, they grant less
  print(
    'read-only write',
    faultOf(() => {
      mm.write(uaddr, new Uint8Array(1));
    }),
  ); // 'SEGV_ACCERR'
  print(
    'read-only read',
    faultOf(() => mm.read(uaddr, 1)),
  ); // 'no fault'
  // #endregion example
  mm.destroy();
  kernel.vfree(kaddr);
}
