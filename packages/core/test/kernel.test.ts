import { describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import { Kernel, LAYOUT_VERSION, PAGE_SIZE } from '../src/index.js';

const MiB = 2 ** 20;

function runWorker<T>(script: string, workerData: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL(`./fixtures/${script}`, import.meta.url), { workerData });
    w.once('message', resolve);
    w.once('error', reject);
    w.once('exit', (code) => {
      if (code !== 0) reject(new Error(`worker exited with ${code}`));
    });
  });
}

describe('Kernel.boot', () => {
  it('boots physical memory with every frame but the metadata free', () => {
    const k = Kernel.boot({ memoryBytes: 16 * MiB });
    const s = k.stats();
    expect(s.totalFrames).toBe((16 * MiB) / PAGE_SIZE);
    expect(s.freeFrames).toBe(s.totalFrames - s.metadataFrames);
    expect(s.badFrees).toBe(0);
    k.checkInvariants();
  });

  it('rounds a fractional or unaligned memoryBytes down to whole frames', () => {
    const k = Kernel.boot({ memoryBytes: 16 * MiB + 4095.5 });
    expect(k.stats().totalFrames).toBe((16 * MiB) / PAGE_SIZE);
  });

  it('boots 4 GiB of physical memory with metadata under 1%', () => {
    const k = Kernel.boot({ memoryBytes: 4 * 2 ** 30 });
    const s = k.stats();
    expect(s.totalFrames).toBe(2 ** 20);
    expect(s.metadataFrames / s.totalFrames).toBeLessThan(0.01);
    expect(s.freeFrames).toBe(s.totalFrames - s.metadataFrames);
  });

  it.each([0, -1, Number.NaN, Number.NEGATIVE_INFINITY, 2 ** 60, PAGE_SIZE])(
    'rejects memoryBytes %s with a clear RangeError',
    (memoryBytes) => {
      expect(() => Kernel.boot({ memoryBytes })).toThrow(RangeError);
    },
  );

  it.each([undefined, null, '1048576', {}])('rejects memoryBytes %s with a TypeError', (v) => {
    expect(() => Kernel.boot({ memoryBytes: v as number })).toThrow(TypeError);
  });
});

describe('Kernel.attach', () => {
  it('attaches in the same thread to the same state', () => {
    const k = Kernel.boot({ memoryBytes: 16 * MiB });
    const same = Kernel.attach(k.handle);
    expect(same.stats()).toEqual(k.stats());
    expect(same.mem.tid).not.toBe(k.mem.tid);
  });

  it('refuses a foreign buffer, a bad version and things that are not handles', () => {
    expect(() => Kernel.attach({ buffer: new SharedArrayBuffer(16 * MiB) })).toThrow(/bad magic/);
    expect(() => Kernel.attach({ buffer: new SharedArrayBuffer(16) })).toThrow(/not a sabvm/);
    expect(() => Kernel.attach({} as never)).toThrow(TypeError);
    expect(() => Kernel.attach(null as never)).toThrow(TypeError);
    expect(() => Kernel.attach({ buffer: new ArrayBuffer(8) } as never)).toThrow(TypeError);
    const k = Kernel.boot({ memoryBytes: 16 * MiB });
    new Int32Array(k.handle.buffer)[1] = LAYOUT_VERSION + 1;
    expect(() => Kernel.attach(k.handle)).toThrow(/layout version/);
  });

  it('attaches from a second thread and sees the same frames', async () => {
    const k = Kernel.boot({ memoryBytes: 16 * MiB });
    const before = k.stats();
    const seen = await runWorker<{ totalFrames: number; freeFrames: number; byte: number }>(
      'attach-worker.mjs',
      { handle: k.handle, probe: (before.metadataFrames + 1) * PAGE_SIZE + 7 },
    );
    expect(seen.totalFrames).toBe(before.totalFrames);
    expect(seen.freeFrames).toBe(before.freeFrames);
    // the worker wrote a byte into a frame; the main thread sees it with no copy
    expect(new Uint8Array(k.handle.buffer)[(before.metadataFrames + 1) * PAGE_SIZE + 7]).toBe(
      seen.byte,
    );
  });
});
