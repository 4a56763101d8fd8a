import { Kernel, PAGE_SIZE } from '@sabvm/core';
import { describe, expect, it } from 'vitest';
import { SabvmError, SabvmPool } from '../src/index.js';
import { MiB, TASKS } from './harness.js';

/** Poll `ring` until every producer id in `next` has sent `count` records, checking their order. */
async function collect(
  ring: NonNullable<SabvmPool['ring']>,
  next: number[],
  count: number,
): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (next.some((n) => n < count)) {
    if (Date.now() > deadline) throw new Error(`the ring stalled at ${next.join(',')}`);
    await ring.poll(
      (v) => {
        const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
        const id = dv.getUint32(0, true);
        expect(dv.getUint32(4, true)).toBe(next[id]);
        next[id]!++;
      },
      { timeoutMs: 100 },
    );
  }
}

describe('rings and the pool', () => {
  it('hands the main thread a ring that every task of the pool writes to', async () => {
    const pool = new SabvmPool({
      boot: { memoryBytes: 32 * MiB },
      filename: TASKS,
      piscina: { minThreads: 2, maxThreads: 2 },
      ringBytes: 4 * PAGE_SIZE, // small: the tasks wait for room while the main thread polls
    });
    const ring = pool.ring!;
    const count = 5000;
    const tasks = [0, 1, 2].map((id) =>
      pool.run({ areas: [], name: 'produce', arg: { id, count } }),
    );
    const next = [0, 0, 0];
    await collect(ring, next, count);
    expect(await Promise.all(tasks)).toEqual([count, count, count]);
    expect(ring.consume(() => undefined)).toBe(0);
    await pool.close();
    expect(pool.kernel.ringbuf(ring.kaddr)).toBeNull(); // close frees it
  });

  it('lets a task open a producer on a ring it was given by kaddr', async () => {
    const kernel = Kernel.boot({ memoryBytes: 32 * MiB });
    const pool = new SabvmPool({ kernel, filename: TASKS, piscina: { maxThreads: 1 } });
    const ring = kernel.ringbufCreate(2 * PAGE_SIZE)!;
    const task = pool.run({
      areas: [],
      name: 'produce',
      arg: { id: 0, count: 2000, ring: ring.kaddr },
    });
    const next = [0];
    await collect(ring, next, 2000);
    expect(await task).toBe(2000);
    await expect(
      pool.run({ areas: [], name: 'produce', arg: { id: 0, count: 1, ring: 12345 } }),
    ).rejects.toThrow(/not the kaddr of a live ring/);
    await pool.close();
    ring.free();
  });

  for (const transport of ['ring', 'message'] as const) {
    it(`has every RB_BATCH record of a task in the ring once the task completed (${transport} transport)`, async () => {
      const pool = new SabvmPool({
        boot: { memoryBytes: 32 * MiB },
        filename: TASKS,
        piscina: { maxThreads: 1 },
        ringBytes: 64 * PAGE_SIZE,
        transport,
      });
      const ring = pool.ring!;
      const warm = pool.kernel.kzalloc(4)!;
      pool.kernel.view(warm, 4, Int32Array)[0] = 1;
      expect(await pool.run({ areas: [], name: 'holdOn', arg: { kaddr: warm } })).toBe(0);
      pool.kernel.kfree(warm);
      for (let id = 0; id < 4; id++) {
        // fewer records than a chunk holds: nothing but the task's end publishes them; odd ids
        // write through a handle of the task's own, not the one poolRing/openRing cache
        const count = 3 + id * 10;
        const arg = { id, count, batch: true, ring: ring.kaddr, own: id % 2 === 1 };
        // ring transport: the thread's next task blocks it until the records have been checked,
        // so no microtask and no idle moment of the thread publishes them (its arguments travel
        // inline in the ring, and its module is loaded: the thread goes from one task to the
        // next with no await). Not with the message transport: Piscina may hand a thread its
        // next task while the first awaits, and a blocked thread would never reply.
        const gate = pool.kernel.kzalloc(4)!;
        const word = pool.kernel.view(gate, 4, Int32Array);
        const produced = pool.run({ areas: [], name: 'produce', arg });
        const blocker =
          transport === 'ring'
            ? pool.run({ areas: [], name: 'holdOn', arg: { kaddr: gate } })
            : Promise.resolve(0);
        expect(await produced).toBe(count);
        const seqs: number[] = [];
        ring.consume((v) => {
          const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
          expect(dv.getUint32(0, true)).toBe(id);
          seqs.push(dv.getUint32(4, true));
        });
        expect(seqs).toEqual(Array.from({ length: count }, (_, i) => i));
        Atomics.store(word, 0, 1);
        Atomics.notify(word, 0);
        expect(await blocker).toBe(0);
        pool.kernel.kfree(gate);
      }
      await pool.close();
    });
  }

  it('refuses a ring size that is not a power of two of at least 2 pages', () => {
    const make = (ringBytes: number) =>
      new SabvmPool({ boot: { memoryBytes: 32 * MiB }, filename: TASKS, ringBytes });
    expect(() => make(3 * PAGE_SIZE)).toThrow(SabvmError);
    expect(() => make(3 * PAGE_SIZE)).toThrow(/EINVAL/);
  });
});
