/**
 * The producer of the packed ring example: many 24-byte records side by side in one ring record,
 * so that the ring's 8-byte header is paid once for all of them.
 */
import { workerData } from 'node:worker_threads';
import { Kernel, RB_BATCH_MAX_RECORD, type KernelHandle } from '@sabvm/core';

interface Task {
  readonly handle: KernelHandle;
  readonly ring: number;
  readonly count: number;
}

// #region worker
const { handle, ring, count } = workerData as Task;
const kernel = Kernel.attach(handle);
const rb = kernel.ringbuf(ring)!;
// typed views of this handle's batch buffer, made once
const u32 = new Uint32Array(rb.batchBuffer);
const f64 = new Float64Array(rb.batchBuffer);
const i32 = new Int32Array(rb.batchBuffer);
const SIZE = 24; // one small record: u32 number @0, f64 value @8, i32 kind @16
// a batched record holds at most RB_BATCH_MAX_RECORD bytes (1 KiB; with its header, at most an
// eighth of the ring's data area): 42 small records in one ring record
const PACK = Math.floor(RB_BATCH_MAX_RECORD / SIZE);
for (let i = 0; i < count;) {
  const n = Math.min(PACK, count - i);
  // one ring record of n * 24 bytes, one header for all (packs of one size in a row share one
  // header too, as a run); it waits only when the ring is full
  let at = rb.batchReserveWait(n * SIZE, 0, 10_000);
  if (at < 0) throw new Error(`batchReserveWait: ${at}`);
  for (const end = i + n; i < end; i++, at += SIZE) {
    u32[at / 4] = i; // records are 8-byte aligned and 24 is a multiple of 8:
    f64[at / 8 + 1] = i; // every small record's fields stay aligned
    i32[at / 4 + 4] = i & 3;
  }
}
kernel.detach(); // publishes the last chunk, too
// #endregion worker
