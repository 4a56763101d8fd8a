import { Worker } from 'node:worker_threads';
import { Kernel } from '@sabvm/core';
import { describe, expect, it } from 'vitest';
import { MiB } from './harness.js';

/** The worker's first message; rejects if it fails or exits first. */
function firstMessage<T>(worker: Worker): Promise<T> {
  return new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => {
      reject(new Error(`worker exited with code ${code} before it answered`));
    });
  });
}

describe('defineTask (worker side)', () => {
  it('touches memory only for a task whose slot still holds its ticket, and releases the slot', async () => {
    const kernel = Kernel.boot({ memoryBytes: 8 * MiB });
    const mm = kernel.createAddressSpace()!;
    const slots = new Int32Array(new SharedArrayBuffer(16));
    slots.set([0, 8, 9, 0]);
    const worker = new Worker(new URL('./fixtures/claim-worker.mjs', import.meta.url), {
      workerData: {
        '@sabvm/workers': { handle: kernel.handle, slots: slots.buffer, user: { liveMm: mm.id } },
      },
    });
    const results = await firstMessage<Record<string, unknown>>(worker);
    expect(results.cancelled).toEqual({ ok: false, cancelled: true });
    expect(results.stale).toEqual({ ok: false, cancelled: true });
    expect(results.staleSlot).toBe(8);
    expect(results.claimed).toEqual({ ok: true, value: 0 });
    expect(results.claimedSlot).toBe(0);
    expect(results.deadMm).toMatchObject({ ok: false, error: { name: 'RangeError' } });
    expect(results.deadMmSlot).toBe(0);
    mm.destroy();
    kernel.checkInvariants();
  });

  it('rejects a task in a thread that no SabvmPool started', async () => {
    const worker = new Worker(
      `import('@sabvm/workers/worker').then(({ defineTask }) =>
         defineTask(() => 1)({ regs: new Float64Array(4), arg: null }))
       .then((v) => require('node:worker_threads').parentPort.postMessage(String(v)),
             (e) => require('node:worker_threads').parentPort.postMessage(e.message));`,
      { eval: true },
    );
    const message = await firstMessage<string>(worker);
    expect(message).toMatch(/not started by a SabvmPool/);
  });
});
