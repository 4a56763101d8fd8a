/**
 * The Piscina task of the getting-started example: a user process that upper-cases text in place.
 */
import { workerData } from 'node:worker_threads';
import { Kernel, type KernelHandle } from '@sabvm/core';

// #region worker
const kernel = Kernel.attach(workerData as KernelHandle); // once per thread, at start

/** Upper-case the ASCII letters of `[uaddr, uaddr + length)` in the task's address space. */
export default function upperCase(task: { mmId: number; uaddr: number; length: number }): number {
  const mm = kernel.addressSpace(task.mmId);
  for (const view of mm.segments(task.uaddr, task.length, { write: true })) {
    // `view` is a Uint8Array straight over the frames: no copy in, no copy out.
    for (let i = 0; i < view.length; i++) {
      const byte = view[i] ?? 0;
      if (byte >= 0x61 && byte <= 0x7a) view[i] = byte - 0x20;
    }
  }
  return task.length;
}
// #endregion worker
