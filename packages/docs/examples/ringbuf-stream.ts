/**
 * A stream of records from a worker thread to the main thread through a ring: the worker takes
 * room for 64 records of 32 bytes at a time with `batchReserveBulkWait` and writes each in place,
 * the main thread reads each in place in its own loop of `readRecord`. No message per record, no
 * ring written by hand, no object and no copy per record.
 */
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { EAGAIN, Kernel } from '@sabvm/core';
import { consolePrint, type Print } from './print.js';

/** Run the example with `count` records. */
export async function ringbufStream(print: Print = consolePrint, count = 1_000_000): Promise<void> {
  // #region example
  const kernel = Kernel.boot({ memoryBytes: 16 * 2 ** 20 });
  const rb = kernel.ringbufCreate(2 ** 20)!; // 1 MiB of records in flight at most
  const worker = new Worker(new URL('./ringbuf-stream.worker.js', import.meta.url), {
    workerData: { handle: kernel.handle, ring: rb.kaddr, count },
  });
  const producer: { exited: boolean; error?: unknown } = { exited: false };
  worker.once('exit', () => {
    producer.exited = true; // set when the worker thread ends
  });
  worker.once('error', (error) => {
    producer.error = error; // what the worker threw (without a listener, it would end the process)
  });
  // views of all of physical memory, made once: a record is read where it lies
  const u32 = new Uint32Array(kernel.handle.buffer);
  const f64 = new Float64Array(kernel.handle.buffer);
  let received = 0;
  let sum = 0;
  let started = 0;
  while (received < count) {
    const ready = await rb.waitReadable({ timeoutMs: 1000 }); // 1: records came; 0: none in 1 s
    if (producer.error !== undefined)
      throw new Error('the worker threw', { cause: producer.error }); // the worker threw
    if (ready < 0) throw new Error(`waitReadable: ${ready}`); // -EINVAL: a mistake, not a wait
    if (ready === 0 && producer.exited)
      throw new Error(`the worker exited after ${received} records`);
    if (received === 0) started = performance.now(); // the clock starts at the first record
    // every record ready now, each at its byte offset `at` (8-byte aligned), valid until the next
    // call: copy what you keep. The call that finds no more answers -EAGAIN and ends the read
    let at: number;
    for (; (at = rb.readRecord()) >= 0; received++) {
      if (u32[at / 4] !== received) throw new Error('out of order');
      sum += f64[at / 8 + 1]!;
    }
    if (at !== -EAGAIN) throw new Error(`readRecord: ${at}`); // -EBUSY: another consumer
  }
  const ms = performance.now() - started;
  print('received', received); // 1000000
  print('sum', sum); // 499999500000: every record once
  print('rate', `${(count / ms / 1e3).toFixed(1)} M records/s`); // depends on the machine
  // let the worker finish: its detach publishes its last records and then leaves the kernel (a
  // worker terminated in the middle of a kernel call leaves its slot for a recovery to reap)
  if (!producer.exited) await once(worker, 'exit');
  rb.free();
  // #endregion example
  kernel.checkInvariants();
}
