/**
 * Suite `workloads`: three ordinary programs, each written with sabvm and as a user writes it
 * today with a raw `SharedArrayBuffer` and offsets, measured side by side (interleaved reps):
 *
 * - **tensor**: allocate a Float32 tensor, fill it on the main thread, two parallel passes by 2
 *   workers (statistics, then normalisation in place), check it on the main thread;
 * - **table**: a read-only lookup table shared by 200 short tasks (a typed view in each);
 * - **churn**: small areas churned to 60% occupancy, then a 16 MiB area: how often it is one
 *   physical run (and that `{ contiguous: true }` never returns a split area).
 *
 * Plus the figures these programs depend on: `vmallocUser(128 MiB)` on never-used frames, and the
 * cost per MiB of the pool's `readOnlyCheck`.
 *
 * @module
 */
import { Kernel, PAGE_SIZE, PROT_READ } from '@sabvm/core';
import type { SabvmPool, SabvmProcess } from '@sabvm/workers';
import { Piscina } from 'piscina';
import { SuiteBench, type CaseGroup } from '../harness.js';
import { checkIntegrity } from '../integrity.js';
import type { GroupResult, Measure } from '../results.js';
import { areaView } from './area-view.js';
import type { Suite, SuiteContext, SuiteOutput } from './suite.js';
import { workerUrl } from './worker-url.js';
import { tensorValue, WORKLOAD_TASKS } from './workloads-protocol.js';
import type { RawTask } from './workloads-raw.js';

const MiB = 2 ** 20;

/** Group, row and measure names, shared with the targets. */
export const WORKLOADS = {
  tensor: 'tensor normalisation',
  table: 'read-only table, 200 tasks',
  sabvm: 'sabvm',
  raw: 'raw SharedArrayBuffer',
  ratio: 'sabvm ÷ raw',
  churn: 'churn to 60%: 16 MiB areas in one run',
  contigSplit: 'contiguous: split areas returned',
  fresh: 'vmallocUser(128 MiB) on never-used frames',
  roCheck: 'readOnlyCheck cost per MiB',
} as const;

/** The `workloads` suite. */
export const workloadsSuite: Suite = {
  name: 'workloads',
  title: 'real programs: sabvm beside the raw SharedArrayBuffer program a user writes today',
  rateLabel: 'runs/s',
  run: runWorkloads,
};

interface Pools {
  readonly kernel: Kernel;
  readonly sabvm: SabvmPool;
  readonly raw: Piscina;
}

async function runWorkloads(ctx: SuiteContext): Promise<SuiteOutput> {
  const { SabvmPool } = await import('@sabvm/workers');
  const tensorBytes = (ctx.quick ? 16 : 128) * MiB;
  const tableBytes = (ctx.quick ? 8 : 64) * MiB;
  const kernel = Kernel.boot({ memoryBytes: 2 * tensorBytes + 2 * tableBytes + 128 * MiB });
  const freeAfterBoot = kernel.stats().freeFrames;
  const threads = { minThreads: 2, maxThreads: 2, idleTimeout: 60_000 };
  const sabvm = new SabvmPool({
    kernel,
    filename: workerUrl('./workloads-task.js', import.meta.url),
    piscina: threads,
  });
  const raw = new Piscina({
    filename: workerUrl('./workloads-raw.js', import.meta.url).href,
    ...threads,
  });
  const pools: Pools = { kernel, sabvm, raw };
  const groups: GroupResult[] = [];
  const measures: Measure[] = [];
  try {
    const bench = new SuiteBench('workloads', ctx.harness);
    ctx.progress('tensor');
    groups.push(await bench.runGroup(tensorGroup(pools, tensorBytes)));
    ctx.progress('table');
    groups.push(await bench.runGroup(tableGroup(pools, tableBytes)));
    ctx.progress('churn');
    measures.push(...churnMeasures(ctx.quick ? 10 : 40));
    ctx.progress('fresh vmallocUser');
    measures.push(freshMeasure(ctx.quick ? 5 : 15));
    ctx.progress('readOnlyCheck');
    measures.push(await roCheckMeasure(kernel, 64 * MiB, ctx.quick ? 5 : 15));
  } finally {
    await sabvm.close();
    await raw.close();
  }
  return {
    groups,
    measures,
    lines: [],
    notes: [
      `tensor: ${tensorBytes / MiB} MiB of Float32, 2 pool threads per side; one run = allocate, fill on the main thread, 2 stats tasks, 2 normalise tasks, check every element on the main thread, free.`,
      'tensor, sabvm: vmallocUser(size, { contiguous: true }), each task maps its half and sees one Float32Array (range.view); the main thread fills and checks through one typed view of the area.',
      `table: ${tableBytes / MiB} MiB of Float32 filled once; one run = 200 tasks (2 threads) of 4096 lookups each; sabvm maps the table read-only once into a long-lived process (createProcess + map) whose tasks read it through range.view(Float32Array); raw passes the buffer in each task message.`,
      'churn: 256 MiB kernel; small areas (1–32 pages) allocated and freed at random around 60% occupancy, a 16 MiB area allocated after each round (the previous one freed first).',
    ],
    integrity: checkIntegrity(kernel, freeAfterBoot),
  };
}

/** Fill, from the main thread, and check every element after normalisation. */
function fill(v: Float32Array): void {
  for (let i = 0; i < v.length; i++) v[i] = tensorValue(i);
}

function check(v: Float32Array, mean: number, std: number): void {
  const inv = 1 / std;
  for (let i = 0; i < v.length; i += 1) {
    const want = Math.fround((Math.fround(tensorValue(i)) - mean) * inv);
    if (Math.abs(v[i]! - want) > 1e-4)
      throw new Error(`tensor: element ${i} is ${v[i]}, not ${want}`);
  }
}

function meanStd(parts: readonly [number, number][], n: number): [number, number] {
  let sum = 0;
  let sq = 0;
  for (const [s, q] of parts) {
    sum += s;
    sq += q;
  }
  const mean = sum / n;
  return [mean, Math.sqrt(Math.max(1e-12, sq / n - mean * mean))];
}

function tensorGroup({ kernel, sabvm, raw }: Pools, bytes: number): CaseGroup {
  const n = bytes / 4;
  const half = bytes / 2;
  return {
    name: WORKLOADS.tensor,
    bytes,
    ratios: [
      { name: WORKLOADS.ratio, subject: WORKLOADS.sabvm, baseline: WORKLOADS.raw, kind: 'time' },
    ],
    cases: [
      {
        name: WORKLOADS.sabvm,
        role: 'subject',
        unit: 'loops',
        unitsPerIteration: 1,
        async: true,
        fn: async () => {
          const kaddr = kernel.vmallocUser(bytes, { contiguous: true });
          if (kaddr === null) throw new Error('tensor: vmallocUser failed');
          try {
            const v = areaView(kernel, kaddr, bytes, Float32Array);
            fill(v);
            const halves = [0, 1].map((i) => ({ kaddr: kaddr + i * half, length: half }));
            const parts = await Promise.all(
              halves.map((h) =>
                sabvm.run<[number, number]>({
                  areas: [{ ...h, prot: PROT_READ }],
                  name: WORKLOAD_TASKS.stats,
                }),
              ),
            );
            const [mean, std] = meanStd(parts, n);
            await Promise.all(
              halves.map((h) =>
                sabvm.run({ areas: [h], name: WORKLOAD_TASKS.normalize, arg: { mean, std } }),
              ),
            );
            check(v, mean, std);
          } finally {
            kernel.vfree(kaddr);
          }
        },
      },
      {
        name: WORKLOADS.raw,
        role: 'baseline',
        unit: 'loops',
        unitsPerIteration: 1,
        async: true,
        fn: async () => {
          const sab = new SharedArrayBuffer(bytes);
          const v = new Float32Array(sab);
          fill(v);
          const halves: RawTask[] = [0, 1].map((i) => ({
            sab,
            start: (i * n) / 2,
            end: ((i + 1) * n) / 2,
          }));
          const parts = await Promise.all(
            halves.map(
              (t) => raw.run(t, { name: WORKLOAD_TASKS.stats }) as Promise<[number, number]>,
            ),
          );
          const [mean, std] = meanStd(parts, n);
          await Promise.all(
            halves.map((t) => raw.run({ ...t, mean, std }, { name: WORKLOAD_TASKS.normalize })),
          );
          check(v, mean, std);
        },
      },
    ],
  };
}

function tableGroup({ kernel, sabvm, raw }: Pools, bytes: number): CaseGroup {
  const TASKS = 200;
  let kaddr: number | null = null;
  let proc: SabvmProcess | undefined;
  const sab = new SharedArrayBuffer(bytes);
  const fillTable = (v: Float32Array): void => {
    for (let i = 0; i < v.length; i++) v[i] = (i % 4096) * 0.5;
  };
  return {
    name: WORKLOADS.table,
    bytes,
    setup: () => {
      kaddr = kernel.vmallocUser(bytes, { contiguous: true });
      if (kaddr === null) throw new Error('table: vmallocUser failed');
      fillTable(areaView(kernel, kaddr, bytes, Float32Array));
      fillTable(new Float32Array(sab));
      // the table is mapped once, read-only, into one long-lived process that runs every task
      proc = sabvm.createProcess();
      proc.map({ kaddr, prot: PROT_READ });
    },
    teardown: async () => {
      await proc?.destroy();
      kernel.vfree(kaddr);
    },
    ratios: [
      { name: WORKLOADS.ratio, subject: WORKLOADS.sabvm, baseline: WORKLOADS.raw, kind: 'time' },
    ],
    cases: [
      {
        name: WORKLOADS.sabvm,
        role: 'subject',
        unit: 'tasks',
        unitsPerIteration: TASKS,
        async: true,
        fn: async () => {
          const owner = proc;
          if (owner === undefined) throw new Error('table: no process');
          await Promise.all(
            Array.from({ length: TASKS }, (_, seed) =>
              owner.run({ name: WORKLOAD_TASKS.lookup, arg: seed }),
            ),
          );
        },
      },
      {
        name: WORKLOADS.raw,
        role: 'baseline',
        unit: 'tasks',
        unitsPerIteration: TASKS,
        async: true,
        fn: async () => {
          await Promise.all(
            Array.from({ length: TASKS }, (_, seed) =>
              raw.run({ sab, start: 0, end: bytes / 4, seed } satisfies RawTask, {
                name: WORKLOAD_TASKS.lookup,
              }),
            ),
          );
        },
      },
    ],
  };
}

/** Churn small areas to 60% occupancy; count 16 MiB areas that came back as one run. */
function churnMeasures(trials: number): Measure[] {
  const kernel = Kernel.boot({ memoryBytes: 256 * MiB });
  const usable = kernel.stats().freeFrames;
  let seed = 0x5eed;
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const isRun = (kaddr: number, pages: number): boolean => {
    const first = kernel.vmallocToPfn(kaddr);
    for (let i = 1; i < pages; i++)
      if (kernel.vmallocToPfn(kaddr + i * PAGE_SIZE) !== (first ?? -2) + i) return false;
    return true;
  };
  const live: { kaddr: number; pages: number }[] = [];
  let used = 0;
  let oneRun = 0;
  let split = 0;
  const bigPages = (16 * MiB) / PAGE_SIZE;
  for (let t = 0; t < trials; t++) {
    for (let step = 0; step < 2000; step++) {
      if (used < 0.6 * usable - 32 || live.length === 0) {
        const pages = 1 + rand(32);
        const kaddr = kernel.vmallocUser(pages * PAGE_SIZE);
        if (kaddr === null) throw new Error('churn: vmallocUser failed');
        live.push({ kaddr, pages });
        used += pages;
      } else {
        const [gone] = live.splice(rand(live.length), 1);
        kernel.vfree(gone?.kaddr ?? null);
        used -= gone?.pages ?? 0;
      }
    }
    const big = kernel.vmallocUser(16 * MiB);
    if (big !== null && isRun(big, bigPages)) oneRun++;
    kernel.vfree(big);
    const contig = kernel.vmallocUser(16 * MiB, { contiguous: true });
    if (contig !== null && !isRun(contig, bigPages)) split++;
    kernel.vfree(contig);
  }
  for (const { kaddr } of live) kernel.vfree(kaddr);
  return [
    {
      name: WORKLOADS.churn,
      value: oneRun / trials,
      unit: 'fraction',
      detail: `${oneRun} of ${trials}; ${kernel.buddyinfo().trim()}`,
    },
    { name: WORKLOADS.contigSplit, value: split, unit: 'areas', detail: `of ${trials}` },
  ];
}

/** The best of `reps` fresh kernels: `vmallocUser(128 MiB)` on frames never handed out. */
function freshMeasure(reps: number): Measure {
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const kernel = Kernel.boot({ memoryBytes: 256 * MiB });
    const t0 = performance.now();
    const kaddr = kernel.vmallocUser(128 * MiB);
    times.push(performance.now() - t0);
    if (kaddr === null) throw new Error('fresh: vmallocUser(128 MiB) failed');
  }
  times.sort((a, b) => a - b);
  return {
    name: WORKLOADS.fresh,
    value: times[0] ?? Number.NaN,
    unit: 'ms',
    detail: `best of ${reps} fresh kernels (boot not timed); median ${(times[Math.floor(reps / 2)] ?? 0).toFixed(2)} ms`,
  };
}

/** What `readOnlyCheck` adds per MiB of read-only mapping: the same task with and without it. */
async function roCheckMeasure(kernel: Kernel, bytes: number, reps: number): Promise<Measure> {
  const { SabvmPool } = await import('@sabvm/workers');
  const filename = workerUrl('./workloads-task.js', import.meta.url);
  const piscina = { minThreads: 1, maxThreads: 1, idleTimeout: 60_000 };
  const plain = new SabvmPool({ kernel, filename, piscina });
  const checked = new SabvmPool({ kernel, filename, piscina, readOnlyCheck: true });
  const kaddr = kernel.vmallocUser(bytes);
  if (kaddr === null) throw new Error('readOnlyCheck: vmallocUser failed');
  const diffs: number[] = [];
  try {
    const area = { kaddr, prot: PROT_READ };
    for (let r = 0; r < reps + 1; r++) {
      let t0 = performance.now();
      await plain.run({ areas: [area], name: WORKLOAD_TASKS.touch });
      const a = performance.now() - t0;
      t0 = performance.now();
      await checked.run({ areas: [area], name: WORKLOAD_TASKS.touch });
      const b = performance.now() - t0;
      if (r > 0) diffs.push((b - a) / (bytes / MiB)); // rep 0 warms both up
    }
  } finally {
    kernel.vfree(kaddr);
    await plain.close();
    await checked.close();
  }
  diffs.sort((x, y) => x - y);
  return {
    name: WORKLOADS.roCheck,
    value: diffs[Math.floor(diffs.length / 2)] ?? Number.NaN,
    unit: 'ms/MiB',
    detail: `median of ${diffs.length} pairs over a ${bytes / MiB} MiB read-only mapping (hash before and after the task)`,
  };
}
