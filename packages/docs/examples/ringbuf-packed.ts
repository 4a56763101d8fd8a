/**
 * Small records of one size, packed: the worker puts up to 42 records of 24 bytes side by side in
 * one ring record, and the main thread steps through each ring record 24 bytes at a time. The
 * ring's 8-byte header, a third of a 24-byte record, is paid once per ring record.
 */
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { EAGAIN, Kernel } from '@sabvm/core';
import { consolePrint, type Print } from './print.js';

/** Run the example with `count` small records. */
export async function ringbufPacked(print: Print = consolePrint, count = 1_000_000): Promise<void> {
  // #region example
  const kernel = Kernel.boot({ memoryBytes: 16 * 2 ** 20 });
  const rb = kernel.ringbufCreate(2 ** 20)!;
  const worker = new Worker(new URL('./ringbuf-packed.worker.js', import.meta.url), {
    workerData: { handle: kernel.handle, ring: rb.kaddr, count },
  });
  const producer: { exited: boolean; error?: unknown } = { exited: false };
  worker.once('exit', () => {
    producer.exited = true;
  });
  worker.once('error', (error) => {
    producer.error = error; // what the worker threw, thrown below
  });
  const u32 = new Uint32Array(kernel.handle.buffer);
  const f64 = new Float64Array(kernel.handle.buffer);
  const i32 = new Int32Array(kernel.handle.buffer);
  const SIZE = 24; // the small record's size: the consumer knows it, the ring does not
  let received = 0;
  let sum = 0;
  let kinds = 0;
  while (received < count) {
    const ready = await rb.waitReadable({ timeoutMs: 1000 });
    if (producer.error !== undefined)
      throw new Error('the worker threw', { cause: producer.error });
    if (ready < 0) throw new Error(`waitReadable: ${ready}`);
    if (ready === 0 && producer.exited)
      throw new Error(`the worker exited after ${received} records`);
    let at: number;
    while ((at = rb.readRecord()) >= 0) {
      // one ring record: readLength / 24 small records, side by side
      for (const end = at + rb.readLength; at < end; at += SIZE, received++) {
        if (u32[at / 4] !== received) throw new Error('out of order');
        sum += f64[at / 8 + 1]!;
        kinds += i32[at / 4 + 4]!;
      }
    }
    if (at !== -EAGAIN) throw new Error(`readRecord: ${at}`);
  }
  print('received', received); // 1000000
  print('sum', sum); // 499999500000: every record once
  print('kinds', kinds); // 1500000: 0 + 1 + 2 + 3 for each four
  if (!producer.exited) await once(worker, 'exit');
  rb.free();
  // #endregion example
  kernel.checkInvariants();
}
