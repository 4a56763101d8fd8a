/**
 * The worker of the threads example: attach, find the address space by id, write in place.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Kernel, type KernelHandle } from '@sabvm/core';

interface Task {
  readonly handle: KernelHandle;
  readonly mmId: number;
  readonly uaddr: number;
  readonly length: number;
}

// #region worker
// The worker thread: same physical memory, same page tables, its own small handles.
const { handle, mmId, uaddr, length } = workerData as Task;
const kernel = Kernel.attach(handle);
const mm = kernel.addressSpace(mmId);
let written = 0;
for (const view of mm.segments(uaddr, length, { write: true })) {
  view.fill(42); // straight into the frames
  written += view.length;
}
parentPort?.postMessage(written);
// #endregion worker
