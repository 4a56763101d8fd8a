/**
 * The ring suite's fresh-worker stream: each of its programs delivers every record once, in
 * order, with its value, and a run whose worker fails rejects at once instead of waiting.
 */
import { describe, expect, it } from 'vitest';
import { Kernel } from '@sabvm/core';
import {
  recordCounter,
  runRaw,
  runSabvm,
  runSabvmRead,
  runTransfer,
  type Tally,
} from '../src/suites/stream.js';
import { StreamMode } from '../src/suites/stream-protocol.js';
import { runSmallRaw, runSmallRead } from '../src/suites/stream-small.js';

const COUNT = 50_000;

describe('the fresh-worker stream', () => {
  const kernel = Kernel.boot({ memoryBytes: 16 * 2 ** 20 });
  const rb = kernel.ringbufCreate(2 ** 20)!;
  const t: Tally = { got: 0, bad: 0, sum: 0 };
  const onRecord = recordCounter(kernel, t);

  it('sabvm, the hand-written ring and transferred batches each deliver every record once', async () => {
    for (const run of [
      () => runSabvm(kernel, rb, COUNT, t, onRecord),
      () => runSabvm(kernel, rb, COUNT, t, onRecord, StreamMode.SABVM_BULK),
      () => runSabvmRead(kernel, rb, COUNT, t),
      () => runRaw(COUNT, t),
      () => runTransfer(COUNT, t),
    ]) {
      const ms = await run();
      expect(ms).toBeGreaterThan(0);
      expect(ms).toBeLessThan(30_000);
      expect(t).toEqual({ got: COUNT, bad: 0, sum: (COUNT * (COUNT - 1)) / 2 });
    }
    kernel.checkInvariants();
  });

  it('the 24-byte programs each deliver every record once, with its value and kind', async () => {
    // a count that is no multiple of 4, of 42 or of 64: the kinds' total, the last pack and the
    // last bulk are partial
    const n = 50_003;
    for (const run of [
      () => runSmallRead(kernel, rb, n, t, StreamMode.SMALL_BULK),
      () => runSmallRead(kernel, rb, n, t, StreamMode.SMALL_PACKED),
      () => runSmallRaw(n, t, 24),
      () => runSmallRaw(n, t, 32),
    ]) {
      const ms = await run();
      expect(ms).toBeGreaterThan(0);
      expect(ms).toBeLessThan(30_000);
      expect(t).toEqual({ got: n, bad: 0, sum: (n * (n - 1)) / 2 });
    }
    kernel.checkInvariants();
  });

  it('rejects a run whose records come out of order', async () => {
    const skewed = (_m: Uint8Array, offset: number): void => {
      onRecord(_m, offset);
      if (t.got === 10) t.got++; // as if a record were lost
    };
    await expect(runSabvm(kernel, rb, COUNT, t, skewed)).rejects.toThrow(/out of order/);
  });

  it('rejects at once when the ring is gone (its worker cannot open it)', async () => {
    const other = Kernel.boot({ memoryBytes: 16 * 2 ** 20 });
    const gone = other.ringbufCreate(2 ** 20)!;
    gone.free(); // the worker finds no ring and throws
    const t0 = Date.now();
    await expect(runSabvm(other, gone, COUNT, t, onRecord)).rejects.toThrow();
    await expect(runSabvmRead(other, gone, COUNT, t)).rejects.toThrow();
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});
