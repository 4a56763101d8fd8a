/**
 * kmalloc: small objects from size classes, their usable size, a view in place, a slab cache of
 * one's own, /proc/slabinfo, and every frame back once every object is freed.
 */
import { Kernel } from '@sabvm/core';
import { consolePrint, type Print } from './print.js';

/** Run the example. */
export function kmallocTour(print: Print = consolePrint): void {
  // #region example
  const kernel = Kernel.boot({ memoryBytes: 16 * 2 ** 20 });
  const boot = kernel.stats();

  const name = kernel.kmalloc(20)!; // from kmalloc-32: the smallest class that fits
  print('ksize', kernel.ksize(name)); // 32
  print('kaddr is negative', name < 0); // true: the kmalloc range ends at 0
  kernel.view(name, 20).set(new TextEncoder().encode('a small shared thing'));

  const point = kernel.kzalloc(16)!; // zeroed
  const xy = kernel.view(point, 16, Float64Array); // one view, in place, no copy
  xy[0] = 1.5;
  xy[1] = -2;

  const cache = kernel.kmemCacheCreate('point_cache', 24, { align: 8 })!;
  const p = cache.alloc()!;
  print('same cache from its id', kernel.kmemCache(cache.id)?.name); // 'point_cache'
  print(
    'slabinfo',
    kernel
      .slabinfo()
      .split('\n')
      .find((l) => l.startsWith('point_cache')),
  );

  kernel.kfree(name);
  kernel.kfree(name); // a double free: counted, nothing else happens
  print('badFrees', kernel.stats().badFrees); // 1
  print('destroy while in use', cache.destroy()); // -EBUSY
  cache.free(p);
  print('destroy', cache.destroy()); // 0
  kernel.kfree(point);
  print('all frames back', kernel.stats().freeFrames === boot.freeFrames); // true
  // #endregion example
  kernel.checkInvariants();
}
