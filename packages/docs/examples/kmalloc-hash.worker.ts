/**
 * The worker of the hash-table example: attach, then look keys up (summing their values), or
 * remove the odd keys (unlinking and freeing their nodes).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Kernel, type KernelHandle } from '@sabvm/core';

interface Job {
  readonly handle: KernelHandle;
  readonly table: number;
  readonly buckets: number;
  readonly from: number;
  readonly to: number;
  readonly remove: boolean;
}

// #region worker
const { handle, table, buckets, from, to, remove } = workerData as Job;
const kernel = Kernel.attach(handle);
const heads = kernel.view(table, buckets * 4, Int32Array);
const node = (kaddr: number): Int32Array => kernel.view(kaddr, 16, Int32Array);
let result = 0;
for (let key = from; key < to; key++) {
  if (remove && key % 2 === 0) continue;
  let prev = 0; // 0: the bucket head
  for (let at = heads[key % buckets]!; at !== 0; prev = at, at = node(at)[2]!) {
    const [k, value, next] = node(at);
    if (k !== key) continue;
    if (!remove) result += value!;
    else {
      if (prev === 0) heads[key % buckets] = next!;
      else node(prev)[2] = next!;
      kernel.kfree(at); // allocated by another thread: a remote free
      result++;
    }
    break;
  }
}
kernel.detach();
parentPort?.postMessage(result);
// #endregion worker
