/**
 * A pool whose tasks report to the main thread through the pool's ring: each task writes progress
 * records with `reserve` + `submit`, the main thread reads them with `poll`, with no message per
 * record.
 */
import { SabvmPool } from '@sabvm/workers';
import { consolePrint, type Print } from './print.js';

/** Run the example. */
export async function workersRing(print: Print = consolePrint): Promise<void> {
  // #region example
  const pool = new SabvmPool({
    boot: { memoryBytes: 32 * 2 ** 20 },
    filename: new URL('./workers.task.js', import.meta.url),
    piscina: { maxThreads: 2 },
    ringBytes: 64 * 1024, // pool.ring: every task may write to it (poolRing() in the task)
  });
  const ring = pool.ring!;
  const steps = 10_000;
  const last = [0, 0, 0]; // the last step seen from each task
  const onRecord = (view: Uint8Array): void => {
    const [id, step] = new Uint32Array(view.buffer, view.byteOffset, 2);
    if (step !== last[id!]! + 1) throw new Error(`task ${id}: step ${step} out of order`);
    last[id!] = step!; // the view is valid only until this callback returns: copy what you keep
  };
  const finished = new AbortController();
  const tasks = Promise.all(
    [0, 1, 2].map((id) => pool.run({ name: 'progress', arg: { id, steps } })),
  ).finally(() => {
    finished.abort();
  });
  while (!finished.signal.aborted) await ring.poll(onRecord, { timeoutMs: 50 }); // no core spins
  ring.consume(onRecord); // what the tasks wrote after the last poll
  print('results', await tasks); // [10000, 10000, 10000]
  print('last steps', last); // [10000, 10000, 10000]: every record, once, in each task's order
  await pool.close(); // frees the ring too
  // #endregion example
}
