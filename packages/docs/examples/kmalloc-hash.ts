/**
 * A small shared structure built from kmalloc'd nodes: a chained hash table whose buckets and nodes
 * link to one another by kaddr (an Int32 each: kmalloc addresses fit one up to 2 GiB of memory),
 * built on the main thread, read by two worker threads at once, then shrunk by a worker that frees
 * nodes the main thread allocated.
 */
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { Kernel } from '@sabvm/core';
import { consolePrint, type Print } from './print.js';

/** Node layout, in Int32 words: key, value, next node's kaddr (0 ends a chain), padding. */
export const NODE_BYTES = 16;
/** Buckets of the table. */
export const BUCKETS = 256;
/** Keys inserted: 0 … KEYS - 1. */
export const KEYS = 2000;

/** The table's value for a key. */
export const valueOf = (key: number): number => (key * 7) % 1000;

/** Run the example. */
export async function kmallocHashTour(print: Print = consolePrint): Promise<void> {
  const kernel = Kernel.boot({ memoryBytes: 16 * 2 ** 20 });
  const boot = kernel.stats();
  // #region build
  // buckets: one Int32 kaddr each, zeroed (0 = empty chain)
  const table = kernel.kcalloc(BUCKETS, 4)!;
  const buckets = kernel.view(table, BUCKETS * 4, Int32Array);
  for (let key = 0; key < KEYS; key++) {
    const node = kernel.kmalloc(NODE_BYTES)!;
    const b = key % BUCKETS;
    kernel.view(node, NODE_BYTES, Int32Array).set([key, valueOf(key), buckets[b]!, 0]);
    buckets[b] = node; // push on the chain
  }
  // #endregion build
  // #region read
  // two readers at once: each looks up half of the keys by walking the chains
  const readers = [0, 1].map(
    (half) =>
      new Worker(new URL('./kmalloc-hash.worker.js', import.meta.url), {
        workerData: {
          handle: kernel.handle,
          table,
          buckets: BUCKETS,
          from: half * (KEYS / 2),
          to: (half + 1) * (KEYS / 2),
          remove: false,
        },
      }),
  );
  const sums = await Promise.all(
    readers.map(async (w) => ((await once(w, 'message')) as [number])[0]),
  );
  print('sum of values read by the workers', sums[0]! + sums[1]!);
  // #endregion read
  // #region free
  // a third thread removes the odd keys: it frees nodes the main thread allocated
  const remover = new Worker(new URL('./kmalloc-hash.worker.js', import.meta.url), {
    workerData: { handle: kernel.handle, table, buckets: BUCKETS, from: 0, to: KEYS, remove: true },
  });
  print('removed by the worker', ((await once(remover, 'message')) as [number])[0]);
  let left = 0;
  for (let b = 0; b < BUCKETS; b++) {
    for (let node = buckets[b]!; node !== 0;) {
      const next = kernel.view(node, NODE_BYTES, Int32Array)[2]!;
      kernel.kfree(node);
      left++;
      node = next;
    }
  }
  kernel.kfree(table);
  print('left for the main thread to free', left);
  print('all frames back', kernel.stats().freeFrames === boot.freeFrames);
  // #endregion free
  await Promise.all([...readers, remover].map((w) => w.terminate()));
  kernel.checkInvariants();
}
