import { describe, expect, it } from 'vitest';
import {
  BPF_RB_CONS_POS,
  BPF_RB_PROD_POS,
  EAGAIN,
  EINVAL,
  Kernel,
  PAGE_SIZE,
  SegmentationFault,
  UserRingBuf,
  type AddressSpace,
} from '../src/index.js';
import { MiB } from './helpers/reliability.js';
import { fillRecord, readRecord } from './helpers/ring-helpers.js';

const DATA = 4 * PAGE_SIZE;

function setup(): { k: Kernel; rb: NonNullable<ReturnType<Kernel['ringbufCreate']>> } {
  const k = Kernel.boot({ memoryBytes: 16 * MiB });
  return { k, rb: k.ringbufCreate(DATA)! };
}

function expectFault(fn: () => unknown, code: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(SegmentationFault);
  expect((caught as SegmentationFault).code).toBe(code);
}

/** The permission column of each line of `mm.maps()`. */
function perms(mm: AddressSpace): string[] {
  return mm
    .maps()
    .trim()
    .split('\n')
    .map((line) => line.split(' ')[1]!);
}

describe('a ring mapped into user processes', () => {
  it("gives the consumer's mapping a writable consumer page and read-only rest, a producer's the reverse", () => {
    const { k, rb } = setup();
    const cm = k.createAddressSpace()!;
    const pm = k.createAddressSpace()!;
    const cu = rb.mmap(cm, 'consumer');
    const pu = rb.mmap(pm, 'producer');
    expect(cu).toBeGreaterThan(0);
    expect(pu).toBeGreaterThan(0);
    expect(perms(cm)).toEqual(['rw-s', 'r--s']);
    expect(perms(pm)).toEqual(['r--s', 'rw-s']);
    // the meta page is not mapped: the mapping starts at the consumer page
    expect(cm.pagemap()[0]!.pfn).toBe(k.vmallocToPfn(rb.kaddr + PAGE_SIZE));
    expect(cm.pagemap().length).toBe(2 + DATA / PAGE_SIZE);
    k.checkInvariants();
  });

  it('carries records from a user producer and the kernel to a user consumer', () => {
    const { k, rb } = setup();
    const cm = k.createAddressSpace()!;
    const pm = k.createAddressSpace()!;
    const consumer = UserRingBuf.open(cm, rb.mmap(cm, 'consumer'), DATA);
    const producer = UserRingBuf.open(pm, rb.mmap(pm, 'producer'), DATA);
    const seen: [number, number][] = [];
    for (let seq = 0; seq < 200; seq++) {
      const rec = producer.reserve(40 + (seq % 50))!;
      fillRecord(rec.data, 1, seq);
      expect(rec.submit()).toBe(0);
      const bytes = new Uint8Array(24);
      fillRecord(bytes, 2, seq);
      expect(rb.output(bytes)).toBe(0);
      consumer.consume((v) => void seen.push(readRecord(v)));
    }
    expect(seen.filter(([id]) => id === 1).map(([, s]) => s)).toEqual([...Array(200).keys()]);
    expect(seen.filter(([id]) => id === 2).map(([, s]) => s)).toEqual([...Array(200).keys()]);
    expect(consumer.query(BPF_RB_PROD_POS)).toBe(rb.query(BPF_RB_PROD_POS));
    k.checkInvariants();
  });

  it('lets a user consumer read in its own loop with readRecord; a producer that reads faults', async () => {
    const { k, rb } = setup();
    const cm = k.createAddressSpace()!;
    const pm = k.createAddressSpace()!;
    const consumer = UserRingBuf.open(cm, rb.mmap(cm, 'consumer'), DATA);
    const producer = UserRingBuf.open(pm, rb.mmap(pm, 'producer'), DATA);
    for (let seq = 0; seq < 30; seq++) {
      const bytes = new Uint8Array(32);
      fillRecord(bytes, 1, seq);
      expect(producer.output(bytes)).toBe(0);
    }
    expect(await consumer.waitReadable({ timeoutMs: 0 })).toBe(1);
    const seqs: number[] = [];
    let at: number;
    while ((at = consumer.readRecord()) >= 0)
      seqs.push(readRecord(new Uint8Array(k.handle.buffer, at, consumer.readLength))[1]);
    expect(at).toBe(-EAGAIN);
    expect(seqs).toEqual([...Array(30).keys()]);
    expect(rb.query(BPF_RB_CONS_POS)).toBe(rb.query(BPF_RB_PROD_POS));
    expectFault(() => producer.readRecord(), 'SEGV_ACCERR');
    expectFault(() => producer.waitReadableSync({ timeoutMs: 0 }), 'SEGV_ACCERR');
    k.checkInvariants();
  });

  it('carries runs from a user producer to a user consumer that stops inside them, and the kernel handle goes on from there', () => {
    const { k, rb } = setup();
    const cm = k.createAddressSpace()!;
    const pm = k.createAddressSpace()!;
    const consumer = UserRingBuf.open(cm, rb.mmap(cm, 'consumer'), DATA);
    const producer = UserRingBuf.open(pm, rb.mmap(pm, 'producer'), DATA);
    // one run of 12 records of 24 bytes, written in place in the producer's batch
    const at = producer.batchReserveBulk(24, 12);
    expect(at).toBeGreaterThanOrEqual(0);
    for (let seq = 0; seq < 12; seq++)
      fillRecord(new Uint8Array(producer.batchBuffer, at + seq * 24, 24), 1, seq);
    expect(producer.flush()).toBe(0);
    const cons = rb.query(BPF_RB_CONS_POS);
    const seqs: number[] = [];
    // through the consumer's mapping: a callback that stops at the 4th, then a read of two more
    expect(consumer.consume((v) => (seqs.push(readRecord(v)[1]) === 4 ? -1 : 0))).toBe(-1);
    for (let i = 0; i < 2; i++) {
      const rec = consumer.readRecord();
      expect(rec).toBeGreaterThanOrEqual(0);
      seqs.push(readRecord(new Uint8Array(k.handle.buffer, rec, consumer.readLength))[1]);
    }
    consumer.readDone();
    expect(rb.query(BPF_RB_CONS_POS)).toBe(cons); // still at the run's header
    k.checkInvariants();
    // the kernel's handle reads the same consumer page: the rest of the run, once
    expect(rb.consume((v) => void seqs.push(readRecord(v)[1]))).toBe(6);
    expect(seqs).toEqual([...Array(12).keys()]);
    expect(rb.query(BPF_RB_CONS_POS)).toBe(rb.query(BPF_RB_PROD_POS));
    k.checkInvariants();
  });

  it('faults a consumer that writes the producer position or produces, and a producer that consumes', () => {
    const { k, rb } = setup();
    const cm = k.createAddressSpace()!;
    const pm = k.createAddressSpace()!;
    const cu = rb.mmap(cm, 'consumer');
    const pu = rb.mmap(pm, 'producer');
    expectFault(() => {
      cm.write(cu + PAGE_SIZE, new Uint8Array(4));
    }, 'SEGV_ACCERR');
    expectFault(() => {
      cm.write(cu + 2 * PAGE_SIZE, new Uint8Array(4));
    }, 'SEGV_ACCERR');
    expectFault(() => {
      pm.write(pu, new Uint8Array(4));
    }, 'SEGV_ACCERR');
    const consumer = UserRingBuf.open(cm, cu, DATA);
    const producer = UserRingBuf.open(pm, pu, DATA);
    expectFault(() => consumer.reserve(8), 'SEGV_ACCERR');
    expectFault(() => consumer.output(new Uint8Array(8)), 'SEGV_ACCERR');
    expectFault(() => producer.consume(() => undefined), 'SEGV_ACCERR');
    expect(rb.query(BPF_RB_PROD_POS)).toBe(0); // nothing was written
  });

  it('refuses to open where nothing is mapped, and answers bad arguments', () => {
    const { k, rb } = setup();
    const mm = k.createAddressSpace()!;
    expectFault(() => UserRingBuf.open(mm, 0x10000, DATA), 'SEGV_MAPERR');
    const uaddr = rb.mmap(mm, 'consumer');
    expect(() => UserRingBuf.open(mm, uaddr, 3 * PAGE_SIZE)).toThrow(RangeError);
    expect(() => UserRingBuf.open(mm, -1, DATA)).toThrow(RangeError);
    const notAnMm: unknown = {};
    expect(() => UserRingBuf.open(notAnMm as AddressSpace, uaddr, DATA)).toThrow(TypeError);
    expect(rb.mmap(mm, 'reader' as 'consumer')).toBe(-EINVAL);
    expect(rb.mmap(notAnMm as AddressSpace, 'consumer')).toBe(-EINVAL);
  });

  it("keeps a freed ring's frames for its user mappings until the last is unmapped", () => {
    const { k, rb } = setup();
    const boot = k.stats().freeFrames + ringPages();
    const mm = k.createAddressSpace()!;
    const uaddr = rb.mmap(mm, 'producer');
    const producer = UserRingBuf.open(mm, uaddr, DATA);
    rb.free();
    expect(k.ringbuf(rb.kaddr)).toBeNull();
    expect(producer.output(new Uint8Array(8))).toBe(0); // the mapping still holds the frames
    expect(k.stats().freeFrames).toBeLessThan(boot);
    mm.munmap(uaddr, 2 * PAGE_SIZE + DATA);
    mm.destroy();
    expect(k.stats().freeFrames).toBe(boot);
    k.checkInvariants();
  });
});

/** Frames of one ring of DATA bytes. */
function ringPages(): number {
  return 3 + DATA / PAGE_SIZE;
}
