import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  BPF_RB_AVAIL_DATA,
  BPF_RB_CONS_POS,
  BPF_RB_FORCE_WAKEUP,
  BPF_RB_NO_WAKEUP,
  BPF_RB_PROD_POS,
  BPF_RB_RING_SIZE,
  EAGAIN,
  EBUSY,
  EINVAL,
  Kernel,
  PAGE_SIZE,
  RB_BATCH,
  RINGBUF_HDR_SZ,
  RINGBUF_META_PAGES,
  VM_USERMAP,
} from '../src/index.js';
import { MiB } from './helpers/reliability.js';
import {
  countWaiter,
  fillRecord,
  readRecord,
  setPositions,
  wakeSeq,
} from './helpers/ring-helpers.js';

const DATA = 4 * PAGE_SIZE;

function boot(): Kernel {
  return Kernel.boot({ memoryBytes: 16 * MiB });
}

/** Every record the consumer gets now, copied. */
function drain(rb: ReturnType<Kernel['ringbufCreate']>): Uint8Array[] {
  const out: Uint8Array[] = [];
  expect(rb!.consume((v) => void out.push(v.slice()))).toBe(out.length);
  return out;
}

describe('a ring buffer area', () => {
  it('is a VM_USERMAP area of meta pages and data pages on one contiguous run of frames', () => {
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    const area = k.findVmArea(rb.kaddr)!;
    expect(area.addr).toBe(rb.kaddr);
    expect(area.nrPages).toBe(RINGBUF_META_PAGES + DATA / PAGE_SIZE);
    expect(area.flags & VM_USERMAP).toBe(VM_USERMAP);
    const first = k.vmallocToPfn(rb.kaddr)!;
    for (let p = 0; p < area.nrPages; p++)
      expect(k.vmallocToPfn(rb.kaddr + p * PAGE_SIZE)).toBe(first + p);
    expect(rb.dataBytes).toBe(DATA);
    expect(rb.query(BPF_RB_RING_SIZE)).toBe(DATA);
    expect(rb.maxRecordBytes).toBe(DATA / 2 - RINGBUF_HDR_SZ);
    k.checkInvariants();
  });

  it('shows in /proc/vmallocinfo as bpf_ringbuf_area_alloc, a user-mappable area', () => {
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    const line = k.vmallocinfo().split('\n')[0]!;
    expect(line).toContain(`0x${rb.kaddr.toString(16).padStart(16, '0')}`);
    expect(line).toMatch(/bpf_ringbuf_area_alloc pages=7 vmalloc user$/);
  });

  it('is the same ring from kernel.ringbuf(kaddr), and gone from it once freed', () => {
    const k = boot();
    const boot0 = k.stats();
    const rb = k.ringbufCreate(DATA)!;
    const same = k.ringbuf(rb.kaddr)!;
    expect(same.output(new Uint8Array([7, 8]))).toBe(0);
    expect(drain(rb)).toEqual([new Uint8Array([7, 8])]);
    expect(k.ringbuf(rb.kaddr + PAGE_SIZE)).toBeNull();
    expect(k.ringbuf(k.vmallocUser(PAGE_SIZE)!)).toBeNull(); // an area, not a ring
    same.free();
    expect(k.ringbuf(rb.kaddr)).toBeNull();
    expect(rb.reserve(8)).toBeNull();
    expect(rb.output(new Uint8Array(1))).toBe(-22);
    rb.free(); // a second free is a no-op
    expect(k.stats().vmallocAreas).toBe(boot0.vmallocAreas + 1);
    k.checkInvariants();
  });
});

describe('freeing a ring', () => {
  it("is the ring's own call: vfree of its area is refused and changes nothing", () => {
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    const before = k.stats();
    k.vfree(rb.kaddr);
    expect(k.stats()).toEqual({ ...before, badFrees: before.badFrees + 1 });
    expect(rb.output(new Uint8Array([1, 2, 3]))).toBe(0); // the ring still owns its frames
    expect(drain(rb)).toEqual([new Uint8Array([1, 2, 3])]);
    rb.free();
    expect(k.stats().vmallocAreas).toBe(before.vmallocAreas - 1);
    k.checkInvariants();
  });

  it('leaves every handle to it refusing calls, even once a new ring takes its frames', () => {
    const k = boot();
    const old = k.ringbufCreate(DATA)!;
    const kept = k.ringbuf(old.kaddr)!; // as another thread would hold it
    const batched = k.ringbuf(old.kaddr)!;
    expect(batched.output(new Uint8Array(8), RB_BATCH)).toBe(0);
    batched.flush(); // (this thread's free would drop its open batch anyway)
    const rec = kept.reserve(8)!; // a record reserved on the old ring, still open at its free
    old.free();
    const ring = k.ringbufCreate(DATA)!;
    // the same area and frames: the meta page where the old ring's was
    expect(ring.kaddr).toBe(old.kaddr);
    const reserved = k.stats();
    expect(kept.output(new Uint8Array(8))).toBe(-EINVAL);
    expect(kept.output(new Uint8Array(8), RB_BATCH)).toBe(-EINVAL);
    expect(kept.batchReserve(8)).toBe(-EINVAL);
    expect(kept.reserve(8)).toBeNull();
    expect(kept.consume(() => undefined)).toBe(-EINVAL);
    expect(kept.query(BPF_RB_PROD_POS)).toBe(-EINVAL);
    expect(batched.output(new Uint8Array(8), RB_BATCH)).toBe(-EINVAL);
    expect(kept.flush()).toBe(0);
    kept.free(); // not the new ring's free
    expect(k.stats()).toEqual(reserved);
    expect(ring.query(BPF_RB_PROD_POS)).toBe(0);
    // the old record's submit does not commit the new ring's record that lies where it did
    const fresh = ring.reserve(8)!;
    expect(rec.submit()).toBe(-EINVAL);
    expect(ring.consume(() => undefined)).toBe(0); // still held back by the open record
    fresh.data.set([6]);
    expect(fresh.submit()).toBe(0);
    expect(ring.output(new Uint8Array([7]))).toBe(0);
    expect(drain(ring)).toEqual([new Uint8Array([6, 0, 0, 0, 0, 0, 0, 0]), new Uint8Array([7])]);
    expect(k.ringbuf(ring.kaddr)!.output(new Uint8Array([8]))).toBe(0); // a new handle is good
    expect(drain(ring)).toEqual([new Uint8Array([8])]);
    k.checkInvariants();
    ring.free();
  });
});

describe('producers and the consumer', () => {
  it('deliver submitted records in reservation order and skip discarded ones', () => {
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    const a = rb.reserve(3)!;
    const b = rb.reserve(5)!;
    const c = rb.reserve(0)!;
    a.data.set([1, 2, 3]);
    b.data.set([4, 4, 4, 4, 4]);
    expect(b.discard()).toBe(0);
    expect(c.submit()).toBe(0);
    // a is still busy: it holds back everything after it, as in Linux
    expect(drain(rb)).toEqual([]);
    expect(a.submit()).toBe(0);
    expect(drain(rb)).toEqual([new Uint8Array([1, 2, 3]), new Uint8Array(0)]);
    expect(rb.query(BPF_RB_AVAIL_DATA)).toBe(0);
    // 8-byte headers, records rounded up to 8 bytes: 16 + 16 + 8
    expect(rb.query(BPF_RB_PROD_POS)).toBe(40);
    expect(rb.query(BPF_RB_CONS_POS)).toBe(40);
    k.checkInvariants();
  });

  it('refuse a reservation when the ring is full, and take it again once the consumer caught up', () => {
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    const len = 1000; // 1008 bytes each with its header
    let made = 0;
    while (rb.output(new Uint8Array(len).fill(made)) === 0) made++;
    // Linux keeps the producer less than a whole ring ahead of the consumer
    expect(made).toBe(Math.floor((DATA - 1) / 1008));
    expect(rb.output(new Uint8Array(len))).toBe(-EAGAIN);
    expect(rb.reserve(len)).toBeNull();
    expect(rb.query(BPF_RB_AVAIL_DATA)).toBe(made * 1008);
    expect(drain(rb).map((v) => v[0])).toEqual([...Array(made).keys()]);
    expect(rb.output(new Uint8Array(len))).toBe(0);
    k.checkInvariants();
  });

  it('place a record that would cross the end at offset 0, skipping the tail as a discarded record', () => {
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    const big = DATA / 2 - RINGBUF_HDR_SZ; // the largest record: half the ring with its header
    expect(rb.output(new Uint8Array(big).fill(1))).toBe(0);
    expect(rb.output(new Uint8Array(100).fill(2))).toBe(0); // 112 bytes: ends at DATA/2 + 112
    expect(drain(rb).length).toBe(2);
    // DATA/2 - 112 bytes are left before the end: a half-ring record does not fit there
    const rec = rb.reserve(big)!;
    expect(rec.data.byteLength).toBe(big);
    expect(rec.data.byteOffset).toBe(k.vmallocToPfn(rb.kaddr)! * PAGE_SIZE + 3 * PAGE_SIZE + 8);
    fillRecord(rec.data, 9, 9);
    rec.submit();
    expect(rb.query(BPF_RB_PROD_POS)).toBe(DATA + DATA / 2); // the tail, then the record at 0
    const got = drain(rb);
    expect(got.map(readRecord)).toEqual([[9, 9]]);
    expect(rb.reserve(big + 1)).toBeNull();
    k.checkInvariants();
  });

  it('keep working when the 32-bit positions wrap past 2^32', () => {
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    setPositions(k, rb, 2 ** 32 - 3 * 1024);
    let seq = 0;
    let next = 0;
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 5; i++) {
        const rec = rb.reserve(100 + ((round * 5 + i) % 200))!;
        fillRecord(rec.data, 1, seq++);
        rec.submit();
      }
      rb.consume((v) => {
        expect(readRecord(v)).toEqual([1, next++]);
      });
      k.checkInvariants();
    }
    expect(next).toBe(seq);
    expect(rb.query(BPF_RB_PROD_POS)).toBeLessThan(2 ** 31); // it wrapped
  });

  it('stop consuming where the callback returns a negative number, and resume after it', () => {
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    for (let i = 0; i < 3; i++) rb.output(new Uint8Array([i]));
    expect(rb.consume((v) => (v[0] === 1 ? -5 : 0))).toBe(-5);
    expect(drain(rb)).toEqual([new Uint8Array([2])]);
  });

  it('have one consumer at a time: a consume inside a consume is refused with -EBUSY', () => {
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    rb.output(new Uint8Array(1));
    let inner = 0;
    expect(rb.consume(() => void (inner = rb.consume(() => undefined)))).toBe(1);
    expect(inner).toBe(-EBUSY);
  });
});

describe('consumeAt, pollAt and pollSyncAt', () => {
  it('hand each record as (mem, offset, length): the same bytes as consume, one mem object', async () => {
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    const lens = [0, 1, 7, 8, 33, 1000];
    const out = (seq: number): void => {
      const bytes = new Uint8Array(lens[seq % lens.length]!);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (seq * 13 + i) & 0xff;
      expect(rb.output(bytes)).toBe(0);
    };
    for (let seq = 0; seq < 6; seq++) out(seq);
    const reserved = rb.reserve(5)!;
    reserved.data.set([1, 2, 3, 4, 5]);
    reserved.discard(); // skipped, as by consume
    const mems = new Set<Uint8Array>();
    const got: number[][] = [];
    expect(
      rb.consumeAt((mem, offset, length) => {
        mems.add(mem);
        got.push([...mem.subarray(offset, offset + length)]);
      }),
    ).toBe(6);
    expect(mems.size).toBe(1);
    const [mem] = [...mems];
    expect(mem!.buffer).toBe(k.handle.buffer);
    expect(got).toEqual(
      lens.map((len, seq) => Array.from({ length: len }, (_, i) => (seq * 13 + i) & 0xff)),
    );
    // a negative return stops there; the record counts as consumed
    for (let seq = 0; seq < 3; seq++) out(seq);
    let calls = 0;
    expect(rb.consumeAt(() => (++calls === 2 ? -7 : 0))).toBe(-7);
    expect(rb.consumeAt(() => undefined)).toBe(1);
    // one consumer at a time
    out(0);
    let inner = 0;
    expect(rb.consumeAt(() => void (inner = rb.consumeAt(() => undefined)))).toBe(1);
    expect(inner).toBe(-EBUSY);
    // pollAt waits like poll; pollSyncAt times out (0), or where it may not block answers -EAGAIN
    out(1);
    expect(
      await rb.pollAt((_m, _o, length) => {
        expect(length).toBe(1);
      }),
    ).toBe(1);
    expect([0, -EAGAIN]).toContain(rb.pollSyncAt(() => undefined, { timeoutMs: 10 }));
    out(2);
    expect(
      rb.pollSyncAt((_m, _o, length) => {
        expect(length).toBe(7);
      }),
    ).toBe(1);
    const later = rb.pollAt(() => undefined, { timeoutMs: 5000 });
    setTimeout(() => {
      out(3);
    }, 5);
    expect(await later).toBe(1);
    k.checkInvariants();
  });
});

describe('wake-up', () => {
  it('is not even checked while no consumer is about to sleep', () => {
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    const seq = wakeSeq(k, rb);
    rb.output(new Uint8Array(4)); // the consumer is at this record, but it is not waiting
    expect(wakeSeq(k, rb)).toBe(seq);
    rb.output(new Uint8Array(4), BPF_RB_FORCE_WAKEUP); // forced: always
    expect(wakeSeq(k, rb)).toBe(seq + 1);
  });

  it('happens when the consumer has caught up with the record, not while it is behind', () => {
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    countWaiter(k, rb, 1); // a consumer about to sleep
    let seq = wakeSeq(k, rb);
    rb.output(new Uint8Array(4)); // the consumer is at this record: wake it
    expect(wakeSeq(k, rb)).toBe(++seq);
    rb.output(new Uint8Array(4)); // the consumer has not read the first: it is busy, no wake-up
    expect(wakeSeq(k, rb)).toBe(seq);
    drain(rb);
    rb.output(new Uint8Array(4), BPF_RB_NO_WAKEUP);
    expect(wakeSeq(k, rb)).toBe(seq);
    rb.output(new Uint8Array(4), BPF_RB_FORCE_WAKEUP);
    expect(wakeSeq(k, rb)).toBe(++seq);
  });

  it('happens for a record placed at 0 when the consumer waits at the skipped tail', () => {
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    rb.output(new Uint8Array(DATA / 2 + 64));
    drain(rb); // the consumer waits near the end
    countWaiter(k, rb, 1);
    const seq = wakeSeq(k, rb);
    rb.output(new Uint8Array(DATA / 2 - 8));
    expect(wakeSeq(k, rb)).toBe(seq + 1);
  });

  it('reaches a poll waiting with Atomics.waitAsync', async () => {
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    const got: number[] = [];
    const polled = rb.poll((v) => void got.push(v[0]!), { timeoutMs: 10_000 });
    rb.output(new Uint8Array([42]));
    expect(await polled).toBe(1);
    expect(got).toEqual([42]);
    expect(await rb.poll(() => undefined, { timeoutMs: 10 })).toBe(0); // nothing: timed out
  });

  it('keeps a Node process alive while a poll waits (a pending waitAsync alone does not)', () => {
    // the script's only pending work is the poll: without the timer it holds, Node would exit
    // at once with an unsettled top-level await (exit code 13) and print nothing
    const script = `
      import { Kernel } from '@sabvm/core';
      const rb = Kernel.boot({ memoryBytes: 2 ** 24 }).ringbufCreate(8192);
      const t0 = Date.now();
      const n = await rb.poll(() => undefined, { timeoutMs: 300 });
      console.log(n, Date.now() - t0 >= 290);`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      encoding: 'utf8',
    });
    expect(out.trim()).toBe('0 true');
  });

  it('frees the area only once a poll waiting on it has returned', async () => {
    const k = boot();
    const boot0 = k.stats().freeFrames;
    const rb = k.ringbufCreate(DATA)!;
    const polled = rb.poll(() => undefined, { timeoutMs: -1 });
    rb.free();
    expect(await polled).toBe(-22);
    expect(k.stats().freeFrames).toBe(boot0);
    k.checkInvariants();
  });

  it('lets reserveWait give up after its timeout on a full ring', () => {
    const k = boot();
    const rb = k.ringbufCreate(DATA)!;
    while (rb.output(new Uint8Array(500)) === 0);
    const t0 = Date.now();
    expect(rb.reserveWait(500, 30)).toBeNull();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(25);
    drain(rb);
    expect(rb.outputWait(new Uint8Array(500), 0, 30)).toBe(0);
  });
});

describe('a ring high in physical memory', () => {
  it('works where its bytes lie above 2 GiB (word indexes past 2^31 bytes)', () => {
    const k = Kernel.boot({ memoryBytes: 3 * 1024 * MiB });
    const free0 = k.stats().freeFrames;
    const rb = k.ringbufCreate(64 * MiB)!; // one run of frames: placed high in this memory
    const data = (rb as unknown as { consumerRef(): { data: number } }).consumerRef().data;
    expect(data).toBeGreaterThan(2 ** 31); // else this test would show nothing
    const bytes = new Uint8Array(16);
    let seq = 0;
    fillRecord(bytes, 1, seq++);
    expect(rb.output(bytes)).toBe(0);
    const rec = rb.reserve(16)!;
    fillRecord(rec.data, 1, seq++);
    expect(rec.submit()).toBe(0);
    fillRecord(bytes, 1, seq++);
    expect(rb.output(bytes, RB_BATCH)).toBe(0);
    const at = rb.batchReserve(16);
    fillRecord(new Uint8Array(rb.batchBuffer, at, 16), 1, seq++);
    expect(rb.flush()).toBe(0);
    k.checkInvariants();
    const got: number[] = [];
    expect(rb.consume((v) => void got.push(readRecord(v)[1]))).toBe(4);
    expect(got).toEqual([0, 1, 2, 3]);
    rb.free();
    expect(k.stats().freeFrames).toBe(free0);
  });
});

describe('the consumer busy poll', () => {
  it('comes back after a sleep that a record ended within 1 ms, not after a longer one', async () => {
    // a wake-up through the event loop alone takes a few hundred microseconds on a busy machine:
    // a stream woken that slowly still streams, and should be polled for again
    const { busyPollAfterSleep } = await import('../src/ringbuf-wait.js');
    expect([0, 0.05, 0.2, 0.5, 0.99].map(busyPollAfterSleep)).toEqual([
      true,
      true,
      true,
      true,
      true,
    ]);
    expect([1, 2, 50, Infinity].map(busyPollAfterSleep)).toEqual([false, false, false, false]);
  });
});

describe('a consume callback that throws', () => {
  it('makes the call throw and leaves its record to be handed out again; a negative answer consumes it', async () => {
    const k = Kernel.boot({ memoryBytes: 16 * MiB });
    const rb = k.ringbufCreate(4 * PAGE_SIZE)!;
    for (let i = 0; i < 6; i++) expect(rb.output(new Uint8Array([i]))).toBe(0);
    const got: number[] = [];
    const take = (v: Uint8Array): void => {
      if (v[0] === 2 && !got.includes(2)) {
        got.push(-2);
        throw new Error('boom');
      }
      got.push(v[0]!);
    };
    expect(() => rb.consume(take)).toThrow('boom');
    expect(got).toEqual([0, 1, -2]);
    // the throwing record is the next one handed out: at least once for it, nothing lost
    await expect(rb.poll((v) => void got.push(v[0]!), { timeoutMs: 0 })).resolves.toBe(4);
    expect(got).toEqual([0, 1, -2, 2, 3, 4, 5]);
    // a negative answer stops the call and the record counts as consumed
    for (let i = 6; i < 9; i++) expect(rb.output(new Uint8Array([i]))).toBe(0);
    const boom = (): never => {
      throw new Error('poll boom');
    };
    await expect(rb.poll(boom, { timeoutMs: 0 })).rejects.toThrow('poll boom'); // 6 stays
    const next: number[] = [];
    expect(rb.consume((v) => (next.push(v[0]!), v[0] === 7 ? -5 : 0))).toBe(-5);
    expect(next).toEqual([6, 7]); // the record the throwing poll met was handed out again
    expect(rb.consume((v) => void got.push(v[0]!))).toBe(1);
    expect(got.at(-1)).toBe(8);
    k.checkInvariants();
  });
});
