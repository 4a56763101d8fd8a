/**
 * Order statistics for benchmark figures: medians with their min–max spread.
 *
 * A shared machine makes means lie (one descheduled rep drags them); the median of several reps,
 * shown next to the fastest and slowest rep, says both what is typical and how noisy it was.
 *
 * @module
 */

/** A set of numbers summarised by its order statistics. */
export interface Spread {
  /** The middle value (mean of the two middle values for an even count). */
  readonly median: number;
  /** The smallest value. */
  readonly min: number;
  /** The largest value. */
  readonly max: number;
  /** The arithmetic mean, for reference; prefer the median. */
  readonly mean: number;
  /** How many values were summarised. */
  readonly n: number;
}

/**
 * The median of `values` (which it does not modify). Throws `RangeError` for an empty list.
 * Context: any thread; pure.
 */
export function median(values: readonly number[]): number {
  if (values.length === 0) {
    throw new RangeError('median of no values');
  }
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >>> 1;
  const hi = sorted[mid] ?? Number.NaN;
  if (sorted.length % 2 === 1) {
    return hi;
  }
  return ((sorted[mid - 1] ?? Number.NaN) + hi) / 2;
}

/**
 * Summarise `values` as median, min, max, mean and count. Throws `RangeError` for an empty list.
 * Context: any thread; pure.
 */
export function spread(values: readonly number[]): Spread {
  if (values.length === 0) {
    throw new RangeError('spread of no values');
  }
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  let sum = 0;
  for (const v of values) {
    min = Math.min(min, v);
    max = Math.max(max, v);
    sum += v;
  }
  return { median: median(values), min, max, mean: sum / values.length, n: values.length };
}

/**
 * `values` rotated left by `by` places (`rotate([a, b, c], 1)` is `[b, c, a]`): the order of
 * the cases in rep `by`, so that every case takes every position in turn.
 * Context: any thread; pure.
 */
export function rotate<T>(values: readonly T[], by: number): T[] {
  if (values.length === 0) {
    return [];
  }
  const k = ((by % values.length) + values.length) % values.length;
  return [...values.slice(k), ...values.slice(0, k)];
}
