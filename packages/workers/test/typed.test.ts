/**
 * Typed views in tasks (`range.view(Type)`, `range.segments({ type })`), the errors that say how
 * to get one, and the footguns: returning a view of the kernel's memory, serializing handles.
 */
import { inspect } from 'node:util';
import { PAGE_SIZE } from '@sabvm/core';
import { afterAll, describe, expect, it } from 'vitest';
import { MiB, area, expectNoProcessLeft, rig, spareFrames } from './harness.js';

const r = rig(32 * MiB);
afterAll(() => r.pool.close());

/** A vmallocUser area of `pages` pages whose frames are not one run (two runs, then a hole). */
function splitArea(pages: number): number {
  const k = r.kernel;
  // take a run of single pages, free every other one: the next area must use the holes
  const hold = Array.from({ length: 2 * pages }, () => k.vmalloc(PAGE_SIZE)!);
  hold.forEach((a, i) => {
    if (i % 2 === 0) k.vfree(a);
  });
  const kaddr = k.vmallocUser(pages * PAGE_SIZE)!;
  hold.forEach((a, i) => {
    if (i % 2 === 1) k.vfree(a);
  });
  r.freeFrames = spareFrames(k);
  return kaddr;
}

describe('typed views in tasks', () => {
  it('gives one Float32Array over a contiguous area, zero-copy both ways', async () => {
    const kaddr = r.kernel.vmallocUser(4 * MiB, { contiguous: true })!;
    r.freeFrames = spareFrames(r.kernel);
    expect(await r.pool.run({ areas: [kaddr], name: 'fillIndex' })).toBe(MiB);
    const result = await r.pool.run<{ sum: number; length: number; type: string }>({
      areas: [{ kaddr, prot: 1 }],
      name: 'sumFloat32',
    });
    expect(result).toEqual({ sum: ((MiB - 1) * MiB) / 2, length: MiB, type: 'Float32Array' });
    // a sub-range, as elements
    const part = await r.pool.run<{ length: number }>({
      areas: [kaddr],
      name: 'sumFloat32',
      arg: { offset: 16, length: 64 },
    });
    expect(part).toMatchObject({
      sum: 4 + 5 + 6 + 7 + 8 + 9 + 10 + 11 + 12 + 13 + 14 + 15 + 16 + 17 + 18 + 19,
      length: 16,
    });
    r.kernel.vfree(kaddr);
    r.freeFrames = spareFrames(r.kernel);
    expectNoProcessLeft(r);
  });

  it('says how to get one view when the area is several runs', async () => {
    const kaddr = splitArea(4);
    await expect(r.pool.run({ areas: [kaddr], name: 'sumFloat32' })).rejects.toThrow(
      /view: \[0x[0-9a-f]+, 0x[0-9a-f]+\) is \d+ physically separate runs .* kernel\.vmallocUser\(size, \{ contiguous: true \}\)/,
    );
    // typed segments work run by run
    const segs = await r.pool.run<[string, number][]>({
      areas: [kaddr],
      name: 'typedSegments',
      arg: { type: 'Float64Array' },
    });
    expect(segs.length).toBeGreaterThan(1);
    expect(segs.every(([type]) => type === 'Float64Array')).toBe(true);
    expect(segs.reduce((n, [, length]) => n + length, 0)).toBe((4 * PAGE_SIZE) / 8);
    r.kernel.vfree(kaddr);
    r.freeFrames = spareFrames(r.kernel);
    expectNoProcessLeft(r);
  });

  it('refuses a misaligned sub-range or a type that is not a typed array, saying why', async () => {
    const kaddr = area(r, PAGE_SIZE);
    await expect(
      r.pool.run({ areas: [kaddr], name: 'sumFloat32', arg: { offset: 2 } }),
    ).rejects.toThrow(
      /a Float32Array view needs a start address and a length that are multiples of 4 bytes; got 0x[0-9a-f]+2 and 4094 bytes/,
    );
    await expect(
      r.pool.run({ areas: [kaddr], name: 'typedSegments', arg: { type: 'Int32Array', length: 6 } }),
    ).rejects.toMatchObject({ name: 'RangeError' });
    await expect(
      r.pool.run({ areas: [kaddr], name: 'typedSegments', arg: { type: 'DataView' } }),
    ).rejects.toThrow(/the type must be a typed-array constructor/);
    await expect(
      r.pool.run({ areas: [kaddr], name: 'sumFloat32', arg: { offset: 0, length: 2 * PAGE_SIZE } }),
    ).rejects.toThrow(/outside the range of 4096 bytes at 0x/);
    r.kernel.vfree(kaddr);
    r.freeFrames = spareFrames(r.kernel);
    expectNoProcessLeft(r);
  });
});

describe('footguns', () => {
  it('refuses a task result that is a view of the kernel memory, and passes a copy', async () => {
    const kaddr = area(r, PAGE_SIZE);
    for (const how of ['view', 'nested']) {
      await expect(
        r.pool.run({ areas: [kaddr], name: 'returnView', arg: { how } }),
      ).rejects.toThrow(
        /the task returned a Uint8Array \(the result.*\): a view over the kernel's physical memory.*view\.slice\(\)/,
      );
    }
    const copy = await r.pool.run<Uint8Array>({
      areas: [kaddr],
      name: 'returnView',
      arg: { how: 'copy' },
    });
    expect(copy).toBeInstanceOf(Uint8Array);
    expect(copy.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    r.kernel.vfree(kaddr);
    r.freeFrames = spareFrames(r.kernel);
    expectNoProcessLeft(r);
  });

  it('serializes and inspects a process and the pool as a few fields', async () => {
    const proc = r.pool.createProcess();
    const kaddr = area(r, PAGE_SIZE);
    const m = proc.map(kaddr);
    for (const handle of [proc, r.pool]) {
      expect(JSON.stringify(handle).length).toBeLessThan(400);
      expect(inspect(handle, { depth: 10 }).length).toBeLessThan(600);
    }
    expect(JSON.parse(JSON.stringify(proc))).toEqual({
      type: 'SabvmProcess',
      id: proc.id,
      alive: true,
      mappings: [m],
    });
    await proc.destroy();
    r.kernel.vfree(kaddr);
    r.freeFrames = spareFrames(r.kernel);
    expectNoProcessLeft(r);
  });

  it('runs a task with no mappings when run() gets no areas', async () => {
    expect(await r.pool.run({ name: 'countRanges' })).toBe(0);
    expectNoProcessLeft(r);
  });
});
