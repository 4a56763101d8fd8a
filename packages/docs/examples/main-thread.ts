/**
 * Getting started, part two: fill an area and check it from the main thread through one typed
 * view of its frames (`kernel.view`), zero-copy, while a pool task works on the same frames.
 */
import { Kernel } from '@sabvm/core';
import { bindTasks, SabvmPool } from '@sabvm/workers';
import type * as viewTasks from './views.task.js';

/** Run the example; returns what the task reported and how many elements the check found wrong. */
export async function mainThreadView(): Promise<{ scaled: number; wrong: number }> {
  // #region example
  const kernel = Kernel.boot({ memoryBytes: 64 * 2 ** 20 });
  const size = 4 * 2 ** 20; // 1 Mi floats
  const kaddr = kernel.vmallocUser(size, { contiguous: true }); // one physical run, or null
  if (kaddr === null) throw new Error('no contiguous run of 4 MiB free');

  // The main thread's own view of the area: one Float32Array over its frames, no copy.
  const data = kernel.view(kaddr, size, Float32Array);
  for (let i = 0; i < data.length; i++) data[i] = i; // fill

  const pool = new SabvmPool({ kernel, filename: new URL('./views.task.js', import.meta.url) });
  const tasks = bindTasks<typeof viewTasks>(pool);
  const scaled = await tasks.scale({ areas: [kaddr], arg: 0.5 }); // maps the area, scales in place

  let wrong = 0; // check: the same view sees the task's stores
  for (let i = 0; i < data.length; i++) if (data[i] !== i * 0.5) wrong++;
  await pool.close();
  kernel.vfree(kaddr); // from here on `data` must not be used: a use-after-free, as in C
  // #endregion example
  kernel.checkInvariants();
  return { scaled, wrong };
}
