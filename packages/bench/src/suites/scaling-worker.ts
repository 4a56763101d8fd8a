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
import { serveRounds } from './crew-worker.js';
import { Mode, type ScalingWorkerData } from './scaling-protocol.js';

const data = workerData as ScalingWorkerData;
const kernel = Kernel.attach(data.handle);
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

serveRounds(data.ctl, data.times, data.index, (mode, ops) => {
  const mm = mode === Mode.OWN ? own : shared;
  for (let i = 0; i < ops; i++) {
    const rc = mapUnmap(mm);
    if (rc !== 0) return rc;
  }
  return 0;
});
