import { afterAll, describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '@sabvm/core';
import { area, MiB, rig } from './harness.js';

describe('a task runs inside a read section', () => {
  const r = rig(16 * MiB, 1);
  afterAll(async () => {
    await r.pool.close();
  });

  it('keeps the frames behind its views from a new owner while another thread unmaps them', async () => {
    const pages = 8;
    const kaddr = area(r, pages * PAGE_SIZE);
    r.kernel.writeKernel(kaddr, new Uint8Array(pages * PAGE_SIZE).fill(0x3c));
    const proc = r.pool.createProcess();
    const m = proc.map(kaddr);
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const done = proc.run<number>({
      name: 'holdView',
      mappings: [m],
      arg: { flag: flag.buffer, value: 0x3c },
    });
    // wait without blocking the event loop: Piscina posts the task from it
    while (Atomics.load(flag, 0) !== 1) await Atomics.waitAsync(flag, 0, 0, 1000).value;
    // the main thread pulls the mapping and the area out from under the running task
    const free = r.kernel.stats().freeFrames;
    expect(r.kernel.addressSpace(proc.id).munmap(m.uaddr, pages * PAGE_SIZE)).toBe(0);
    r.kernel.vfree(kaddr);
    expect(r.kernel.stats().deferredFrames).toBe(pages);
    expect(r.kernel.stats().freeFrames).toBe(free);
    // every free frame goes to a new owner who scribbles on it: none is the task's
    const left = r.kernel.stats().freeFrames;
    const grab = r.kernel.vzalloc(left * PAGE_SIZE);
    expect(grab).not.toBeNull();
    r.kernel.writeKernel(grab!, new Uint8Array(left * PAGE_SIZE).fill(0xee));
    Atomics.store(flag, 0, 2);
    Atomics.notify(flag, 0);
    expect(await done).toBe(0);
    expect(r.kernel.stats().deferredFrames).toBe(0);
    r.kernel.vfree(grab);
    await proc.destroy();
    r.kernel.checkInvariants();
  });
});
