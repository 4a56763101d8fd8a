import { describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import {
  Kernel,
  KernelBug,
  LAYOUT_VERSION,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  remapPartial,
  EAGAIN,
} from '../src/index.js';
import { Hdr, Thread, ThreadState } from '../src/layout.js';
import { diffSnapshots, snapshot } from './helpers/reliability.js';

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

describe('Kernel#detach', () => {
  it('refuses every later call through the handle, and through its address spaces, changing nothing', () => {
    const k = Kernel.boot({ memoryBytes: 8 * MiB });
    const other = Kernel.attach(k.handle);
    const kaddr = other.vmallocUser(2 * PAGE_SIZE)!;
    const mm = other.createAddressSpace()!;
    const uaddr = mm.mmap(0, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED);
    const vma = mm.findVma(uaddr)!;
    const before = snapshot(k);
    other.detach();
    other.detach(); // a second detach is a no-op
    const detached = /detached/;
    const calls: [string, () => unknown][] = [
      ['vmalloc', () => other.vmalloc(PAGE_SIZE)],
      ['vzalloc', () => other.vzalloc(PAGE_SIZE)],
      ['vmallocUser', () => other.vmallocUser(PAGE_SIZE)],
      ['vmallocAligned', () => other.vmallocAligned(PAGE_SIZE, PAGE_SIZE)],
      [
        'vfree',
        () => {
          other.vfree(kaddr);
        },
      ],
      [
        'vfree(null)',
        () => {
          other.vfree(null);
        },
      ],
      ['findVmArea', () => other.findVmArea(kaddr)],
      ['vmallocAreas', () => other.vmallocAreas()],
      ['vmallocToPfn', () => other.vmallocToPfn(kaddr)],
      ['readKernel', () => other.readKernel(kaddr, 4)],
      [
        'writeKernel',
        () => {
          other.writeKernel(kaddr, new Uint8Array(4));
        },
      ],
      ['vmallocinfo', () => other.vmallocinfo()],
      ['meminfo', () => other.meminfo()],
      ['stats', () => other.stats()],
      [
        'checkInvariants',
        () => {
          other.checkInvariants();
        },
      ],
      ['frameSnapshot', () => other.frameSnapshot()],
      ['createAddressSpace', () => other.createAddressSpace()],
      ['addressSpace', () => other.addressSpace(mm.id)],
      ['addressSpaceIds', () => other.addressSpaceIds()],
      [
        'rcuReadLock',
        () => {
          other.rcuReadLock();
        },
      ],
      [
        'rcuReadUnlock',
        () => {
          other.rcuReadUnlock();
        },
      ],
      ['readSection', () => other.readSection(() => 1)],
      ['reapThread', () => other.reapThread({ tid: k.tid })],
      ['mm.mmap', () => mm.mmap(0, PAGE_SIZE, PROT_READ, MAP_SHARED)],
      ['mm.munmap', () => mm.munmap(uaddr, PAGE_SIZE)],
      ['mm.mprotect', () => mm.mprotect(uaddr, PAGE_SIZE, PROT_READ)],
      ['mm.findVma', () => mm.findVma(uaddr)],
      ['mm.vmas', () => mm.vmas()],
      ['mm.maps', () => mm.maps()],
      ['mm.pagemap', () => mm.pagemap()],
      ['mm.read', () => mm.read(uaddr, 4)],
      [
        'mm.write',
        () => {
          mm.write(uaddr, new Uint8Array(4));
        },
      ],
      ['mm.segments', () => mm.segments(uaddr, 4)],
      ['mm.getUser32', () => mm.getUser32(uaddr)],
      ['mm.getUser32v', () => mm.getUser32v([uaddr])],
      [
        'mm.putUser32',
        () => {
          mm.putUser32(uaddr, 1);
        },
      ],
      [
        'mm.destroy',
        () => {
          mm.destroy();
        },
      ],
      ['remapPartial', () => remapPartial(vma, uaddr, kaddr, PAGE_SIZE)],
    ];
    for (const [name, call] of calls) expect(call, name).toThrow(detached);
    expect(diffSnapshots(before, snapshot(k))).toEqual([]);
    k.checkInvariants();
  });
});

describe('KernelBug', () => {
  it('is what a broken invariant throws, so callers can tell a kernel bug from a fault', () => {
    const k = Kernel.boot({ memoryBytes: 4 * MiB });
    k.checkInvariants();
    Atomics.add(k.mem.i32, Hdr.FREE_FRAMES, 1); // a counter that disagrees with the bitmap
    expect(() => {
      k.checkInvariants();
    }).toThrow(KernelBug);
    expect(() => {
      k.checkInvariants();
    }).toThrow(/checkInvariants: /);
    Atomics.sub(k.mem.i32, Hdr.FREE_FRAMES, 1);
    k.checkInvariants();
  });
});

describe('Kernel.reapThread', () => {
  it('never takes an attachment that gave no threadId for { threadId: -1 } (what a Worker reads once it has exited)', () => {
    const k = Kernel.boot({ memoryBytes: 16 * MiB });
    const first = k.stats();
    const other = Kernel.attach(k.handle); // no threadId
    const a = other.kmalloc(64)!;
    expect(k.reapThread({ threadId: -1 })).toBe(0);
    expect(other.ksize(a)).toBe(64); // still attached, its object still live
    other.kfree(a);
    other.detach();
    expect(k.stats()).toEqual(first);
    k.checkInvariants();
  });

  it('gives up with -EAGAIN while another thread stays inside a kernel call, marking only the named thread dead; the next reap recovers both', () => {
    const k = Kernel.boot({ memoryBytes: 16 * MiB });
    const first = k.stats();
    const a = Kernel.attach(k.handle, { threadId: 901 });
    const b = Kernel.attach(k.handle, { threadId: 902 });
    const { i32 } = k.mem;
    const stateA = a.mem.current.base + Thread.STATE;
    const stateB = b.mem.current.base + Thread.STATE;
    // b was terminated inside a kernel call: its slot still says so, and only its reap can end that
    Atomics.store(i32, stateB, ThreadState.IN);
    const before = snapshot(k);
    expect(k.reapThread({ threadId: 901 }, 20)).toBe(-EAGAIN);
    expect(Atomics.load(i32, stateA)).toBe(ThreadState.DEAD);
    expect(Atomics.load(i32, stateB)).toBe(ThreadState.IN);
    expect(Atomics.load(i32, Hdr.RECOVERY)).toBe(0); // the others are not held out of the kernel
    expect(diffSnapshots(before, snapshot(k))).toEqual([]);
    const kaddr = k.vmalloc(PAGE_SIZE)!; // the kernel still serves this thread
    k.vfree(kaddr);
    expect(k.reapThread({ threadId: 902 }, 0)).toBe(2); // b, and a, left marked dead
    expect(Atomics.load(i32, stateA)).toBe(ThreadState.FREE);
    expect(Atomics.load(i32, stateB)).toBe(ThreadState.FREE);
    expect(k.reapThread({ threadId: 901 })).toBe(0); // a's own retry: nothing left to do
    expect(k.stats()).toEqual(first);
    k.checkInvariants();
  });

  it('gives up with -EAGAIN while a thread not reaped yet holds a ring reservation lock (held outside kernel calls)', () => {
    const k = Kernel.boot({ memoryBytes: 16 * MiB });
    const rb = k.ringbufCreate(2 * PAGE_SIZE)!;
    const a = Kernel.attach(k.handle, { threadId: 911 });
    const b = Kernel.attach(k.handle, { threadId: 912 });
    const { i32 } = k.mem;
    const ref = (rb as unknown as { consumerRef(): { resvLock: number } }).consumerRef();
    // b was terminated inside a reservation: it holds the ring's lock, outside any kernel call
    expect(b.ringbuf(rb.kaddr)!.output(new Uint8Array([1]))).toBe(0);
    Atomics.store(i32, ref.resvLock, b.tid);
    const before = snapshot(k);
    expect(k.reapThread({ threadId: 911 }, 20)).toBe(-EAGAIN); // was: waited for ever
    expect(Atomics.load(i32, a.mem.current.base + Thread.STATE)).toBe(ThreadState.DEAD);
    expect(Atomics.load(i32, ref.resvLock)).toBe(b.tid);
    expect(diffSnapshots(before, snapshot(k))).toEqual([]);
    expect(k.reapThread({ threadId: 912 }, 0)).toBe(2);
    expect(Atomics.load(i32, ref.resvLock)).toBe(0);
    const got: number[] = [];
    expect(rb.consume((v) => void got.push(v[0]!))).toBe(1); // b's committed record is kept
    expect(got).toEqual([1]);
    expect(rb.output(new Uint8Array([2]))).toBe(0); // and the ring takes records again
    rb.free();
    k.checkInvariants();
  });
});
