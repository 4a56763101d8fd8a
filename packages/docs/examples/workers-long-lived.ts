/**
 * Process model 2: a long-lived process. Its address space outlives tasks; several tasks, on any
 * thread, use it in turn, and its mappings change between them.
 */
import { PROT_READ } from '@sabvm/core';
import { SabvmPool } from '@sabvm/workers';
import { consolePrint, type Print } from './print.js';

/** Run the example. */
export async function longLivedProcess(print: Print = consolePrint): Promise<void> {
  // #region example
  const pool = new SabvmPool({
    boot: { memoryBytes: 64 * 2 ** 20 }, // or `kernel` to share one you booted
    filename: new URL('./workers.task.js', import.meta.url),
  });
  const { kernel } = pool;
  const data = kernel.vmallocUser(2 ** 20);
  const table = kernel.vmallocUser(4096);
  if (data === null || table === null) throw new Error('out of memory');

  const proc = pool.createProcess(); // one address space, kept between tasks
  const a = proc.map(data); // mmap + remapPartial → { uaddr, length, prot, kaddr }
  await proc.run({ mappings: [a], arg: 1 }); // task 1 adds 1 …
  await proc.run({ mappings: [a], arg: 1 }); // … task 2, maybe on another thread, adds 1 more
  const b = proc.map({ kaddr: table, prot: PROT_READ }); // mappings change between tasks
  print('maps', proc.maps()); // two /proc/<pid>/maps lines
  print('sum', await proc.run({ mappings: [a], name: 'sum' })); // 2 * 2 ** 20
  proc.unmap(b);
  print('mappings', proc.mappings.length); // 1

  await proc.destroy(); // waits for its tasks, then exit_mmap
  await pool.close();
  // #endregion example
  kernel.vfree(data);
  kernel.vfree(table);
  kernel.checkInvariants();
}
