/**
 * The task module of the worker-guide examples: compiled to JavaScript, loaded by every pool
 * thread. Each export is a `defineTask`; a run picks one with `name` (default: the default export).
 */
import { defineTask, poolRing, type TaskHandler } from '@sabvm/workers/worker';

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

// #region ring
/** Report progress on the pool's ring: one 8-byte record (task id, step) per step, in place. */
export const progress: TaskHandler<number> = defineTask<{ id: number; steps: number }, number>(
  ({ arg }) => {
    const ring = poolRing(); // this thread's producer handle on `pool.ring`
    for (let step = 1; step <= arg.steps; step++) {
      const rec = ring.reserveWait(8, 5000); // waits for room while the ring is full
      if (rec === null) throw new Error('the ring stayed full for 5 s');
      const words = new Uint32Array(rec.data.buffer, rec.data.byteOffset, 2); // 8-aligned
      words[0] = arg.id;
      words[1] = step;
      rec.submit(); // the main thread may now see it
    }
    return arg.steps;
  },
);
// #endregion ring
