// Shared set-up of the workers tests: a kernel, a pool over the fixture task module, and checks.
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Kernel } from '@sabvm/core';
import { expect } from 'vitest';
import { SabvmPool } from '../src/index.js';

export const MiB: number = 2 ** 20;
export const TASKS: URL = new URL('./fixtures/tasks.mjs', import.meta.url);

const built = fileURLToPath(new URL('../dist/worker.js', import.meta.url));
const source = fileURLToPath(new URL('../src/worker.ts', import.meta.url));
if (!existsSync(built) || statSync(built).mtimeMs < statSync(source).mtimeMs) {
  throw new Error(
    'the fixtures run dist/worker.js: build first (npm run build in packages/workers)',
  );
}

export interface Rig {
  readonly kernel: Kernel;
  readonly pool: SabvmPool;
  /** {@link spareFrames} with no process alive (after the test's own vmalloc areas). */
  freeFrames: number;
}

/**
 * Frames free (or freed and waiting for a grace period), plus the page directories and tables
 * held by address spaces: the pool's threads
 * keep one address space each while they serve their rings (empty between tasks, its page tables
 * kept for the next task), so that is what must come back after every task.
 */
export function spareFrames(kernel: Kernel): number {
  const { freeFrames, deferredFrames, pageTableFrames } = kernel.stats();
  return freeFrames + deferredFrames + pageTableFrames;
}

/** Boot a kernel and a pool of real Piscina threads over the fixture tasks. */
export function rig(
  memoryBytes: number = 32 * MiB,
  maxThreads = 2,
  transport: 'ring' | 'message' = 'ring',
): Rig {
  const kernel = Kernel.boot({ memoryBytes });
  const pool = new SabvmPool({
    kernel,
    filename: TASKS,
    piscina: { minThreads: 1, maxThreads },
    transport,
  });
  return { kernel, pool, freeFrames: spareFrames(kernel) };
}

/** A vmallocUser area, with the rig's frame baseline moved past it. */
export function area(r: Rig, bytes: number): number {
  const kaddr = r.kernel.vmallocUser(bytes);
  if (kaddr === null) throw new Error(`vmallocUser(${bytes}) failed`);
  r.freeFrames = spareFrames(r.kernel);
  return kaddr;
}

/**
 * No process left (the pool threads' own address spaces, if any, hold no mapping), every frame
 * back, every invariant holding.
 */
export function expectNoProcessLeft(r: Rig): void {
  const threads = r.pool.threadAddressSpaceIds;
  expect(r.kernel.addressSpaceIds().filter((id) => !threads.includes(id))).toEqual([]);
  for (const id of threads) expect(r.kernel.addressSpace(id).maps()).toBe('');
  expect(spareFrames(r.kernel)).toBe(r.freeFrames);
  r.kernel.checkInvariants();
}

/** Resolve when word `index` of `i32` is no longer `value` (Atomics, no sleeping). */
export async function waitChange(i32: Int32Array, index: number, value: number): Promise<void> {
  const w = Atomics.waitAsync(i32, index, value);
  if (w.async) await w.value;
}
