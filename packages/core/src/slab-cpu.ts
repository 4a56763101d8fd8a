/**
 * The per-thread side of the slab allocator: each attachment's active slab per cache, and the
 * allocation and free paths.
 *
 * Kernel counterpart: `struct kmem_cache_cpu` and the fast paths of `mm/slub.c`
 * (`slab_alloc_node`, `do_slab_free`), with mimalloc's local/remote split.
 *
 * The active slabs live in this object (plain JavaScript, one per attachment) and in each slab's
 * FROZEN word (shared), which is what a recovery reads. The fast paths — allocation from the
 * active slab, and a free of an object of a slab this thread holds — touch only words the holder
 * alone writes, with plain loads and stores, and no `Atomics`; they are not kernel calls (a
 * recovery may run beside them: it never touches a live thread's held slabs). A free into a slab
 * held by another thread, or by none, is one `Atomics.or` and one `Atomics.load` — and a bulk free
 * (slab-bulk.ts) gives back every object of one bitmap word with one `Atomics.or`; everything else
 * (taking remote frees back, changing slabs, listing and discarding) is a kernel call.
 *
 * Nothing here is shared between attachments except through the buffer: this object's fields
 * (`active`, the divisor table, …) are one thread's, so two threads allocating from their own
 * slabs write no common word and no common cache line.
 *
 * @module
 */
import { PAGE_SHIFT, PAGE_SIZE } from './errno.js';
import {
  Cache,
  CACHE_WORDS,
  FRAME_WORDS,
  Frame,
  FrameKind,
  KMEM_CACHES,
  OWNER_ID_SHIFT,
  OWNER_KIND_MASK,
  Slab,
  SLAB_HEADER_WORDS,
} from './layout.js';
import { spinLock, spinUnlock } from './lock.js';
import type { PhysMem } from './phys-mem.js';
import {
  cacheGen,
  cacheWord,
  KMALLOC_MAX_CACHE_SIZE,
  collectRemote,
  cpuFullSlabs,
  deactivateSlabLocked,
  MAX_CPU_FULL,
  newSlab,
  NR_KMALLOC_CACHES,
  objIndex,
  PAGE_WORDS,
  resolveSlab,
  SLAB_CACHE_MASK,
  SLAB_FRAME_SHIFT,
  SLAB_LARGE,
  shrinkCaches,
  slabInuse,
  slabTag,
  takePartialLocked,
} from './slab.js';
import { checkAttached, inKernel, kernelEnter, kernelExit } from './thread.js';
import { bug } from './bug.js';

/** kmalloc cache of sizes 1 … 192, by `(size + 7) >> 3` (`kmalloc_size_index`). */
export const SIZE_INDEX: Int8Array = Int8Array.of(
  0,
  0,
  1,
  2,
  2,
  3,
  3,
  3,
  3,
  4,
  4,
  4,
  4,
  5,
  5,
  5,
  5,
  6,
  6,
  6,
  6,
  6,
  6,
  6,
  6,
);
/**
 * Division by a stride without a division (`reciprocal_divide`): for every stride `s` (a multiple of
 * 8 up to 8192), entry `s >> 3` holds `m << 5 | k` with `k = 12 + ceil(log2 s)` and
 * `m = ceil(2^k / s)`, so that `Math.imul(rel, m) >>> k` is `floor(rel / s)` for every `rel` in
 * [0, 4096) (the error term stays below `1 / s` because `2^k ≥ 4096 s`; `m < 2^13 + 1`, so the
 * product fits 32 bits). The free fast path checks `idx * s === rel` anyway.
 */
export const STRIDE_DIVISORS: Int32Array = Int32Array.from({ length: 8192 / 8 + 1 }, (_, i) => {
  const s = Math.max(8, i * 8);
  const k = 12 + Math.ceil(Math.log2(s));
  return (Math.ceil(2 ** k / s) << 5) | k;
});

/** Shift of the frame index in a slab frame's owner word (kind, cache, then frame index). */
const FRAME_INDEX_SHIFT = OWNER_ID_SHIFT + SLAB_FRAME_SHIFT;

/**
 * The layout values the fast paths below write as literals, checked once when the module loads:
 * a change to layout.ts that they miss fails at once instead of corrupting memory.
 */
export const FAST_PATH_CONSTANTS: readonly (readonly [number, number])[] = [
  [PAGE_SIZE, 4096],
  [PAGE_SHIFT, 12],
  [PAGE_WORDS, 1024],
  [FRAME_WORDS, 3],
  [OWNER_KIND_MASK, 7],
  [FrameKind.SLAB, 7],
  [OWNER_ID_SHIFT, 3],
  [FRAME_INDEX_SHIFT, 10],
  [SLAB_LARGE, 127],
  [Slab.FROZEN, 0],
  [Slab.LISTED, 1],
  [Slab.SEQ, 2],
  [Slab.FREELIST, 6],
  [Slab.GEOMETRY, 7],
  [Slab.SHAPE, 8],
  [SLAB_HEADER_WORDS, 9],
  [KMALLOC_MAX_CACHE_SIZE, 8192],
];
if (FAST_PATH_CONSTANTS.some(([real, literal]) => real !== literal))
  bug('slab-cpu: a fast-path literal disagrees with layout.ts');

/** What {@link SlabCpu.free} found. */
export const enum FreeResult {
  /** freed */
  FREED = 0,
  /** not a live object (of that cache): nothing changed */
  BAD = 1,
  /** a large kmalloc (whole pages): the caller frees it */
  LARGE = 2,
}

/** One attachment's slab state (`kmem_cache_cpu` for every cache). */
export class SlabCpu {
  readonly mem: PhysMem;
  private readonly i32: Int32Array;
  /** First pfn + 1 of this thread's active slab, per cache; 0 = none. */
  readonly active: Int32Array = new Int32Array(KMEM_CACHES);
  /**
   * The cache generation each active slab, and the kept slabs below, were taken under (a destroyed
   * cache's slabs are stale).
   */
  readonly activeGen: Int32Array = new Int32Array(KMEM_CACHES);
  /**
   * Per cache, the used-up slabs this thread keeps frozen ({@link cpuFullSlabs}), oldest first, a
   * ring of {@link MAX_CPU_FULL} entries: the i-th oldest (i < `fullCount[cache]`) is first pfn + 1
   * at `cache * MAX_CPU_FULL + ((fullHead[cache] + i) & (MAX_CPU_FULL - 1))`.
   */
  readonly full: Int32Array = new Int32Array(KMEM_CACHES * MAX_CPU_FULL);
  readonly fullHead: Int32Array = new Int32Array(KMEM_CACHES);
  readonly fullCount: Int32Array = new Int32Array(KMEM_CACHES);
  /** Int32 index of frame 0's owner word. */
  private readonly owners: number;
  /** Bytes of physical memory. */
  private readonly limit: number;
  /** Bytes of physical memory the free fast path serves: up to 2 GiB (offsets that fit an Int32). */
  private readonly fastLimit: number;
  /** The kaddr of physical byte 0 (`layout.kmallocStart`). */
  private readonly start: number;
  /** Int32 index of cache record 0. */
  private readonly caches: number;
  /**
   * This attachment's thread slot + 1: the FROZEN value of the slabs it holds; -1 once detached
   * (matches no FROZEN value, so a detached handle's free never takes the local path).
   */
  private me: number;
  /** Per cache: the stride `inverse` was computed for, and 1 / stride. */
  private readonly strideOf: Int32Array = new Int32Array(KMEM_CACHES);
  private readonly inverse: Float64Array = new Float64Array(KMEM_CACHES);
  /** {@link SIZE_INDEX}, as a field: read on the fast path. */
  private readonly sizeIndex: Int8Array = SIZE_INDEX;
  /** {@link STRIDE_DIVISORS}, as a field: read on the fast path. */
  private readonly divisors: Int32Array = STRIDE_DIVISORS;
  /** Kmalloc caches: caches below this id are never destroyed. */
  private readonly kmallocCaches: number = NR_KMALLOC_CACHES;
  /**
   * The slab {@link SlabCpu.kfreeFast} last freed into, when it is one of a kmalloc cache's that
   * this thread holds (first pfn; -1 for none), and its GEOMETRY and SHAPE words: a free into it
   * again skips the owner tag, FROZEN and the descriptor's loads. Valid while this thread holds the
   * slab, which only this thread can end (kmalloc caches are never destroyed, and a recovery never
   * touches a live thread's slabs): every path that lets a slab go forgets it first.
   */
  private lastPfn = -1;
  private lastGeometry = 0;
  private lastShape = 0;
  /** After a free: the first pfn of the large kmalloc it found (FreeResult.LARGE). */
  largeHead = -1;
  /**
   * What {@link SlabCpu.locate} found (valid after it returned FreeResult.FREED): the object's
   * slab (first pfn) and cache, the Int32 index of its alloc-bitmap word, the bitmap's words, the
   * object's bit in that word, and its byte offset in the slab.
   */
  foundHead = 0;
  foundCache = 0;
  foundWord = 0;
  foundWords = 0;
  foundBit = 0;
  foundOff = 0;

  /** Context: the attaching thread, once it has its thread slot. */
  constructor(mem: PhysMem) {
    this.mem = mem;
    this.i32 = mem.i32;
    const limit = mem.layout.totalFrames * PAGE_SIZE;
    // `| 0` where the values fit an Int32: numbers computed by divisions (Math.floor, wordIndex)
    // may be boxed doubles, and a field holding one makes every use on the fast path a float op
    const int = (n: number): number => (limit <= 2 ** 31 ? n | 0 : n);
    this.owners = int(mem.frameTable + Frame.OWNER);
    this.limit = int(limit);
    this.fastLimit = Math.min(limit, 2 ** 31 - PAGE_SIZE) | 0;
    this.start = int(mem.layout.kmallocStart);
    this.caches = int(mem.cacheTable);
    this.me = (mem.current.slot + 1) | 0;
  }

  /** The attachment is detaching: from now on no free is local (its slabs were flushed). */
  detach(): void {
    this.forgetLast();
    this.me = -1;
  }

  /**
   * `kmalloc` served from this thread's active slab: the kaddr, or 0 when this path cannot serve
   * it (a size that is not 1 … 8192, no free object in the active slab, a detached handle, whose
   * active slabs are all let go): the caller then takes the general path. Only kmalloc caches come
   * here, and they are never destroyed, so an active slab of theirs is always current.
   * Context: the owning thread; plain loads and stores only.
   */
  kmallocFast(size: number): number {
    // literals, not imported constants: an imported binding costs a load and a TDZ check per use
    // on this path (checked against layout.ts when the module loads, see FAST_PATH_CONSTANTS)
    if (typeof size !== 'number' || !(size > 0 && size <= 8192) || (size | 0) !== size) return 0;
    const cache = size <= 192 ? this.sizeIndex[(size + 7) >> 3]! : 31 - Math.clz32(size - 1);
    const s = this.active[cache]!;
    if (s === 0) return 0;
    const i32 = this.i32;
    const base = (s - 1) << 10; // PAGE_WORDS
    const link = i32[base + 6]!; // Slab.FREELIST
    if (link === 0) return 0;
    const off = link & 0xffff;
    const idx = (link >> 16) - 1;
    i32[base + 6] = i32[base + (off >> 2)]!;
    i32[base + 9 + (idx >> 5)]! |= 1 << (idx & 31); // SLAB_HEADER_WORDS: the alloc bitmap
    return this.start + ((s - 1) << 12) + off;
  }

  /**
   * `kfree` of an object of a slab this thread holds (its first frame): true when freed; false
   * for anything else — another thread's slab or nobody's (a remote free), a later frame of a
   * slab, a large kmalloc, memory past 2 GiB, not a live object — and the caller takes the
   * general path, which decides. Small enough for the JIT to inline into the caller.
   * Context: the owning thread; plain loads and stores only.
   */
  kfreeFast(kaddr: number): boolean {
    const off = kaddr - this.start;
    if (!(off >= 0 && off < this.fastLimit)) return false;
    const i32 = this.i32;
    const pfn = off >> 12;
    const base = pfn << 10;
    const slabOff = off - (pfn << 12); // keeps a fraction: no object starts there
    let geometry: number;
    let shape: number;
    if (pfn !== this.lastPfn) {
      const tag = i32[this.owners + pfn * 3]!; // FRAME_WORDS
      // the first frame of a slab: kind SLAB (7), frame index 0 (the bits from 10 up are 0), and
      // not a large kmalloc's (cache 127: its first frame holds data, not a descriptor)
      if ((tag & -1017) !== 7 || tag === 0x3ff) return false;
      if (i32[base]! !== this.me) return false; // Slab.FROZEN: not held by this thread
      // the geometry is on the slab's own descriptor line: Slab.GEOMETRY, Slab.SHAPE (init-only
      // for the slab's life, and the slab lives while this thread holds it)
      geometry = i32[base + 7]!;
      shape = i32[base + 8]!;
      // remember a kmalloc cache's slab (they are never destroyed: only this thread lets it go,
      // and forgets it then, see forgetLast)
      if (tag >> 3 < this.kmallocCaches) {
        this.lastPfn = pfn;
        this.lastGeometry = geometry;
        this.lastShape = shape;
      }
    } else {
      geometry = this.lastGeometry;
      shape = this.lastShape;
    }
    const stride = geometry & 0xffff;
    const rel = slabOff - (geometry >> 16);
    const mk = this.divisors[stride >> 3]!;
    const idx = Math.imul(rel, mk >> 5) >>> (mk & 31); // rel < 0 gives an idx past the objects
    if (idx >= (shape & 0xffff) || Math.imul(idx, stride) !== rel) return false;
    const aw = base + 9 + (idx >> 5);
    const bit = 1 << (idx & 31);
    const alloc = i32[aw]!;
    if ((alloc & bit) === 0 || (i32[aw + (shape >> 16)]! & bit) !== 0) return false;
    i32[base + (slabOff >> 2)] = i32[base + 6]!;
    i32[base + 6] = ((idx + 1) << 16) | slabOff;
    i32[aw] = alloc & ~bit;
    return true;
  }

  /** This thread lets slabs go, or is detaching: {@link SlabCpu.kfreeFast} forgets its last slab. */
  private forgetLast(): void {
    this.lastPfn = -1;
  }

  /**
   * A new object of `cache` (generation `gen`): its kaddr, or 0 when memory is short.
   * Context: the owning thread; lock-free unless the active slab is used up.
   */
  alloc(cache: number, gen: number): number {
    const s = this.active[cache]!;
    if (s !== 0 && this.activeGen[cache] === gen) {
      const i32 = this.i32;
      const base = (s - 1) * PAGE_WORDS;
      const link = i32[base + Slab.FREELIST]!;
      if (link !== 0) {
        const off = link & 0xffff;
        const idx = (link >>> 16) - 1;
        i32[base + Slab.FREELIST] = i32[base + (off >>> 2)]!;
        i32[base + SLAB_HEADER_WORDS + (idx >>> 5)]! |= 1 << (idx & 31);
        return this.start + (s - 1) * PAGE_SIZE + off;
      }
    }
    return this.allocSlow(cache, gen);
  }

  /**
   * Find the live object at `kaddr` (with `only` ≥ 0, only an object of that cache): FREED when it
   * is one (the `found…` fields say where), LARGE for the first byte of a large kmalloc
   * (`largeHead`), BAD for anything else. Changes nothing. Context: the owning thread.
   */
  locate(kaddr: number, only: number): FreeResult {
    const off = kaddr - this.start;
    if (off >= 0 && off < this.fastLimit) {
      // the common case first, as kfreeFast reads it: an object of a slab's first frame
      const i32 = this.i32;
      const pfn = off >> 12;
      const tag = i32[this.owners + pfn * 3]!;
      if ((tag & -1017) === 7 && tag !== 0x3ff && (only < 0 || tag >> 3 === only)) {
        const base = pfn << 10;
        const geometry = i32[base + 7]!;
        const stride = geometry & 0xffff;
        const slabOff = off - (pfn << 12); // keeps a fraction: no object starts there
        const rel = slabOff - (geometry >> 16);
        const mk = this.divisors[stride >> 3]!;
        const idx = Math.imul(rel, mk >> 5) >>> (mk & 31);
        const shape = i32[base + 8]!;
        if (idx >= (shape & 0xffff) || Math.imul(idx, stride) !== rel) return FreeResult.BAD;
        const aw = base + 9 + (idx >> 5);
        const bw = shape >> 16;
        const bit = 1 << (idx & 31);
        if ((i32[aw]! & bit) === 0 || (i32[aw + bw]! & bit) !== 0) return FreeResult.BAD;
        this.foundHead = pfn;
        this.foundCache = tag >> 3;
        this.foundWord = aw;
        this.foundWords = bw;
        this.foundBit = bit;
        this.foundOff = slabOff;
        return FreeResult.FREED;
      }
    }
    return this.locateSlow(kaddr, only);
  }

  /**
   * The index of the object that starts at `kaddr` in the first frame of slab `head`, whose
   * GEOMETRY and SHAPE words are given, or -1 when no object of that frame starts there (the
   * caller then takes {@link SlabCpu.locate}). For a bulk free's run: the run's slab holds live
   * objects, so it cannot go while the run lasts and its words need not be read again — unless
   * another thread double-frees those objects at the same moment, a data race in the caller that
   * the per-object reads did not close either (the run's bits are set after its last entry).
   * Context: any attached thread; pure arithmetic.
   */
  indexIn(kaddr: number, head: number, geometry: number, shape: number): number {
    const off = kaddr - this.start;
    if (!(off >= 0 && off < this.fastLimit) || off >> 12 !== head) return -1;
    const stride = geometry & 0xffff;
    const rel = off - (head << 12) - (geometry >> 16); // keeps a fraction: no object starts there
    const mk = this.divisors[stride >> 3]!;
    const idx = Math.imul(rel, mk >> 5) >>> (mk & 31); // rel < 0 gives an idx past the objects
    return idx < (shape & 0xffff) && Math.imul(idx, stride) === rel ? idx : -1;
  }

  /** {@link SlabCpu.locate} for everything but an object of a slab's first frame below 2 GiB. */
  private locateSlow(kaddr: number, only: number): FreeResult {
    const off = kaddr - this.start;
    if (!(off >= 0 && off < this.limit)) return FreeResult.BAD;
    const i32 = this.i32;
    const pfn = Math.floor(off / PAGE_SIZE);
    const tag = i32[this.owners + pfn * FRAME_WORDS]!;
    if ((tag & OWNER_KIND_MASK) !== FrameKind.SLAB) return FreeResult.BAD;
    const id = tag >>> OWNER_ID_SHIFT;
    const cache = id & SLAB_CACHE_MASK;
    const j = id >>> SLAB_FRAME_SHIFT;
    if (cache === SLAB_LARGE) {
      if (only >= 0 || j !== 0 || off !== pfn * PAGE_SIZE) return FreeResult.BAD;
      this.largeHead = pfn;
      return FreeResult.LARGE;
    }
    if (only >= 0 && cache !== only) return FreeResult.BAD;
    const head = pfn - j;
    if (j !== 0 && i32[this.owners + head * FRAME_WORDS] !== slabTag(cache, 0))
      return FreeResult.BAD; // no slab starts there: nothing to read a descriptor from
    const slabOff = off - head * PAGE_SIZE;
    const g = this.caches + cache * CACHE_WORDS;
    const stride = i32[g + Cache.STRIDE]!;
    let idx: number;
    if (j === 0 || stride > PAGE_SIZE) {
      // obj_to_index by a reciprocal (as SLUB's reciprocal_divide); exact for object starts
      if (this.strideOf[cache] !== stride) {
        this.strideOf[cache] = stride;
        this.inverse[cache] = 1 / stride;
      }
      const rel = slabOff - i32[g + Cache.OFFSET]!;
      idx = (rel * this.inverse[cache]! + 0.5) | 0;
      if (rel < 0 || idx * stride !== rel || idx >= i32[g + Cache.FIRST_OBJS]!)
        return FreeResult.BAD;
    } else {
      idx = objIndex(i32, g, j, slabOff, false);
      if (idx < 0) return FreeResult.BAD;
    }
    const base = head * PAGE_WORDS;
    const aw = base + SLAB_HEADER_WORDS + (idx >>> 5);
    const bw = i32[g + Cache.BITMAP_WORDS]!;
    const bit = 1 << (idx & 31);
    if ((i32[aw]! & bit) === 0 || (i32[aw + bw]! & bit) !== 0) return FreeResult.BAD;
    this.foundHead = head;
    this.foundCache = cache;
    this.foundWord = aw;
    this.foundWords = bw;
    this.foundBit = bit;
    this.foundOff = slabOff;
    return FreeResult.FREED;
  }

  /** True when this thread holds the slab {@link SlabCpu.locate} found (a free of it is local). */
  foundHeld(): boolean {
    return this.i32[this.foundHead * PAGE_WORDS + Slab.FROZEN] === this.me;
  }

  /**
   * Put the object {@link SlabCpu.locate} found back on the free list of its slab, which this
   * thread holds ({@link SlabCpu.foundHeld}). Context: the owning thread; plain loads and stores
   * (only this thread writes these words, see the module comment).
   */
  freeFound(): void {
    const i32 = this.i32;
    const base = this.foundHead * PAGE_WORDS;
    const idx = (this.foundWord - base - SLAB_HEADER_WORDS) * 32 + 31 - Math.clz32(this.foundBit);
    i32[base + (this.foundOff >>> 2)] = i32[base + Slab.FREELIST]!;
    i32[base + Slab.FREELIST] = ((idx + 1) << 16) | this.foundOff;
    i32[this.foundWord]! &= ~this.foundBit;
  }

  /**
   * Free the object at `kaddr`; with `only` ≥ 0, only an object of that cache. Changes nothing
   * and returns BAD for anything that is not a live object. Context: the owning thread; lock-free
   * unless the free empties or first frees into a slab nobody holds.
   */
  free(kaddr: number, only: number): FreeResult {
    const r = this.locate(kaddr, only);
    if (r !== FreeResult.FREED) return r;
    if (this.foundHeld()) {
      this.freeFound();
      return FreeResult.FREED;
    }
    checkAttached(this.mem); // a detached handle frees nothing
    const head = this.foundHead;
    const seq = this.i32[head * PAGE_WORDS + Slab.SEQ]!; // read while the object is live
    const lost = this.freeRemote(
      this.foundCache,
      head,
      this.foundWord,
      this.foundWords,
      this.foundBit,
      seq,
    );
    return lost === 0 ? FreeResult.FREED : FreeResult.BAD;
  }

  /**
   * Free the objects `mask` of one alloc-bitmap word (`aw`) of a slab this thread does not hold
   * (`__slab_free`): one `Atomics.or` of the remote bitmap word, then the slab's unowned work.
   * Returns how many of them another free had remote-freed first (lost races: bad frees; retrying
   * could free a new object at that address). `seq`: the slab's SEQ, read while the objects were
   * live. Context: any attached thread; a kernel call when the slab is unowned and needs listing
   * or discarding.
   */
  freeRemote(
    cache: number,
    head: number,
    aw: number,
    bw: number,
    mask: number,
    seq: number,
  ): number {
    const old = Atomics.or(this.i32, aw + bw, mask);
    let lost = 0;
    for (let bits = old & mask; bits !== 0; bits &= bits - 1) lost++;
    if ((mask & ~old) !== 0)
      this.afterRemote(cache, head, bw, seq, (this.i32[aw]! & ~(old | mask)) === 0);
    return lost;
  }

  /**
   * After remote frees into a slab (its remote bits set, seq-cst): nothing when a thread holds it
   * (its holder takes them back); else list it when it was full (the first free claims LISTED), or
   * discard it when every object is now free — looked at only when these frees left a bitmap word
   * with no allocated object (`emptied`): the last free of a slab always does. Context: any
   * attached thread.
   */
  afterRemote(cache: number, head: number, bw: number, seq: number, emptied: boolean): void {
    const i32 = this.i32;
    const base = head * 1024; // literals as on the fast path: FROZEN 0, LISTED 1
    // the bits first, then FROZEN (both seq-cst): either the holder's collect sees the bits, or
    // this free sees the slab unowned and does the unowned work
    if (Atomics.load(i32, base) !== 0) return;
    let resolve = i32[base + 1] === 0 && Atomics.compareExchange(i32, base + 1, 0, 1) === 0;
    // every object of a word freed: look at the others (seq-cst: the last freer sees all bits)
    if (!resolve && emptied) resolve = this.allFreed(base, bw);
    if (!resolve) return;
    kernelEnter(this.mem);
    try {
      resolveSlab(this.mem, cache, head, seq);
    } finally {
      kernelExit(this.mem);
    }
  }

  private allFreed(base: number, bw: number): boolean {
    const i32 = this.i32;
    for (let w = 0; w < bw; w++) {
      const at = base + SLAB_HEADER_WORDS + w;
      if ((i32[at]! & ~Atomics.load(i32, at + bw)) !== 0) return false;
    }
    return true;
  }

  /** True when a slab has remote frees to take back (a hint: plain loads). */
  private hasRemote(cache: number, base: number): boolean {
    const i32 = this.i32;
    const bw = i32[this.caches + cache * CACHE_WORDS + Cache.BITMAP_WORDS]!;
    for (let w = 0; w < bw; w++) if (i32[base + SLAB_HEADER_WORDS + bw + w] !== 0) return true;
    return false;
  }

  /** The active slab is used up (or there is none): take remote frees back, or change slabs. */
  private allocSlow(cache: number, gen: number): number {
    this.forgetLast(); // the refill may let slabs go
    kernelEnter(this.mem); // not inKernel: no closure to allocate on a path taken once per slab
    try {
      return this.refill(cache, gen);
    } finally {
      kernelExit(this.mem);
    }
  }

  /** {@link SlabCpu.allocSlow}'s work. Context: inside a kernel call. */
  private refill(cache: number, gen: number): number {
    const { mem, i32 } = this;
    let s = 0;
    if (this.activeGen[cache] === gen) s = this.active[cache]!;
    else {
      // none yet, or a destroyed cache's (its slabs went with it): not ours to touch
      this.active[cache] = 0;
      this.fullCount[cache] = 0;
      this.activeGen[cache] = gen;
    }
    if (s !== 0 && collectRemote(mem, cache, s - 1) > 0) return this.alloc(cache, gen);
    // the oldest slab this thread kept used up: what was freed into it since serves now
    const kept = this.fullCount[cache]!;
    if (kept > 0) {
      const h = this.kept(cache, 0);
      const base = (h - 1) * PAGE_WORDS;
      if (i32[base + Slab.FREELIST] !== 0 || this.hasRemote(cache, base)) {
        collectRemote(mem, cache, h - 1);
        this.unkeep(cache, 0);
        if (s !== 0) this.keep(cache, s);
        this.active[cache] = h;
        return this.alloc(cache, gen);
      }
    }
    // keep the used-up slab; when this thread keeps as many as it may, the oldest goes
    let evict = 0;
    if (s !== 0) {
      // read each time (once a slab): a new cache in a destroyed one's id has its own slab size
      const frames = i32[this.caches + cache * CACHE_WORDS + Cache.FRAMES]!;
      if (kept >= cpuFullSlabs(frames, mem.layout.totalFrames)) evict = this.unkeep(cache, 0);
      this.keep(cache, s);
      this.active[cache] = 0;
      s = 0;
    }
    const lock = cacheWord(mem, cache, Cache.LOCK);
    for (;;) {
      spinLock(mem, lock);
      try {
        if (evict !== 0) deactivateSlabLocked(mem, cache, evict - 1);
        evict = 0;
        if (s !== 0) deactivateSlabLocked(mem, cache, s - 1);
        s = takePartialLocked(mem, cache) + 1;
      } finally {
        spinUnlock(mem, lock);
      }
      // held now: its remote frees come back outside the list_lock (the section the freeing
      // threads wait on stays short); a slab full after all is let go on the next turn
      if (s === 0 || collectRemote(mem, cache, s - 1) > 0) break;
      if (i32[(s - 1) * PAGE_WORDS + Slab.FREELIST] !== 0) break;
    }
    // memory short: any kept slab of this cache that was freed into; the caller then gives the
    // empty slabs back and tries once more (kmalloc, kmem_cache_alloc)
    if (s === 0) s = newSlab(mem, cache) + 1;
    if (s === 0) s = this.takeKept(cache);
    if (s === 0) return 0;
    this.active[cache] = s;
    return this.alloc(cache, gen);
  }

  /** Index in {@link SlabCpu.full} of the i-th oldest kept slab of `cache`. */
  private keptAt(cache: number, i: number): number {
    return cache * MAX_CPU_FULL + ((this.fullHead[cache]! + i) & (MAX_CPU_FULL - 1));
  }

  /** The i-th oldest kept slab of `cache` (first pfn + 1). */
  private kept(cache: number, i: number): number {
    return this.full[this.keptAt(cache, i)]!;
  }

  /** Keep used-up slab `s` (first pfn + 1) as the newest of `cache`'s (there is room). */
  private keep(cache: number, s: number): void {
    const n = this.fullCount[cache]!;
    this.full[this.keptAt(cache, n)] = s;
    this.fullCount[cache] = n + 1;
  }

  /** Take the i-th oldest kept slab of `cache` out of the kept ones: its first pfn + 1. */
  private unkeep(cache: number, i: number): number {
    const n = this.fullCount[cache]!;
    const s = this.kept(cache, i);
    if (i === 0) this.fullHead[cache] = (this.fullHead[cache]! + 1) & (MAX_CPU_FULL - 1);
    else for (let j = i; j < n - 1; j++) this.full[this.keptAt(cache, j)] = this.kept(cache, j + 1);
    this.fullCount[cache] = n - 1;
    return s;
  }

  /**
   * Take out of `cache`'s kept slabs the first with a free object, its remote frees taken back:
   * its first pfn + 1, or 0 when none has one. Context: inside a kernel call.
   */
  private takeKept(cache: number): number {
    for (let i = 0; i < this.fullCount[cache]!; i++) {
      const h = this.kept(cache, i);
      collectRemote(this.mem, cache, h - 1);
      if (this.i32[(h - 1) * PAGE_WORDS + Slab.FREELIST] !== 0) return this.unkeep(cache, i);
    }
    return 0;
  }

  /**
   * Let go of this thread's active and kept slabs (all, or only the empty ones): a detaching
   * thread, or `stats()`, which wants a thread's cached empty slabs counted free
   * (`kmem_cache_shrink`). Returns how many went. Context: the owning thread; a kernel call per
   * slab let go.
   */
  flush(onlyEmpty: boolean): number {
    this.forgetLast();
    let gone = 0;
    for (let cache = 0; cache < KMEM_CACHES; cache++) {
      if (this.active[cache] === 0 && this.fullCount[cache] === 0) continue;
      if (this.activeGen[cache] !== cacheGen(this.mem, cache)) {
        this.active[cache] = 0; // the cache was destroyed, and its slabs with it
        this.fullCount[cache] = 0;
        continue;
      }
      const s = this.active[cache]!;
      if (s !== 0 && this.letGo(cache, s, onlyEmpty)) {
        this.active[cache] = 0;
        gone++;
      }
      let n = 0;
      for (let i = 0; i < this.fullCount[cache]!; i++) {
        const h = this.kept(cache, i);
        if (!this.letGo(cache, h, onlyEmpty)) this.full[this.keptAt(cache, n++)] = h;
        else gone++;
      }
      this.fullCount[cache] = n;
    }
    return gone;
  }

  /**
   * Let go of this thread's empty active and kept slabs, of every live cache, and give back the
   * empty slabs every cache keeps (`kmem_cache_shrink`): what an allocation that finds memory short
   * does before it tries once more. Returns how many slabs went. Context: the owning thread,
   * holding no lock.
   */
  shrink(): number {
    return this.flush(true) + shrinkCaches(this.mem);
  }

  /**
   * {@link SlabCpu.alloc}, and when memory is short, {@link SlabCpu.shrink} and once more: the
   * kaddr, or 0. Context: the owning thread, holding no lock.
   */
  allocOrShrink(cache: number, gen: number): number {
    const kaddr = this.alloc(cache, gen);
    return kaddr !== 0 || this.shrink() === 0 ? kaddr : this.alloc(cache, gen);
  }

  /**
   * Let slab `s` (first pfn + 1) of `cache`, which this thread holds, go (`deactivate_slab`),
   * unless `onlyEmpty` and an object of it is still live; true when it was let go.
   * Context: the owning thread; a kernel call.
   */
  private letGo(cache: number, s: number, onlyEmpty: boolean): boolean {
    const { mem, i32 } = this;
    const base = (s - 1) * PAGE_WORDS;
    if (onlyEmpty && slabInuse(mem, cache, s - 1) !== 0) {
      // empty once the remote frees are taken back?
      if (!this.hasRemote(cache, base)) return false;
      inKernel(mem, () => collectRemote(mem, cache, s - 1));
      if (slabInuse(mem, cache, s - 1) !== 0) return false;
    }
    inKernel(mem, () => {
      const lock = cacheWord(mem, cache, Cache.LOCK);
      spinLock(mem, lock);
      try {
        if (Atomics.load(i32, base + Slab.FROZEN) === mem.current.slot + 1)
          deactivateSlabLocked(mem, cache, s - 1);
      } finally {
        spinUnlock(mem, lock);
      }
    });
    return true;
  }
}
