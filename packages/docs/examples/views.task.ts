/**
 * The task module of the views page: typed views of a task's mappings.
 */
import { defineTask, type TaskHandler } from '@sabvm/workers/worker';

// #region task
// #region scale
/** Scale every Float32 of the first range by `arg`, in place, through one typed view. */
export const scale: TaskHandler<number> = defineTask<number, number>(({ ranges, arg }) => {
  const v = ranges[0]!.view(Float32Array, { write: true }); // one Float32Array over the frames
  for (let i = 0; i < v.length; i++) v[i]! *= arg;
  return v.length;
});
// #endregion scale

/** Sum the Float32s of the first range run by run: works on any area, contiguous or not. */
export const sumRuns: TaskHandler<number> = defineTask(({ ranges }) => {
  let total = 0;
  for (const run of ranges[0]!.segments({ type: Float32Array })) for (const x of run) total += x;
  return total;
});

/** Write through a view of a read-only mapping: JavaScript lets the store through. */
export const sneakyWrite: TaskHandler<number> = defineTask(({ ranges }) => {
  const [bytes] = ranges[0]!.segments(); // asked for reading
  bytes![0] = 0xff; // a plain store: nothing stops it
  return 1;
});
// #endregion task
