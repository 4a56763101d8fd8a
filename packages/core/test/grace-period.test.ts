import { describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import {
  Kernel,
  MAP_FIXED,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  remapPartial,
} from '../src/index.js';
import { LONG, envInt } from './helpers/reliability.js';

const MiB = 2 ** 20;

/**
 * The grace-period rule, under the interleaving that breaks it when a reclaim looks for readers
 * before it takes the deferred list: one thread replaces a 1-page mapping of a freed area again and
 * again (each replacement releases the old frame, and the next vmallocUser may take it), while
 * readers check inside their sections that the page they see never changes.
 */
const seconds = envInt('SABVM_GRACE_SECONDS', LONG ? 60 : 4);

describe('the grace-period rule under a remapper and four readers', () => {
  it(
    'a view taken inside a read section never changes until the section ends',
    async () => {
      const k = Kernel.boot({ memoryBytes: 8 * MiB });
      const boot = k.stats();
      const mm = k.createAddressSpace()!;
      const uaddr = mm.mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED);
      const stamp = (kaddr: number, n: number): void => {
        k.writeKernel(kaddr, new Uint8Array(new Int32Array(1024).fill(n).buffer));
      };
      let kaddr = k.vmallocUser(PAGE_SIZE)!;
      stamp(kaddr, 1);
      expect(remapPartial(mm.findVma(uaddr)!, uaddr, kaddr, PAGE_SIZE)).toBe(0);
      k.vfree(kaddr); // the page lives on through the mapping alone (an orphan)
      const ctl = new Int32Array(new SharedArrayBuffer(4));
      const readers = Array.from({ length: 4 }, () => {
        const w = new Worker(new URL('./fixtures/section-reader.mjs', import.meta.url), {
          workerData: { handle: k.handle, mmId: mm.id, uaddr, ctl },
        });
        return new Promise<[number, number]>((resolve, reject) => {
          w.once('message', resolve);
          w.once('error', reject);
        });
      });
      const deadline = Date.now() + seconds * 1000;
      let n = 1;
      let failed = '';
      while (Date.now() < deadline && failed === '') {
        for (let i = 0; i < 200; i++) {
          const next = k.vmallocUser(PAGE_SIZE);
          if (next === null) {
            failed = 'vmallocUser: out of memory';
            break;
          }
          kaddr = next;
          stamp(kaddr, ++n);
          if (mm.mmap(uaddr, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED) !== uaddr)
            failed = 'mmap MAP_FIXED failed';
          if (remapPartial(mm.findVma(uaddr)!, uaddr, kaddr, PAGE_SIZE) !== 0)
            failed = 'remap failed';
          k.vfree(kaddr);
        }
      }
      Atomics.store(ctl, 0, 1);
      const results = await Promise.all(readers);
      expect(failed).toBe('');
      const sections = results.reduce((s, r) => s + r[0], 0);
      const changed = results.reduce((s, r) => s + r[1], 0);
      console.log(`sections ${sections}, changed ${changed}, replacements ${n}`);
      expect(sections).toBeGreaterThan(1000);
      expect(changed, `${changed} of ${sections} sections saw their page change`).toBe(0);
      mm.destroy();
      // the last reader out released what it held back
      expect(k.stats().deferredFrames).toBe(0);
      expect(k.stats().freeFrames).toBe(boot.freeFrames);
      k.checkInvariants();
    },
    (seconds + 60) * 1000,
  ); // the run itself, and time to start and stop the readers
});
