/**
 * The producer of the ring stream example: attach, open the ring by its kaddr, take room for 64
 * records at a time with `batchReserveBulkWait` and write each in place.
 */
import { workerData } from 'node:worker_threads';
import { Kernel, ringbufBulkStride, type KernelHandle } from '@sabvm/core';

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
const stride = ringbufBulkStride(32); // 32: side by side, one ring record (a run) for them all
for (let i = 0; i < count;) {
  // room for up to 64 records of 32 bytes in the ring's batch for this thread, one call for all
  // (published a chunk at a time: when the chunk is full, and when this job ends); it waits (up
  // to 10 s) only when the consumer is behind and the ring has no room
  const n = Math.min(64, count - i);
  let at = rb.batchReserveBulkWait(32, n, 0, 10_000);
  if (at < 0) throw new Error(`batchReserveBulkWait: ${at}`); // -EAGAIN: no room in 10 s
  for (const end = i + n; i < end; i++, at += stride) {
    out.setUint32(at, i, true); // a sequence number
    out.setFloat64(at + 8, i, true); // and a value: written before the next call, nothing else to do
  }
}
kernel.detach(); // publishes the last chunk, too
// #endregion worker
