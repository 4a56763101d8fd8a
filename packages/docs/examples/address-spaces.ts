/**
 * Address spaces and VMAs: `mmap` reserves an empty range, a partial `munmap` splits a VMA as
 * Linux does, `mprotect` changes protections, and `maps()` prints `/proc/<pid>/maps`.
 */
import {
  EINVAL,
  EPERM,
  Kernel,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '@sabvm/core';
import { consolePrint, type Print } from './print.js';

/** Run the example. */
export function addressSpaceTour(print: Print = consolePrint): void {
  // #region example
  const kernel = Kernel.boot({ memoryBytes: 16 * 2 ** 20 });
  const mm = kernel.createAddressSpace(); // a process's mm_struct; null when none is left
  if (mm === null) throw new Error('no address space left');
  print('same mm from its id', kernel.addressSpace(mm.id).id === mm.id); // true, from any thread

  const rw = PROT_READ | PROT_WRITE;
  const start = mm.mmap(0, 8 * PAGE_SIZE, rw, MAP_SHARED); // addr 0: the kernel picks a free range
  const vma = mm.findVma(start + 5 * PAGE_SIZE); // the VMA containing that address
  print('vma', [vma?.start === start, vma?.end === start + 8 * PAGE_SIZE]); // [true, true]

  // Unmap the middle: the Vma keeps the lower part, a new VMA takes the upper part.
  print('munmap middle', mm.munmap(start + 2 * PAGE_SIZE, 2 * PAGE_SIZE)); // 0
  print('lower part', vma?.end === start + 2 * PAGE_SIZE); // true: the getters read the new bounds
  print('vmas', mm.vmas().length); // 2
  print('mprotect', mm.mprotect(start, PAGE_SIZE, PROT_READ)); // 0, and one more split: 3 VMAs
  print('maps', mm.maps()); // one /proc/<pid>/maps line per VMA

  print('MAP_PRIVATE', mm.mmap(0, PAGE_SIZE, rw, MAP_PRIVATE) === -EINVAL); // only MAP_SHARED
  print('MAP_FIXED at 0', mm.mmap(0, PAGE_SIZE, rw, MAP_SHARED | MAP_FIXED) === -EPERM); // page 0 never
  print('munmap length 0', mm.munmap(start, 0) === -EINVAL); // as Linux

  mm.destroy(); // exit_mmap: every VMA, PTE and page-table frame released
  print('after destroy', mm.mmap(0, PAGE_SIZE, rw, MAP_SHARED) === -EINVAL); // a dead handle
  // #endregion example
}
