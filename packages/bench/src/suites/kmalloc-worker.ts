/**
 * Worker of the `kmalloc` suite: attaches the kernel and, each round, either allocates and frees
 * its own 64-byte objects, or (cross-thread modes) allocates objects for the other worker to free,
 * or frees the objects the other worker allocated (a batch per `kfreeBulk`, or one at a time); or,
 * as a control that shares nothing, mallocs and frees in a @thi.ng/malloc pool of its own.
 *
 * @module
 */
import { workerData } from 'node:worker_threads';
import { Kernel } from '@sabvm/core';
import { MemPool } from '@thi.ng/malloc';
import { Ctl } from './crew-protocol.js';
import { serveRounds } from './crew-worker.js';
import {
  BATCH,
  KCtl,
  KMode,
  OBJECT_SIZE,
  RING_BATCHES,
  type KmallocWorkerData,
} from './kmalloc-protocol.js';

const data = workerData as KmallocWorkerData;
const kernel = Kernel.attach(data.handle);
const ctl = new Int32Array(data.ctl);
const ring = new Float64Array(data.ring);
/** This thread's own heap for the control rounds (nothing in it is shared). */
const pool = new MemPool({ buf: new SharedArrayBuffer(2 ** 20) });

function fail(): void {
  Atomics.store(ctl, Ctl.ERROR, -1);
}

/** OPS pairs of kmalloc(64) + kfree. */
function own(ops: number): void {
  for (let i = 0; i < ops; i++) {
    const kaddr = kernel.kmalloc(OBJECT_SIZE);
    if (kaddr === null) {
      fail();
      return;
    }
    kernel.kfree(kaddr);
  }
}

/** OPS pairs of malloc(64) + free in this thread's own @thi.ng/malloc pool. */
function control(ops: number): void {
  for (let i = 0; i < ops; i++) {
    const p = pool.malloc(OBJECT_SIZE);
    if (p === 0) {
      fail();
      return;
    }
    pool.free(p);
  }
}

/**
 * Wait until `ctl[index]` differs from `seen` (the other side moved): a brief spin first (the
 * other side hands a batch over every few microseconds; a sleep and its wake-up cost far more),
 * then `Atomics.wait`.
 */
function waitMove(index: number, seen: number): void {
  const until = performance.now() + SPIN_MS;
  while (Atomics.load(ctl, index) === seen && performance.now() < until);
  while (Atomics.load(ctl, index) === seen && Atomics.load(ctl, Ctl.ERROR) === 0) {
    Atomics.wait(ctl, index, seen, 20);
  }
}
/** How long {@link waitMove} spins before it sleeps. */
const SPIN_MS = 0.05;

/** Allocate OPS objects into the ring, a batch at a time. */
function produce(ops: number): void {
  for (let batch = 0; batch * BATCH < ops; batch++) {
    let tail = Atomics.load(ctl, KCtl.TAIL);
    while (batch - tail >= RING_BATCHES) {
      waitMove(KCtl.TAIL, tail);
      if (Atomics.load(ctl, Ctl.ERROR) !== 0) return;
      tail = Atomics.load(ctl, KCtl.TAIL);
    }
    const base = (batch % RING_BATCHES) * BATCH;
    for (let i = 0; i < BATCH; i++) {
      const kaddr = kernel.kmalloc(OBJECT_SIZE);
      if (kaddr === null) {
        fail();
        return;
      }
      ring[base + i] = kaddr;
    }
    Atomics.store(ctl, KCtl.HEAD, batch + 1);
    Atomics.notify(ctl, KCtl.HEAD);
  }
}

/** Free the OPS objects the producer puts in the ring: a batch per kfreeBulk, or one at a time. */
function consume(ops: number, bulk: boolean): void {
  for (let batch = 0; batch * BATCH < ops; batch++) {
    let head = Atomics.load(ctl, KCtl.HEAD);
    while (head <= batch) {
      waitMove(KCtl.HEAD, head);
      if (Atomics.load(ctl, Ctl.ERROR) !== 0) return;
      head = Atomics.load(ctl, KCtl.HEAD);
    }
    const base = (batch % RING_BATCHES) * BATCH;
    if (bulk) kernel.kfreeBulk(ring, base, base + BATCH);
    else for (let i = 0; i < BATCH; i++) kernel.kfree(ring[base + i]!);
    Atomics.store(ctl, KCtl.TAIL, batch + 1);
    Atomics.notify(ctl, KCtl.TAIL);
  }
}

serveRounds(data.ctl, data.times, data.index, (mode, ops) => {
  if (mode === KMode.OWN) own(ops);
  else if (mode === KMode.CONTROL) control(ops);
  else if (data.index === 0) produce(ops);
  else consume(ops, mode === KMode.CROSS);
  return Atomics.load(ctl, Ctl.ERROR);
});
kernel.detach();
