/**
 * The sabvm side of the `workloads` suite: tasks that see their data through one typed view of
 * their mapping (`range.view(Float32Array)`).
 *
 * @module
 */
import { defineTask, type TaskHandler } from '@sabvm/workers/worker';
import { lookups, normalizeSlice, sliceStats } from './workloads-protocol.js';

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
