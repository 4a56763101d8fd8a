/**
 * Typed views and contiguity: a contiguous area seen as one Float32Array in a task, a scattered
 * one worked run by run, the fragmentation view, and the read-only check.
 */
import { Kernel, PAGE_SIZE, PROT_READ, SegmentationFault } from '@sabvm/core';
import { bindTasks, SabvmPool } from '@sabvm/workers';
import type * as viewTasks from './views.task.js';
import { consolePrint, type Print } from './print.js';

/** Run the example. */
export async function viewsTour(print: Print = consolePrint): Promise<void> {
  // #region example
  const kernel = Kernel.boot({ memoryBytes: 64 * 2 ** 20 });
  const filename = new URL('./views.task.js', import.meta.url);
  const pool = new SabvmPool({ kernel, filename });

  // One physically contiguous run (alloc_contig_pages), or null: one typed array spans it.
  const tensor = kernel.vmallocUser(4 * 2 ** 20, { contiguous: true });
  if (tensor === null) throw new Error('no contiguous run of 4 MiB free');
  // Typed tasks: names, arguments and results come from the task module's own types.
  const tasks = bindTasks<typeof viewTasks>(pool); // tasks.scal(…) or arg: 'two' would not compile
  print('elements scaled', await tasks.scale({ areas: [tensor], arg: 2 })); // 1048576

  // An area built from scattered frames: view() says how to get one run; segments({ type }) works.
  const hold = Array.from({ length: 8 }, () => kernel.vmalloc(PAGE_SIZE));
  for (const page of hold.filter((_, i) => i % 2 === 0)) kernel.vfree(page); // holes of 1 page
  const scattered = kernel.vmallocUser(4 * PAGE_SIZE); // lands in the holes
  if (scattered === null) throw new Error('out of memory');
  const refused = await pool
    .run({ areas: [scattered], name: 'scale', arg: 2 })
    .catch((e: unknown) => (e as Error).message);
  print('view of a scattered area', refused); // '… 4 physically separate runs … { contiguous: true } …'
  print('sum run by run', await pool.run({ areas: [scattered], name: 'sumRuns' })); // 0

  // Free memory as a buddy allocator would count it, per order (blocks of 2^0 … 2^10 frames).
  print('buddyinfo', kernel.buddyinfo()); // 'Node 0, zone   Normal      2      0 …'

  // A read-only mapping's views accept plain stores. readOnlyCheck finds them after the task.
  const checked = new SabvmPool({ kernel, filename, readOnlyCheck: true });
  const table = { kaddr: tensor, prot: PROT_READ };
  const caught = await checked
    .run({ areas: [table], name: 'sneakyWrite' })
    .catch((e: unknown) => e);
  print('caught', caught instanceof SegmentationFault ? caught.code : caught); // 'SEGV_ACCERR'

  await checked.close();
  await pool.close();
  for (const kaddr of [tensor, scattered, ...hold.filter((_, i) => i % 2 === 1)])
    kernel.vfree(kaddr);
  // #endregion example
  kernel.checkInvariants();
}
