/**
 * Worker of the `scaling` suite: attaches the kernel and, each round, maps and unmaps its own
 * range (`mmap` + `remapPartial` + `munmap`) `OPS` times in its own or the shared address space.
 *
 * @module
 */
import { workerData } from 'node:worker_threads';
import {
  Kernel,
  MAP_FIXED,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
  remapPartial,
  type AddressSpace,
} from '@sabvm/core';
import { Ctl, ERROR_THROWN, Mode, type ScalingWorkerData } from './scaling-protocol.js';

const data = workerData as ScalingWorkerData;
const kernel = Kernel.attach(data.handle);
const ctl = new Int32Array(data.ctl);
const times = new Float64Array(data.times);
const own = kernel.addressSpace(data.ownMm);
const shared = kernel.addressSpace(data.sharedMm);

/** One operation: map this thread's area at its address, then unmap it. 0 or -errno. */
function mapUnmap(mm: AddressSpace): number {
  const uaddr = mm.mmap(data.uaddr, data.bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED);
  if (uaddr < 0) return uaddr;
  const vma = mm.findVma(uaddr);
  if (vma === null) return -1;
  const rc = remapPartial(vma, uaddr, data.kaddr, data.bytes);
  const un = mm.munmap(uaddr, data.bytes);
  return rc !== 0 ? rc : un;
}

function round(): void {
  const k = Atomics.load(ctl, Ctl.K);
  if (data.index >= k) return;
  const mm = Atomics.load(ctl, Ctl.MODE) === Mode.OWN ? own : shared;
  const ops = Atomics.load(ctl, Ctl.OPS);
  Atomics.add(ctl, Ctl.ARRIVED, 1);
  while (Atomics.load(ctl, Ctl.ARRIVED) < k) {
    // Start barrier: spin until every participant has arrived, so all start together.
  }
  times[data.index * 2] = performance.timeOrigin + performance.now();
  try {
    for (let i = 0; i < ops; i++) {
      const rc = mapUnmap(mm);
      if (rc !== 0) {
        Atomics.compareExchange(ctl, Ctl.ERROR, 0, rc);
        break;
      }
    }
  } catch {
    Atomics.compareExchange(ctl, Ctl.ERROR, 0, ERROR_THROWN);
  }
  times[data.index * 2 + 1] = performance.timeOrigin + performance.now();
  Atomics.add(ctl, Ctl.DONE, 1);
  Atomics.notify(ctl, Ctl.DONE);
}

Atomics.add(ctl, Ctl.READY, 1);
Atomics.notify(ctl, Ctl.READY);
let seen = 0;
for (;;) {
  Atomics.wait(ctl, Ctl.GO, seen);
  seen = Atomics.load(ctl, Ctl.GO);
  if (Atomics.load(ctl, Ctl.STOP) !== 0) break;
  round();
}
