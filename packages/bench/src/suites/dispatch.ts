/**
 * Suite `dispatch`: what one task costs to hand to a pool thread and get back, with no work in it —
 * Piscina's `run` (one `postMessage` there and back), against sabvm's pool over its submission and
 * completion rings (the default transport) and over one message per task (`transport: 'message'`).
 *
 * Two ways users submit: one task awaited at a time (a round trip; one thread per pool), and a
 * batch of tasks in flight at once (`Promise.all`; two threads per pool).
 *
 * @module
 */
import { Kernel } from '@sabvm/core';
import type { SabvmPool } from '@sabvm/workers';
import { Piscina } from 'piscina';
import { SuiteBench, type BenchCase, type CaseGroup } from '../harness.js';
import { checkIntegrity } from '../integrity.js';
import type { GroupResult } from '../results.js';
import type { Suite, SuiteContext, SuiteOutput } from './suite.js';
import { workerUrl } from './worker-url.js';

/** Row and group names, shared with the targets. */
export const DISPATCH = {
  roundTrip: 'awaited one at a time (1 thread)',
  pipelined: 'pipelined batch (2 threads)',
  piscina: 'Piscina run',
  ring: 'sabvm pool, rings',
  message: 'sabvm pool, one message per task',
} as const;

/** Tasks per iteration of the pipelined group. */
const BATCH = 256;

/** The `dispatch` suite. */
export const dispatchSuite: Suite = {
  name: 'dispatch',
  title: 'an empty task handed to a pool thread and back',
  rateLabel: 'tasks/s',
  run: runDispatch,
};

interface Pools {
  readonly piscina: Piscina;
  readonly ring: SabvmPool;
  readonly message: SabvmPool;
}

async function makePools(threads: number, kernel: Kernel): Promise<Pools> {
  const workers = await import('@sabvm/workers');
  const options = { minThreads: threads, maxThreads: threads, idleTimeout: 60_000 };
  const filename = workerUrl('./dispatch-task.js', import.meta.url);
  return {
    piscina: new Piscina({
      filename: workerUrl('./dispatch-worker.js', import.meta.url).href,
      ...options,
    }),
    ring: new workers.SabvmPool({ filename, kernel, piscina: options }),
    message: new workers.SabvmPool({ filename, kernel, piscina: options, transport: 'message' }),
  };
}

async function closePools(pools: Pools): Promise<void> {
  await pools.ring.close();
  await pools.message.close();
  await pools.piscina.close();
}

async function runDispatch(ctx: SuiteContext): Promise<SuiteOutput> {
  const bench = new SuiteBench('dispatch', ctx.harness);
  const groups: GroupResult[] = [];
  const integrity = [];
  for (const [name, threads, batch] of [
    [DISPATCH.roundTrip, 1, 1],
    [DISPATCH.pipelined, 2, BATCH],
  ] as const) {
    const kernel = Kernel.boot({ memoryBytes: 16 * 2 ** 20 });
    const free = kernel.stats().freeFrames; // before the pools' rings
    const pools = await makePools(threads, kernel);
    try {
      groups.push(await bench.runGroup(dispatchGroup(name, pools, batch)));
    } finally {
      await closePools(pools);
    }
    integrity.push(checkIntegrity(kernel, free));
  }
  return {
    groups,
    measures: [],
    lines: [],
    notes: [
      `"${DISPATCH.roundTrip}": one task, awaited, then the next; each pool has one thread.`,
      `"${DISPATCH.pipelined}": ${BATCH} tasks submitted at once and awaited together; two threads per pool.`,
      'Every task returns its number argument; the result is checked.',
    ],
    integrity: integrity.find((i) => !i.ok) ?? integrity[0]!,
  };
}

function dispatchGroup(name: string, pools: Pools, batch: number): CaseGroup {
  const check = (got: unknown, want: number, row: string): void => {
    if (got !== want) throw new Error(`dispatch: ${row} returned ${String(got)}, expected ${want}`);
  };
  let n = 0;
  const once = async (run: (arg: number) => Promise<unknown>, row: string): Promise<void> => {
    if (batch === 1) {
      n = (n + 1) & 0xffff;
      check(await run(n), n, row);
      return;
    }
    const all = new Array<Promise<unknown>>(batch);
    for (let i = 0; i < batch; i++) all[i] = run(i);
    const results = await Promise.all(all);
    for (let i = 0; i < batch; i++) check(results[i], i, row);
  };
  const common = { unit: 'tasks', unitsPerIteration: batch, async: true } as const;
  const cases: BenchCase[] = [
    {
      ...common,
      name: DISPATCH.piscina,
      role: 'baseline',
      fn: () => once((arg) => pools.piscina.run(arg), DISPATCH.piscina),
    },
    {
      ...common,
      name: DISPATCH.ring,
      role: 'subject',
      fn: () => once((arg) => pools.ring.run({ arg }), DISPATCH.ring),
    },
    {
      ...common,
      name: DISPATCH.message,
      role: 'control',
      fn: () => once((arg) => pools.message.run({ arg }), DISPATCH.message),
    },
  ];
  return {
    name,
    cases,
    ratios: [
      {
        name: `${DISPATCH.ring} ÷ ${DISPATCH.piscina}`,
        subject: DISPATCH.ring,
        baseline: DISPATCH.piscina,
        kind: 'throughput',
      },
      {
        name: `${DISPATCH.message} ÷ ${DISPATCH.piscina}`,
        subject: DISPATCH.message,
        baseline: DISPATCH.piscina,
        kind: 'throughput',
      },
    ],
  };
}
