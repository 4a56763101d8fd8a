/**
 * Bad input to every ring call: the kernel-style answer (`null`, `-EINVAL`) and no change to any
 * piece of state (counters, areas, every frame's owner, references and bytes, so the ring's
 * positions and headers too).
 */
import { describe, expect, it } from 'vitest';
import {
  BPF_RB_FORCE_WAKEUP,
  BPF_RB_NO_WAKEUP,
  BPF_RB_PROD_POS,
  EAGAIN,
  EBUSY,
  EINVAL,
  Kernel,
  PAGE_SIZE,
  RB_BATCH,
  RB_BATCH_MAX_RECORD,
  ringbufBulkStride,
  ringbufRecordBytes,
  VMALLOC_START,
  type RingBuf,
} from '../src/index.js';
import { MiB, expectUnchangedSince, snapshot } from './helpers/reliability.js';
import { positionPages } from './helpers/ring-helpers.js';

const BAD_NUMBERS: unknown[] = [
  -1,
  1.5,
  NaN,
  Infinity,
  -Infinity,
  '8',
  8n,
  null,
  undefined,
  {},
  [8],
  2 ** 53,
];
const BAD_FLAGS: unknown[] = [4, -1, 1.5, NaN, '1', 1n, null, {}, 3 | 8, 2 ** 32 + 1];
const BAD_OUTPUT_FLAGS: unknown[] = [
  ...BAD_FLAGS,
  8,
  -RB_BATCH,
  RB_BATCH + 0.5,
  String(RB_BATCH),
  BigInt(RB_BATCH),
  RB_BATCH | 4,
  RB_BATCH * 2,
  2 ** 32 + RB_BATCH,
];

/** A kernel with a ring holding one submitted and one reserved record, and the other records. */
function setup(): { k: Kernel; rb: RingBuf } {
  const k = Kernel.boot({ memoryBytes: 16 * MiB });
  const rb = k.ringbufCreate(4 * PAGE_SIZE)!;
  expect(rb.output(new Uint8Array([1, 2, 3]))).toBe(0);
  expect(rb.reserve(16)).not.toBeNull();
  return { k, rb };
}

/** Call `fn` with `value` where its type says a number goes (the point is that it is not one). */
function call<T>(fn: (v: number) => T, value: unknown): T {
  return fn(value as number);
}

describe('bad input to the ring calls', () => {
  it('ringbufCreate refuses sizes that are not a power of two of at least 2 pages', () => {
    const k = Kernel.boot({ memoryBytes: 16 * MiB });
    const before = snapshot(k);
    const sizes = [
      ...BAD_NUMBERS,
      0,
      PAGE_SIZE,
      3 * PAGE_SIZE,
      2 * PAGE_SIZE + 8,
      2 ** 31,
      32 * MiB,
    ];
    for (const size of sizes) expect(call((v) => k.ringbufCreate(v), size)).toBeNull();
    expectUnchangedSince(k, before);
  });

  it('kernel.ringbuf refuses anything but the base of a live ring', () => {
    const { k, rb } = setup();
    const plain = k.vmallocUser(PAGE_SIZE)!;
    const before = snapshot(k);
    const kaddrs = [
      ...BAD_NUMBERS,
      0,
      VMALLOC_START - PAGE_SIZE,
      rb.kaddr + 1,
      rb.kaddr + PAGE_SIZE,
      rb.kaddr - PAGE_SIZE,
      plain,
    ];
    for (const kaddr of kaddrs) expect(call((v) => k.ringbuf(v), kaddr)).toBeNull();
    expectUnchangedSince(k, before);
  });

  it('reserve answers null for bad lengths and flags, and changes nothing', () => {
    const { k, rb } = setup();
    const before = snapshot(k);
    for (const len of [...BAD_NUMBERS, rb.maxRecordBytes + 1])
      expect(call((v) => rb.reserve(v), len)).toBeNull();
    for (const flags of [...BAD_FLAGS, BPF_RB_NO_WAKEUP, BPF_RB_FORCE_WAKEUP])
      expect(call((v) => rb.reserve(8, v), flags)).toBeNull(); // as Linux: reserve takes no flag
    expectUnchangedSince(k, before);
  });

  it('output answers -EINVAL for what is not a Uint8Array, too long, or bad flags', () => {
    const { k, rb } = setup();
    const before = snapshot(k);
    const fake = Object.create(Uint8Array.prototype) as Uint8Array;
    const lying = new Uint8Array(4);
    Object.defineProperty(lying, 'length', { value: 2 ** 20 });
    for (const bytes of [
      ...BAD_NUMBERS,
      'abc',
      [1, 2],
      new Int8Array(4),
      new DataView(new ArrayBuffer(4)),
      fake,
    ])
      expect(rb.output(bytes as Uint8Array)).toBe(-EINVAL);
    expect(rb.output(new Uint8Array(rb.maxRecordBytes + 1))).toBe(-EINVAL);
    for (const flags of BAD_OUTPUT_FLAGS)
      expect(call((v) => rb.output(new Uint8Array(4), v), flags)).toBe(-EINVAL);
    // RB_BATCH takes the same checks: not a Uint8Array, too long, unreadable
    expect(rb.output([1, 2] as unknown as Uint8Array, RB_BATCH)).toBe(-EINVAL);
    expect(rb.output(new Uint8Array(rb.maxRecordBytes + 1), RB_BATCH)).toBe(-EINVAL);
    expect(rb.output(new Uint16Array(4) as unknown as Uint8Array, RB_BATCH)).toBe(-EINVAL);
    expectUnchangedSince(k, before);
    // a Uint8Array whose own `length` lies is copied by its real length
    expect(rb.output(lying)).toBe(0);
  });

  it('batchReserve and batchReserveWait answer -EINVAL for bad lengths, flags and timeouts, and change nothing', () => {
    const { k, rb } = setup();
    // an open batch of two records: a call that published it would change the ring
    for (const v of [7, 8]) {
      const at = rb.batchReserve(4);
      expect(at).toBeGreaterThanOrEqual(0);
      new DataView(rb.batchBuffer).setUint32(at, v, true);
    }
    const before = snapshot(k);
    const lens = [
      ...BAD_NUMBERS.filter((v) => v !== undefined),
      undefined,
      2 ** 32 - 1, // an unsigned word that is no length
      2 ** 31,
      RB_BATCH_MAX_RECORD + 1, // batched records are at most 1 KiB
    ];
    for (const len of lens) {
      expect(call((v) => rb.batchReserve(v), len)).toBe(-EINVAL);
      expect(call((v) => rb.batchReserveWait(v, 0, 0), len)).toBe(-EINVAL);
    }
    for (const flags of [...BAD_FLAGS, RB_BATCH | 4, RB_BATCH * 2, String(RB_BATCH)]) {
      expect(call((v) => rb.batchReserve(8, v), flags)).toBe(-EINVAL);
      expect(call((v) => rb.batchReserveWait(8, v, 0), flags)).toBe(-EINVAL);
    }
    for (const timeoutMs of ['1', 1n, null, {}, NaN])
      expect(call((v) => rb.batchReserveWait(8, 0, v), timeoutMs)).toBe(-EINVAL);
    expectUnchangedSince(k, before);
    // the two records staged before are still the batch, as they were: published now, 16 bytes each
    const prod = rb.query(BPF_RB_PROD_POS);
    expect(rb.flush()).toBe(0);
    expect(rb.query(BPF_RB_PROD_POS) - prod).toBe(32);
    k.checkInvariants();
  });

  it('batchReserveBulk and batchReserveBulkWait answer -EINVAL for bad lengths, counts, flags and timeouts, and change nothing', () => {
    const { k, rb } = setup();
    // an open batch of two records: a call that published it would change the ring
    const first = rb.batchReserveBulk(4, 2);
    expect(first).toBeGreaterThanOrEqual(0);
    new DataView(rb.batchBuffer).setUint32(first, 7, true);
    new DataView(rb.batchBuffer).setUint32(first + ringbufBulkStride(4), 8, true);
    const before = snapshot(k);
    const lens = [...BAD_NUMBERS, 2 ** 32 - 1, 2 ** 31, RB_BATCH_MAX_RECORD + 1];
    for (const len of lens) {
      expect(call((v) => rb.batchReserveBulk(v, 2), len)).toBe(-EINVAL);
      expect(call((v) => rb.batchReserveBulkWait(v, 2, 0, 0), len)).toBe(-EINVAL);
    }
    // a ring of 16 KiB has chunks of 2 KiB: a run of 254 records of 8 bytes (16 bytes of header
    // and descriptor, then 8 each) fills one
    const counts = [...BAD_NUMBERS, 0, 2 ** 32, 2 ** 32 + 1, 255, 2 ** 31];
    for (const count of counts) {
      expect(call((v) => rb.batchReserveBulk(8, v), count)).toBe(-EINVAL);
      expect(call((v) => rb.batchReserveBulkWait(8, v, 0, 0), count)).toBe(-EINVAL);
    }
    for (const flags of [...BAD_FLAGS, RB_BATCH | 4, RB_BATCH * 2, String(RB_BATCH)]) {
      expect(call((v) => rb.batchReserveBulk(8, 2, v), flags)).toBe(-EINVAL);
      expect(call((v) => rb.batchReserveBulkWait(8, 2, v, 0), flags)).toBe(-EINVAL);
    }
    for (const timeoutMs of ['1', 1n, null, {}, NaN])
      expect(call((v) => rb.batchReserveBulkWait(8, 2, 0, v), timeoutMs)).toBe(-EINVAL);
    expectUnchangedSince(k, before);
    // the largest bulk a chunk holds is taken: the open batch goes out first, then 254 records
    const prod = rb.query(BPF_RB_PROD_POS);
    expect(rb.batchReserveBulk(8, 254)).toBe(16);
    expect(rb.query(BPF_RB_PROD_POS) - prod).toBe(32); // the run of two records of 4 bytes
    expect(rb.flush()).toBe(0);
    expect(rb.query(BPF_RB_PROD_POS) - prod).toBe(32 + 16 + 254 * 8);
    k.checkInvariants();
  });

  it('ringbufBulkStride gives the stride of records reserved in bulk and -EINVAL for a length that is none', () => {
    expect([0, 1, 8, 32, 33, 1024].map(ringbufBulkStride)).toEqual([8, 8, 8, 32, 40, 1024]);
    for (const len of [...BAD_NUMBERS, 2 ** 30 + 1])
      expect(call(ringbufBulkStride, len)).toBe(-EINVAL);
  });

  it('ringbufRecordBytes gives the stride of a record and -EINVAL for a length that is none', () => {
    expect([0, 1, 8, 32, 33, 1024].map(ringbufRecordBytes)).toEqual([8, 16, 16, 40, 48, 1032]);
    for (const len of [...BAD_NUMBERS, 2 ** 30 + 1])
      expect(call(ringbufRecordBytes, len)).toBe(-EINVAL);
  });

  it("batchReserve refuses a record larger than the ring's batches without publishing the open one", () => {
    const k = Kernel.boot({ memoryBytes: 16 * MiB });
    // on a ring of two pages a batch's chunk is 1 KiB: a record of 1017 bytes and more cannot join
    const small = k.ringbufCreate(2 * PAGE_SIZE)!;
    expect(small.batchReserve(1016)).toBeGreaterThanOrEqual(0); // 1024 bytes with its header
    const before = snapshot(k);
    expect(small.batchReserve(1017)).toBe(-EINVAL); // the open batch is not published for it
    expectUnchangedSince(k, before);
    expect(small.flush()).toBe(0);
    expect(small.consume(() => 0)).toBe(1);
  });

  it('output copies a Uint8Array by its real bytes, whatever its own length and subarray say', () => {
    const k = Kernel.boot({ memoryBytes: 16 * MiB });
    const rb = k.ringbufCreate(2 * PAGE_SIZE)!;
    // a lying `length` and a species whose subarray returns 3000 bytes of 0xAA
    const hostile = (len: number): Uint8Array => {
      const bytes = new Uint8Array(len).fill(7);
      Object.defineProperty(bytes, 'length', { value: 4 });
      // a constructor (called with `new` by subarray's species lookup) that returns other bytes
      const evil = function (): Uint8Array {
        return new Uint8Array(3000).fill(0xaa);
      };
      Object.defineProperty(bytes, 'constructor', { value: { [Symbol.species]: evil } });
      return bytes;
    };
    for (const [len, flags] of [
      [8, 0],
      [8, RB_BATCH],
      [2000, 0], // copied outside the reservation lock
      [1500, RB_BATCH], // too large for a batch: output at once
    ] as const) {
      expect(rb.output(hostile(len), flags)).toBe(0);
      rb.flush();
      const got: Uint8Array[] = [];
      expect(rb.consume((v) => void got.push(v.slice()))).toBe(1);
      expect(got[0]).toEqual(new Uint8Array(len).fill(7));
      k.checkInvariants();
    }
    // nothing was written past the records: the rest of the data area is as the ring left it
    const data = k.readKernel(rb.kaddr + 3 * PAGE_SIZE, 2 * PAGE_SIZE);
    expect(data.includes(0xaa)).toBe(false);
  });

  it('output answers -EINVAL for a Uint8Array whose buffer was detached, and keeps working', () => {
    const { k, rb } = setup();
    const before = snapshot(k);
    const detached = (bytes: number): Uint8Array => {
      const view = new Uint8Array(bytes);
      structuredClone(view.buffer, { transfer: [view.buffer] });
      return view;
    };
    // the copy under the reservation lock throws: nothing is reserved and the lock goes free
    expect(rb.output(detached(64))).toBe(-EINVAL);
    // batched: refused before a chunk is reserved, and with a batch open
    expect(rb.output(detached(64), RB_BATCH)).toBe(-EINVAL);
    expectUnchangedSince(k, before);
    expect(rb.output(new Uint8Array([5]), RB_BATCH)).toBe(0);
    const open = snapshot(k);
    expect(rb.output(detached(16), RB_BATCH)).toBe(-EINVAL);
    expectUnchangedSince(k, open);
    rb.flush();
    expect(rb.output(new Uint8Array([7]))).toBe(0);
    k.checkInvariants();
  });

  it('submit and discard answer -EINVAL for bad flags and leave the record open', () => {
    const { k, rb } = setup();
    const rec = rb.reserve(8)!;
    const before = snapshot(k);
    for (const flags of BAD_FLAGS) {
      expect(call((v) => rec.submit(v), flags)).toBe(-EINVAL);
      expect(call((v) => rec.discard(v), flags)).toBe(-EINVAL);
    }
    expectUnchangedSince(k, before);
    expect(rec.submit(BPF_RB_NO_WAKEUP)).toBe(0);
    const after = snapshot(k);
    expect(rec.submit()).toBe(-EINVAL); // committed already
    expect(rec.discard()).toBe(-EINVAL);
    expectUnchangedSince(k, after);
  });

  it('waitReadable and waitReadableSync answer -EINVAL for bad options, leaving an open read open', async () => {
    const { k, rb } = setup();
    expect(rb.readRecord()).toBeGreaterThanOrEqual(0); // a read open: the consumer lock held
    expect(rb.readLength).toBe(3);
    const before = snapshot(k);
    for (const options of [
      null,
      1,
      'x',
      { timeoutMs: NaN },
      { timeoutMs: '1' },
      { timeoutMs: {} },
    ]) {
      const bad = options as unknown as { timeoutMs: number };
      expect(await rb.waitReadable(bad)).toBe(-EINVAL);
      expect(rb.waitReadableSync(bad)).toBe(-EINVAL);
    }
    expectUnchangedSince(k, before);
    expect(k.ringbuf(rb.kaddr)!.consume(() => undefined)).toBe(-EBUSY); // still open
    expect(rb.readLength).toBe(3); // the record it returned
    expect(rb.readRecord()).toBe(-EAGAIN); // it goes on where it was: at the reserved record
    expect(rb.readLength).toBe(0); // the read ended
  });

  it('query, consume, poll, pollSync and their At forms answer -EINVAL for bad arguments, and change nothing', async () => {
    const { k, rb } = setup();
    const before = snapshot(k);
    for (const what of [...BAD_NUMBERS, 4, -0.5])
      expect(call((v) => rb.query(v), what)).toBe(-EINVAL);
    for (const cb of [null, undefined, 1, 'f', {}]) {
      expect(rb.consume(cb as () => void)).toBe(-EINVAL);
      expect(rb.consumeAt(cb as () => void)).toBe(-EINVAL);
      expect(rb.pollSyncAt(cb as () => void)).toBe(-EINVAL);
    }
    expect(await rb.poll(null as unknown as () => void)).toBe(-EINVAL);
    expect(await rb.pollAt(null as unknown as () => void)).toBe(-EINVAL);
    for (const timeoutMs of [NaN, '1', null, {}]) {
      const options = { timeoutMs } as unknown as { timeoutMs: number };
      expect(await rb.poll(() => undefined, options)).toBe(-EINVAL);
      expect(rb.pollSync(() => undefined, options)).toBe(-EINVAL);
      expect(await rb.pollAt(() => undefined, options)).toBe(-EINVAL);
      expect(rb.pollSyncAt(() => undefined, options)).toBe(-EINVAL);
    }
    expectUnchangedSince(k, before);
  });

  it('a consumer position moved past a busy record does not let producers overwrite it', () => {
    const k = Kernel.boot({ memoryBytes: 16 * MiB });
    const rb = k.ringbufCreate(2 * PAGE_SIZE)!;
    const busy = rb.reserve(100)!;
    busy.data.fill(0xee);
    // a consumer that writes garbage: CONSUMER_POS jumps a whole ring ahead
    k.writeKernel(positionPages(rb).cons, new Uint8Array(new Int32Array([2 * PAGE_SIZE]).buffer));
    while (rb.output(new Uint8Array(200).fill(1)) === 0);
    expect(busy.data.every((b) => b === 0xee)).toBe(true);
  });
});
