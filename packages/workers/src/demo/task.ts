/**
 * The demo's task module: what the pool's threads run. Compiled to `dist/demo/task.js`.
 *
 * @module
 */
import { threadId } from 'node:worker_threads';
import { defineTask, type TaskHandler } from '../worker.js';
import { checksumBytes, transformBytes } from './transform.js';

/** What {@link transform} reports. */
export interface TransformReport {
  readonly threadId: number;
  readonly mmId: number;
  readonly bytes: number;
  readonly segments: number;
}

/**
 * Transform every word of every mapped range in place, through zero-copy views of the frames.
 * Context: a pool thread.
 */
const transform: TaskHandler<TransformReport> = defineTask(({ mm, ranges }) => {
  let bytes = 0;
  let segments = 0;
  for (const range of ranges) {
    for (const view of range.segments({ write: true })) {
      transformBytes(view);
      bytes += view.length;
      segments++;
    }
  }
  return { threadId, mmId: mm.id, bytes, segments };
});
export default transform;

/**
 * Check the checksum of range 0 against `arg.expected` (read-only is enough for that), then try to
 * write to it: on a read-only mapping that write faults, and the `SegmentationFault` reaches the
 * caller. Throws `Error` on a checksum mismatch. Context: a pool thread.
 */
export const verifyThenWrite: TaskHandler<never> = defineTask<{ expected: number }, never>(
  ({ mm, ranges, arg }) => {
    const range = ranges[0];
    if (range === undefined) throw new Error('verifyThenWrite: no range mapped');
    let sum = 0;
    for (const view of range.segments()) sum = checksumBytes(view, sum);
    if (sum !== arg.expected) {
      throw new Error(`checksum 0x${sum.toString(16)} != expected 0x${arg.expected.toString(16)}`);
    }
    mm.write(range.uaddr + range.length / 2, new Uint8Array([0xff])); // faults: PROT_READ
    throw new Error('verifyThenWrite: the write to a read-only mapping did not fault');
  },
);

/** Checksum of every mapped range, read through zero-copy views. Context: a pool thread. */
export const checksum: TaskHandler<number> = defineTask(({ ranges }) => {
  let sum = 0;
  for (const range of ranges) for (const view of range.segments()) sum = checksumBytes(view, sum);
  return sum;
});

/** Read one byte of each range (the smallest possible task: it measures the hand-off). */
export const touch: TaskHandler<number> = defineTask(({ ranges }) => {
  let x = 0;
  for (const range of ranges) {
    const views = range.segments();
    x += (views[0]?.[0] ?? 0) + (views.at(-1)?.at(-1) ?? 0);
  }
  return x;
});

/**
 * The structured-clone baseline: a plain Piscina task that receives the bytes (a copy), transforms
 * them and sends them back (another copy). Context: a pool thread.
 */
export function transformClone(bytes: Uint8Array): Uint8Array {
  transformBytes(bytes);
  return bytes;
}

/** The structured-clone baseline of {@link touch}: the bytes go there and back. */
export function touchClone(bytes: Uint8Array): Uint8Array {
  return bytes;
}

/** An empty task: returns its number argument (what dispatch alone costs). */
export const ping: TaskHandler<number, number> = defineTask<number, number>(({ arg }) => arg);

/** The same, as a plain Piscina task (one message there and back). */
export function pingPlain(n: number): number {
  return n;
}
