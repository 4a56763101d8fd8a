/**
 * kmalloc and slab caches: the calls `Kernel` exposes.
 *
 * Kernel counterparts: `include/linux/slab.h` and `mm/slab_common.c` (`kmalloc`, `kzalloc`,
 * `kcalloc`, `krealloc`, `kfree`, `ksize`, `kmem_cache_create`, `kmem_cache_destroy`,
 * `kmalloc_large`), over the allocator of slab.ts and slab-cpu.ts.
 *
 * Sizes 1 … KMALLOC_MAX_CACHE_SIZE (8 KiB) come from the kmalloc caches (`kmalloc-8` …
 * `kmalloc-8k`); larger sizes get whole, physically contiguous pages (`kmalloc_large`), whose
 * first frame's tag marks them (frame LINK word: the page count). Every kaddr is in the kmalloc
 * range, `layout.kmallocStart` + the physical byte address, so a view of an object is one view.
 *
 * @module
 */
import { EBUSY, EINVAL, PAGE_SIZE } from './errno.js';
import { allocContig } from './contig.js';
import { ownerTag, putFrame } from './frame-alloc.js';
import {
  Cache,
  Frame,
  FRAME_WORDS,
  FrameKind,
  Hdr,
  KMEM_CACHES,
  OWNER_ID_SHIFT,
  OWNER_KIND_MASK,
  SLAB_HEADER_WORDS,
} from './layout.js';
import { spinLock, spinUnlock } from './lock.js';
import { clearFrames, type PhysMem } from './phys-mem.js';
import {
  cacheName,
  cacheWord,
  discardSlabLocked,
  KMALLOC_MAX_CACHE_SIZE,
  KMALLOC_MIN_ALIGN,
  KMALLOC_SIZES,
  NR_KMALLOC_CACHES,
  objIndex,
  objOffset,
  PAGE_WORDS,
  SLAB_CACHE_MASK,
  SLAB_FRAME_SHIFT,
  SLAB_LARGE,
  slabTag,
  writeCache,
} from './slab.js';
import { FreeResult, SIZE_INDEX, type SlabCpu } from './slab-cpu.js';
import { kfreeBulk } from './slab-bulk.js';
import { checkAttached, inKernel } from './thread.js';

/** The kmalloc cache for `size` bytes, 1 … 8192 (`kmalloc_index`). */
export function kmallocIndex(size: number): number {
  return size <= 192 ? SIZE_INDEX[(size + 7) >>> 3]! : 31 - Math.clz32(size - 1);
}

/**
 * Run `alloc`, and when it finds memory short, give back the empty slabs this thread holds and
 * those the caches keep ({@link SlabCpu.shrink}) and run it once more: frames kept for reuse, by
 * this thread or by a cache, never make this thread's allocation fail (another live thread's
 * empty slabs are its own until it lets them go). Context: a caller that holds no lock (the
 * shrink takes list_locks).
 */
export function retryAfterShrink<T>(cpu: SlabCpu, alloc: () => T | null): T | null {
  const got = alloc();
  return got !== null || cpu.shrink() === 0 ? got : alloc();
}

/**
 * `kmalloc` (`zero`: `kzalloc`): a kaddr, or null for a bad size (0, negative, fractional, NaN,
 * not a number, larger than physical memory) or when memory is short.
 * Context: the owning thread; lock-free unless its active slab is used up.
 */
export function kmalloc(cpu: SlabCpu, size: unknown, zero: boolean): number | null {
  checkAttached(cpu.mem);
  if (
    typeof size === 'number' &&
    size > 0 &&
    size <= KMALLOC_MAX_CACHE_SIZE &&
    (size | 0) === size
  ) {
    const cache = kmallocIndex(size);
    const kaddr = cpu.allocOrShrink(cache, 1);
    if (kaddr === 0) return null;
    if (zero) {
      const at = kaddr - cpu.mem.layout.kmallocStart;
      cpu.mem.u8.fill(0, at, at + KMALLOC_SIZES[cache]!);
    }
    return kaddr;
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0) return null;
  if (size > cpu.mem.layout.totalFrames * PAGE_SIZE) return null; // bad input: no shrink
  return retryAfterShrink(cpu, () => kmallocLarge(cpu.mem, size, zero));
}

/** Whole contiguous pages for a valid size above the largest class (`kmalloc_large`): its caller checks it. */
function kmallocLarge(mem: PhysMem, size: number, zero: boolean): number | null {
  const pages = Math.ceil(size / PAGE_SIZE);
  const { i32 } = mem;
  return inKernel(mem, () => {
    const pfns = new Int32Array(pages);
    if (
      !allocContig(mem, pages, 1, false, ownerTag(FrameKind.INFLIGHT, mem.current.slot), pfns, null)
    )
      return null;
    const head = pfns[0]!;
    if (zero) clearFrames(mem, head, pages);
    i32[mem.frameTable + head * FRAME_WORDS + Frame.LINK] = pages;
    for (let j = 1; j < pages; j++)
      Atomics.store(
        i32,
        mem.frameTable + (head + j) * FRAME_WORDS + Frame.OWNER,
        slabTag(SLAB_LARGE, j),
      );
    Atomics.add(i32, Hdr.KMALLOC_LARGE_FRAMES, pages);
    Atomics.store(i32, mem.frameTable + head * FRAME_WORDS + Frame.OWNER, slabTag(SLAB_LARGE, 0));
    return mem.layout.kmallocStart + head * PAGE_SIZE;
  });
}

/** Free a large kmalloc whose first frame is `head`; false when it is not live (lost a race). */
export function kfreeLarge(mem: PhysMem, head: number): boolean {
  const { i32 } = mem;
  return inKernel(mem, () => {
    const tagAt = mem.frameTable + head * FRAME_WORDS + Frame.OWNER;
    const mine = ownerTag(FrameKind.INFLIGHT, mem.current.slot);
    if (
      Atomics.compareExchange(i32, tagAt, slabTag(SLAB_LARGE, 0), mine) !== slabTag(SLAB_LARGE, 0)
    )
      return false;
    const pages = i32[mem.frameTable + head * FRAME_WORDS + Frame.LINK]!;
    Atomics.sub(i32, Hdr.KMALLOC_LARGE_FRAMES, pages);
    for (let j = 0; j < pages; j++) putFrame(mem, head + j);
    return true;
  });
}

/**
 * `kfree`: null is a no-op; anything that is not a live object (of cache `only`, when ≥ 0) is
 * counted in `Hdr.BAD_FREES` and changes nothing. Context: the owning thread.
 */
export function kfree(cpu: SlabCpu, kaddr: unknown, only = -1): void {
  checkAttached(cpu.mem);
  if (kaddr === null) return;
  if (typeof kaddr === 'number') {
    const r = cpu.free(kaddr, only);
    if (r === FreeResult.FREED) return;
    if (r === FreeResult.LARGE && kfreeLarge(cpu.mem, cpu.largeHead)) return;
  }
  Atomics.add(cpu.mem.i32, Hdr.BAD_FREES, 1);
}

/**
 * The range `[start, end)` of a bulk call over `kaddrs` (defaults: all of it). Throws `TypeError`
 * when `kaddrs` is not array-like (an object with a length) and `RangeError` unless
 * 0 ≤ start ≤ end ≤ length, all integers. Context: pure.
 */
export function bulkRange(kaddrs: unknown, start: unknown, end: unknown): [number, number] {
  if (typeof kaddrs !== 'object' || kaddrs === null || !('length' in kaddrs))
    throw new TypeError('kfreeBulk: kaddrs must be an array or a typed array of kaddrs');
  const length = kaddrs.length;
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0)
    throw new TypeError('kfreeBulk: kaddrs must be an array or a typed array of kaddrs');
  const from = start ?? 0;
  const to = end ?? length;
  if (
    typeof from !== 'number' ||
    typeof to !== 'number' ||
    !Number.isSafeInteger(from) ||
    !Number.isSafeInteger(to) ||
    from < 0 ||
    from > to ||
    to > length
  )
    throw new RangeError(
      `kfreeBulk: [start, end) must be integers with 0 ≤ start ≤ end ≤ ${length}`,
    );
  return [from, to];
}

/** A live object: physical byte address of its start, its usable size and its cache. */
export interface KObject {
  readonly start: number;
  readonly size: number;
  readonly cache: number;
}

/**
 * The live object that starts at `kaddr` (with `interior`: that contains it, padding excluded),
 * or null. Context: any thread (a snapshot).
 */
export function findObject(mem: PhysMem, kaddr: unknown, interior: boolean): KObject | null {
  if (typeof kaddr !== 'number') return null;
  const off = kaddr - mem.layout.kmallocStart;
  if (!(off >= 0 && off < mem.layout.totalFrames * PAGE_SIZE)) return null;
  const { i32 } = mem;
  const pfn = Math.floor(off / PAGE_SIZE);
  const tag = Atomics.load(i32, mem.frameTable + pfn * FRAME_WORDS + Frame.OWNER);
  if ((tag & OWNER_KIND_MASK) !== FrameKind.SLAB) return null;
  const id = tag >>> OWNER_ID_SHIFT;
  const cache = id & SLAB_CACHE_MASK;
  const j = id >>> SLAB_FRAME_SHIFT;
  const head = pfn - j;
  const headTag = Atomics.load(i32, mem.frameTable + head * FRAME_WORDS + Frame.OWNER);
  if (headTag !== slabTag(cache, 0)) return null;
  if (cache === SLAB_LARGE) {
    const start = head * PAGE_SIZE;
    if (!interior && off !== start) return null;
    const pages = i32[mem.frameTable + head * FRAME_WORDS + Frame.LINK]!;
    return { start, size: pages * PAGE_SIZE, cache };
  }
  const g = cacheWord(mem, cache, 0);
  const idx = objIndex(i32, g, j, off - head * PAGE_SIZE, interior);
  if (idx < 0) return null;
  const base = head * PAGE_WORDS + SLAB_HEADER_WORDS + (idx >>> 5);
  const bit = 1 << (idx & 31);
  const bw = i32[g + Cache.BITMAP_WORDS]!;
  if ((i32[base]! & bit) === 0 || (Atomics.load(i32, base + bw) & bit) !== 0) return null;
  const start = head * PAGE_SIZE + objOffset(i32, g, idx);
  const size = i32[g + Cache.SIZE]!;
  if (off >= start + size) return null; // padding between objects
  return { start, size, cache };
}

/** `ksize`: the usable size of the live object at `kaddr`, or 0. Context: any thread. */
export function ksize(mem: PhysMem, kaddr: unknown): number {
  return findObject(mem, kaddr, false)?.size ?? 0;
}

/**
 * `krealloc`: the same object when `newSize` fits it, else a new one holding its bytes (the old
 * one freed). Null for a bad size, an address that is not a live object, or memory short; the old
 * object is then unchanged and still live. `kaddr` null: a plain kmalloc. Context: owning thread.
 */
export function krealloc(cpu: SlabCpu, kaddr: unknown, newSize: unknown): number | null {
  if (kaddr === null) return kmalloc(cpu, newSize, false);
  const obj = findObject(cpu.mem, kaddr, false);
  if (obj === null || typeof newSize !== 'number' || !Number.isSafeInteger(newSize) || newSize <= 0)
    return null;
  if (newSize <= obj.size) return kaddr as number;
  const moved = kmalloc(cpu, newSize, false);
  if (moved === null) return null;
  cpu.mem.u8.copyWithin(moved - cpu.mem.layout.kmallocStart, obj.start, obj.start + obj.size);
  kfree(cpu, kaddr);
  return moved;
}

/** `kcalloc`: `n * size` zeroed bytes; null when the product overflows (or as kmalloc). */
export function kcalloc(cpu: SlabCpu, n: unknown, size: unknown): number | null {
  if (typeof n !== 'number' || typeof size !== 'number') return null;
  if (!Number.isSafeInteger(n) || !Number.isSafeInteger(size) || n < 0 || size < 0) return null;
  const bytes = n * size;
  return Number.isSafeInteger(bytes) ? kmalloc(cpu, bytes, true) : null;
}

/** Options of `kmemCacheCreate`. */
export interface KmemCacheOptions {
  /** Object alignment in bytes: a power of two up to PAGE_SIZE; at least 8 is used. */
  readonly align?: number;
}

/** A cache name: 1 … 31 printable ASCII characters, no space (a slabinfo column). */
const NAME_RE = /^[\x21-\x7e]{1,31}$/;

/**
 * `kmem_cache_create`: a new cache's slot and generation, or null for a bad name, size (1 … 8192)
 * or alignment, or when the cache table is full. Context: any thread; takes slab_mutex.
 */
export function kmemCacheCreate(
  mem: PhysMem,
  name: unknown,
  size: unknown,
  options: unknown,
): [slot: number, gen: number] | null {
  if (typeof name !== 'string' || !NAME_RE.test(name)) return null;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 1) return null;
  if (size > KMALLOC_MAX_CACHE_SIZE) return null;
  if (options !== undefined && (typeof options !== 'object' || options === null)) return null;
  let align: unknown = KMALLOC_MIN_ALIGN; // only an absent align means the default, not null
  if ((options as KmemCacheOptions | undefined)?.align !== undefined)
    align = (options as KmemCacheOptions).align;
  if (
    typeof align !== 'number' ||
    !Number.isSafeInteger(align) ||
    align < 1 ||
    align > PAGE_SIZE ||
    (align & (align - 1)) !== 0
  )
    return null;
  return inKernel(mem, () => {
    spinLock(mem, Hdr.KMEM_LOCK);
    try {
      for (let slot = NR_KMALLOC_CACHES; slot < KMEM_CACHES; slot++) {
        if (mem.i32[cacheWord(mem, slot, Cache.GEN)]! & 1) continue;
        writeCache(mem, slot, name, size, align);
        return [slot, mem.i32[cacheWord(mem, slot, Cache.GEN)]!] as [number, number];
      }
      return null;
    } finally {
      spinUnlock(mem, Hdr.KMEM_LOCK);
    }
  });
}

/** The first frames of every live slab of `cache` (a scan of the frame table). */
export function slabsOf(mem: PhysMem, cache: number): number[] {
  const { i32 } = mem;
  const heads: number[] = [];
  const tag = slabTag(cache, 0);
  for (let pfn = mem.layout.metadataFrames; pfn < mem.layout.totalFrames; pfn++) {
    if (i32[mem.frameTable + pfn * FRAME_WORDS + Frame.OWNER] === tag) heads.push(pfn);
  }
  return heads;
}

/** Objects of a slab that are allocated (not free, not remote-freed). */
export function liveObjects(mem: PhysMem, cache: number, head: number): number {
  const { i32 } = mem;
  const bw = i32[cacheWord(mem, cache, Cache.BITMAP_WORDS)]!;
  const base = head * PAGE_WORDS + SLAB_HEADER_WORDS;
  let live = 0;
  for (let w = 0; w < bw; w++) {
    let bits = i32[base + w]! & ~Atomics.load(i32, base + bw + w);
    for (; bits !== 0; bits &= bits - 1) live++;
  }
  return live;
}

/**
 * `kmem_cache_destroy`: 0, `-EBUSY` (a live object; nothing changes) or `-EINVAL` (not live).
 * Every slab goes, also those other threads hold as their active or kept slabs (they hold no
 * object of them; their handle of the cache sees it dead). As in Linux, allocating from the cache while it is
 * destroyed is the caller's bug. Context: any thread; takes slab_mutex and the list_lock.
 */
export function kmemCacheDestroy(mem: PhysMem, slot: number, gen: number): number {
  return inKernel(mem, () => {
    spinLock(mem, Hdr.KMEM_LOCK);
    const lock = cacheWord(mem, slot, Cache.LOCK);
    spinLock(mem, lock);
    try {
      if (mem.i32[cacheWord(mem, slot, Cache.GEN)] !== gen) return -EINVAL;
      const heads = slabsOf(mem, slot);
      if (heads.some((head) => liveObjects(mem, slot, head) > 0)) return -EBUSY;
      for (const head of heads) discardSlabLocked(mem, slot, head);
      Atomics.add(mem.i32, cacheWord(mem, slot, Cache.GEN), 1); // odd → even: dead
      return 0;
    } finally {
      spinUnlock(mem, lock);
      spinUnlock(mem, Hdr.KMEM_LOCK);
    }
  });
}

/** A slab cache (`struct kmem_cache`), seen from one thread. */
export class KmemCache {
  readonly #cpu: SlabCpu;
  readonly #slot: number;
  readonly #gen: number;
  readonly #genAt: number;

  /** @internal */
  constructor(cpu: SlabCpu, slot: number, gen: number) {
    this.#cpu = cpu;
    this.#slot = slot;
    this.#gen = gen;
    this.#genAt = cacheWord(cpu.mem, slot, Cache.GEN) | 0; // an Int32 index (not a boxed double)
  }

  /** The cache's id: `kernel.kmemCache(id)` finds it from any attached thread. */
  get id(): number {
    return this.#slot;
  }

  /** The name given at creation ('' once destroyed). */
  get name(): string {
    return this.live ? cacheName(this.#cpu.mem, this.#slot) : '';
  }

  /** The object size asked for (what `ksize` reports for its objects). */
  get size(): number {
    return this.#cpu.mem.i32[cacheWord(this.#cpu.mem, this.#slot, Cache.SIZE)]!;
  }

  /** False once the cache has been destroyed (through any handle, in any thread). */
  get live(): boolean {
    return this.#cpu.mem.i32[this.#genAt] === this.#gen;
  }

  /** `kmem_cache_alloc`: an object's kaddr, or null (memory short, or the cache destroyed). */
  alloc(): number | null {
    const cpu = this.#cpu;
    if (cpu.mem.current.base < 0) checkAttached(cpu.mem);
    if (cpu.mem.i32[this.#genAt] !== this.#gen) return null;
    const kaddr = cpu.allocOrShrink(this.#slot, this.#gen);
    return kaddr === 0 ? null : kaddr;
  }

  /**
   * `kmem_cache_free`: null is a no-op; anything else that is not a live object of this cache is
   * counted in `stats().badFrees` and changes nothing.
   */
  free(kaddr: number | null): void {
    const cpu = this.#cpu;
    if (cpu.mem.current.base < 0) checkAttached(cpu.mem);
    if (kaddr !== null && cpu.mem.i32[this.#genAt] !== this.#gen) {
      Atomics.add(cpu.mem.i32, Hdr.BAD_FREES, 1);
      return;
    }
    kfree(cpu, kaddr, this.#slot);
  }

  /**
   * `kmem_cache_free_bulk`: free `kaddrs[start … end)`, each entry as {@link KmemCache.free}
   * would, objects of another thread's slab a bitmap word at a time (see `Kernel.kfreeBulk`).
   * Throws `TypeError` when `kaddrs` is not array-like and `RangeError` for a bad range.
   */
  freeBulk(kaddrs: ArrayLike<number | null>, start?: number, end?: number): void {
    const cpu = this.#cpu;
    checkAttached(cpu.mem);
    const [from, to] = bulkRange(kaddrs, start, end);
    if (cpu.mem.i32[this.#genAt] === this.#gen) {
      kfreeBulk(cpu, kaddrs, from, to, this.#slot);
      return;
    }
    let bad = 0;
    for (let i = from; i < to; i++) if (kaddrs[i] !== null) bad++;
    if (bad > 0) Atomics.add(cpu.mem.i32, Hdr.BAD_FREES, bad);
  }

  /** `kmem_cache_destroy`: 0, `-EBUSY` while an object is live, `-EINVAL` when already destroyed. */
  destroy(): number {
    checkAttached(this.#cpu.mem);
    return kmemCacheDestroy(this.#cpu.mem, this.#slot, this.#gen);
  }
}
