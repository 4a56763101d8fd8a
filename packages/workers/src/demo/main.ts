/**
 * The main demo (`npm start` at the root): Piscina threads as user processes transforming one
 * 64 MiB vmalloc area in place, each through its own mapping, with no copy of the data.
 *
 * 1. boot a kernel; `vmallocUser` a 64 MiB area; fill it from the main thread through a
 *    long-lived process's mapping;
 * 2. the structured-clone baseline: the same transformation with the bytes sent to the threads
 *    and back (kept aside to check the sabvm result against);
 * 3. four process-per-task tasks transform a quarter each, in place, through their own mappings;
 * 4. a read-only task verifies the checksum, then tries to write: `SegmentationFault`;
 * 5. the main thread verifies every word; the long-lived process runs one more task;
 * 6. `/proc`-style reports and the hand-off timings.
 * 7. What dispatch costs: an empty task through the pool's rings against Piscina's message.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import { Kernel, PROT_READ, SegmentationFault } from '@sabvm/core';
import { SabvmPool, type Mapping, type SabvmProcess } from '../index.js';
import type { TransformReport } from './task.js';
import { checksumBytes, initialWord, transformWord } from './transform.js';

const MiB = 2 ** 20;
const AREA_BYTES = 64 * MiB;
const TASKS = 4;
const SLICE = AREA_BYTES / TASKS;
const HANDOFF_ROUNDS = 5;

function ms(t: number): string {
  return `${t.toFixed(1)} ms`;
}

function row(label: string, t: number): string {
  return `  ${label.padEnd(58)}${ms(t).padStart(10)}`;
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

function words(view: Uint8Array): Uint32Array {
  return new Uint32Array(view.buffer, view.byteOffset, view.length >>> 2);
}

/** Fill the area through the main thread's own mapping of it: zero-copy views of the frames. */
function fill(owner: SabvmProcess, mapping: Mapping): void {
  let index = 0;
  for (const view of owner.mm.segments(mapping.uaddr, mapping.length, { write: true })) {
    const w = words(view);
    for (let i = 0; i < w.length; i++) w[i] = initialWord(index++);
  }
}

/** Check every word through the kernel's own vmalloc mapping (not the user mappings). */
function verify(kernel: Kernel, kaddr: number, baseline: readonly Uint8Array[]): number {
  const chunk = 4 * MiB;
  let bad = 0;
  for (let off = 0; off < AREA_BYTES; off += chunk) {
    const got = words(kernel.readKernel(kaddr + off, chunk));
    const slice = baseline[Math.floor(off / SLICE)];
    if (slice === undefined) throw new Error('verify: no baseline slice');
    const base = words(slice.subarray(off % SLICE, (off % SLICE) + chunk));
    const first = off / 4;
    for (let i = 0; i < got.length; i++) {
      const want = transformWord(initialWord(first + i));
      if (got[i] !== want || base[i] !== want) bad++;
    }
  }
  return bad;
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const kernel = Kernel.boot({ memoryBytes: 160 * MiB });
  const pool = new SabvmPool({
    kernel,
    filename: new URL('./task.js', import.meta.url),
    piscina: { minThreads: 2, maxThreads: 2 },
  });
  console.log(`sabvm demo: ${pool.piscina.maxThreads} Piscina threads, one kernel of 160 MiB`);

  // 1. The area, filled by the main thread through a long-lived process's mapping.
  const kaddr = kernel.vmallocUser(AREA_BYTES);
  if (kaddr === null) throw new Error('vmallocUser(64 MiB) failed');
  const owner = pool.createProcess();
  const whole = owner.map({ kaddr });
  fill(owner, whole);
  console.log(
    `filled ${AREA_BYTES / MiB} MiB at kaddr ${hex(kaddr)} (process ${owner.id}, uaddr ${hex(whole.uaddr)})`,
  );

  // Warm up: every thread loads the task module before anything is timed.
  await Promise.all(
    [0, 1].map(() => pool.run({ areas: [{ kaddr, length: 4096 }], name: 'touch' })),
  );

  // 2. Baseline: the same work with the bytes sent by structured clone, there and back.
  const copies = Array.from({ length: TASKS }, (_, q) =>
    kernel.readKernel(kaddr + q * SLICE, SLICE),
  );
  let t = performance.now();
  const baseline = await Promise.all(
    copies.map(
      (bytes) => pool.piscina.run(bytes, { name: 'transformClone' }) as Promise<Uint8Array>,
    ),
  );
  const cloneWork = performance.now() - t;

  // 3. Process per task: each maps its quarter read-write and transforms it in place.
  t = performance.now();
  const reports = await Promise.all(
    Array.from({ length: TASKS }, (_, q) =>
      pool.run<TransformReport>({ areas: [{ kaddr: kaddr + q * SLICE, length: SLICE }] }),
    ),
  );
  const sabvmWork = performance.now() - t;
  for (const [q, r] of reports.entries()) {
    console.log(
      `  task ${q}: thread ${r.threadId}, process ${r.mmId}, ${r.bytes / MiB} MiB in place through ${r.segments} segment(s)`,
    );
  }

  // 4. A read-only mapping: the task checks the data, then its write faults.
  let expected = 0;
  for (const view of owner.mm.segments(whole.uaddr, whole.length))
    expected = checksumBytes(view, expected);
  try {
    await pool.run({
      areas: [{ kaddr, prot: PROT_READ }],
      name: 'verifyThenWrite',
      arg: { expected },
    });
    throw new Error('the read-only task did not fault');
  } catch (error) {
    if (!(error instanceof SegmentationFault)) throw error;
    console.log(
      `  read-only task: checksum ${hex(expected)} verified, then ${error.code} at ${hex(error.address)} (a SegmentationFault, rebuilt on the main thread)`,
    );
  }

  // 5. Verify every word from the main thread; the long-lived process runs one more task.
  const bad = verify(kernel, kaddr, baseline);
  if (bad !== 0) throw new Error(`${bad} words differ from the expected result`);
  const ownerSum = await owner.run<number>({ name: 'checksum' });
  if (ownerSum !== expected) throw new Error('the long-lived process saw another checksum');
  const small = kernel.vmallocUser(256 * 1024);
  if (small === null) throw new Error('vmallocUser(256 KiB) failed');
  owner.map({ kaddr: small, prot: PROT_READ });
  console.log(
    `verified all ${AREA_BYTES / 4} words on the main thread; process ${owner.id} ran a task too`,
  );

  // 6. Reports and timings.
  console.log('\n--- meminfo');
  process.stdout.write(kernel.meminfo());
  console.log('--- vmallocinfo');
  process.stdout.write(kernel.vmallocinfo());
  console.log(`--- maps of process ${owner.id}`);
  process.stdout.write(owner.maps());

  const handoff: number[] = [];
  const cloneHandoff: number[] = [];
  const whole64 = kernel.readKernel(kaddr, AREA_BYTES);
  for (let i = 0; i < HANDOFF_ROUNDS; i++) {
    t = performance.now();
    await pool.run({ areas: [{ kaddr, length: AREA_BYTES }], name: 'touch' });
    handoff.push(performance.now() - t);
    t = performance.now();
    await pool.piscina.run(whole64, { name: 'touchClone' });
    cloneHandoff.push(performance.now() - t);
  }
  const sabvmHandoff = median(handoff);
  const clonedHandoff = median(cloneHandoff);
  console.log(`\n--- hand-off of 64 MiB to a thread and back (median of ${HANDOFF_ROUNDS})`);
  console.log(row('sabvm: one ring entry; mmap + remap and munmap in the thread', sabvmHandoff));
  console.log(row('structured clone: 64 MiB there, 64 MiB back', clonedHandoff));
  console.log(`  → ${(clonedHandoff / sabvmHandoff).toFixed(1)}× faster with sabvm`);
  console.log(
    `--- the transform of 64 MiB in ${TASKS} tasks on ${pool.piscina.maxThreads} threads`,
  );
  console.log(row('sabvm: in place, each task through its own mapping', sabvmWork));
  console.log(row('structured clone: 16 MiB there and back per task', cloneWork));

  // 7. Dispatch: an empty task through the pool's rings against Piscina's one message per task.
  const timeEach = async (run: (n: number) => Promise<unknown>, n: number): Promise<number> => {
    // warm-up, long enough for both sides' code to be compiled (colder, a round trip is slower)
    for (let until = performance.now() + 300; performance.now() < until;) await run(0);
    const start = performance.now();
    for (let i = 0; i < n; i++) await run(i);
    return ((performance.now() - start) * 1000) / n;
  };
  const timeBatch = async (run: (n: number) => Promise<unknown>, n: number): Promise<number> => {
    for (let until = performance.now() + 300; performance.now() < until;) {
      await Promise.all(Array.from({ length: 1000 }, (_, i) => run(i))); // warm-up
    }
    const start = performance.now();
    await Promise.all(Array.from({ length: n }, (_, i) => run(i)));
    return n / ((performance.now() - start) / 1000);
  };
  const viaRings = (n: number): Promise<number> => pool.run<number>({ name: 'ping', arg: n });
  const viaPiscina = (n: number): Promise<unknown> => pool.piscina.run(n, { name: 'pingPlain' });
  const ringEach = await timeEach(viaRings, 2000);
  const piscinaEach = await timeEach(viaPiscina, 2000);
  const ringRate = await timeBatch(viaRings, 20_000);
  const piscinaRate = await timeBatch(viaPiscina, 20_000);
  console.log(`--- an empty task, dispatched to ${pool.piscina.maxThreads} threads`);
  console.log(
    `  awaited one at a time: ${ringEach.toFixed(1)} µs through the rings, ${piscinaEach.toFixed(1)} µs with Piscina's message (×${(piscinaEach / ringEach).toFixed(1)})`,
  );
  console.log(
    `  20,000 at once: ${Math.round(ringRate / 1000)} k tasks/s through the rings, ${Math.round(piscinaRate / 1000)} k/s with Piscina's message (×${(ringRate / piscinaRate).toFixed(1)})`,
  );

  await pool.close();
  kernel.vfree(kaddr);
  kernel.vfree(small);
  kernel.checkInvariants();
  const s = kernel.stats();
  console.log(
    `\npool closed; every process destroyed: ${s.totalFrames - s.freeFrames - s.metadataFrames} frames in use, invariants hold (${ms(performance.now() - t0)} in all)`,
  );
}

await main();
