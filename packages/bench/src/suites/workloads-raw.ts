/**
 * The raw-SharedArrayBuffer side of the `workloads` suite: a plain Piscina worker that gets the
 * buffer and an element range in each task message, as a user writes it today.
 *
 * @module
 */
import { lookups, normalizeSlice, sliceStats } from './workloads-protocol.js';

/** A raw task: the buffer, the element range, and the program's numbers. */
export interface RawTask {
  readonly sab: SharedArrayBuffer;
  readonly start: number;
  readonly end: number;
  readonly mean?: number;
  readonly std?: number;
  readonly seed?: number;
}

const slice = (t: RawTask): Float32Array => new Float32Array(t.sab, t.start * 4, t.end - t.start);

export function stats(t: RawTask): [number, number] {
  return sliceStats(slice(t));
}

export function normalize(t: RawTask): number {
  normalizeSlice(slice(t), t.mean ?? 0, t.std ?? 1);
  return t.end - t.start;
}

export function lookup(t: RawTask): number {
  return lookups(slice(t), t.seed ?? 0);
}
