/**
 * kmalloc with real threads: objects allocated in one worker and freed in another (remote frees
 * into slabs their allocator still holds, or has let go), shared slab caches found by id, every
 * object's contents checked before its free; a free raced by every worker at once succeeds once;
 * and a worker terminated in the middle of allocating is reaped while another keeps allocating.
 */
import { describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import { Kernel } from '../src/index.js';
import { LONG, MiB } from './helpers/reliability.js';

const WORKERS = 3;

function run(script: string, workerData: unknown): { worker: Worker; done: Promise<unknown> } {
  const worker = new Worker(new URL(`./fixtures/${script}`, import.meta.url), { workerData });
  const done = new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`${script} exited with ${code}`));
      else resolve(undefined);
    });
  });
  return { worker, done };
}

const shared = (bytes: number): SharedArrayBuffer => new SharedArrayBuffer(bytes);

/** Block (the test thread) until `ctl[i]` reaches `target`. */
function waitFor(ctl: Int32Array, i: number, target: number, what: string): void {
  // the long mode's 400,000 allocations per worker take minutes on a loaded machine
  const deadline = Date.now() + (LONG ? 900_000 : 30_000);
  while (Atomics.load(ctl, i) < target) {
    if (Date.now() > deadline) throw new Error(`${what}: stuck at ${Atomics.load(ctl, i)}`);
    Atomics.wait(ctl, i, Atomics.load(ctl, i), 2);
  }
}

/** Objects still allocated, from /proc/slabinfo (active_objs) and the large-kmalloc count. */
function liveObjects(k: Kernel): number {
  return k
    .slabinfo()
    .split('\n')
    .slice(2)
    .filter((l) => l !== '')
    .reduce((sum, l) => sum + Number(l.split(/ +/)[1]), 0);
}

describe('kmalloc across threads', () => {
  it(
    'frees objects in other threads than their allocator, keeps every object intact, and frees a raced object once',
    async () => {
      const k = Kernel.boot({ memoryBytes: 64 * MiB });
      const boot = k.stats();
      const cache = k.kmemCacheCreate('torture_obj', 72)!;
      const slots = new Float64Array(shared(256 * 8));
      const states = new Int32Array(shared(256 * 4));
      const raceCount = 500;
      const race = new Float64Array(shared(raceCount * 8));
      for (let i = 0; i < raceCount; i++) race[i] = k.kmalloc(8 + (i % 300))!;
      const go = new Int32Array(shared(8));
      const iterations = LONG ? 400_000 : 20_000;
      const workers = Array.from({ length: WORKERS }, (_, id) =>
        run('kmalloc-torture-worker.mjs', {
          handle: k.handle,
          id,
          seed: id * 7919 + 1,
          iterations,
          slots,
          states,
          cacheId: cache.id,
          race,
          raceCount,
          go,
        }),
      );
      waitFor(go, 0, WORKERS, 'workers reaching the race');
      Atomics.store(go, 1, 1);
      Atomics.notify(go, 1);
      const reports = (await Promise.all(workers.map((w) => w.done))) as {
        passed: number;
        remoteFreed: number;
      }[];
      const passed = reports.reduce((s, r) => s + r.passed, 0);
      const freedThere = reports.reduce((s, r) => s + r.remoteFreed, 0);
      // every raced object freed exactly once, the other frees counted
      expect(k.stats().badFrees).toBe((WORKERS - 1) * raceCount);
      for (let i = 0; i < raceCount; i++) expect(k.ksize(race[i]!)).toBe(0);
      let left = 0;
      for (let slot = 0; slot < states.length; slot++) {
        if (states[slot] !== 1) continue;
        k.kfree(slots[slot]!);
        left++;
      }
      expect(freedThere + left).toBe(passed);
      expect(freedThere).toBeGreaterThan(0);
      expect(k.stats().badFrees).toBe((WORKERS - 1) * raceCount);
      k.checkInvariants();
      expect(cache.destroy()).toBe(0);
      expect(k.stats()).toEqual({ ...boot, badFrees: (WORKERS - 1) * raceCount });
      k.checkInvariants();
      console.log(
        `kmalloc threads: ${WORKERS} workers × ${iterations} allocations, ${passed} objects handed to another thread, ${(WORKERS - 1) * raceCount} raced frees refused`,
      );
    },
    LONG ? 1_000_000 : undefined,
  );

  it('reaps a worker terminated in the middle of allocating while another keeps allocating, leaking at most its object in flight', async () => {
    const k = Kernel.boot({ memoryBytes: 64 * MiB });
    const boot = k.stats();
    const rounds = LONG ? 60 : 8;
    let leaked = 0;
    for (let round = 0; round < rounds; round++) {
      const record = new Float64Array(shared(4096 * 8));
      const count = new Int32Array(shared(4));
      const ctl = new Int32Array(shared(8));
      const stop = new Int32Array(shared(4));
      const slots = new Float64Array(shared(64 * 8));
      const states = new Int32Array(shared(64 * 4));
      const common = { handle: k.handle, record, count, ctl, slots, states };
      const feeder = run('kmalloc-dead-worker.mjs', {
        ...common,
        id: 1,
        seed: round + 99,
        stop,
        role: 'feeder',
      });
      const victim = run('kmalloc-dead-worker.mjs', {
        ...common,
        id: 0,
        seed: round * 31 + 7,
        stop: new Int32Array(shared(4)),
        role: 'victim',
      });
      victim.done.catch(() => undefined);
      waitFor(ctl, 0, 200 + ((round * 977) % 3000), 'the victim');
      const threadId = victim.worker.threadId;
      await victim.worker.terminate();
      expect(k.reapThread({ threadId })).toBe(1);
      // the feeder goes on allocating after the recovery: nothing of the dead thread is left held
      const at = Atomics.load(ctl, 1);
      waitFor(ctl, 1, at + 500, 'the feeder after the reap');
      Atomics.store(stop, 0, 1);
      await feeder.done;
      k.checkInvariants();
      // free what the dead worker kept and what was still in the slots, as its parent would
      const inSlots = new Set<number>();
      for (let s = 0; s < states.length; s++) if (states[s] === 1) inSlots.add(slots[s]!);
      for (const kaddr of inSlots) k.kfree(kaddr);
      for (let s = 0; s < states.length; s++) {
        // taken by the victim, which died before (or after) freeing it
        if (states[s] === 3 && !inSlots.has(slots[s]!) && k.ksize(slots[s]!) > 0)
          k.kfree(slots[s]!);
      }
      for (let i = 0; i < Atomics.load(count, 0); i++) if (record[i] !== 0) k.kfree(record[i]!);
      expect(k.stats().badFrees).toBe(0);
      const live = liveObjects(k) + (k.stats().kmallocLargeFrames > 0 ? 1 : 0);
      expect(live - leaked, `round ${round}`).toBeLessThanOrEqual(1);
      leaked = live;
      k.checkInvariants();
    }
    if (leaked === 0) expect(k.stats()).toEqual(boot);
    console.log(
      `kmalloc dead threads: ${rounds} victims terminated and reaped, ${leaked} objects in flight leaked`,
    );
  });
});
