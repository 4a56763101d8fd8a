/**
 * Honest protection: a view from a read-only mapping accepts plain stores (JavaScript has no
 * read-only view of shared memory); the pool's `readOnlyCheck` finds such a write after the task.
 */
import { Kernel, PAGE_SIZE, PROT_READ, SegmentationFault } from '@sabvm/core';
import { afterAll, describe, expect, it } from 'vitest';
import { SabvmPool } from '../src/index.js';
import { MiB, TASKS, area, expectNoProcessLeft, rig, spareFrames } from './harness.js';

const plain = rig(16 * MiB, 1);
// a kernel of its own: the plain pool's threads keep address spaces of their own in theirs
const checkedKernel = Kernel.boot({ memoryBytes: 16 * MiB });
const checked = {
  kernel: checkedKernel,
  pool: new SabvmPool({
    kernel: checkedKernel,
    filename: TASKS,
    piscina: { maxThreads: 1 },
    readOnlyCheck: true,
  }),
  freeFrames: spareFrames(checkedKernel),
};
afterAll(async () => {
  await plain.pool.close();
  await checked.pool.close();
});

describe('read-only mappings', () => {
  it('accept a plain store through a view: nothing tells without the check (the caveat)', async () => {
    const kaddr = area(plain, 4 * PAGE_SIZE);
    await plain.pool.run({
      areas: [{ kaddr, prot: PROT_READ }],
      name: 'writeThroughView',
      arg: { offset: 5, value: 0x42 },
    });
    expect(plain.kernel.readKernel(kaddr + 5, 1)[0]).toBe(0x42);
    plain.kernel.vfree(kaddr);
    plain.freeFrames = spareFrames(plain.kernel);
    expectNoProcessLeft(plain);
  });

  it('with readOnlyCheck, fail the task with SEGV_ACCERR at the first changed page, naming the task', async () => {
    const kaddr = area(checked, 4 * PAGE_SIZE);
    checked.freeFrames = spareFrames(checked.kernel);
    const error = (await checked.pool
      .run({
        areas: [{ kaddr, prot: PROT_READ }],
        name: 'writeThroughView',
        arg: { offset: 2 * PAGE_SIZE + 9, value: 1 },
      })
      .catch((e: unknown) => e)) as SegmentationFault;
    expect(error).toBeInstanceOf(SegmentationFault);
    expect(error.code).toBe('SEGV_ACCERR');
    expect(error.address % PAGE_SIZE).toBe(0);
    expect(error.message).toMatch(
      /SEGV_ACCERR\): write at 0x[0-9a-f]+000 is not permitted by the mapping \(task 'writeThroughView' wrote through a view of a read-only mapping: found by readOnlyCheck\)/,
    );
    // a task that only reads passes, and a writable mapping is not checked
    expect(await checked.pool.run({ areas: [{ kaddr, prot: PROT_READ }], name: 'checksum' })).toBe(
      1,
    );
    await checked.pool.run({
      areas: [kaddr],
      name: 'writeThroughView',
      arg: { offset: 0, value: 3 },
    });
    checked.kernel.vfree(kaddr);
    checked.freeFrames = spareFrames(checked.kernel);
    expectNoProcessLeft(checked);
  });

  it('refuses a readOnlyCheck that is not a boolean', () => {
    expect(
      () => new SabvmPool({ kernel: plain.kernel, filename: TASKS, readOnlyCheck: 1 as never }),
    ).toThrow(/readOnlyCheck must be a boolean/);
  });
});
