/**
 * kmalloc against a model of live objects: random sequences of kmalloc, kzalloc, kcalloc, krealloc,
 * kfree (good and bad), cache alloc/free/destroy and writes, checked after every step — no two live
 * objects overlap, each holds at least the bytes asked for, zeroed where promised and keeping what
 * was written, bad frees counted and harmless — and `stats()` back at its boot values once every
 * object is freed.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Kernel, PAGE_SIZE, type KmemCache } from '../src/index.js';

interface ModelObject {
  /** The size asked for: ksize may be larger. */
  size: number;
  /** What the object must hold (its first `size` bytes). */
  data: Uint8Array;
  /** The cache it came from, or null for kmalloc. */
  cache: KmemCache | null;
}

type Op =
  | { kind: 'kmalloc' | 'kzalloc'; size: number }
  | { kind: 'kcalloc'; n: number; size: number }
  | { kind: 'krealloc'; pick: number; size: number }
  | { kind: 'kfree'; pick: number }
  | { kind: 'badFree'; pick: number; offset: number }
  | { kind: 'write'; pick: number; seed: number }
  | { kind: 'otherKmalloc'; size: number }
  | {
      kind: 'bulkFree';
      picks: number[];
      other: boolean;
      dup: boolean;
      bad: boolean;
      cache: boolean;
    }
  | { kind: 'cacheAlloc'; which: number }
  | { kind: 'cacheDestroy'; which: number };

/** Sizes weighted to the small classes, with some large ones (whole pages). */
const sizeArb = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 256 }) },
  { weight: 3, arbitrary: fc.integer({ min: 257, max: 8192 }) },
  { weight: 1, arbitrary: fc.integer({ min: 8193, max: 5 * PAGE_SIZE }) },
);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constantFrom('kmalloc' as const, 'kzalloc' as const),
      size: sizeArb,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('kcalloc' as const),
      n: fc.integer({ min: 0, max: 40 }),
      size: fc.integer({ min: 0, max: 300 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('krealloc' as const), pick: fc.nat(), size: sizeArb }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('kfree' as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('badFree' as const),
      pick: fc.nat(),
      offset: fc.integer({ min: -16, max: 16 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      pick: fc.nat(),
      seed: fc.nat(255),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('otherKmalloc' as const), size: sizeArb }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('bulkFree' as const),
      picks: fc.array(fc.nat(), { maxLength: 40 }),
      other: fc.boolean(),
      dup: fc.boolean(),
      bad: fc.boolean(),
      cache: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('cacheAlloc' as const), which: fc.nat(2) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('cacheDestroy' as const), which: fc.nat(2) }),
  },
);

const CACHE_SIZES = [24, 100, 1000];

class World {
  readonly k = Kernel.boot({ memoryBytes: 8 * 2 ** 20 });
  readonly boot = this.k.stats();
  /** A second attachment (another thread's view): its frees of k's objects are remote, and k's of its. */
  readonly other = Kernel.attach(this.k.handle);
  readonly model = new Map<number, ModelObject>();
  readonly caches: (KmemCache | null)[] = [null, null, null];
  badFrees = 0;

  nth(pick: number): [number, ModelObject] | undefined {
    const keys = [...this.model.keys()].sort((a, b) => a - b);
    if (keys.length === 0) return undefined;
    const key = keys[pick % keys.length]!;
    return [key, this.model.get(key)!];
  }

  added(kaddr: number | null, size: number, zeroed: boolean, cache: KmemCache | null): void {
    if (kaddr === null) return; // memory short is allowed: the final comparison finds leaks
    expect(this.model.has(kaddr)).toBe(false);
    expect(this.k.ksize(kaddr)).toBeGreaterThanOrEqual(size);
    const data = this.k.view(kaddr, size).slice();
    // kzalloc and kcalloc zero all the usable bytes, not only those asked for
    if (zeroed) expect(this.k.view(kaddr, this.k.ksize(kaddr)).every((b) => b === 0)).toBe(true);
    // dirty the rest, so that a later object here shows whether it was zeroed
    this.k.view(kaddr, this.k.ksize(kaddr)).fill(0xa5, size);
    this.model.set(kaddr, { size, data, cache });
  }

  freed(kaddr: number): void {
    this.model.delete(kaddr);
    expect(this.k.ksize(kaddr)).toBe(0);
  }

  step(op: Op): void {
    const { k } = this;
    switch (op.kind) {
      case 'kmalloc':
      case 'kzalloc':
        this.added(k[op.kind](op.size), op.size, op.kind === 'kzalloc', null);
        return;
      case 'kcalloc':
        this.added(k.kcalloc(op.n, op.size), op.n * op.size, true, null);
        return;
      case 'krealloc': {
        const hit = this.nth(op.pick);
        if (hit?.[1].cache !== null) return;
        const [kaddr, obj] = hit;
        const moved = k.krealloc(kaddr, op.size);
        if (moved === null) return;
        const keep = Math.min(obj.size, op.size);
        expect(k.view(moved, keep)).toEqual(obj.data.subarray(0, keep));
        if (moved !== kaddr) this.freed(kaddr);
        this.model.delete(kaddr);
        const data = k.view(moved, op.size).slice();
        this.model.set(moved, { size: op.size, data, cache: null });
        return;
      }
      case 'kfree': {
        const hit = this.nth(op.pick);
        if (hit === undefined) return;
        expect(k.view(hit[0], hit[1].size)).toEqual(hit[1].data);
        if (hit[1].cache !== null && op.pick % 2 === 0) hit[1].cache.free(hit[0]);
        else k.kfree(hit[0]);
        this.freed(hit[0]);
        return;
      }
      case 'badFree': {
        const hit = this.nth(op.pick);
        const at = hit === undefined ? k.layout.kmallocStart + op.offset * 8 : hit[0] + op.offset;
        if (this.model.has(at)) return; // that is a good free
        k.kfree(at);
        this.badFrees++;
        return;
      }
      case 'write': {
        const hit = this.nth(op.pick);
        if (hit === undefined) return;
        hit[1].data.fill(op.seed);
        k.view(hit[0], k.ksize(hit[0])).fill(op.seed);
        return;
      }
      case 'otherKmalloc':
        this.added(this.other.kmalloc(op.size), op.size, false, null);
        return;
      case 'bulkFree': {
        const kaddrs = [...new Set(op.picks.map((p) => this.nth(p)?.[0]))].filter(
          (x) => x !== undefined,
        );
        // through a cache: only that cache's objects (the first picked object's cache, if any)
        const cache = op.cache ? (this.model.get(kaddrs[0] ?? NaN)?.cache ?? null) : null;
        const good =
          cache === null ? kaddrs : kaddrs.filter((x) => this.model.get(x)!.cache === cache);
        for (const x of good)
          expect(k.view(x, this.model.get(x)!.size)).toEqual(this.model.get(x)!.data);
        const list: (number | null)[] = [null, ...good];
        if (op.dup && good.length > 0) list.push(good[good.length >> 1]!);
        if (op.bad) list.splice(list.length >> 1, 0, (good[0] ?? k.layout.kmallocStart) + 4);
        if (cache !== null) cache.freeBulk(list);
        else if (op.picks.length % 2 === 0) (op.other ? this.other : k).kfreeBulk(list);
        // a typed array, as a ring of kaddrs is (no nulls in it), freed from the middle
        else {
          const ring = Float64Array.from([0, ...list.filter((x) => x !== null), 0]);
          (op.other ? this.other : k).kfreeBulk(ring, 1, ring.length - 1);
        }
        for (const x of good) this.freed(x);
        this.badFrees += (op.dup && good.length > 0 ? 1 : 0) + (op.bad ? 1 : 0);
        return;
      }
      case 'cacheAlloc': {
        const size = CACHE_SIZES[op.which]!;
        this.caches[op.which] ??= k.kmemCacheCreate(`model-${size}`, size);
        const cache = this.caches[op.which]!;
        this.added(cache.alloc(), size, false, cache);
        return;
      }
      case 'cacheDestroy': {
        const cache = this.caches[op.which];
        if (cache === null || cache === undefined) return;
        const live = [...this.model.values()].some((o) => o.cache === cache);
        expect(cache.destroy()).toBe(live ? -16 : 0);
        if (!live) this.caches[op.which] = null;
        return;
      }
    }
  }

  /** No two live objects overlap; each still holds what the model says. */
  check(): void {
    const spans = [...this.model].map(([kaddr]) => [kaddr, kaddr + this.k.ksize(kaddr)] as const);
    spans.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++)
      expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
    expect(this.k.stats().badFrees).toBe(this.badFrees);
  }

  freeAll(): void {
    for (const [kaddr, obj] of this.model) {
      expect(this.k.view(kaddr, obj.size)).toEqual(obj.data);
      this.k.kfree(kaddr);
    }
    this.model.clear();
    for (const cache of this.caches) if (cache !== null) expect(cache.destroy()).toBe(0);
    this.other.detach(); // its active slabs go back, empty ones to the page allocator
  }
}

describe('kmalloc against a model of live objects', () => {
  it('keeps objects apart, sized, zeroed where promised and intact, and ends at the boot values', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 300 }), (ops) => {
        const w = new World();
        ops.forEach((op, i) => {
          w.step(op);
          w.check();
          if (i % 50 === 49) w.k.checkInvariants();
        });
        w.k.checkInvariants();
        w.freeAll();
        expect(w.k.stats()).toEqual({ ...w.boot, badFrees: w.badFrees });
        w.k.checkInvariants();
      }),
      { numRuns: 60 },
    );
  });
});
