/**
 * The producer of the ring stream example: attach, open the ring by its kaddr, write each record in
 * place where `batchReserve` says.
 */
import { workerData } from 'node:worker_threads';
import { EAGAIN, Kernel, type KernelHandle } from '@sabvm/core';

interface Task {
  readonly handle: KernelHandle;
  readonly ring: number;
  readonly count: number;
}

// #region worker
const { handle, ring, count } = workerData as Task;
const kernel = Kernel.attach(handle);
const rb = kernel.ringbuf(ring)!;
// one view of this handle's batch buffer, made once: records are written where they will be sent
const out = new DataView(rb.batchBuffer);
for (let i = 0; i < count; i++) {
  // room for a 32-byte record in the ring's batch for this thread (published a chunk at a time:
  // when the chunk is full, and when this job ends); batchReserveWait waits for room when the
  // consumer is behind
  let at = rb.batchReserve(32);
  if (at === -EAGAIN) at = rb.batchReserveWait(32, 0, 10_000);
  if (at < 0) throw new Error(`batchReserve: ${at}`);
  out.setUint32(at, i, true); // a sequence number
  out.setFloat64(at + 8, i, true); // and a value: written before the next call, nothing else to do
}
kernel.detach(); // publishes the last chunk, too
// #endregion worker
