/**
 * Process model 1: a process per task. The thread that takes the task maps the named areas with
 * their protections into its address space, runs the task, and always unmaps them.
 */
import { Kernel, PROT_READ, SegmentationFault } from '@sabvm/core';
import { SabvmPool } from '@sabvm/workers';
import { consolePrint, type Print } from './print.js';

/** Run the example. */
export async function processPerTask(print: Print = consolePrint): Promise<void> {
  // #region example
  const kernel = Kernel.boot({ memoryBytes: 64 * 2 ** 20 });
  const pool = new SabvmPool({ kernel, filename: new URL('./workers.task.js', import.meta.url) });
  const size = 4 * 2 ** 20;
  const image = kernel.vmallocUser(size); // zeroed, remappable
  if (image === null) throw new Error('out of memory');

  // Read-write: the task adds 3 to every byte of the 4 MiB, in place.
  print('bytes', await pool.run({ areas: [image], arg: 3 })); // 4194304
  // Read-only: enough to sum; the message is the same few numbers as for 4 KiB.
  const readOnly = { kaddr: image, prot: PROT_READ };
  print('sum', await pool.run({ areas: [readOnly], name: 'sum' })); // 3 * 4194304
  // A write through a read-only mapping faults in the worker; the caller gets the fault.
  const fault: unknown = await pool
    .run({ areas: [readOnly], name: 'scribble' })
    .catch((e: unknown) => e);
  print('fault', fault instanceof SegmentationFault ? fault.code : fault); // 'SEGV_ACCERR'

  // Nothing outlives a task: each thread maps its task's areas into its own address space and
  // unmaps them when the task ends, whatever the outcome.
  const mappingsLeft = pool.threadAddressSpaceIds.map(
    (id) => kernel.addressSpace(id).vmas().length,
  );
  print('mappings left', mappingsLeft); // [0]: one thread, no mapping
  await pool.close();
  print('address spaces left', kernel.stats().addressSpaces); // 0: close takes the threads' too
  kernel.vfree(image);
  // #endregion example
  kernel.checkInvariants();
}
