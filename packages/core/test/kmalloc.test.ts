import { describe, expect, it } from 'vitest';
import {
  EBUSY,
  EINVAL,
  FRAME_SLAB,
  KMALLOC_MAX_CACHE_SIZE,
  KMALLOC_END,
  Kernel,
  PAGE_SIZE,
  TASK_SIZE,
  VMALLOC_START,
} from '../src/index.js';
import { Cache, Slab } from '../src/layout.js';
import { cacheWord, cpuFullSlabs, KMALLOC_SIZES, minPartial, slabGeometry } from '../src/slab.js';
import { FAST_PATH_CONSTANTS } from '../src/slab-cpu.js';

const MiB = 2 ** 20;
const boot = (mib = 16): Kernel => Kernel.boot({ memoryBytes: mib * MiB });

/** The kmalloc class a size lands in, by the table of Linux's size classes. */
function classOf(size: number): number {
  return KMALLOC_SIZES.find((c) => c >= size)!;
}

describe('the fast paths', () => {
  it('write as literals exactly the layout values they stand for', () => {
    for (const [real, literal] of FAST_PATH_CONSTANTS) expect(literal).toBe(real);
    expect(FAST_PATH_CONSTANTS.length).toBeGreaterThanOrEqual(15);
  });
});

describe('kmalloc size classes', () => {
  it('gives every size from 1 to 8 KiB the smallest kmalloc class that fits, as ksize reports', () => {
    const k = boot();
    for (let size = 1; size <= KMALLOC_MAX_CACHE_SIZE; size += size < 256 ? 1 : 61) {
      const kaddr = k.kmalloc(size)!;
      expect(k.ksize(kaddr), `size ${size}`).toBe(classOf(size));
      k.kfree(kaddr);
    }
    expect(k.stats().badFrees).toBe(0);
    k.checkInvariants();
  });

  it('puts objects in the kmalloc range, 8-byte aligned, disjoint from user space and vmalloc', () => {
    const k = boot();
    const area = k.vmalloc(PAGE_SIZE)!;
    for (const size of [1, 8, 13, 64, 96, 192, 2048, 5000, 8192, 3 * PAGE_SIZE]) {
      const kaddr = k.kmalloc(size)!;
      expect(Math.abs(kaddr % 8)).toBe(0); // kaddrs are negative: -0 is fine
      expect(kaddr).toBeGreaterThanOrEqual(k.layout.kmallocStart);
      expect(kaddr + k.ksize(kaddr)).toBeLessThanOrEqual(KMALLOC_END);
      expect(k.layout.kmallocStart).toBe(-k.stats().totalFrames * PAGE_SIZE);
      // below every user address (0 … TASK_SIZE) and the vmalloc range
      expect(KMALLOC_END).toBeLessThanOrEqual(0);
      expect(VMALLOC_START).toBeGreaterThan(TASK_SIZE);
      expect(k.findVmArea(kaddr)).toBeNull();
    }
    expect(k.ksize(area)).toBe(0);
  });

  it('never lets an object of at most a page straddle a frame boundary', () => {
    for (const size of [...KMALLOC_SIZES, 24, 40, 100, 200, 700, 1500, 3000, 4000]) {
      const g = slabGeometry(size, 8);
      if (g.stride > PAGE_SIZE) continue;
      for (let idx = 0; idx < g.objs; idx++) {
        const off =
          idx < g.firstObjs
            ? g.offset + idx * g.stride
            : PAGE_SIZE * (1 + Math.floor((idx - g.firstObjs) / g.perFrame)) +
              ((idx - g.firstObjs) % g.perFrame) * g.stride;
        expect(Math.floor(off / PAGE_SIZE), `size ${size} object ${idx}`).toBe(
          Math.floor((off + size - 1) / PAGE_SIZE),
        );
      }
    }
  });

  it('wastes at most an eighth of a slab for every kmalloc class', () => {
    for (const size of KMALLOC_SIZES) {
      const g = slabGeometry(size, 8);
      expect(g.objs * g.stride, `kmalloc-${size}`).toBeGreaterThanOrEqual(
        (7 / 8) * g.frames * PAGE_SIZE,
      );
    }
  });

  it('serves sizes above 8 KiB as whole contiguous pages and counts them apart', () => {
    const k = boot();
    const before = k.stats();
    const kaddr = k.kmalloc(KMALLOC_MAX_CACHE_SIZE + 1)!;
    expect(k.ksize(kaddr)).toBe(3 * PAGE_SIZE);
    expect(k.stats().kmallocLargeFrames).toBe(3);
    expect(k.view(kaddr, 3 * PAGE_SIZE)).toHaveLength(3 * PAGE_SIZE);
    expect(k.frameSnapshot().kinds[(kaddr - k.layout.kmallocStart) / PAGE_SIZE]).toBe(FRAME_SLAB);
    k.kfree(kaddr);
    expect(k.stats()).toEqual(before);
    k.checkInvariants();
  });
});

describe('kzalloc, kcalloc and krealloc', () => {
  it('zeroes what kzalloc and kcalloc hand out, even memory that held data', () => {
    const k = boot();
    for (const size of [8, 64, 200, 4096, 8192, 20000]) {
      const dirty = k.kmalloc(size)!;
      k.view(dirty, k.ksize(dirty)).fill(0xee);
      k.kfree(dirty);
      const z = k.kzalloc(size)!;
      expect(
        k.view(z, k.ksize(z)).every((b) => b === 0),
        `kzalloc(${size})`,
      ).toBe(true);
      k.kfree(z);
    }
    const c = k.kcalloc(10, 12)!;
    expect(k.ksize(c)).toBe(128);
    expect(k.view(c, 120).every((b) => b === 0)).toBe(true);
  });

  it('returns null from kcalloc when n * size overflows, and allocates nothing', () => {
    const k = boot();
    const before = k.stats();
    expect(k.kcalloc(2 ** 30, 2 ** 30)).toBeNull();
    expect(k.kcalloc(Number.MAX_SAFE_INTEGER, 2)).toBeNull();
    expect(k.kcalloc(-1, 8)).toBeNull();
    expect(k.stats()).toEqual(before);
  });

  it('keeps the object when the new size fits, and moves the bytes when it does not', () => {
    const k = boot();
    const a = k.kmalloc(40)!;
    k.view(a, 40).set(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(k.krealloc(a, 64)).toBe(a);
    const b = k.krealloc(a, 1000)!;
    expect(b).not.toBe(a);
    expect(k.ksize(a)).toBe(0);
    expect([...k.view(b, 40)]).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    const c = k.krealloc(null, 16)!;
    expect(k.ksize(c)).toBe(16);
    k.kfree(b);
    k.kfree(c);
    expect(k.stats().badFrees).toBe(0);
  });

  it('leaves the old object live and unchanged when krealloc fails', () => {
    const k = boot(1);
    const a = k.kmalloc(32)!;
    k.view(a, 32).fill(7);
    expect(k.krealloc(a, 64 * MiB)).toBeNull();
    expect(k.krealloc(a, 0)).toBeNull();
    expect(k.ksize(a)).toBe(32);
    expect(k.view(a, 32).every((b) => b === 7)).toBe(true);
  });
});

describe('kfree', () => {
  it('counts a double free, an interior pointer and a vmalloc address as bad frees and changes nothing', () => {
    const k = boot();
    const a = k.kmalloc(64)!;
    const b = k.kmalloc(64)!;
    const area = k.vmalloc(PAGE_SIZE)!;
    k.kfree(a);
    const before = k.slabinfo();
    k.kfree(a);
    k.kfree(b + 8);
    k.kfree(area);
    k.kfree(k.layout.kmallocStart);
    k.kfree(null);
    expect(k.stats().badFrees).toBe(4);
    expect(k.slabinfo()).toBe(before);
    expect(k.ksize(b)).toBe(64);
    k.checkInvariants();
  });

  it('returns every frame when every object is freed, so stats() is back at its boot values', () => {
    const k = boot();
    const first = k.stats();
    const objs: number[] = [];
    for (let i = 0; i < 5000; i++) objs.push(k.kmalloc(1 + ((i * 7919) % 9000))!);
    expect(k.stats().slabFrames).toBeGreaterThan(0);
    k.checkInvariants();
    for (let i = objs.length - 1; i >= 0; i -= 2) k.kfree(objs[i]!);
    for (let i = objs.length - 2; i >= 0; i -= 2) k.kfree(objs[i]!);
    expect(k.stats()).toEqual(first);
    k.checkInvariants();
  });
});

/** `<num_slabs>` of a cache's /proc/slabinfo line. */
const numSlabs = (k: Kernel, name: string): number => {
  const line = k
    .slabinfo()
    .split('\n')
    .find((l) => l.startsWith(`${name} `))!;
  return Number(
    line
      .split(/[ :]+/)
      .filter((x) => /^\d+$/.test(x))
      .at(-2),
  );
};

describe('used-up slabs a thread keeps (cpuFullSlabs)', () => {
  it('keeps 1/128 of memory per cache, from 8 to 128 frames, at least one slab', () => {
    expect(cpuFullSlabs(1, 256)).toBe(8); // 1 MiB
    expect(cpuFullSlabs(1, 4096)).toBe(32); // 16 MiB
    expect(cpuFullSlabs(1, 16384)).toBe(128); // 64 MiB
    expect(cpuFullSlabs(1, 2 ** 20)).toBe(128); // 4 GiB: at most 128 slabs
    expect(cpuFullSlabs(16, 4096)).toBe(2);
    expect(cpuFullSlabs(16, 256)).toBe(1);
  });

  it("keeps a new cache's share when the new cache takes a destroyed cache's id", () => {
    const k = boot(64);
    // a cache of one-frame slabs: this thread may keep 128 of them
    const small = k.kmemCacheCreate('small', 64)!;
    const objs = Array.from({ length: 4 * slabGeometry(64, 8).objs }, () => small.alloc()!);
    for (const kaddr of objs) small.free(kaddr);
    expect(small.destroy()).toBe(0);
    // its id again, slabs of 16 frames: 8 kept at most, whatever the cache before it allowed
    const big = k.kmemCacheCreate('big', 8192)!;
    expect(big.id).toBe(small.id);
    const held = Array.from({ length: 40 * slabGeometry(8192, 8).objs }, () => big.alloc());
    expect(held.includes(null)).toBe(false);
    k.checkInvariants();
    for (const kaddr of held) big.free(kaddr);
    expect(big.destroy()).toBe(0);
    k.checkInvariants();
  });

  for (const mib of [16, 64]) {
    it(`serves a pipeline from the slabs the allocating thread keeps: no partial list, no new slab (${mib} MiB)`, () => {
      const k = boot(mib);
      const first = k.stats();
      const other = Kernel.attach(k.handle); // allocates; k frees: every free is remote
      const perSlab = slabGeometry(64, 8).objs;
      const most = cpuFullSlabs(1, k.mem.layout.totalFrames);
      const depth = (most - 2) * perSlab; // objects in flight: fewer than the kept slabs hold
      const nrPartial = (): number =>
        k.mem.i32[cacheWord(k.mem, KMALLOC_SIZES.indexOf(64), Cache.NR_PARTIAL)]!;
      const holder = (kaddr: number): number => {
        const pfn = Math.floor((kaddr - k.mem.layout.kmallocStart) / PAGE_SIZE);
        return k.mem.i32[pfn * (PAGE_SIZE / 4) + Slab.FROZEN]!; // a slab of one frame
      };
      const fifo = new Float64Array(depth);
      // count the takes of kmalloc-64's list_lock (a compare-and-exchange of its word)
      const lockWord = cacheWord(k.mem, KMALLOC_SIZES.indexOf(64), Cache.LOCK);
      const cas = Atomics.compareExchange;
      let lockTaken = 0;
      Atomics.compareExchange = ((a: Int32Array, index: number, e: number, r: number): number => {
        if (a === k.mem.i32 && index === lockWord) lockTaken++;
        return cas(a, index, e, r);
      }) as typeof Atomics.compareExchange;
      let slabsMost = 0;
      try {
        for (let i = 0; i < 10 * most * perSlab; i++) {
          if (i >= depth) k.kfree(fifo[i % depth]!);
          fifo[i % depth] = other.kmalloc(64)!;
          if (i >= depth && i % perSlab === 0) {
            // the oldest object in flight is in a slab other still holds, and nothing goes on the
            // partial list
            expect(holder(fifo[(i + 1) % depth]!)).not.toBe(0);
            expect(nrPartial()).toBe(0);
          }
          if (i === 2 * depth) lockTaken = 0; // from here on: the steady state
          if (i % (16 * perSlab) === 0) slabsMost = Math.max(slabsMost, numSlabs(k, 'kmalloc-64'));
        }
      } finally {
        Atomics.compareExchange = cas;
      }
      // not once the cache's list_lock: other's slabs come back to it through their remote
      // bitmaps alone
      expect(lockTaken).toBe(0);
      expect(slabsMost).toBeLessThanOrEqual(1 + most);
      k.checkInvariants();
      k.kfreeBulk(fifo);
      other.detach();
      expect(k.stats()).toEqual(first);
      k.checkInvariants();
    });
  }
});

describe('empty slabs kept for reuse (min_partial)', () => {
  it('keeps up to minPartial empty slabs on the partial list, reuses them, and stats() gives them back', () => {
    const k = boot();
    const first = k.stats();
    const other = Kernel.attach(k.handle); // its objects are remote to k
    const perSlab = slabGeometry(64, 8).objs;
    const keep = minPartial(64);
    // other's active and kept slabs
    const held = 1 + cpuFullSlabs(slabGeometry(64, 8).frames, k.mem.layout.totalFrames);
    const slabs = held + keep + 12; // more than other keeps and the partial list holds
    const objs = Float64Array.from({ length: slabs * perSlab }, () => other.kmalloc(64)!);
    expect(numSlabs(k, 'kmalloc-64')).toBe(slabs);
    // the slabs other does not hold go empty: keep of them stay listed, the rest are discarded;
    // other's active and kept slabs stay its own (empty now)
    k.kfreeBulk(objs);
    expect(numSlabs(k, 'kmalloc-64')).toBe(keep + held);
    k.checkInvariants();
    // the kept slabs serve new objects: no new slab until they are used up
    const again = Float64Array.from({ length: (keep + held) * perSlab }, () => other.kmalloc(64)!);
    expect(numSlabs(k, 'kmalloc-64')).toBe(keep + held);
    k.checkInvariants();
    k.kfreeBulk(again);
    other.detach();
    expect(k.stats()).toEqual(first); // kmem_cache_shrink: the kept empty slabs go back
    expect(numSlabs(k, 'kmalloc-64')).toBe(0);
    k.checkInvariants();
  });

  it('gives the kept empty slabs back when an allocation finds memory short, and then succeeds', () => {
    const k = boot(8);
    const first = k.stats();
    const other = Kernel.attach(k.handle);
    // kmalloc-8k: slabs of 16 frames; 10 of them, 3 held by other (its active slab and two kept
    // used up), 7 emptied from here: 6 kept on the partial list (min_partial)
    const held = 1 + cpuFullSlabs(slabGeometry(8192, 8).frames, k.mem.layout.totalFrames);
    const objs = Array.from({ length: 70 }, () => other.kmalloc(8192)!);
    k.kfreeBulk(objs);
    expect(numSlabs(k, 'kmalloc-8k')).toBe(minPartial(8192) + held);
    const freeKb = Number(/MemFree:\s+(\d+) kB/.exec(k.meminfo())![1]);
    const pages = freeKb / 4 + 64; // more than is free, less than free + kept
    const area = k.vmalloc(pages * PAGE_SIZE);
    expect(area).not.toBeNull();
    expect(numSlabs(k, 'kmalloc-8k')).toBe(held); // only the other thread's slabs are left
    k.vfree(area);
    other.detach();
    expect(k.stats()).toEqual(first);
    k.checkInvariants();
  });
});

describe('used-up slabs a thread keeps (frozen, as mimalloc keeps full pages)', () => {
  it('stay the owner’s when another thread frees into them (not listed, not discarded), and serve it again oldest first', () => {
    const k = boot();
    const first = k.stats();
    const other = Kernel.attach(k.handle);
    const perSlab = slabGeometry(64, 8).objs;
    // three slabs' worth: the first two used up and kept, the third active and used up
    const objs = Array.from({ length: 3 * perSlab }, () => other.kmalloc(64)!);
    expect(numSlabs(k, 'kmalloc-64')).toBe(3);
    const oldest = objs.slice(0, perSlab);
    k.kfreeBulk(oldest); // every object of the oldest kept slab, from another thread
    // still other's: not listed, not discarded, not even by a shrink from this thread
    k.stats();
    expect(numSlabs(k, 'kmalloc-64')).toBe(3);
    expect(k.slabinfo()).toMatch(new RegExp(`^kmalloc-64 +${2 * perSlab} +${3 * perSlab} `, 'm'));
    k.checkInvariants();
    // other's next slab is the oldest kept one, its objects freed meanwhile: no new slab
    const next = Array.from({ length: perSlab }, () => other.kmalloc(64)!);
    expect(numSlabs(k, 'kmalloc-64')).toBe(3);
    expect(new Set(next)).toEqual(new Set(oldest));
    // once it keeps as many as it may, the oldest goes back to the cache
    const many = Array.from({ length: 10 * perSlab }, () => other.kmalloc(64)!);
    k.checkInvariants();
    k.kfreeBulk([...objs.slice(perSlab), ...next, ...many]);
    other.detach();
    expect(k.stats()).toEqual(first);
    k.checkInvariants();
  });
});

describe('a thread’s own empty slabs when memory is short', () => {
  it('go back before its allocation gives up: vmalloc, kmalloc and kmem_cache_alloc succeed', () => {
    const k = boot(8);
    const first = k.stats();
    const other = Kernel.attach(k.handle);
    const sizes = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192];
    const fill = (): number[] =>
      sizes.flatMap((size) =>
        Array.from({ length: Math.ceil((24 * PAGE_SIZE) / size) }, () => other.kmalloc(size)!),
      );
    const objs = fill();
    k.kfreeBulk(objs); // every object freed, from another thread: other's slabs are empty
    k.stats(); // gives back what the caches keep; other's own slabs stay its own
    const held = k.stats().slabFrames;
    expect(held).toBeGreaterThan(100);
    // more than is free, less than free + other's empty slabs: other's own allocation succeeds
    const area = other.vmalloc((k.stats().freeFrames + held - 40) * PAGE_SIZE);
    expect(area).not.toBeNull();
    other.vfree(area);
    // the same for a small object and a cache's object, with every free frame taken first
    const again = fill();
    k.kfreeBulk(again);
    const cache = other.kmemCacheCreate('short_cache', 200)!;
    const hog = other.vmalloc(k.stats().freeFrames * PAGE_SIZE)!;
    expect(hog).not.toBeNull();
    const small = other.kmalloc(100);
    expect(small).not.toBeNull();
    const obj = cache.alloc();
    expect(obj).not.toBeNull();
    other.kfree(small);
    cache.free(obj);
    expect(cache.destroy()).toBe(0);
    other.vfree(hog);
    other.detach();
    expect(k.stats()).toEqual(first);
    k.checkInvariants();
  });
});

describe('the free fast path’s last slab', () => {
  it('is forgotten when the thread lets that slab go: a later free of its objects is a remote free', () => {
    const k = boot();
    const first = k.stats();
    const perSlab = slabGeometry(64, 8).objs;
    const s = Array.from({ length: perSlab }, () => k.kmalloc(64)!); // slab S, used up
    k.kfree(s[1]!); // the fast path remembers S
    s[1] = k.kmalloc(64)!; // S used up again
    // enough slabs that S, kept used up, is let go: full, on no list, nobody's
    const more = Array.from(
      { length: (2 + cpuFullSlabs(1, k.mem.layout.totalFrames)) * perSlab },
      () => k.kmalloc(64)!,
    );
    k.kfree(s[5]!); // must see S is not this thread's any more
    k.checkInvariants(); // a free taken as local would leave S with a free object on no list
    k.kfreeBulk([...s.filter((_, i) => i !== 5), ...more]);
    expect(k.stats()).toEqual(first);
    k.checkInvariants();
  });
});

describe('kfreeBulk', () => {
  it('frees what another thread allocated a batch at a time, counts bad entries once each, and ends at the boot values', () => {
    const k = boot();
    const first = k.stats();
    const other = Kernel.attach(k.handle); // another thread's view: its objects are remote to k
    const objs = Float64Array.from({ length: 1000 }, (_, i) => other.kmalloc(8 + (i % 200))!);
    const mine = Array.from({ length: 100 }, () => k.kmalloc(64)!);
    k.kfreeBulk(objs, 0, 500);
    for (let i = 0; i < 500; i++) expect(k.ksize(objs[i]!)).toBe(0);
    expect(k.ksize(objs[500]!)).toBeGreaterThan(0);
    k.checkInvariants();
    // the rest, with a null, a duplicate, an interior pointer and this thread's own objects
    k.kfreeBulk([null, ...objs.subarray(500), objs[700]!, mine[0]! + 8, ...mine]);
    expect(k.stats().badFrees).toBe(2);
    other.detach();
    expect(k.stats()).toEqual({ ...first, badFrees: 2 });
    k.checkInvariants();
  });

  it('judges every entry of a run of one slab’s objects as kfree would: duplicates, interior, fractional and freed ones are bad', () => {
    const k = boot();
    const first = k.stats();
    const other = Kernel.attach(k.handle);
    const o = Array.from({ length: 40 }, () => other.kmalloc(64)!); // one slab of other's
    k.kfreeBulk([o[0]!, o[1]!, o[1]!, o[2]! + 8, o[3]! + 0.5, o[4]!, o[2]! - 64 * 3 - 1]);
    expect(k.stats().badFrees).toBe(4);
    for (const i of [0, 1, 4]) expect(k.ksize(o[i]!)).toBe(0);
    for (const i of [2, 3, 5]) expect(k.ksize(o[i]!)).toBe(64);
    k.checkInvariants();
    k.kfreeBulk([o[5]!, o[0]!, o[6]!, o[4]!]); // two already freed, inside a run
    expect(k.stats().badFrees).toBe(6);
    k.kfreeBulk(o.slice(2, 4).concat(o.slice(7)));
    other.detach();
    expect(k.stats()).toEqual({ ...first, badFrees: 6 });
    k.checkInvariants();
  });

  it('frees through a cache only that cache’s objects', () => {
    const k = boot();
    const cache = k.kmemCacheCreate('bulk_cache', 40)!;
    const objs = Array.from({ length: 300 }, () => cache.alloc()!);
    const stranger = k.kmalloc(40)!;
    cache.freeBulk([...objs, stranger]);
    expect(k.stats().badFrees).toBe(1);
    expect(k.ksize(stranger)).toBe(64); // kmalloc-64: still live
    expect(cache.destroy()).toBe(0);
    k.checkInvariants();
  });
});

describe('kernel.view', () => {
  it('views a kmalloc object, or part of it, in place as any typed array', () => {
    const k = boot();
    const a = k.kmalloc(64)!;
    const f = k.view(a, 64, Float64Array);
    f[3] = 1.5;
    expect(k.view(a + 24, 8, Float64Array)[0]).toBe(1.5);
    expect(k.view(a, 0)).toHaveLength(0);
    expect(() => k.view(a + 4, 8, Float64Array)).toThrow(/multiples of 8/);
    expect(() => k.view(a, 65)).toThrow(/runs past the end of its object/);
    expect(() => k.view(a, 8, Map as never)).toThrow(/typed-array constructor .*got Map/);
    expect(() => k.view(a, 8, 'Float32Array' as never)).toThrow(/got Float32Array$/);
    k.kfree(a);
    expect(() => k.view(a, 8)).toThrow(/not inside a live kmalloc object/);
  });

  it('views a vmalloc range that is one physical run, and says so when a range is not', () => {
    const k = boot();
    const area = k.vmalloc(4 * PAGE_SIZE)!;
    const v = k.view(area + 100, 3 * PAGE_SIZE, Uint8Array);
    v[0] = 42;
    expect(k.readKernel(area + 100, 1)[0]).toBe(42);
    expect(() => k.view(area, 5 * PAGE_SIZE)).toThrow(/not backed by a live vmalloc area/);
    // an area built from scattered frames: free every other page of a fragmenting area first
    const holes = Array.from({ length: 64 }, () => k.vmalloc(PAGE_SIZE)!);
    for (let i = 0; i < holes.length; i += 2) k.vfree(holes[i]!);
    const split = k.vmalloc(8 * PAGE_SIZE)!;
    expect(() => k.view(split, 8 * PAGE_SIZE)).toThrow(/not one physically contiguous run/);
    k.vfree(area);
    expect(() => k.view(area, 8)).toThrow(/not backed by a live vmalloc area/);
  });
});

describe('slab caches', () => {
  it('allocates aligned objects of its size, finds the cache by id, and refuses destroy while one is live', () => {
    const k = boot();
    const first = k.stats();
    const cache = k.kmemCacheCreate('node_cache', 40, { align: 64 })!;
    expect(cache.name).toBe('node_cache');
    expect(k.kmemCache(cache.id)?.name).toBe('node_cache');
    const objs = Array.from({ length: 200 }, () => cache.alloc()!);
    for (const o of objs) {
      expect(Math.abs(o % 64)).toBe(0);
      expect(k.ksize(o)).toBe(40);
    }
    expect(new Set(objs).size).toBe(objs.length);
    expect(cache.destroy()).toBe(-EBUSY);
    for (const o of objs.slice(1)) cache.free(o);
    expect(cache.destroy()).toBe(-EBUSY);
    k.kfree(objs[0]!);
    expect(cache.destroy()).toBe(0);
    expect(cache.destroy()).toBe(-EINVAL);
    expect(cache.alloc()).toBeNull();
    expect(k.kmemCache(cache.id)).toBeNull();
    expect(k.stats()).toEqual(first);
    k.checkInvariants();
  });

  it('counts a free of another cache’s object through cache.free as a bad free', () => {
    const k = boot();
    const a = k.kmemCacheCreate('a', 64)!;
    const b = k.kmemCacheCreate('b', 64)!;
    const x = a.alloc()!;
    b.free(x);
    b.free(null);
    expect(k.stats().badFrees).toBe(1);
    expect(k.ksize(x)).toBe(64);
    a.free(x);
    expect(k.stats().badFrees).toBe(1);
  });

  it('lists every cache in /proc/slabinfo version 2.1 with its active and total objects', () => {
    const k = boot();
    const cache = k.kmemCacheCreate('my_objects', 100)!;
    const objs = Array.from({ length: 50 }, () => cache.alloc()!);
    const kobjs = Array.from({ length: 3 }, () => k.kmalloc(64)!);
    const text = k.slabinfo();
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('slabinfo - version: 2.1');
    expect(lines[1]).toMatch(
      /^# name +<active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>/,
    );
    const row = (name: string): number[] => {
      const line = lines.find((l) => l.startsWith(`${name} `))!;
      expect(line).toMatch(
        /^\S+ +\d+ +\d+ +\d+ +\d+ +\d+ : tunables +0 +0 +0 : slabdata +\d+ +\d+ +0$/,
      );
      return line
        .split(/[ :]+/)
        .slice(1)
        .filter((x) => /^\d+$/.test(x))
        .map(Number);
    };
    const [active, total, objsize, perSlab, pages, , , , slabs] = row('my_objects');
    expect([active, objsize]).toEqual([50, 104]);
    expect(total).toBe(slabs! * perSlab!);
    expect(pages).toBe(slabGeometry(100, 8).frames);
    expect(row('kmalloc-64')[0]).toBe(3);
    expect(lines.filter((l) => l.startsWith('kmalloc-'))).toHaveLength(KMALLOC_SIZES.length);
    for (const o of objs) cache.free(o);
    for (const o of kobjs) k.kfree(o);
  });

  it('refuses bad names, sizes and alignments with null', () => {
    const k = boot();
    expect(k.kmemCacheCreate('has space', 8)).toBeNull();
    expect(k.kmemCacheCreate('', 8)).toBeNull();
    expect(k.kmemCacheCreate('x'.repeat(32), 8)).toBeNull();
    expect(k.kmemCacheCreate('ok', 0)).toBeNull();
    expect(k.kmemCacheCreate('ok', KMALLOC_MAX_CACHE_SIZE + 1)).toBeNull();
    expect(k.kmemCacheCreate('ok', 8, { align: 3 })).toBeNull();
    expect(k.kmemCacheCreate('ok', 8, { align: 2 * PAGE_SIZE })).toBeNull();
    expect(k.kmemCacheCreate('x'.repeat(31), 8)).not.toBeNull();
  });
});

describe('kfree of a large kmalloc', () => {
  it('never reads a large allocation’s data as a slab descriptor, even data that looks like one', () => {
    const k = boot();
    const large = k.kmalloc(3 * PAGE_SIZE)!;
    const words = k.view(large, 64, Int32Array);
    // what a slab of 64-byte objects held by this thread would hold in its first words
    words.set([1, 0, 0, 0, 0, 0, 0, 64 | (64 << 16), 63 | (2 << 16), -1, -1, 0, 0]);
    const before = k.view(large, 3 * PAGE_SIZE).slice();
    k.kfree(large + 64);
    expect(k.stats().badFrees).toBe(1);
    expect(k.view(large, 3 * PAGE_SIZE)).toEqual(before);
    k.kfree(large);
    expect(k.stats().kmallocLargeFrames).toBe(0);
    k.checkInvariants();
  });
});
