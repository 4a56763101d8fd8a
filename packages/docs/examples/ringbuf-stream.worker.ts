/**
 * The producer of the ring stream example: attach, open the ring by its kaddr, output each record
 * with `RB_BATCH`.
 */
import { workerData } from 'node:worker_threads';
import { EAGAIN, Kernel, RB_BATCH, type KernelHandle } from '@sabvm/core';

interface Task {
  readonly handle: KernelHandle;
  readonly ring: number;
  readonly count: number;
}

// #region worker
const { handle, ring, count } = workerData as Task;
const kernel = Kernel.attach(handle);
const rb = kernel.ringbuf(ring)!;
const record = new Uint8Array(32);
const fields = new DataView(record.buffer);
for (let i = 0; i < count; i++) {
  fields.setUint32(0, i, true); // a sequence number
  fields.setFloat64(8, i, true); // and a value
  // RB_BATCH: the ring publishes this thread's records a chunk at a time (when the chunk is full,
  // and when this job ends); outputWait waits for room when the consumer is behind
  let rc = rb.output(record, RB_BATCH);
  if (rc === -EAGAIN) rc = rb.outputWait(record, RB_BATCH, 10_000);
  if (rc !== 0) throw new Error(`output: ${rc}`);
}
kernel.detach(); // publishes the last chunk, too
// #endregion worker
