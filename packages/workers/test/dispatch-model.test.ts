// The ring transport against a model: random batches of tasks — arguments of every kind that
// travels differently (a number, nothing, a small object, a large string, a SharedArrayBuffer),
// 0 … 6 areas each (more than an entry holds inline, bad ones among them), aborts before and
// during the run — submitted at once. Each task must settle as the model says, run at most once
// (exactly once when it succeeds), and leave the rings' and the kernel's invariants whole.
import { fc, test } from '@fast-check/vitest';
import { Kernel, PAGE_SIZE, PROT_READ, PROT_WRITE } from '@sabvm/core';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { SabvmError, SabvmPool } from '../src/index.js';
import { MiB, TASKS } from './harness.js';

const RUNS = Number(process.env.SABVM_MODEL_RUNS ?? (process.env.SABVM_LONG === '1' ? 200 : 25));
const MAX_TASKS = 40;

type ArgKind = 'number' | 'none' | 'object' | 'large' | 'shared';
interface AreaPick {
  readonly which: number; // index into the areas, or -1 for a kaddr that is no area
  readonly pages: number | undefined;
  readonly readOnly: boolean | undefined;
}
interface TaskPlan {
  readonly arg: ArgKind;
  readonly areas: readonly AreaPick[];
  readonly abort: 'no' | 'before' | 'soon';
}

const plan: fc.Arbitrary<TaskPlan> = fc.record({
  arg: fc.constantFrom<ArgKind>('number', 'none', 'object', 'large', 'shared'),
  areas: fc.array(
    fc.record({
      which: fc.integer({ min: -1, max: 2 }),
      pages: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
      readOnly: fc.option(fc.boolean(), { nil: undefined }),
    }),
    { maxLength: 6 },
  ),
  abort: fc.constantFrom('no', 'no', 'no', 'before', 'soon'),
});

describe('the ring transport against its model', () => {
  const counts = new Int32Array(new SharedArrayBuffer(4 * MAX_TASKS));
  const kernel = Kernel.boot({ memoryBytes: 16 * MiB });
  const areas: number[] = [];
  let pool: SabvmPool;
  let round = 0;

  beforeAll(() => {
    for (let i = 0; i < 3; i++) {
      const kaddr = kernel.vmallocUser(4 * PAGE_SIZE)!;
      kernel.writeKernel(kaddr, new Uint8Array([10 + i]));
      areas.push(kaddr);
    }
    pool = new SabvmPool({
      kernel,
      filename: TASKS,
      workerData: { counts: counts.buffer },
      piscina: { maxThreads: 2 },
      maxTasksInFlight: 24,
    });
  });
  afterAll(async () => {
    await pool.close();
    kernel.checkInvariants();
  });

  test.prop([fc.array(plan, { minLength: 1, maxLength: MAX_TASKS })], { numRuns: RUNS })(
    'settles every task as the model says, runs each at most once, and keeps the invariants',
    async (plans) => {
      round++;
      counts.fill(0);
      const tasks = plans.map((p, id) => {
        const spec = p.areas.map((a) => ({
          kaddr: a.which < 0 ? 12345 : areas[a.which]!,
          ...(a.pages === undefined ? {} : { length: a.pages * PAGE_SIZE }),
          ...(a.readOnly === undefined
            ? {}
            : { prot: a.readOnly ? PROT_READ : PROT_READ | PROT_WRITE }),
        }));
        const arg =
          p.arg === 'number'
            ? id
            : p.arg === 'none'
              ? undefined
              : p.arg === 'object'
                ? { id, round, tag: `t${id}` }
                : p.arg === 'large'
                  ? { id, text: 'y'.repeat(5000 + id) }
                  : { id, shared: new SharedArrayBuffer(8) };
        const controller = new AbortController();
        if (p.abort === 'before') controller.abort();
        const promise = pool.run({ areas: spec, name: 'model', arg, signal: controller.signal });
        if (p.abort === 'soon')
          queueMicrotask(() => {
            controller.abort();
          });
        return { p, id, arg, promise };
      });
      pool.checkInvariants(); // while the threads work
      const outcomes = await Promise.allSettled(tasks.map((t) => t.promise));
      outcomes.forEach((outcome, i) => {
        const { p, id, arg } = tasks[i]!;
        const ran = counts[id]!;
        expect(ran).toBeLessThanOrEqual(1);
        if (p.abort === 'before') {
          expect(outcome).toMatchObject({ status: 'rejected', reason: { name: 'AbortError' } });
          expect(ran).toBe(0);
          return;
        }
        const bad = p.areas.find((a) => a.which < 0 || (a.pages !== undefined && a.pages > 4));
        if (outcome.status === 'rejected' && p.abort === 'soon') {
          // aborted in time, or refused its mapping first
          const name = (outcome.reason as Error).name;
          expect(name).toBe(
            bad === undefined || name === 'AbortError' ? 'AbortError' : 'SabvmError',
          );
          return;
        }
        if (bad !== undefined) {
          expect(outcome.status).toBe('rejected');
          const error = (outcome as PromiseRejectedResult).reason as SabvmError;
          expect(error).toBeInstanceOf(SabvmError);
          expect(error.code).toBe('EINVAL');
          expect(ran).toBe(0);
          return;
        }
        expect(outcome).toEqual({
          status: 'fulfilled',
          value: {
            arg:
              p.arg === 'shared' ? { id, shared: expect.any(SharedArrayBuffer) as unknown } : arg,
            ranges: p.areas.map((a) => [
              (a.pages ?? 4) * PAGE_SIZE,
              a.readOnly === true ? PROT_READ : PROT_READ | PROT_WRITE,
              10 + a.which,
            ]),
          },
        });
        if (id >= 0 && p.arg !== 'none') expect(ran).toBe(1);
      });
      pool.checkInvariants();
      for (const mm of pool.threadAddressSpaceIds) expect(kernel.addressSpace(mm).maps()).toBe('');
    },
    120_000,
  );
});
