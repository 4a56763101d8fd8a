/**
 * The ring suite's fresh-worker stream: each of its programs delivers every record once, in
 * order, with its value, and a run whose worker fails rejects at once instead of waiting.
 */
import { describe, expect, it } from 'vitest';
import { BPF_RB_CONS_POS, Kernel } from '@sabvm/core';
import {
  rawRingBuffer,
  recordCounter,
  runRaw,
  runSabvm,
  runSabvmRead,
  runTransfer,
  type Tally,
} from '../src/suites/stream.js';
import { StreamMode } from '../src/suites/stream-protocol.js';
import { runSmallRaw, runSmallRead } from '../src/suites/stream-small.js';
import { runVarRaw, runVarSabvm, runVarSlots } from '../src/suites/stream-var.js';

const COUNT = 50_000;

describe('the fresh-worker stream', () => {
  const kernel = Kernel.boot({ memoryBytes: 16 * 2 ** 20 });
  const rb = kernel.ringbufCreate(2 ** 20)!;
  const t: Tally = { got: 0, bad: 0, sum: 0 };
  const onRecord = recordCounter(kernel, t);
  const raw = rawRingBuffer();

  /**
   * Each run, one after another, takes a time in (0, 30 s) and counts `n` records into `t`, every
   * one in order with its value; the kernel's invariants hold after them all.
   */
  async function eachDelivers(runs: readonly (() => Promise<number>)[], n: number): Promise<void> {
    for (const run of runs) {
      const ms = await run();
      expect(ms).toBeGreaterThan(0);
      expect(ms).toBeLessThan(30_000);
      expect(t).toEqual({ got: n, bad: 0, sum: (n * (n - 1)) / 2 });
    }
    kernel.checkInvariants();
  }

  it('sabvm, the hand-written ring and transferred batches each deliver every record once', async () => {
    await eachDelivers(
      [
        () => runSabvm(kernel, rb, COUNT, t, onRecord),
        () => runSabvm(kernel, rb, COUNT, t, onRecord, StreamMode.SABVM_BULK),
        () => runSabvmRead(kernel, rb, COUNT, t),
        () => runRaw(COUNT, t, raw),
        () => runRaw(COUNT, t, raw), // the buffer again: each run starts its ring afresh
        () => runTransfer(COUNT, t),
      ],
      COUNT,
    );
  });

  it('the 24-byte programs each deliver every record once, with its value and kind', async () => {
    // a count that is no multiple of 4, of 42 or of 64: the kinds' total, the last pack and the
    // last bulk are partial
    const n = 50_003;
    await eachDelivers(
      [
        () => runSmallRead(kernel, rb, n, t, StreamMode.SMALL_BULK),
        () => runSmallRead(kernel, rb, n, t, StreamMode.SMALL_PACKED),
        () => runSmallRaw(n, t, 24, raw),
        () => runSmallRaw(n, t, 32, raw),
      ],
      n,
    );
  });

  it('the programs of records of four lengths each deliver every record once, intact', async () => {
    // 120 003 records of 28 bytes on average (36 with the hand-written ring's length word): 4.3 MB,
    // four laps of either 1 MiB ring. The length-prefixed ring meets its end with tails of 16, 8
    // and 40 bytes to skip and, at record 87 381, exactly at its end (no tail)
    const n = 120_003;
    await eachDelivers(
      [
        () => runVarSabvm(kernel, rb, n, t),
        () => runVarRaw(n, t, raw),
        () => runVarRaw(n, t, raw), // the buffer again: each run starts its ring afresh
        () => runVarSlots(n, t, raw),
      ],
      n,
    );
  });

  it('the bulk and packed programs put records side by side: they take less of the ring than a header each', async () => {
    const n = 50_003;
    let before = rb.query(BPF_RB_CONS_POS);
    await runSmallRead(kernel, rb, n, t, StreamMode.SMALL_BULK);
    const bulk = (rb.query(BPF_RB_CONS_POS) - before) >>> 0;
    before = rb.query(BPF_RB_CONS_POS);
    await runSmallRead(kernel, rb, n, t, StreamMode.SMALL_PACKED);
    const packed = (rb.query(BPF_RB_CONS_POS) - before) >>> 0;
    // a header each would take 32 bytes a record. In bulk: runs of up to a 128 KiB chunk, 16 bytes
    // of header and descriptor each (at least 10 runs: a batch also goes out when a job ends), and
    // at most two skipped tails of a chunk in the 1.2 laps of the 1 MiB ring
    expect(bulk).toBeGreaterThanOrEqual(n * 24 + 10 * 16);
    expect(bulk).toBeLessThan(n * 24 + 64 * 16 + 2 * 128 * 1024);
    // one header per 42: 1016 bytes per 42 records, 1.21 MB, and at most two skipped tails
    expect(packed).toBeGreaterThanOrEqual(n * 24);
    expect(packed).toBeLessThan(n * 32);
  });

  it('a run whose worker throws while the ring is live fails at once with its error', async () => {
    // a ring of 2 pages takes batches of at most 1 KiB: 64 records of 32 bytes are refused, and
    // the worker throws; the main thread's ring stays live and quiet, so only the run's check
    // after each wait can end the run before its 30 s deadline
    const tiny = kernel.ringbufCreate(2 * 4096)!;
    const t0 = Date.now();
    await expect(runSmallRead(kernel, tiny, COUNT, t, StreamMode.SMALL_BULK)).rejects.toThrow(
      /batchReserveBulkWait returned -22/,
    );
    expect(Date.now() - t0).toBeLessThan(5_000);
    tiny.free();
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
