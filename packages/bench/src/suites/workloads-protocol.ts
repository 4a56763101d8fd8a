/**
 * What the `workloads` suite's tasks share: the names of their exports and the arithmetic both
 * the sabvm task and the raw-SharedArrayBuffer worker run, so the two sides do the same work.
 *
 * @module
 */

/** Exports of the task modules (sabvm and raw), by program. */
export const WORKLOAD_TASKS = {
  /** Tensor pass 1: sum and sum of squares of a slice. */
  stats: 'stats',
  /** Tensor pass 2: normalise a slice in place. */
  normalize: 'normalize',
  /** Table: `LOOKUPS` reads at pseudo-random indexes; their sum. */
  lookup: 'lookup',
  /** Nothing: a task round trip over its mappings (the read-only check's cost). */
  touch: 'touch',
} as const;

/** Reads per lookup task. */
export const LOOKUPS = 4096;

/** Sum and sum of squares of `v` (pass 1). */
export function sliceStats(v: Float32Array): [number, number] {
  let sum = 0;
  let sq = 0;
  for (const x of v) {
    sum += x;
    sq += x * x;
  }
  return [sum, sq];
}

/** `(x - mean) / std` in place (pass 2). */
export function normalizeSlice(v: Float32Array, mean: number, std: number): void {
  const inv = 1 / std;
  for (let i = 0; i < v.length; i++) v[i] = (v[i]! - mean) * inv;
}

/** The sum of `LOOKUPS` entries of `table` at indexes from `seed` (an LCG). */
export function lookups(table: Float32Array, seed: number): number {
  let s = seed >>> 0;
  let sum = 0;
  for (let i = 0; i < LOOKUPS; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    sum += table[s % table.length]!;
  }
  return sum;
}

/** The value of tensor element `i` before normalisation. */
export function tensorValue(i: number): number {
  return (i % 1000) * 0.001;
}
