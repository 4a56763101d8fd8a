/**
 * A stream of records from a worker thread to the main thread through a ring: the worker takes
 * room for 64 records of 32 bytes at a time with `batchReserveBulkWait` and writes each in place,
 * the main thread reads each in place with `pollAt`. No message per record, no ring written by
 * hand, no object and no copy per record.
 */
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { Kernel } from '@sabvm/core';
import { consolePrint, type Print } from './print.js';

/** Run the example with `count` records. */
export async function ringbufStream(print: Print = consolePrint, count = 1_000_000): Promise<void> {
  // #region example
  const kernel = Kernel.boot({ memoryBytes: 16 * 2 ** 20 });
  const rb = kernel.ringbufCreate(2 ** 20)!; // 1 MiB of records in flight at most
  const worker = new Worker(new URL('./ringbuf-stream.worker.js', import.meta.url), {
    workerData: { handle: kernel.handle, ring: rb.kaddr, count },
  });
  // one view of all of physical memory, made once: a record is read where it lies
  const memory = new DataView(kernel.handle.buffer);
  let received = 0;
  let sum = 0;
  let started = 0;
  const onRecord = (_mem: Uint8Array, offset: number): void => {
    if (memory.getUint32(offset, true) !== received) throw new Error('out of order');
    sum += memory.getFloat64(offset + 8, true); // valid until this returns: copy what you keep
    if (received++ === 0) started = performance.now(); // the clock starts at the first record
  };
  while (received < count) {
    const n = await rb.pollAt(onRecord, { timeoutMs: 1000 }); // records taken (0: none came)
    if (n < 0) throw new Error(`pollAt: ${n}`); // -EINVAL, -EBUSY: a mistake, not a wait
  }
  const ms = performance.now() - started;
  print('received', received); // 1000000
  print('sum', sum); // 499999500000: every record once
  print('rate', `${(count / ms / 1e3).toFixed(1)} M records/s`); // depends on the machine
  // let the worker finish: its detach publishes its last records and then leaves the kernel (a
  // worker terminated in the middle of a kernel call leaves its slot for a recovery to reap)
  await once(worker, 'exit');
  rb.free();
  // #endregion example
  kernel.checkInvariants();
}
