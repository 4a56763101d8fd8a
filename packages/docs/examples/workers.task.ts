/**
 * The task module of the worker-guide examples: compiled to JavaScript, loaded by every pool
 * thread. Each export is a `defineTask`; a run picks one with `name` (default: the default export).
 */
import { defineTask, type TaskHandler } from '@sabvm/workers/worker';

// #region task
/** Add `arg` to every byte of the first range, in place, through views of the frames. */
const addInPlace: TaskHandler<number> = defineTask<number, number>(({ ranges, arg }) => {
  let bytes = 0;
  for (const view of ranges[0]?.segments({ write: true }) ?? []) {
    for (let i = 0; i < view.length; i++) view[i] = ((view[i] ?? 0) + arg) & 0xff;
    bytes += view.length;
  }
  return bytes;
});
export default addInPlace;

/** Sum the bytes of the first range; a read-only mapping is enough. */
export const sum: TaskHandler<number> = defineTask(({ ranges }) => {
  let total = 0;
  for (const view of ranges[0]?.segments() ?? []) for (const byte of view) total += byte;
  return total;
});

/** Try to write through a read-only mapping: faults, and the caller gets the SegmentationFault. */
export const scribble: TaskHandler<never> = defineTask<unknown, never>(({ mm, ranges }) => {
  mm.write(ranges[0]?.uaddr ?? 0, new Uint8Array([1]));
  throw new Error('the write did not fault');
});
// #endregion task
