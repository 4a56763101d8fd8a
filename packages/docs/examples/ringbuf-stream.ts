/**
 * A stream of records from a worker thread to the main thread through a ring: the worker outputs
 * each 32-byte record with `RB_BATCH`, the main thread polls and reads each record in place. No
 * message per record, no ring written by hand, no batching in the user's code.
 */
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
  let received = 0;
  let sum = 0;
  const onRecord = (view: Uint8Array): void => {
    const record = new DataView(view.buffer, view.byteOffset, view.length);
    if (record.getUint32(0, true) !== received) throw new Error('out of order');
    sum += record.getFloat64(8, true); // read in place: the view is valid until this returns
    received++;
  };
  const started = performance.now();
  while (received < count) await rb.poll(onRecord, { timeoutMs: 1000 });
  const ms = performance.now() - started;
  print('received', received); // 1000000
  print('sum', sum); // 499999500000: every record once
  print('rate', `${(count / ms / 1000).toFixed(1)} M records/s`); // e.g. 20 M records/s
  await worker.terminate();
  rb.free();
  // #endregion example
  kernel.checkInvariants();
}
