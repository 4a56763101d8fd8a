/**
 * Every code example of the site runs here: the Markdown imports these files with `<<<`, so a
 * broken example fails this suite. Examples that start threads run from their compiled copy in
 * `dist/examples` (Node cannot run a `.ts` worker file).
 */
import { describe, expect, test } from 'vitest';
import { EAGAIN, EBUSY, EFAULT, EINVAL, ENOMEM, PAGE_SIZE, RINGBUF_HDR_SZ } from '@sabvm/core';
import { addressSpaceTour } from '../examples/address-spaces.js';
import { gracePeriodTour } from '../examples/grace-period.js';
import { kmallocTour } from '../examples/kmalloc.js';
import { lifetimesTour } from '../examples/lifetimes.js';
import { hugeEntriesTour, pageTablesTour } from '../examples/page-tables.js';
import type { Print } from '../examples/print.js';
import { checkTableTour } from '../examples/remap-partial.js';
import { ringbufTour } from '../examples/ringbuf.js';
import { userAccessTour } from '../examples/user-access.js';
import { vmallocTour } from '../examples/vmalloc.js';

function collector(): { print: Print; seen: Map<string, unknown> } {
  const seen = new Map<string, unknown>();
  return {
    seen,
    print: (label, value) => {
      expect(seen.has(label), `label "${label}" printed twice`).toBe(false);
      seen.set(label, value);
    },
  };
}

/** Import the compiled copy of an example, typed as its source. */
async function compiled<T>(name: string): Promise<T> {
  return (await import(new URL(`../dist/examples/${name}.js`, import.meta.url).href)) as T;
}

describe('the examples of the site', () => {
  test('the views tour: one typed view of a contiguous area, runs of a scattered one, the read-only check', async () => {
    const { viewsTour } = await compiled<typeof import('../examples/views.js')>('views');
    const { print, seen } = collector();
    await viewsTour(print);
    expect(seen.get('elements scaled')).toBe(2 ** 20);
    expect(String(seen.get('view of a scattered area'))).toMatch(
      /is 4 physically separate runs .*vmallocUser\(size, \{ contiguous: true \}\)/,
    );
    expect(seen.get('sum run by run')).toBe(0);
    expect(String(seen.get('buddyinfo'))).toMatch(/^Node 0, zone {3}Normal( +\d+){11} \n$/);
    expect(seen.get('caught')).toBe('SEGV_ACCERR');
  });

  test('getting started maps a buffer into a Piscina task that upper-cases it in place', async () => {
    const { gettingStarted } =
      await compiled<typeof import('../examples/getting-started.js')>('getting-started');
    expect(await gettingStarted()).toBe('HELLO, FRAMES');
  });

  test('getting started fills and checks an area from the main thread through kernel.view', async () => {
    const { mainThreadView } =
      await compiled<typeof import('../examples/main-thread.js')>('main-thread');
    expect(await mainThreadView()).toEqual({ scaled: 2 ** 20, wrong: 0 });
  });

  test('the vmalloc tour shows rounding, the guard page, VM_USERMAP, zeroing and bad frees', () => {
    const { print, seen } = collector();
    vmallocTour(print);
    expect(seen.get('buf pages')).toBe(Math.ceil(10_000 / PAGE_SIZE));
    expect(seen.get('user pages')).toBe(4);
    expect(seen.get('user size')).toBe(5 * PAGE_SIZE);
    expect(seen.get('user remappable')).toBe(true);
    expect(seen.get('buf remappable')).toBe(false);
    expect(seen.get('zeroed')).toBe(true);
    expect(seen.get('guard page pfn')).toBeNull();
    expect(seen.get('bad sizes')).toEqual([null, null, null, null, null]);
    expect(seen.get('badFrees')).toBe(1);
    expect(String(seen.get('vmallocinfo')).trim().split('\n')).toHaveLength(2);
    expect(seen.get('after vfree')).toBeNull();
    expect(seen.get('all frames back')).toBe(true);
  });

  test('the address-space tour splits VMAs and refuses what Linux refuses', () => {
    const { print, seen } = collector();
    addressSpaceTour(print);
    expect(seen.get('same mm from its id')).toBe(true);
    expect(seen.get('vma')).toEqual([true, true]);
    expect(seen.get('munmap middle')).toBe(0);
    expect(seen.get('lower part')).toBe(true);
    expect(seen.get('vmas')).toBe(2);
    expect(seen.get('mprotect')).toBe(0);
    expect(String(seen.get('maps')).trim().split('\n')).toHaveLength(3);
    for (const label of ['MAP_PRIVATE', 'MAP_FIXED at 0', 'munmap length 0', 'after destroy']) {
      expect(seen.get(label), label).toBe(true);
    }
  });

  test('the user-access tour shares frames with no copy and faults like a CPU', () => {
    const { print, seen } = collector();
    userAccessTour(print);
    expect(seen.get('kernel sees')).toEqual([1, 2, 3]);
    expect(seen.get('view bytes')).toBe(2 * PAGE_SIZE);
    expect(seen.get('read back')).toEqual([7, 7, 7, 7]);
    expect(seen.get('no PTE')).toBe('BUS_ADRERR');
    expect(seen.get('no VMA')).toBe('SEGV_MAPERR');
    expect(seen.get('read-only write')).toBe('SEGV_ACCERR');
    expect(seen.get('read-only read')).toBe('no fault');
  });

  test('the check-table tour returns each row of the contract', () => {
    const { print, seen } = collector();
    checkTableTour(print);
    expect(seen.get('1 stale vma')).toBe(-EINVAL);
    expect(seen.get('2 size 0')).toBe(-EINVAL);
    expect(seen.get('4 unaligned')).toBe(-EINVAL);
    expect(seen.get('5 no area')).toBe(-EINVAL);
    expect(seen.get('6 no VM_USERMAP')).toBe(-EINVAL);
    expect(seen.get('7 past the area')).toBe(-EINVAL);
    expect(seen.get('8 outside the vma')).toBe(-EFAULT);
    expect(seen.get('11 success')).toBe(0);
    expect(seen.get('9 PTE present')).toBe(-EBUSY);
    expect(seen.get('nothing left behind')).toBe(4);
    expect(seen.get('table frames taken')).toBe(1);
    expect(seen.get('10 no table frame')).toBe(-ENOMEM);
    expect(seen.get('unchanged')).toEqual([true, 0]);
  });

  test('the lifetimes tour keeps vfreed frames alive until the last mapping goes', () => {
    const { print, seen } = collector();
    lifetimesTour(print);
    expect(seen.get('refcount while mapped')).toBe(2);
    expect(seen.get('findVmArea')).toBeNull();
    expect(seen.get('user still reads')).toBe('still here');
    expect(seen.get('refcount after vfree')).toBe(1);
    expect(seen.get('frames in use')).toBe(4);
    expect(seen.get('frames in use after munmap')).toBe(2);
    expect(seen.get('all back')).toBe(true);
  });

  test('the page-table tour finds the same frame behind the user PTE and the kernel mapping', () => {
    const { print, seen } = collector();
    pageTablesTour(print);
    expect(seen.get('remap')).toBe(0);
    expect(seen.get('same frame')).toBe(true);
    expect(seen.get('pte prot')).toBe(true);
    expect(seen.get('page-table frames')).toBe(2);
  });

  test('the huge-entry tour maps 8 MiB with no page table, then splits one entry', () => {
    const { print, seen } = collector();
    hugeEntriesTour(print);
    expect(seen.get('huge remap')).toBe(0);
    expect(seen.get('tables after remap')).toBe(1);
    expect(seen.get('pages mapped')).toBe(2048);
    expect(seen.get('views')).toBe(1);
    expect(seen.get('split munmap')).toBe(0);
    expect(seen.get('tables after split')).toBe(2);
    expect(seen.get('pages left')).toBe(2047);
  });

  test('a process per task maps, runs, faults on a read-only write and always tears down', async () => {
    const { processPerTask } =
      await compiled<typeof import('../examples/workers-per-task.js')>('workers-per-task');
    const { print, seen } = collector();
    await processPerTask(print);
    const size = 4 * 2 ** 20;
    expect(seen.get('bytes')).toBe(size);
    expect(seen.get('sum')).toBe(3 * size);
    expect(seen.get('fault')).toBe('SEGV_ACCERR');
    expect(seen.get('mappings left')).toEqual([0]);
    expect(seen.get('address spaces left')).toBe(0);
  });

  test('a long-lived process keeps its address space across tasks while its mappings change', async () => {
    const { longLivedProcess } =
      await compiled<typeof import('../examples/workers-long-lived.js')>('workers-long-lived');
    const { print, seen } = collector();
    await longLivedProcess(print);
    expect(String(seen.get('maps')).trim().split('\n')).toHaveLength(2);
    expect(seen.get('sum')).toBe(2 * 2 ** 20);
    expect(seen.get('mappings')).toBe(1);
  });

  test('the ring buffer tour reserves, discards, outputs, holds back, fills up and frees', () => {
    const { print, seen } = collector();
    ringbufTour(print);
    const data = 4 * PAGE_SIZE;
    const taken = (len: number): number => Math.ceil((len + RINGBUF_HDR_SZ) / 8) * 8;
    const used = taken(12) + taken(100) + taken(5);
    expect(seen.get('ring size')).toBe(data);
    expect(seen.get('largest record')).toBe(data / 2 - RINGBUF_HDR_SZ);
    expect(seen.get('output')).toBe(0);
    expect(seen.get('held back')).toBe(0);
    expect(seen.get('reserved bytes')).toBe(used);
    expect(seen.get('consumed')).toBe(2);
    expect(seen.get('lengths')).toEqual([12, 5]);
    expect(seen.get('positions')).toEqual([used, used]);
    expect(seen.get('records until full')).toBe(Math.floor((data - used) / taken(1000)));
    expect(seen.get('full')).toBe(-EAGAIN);
    expect(seen.get('drained')).toBe(seen.get('records until full'));
    expect(seen.get('same ring')).toBe(true);
    expect(String(seen.get('vmallocinfo'))).toMatch(/bpf_ringbuf_area_alloc pages=7 vmalloc user/);
    expect(seen.get('after free')).toBeNull();
  });

  test('pool tasks report progress through the pool ring, read by the main thread with poll', async () => {
    const { workersRing } =
      await compiled<typeof import('../examples/workers-ring.js')>('workers-ring');
    const { print, seen } = collector();
    await workersRing(print);
    expect(seen.get('results')).toEqual([10_000, 10_000, 10_000]);
    expect(seen.get('last steps')).toEqual([10_000, 10_000, 10_000]);
  });

  test('the grace-period tour defers frames released under an open read section', () => {
    const { print, seen } = collector();
    gracePeriodTour(print);
    expect(seen.get('deferred')).toBe(4);
    expect(seen.get('deferred after')).toBe(0);
    expect(seen.get('free again')).toBe(4);
  });

  test('the kmalloc tour sizes objects by class, views them in place and gets every frame back', () => {
    const { print, seen } = collector();
    kmallocTour(print);
    expect(seen.get('ksize')).toBe(32);
    expect(seen.get('kaddr is negative')).toBe(true);
    expect(seen.get('same cache from its id')).toBe('point_cache');
    expect(String(seen.get('slabinfo'))).toMatch(/^point_cache +1 +\d+ +24 /);
    expect(seen.get('badFrees')).toBe(1);
    expect(seen.get('destroy while in use')).toBe(-EBUSY);
    expect(seen.get('destroy')).toBe(0);
    expect(seen.get('all frames back')).toBe(true);
  });

  test('a hash table of kmalloc nodes is read by two workers and shrunk by a third', async () => {
    const { kmallocHashTour, KEYS, valueOf } =
      await compiled<typeof import('../examples/kmalloc-hash.js')>('kmalloc-hash');
    const { print, seen } = collector();
    await kmallocHashTour(print);
    let sum = 0;
    for (let key = 0; key < KEYS; key++) sum += valueOf(key);
    expect(seen.get('sum of values read by the workers')).toBe(sum);
    expect(seen.get('removed by the worker')).toBe(KEYS / 2);
    expect(seen.get('left for the main thread to free')).toBe(KEYS / 2);
    expect(seen.get('all frames back')).toBe(true);
  });

  test('the ring stream delivers every record of a worker thread once, in order', async () => {
    const { ringbufStream } =
      await compiled<typeof import('../examples/ringbuf-stream.js')>('ringbuf-stream');
    const { print, seen } = collector();
    const count = 200_000;
    await ringbufStream(print, count);
    expect(seen.get('received')).toBe(count);
    expect(seen.get('sum')).toBe((count * (count - 1)) / 2);
    expect(String(seen.get('rate'))).toMatch(/^\d+\.\d M records\/s$/);
  });

  test('the packed ring stream delivers every small record once, in order', async () => {
    const { ringbufPacked } =
      await compiled<typeof import('../examples/ringbuf-packed.js')>('ringbuf-packed');
    const { print, seen } = collector();
    const count = 200_003; // the last ring record holds fewer than 42
    await ringbufPacked(print, count);
    expect(seen.get('received')).toBe(count);
    expect(seen.get('sum')).toBe((count * (count - 1)) / 2);
    expect(seen.get('kinds')).toBe(Math.floor(count / 4) * 6 + 3); // 200 000 = 50 000 fours, then 0 + 1 + 2
  });

  test('the threads tour sees a worker thread write the frames with no copy', async () => {
    const { threadsTour } = await compiled<typeof import('../examples/threads.js')>('threads');
    const { print, seen } = collector();
    await threadsTour(print);
    expect(seen.get('worker wrote')).toBe(4 * PAGE_SIZE);
    expect(seen.get('main thread sees')).toEqual([42, 42, 42, 42]);
  });
});
