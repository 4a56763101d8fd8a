import { describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import {
  Kernel,
  MAP_SHARED,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  remapPartial,
} from '../src/index.js';
import { LONG } from './helpers/reliability.js';

const MiB = 2 ** 20;
const RW = PROT_READ | PROT_WRITE;

function waitAbove(ctl: Int32Array, i: number, value: number): void {
  const deadline = Date.now() + 20_000;
  while (Atomics.load(ctl, i) <= value) {
    if (Date.now() > deadline) throw new Error(`ctl[${i}] stuck at ${Atomics.load(ctl, i)}`);
    Atomics.wait(ctl, i, Atomics.load(ctl, i), 50);
  }
}

/**
 * Linux's TLB shootdown makes munmap and mprotect return only once no CPU can still write through
 * the old entries. Here the runtime's own copies are those CPUs: a 16 MiB `mm.write` that passed its
 * check before `mprotect(PROT_NONE)` (or `munmap`) must have landed when the call returns, so the
 * frames hold still from then on.
 */
describe('munmap and mprotect wait for copies already in flight', () => {
  it.each(['mprotect', 'munmap'])(
    'no byte of a write lands after %s has returned',
    async (call) => {
      const rounds = LONG ? 200 : 10;
      const length = 16 * MiB;
      const k = Kernel.boot({ memoryBytes: 64 * MiB });
      const mm = k.createAddressSpace()!;
      const kaddr = k.vmallocUser(length)!;
      const ctl = new Int32Array(new SharedArrayBuffer(12));
      const uaddr = mm.mmap(0, length, RW, MAP_SHARED);
      expect(remapPartial(mm.findVma(uaddr)!, uaddr, kaddr, length)).toBe(0);
      const w = new Worker(new URL('./fixtures/copy-writer.mjs', import.meta.url), {
        workerData: { handle: k.handle, mmId: mm.id, uaddr, length, ctl },
      });
      const exited = new Promise<number>((resolve, reject) => {
        w.once('error', reject);
        w.once('exit', resolve);
      });
      let late = 0;
      for (let round = 1; round <= rounds; round++) {
        const writes = Atomics.load(ctl, 1);
        Atomics.store(ctl, 0, round);
        Atomics.notify(ctl, 0);
        waitAbove(ctl, 1, writes); // at least one whole write landed: the next is under way
        if (call === 'mprotect') expect(mm.mprotect(uaddr, length, PROT_NONE)).toBe(0);
        else expect(mm.munmap(uaddr, length)).toBe(0);
        const after = k.readKernel(kaddr, length);
        waitAbove(ctl, 2, round - 1); // the writer's next write faulted
        const later = k.readKernel(kaddr, length);
        if (!after.every((b, i) => b === later[i])) late++;
        // map it again for the next round
        if (call === 'mprotect') expect(mm.mprotect(uaddr, length, RW)).toBe(0);
        else {
          expect(mm.mmap(uaddr, length, RW, MAP_SHARED | 0x10)).toBe(uaddr);
          expect(remapPartial(mm.findVma(uaddr)!, uaddr, kaddr, length)).toBe(0);
        }
      }
      Atomics.store(ctl, 0, -1);
      Atomics.notify(ctl, 0);
      await exited;
      expect(late, `${late} of ${rounds} rounds saw bytes land after ${call} returned`).toBe(0);
      k.checkInvariants();
    },
  );
});
