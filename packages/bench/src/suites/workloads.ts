/**
 * Suite `workloads`: ordinary programs, each written with sabvm and as a user writes it today —
 * with a raw `SharedArrayBuffer` and offsets, and by transferring an `ArrayBuffer` to each task
 * (`postMessage` with a transfer list) — measured side by side (interleaved reps):
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
import { MessageChannel } from 'node:worker_threads';
import { Kernel, PAGE_SIZE, PROT_READ, type RingBuf } from '@sabvm/core';
import type { SabvmPool, SabvmProcess } from '@sabvm/workers';
import { Piscina } from 'piscina';
import { SuiteBench, type CaseGroup, type RatioSpec } from '../harness.js';
import { checkIntegrity } from '../integrity.js';
import type { GroupResult, Measure } from '../results.js';
import type { Suite, SuiteContext, SuiteOutput } from './suite.js';
import { workerUrl } from './worker-url.js';
import { waitAsyncAlive } from './wait-async.js';
import {
  RawRing,
  RECORD_BYTES,
  recordValue,
  tensorValue,
  WORKLOAD_TASKS,
  type RecordsTask,
} from './workloads-protocol.js';
import type { MoveResult, RawTask } from './workloads-raw.js';

const MiB = 2 ** 20;

/** Group, row and measure names, shared with the targets. */
export const WORKLOADS = {
  tensor: 'tensor normalisation',
  table: 'read-only table, 200 tasks',
  sabvm: 'sabvm',
  raw: 'raw SharedArrayBuffer',
  transfer: 'transfer ArrayBuffer',
  ratio: 'sabvm ÷ raw',
  ratioTransfer: 'sabvm ÷ transfer',
  records: 'records to the main thread, 2 producers',
  churn: 'churn to 60%: 16 MiB areas in one run',
  contigSplit: 'contiguous: split areas returned',
  fresh: 'vmallocUser(128 MiB) on never-used frames',
  freshBoot: 'Kernel.boot(256 MiB) before it',
  roCheck: 'readOnlyCheck cost per MiB',
} as const;

/** The `workloads` suite. */
export const workloadsSuite: Suite = {
  name: 'workloads',
  title:
    'real programs: sabvm beside the raw SharedArrayBuffer and the transfer programs a user writes today',
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
    ctx.progress('records');
    groups.push(await bench.runGroup(recordsGroup(pools, ctx.quick ? 20_000 : 100_000)));
    ctx.progress('churn');
    measures.push(...churnMeasures(ctx.quick ? 10 : 40));
    ctx.progress('fresh vmallocUser');
    measures.push(...freshMeasures(ctx.quick ? 5 : 15));
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
      'transfer: the same programs with ArrayBuffers moved to each task in the postMessage transfer list and moved back with the result (Piscina.move): tensor, one buffer per half, moved out and back for each pass; table, the one buffer moved into each task in turn, so its 200 tasks run one at a time (a buffer has one owner).',
      `records: 16-byte records (producer id, sequence number, a Float64), 2 producer tasks; the main thread checks each producer's order and every value. sabvm: one BPF ring buffer of ${RECORDS_RING_BYTES / 1024} KiB (kernel.ringbufCreate), producers write each record in place where batchReserveWait says (published a chunk at a time, as RB_BATCH), the main thread reads it with pollAt. raw: a hand-written single-producer ring per producer in a SharedArrayBuffer (${RECORDS_RING_BYTES / 2048} KiB each), Atomics positions, a wake-up per 256 records. transfer: batches of 256 records, each a new ArrayBuffer posted to a MessagePort with its transfer list.`,
      'churn: 256 MiB kernel; small areas (1–32 pages) allocated and freed at random around 60% occupancy, a 16 MiB area allocated after each round (the previous one freed first).',
    ],
    integrity: checkIntegrity(kernel, freeAfterBoot),
  };
}

/** Fill, from the main thread, elements `[first, first + v.length)` of the tensor. */
function fill(v: Float32Array, first = 0): void {
  for (let i = 0; i < v.length; i++) v[i] = tensorValue(first + i);
}

/** Check every element after normalisation (`v` holds elements from `first`). */
function check(v: Float32Array, mean: number, std: number, first = 0): void {
  const inv = 1 / std;
  for (let i = 0; i < v.length; i += 1) {
    const want = Math.fround((Math.fround(tensorValue(first + i)) - mean) * inv);
    if (Math.abs(v[i]! - want) > 1e-4)
      throw new Error(`tensor: element ${first + i} is ${v[i]}, not ${want}`);
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
      {
        name: WORKLOADS.ratioTransfer,
        subject: WORKLOADS.sabvm,
        baseline: WORKLOADS.transfer,
        kind: 'time',
      },
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
            const v = kernel.view(kaddr, bytes, Float32Array);
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
      {
        name: WORKLOADS.transfer,
        role: 'baseline',
        unit: 'loops',
        unitsPerIteration: 1,
        async: true,
        fn: async () => {
          // one buffer per half: a transfer moves a whole buffer to one task
          let bufs = [0, 1].map((i) => {
            const buf = new ArrayBuffer(half);
            fill(new Float32Array(buf), (i * n) / 2);
            return buf;
          });
          const pass = async <R>(name: string, extra: object): Promise<R[]> => {
            const back = await Promise.all(
              bufs.map(
                (buf) =>
                  raw.run({ buf, ...extra }, { name, transferList: [buf] }) as Promise<
                    MoveResult<R>
                  >,
              ),
            );
            bufs = back.map((b) => b.buf);
            return back.map((b) => b.result);
          };
          const [mean, std] = meanStd(
            await pass<[number, number]>(WORKLOAD_TASKS.statsMove, {}),
            n,
          );
          await pass<number>(WORKLOAD_TASKS.normalizeMove, { mean, std });
          bufs.forEach((buf, i) => {
            check(new Float32Array(buf), mean, std, (i * n) / 2);
          });
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
  let moved = new ArrayBuffer(bytes);
  const fillTable = (v: Float32Array): void => {
    for (let i = 0; i < v.length; i++) v[i] = (i % 4096) * 0.5;
  };
  return {
    name: WORKLOADS.table,
    bytes,
    setup: () => {
      kaddr = kernel.vmallocUser(bytes, { contiguous: true });
      if (kaddr === null) throw new Error('table: vmallocUser failed');
      fillTable(kernel.view(kaddr, bytes, Float32Array));
      fillTable(new Float32Array(sab));
      fillTable(new Float32Array(moved));
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
      {
        name: WORKLOADS.ratioTransfer,
        subject: WORKLOADS.sabvm,
        baseline: WORKLOADS.transfer,
        kind: 'time',
      },
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
      {
        name: WORKLOADS.transfer,
        role: 'baseline',
        unit: 'tasks',
        unitsPerIteration: TASKS,
        async: true,
        fn: async () => {
          // one owner at a time: each task gets the table by transfer and gives it back
          for (let seed = 0; seed < TASKS; seed++) {
            const back = (await raw.run(
              { buf: moved, seed },
              { name: WORKLOAD_TASKS.lookupMove, transferList: [moved] },
            )) as MoveResult<number>;
            moved = back.buf;
          }
        },
      },
    ],
  };
}

/** Bytes of record data in flight on each side of the records program (all rings together). */
const RECORDS_RING_BYTES = 256 * 1024;

/** The main thread's check of the records: each producer's in order, every value right. */
class RecordCheck {
  seen = 0;
  private readonly next = [0, 0];

  constructor(private readonly count: number) {}

  add(id: number, seq: number, value: number): void {
    if (seq !== this.next[id] || value !== recordValue(id, seq))
      throw new Error(`records: producer ${id} sent ${seq} (${value}), expected ${this.next[id]}`);
    this.next[id] = seq + 1;
    this.seen++;
  }

  get done(): boolean {
    return this.seen === 2 * this.count;
  }
}

/** The first failure of `tasks`, as soon as it happens (the consumer loops check it). */
function failureOf(tasks: readonly Promise<unknown>[]): { error: Error | undefined } {
  const box: { error: Error | undefined } = { error: undefined };
  for (const t of tasks)
    t.catch((e: unknown) => {
      box.error ??= e instanceof Error ? e : new Error(String(e));
    });
  return box;
}

function recordsGroup({ kernel, sabvm, raw }: Pools, count: number): CaseGroup {
  let ring: RingBuf | null = null;
  const cap = RECORDS_RING_BYTES / 2 / RECORD_BYTES; // records per raw ring
  const sabs = [0, 1].map(() => new SharedArrayBuffer(RawRing.HEADER_BYTES + cap * RECORD_BYTES));
  const i32 = new Int32Array(kernel.handle.buffer);
  const f64 = new Float64Array(kernel.handle.buffer);
  const vs = (baseline: string): RatioSpec => ({
    name: `sabvm ÷ ${baseline === WORKLOADS.raw ? 'raw' : 'transfer'}`,
    subject: WORKLOADS.sabvm,
    baseline,
    kind: 'time',
  });
  const common = { unit: 'records', unitsPerIteration: 2 * count, async: true } as const;
  return {
    name: WORKLOADS.records,
    setup: () => {
      ring = kernel.ringbufCreate(RECORDS_RING_BYTES);
      if (ring === null) throw new Error('records: ringbufCreate failed');
    },
    teardown: () => {
      ring?.free();
    },
    ratios: [vs(WORKLOADS.raw), vs(WORKLOADS.transfer)],
    cases: [
      {
        ...common,
        name: WORKLOADS.sabvm,
        role: 'subject',
        fn: async () => {
          const r = ring;
          if (r === null) throw new Error('records: no ring');
          const check = new RecordCheck(count);
          const tasks = [0, 1].map((id) =>
            sabvm.run({
              name: WORKLOAD_TASKS.records,
              arg: { id, count, ring: r.kaddr } satisfies RecordsTask,
            }),
          );
          const failed = failureOf(tasks);
          // each record is read in place by its offset in the kernel's buffer: no copy, no view
          const read = (_mem: Uint8Array, offset: number): void => {
            const w = offset >> 2;
            check.add(i32[w]!, i32[w + 1]!, f64[(offset >> 3) + 1]!);
          };
          while (!check.done) {
            if (failed.error !== undefined) throw failed.error;
            await r.pollAt(read, { timeoutMs: 20 });
          }
          await Promise.all(tasks);
        },
      },
      {
        ...common,
        name: WORKLOADS.raw,
        role: 'baseline',
        fn: async () => {
          const check = new RecordCheck(count);
          const rings = sabs.map((sab) => {
            const ctl = new Int32Array(sab, 0, 2);
            ctl.fill(0);
            return {
              ctl,
              i32: new Int32Array(sab, RawRing.HEADER_BYTES),
              f64: new Float64Array(sab, RawRing.HEADER_BYTES),
            };
          });
          const tasks = sabs.map((sab, id) =>
            raw.run({ id, count, sab } satisfies RecordsTask, { name: WORKLOAD_TASKS.records }),
          );
          const failed = failureOf(tasks);
          while (!check.done) {
            if (failed.error !== undefined) throw failed.error;
            let progressed = false;
            for (const q of rings) {
              const tail = Atomics.load(q.ctl, RawRing.TAIL);
              let head = q.ctl[RawRing.HEAD]!;
              if (head === tail) continue;
              for (; head < tail; head++) {
                const slot = head % cap;
                check.add(q.i32[slot * 4]!, q.i32[slot * 4 + 1]!, q.f64[slot * 2 + 1]!);
              }
              Atomics.store(q.ctl, RawRing.HEAD, head);
              Atomics.notify(q.ctl, RawRing.HEAD);
              progressed = true;
            }
            if (!progressed) {
              const q = rings.find((x) => Atomics.load(x.ctl, RawRing.TAIL) < count) ?? rings[0]!;
              await waitAsyncAlive(q.ctl, RawRing.TAIL, Atomics.load(q.ctl, RawRing.TAIL), 5);
            }
          }
          await Promise.all(tasks);
        },
      },
      {
        ...common,
        name: WORKLOADS.transfer,
        role: 'baseline',
        fn: async () => {
          const check = new RecordCheck(count);
          const channels = [0, 1].map(() => new MessageChannel());
          const received = new Promise<void>((resolve, reject) => {
            for (const { port1 } of channels) {
              port1.on('message', (buf: ArrayBuffer) => {
                try {
                  const a = new Int32Array(buf);
                  const b = new Float64Array(buf);
                  for (let i = 0; i < a.length / 4; i++)
                    check.add(a[i * 4]!, a[i * 4 + 1]!, b[i * 2 + 1]!);
                  if (check.done) resolve();
                } catch (e) {
                  reject(e instanceof Error ? e : new Error(String(e)));
                }
              });
            }
          });
          const tasks = channels.map(({ port2 }, id) =>
            raw.run({ id, count, port: port2 } satisfies RecordsTask, {
              name: WORKLOAD_TASKS.recordsMove,
              transferList: [port2],
            }),
          );
          try {
            await Promise.all([received, ...tasks]);
          } finally {
            for (const { port1 } of channels) port1.close();
          }
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

/**
 * The best of `reps` fresh kernels: `vmallocUser(128 MiB)` on frames never handed out; and the
 * boot before it (which commits the metadata pages the allocation then writes), reported beside.
 */
function freshMeasures(reps: number): Measure[] {
  const times: number[] = [];
  const boots: number[] = [];
  for (let r = 0; r < reps; r++) {
    let t0 = performance.now();
    const kernel = Kernel.boot({ memoryBytes: 256 * MiB });
    boots.push(performance.now() - t0);
    t0 = performance.now();
    const kaddr = kernel.vmallocUser(128 * MiB);
    times.push(performance.now() - t0);
    if (kaddr === null) throw new Error('fresh: vmallocUser(128 MiB) failed');
  }
  const median = (xs: number[]): number => xs[Math.floor(xs.length / 2)] ?? Number.NaN;
  times.sort((a, b) => a - b);
  boots.sort((a, b) => a - b);
  return [
    {
      name: WORKLOADS.fresh,
      value: times[0] ?? Number.NaN,
      unit: 'ms',
      detail: `best of ${reps} fresh kernels (boot not timed); median ${median(times).toFixed(2)} ms`,
    },
    {
      name: WORKLOADS.freshBoot,
      value: median(boots),
      unit: 'ms',
      detail: `median of ${reps}, best ${(boots[0] ?? 0).toFixed(2)} ms; boot commits every metadata page, so the allocation above never page-faults on metadata`,
    },
  ];
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
