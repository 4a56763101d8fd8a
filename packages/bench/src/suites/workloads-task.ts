/**
 * The sabvm side of the `workloads` suite: tasks that see their data through one typed view of
 * their mapping (`range.view(Float32Array)`).
 *
 * @module
 */
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
 * Send `count` records to the main thread through the ring, each written in place where
 * `batchReserveWait` says in the ring handle's batch buffer (the ring publishes them a chunk at a
 * time, as `RB_BATCH`; the pool publishes the last chunk when the task ends), waiting for room when
 * it is full.
 */
export const records: TaskHandler<number> = defineTask<RecordsTask, number>(({ arg }) => {
  const ring = openRing(arg.ring ?? -1);
  const i32 = new Int32Array(ring.batchBuffer);
  const f64 = new Float64Array(ring.batchBuffer);
  for (let seq = 0; seq < arg.count; seq++) {
    const at = ring.batchReserveWait(RECORD_BYTES, 0, 30_000); // 8-byte aligned
    if (at < 0) throw new Error(`records: no room for ${seq} (${at})`);
    i32[at >> 2] = arg.id;
    i32[(at >> 2) + 1] = seq;
    f64[(at >> 3) + 1] = recordValue(arg.id, seq);
  }
  return arg.count;
});
