import { PAGE_SIZE, PROT_READ, SegmentationFault } from '@sabvm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SabvmError } from '../src/index.js';
import {
  area,
  expectNoProcessLeft,
  MiB,
  rig,
  waitChange,
  type Rig,
  spareFrames,
} from './harness.js';

interface DescribeSelf {
  threadId: number;
  mmId: number;
  ranges: { uaddr: number; length: number }[];
  maps: string;
}

describe('SabvmProcess: a long-lived process', () => {
  let r: Rig;
  let a: number;
  let b: number;
  const SIZE = 64 * 1024;

  beforeAll(() => {
    r = rig(16 * MiB, 2);
    a = area(r, SIZE);
    b = area(r, SIZE);
  });
  afterAll(async () => {
    await r.pool.close();
  });

  it('serves several tasks in turn and at once, on different threads, in one address space', async () => {
    const proc = r.pool.createProcess();
    const ma = proc.map(a);
    const mb = proc.map(b);
    r.kernel.writeKernel(a, new Uint8Array(SIZE).fill(10));
    r.kernel.writeKernel(b, new Uint8Array(SIZE).fill(20));
    const barrier = new Int32Array(new SharedArrayBuffer(4));
    const threads = await Promise.all([
      proc.run<number>({
        name: 'barrierAdd',
        mappings: [ma],
        arg: { barrier: barrier.buffer, parties: 2, delta: 1 },
      }),
      proc.run<number>({
        name: 'barrierAdd',
        mappings: [mb],
        arg: { barrier: barrier.buffer, parties: 2, delta: 2 },
      }),
    ]);
    expect(new Set(threads).size).toBe(2);
    for (let turn = 0; turn < 3; turn++) {
      const info = await proc.run<DescribeSelf>({ name: 'describeSelf' });
      expect(info.mmId).toBe(proc.id);
      expect(info.ranges.map((x) => x.uaddr)).toEqual(proc.mappings.map((m) => m.uaddr));
      await proc.run({ name: 'addDelta', arg: { index: turn % 2, delta: 5 } });
    }
    // In address order the mappings are [mb, ma] or [ma, mb]; each got 5 once or twice.
    const order = proc.mappings.map((m) => m.kaddr);
    const adds = (k: number): number => (order.indexOf(k) === 0 ? 10 : 5);
    expect(r.kernel.readKernel(a, SIZE).every((x) => x === 11 + adds(a))).toBe(true);
    expect(r.kernel.readKernel(b, SIZE).every((x) => x === 22 + adds(b))).toBe(true);
    await proc.destroy();
    expectNoProcessLeft(r);
  });

  it('adds and removes mappings between tasks; an unmapped address faults with SEGV_MAPERR', async () => {
    const proc = r.pool.createProcess();
    const ma = proc.map(a);
    let info = await proc.run<DescribeSelf>({ name: 'describeSelf' });
    expect(info.ranges).toHaveLength(1);
    const mb = proc.map({ kaddr: b, length: PAGE_SIZE, prot: PROT_READ });
    info = await proc.run<DescribeSelf>({ name: 'describeSelf' });
    expect(info.ranges).toHaveLength(2);
    expect(info.maps.trim().split('\n')).toHaveLength(2);
    proc.unmap(ma);
    expect(proc.mappings).toEqual([mb]);
    const error = (await proc
      .run({ name: 'readAt', arg: { uaddr: ma.uaddr + 7 } })
      .catch((e: unknown) => e)) as SegmentationFault;
    expect(error).toBeInstanceOf(SegmentationFault);
    expect(error.code).toBe('SEGV_MAPERR');
    expect(error.address).toBe(ma.uaddr + 7);
    r.kernel.writeKernel(b, new Uint8Array([77]));
    await expect(proc.run({ name: 'readAt', arg: { uaddr: mb.uaddr } })).resolves.toBe(77);
    expect(() => {
      proc.unmap(ma);
    }).toThrow(SabvmError);
    await proc.destroy();
    expectNoProcessLeft(r);
  });

  it('refuses to unmap or protect a mapping while a running task uses it', async () => {
    const proc = r.pool.createProcess();
    const m = proc.map({ kaddr: a, length: PAGE_SIZE });
    const [view] = proc.mm.segments(m.uaddr, 16, { write: true });
    const shared = new Int32Array(view!.buffer, view!.byteOffset, 4);
    shared.fill(0);
    const task = proc.run({ name: 'pingPong' });
    await waitChange(shared, 0, 0);
    expect(() => {
      proc.unmap(m);
    }).toThrow(expect.objectContaining({ code: 'EBUSY', syscall: 'munmap' }) as Error);
    expect(() => proc.protect(m, PROT_READ)).toThrow(
      expect.objectContaining({ code: 'EBUSY' }) as Error,
    );
    Atomics.store(shared, 1, 1);
    Atomics.notify(shared, 1);
    await expect(task).resolves.toBe(1);
    const ro = proc.protect(m, PROT_READ);
    expect(ro.prot).toBe(PROT_READ);
    const error = (await proc
      .run({ name: 'writeByte', arg: { offset: 100 } })
      .catch((e: unknown) => e)) as SegmentationFault;
    expect(error).toMatchObject({
      name: 'SegmentationFault',
      code: 'SEGV_ACCERR',
      address: m.uaddr + 100,
    });
    proc.unmap(ro);
    await proc.destroy();
    expectNoProcessLeft(r);
  });

  it('waits for its running tasks before it is destroyed, then refuses new ones', async () => {
    const proc = r.pool.createProcess();
    const m = proc.map({ kaddr: a, length: PAGE_SIZE });
    const [view] = proc.mm.segments(m.uaddr, 16, { write: true });
    const shared = new Int32Array(view!.buffer, view!.byteOffset, 4);
    shared.fill(0);
    const task = proc.run({ name: 'pingPong' });
    await waitChange(shared, 0, 0);
    const destroyed = proc.destroy();
    expect(proc.alive).toBe(false);
    expect(r.kernel.addressSpaceIds()).toEqual(
      [proc.id, ...r.pool.threadAddressSpaceIds].sort((x, y) => x - y),
    );
    Atomics.store(shared, 1, 3);
    Atomics.notify(shared, 1);
    await expect(task).resolves.toBe(3);
    await destroyed;
    await expect(proc.run()).rejects.toThrow(/destroyed/);
    expect(() => proc.map(a)).toThrow(/destroyed/);
    expect(proc.maps()).toBe('');
    expectNoProcessLeft(r);
  });

  it('keeps a vfreed area alive while it is mapped, and frees its frames with the last mapping', async () => {
    const before = spareFrames(r.kernel);
    const k = r.kernel.vmallocUser(8 * PAGE_SIZE)!;
    r.kernel.writeKernel(k, new Uint8Array([1, 2, 3]));
    const proc = r.pool.createProcess();
    const m = proc.map(k);
    r.kernel.vfree(k);
    await expect(proc.run({ name: 'readAt', arg: { uaddr: m.uaddr + 2 } })).resolves.toBe(3);
    proc.unmap(m);
    await proc.destroy();
    expect(spareFrames(r.kernel)).toBe(before);
    expectNoProcessLeft(r);
  });

  it('stays usable after one of its tasks kills its thread', async () => {
    const proc = r.pool.createProcess();
    proc.map(a);
    await expect(proc.run({ name: 'exitThread' })).rejects.toThrow(/exited/);
    expect(proc.alive).toBe(true);
    await expect(proc.run({ name: 'checksum' })).resolves.toBeTypeOf('number');
    await proc.destroy();
    expectNoProcessLeft(r);
  });

  it('refuses mappings that belong to another process', async () => {
    const p1 = r.pool.createProcess();
    const p2 = r.pool.createProcess();
    const m1 = p1.map(a);
    await expect(p2.run({ mappings: [m1] })).rejects.toMatchObject({ code: 'EINVAL' });
    expect(() => {
      p2.unmap(m1);
    }).toThrow(SabvmError);
    await Promise.all([p1.destroy(), p2.destroy()]);
    expectNoProcessLeft(r);
  });
});
