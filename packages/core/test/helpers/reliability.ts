/**
 * Shared helpers of the reliability tests (bad input, exhaustion, thread torture, the model of the
 * whole API): a snapshot of every observable piece of kernel state and a readable diff of two
 * snapshots, a seeded PRNG, the long-mode switches read from the environment, and a worker harness
 * that queues a worker's messages so a test can step it through phases.
 */
import { Worker } from 'node:worker_threads';
import { expect } from 'vitest';
import {
  PAGE_SIZE,
  type Kernel,
  type KernelStats,
  type PagemapEntry,
  type VmArea,
} from '../../src/index.js';

/** Bytes in a MiB. */
export const MiB: number = 2 ** 20;

/** True when the long modes run (`SABVM_LONG=1`, as `npm run test:long` sets). */
export const LONG: boolean = process.env.SABVM_LONG === '1';

/** A non-negative integer from the environment, or `fallback` when unset or malformed. */
export function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  return Number.isSafeInteger(n) && n >= 0 ? n : fallback;
}

/** Seconds each long-mode torture scenario runs (`SABVM_LONG_SECONDS`, default 60). */
export const LONG_SECONDS: number = envInt('SABVM_LONG_SECONDS', 60);

/** One address space as plain data. */
export interface MmSnapshot {
  readonly maps: string;
  readonly pagemap: readonly PagemapEntry[];
  readonly vmas: readonly { start: number; end: number; prot: number; flags: number }[];
}

/** Everything a call that fails (or does nothing) must leave exactly as it was. */
export interface KernelSnapshot {
  readonly stats: KernelStats;
  readonly vmallocinfo: string;
  readonly areas: readonly VmArea[];
  readonly mms: ReadonlyMap<number, MmSnapshot>;
  readonly kinds: Uint8Array;
  readonly owners: Int32Array;
  readonly refcounts: Int32Array;
  /** A copy of every frame after the metadata (the data the kernel hands out), or null. */
  readonly frames: Uint8Array | null;
}

/** Snapshot `k`; with `frames`, also copy the contents of every non-metadata frame. */
export function snapshot(k: Kernel, frames = true): KernelSnapshot {
  const mms = new Map<number, MmSnapshot>();
  for (const id of k.addressSpaceIds()) {
    const mm = k.addressSpace(id);
    mms.set(id, {
      maps: mm.maps(),
      pagemap: mm.pagemap(),
      vmas: mm.vmas().map((v) => ({ start: v.start, end: v.end, prot: v.prot, flags: v.flags })),
    });
  }
  const snap = k.frameSnapshot();
  const stats = k.stats();
  return {
    stats,
    vmallocinfo: k.vmallocinfo(),
    areas: k.vmallocAreas(),
    mms,
    kinds: snap.kinds,
    owners: snap.owners,
    refcounts: snap.refcounts,
    frames: frames ? copyFrames(k, stats.metadataFrames, stats.totalFrames) : null,
  };
}

/** A copy of frames `[first, end)` (a plain `set`: far faster than slicing shared memory). */
function copyFrames(k: Kernel, first: number, end: number): Uint8Array {
  const copy = new Uint8Array((end - first) * PAGE_SIZE);
  copy.set(new Uint8Array(k.handle.buffer, first * PAGE_SIZE, copy.length));
  return copy;
}

/** Byte-equality of two arrays, natively (no copy). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

function firstDifferences(name: string, a: ArrayLike<number>, b: ArrayLike<number>): string[] {
  const out: string[] = [];
  if (a.length !== b.length) return [`${name}: length ${a.length} -> ${b.length}`];
  for (let i = 0; i < a.length && out.length < 8; i++) {
    if (a[i] !== b[i]) out.push(`${name}[${i}]: ${a[i]} -> ${b[i]}`);
  }
  return out;
}

/**
 * The differences between two snapshots, as short readable lines (empty when equal).
 * `badFreesDelta` is how much `stats().badFrees` is expected to have grown.
 */
export function diffSnapshots(a: KernelSnapshot, b: KernelSnapshot, badFreesDelta = 0): string[] {
  const out: string[] = [];
  const expectedStats = { ...a.stats, badFrees: a.stats.badFrees + badFreesDelta };
  for (const key of Object.keys(expectedStats) as (keyof KernelStats)[]) {
    if (expectedStats[key] !== b.stats[key]) {
      out.push(`stats.${key}: expected ${expectedStats[key]}, got ${b.stats[key]}`);
    }
  }
  if (a.vmallocinfo !== b.vmallocinfo) out.push(`vmallocinfo changed:\n${b.vmallocinfo}`);
  if (JSON.stringify(a.areas) !== JSON.stringify(b.areas)) out.push('vmallocAreas() changed');
  const ids = [...a.mms.keys()].join(',');
  if (ids !== [...b.mms.keys()].join(',')) {
    out.push(`live address spaces ${ids} -> ${[...b.mms.keys()].join(',')}`);
  }
  for (const [id, mm] of a.mms) {
    const other = b.mms.get(id);
    if (other === undefined) continue;
    if (mm.maps !== other.maps) out.push(`mm ${id} maps:\n${mm.maps}->\n${other.maps}`);
    if (JSON.stringify(mm.pagemap) !== JSON.stringify(other.pagemap)) {
      out.push(`mm ${id} pagemap changed`);
    }
    if (JSON.stringify(mm.vmas) !== JSON.stringify(other.vmas)) out.push(`mm ${id} VMAs changed`);
  }
  out.push(...firstDifferences('frame kinds', a.kinds, b.kinds));
  out.push(...firstDifferences('frame owners', a.owners, b.owners));
  out.push(...firstDifferences('frame refcounts', a.refcounts, b.refcounts));
  if (a.frames !== null && b.frames !== null && !sameBytes(a.frames, b.frames)) {
    let at = 0;
    while (at < a.frames.length && a.frames[at] === b.frames[at]) at++;
    out.push(`frame contents changed, first at byte ${at} after the metadata`);
  }
  return out;
}

/** Assert that `k` is exactly as in `before` (but for `badFreesDelta`) and its invariants hold. */
export function expectUnchangedSince(k: Kernel, before: KernelSnapshot, badFreesDelta = 0): void {
  expect(diffSnapshots(before, snapshot(k, before.frames !== null), badFreesDelta)).toEqual([]);
  k.checkInvariants();
}

/** A small, fast, seeded PRNG (mulberry32): floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An `Int32Array` over fresh shared memory, for control words shared with workers. */
export function sharedInts(n: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(n * 4));
}

/**
 * A worker thread whose messages are queued: `next()` resolves with the next message, and rejects
 * if the worker fails or exits before sending it.
 */
export class WorkerHarness {
  readonly worker: Worker;
  private readonly queue: unknown[] = [];
  private readonly waiters: { resolve: (m: unknown) => void; reject: (e: Error) => void }[] = [];
  private failure: Error | null = null;
  /** Resolves with the exit code. */
  readonly exited: Promise<number>;

  constructor(script: string, workerData: unknown) {
    this.worker = new Worker(new URL(`../fixtures/${script}`, import.meta.url), { workerData });
    this.worker.on('message', (m: unknown) => {
      const waiter = this.waiters.shift();
      if (waiter === undefined) this.queue.push(m);
      else waiter.resolve(m);
    });
    this.worker.on('error', (e: Error) => {
      this.fail(e);
    });
    this.exited = new Promise((resolve) => {
      this.worker.on('exit', (code: number) => {
        if (code !== 0) this.fail(new Error(`worker ${script} exited with code ${code}`));
        else this.fail(new Error(`worker ${script} exited before sending the expected message`));
        resolve(code);
      });
    });
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const w of this.waiters.splice(0)) w.reject(this.failure);
  }

  /** The next message of the worker. */
  next<T>(): Promise<T> {
    if (this.queue.length > 0) return Promise.resolve(this.queue.shift() as T);
    if (this.failure !== null) return Promise.reject(this.failure);
    return new Promise<T>((resolve, reject) => {
      this.waiters.push({ resolve: resolve as (m: unknown) => void, reject });
    });
  }
}
