/**
 * The sabvm side of the `workloads` suite: tasks that see their data through one typed view of
 * their mapping (`range.view(Float32Array)`).
 *
 * @module
 */
import { RB_BATCH } from '@sabvm/core';
import { defineTask, openRing, type TaskHandler } from '@sabvm/workers/worker';
import {
  lookups,
  normalizeSlice,
  RECORD_BYTES,
  recordValue,
  sliceStats,
  type RecordsTask,
} from './workloads-protocol.js';

export const stats: TaskHandler<[number, number]> = defineTask(({ ranges }) =>
  sliceStats(ranges[0]!.view(Float32Array)),
);

export const normalize: TaskHandler<number> = defineTask<{ mean: number; std: number }, number>(
  ({ ranges, arg }) => {
    const v = ranges[0]!.view(Float32Array, { write: true });
    normalizeSlice(v, arg.mean, arg.std);
    return v.length;
  },
);

export const lookup: TaskHandler<number> = defineTask<number, number>(({ ranges, arg }) =>
  lookups(ranges[0]!.view(Float32Array), arg),
);

export const touch: TaskHandler<number> = defineTask(({ ranges }) => ranges.length);

/**
 * Send `count` records to the main thread through the ring with `RB_BATCH` (the ring publishes
 * them a chunk at a time; the pool publishes the last chunk when the task ends), waiting for room
 * when it is full.
 */
export const records: TaskHandler<number> = defineTask<RecordsTask, number>(({ arg }) => {
  const ring = openRing(arg.ring ?? -1);
  const bytes = new Uint8Array(RECORD_BYTES);
  const i32 = new Int32Array(bytes.buffer);
  const f64 = new Float64Array(bytes.buffer);
  i32[0] = arg.id;
  for (let seq = 0; seq < arg.count; seq++) {
    i32[1] = seq;
    f64[1] = recordValue(arg.id, seq);
    if (ring.outputWait(bytes, RB_BATCH, 30_000) !== 0)
      throw new Error(`records: no room for ${seq}`);
  }
  return arg.count;
});
