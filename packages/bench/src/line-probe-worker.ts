/**
 * The far side of the machine's line probe (machine.ts): answers each odd value of word 0 with the
 * next even one until it reads -1. Word 1 says it is ready.
 *
 * @module
 */
import { workerData } from 'node:worker_threads';

const i32 = new Int32Array(workerData as SharedArrayBuffer);
Atomics.store(i32, 1, 1);
for (;;) {
  const v = Atomics.load(i32, 0);
  if (v === -1) break;
  if (v & 1) Atomics.store(i32, 0, v + 1);
}
