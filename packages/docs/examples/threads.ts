/**
 * Threads: a second thread attaches the same kernel with `kernel.handle`, finds the address space
 * by id, and writes through `segments`; the first thread sees the bytes with no copy.
 */
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { Kernel, MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE, remapPartial } from '@sabvm/core';
import { consolePrint, type Print } from './print.js';

/** Run the example. */
export async function threadsTour(print: Print = consolePrint): Promise<void> {
  const kernel = Kernel.boot({ memoryBytes: 16 * 2 ** 20 });
  const kaddr = kernel.vmallocUser(4 * PAGE_SIZE);
  const mm = kernel.createAddressSpace();
  if (kaddr === null || mm === null) throw new Error('out of memory');
  const uaddr = mm.mmap(0, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED);
  const vma = mm.findVma(uaddr);
  if (vma === null || remapPartial(vma, uaddr, kaddr, 4 * PAGE_SIZE) !== 0)
    throw new Error('remap');
  // #region example
  // The main thread: hand over the kernel (a SharedArrayBuffer) and a few numbers.
  const worker = new Worker(new URL('./threads.worker.js', import.meta.url), {
    workerData: { handle: kernel.handle, mmId: mm.id, uaddr, length: 4 * PAGE_SIZE },
  });
  const [written] = (await once(worker, 'message')) as [number];
  print('worker wrote', written); // 16384
  print('main thread sees', [...kernel.readKernel(kaddr + 3 * PAGE_SIZE, 4)]); // [42, 42, 42, 42]
  // #endregion example
  await worker.terminate();
  mm.destroy();
  kernel.vfree(kaddr);
  kernel.checkInvariants();
}
