/**
 * Typed tasks: bindTasks<typeof module>(pool or process) runs a task by name with the argument and
 * result types of the module (a type test: a misspelt name or a wrong argument does not compile),
 * and one shape of "what to map" (`areas`) for pool.run and proc.run.
 */
import { PAGE_SIZE } from '@sabvm/core';
import { afterAll, describe, expect, expectTypeOf, it } from 'vitest';
import { bindTasks } from '../src/index.js';
import type * as tasks from './fixtures/tasks.mjs';
import { MiB, area, expectNoProcessLeft, rig, spareFrames } from './harness.js';

const r = rig(16 * MiB, 1);
afterAll(() => r.pool.close());

describe('bindTasks', () => {
  it('types each task from the module and runs it by name on a pool', async () => {
    const run = bindTasks<typeof tasks>(r.pool);
    expectTypeOf(run.countRanges).returns.resolves.toEqualTypeOf<number>();
    expectTypeOf(run.sumFloat32).returns.resolves.toEqualTypeOf<{
      sum: number;
      length: number;
      type: string;
    }>();
    expectTypeOf(run.addDelta).parameter(0).toHaveProperty('arg').toEqualTypeOf<{
      index: number;
      delta: number;
    }>();
    // @ts-expect-error a misspelt task name does not compile
    expect(typeof run.countRange).toBe('function');
    // @ts-expect-error an export that is not a task is not bound
    expect(typeof run.notATask).toBe('function');
    const kaddr = area(r, PAGE_SIZE);
    // @ts-expect-error a wrong argument type does not compile (value must be a number)
    const wrong = run.default({ areas: [kaddr], arg: { value: 'x' } });
    await wrong;
    expect(await run.default({ areas: [kaddr], arg: { value: 3 } })).toBe(PAGE_SIZE);
    expect(await run.checksum({ areas: [kaddr], arg: undefined })).toBe(3 * PAGE_SIZE);
    expect(await run.countRanges({ arg: undefined })).toBe(0);
    r.kernel.vfree(kaddr);
    r.freeFrames = spareFrames(r.kernel);
    expectNoProcessLeft(r);
  });

  it('runs the same tasks on a long-lived process, with areas mapped for the task alone', async () => {
    const kaddr = area(r, 2 * PAGE_SIZE);
    const proc = r.pool.createProcess();
    const run = bindTasks<typeof tasks>(proc);
    // one shape: `areas` maps for this task only, as pool.run does; the process keeps none
    expect(
      await run.countRanges({ areas: [kaddr, { kaddr, length: PAGE_SIZE }], arg: undefined }),
    ).toBe(2);
    expect(proc.mappings).toEqual([]);
    const m = proc.map(kaddr);
    expect(await run.countRanges({ arg: undefined })).toBe(1); // default: the process's mappings
    expect(await run.countRanges({ mappings: [m], areas: [kaddr], arg: undefined })).toBe(2);
    expect(proc.mappings).toEqual([m]);
    await proc.destroy();
    r.kernel.vfree(kaddr);
    r.freeFrames = spareFrames(r.kernel);
    expectNoProcessLeft(r);
  });
});
