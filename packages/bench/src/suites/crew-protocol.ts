/**
 * The words a suite's main thread and its crew of worker threads share to run timed rounds (one
 * protocol module, imported by both sides, which never import each other).
 *
 * ```
 *  ctl: Int32Array over a SharedArrayBuffer (a suite may add words after ERROR)
 *  ┌────┬──────┬───────┬──────────┬──────┬──────┬─────┬──────┬───────┐
 *  │ GO │ STOP │ READY │ ARRIVED  │ DONE │ MODE │ OPS │ K    │ ERROR │
 *  └────┴──────┴───────┴──────────┴──────┴──────┴─────┴──────┴───────┘
 *  times: Float64Array, [start, end] per thread, ms since the epoch (timeOrigin + now)
 * ```
 * GO is a sequence word, written only by main: odd while main sets a round up (MODE, OPS, K,
 * ARRIVED and DONE zeroed, and the suite's own words), even once the round is published; main then
 * notifies. A worker reads MODE, OPS, K and STOP between two reads of the same even GO, so a
 * worker that wakes late (it sat out the last rounds) never mixes one round's words with the
 * next's. Workers: READY once at start; per round the first K of them add to ARRIVED (the start
 * barrier), work, and add to DONE; ERROR is the first failure's negative errno (or
 * {@link ERROR_THROWN} for a throw).
 *
 * @module
 */

/** Word indices of the control array. */
export const Ctl = {
  GO: 0,
  STOP: 1,
  READY: 2,
  ARRIVED: 3,
  DONE: 4,
  MODE: 5,
  OPS: 6,
  K: 7,
  ERROR: 8,
  WORDS: 9,
} as const;

/** ERROR value for an exception in a worker. */
export const ERROR_THROWN = -1000;
