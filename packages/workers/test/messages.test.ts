/**
 * Errors that say the cause: a failed mapping names the rule of remapPartial it broke (with a
 * hint), addresses are hex, and an address space that cannot be made says which resource ran out.
 */
import { Kernel, PAGE_SIZE } from '@sabvm/core';
import { afterAll, describe, expect, it } from 'vitest';
import { SabvmPool, type AreaSpec } from '../src/index.js';
import { MiB, TASKS, area, expectNoProcessLeft, rig, spareFrames } from './harness.js';

const r = rig(16 * MiB, 1);
afterAll(() => r.pool.close());

async function failure(areas: readonly (AreaSpec | number)[]): Promise<Error> {
  return await r.pool.run({ areas }).then(
    () => new Error('resolved'),
    (e: unknown) => e as Error,
  );
}

describe('mapping errors name the rule that failed', () => {
  it('an unaligned kaddr, an area without VM_USERMAP, a range past the end, no area at all', async () => {
    const kaddr = area(r, 2 * PAGE_SIZE);
    const plain = r.kernel.vmalloc(PAGE_SIZE)!;
    expect((await failure([kaddr + 1])).message).toMatch(
      /^remapPartial: EINVAL \(kaddr 0x[0-9a-f]+1 is not page-aligned \(a multiple of 4096\); the area starts at 0x[0-9a-f]+000\)$/,
    );
    expect((await failure([plain])).message).toMatch(
      /has no VM_USERMAP: it came from vmalloc or vzalloc; allocate it with kernel\.vmallocUser/,
    );
    expect((await failure([{ kaddr, length: 3 * PAGE_SIZE }])).message).toMatch(
      /runs past the end of the area at 0x[0-9a-f]+ \(8192 backed bytes\)/,
    );
    const freed = r.kernel.vmallocUser(PAGE_SIZE)!;
    r.kernel.vfree(freed);
    expect((await failure([freed])).message).toMatch(
      new RegExp(`no live vmalloc area contains kaddr 0x${freed.toString(16)} `),
    );
    r.kernel.vfree(plain);
    r.kernel.vfree(kaddr);
    r.freeFrames = spareFrames(r.kernel);
    expectNoProcessLeft(r);
  });
});

describe('createAddressSpace ENOMEM says which resource ran out', () => {
  it('no address-space slot', async () => {
    const kernel = Kernel.boot({ memoryBytes: 8 * MiB, maxAddressSpaces: 1 });
    const pool = new SabvmPool({ kernel, filename: TASKS, piscina: { maxThreads: 1 } });
    const first = pool.createProcess();
    expect(() => pool.createProcess()).toThrow(
      /createAddressSpace: ENOMEM \(no address-space slot: all 1 are in use/,
    );
    await first.destroy();
    await pool.close();
  });

  it('no frame for the page directory', async () => {
    const kernel = Kernel.boot({ memoryBytes: 8 * MiB });
    const pool = new SabvmPool({ kernel, filename: TASKS, piscina: { maxThreads: 1 } });
    const all = kernel.vmalloc(kernel.stats().freeFrames * PAGE_SIZE)!;
    expect(() => pool.createProcess()).toThrow(
      /createAddressSpace: ENOMEM \(no free frame for the page directory: physical memory is full\)/,
    );
    kernel.vfree(all);
    await pool.close();
  });
});
