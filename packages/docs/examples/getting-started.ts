/**
 * Getting started: map a vmalloc buffer into a Piscina task. The task message carries three
 * numbers; the worker reads and writes the very same frames through its own page table.
 */
import { Kernel, MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE, remapPartial } from '@sabvm/core';
import { Piscina } from 'piscina';

/** Run the example; returns the text the main thread reads back after the task. */
export async function gettingStarted(): Promise<string> {
  // #region example
  const kernel = Kernel.boot({ memoryBytes: 64 * 2 ** 20 }); // one SharedArrayBuffer
  const size = 16 * PAGE_SIZE;
  const kaddr = kernel.vmallocUser(size); // zeroed; may be mapped to user space
  if (kaddr === null) throw new Error('out of memory');
  kernel.writeKernel(kaddr, new TextEncoder().encode('hello, frames'));

  const mm = kernel.createAddressSpace(); // the task's address space
  if (mm === null) throw new Error('no address space left');
  const uaddr = mm.mmap(0, size, PROT_READ | PROT_WRITE, MAP_SHARED); // empty VMA
  const vma = mm.findVma(uaddr);
  if (vma === null) throw new Error('mmap failed');
  if (remapPartial(vma, uaddr, kaddr, size) !== 0) throw new Error('remap failed'); // PTEs

  const filename = new URL('./getting-started.worker.js', import.meta.url).href;
  const pool = new Piscina({ filename, workerData: kernel.handle }); // attach once
  await pool.run({ mmId: mm.id, uaddr, length: 13 }); // 3 numbers, not the bytes
  await pool.destroy();
  const text = new TextDecoder().decode(kernel.readKernel(kaddr, 13)); // HELLO, FRAMES
  // #endregion example
  mm.destroy();
  kernel.vfree(kaddr);
  return text;
}
