/**
 * Plain Piscina tasks of the `handoff` suite (the baselines): each touches every page of the
 * buffer it got and returns the number of pages touched.
 *
 * @module
 */
import { move, workerData } from 'piscina';
import { touchPages, type HandoffWorkerData, type OffsetTask } from './handoff-protocol.js';

const shared = new Uint8Array((workerData as HandoffWorkerData).shared);

/** Structured clone: the task is a copy of the caller's bytes. */
export function touchClone(buf: ArrayBuffer): number {
  return touchPages(new Uint8Array(buf));
}

/** `Piscina.move`: the buffer is transferred here and transferred back when done. */
export function touchTransfer(buf: ArrayBuffer): unknown {
  touchPages(new Uint8Array(buf));
  return move(buf);
}

/** A SharedArrayBuffer made for this task. */
export function touchShared(sab: SharedArrayBuffer): number {
  return touchPages(new Uint8Array(sab));
}

/** The lower bound: only an offset and a length into the buffer shared at start. */
export function touchOffset(task: OffsetTask): number {
  return touchPages(shared.subarray(task.offset, task.offset + task.length));
}
