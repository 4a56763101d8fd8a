/**
 * The vmalloc family: sizes round up to pages, a guard page follows each area, only `vmallocUser`
 * areas may be mapped to user space, and a bad `vfree` changes nothing but a counter.
 */
import { Kernel, PAGE_SIZE, VM_USERMAP } from '@sabvm/core';
import { consolePrint, type Print } from './print.js';

/** Run the example. */
export function vmallocTour(print: Print = consolePrint): void {
  // #region example
  const kernel = Kernel.boot({ memoryBytes: 16 * 2 ** 20 });
  const freeAtBoot = kernel.stats().freeFrames;

  const buf = kernel.vmalloc(10_000); // sizes round up to pages; contents not guaranteed zero
  const user = kernel.vmallocUser(4 * PAGE_SIZE); // zeroed, and VM_USERMAP: remappable
  if (buf === null || user === null) throw new Error('out of memory');

  print('buf pages', kernel.findVmArea(buf)?.nrPages); // 3
  const area = kernel.findVmArea(user); // { addr, size, nrPages, flags }
  print('user pages', area?.nrPages); // 4
  print('user size', area?.size); // 20480: the size counts the guard page, as in Linux
  print('user remappable', ((area?.flags ?? 0) & VM_USERMAP) !== 0); // true
  print('buf remappable', ((kernel.findVmArea(buf)?.flags ?? 0) & VM_USERMAP) !== 0); // false
  print(
    'zeroed',
    kernel.readKernel(user, 4 * PAGE_SIZE).every((byte) => byte === 0),
  ); // true
  print('guard page pfn', kernel.vmallocToPfn(user + 4 * PAGE_SIZE)); // null: nothing behind it

  print(
    'bad sizes',
    [0, -1, 1.5, NaN, 2 ** 40].map((size) => kernel.vmalloc(size)),
  ); // all null
  kernel.vfree(user + PAGE_SIZE); // an interior pointer frees nothing …
  print('badFrees', kernel.stats().badFrees); // … but is counted: 1
  kernel.vfree(null); // a no-op, like kfree(NULL)

  print('vmallocinfo', kernel.vmallocinfo()); // one /proc/vmallocinfo line per live area
  kernel.vfree(buf);
  kernel.vfree(user);
  print('after vfree', kernel.findVmArea(user)); // null: the address is dead at once
  print('all frames back', kernel.stats().freeFrames === freeAtBoot); // true
  // #endregion example
}
