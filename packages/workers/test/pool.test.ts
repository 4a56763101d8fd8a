import { Kernel, PAGE_SIZE, PROT_READ, PROT_WRITE, SegmentationFault } from '@sabvm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SabvmError, SabvmPool } from '../src/index.js';
import {
  area,
  expectNoProcessLeft,
  MiB,
  rig,
  spareFrames,
  TASKS,
  waitChange,
  type Rig,
} from './harness.js';

interface DescribeSelf {
  ranges: { length: number; prot: number; writable: boolean }[];
  viewsOnKernelBuffer: boolean;
  workerData: unknown;
}

describe('SabvmPool.run: a process per task', () => {
  let r: Rig;
  let kaddr: number;
  const SIZE = 1 * MiB;

  beforeAll(() => {
    r = rig();
    kaddr = area(r, SIZE);
  });
  afterAll(async () => {
    await r.pool.close();
  });

  it('lets a worker write the frames and the main thread read them with no copy', async () => {
    const written = await r.pool.run({ areas: [kaddr], arg: { value: 0x5a } });
    expect(written).toBe(SIZE);
    const bytes = r.kernel.readKernel(kaddr, SIZE);
    expect(bytes.every((b) => b === 0x5a)).toBe(true);
    expectNoProcessLeft(r);
  });

  it('lets a worker see what the main thread wrote', async () => {
    const pattern = new Uint8Array(SIZE).map((_, i) => (i * 7) & 0xff);
    r.kernel.writeKernel(kaddr, pattern);
    const sum = await r.pool.run({ areas: [kaddr], name: 'checksum' });
    expect(sum).toBe(pattern.reduce((a, b) => a + b, 0));
    expectNoProcessLeft(r);
  });

  it('hands the worker views over the kernel buffer itself, ranges in the order given', async () => {
    const info = await r.pool.run<DescribeSelf>({
      areas: [
        { kaddr, length: 2 * PAGE_SIZE, prot: PROT_READ },
        { kaddr: kaddr + 4 * PAGE_SIZE, length: 100 },
      ],
      name: 'describeSelf',
    });
    expect(info.ranges.map((x) => [x.length, x.prot, x.writable])).toEqual([
      [2 * PAGE_SIZE, PROT_READ, false],
      [100, PROT_READ | PROT_WRITE, true],
    ]);
    expect(info.viewsOnKernelBuffer).toBe(true);
    expectNoProcessLeft(r);
  });

  it('sees writes of a worker while the task is still running, and the worker sees ours', async () => {
    // The task and the main thread talk through the mapped frames themselves, with Atomics.
    const proc = r.pool.createProcess();
    const m = proc.map({ kaddr, length: PAGE_SIZE });
    const [view] = proc.mm.segments(m.uaddr, 16, { write: true });
    const shared = new Int32Array(view!.buffer, view!.byteOffset, 4);
    shared.fill(0);
    const task = proc.run({ name: 'pingPong' });
    await waitChange(shared, 0, 0); // the worker's store, seen through our own mapping
    expect(Atomics.load(shared, 0)).toBe(1);
    Atomics.store(shared, 1, 42);
    Atomics.notify(shared, 1);
    await expect(task).resolves.toBe(42);
    await proc.destroy();
    expectNoProcessLeft(r);
  });

  it('rejects with a SegmentationFault that keeps code and address when a task writes a read-only mapping', async () => {
    const offset = 3 * PAGE_SIZE + 17;
    const error: unknown = await r.pool
      .run({ areas: [{ kaddr, prot: PROT_READ }], name: 'writeByte', arg: { offset } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SegmentationFault);
    const segv = error as SegmentationFault;
    expect(segv.code).toBe('SEGV_ACCERR');
    // The per-task mapping is gone now, so the address is checked against the range it reported.
    expect(segv.address % PAGE_SIZE).toBe(offset % PAGE_SIZE);
    expect(segv.message).toMatch(/SEGV_ACCERR/);
    expect(segv.stack).toMatch(/tasks\.mjs/);
    expect(r.kernel.readKernel(kaddr + offset, 1)[0]).not.toBe(0xee);
    expectNoProcessLeft(r);
  });

  it('reports the exact faulting address of an unmapped access', async () => {
    const proc = r.pool.createProcess();
    const m = proc.map({ kaddr, length: PAGE_SIZE });
    const error = (await proc
      .run({ name: 'writeByte', arg: { offset: PAGE_SIZE + 5 } })
      .catch((e: unknown) => e)) as SegmentationFault;
    expect(error).toBeInstanceOf(SegmentationFault);
    expect(error.code).toBe('SEGV_MAPERR');
    expect(error.address).toBe(m.uaddr + PAGE_SIZE + 5);
    await proc.destroy();
    expectNoProcessLeft(r);
  });

  it('destroys the address space when the task throws, and keeps the error class and code', async () => {
    const error = (await r.pool
      .run({ areas: [kaddr], name: 'throwTyped' })
      .catch((e: unknown) => e)) as TypeError & { code: string };
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe('bad input from the task');
    expect(error.code).toBe('ERR_TASK_INPUT');
    expectNoProcessLeft(r);
  });

  it('destroys the address space of a task aborted by an AbortSignal, after its thread has stopped', async () => {
    const flag = new Int32Array(new SharedArrayBuffer(12));
    const controller = new AbortController();
    const task = r.pool.run({
      areas: [{ kaddr, length: PAGE_SIZE }],
      name: 'spinForever',
      arg: { flag: flag.buffer },
      signal: controller.signal,
    });
    await waitChange(flag, 0, 0);
    const thread = r.pool.piscina.threads.find((w) => w.threadId === Atomics.load(flag, 2))!;
    let exited = false;
    thread.once('exit', () => (exited = true));
    controller.abort();
    await expect(task).rejects.toMatchObject({ name: 'AbortError' });
    expect(exited).toBe(true); // run() settles only once the thread can no longer touch the frames
    // The spinning thread counts its passes in word 1: it has stopped for good.
    const passes = Atomics.load(flag, 1);
    expect(await r.pool.run({ areas: [kaddr], name: 'checksum' })).toBeTypeOf('number');
    expect(Atomics.load(flag, 1)).toBe(passes);
    expectNoProcessLeft(r);
  });

  it('destroys the address space of a task that times out', async () => {
    const flag = new Int32Array(new SharedArrayBuffer(12));
    const task = r.pool.run({
      areas: [{ kaddr, length: PAGE_SIZE }],
      name: 'spinForever',
      arg: { flag: flag.buffer },
      timeout: 50,
    });
    await expect(task).rejects.toMatchObject({
      name: 'TimeoutError',
      message: expect.stringMatching(
        /the task \('spinForever'\) did not settle within its timeout of 50 ms; it was aborted/,
      ) as unknown,
    });
    expect(Atomics.load(flag, 0)).toBe(1);
    expectNoProcessLeft(r);
  });

  it('destroys the address space when the task kills its thread with process.exit, and runs the next tasks', async () => {
    await expect(r.pool.run({ areas: [kaddr], name: 'exitThread' })).rejects.toThrow(
      /exited with code: 3/,
    );
    expectNoProcessLeft(r);
    const results = await Promise.all(
      [1, 2, 3].map((value) => r.pool.run({ areas: [kaddr], arg: { value } })),
    );
    expect(results).toEqual([SIZE, SIZE, SIZE]);
    expectNoProcessLeft(r);
  });

  it('recovers a thread terminated inside a kernel call: no lock stays held, no frame leaks', async () => {
    for (let round = 0; round < 3; round++) {
      const flag = new Int32Array(new SharedArrayBuffer(8));
      const controller = new AbortController();
      const task = r.pool.run({
        areas: [{ kaddr, length: PAGE_SIZE }],
        name: 'spinInKernel',
        arg: { flag: flag.buffer },
        signal: controller.signal,
      });
      await waitChange(flag, 0, 0);
      await waitChange(flag, 1, 0); // a few kernel calls have completed: it is in its loop
      controller.abort();
      await expect(task).rejects.toMatchObject({ name: 'AbortError' });
      expectNoProcessLeft(r);
    }
    await expect(r.pool.run({ areas: [kaddr], arg: { value: 4 } })).resolves.toBe(SIZE);
    expectNoProcessLeft(r);
  });

  it('recovers two threads terminated together inside kernel calls, whichever exit comes first', async () => {
    for (let round = 0; round < 3; round++) {
      const flags = [0, 1].map(() => new Int32Array(new SharedArrayBuffer(8)));
      const controller = new AbortController();
      const tasks = flags.map((flag) =>
        r.pool.run({
          areas: [{ kaddr, length: PAGE_SIZE }],
          name: 'spinInKernel',
          arg: { flag: flag.buffer },
          signal: controller.signal,
        }),
      );
      for (const flag of flags) {
        await waitChange(flag, 0, 0);
        await waitChange(flag, 1, 0); // both threads in their loops of kernel calls
      }
      controller.abort(); // both threads are terminated at once, most likely inside a call
      for (const settled of await Promise.allSettled(tasks)) {
        expect(settled).toMatchObject({ status: 'rejected', reason: { name: 'AbortError' } });
      }
      expectNoProcessLeft(r);
    }
    await expect(r.pool.run({ areas: [kaddr], arg: { value: 5 } })).resolves.toBe(SIZE);
    expectNoProcessLeft(r);
  });

  it('destroys the address space of a task aborted while still queued', async () => {
    const flag = new Int32Array(new SharedArrayBuffer(12));
    const blockers = [new AbortController(), new AbortController()];
    const running = blockers.map((c, i) =>
      r.pool.run({
        areas: [{ kaddr: kaddr + i * PAGE_SIZE, length: PAGE_SIZE }],
        name: 'spinForever',
        arg: { flag: flag.buffer },
        signal: c.signal,
      }),
    );
    const queuedController = new AbortController();
    const queued = r.pool.run({
      areas: [kaddr],
      arg: { value: 9 },
      signal: queuedController.signal,
    });
    queuedController.abort();
    await expect(queued).rejects.toMatchObject({ name: 'AbortError' });
    for (const c of blockers) c.abort();
    await Promise.allSettled(running);
    expect(r.kernel.readKernel(kaddr + 8 * PAGE_SIZE, 1)[0]).not.toBe(9);
    expectNoProcessLeft(r);
  });

  it('refuses an area that is not remappable with SabvmError EINVAL, leaving no process behind', async () => {
    const plain = r.kernel.vmalloc(PAGE_SIZE)!;
    const error = (await r.pool.run({ areas: [plain] }).catch((e: unknown) => e)) as SabvmError;
    expect(error).toBeInstanceOf(SabvmError);
    expect(error.code).toBe('EINVAL');
    expect(error.syscall).toBe('remapPartial');
    r.kernel.vfree(plain);
    const unknown = (await r.pool.run({ areas: [12345] }).catch((e: unknown) => e)) as SabvmError;
    expect(unknown.code).toBe('EINVAL');
    const tooLong = (await r.pool
      .run({ areas: [{ kaddr, length: SIZE + PAGE_SIZE }] })
      .catch((e: unknown) => e)) as SabvmError;
    expect(tooLong.code).toBe('EINVAL');
    expectNoProcessLeft(r);
  });

  it('rejects a task export that was not made with defineTask', async () => {
    await expect(r.pool.run({ areas: [kaddr], name: 'plain' })).rejects.toThrow(/defineTask/);
    expectNoProcessLeft(r);
  });
});

describe('SabvmPool lifetime', () => {
  it('refuses to be built with both or neither of kernel and boot', () => {
    const { kernel } = rig(8 * MiB);
    expect(() => new SabvmPool({ filename: 'x.js' })).toThrow(TypeError);
    expect(
      () => new SabvmPool({ filename: 'x.js', kernel, boot: { memoryBytes: 8 * MiB } }),
    ).toThrow(TypeError);
  });

  it('queues tasks beyond maxTasksInFlight until a slot frees, and runs them all', async () => {
    const pool = new SabvmPool({
      filename: TASKS,
      boot: { memoryBytes: 8 * MiB },
      maxTasksInFlight: 1,
      piscina: { maxThreads: 2 },
    });
    const k = pool.kernel.vmallocUser(PAGE_SIZE)!;
    const free = spareFrames(pool.kernel);
    const values = [1, 2, 3, 4];
    const done: number[] = [];
    await Promise.all(
      values.map(async (value) => {
        await pool.run({ areas: [k], arg: { value } });
        done.push(value);
      }),
    );
    expect(done).toEqual(values); // one slot: strictly one after the other, in order
    expect(pool.kernel.readKernel(k, 1)[0]).toBe(4);
    expect(spareFrames(pool.kernel)).toBe(free);
    await pool.close();
    expect(
      () => new SabvmPool({ filename: TASKS, kernel: pool.kernel, maxTasksInFlight: 0 }),
    ).toThrow(TypeError);
  });

  it('refuses a kernel with fewer thread slots than its threads need', async () => {
    const small = Kernel.boot({ memoryBytes: 8 * MiB, maxThreads: 3 });
    expect(
      () => new SabvmPool({ filename: TASKS, kernel: small, piscina: { maxThreads: 3 } }),
    ).toThrow(/thread slots/);
    const fits = new SabvmPool({ filename: TASKS, kernel: small, piscina: { maxThreads: 2 } });
    await fits.close();
  });

  it('reaps the kernel attachment of every dead thread, so crashes never use up thread slots', async () => {
    // The main thread holds one slot; two are left for pool threads, and six threads will die.
    const pool = new SabvmPool({
      filename: TASKS,
      boot: { memoryBytes: 8 * MiB, maxThreads: 3 },
      piscina: { maxThreads: 1 },
    });
    const k = pool.kernel.vmallocUser(PAGE_SIZE)!;
    for (let i = 0; i < 6; i++) {
      await expect(pool.run({ areas: [k], name: 'exitThread' })).rejects.toThrow(/exited/);
    }
    await expect(pool.run({ areas: [k], arg: { value: 1 } })).resolves.toBe(PAGE_SIZE);
    await pool.close();
    pool.kernel.checkInvariants();
  });

  it('boots its own kernel, passes the user workerData through, and refuses tasks once closed', async () => {
    const pool = new SabvmPool({
      filename: TASKS,
      boot: { memoryBytes: 8 * MiB },
      workerData: { tenant: 'a' },
      piscina: { maxThreads: 1 },
    });
    const k = pool.kernel.vmallocUser(PAGE_SIZE)!;
    const info = await pool.run<DescribeSelf>({ areas: [k], name: 'describeSelf' });
    expect(info.workerData).toEqual({ tenant: 'a' });
    const proc = pool.createProcess();
    proc.map(k);
    await pool.close();
    expect(proc.alive).toBe(false);
    expect(pool.kernel.addressSpaceIds()).toEqual([]);
    await expect(pool.run({ areas: [k] })).rejects.toThrow(/closed/);
    expect(() => pool.createProcess()).toThrow(/closed/);
  });
});
