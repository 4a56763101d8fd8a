/**
 * Slab caches: objects of one size cut from frames, with a per-thread active slab.
 *
 * Kernel counterpart: `mm/slub.c` (`kmem_cache_alloc`, `kmem_cache_free`, `___slab_alloc`,
 * `deactivate_slab`, `__slab_free`, `discard_slab`), with mimalloc's split free lists: an
 * Atomics operation costs ~10–30 ns here and a plain store under 1 ns, so the owner's fast path
 * uses none.
 *
 * A slab is 1–16 physically contiguous frames; its descriptor (layout.ts: {@link Slab}) and two
 * bitmaps sit at the start of its first frame, the objects after them. No object straddles a
 * frame unless it is larger than a page:
 *
 * ```
 *   frame 0                                                   frame 1 (slabs of several frames)
 *   ┌──────────┬──────────┬───────────┬─────┬─────┬───┬─────┐ ┌─────┬─────┬───┬─────┐
 *   │descriptor│alloc bits│remote bits│obj 0│obj 1│ … │ pad │ │obj k│  …  │   │ pad │
 *   └──────────┴──────────┴───────────┴─────┴─────┴───┴─────┘ └─────┴─────┴───┴─────┘
 *   ▲ FROZEN LISTED SEQ NEXT PREV ON_LIST FREELIST GEOMETRY SHAPE  (objects never cross a frame)
 * ```
 *
 * Every object is in exactly one state, read off the two bitmaps:
 * - **free**: alloc bit 0, on the holder's free list (FREELIST, linked through each free object's
 *   first word);
 * - **allocated**: alloc bit 1, remote bit 0;
 * - **remote-freed**: alloc bit 1, remote bit 1 — freed by a thread that does not hold the slab,
 *   waiting for the holder to take it back (`collectRemote`).
 *
 * The **holder** is the thread whose active slab it is, or that keeps it used up
 * ({@link cpuFullSlabs}) (`FROZEN` = its thread slot + 1, SLUB's frozen cpu slab). It allocates and frees with plain loads and stores: nothing else writes the
 * free list or the alloc bitmap while FROZEN names it (a remote free only reads the alloc bit
 * of a live object, which the holder cannot change), so no store can be lost. Another thread's
 * free sets the object's remote bit with one `Atomics.or` (whose old value makes a double free
 * count once), then reads FROZEN: the holder takes remote frees back in bulk when its free list is
 * empty, or when it comes back to a slab it kept. A slab nobody holds is on its cache's **partial list** (under the cache's list_lock) when
 * it has free objects, or on no list when full; the free that makes a full slab partial lists it
 * (LISTED is the claim), and the free that makes a slab entirely free discards it — its frames go
 * back to the page allocator — unless the partial list is short ({@link minPartial}, SLUB's
 * `min_partial`): then the empty slab stays listed for the next thread that needs one.
 * `stats()` gives those back ({@link shrinkCache}), so it returns to its boot values when every
 * object is freed.
 *
 * The bitmaps are the truth; the free lists and counters follow from them, so recovery from a
 * dead thread rebuilds them (slab-check.ts).
 *
 * @module
 */
import { PAGE_SIZE } from './errno.js';
import { allocContig } from './contig.js';
import { ownerTag, putFrame } from './frame-alloc.js';
import {
  Cache,
  CACHE_NAME_WORDS,
  CACHE_WORDS,
  Frame,
  FRAME_WORDS,
  FrameKind,
  Hdr,
  KMEM_CACHES,
  Slab,
  SLAB_HEADER_WORDS,
} from './layout.js';
import { spinLock, spinUnlock } from './lock.js';
import type { PhysMem } from './phys-mem.js';
import { inKernel } from './thread.js';

/** Int32 words in one frame. */
export const PAGE_WORDS: number = PAGE_SIZE / 4;
/** The kmalloc size classes (`kmalloc-8` … `kmalloc-8k`), caches 0 … 12. */
export const KMALLOC_SIZES: readonly number[] = [
  8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192,
];
/** Caches 0 … NR_KMALLOC_CACHES - 1 are the kmalloc caches, made at boot and never destroyed. */
export const NR_KMALLOC_CACHES: number = KMALLOC_SIZES.length;
/** The largest size a kmalloc cache serves; larger sizes get whole pages (`KMALLOC_MAX_CACHE_SIZE`). */
export const KMALLOC_MAX_CACHE_SIZE = 8192;
/** Every object is aligned to at least 8 bytes (`ARCH_KMALLOC_MINALIGN`): any typed view fits. */
export const KMALLOC_MIN_ALIGN = 8;
/** The cache number that frame tags give large kmallocs (whole pages, no slab). */
export const SLAB_LARGE = 127;
/** Shift of a frame's index in its slab inside a slab frame's owner id. */
export const SLAB_FRAME_SHIFT = 7;
/** Bits of a slab frame's owner id that hold its cache number. */
export const SLAB_CACHE_MASK = 127;
/** Frames of the largest slab. */
const MAX_SLAB_FRAMES = 16;
/** Bounds of a cache's {@link minPartial} (SLUB's `MIN_PARTIAL` and `MAX_PARTIAL`). */
const MIN_PARTIAL = 5;
const MAX_PARTIAL = 10;

/**
 * How many slabs a cache's partial list may hold before a slab that becomes empty there is
 * discarded (SLUB's `s->min_partial`: `ilog2(size) / 2`, between 5 and 10). Empty slabs below that
 * count stay listed, so a thread that frees what another allocates does not send every slab back
 * to the page allocator only for the other to take a new one; `stats()` and `kmemCacheDestroy`
 * give them back ({@link shrinkCache}). Context: pure.
 */
export function minPartial(size: number): number {
  return Math.min(MAX_PARTIAL, Math.max(MIN_PARTIAL, Math.floor(Math.log2(size) / 2)));
}

/** The most used-up slabs a thread keeps per cache ({@link cpuFullSlabs}); a power of two. */
export const MAX_CPU_FULL = 128;
/** Bounds of the frames a thread's kept used-up slabs of one cache may take together. */
const CPU_FULL_FRAMES_MIN = 8;
const CPU_FULL_FRAMES_MAX = 128;
/** Of physical memory, the share one thread's kept slabs of one cache may take: 1 / 2^7. */
const CPU_FULL_SHIFT = 7;

/**
 * How many used-up slabs of a cache (of `frames` frames per slab) a thread keeps frozen after its
 * active slab runs out, rather than letting them go, in a kernel of `totalFrames` frames: as many
 * as fit in 1/128 of physical memory, from 8 frames (1 MiB and less) up to 128 frames (64 MiB and
 * more), at least one slab and at most {@link MAX_CPU_FULL}. A kept slab is still the thread's: a
 * free from another thread is one `Atomics.or` of its remote bitmap and nothing more (no
 * list_lock, no listing), and the owner takes the frees back when it comes round to the slab
 * again, oldest first — as mimalloc's heap keeps its full pages, and as SLUB's per-CPU partial
 * lists keep slabs away from the node's list_lock. So a thread that allocates what another frees
 * (a queue, a pipeline) reuses its own slabs with no lock and no new slab, as long as fewer of its
 * objects are in flight than its kept slabs hold (128 slabs of 63 objects for kmalloc-64 from
 * 64 MiB up). When it keeps as many as it may, the oldest goes to the cache if nothing was freed
 * into it. The price: objects freed into a kept slab serve only its owner; the slab goes back when
 * the owner detaches, or, once empty, at the owner's `stats()` or when one of its allocations
 * finds memory short. Context: pure.
 */
export function cpuFullSlabs(frames: number, totalFrames: number): number {
  const keep = Math.min(
    CPU_FULL_FRAMES_MAX,
    Math.max(CPU_FULL_FRAMES_MIN, Math.floor(totalFrames / 2 ** CPU_FULL_SHIFT)),
  );
  return Math.max(1, Math.min(MAX_CPU_FULL, Math.floor(keep / frames)));
}

/** True when an empty slab of `cache` should be discarded (the partial list is long enough). */
function discardEmptyLocked(mem: PhysMem, cache: number): boolean {
  const { i32 } = mem;
  return (
    i32[cacheWord(mem, cache, Cache.NR_PARTIAL)]! >=
    minPartial(i32[cacheWord(mem, cache, Cache.SIZE)]!)
  );
}

/** The generation of a live cache, or 0 (kmalloc caches are generation 1 forever). */
export function cacheGen(mem: PhysMem, cache: number): number {
  const gen = mem.i32[cacheWord(mem, cache, Cache.GEN)]!;
  return gen & 1 ? gen : 0;
}

/** Frame-table owner word of frame `frameIndex` of a slab of cache `cache`. */
export function slabTag(cache: number, frameIndex: number): number {
  return ownerTag(FrameKind.SLAB, cache | (frameIndex << SLAB_FRAME_SHIFT));
}

/** Int32 index of a cache record's word. */
export function cacheWord(mem: PhysMem, cache: number, word: Cache): number {
  return mem.cacheTable + cache * CACHE_WORDS + word;
}

/** How a cache lays its objects out in a slab. */
export interface SlabGeometry {
  readonly stride: number;
  readonly frames: number;
  readonly objs: number;
  readonly bitmapWords: number;
  readonly offset: number;
  readonly firstObjs: number;
  readonly perFrame: number;
}

const alignUp = (n: number, to: number): number => Math.ceil(n / to) * to;

/**
 * The slab layout for objects of `size` bytes aligned to `align` (a power of two): the fewest
 * frames (1, 2, 4, 8, 16) that waste at most an eighth of the slab, else the least wasteful
 * (`calculate_order`). Context: pure.
 */
export function slabGeometry(size: number, align: number): SlabGeometry {
  const a = Math.max(KMALLOC_MIN_ALIGN, align);
  const stride = alignUp(size, a);
  const big = stride > PAGE_SIZE;
  let best: SlabGeometry | null = null;
  let bestWaste = Infinity;
  for (let frames = big ? 2 : 1; frames <= MAX_SLAB_FRAMES; frames *= 2) {
    const bound = big
      ? Math.floor((frames * PAGE_SIZE) / stride)
      : Math.floor(PAGE_SIZE / stride) * frames;
    const bitmapWords = Math.max(1, Math.ceil(bound / 32));
    const offset = alignUp((SLAB_HEADER_WORDS + 2 * bitmapWords) * 4, a);
    const perFrame = big ? 0 : Math.floor(PAGE_SIZE / stride);
    const firstObjs = big
      ? Math.floor((frames * PAGE_SIZE - offset) / stride)
      : Math.max(0, Math.floor((PAGE_SIZE - offset) / stride));
    const objs = big ? firstObjs : firstObjs + (frames - 1) * perFrame;
    if (objs < 1) continue;
    const g = { stride, frames, objs, bitmapWords, offset, firstObjs, perFrame };
    const waste = (frames * PAGE_SIZE - objs * stride) / (frames * PAGE_SIZE);
    if (waste <= 1 / 8) return g;
    if (waste < bestWaste) {
      best = g;
      bestWaste = waste;
    }
  }
  if (best === null) throw new RangeError(`slabGeometry: no slab layout for ${size} bytes`);
  return best;
}

/** Write a cache record and make it live. Context: boot, or slab_mutex held. */
export function writeCache(
  mem: PhysMem,
  cache: number,
  name: string,
  size: number,
  align: number,
): void {
  const { i32 } = mem;
  const g = slabGeometry(size, align);
  const at = (w: Cache): number => cacheWord(mem, cache, w);
  i32[at(Cache.PARTIAL)] = 0;
  i32[at(Cache.PARTIAL_TAIL)] = 0;
  i32[at(Cache.NR_PARTIAL)] = 0;
  Atomics.store(i32, at(Cache.NR_SLABS), 0);
  i32[at(Cache.SIZE)] = size;
  i32[at(Cache.STRIDE)] = g.stride;
  i32[at(Cache.ALIGN)] = Math.max(KMALLOC_MIN_ALIGN, align);
  i32[at(Cache.OBJS)] = g.objs;
  i32[at(Cache.FRAMES)] = g.frames;
  i32[at(Cache.BITMAP_WORDS)] = g.bitmapWords;
  i32[at(Cache.OFFSET)] = g.offset;
  i32[at(Cache.FIRST_OBJS)] = g.firstObjs;
  i32[at(Cache.PER_FRAME)] = g.perFrame;
  for (let w = 0; w < CACHE_NAME_WORDS; w++) {
    let word = 0;
    for (let b = 0; b < 4; b++) word |= (name.charCodeAt(w * 4 + b) & 0x7f) << (b * 8);
    i32[at(Cache.NAME) + w] = word;
  }
  Atomics.add(i32, at(Cache.GEN), 1); // even → odd: live
}

/** A cache's name. Context: any thread (fixed while the cache lives). */
export function cacheName(mem: PhysMem, cache: number): string {
  let name = '';
  for (let w = 0; w < CACHE_NAME_WORDS; w++) {
    const word = mem.i32[cacheWord(mem, cache, Cache.NAME) + w]!;
    for (let b = 0; b < 4; b++) {
      const ch = (word >>> (b * 8)) & 0xff;
      if (ch === 0) return name;
      name += String.fromCharCode(ch);
    }
  }
  return name;
}

/** The kmalloc caches, live from boot. Context: boot, before the buffer is shared. */
export function initSlab(mem: PhysMem): void {
  KMALLOC_SIZES.forEach((size, cache) => {
    const name = size >= 1024 ? `kmalloc-${size / 1024}k` : `kmalloc-${size}`;
    writeCache(mem, cache, name, size, KMALLOC_MIN_ALIGN);
  });
}

/** Byte offset in its slab of object `idx`. Context: any thread (geometry is fixed). */
export function objOffset(i32: Int32Array, g: number, idx: number): number {
  const first = i32[g + Cache.FIRST_OBJS]!;
  const stride = i32[g + Cache.STRIDE]!;
  if (idx < first) return i32[g + Cache.OFFSET]! + idx * stride;
  const per = i32[g + Cache.PER_FRAME]!;
  const r = idx - first;
  const j = Math.floor(r / per);
  return (1 + j) * PAGE_SIZE + (r - j * per) * stride;
}

/**
 * The index of the object that starts at byte `slabOff` of a slab (`j` = its frame in the slab),
 * or -1 when no object starts there (also for a fractional offset). With `interior`, the object
 * that contains the byte instead. Context: any thread.
 */
export function objIndex(
  i32: Int32Array,
  g: number,
  j: number,
  slabOff: number,
  interior: boolean,
): number {
  const stride = i32[g + Cache.STRIDE]!;
  const first = i32[g + Cache.FIRST_OBJS]!;
  if (j === 0 || stride > PAGE_SIZE) {
    const rel = slabOff - i32[g + Cache.OFFSET]!;
    const idx = Math.floor(rel / stride);
    if (rel < 0 || idx >= first || (!interior && idx * stride !== rel)) return -1;
    return idx;
  }
  const inFrame = slabOff - j * PAGE_SIZE;
  const q = Math.floor(inFrame / stride);
  if (q >= i32[g + Cache.PER_FRAME]! || (!interior && q * stride !== inFrame)) return -1;
  return first + (j - 1) * i32[g + Cache.PER_FRAME]! + q;
}

/** Int32 index of a slab's descriptor (its first frame's first word). */
export function slabBase(head: number): number {
  return head * PAGE_WORDS;
}

/**
 * Take the remote frees of a slab back onto its free list, in bulk; returns how many.
 * Each bitmap word is read, its objects' alloc bits cleared and listed, then its remote bits
 * cleared: a thread dying in between leaves objects with alloc bit 0 (free, which wins).
 * Context: the holder (FROZEN names this thread), or a recovery for a dead holder.
 */
export function collectRemote(mem: PhysMem, cache: number, head: number): number {
  const { i32 } = mem;
  const g = cacheWord(mem, cache, 0);
  const base = slabBase(head);
  const bw = i32[g + Cache.BITMAP_WORDS]!;
  const first = i32[g + Cache.FIRST_OBJS]!;
  const offset = i32[g + Cache.OFFSET]!;
  const stride = i32[g + Cache.STRIDE]!;
  let taken = 0;
  for (let w = 0; w < bw; w++) {
    const rw = base + SLAB_HEADER_WORDS + bw + w;
    const r = Atomics.load(i32, rw);
    if (r === 0) continue;
    i32[base + SLAB_HEADER_WORDS + w]! &= ~r;
    // the list head in a local, stored once a word: a word's objects go on in one store
    let link = i32[base + Slab.FREELIST]!;
    for (let bits = r; bits !== 0; bits &= bits - 1) {
      const idx = w * 32 + 31 - Math.clz32(bits & -bits);
      const off = idx < first ? offset + idx * stride : objOffset(i32, g, idx);
      i32[base + (off >> 2)] = link;
      link = ((idx + 1) << 16) | off;
      taken++;
    }
    i32[base + Slab.FREELIST] = link;
    Atomics.and(i32, rw, ~r);
  }
  return taken;
}

/** Objects of a slab not on its free list: allocated or remote-freed (popcount of the alloc bits). */
export function slabInuse(mem: PhysMem, cache: number, head: number): number {
  const { i32 } = mem;
  const bw = i32[cacheWord(mem, cache, Cache.BITMAP_WORDS)]!;
  const base = slabBase(head) + SLAB_HEADER_WORDS;
  let n = 0;
  for (let w = 0; w < bw; w++) for (let bits = i32[base + w]!; bits !== 0; bits &= bits - 1) n++;
  return n;
}

/** True when every allocated object of an unowned slab has been freed remotely. */
export function allFreed(mem: PhysMem, cache: number, head: number): boolean {
  const { i32 } = mem;
  const bw = i32[cacheWord(mem, cache, Cache.BITMAP_WORDS)]!;
  const base = slabBase(head) + SLAB_HEADER_WORDS;
  for (let w = 0; w < bw; w++) {
    if ((i32[base + w]! & ~Atomics.load(i32, base + bw + w)) !== 0) return false;
  }
  return true;
}

/** newSlab's scratch for the pfns of a new slab (one thread's; nothing allocated per slab). */
const slabPfns = new Int32Array(MAX_SLAB_FRAMES);

/**
 * Make a new slab for `cache`, held by this thread: frames from the page allocator, the
 * descriptor, every object on the free list. Returns its first pfn, or -1 when no run of frames
 * is free. The first frame's owner tag is written last: until then a recovery frees the frames.
 * Context: a kernel call (inKernel), no lock needed.
 */
export function newSlab(mem: PhysMem, cache: number): number {
  const { i32 } = mem;
  const g = cacheWord(mem, cache, 0);
  const frames = i32[g + Cache.FRAMES]!;
  const pfns = slabPfns;
  if (
    !allocContig(mem, frames, 1, false, ownerTag(FrameKind.INFLIGHT, mem.current.slot), pfns, null)
  )
    return -1;
  const head = pfns[0]!;
  const base = slabBase(head);
  const bw = i32[g + Cache.BITMAP_WORDS]!;
  Atomics.store(i32, base + Slab.FROZEN, mem.current.slot + 1);
  Atomics.store(i32, base + Slab.LISTED, 0);
  i32[base + Slab.SEQ] = Atomics.add(i32, Hdr.SLAB_SEQ, 1) + 1;
  i32[base + Slab.NEXT] = 0;
  i32[base + Slab.PREV] = 0;
  i32[base + Slab.ON_LIST] = 0;
  i32[base + Slab.GEOMETRY] = i32[g + Cache.STRIDE]! | (i32[g + Cache.OFFSET]! << 16);
  i32[base + Slab.SHAPE] = i32[g + Cache.FIRST_OBJS]! | (bw << 16);
  i32.fill(0, base + SLAB_HEADER_WORDS, base + SLAB_HEADER_WORDS + 2 * bw);
  // the free list in object order, built from the last object back (objOffset's layout, walked
  // frame by frame instead of computed per object: this runs once per object of every new slab)
  const stride = i32[g + Cache.STRIDE]!;
  const first = i32[g + Cache.FIRST_OBJS]!;
  const per = i32[g + Cache.PER_FRAME]!;
  let link = 0;
  for (let idx = i32[g + Cache.OBJS]! - 1; idx >= first;) {
    const j = Math.floor((idx - first) / per); // a later frame (slabs of objects up to a page)
    const lo = first + j * per;
    for (let off = (1 + j) * PAGE_SIZE + (idx - lo) * stride; idx >= lo; idx--, off -= stride) {
      i32[base + off / 4] = link;
      link = ((idx + 1) << 16) | off;
    }
  }
  for (let idx = first - 1, off = i32[g + Cache.OFFSET]! + idx * stride; idx >= 0; idx--) {
    i32[base + off / 4] = link;
    link = ((idx + 1) << 16) | off;
    off -= stride;
  }
  i32[base + Slab.FREELIST] = link;
  for (let j = 1; j < frames; j++) {
    Atomics.store(i32, mem.frameTable + (head + j) * FRAME_WORDS + Frame.OWNER, slabTag(cache, j));
  }
  Atomics.add(i32, g + Cache.NR_SLABS, 1);
  Atomics.add(i32, Hdr.SLAB_FRAMES, frames);
  Atomics.store(i32, mem.frameTable + head * FRAME_WORDS + Frame.OWNER, slabTag(cache, 0)); // commit
  return head;
}

/**
 * Put a slab on its cache's partial list (`add_partial`): at the front, where the next refill
 * takes it, or, with `toTail`, at the back. Context: list_lock held.
 */
function linkPartialLocked(mem: PhysMem, cache: number, head: number, toTail: boolean): void {
  const { i32 } = mem;
  const base = slabBase(head);
  const headAt = cacheWord(mem, cache, Cache.PARTIAL);
  const tailAt = cacheWord(mem, cache, Cache.PARTIAL_TAIL);
  if (toTail) {
    const last = i32[tailAt]!;
    i32[base + Slab.NEXT] = 0;
    i32[base + Slab.PREV] = last;
    if (last !== 0) i32[slabBase(last - 1) + Slab.NEXT] = head + 1;
    else i32[headAt] = head + 1;
    i32[tailAt] = head + 1;
  } else {
    const first = i32[headAt]!;
    i32[base + Slab.NEXT] = first;
    i32[base + Slab.PREV] = 0;
    if (first !== 0) i32[slabBase(first - 1) + Slab.PREV] = head + 1;
    else i32[tailAt] = head + 1;
    i32[headAt] = head + 1;
  }
  i32[base + Slab.ON_LIST] = 1;
  i32[cacheWord(mem, cache, Cache.NR_PARTIAL)]!++;
  Atomics.store(i32, base + Slab.LISTED, 1);
}

/** Take a slab off its cache's partial list. Context: list_lock held. */
function unlinkPartialLocked(mem: PhysMem, cache: number, head: number): void {
  const { i32 } = mem;
  const base = slabBase(head);
  const next = i32[base + Slab.NEXT]!;
  const prev = i32[base + Slab.PREV]!;
  if (prev === 0) i32[cacheWord(mem, cache, Cache.PARTIAL)] = next;
  else i32[slabBase(prev - 1) + Slab.NEXT] = next;
  if (next !== 0) i32[slabBase(next - 1) + Slab.PREV] = prev;
  else i32[cacheWord(mem, cache, Cache.PARTIAL_TAIL)] = prev;
  i32[base + Slab.NEXT] = 0;
  i32[base + Slab.PREV] = 0;
  i32[base + Slab.ON_LIST] = 0;
  i32[cacheWord(mem, cache, Cache.NR_PARTIAL)]!--;
}

/**
 * Give an empty, unlisted slab's frames back (`discard_slab`). The first frame's owner tag goes
 * first: a stale freer (SEQ) or a recovery then sees no slab there. Context: list_lock held.
 */
export function discardSlabLocked(mem: PhysMem, cache: number, head: number): void {
  const { i32 } = mem;
  const frames = i32[cacheWord(mem, cache, Cache.FRAMES)]!;
  if (i32[slabBase(head) + Slab.ON_LIST] === 1) unlinkPartialLocked(mem, cache, head);
  Atomics.store(
    i32,
    mem.frameTable + head * FRAME_WORDS + Frame.OWNER,
    ownerTag(FrameKind.INFLIGHT, Math.max(0, mem.current.slot)),
  );
  Atomics.store(i32, slabBase(head) + Slab.FROZEN, 0);
  Atomics.sub(i32, cacheWord(mem, cache, Cache.NR_SLABS), 1);
  Atomics.sub(i32, Hdr.SLAB_FRAMES, frames);
  for (let j = 0; j < frames; j++) putFrame(mem, head + j);
}

/**
 * The holder lets go of its active slab (`deactivate_slab`): remote frees taken back, then the slab
 * is discarded when empty and the partial list is long enough ({@link minPartial}), put on the
 * partial list when it has free objects, else left on no list (full). Context: list_lock held;
 * the caller is the holder or a recovery for a dead holder.
 */
export function deactivateSlabLocked(mem: PhysMem, cache: number, head: number): void {
  const { i32 } = mem;
  const base = slabBase(head);
  // LISTED before FROZEN: a free that sees the slab unowned sees LISTED 0 or the listing below
  Atomics.store(i32, base + Slab.LISTED, 0);
  Atomics.store(i32, base + Slab.FROZEN, 0); // from here, frees take the unowned path
  collectRemote(mem, cache, head);
  if (slabInuse(mem, cache, head) === 0 && discardEmptyLocked(mem, cache))
    discardSlabLocked(mem, cache, head);
  else if (i32[base + Slab.FREELIST] !== 0) {
    if (i32[base + Slab.ON_LIST] === 0) linkPartialLocked(mem, cache, head, false);
  }
}

/**
 * Take the first slab off the partial list and hold it; -1 when none. Its remote frees are not
 * taken back here: the caller does that after it drops the list_lock (a holder needs no lock for
 * it), and lets the slab go again if it turns out full (listed by a free whose object was taken
 * back meanwhile). Context: list_lock held.
 */
export function takePartialLocked(mem: PhysMem, cache: number): number {
  const { i32 } = mem;
  const first = i32[cacheWord(mem, cache, Cache.PARTIAL)]! - 1;
  if (first < 0) return -1;
  const base = slabBase(first);
  unlinkPartialLocked(mem, cache, first);
  Atomics.store(i32, base + Slab.LISTED, 0);
  Atomics.store(i32, base + Slab.FROZEN, mem.current.slot + 1);
  return first;
}

/**
 * After a free into a slab nobody holds: discard it if every object is free and the partial list
 * is long enough ({@link minPartial}), else make sure it is on the partial list. Does nothing when the slab is gone or was remade (`seq`), or a thread holds
 * it now. Context: a kernel call; takes the cache's list_lock.
 */
export function resolveSlab(mem: PhysMem, cache: number, head: number, seq: number): void {
  const { i32 } = mem;
  const base = slabBase(head);
  const lock = cacheWord(mem, cache, Cache.LOCK);
  spinLock(mem, lock);
  try {
    if (
      Atomics.load(i32, mem.frameTable + head * FRAME_WORDS + Frame.OWNER) !== slabTag(cache, 0) ||
      i32[base + Slab.SEQ] !== seq ||
      Atomics.load(i32, base + Slab.FROZEN) !== 0
    )
      return;
    if (allFreed(mem, cache, head) && discardEmptyLocked(mem, cache))
      discardSlabLocked(mem, cache, head);
    // at the back, as SLUB lists a full slab at its first free: the freeing thread is most
    // likely still freeing into it, and the front slabs have had longer to gather free objects
    else if (i32[base + Slab.ON_LIST] === 0) linkPartialLocked(mem, cache, head, true);
  } finally {
    spinUnlock(mem, lock);
  }
}

/**
 * Discard every empty slab on a cache's partial list (`kmem_cache_shrink`); returns how many.
 * Context: a kernel call; takes the cache's list_lock when the list is not empty.
 */
export function shrinkCache(mem: PhysMem, cache: number): number {
  const { i32 } = mem;
  // a hint read outside list_lock: a slab listed after it is not this call's to give back
  if (Atomics.load(i32, cacheWord(mem, cache, Cache.NR_PARTIAL)) === 0) return 0;
  const lock = cacheWord(mem, cache, Cache.LOCK);
  let discarded = 0;
  spinLock(mem, lock);
  try {
    for (let s = i32[cacheWord(mem, cache, Cache.PARTIAL)]!; s !== 0;) {
      const head = s - 1;
      s = i32[slabBase(head) + Slab.NEXT]!;
      if (!allFreed(mem, cache, head)) continue;
      discardSlabLocked(mem, cache, head);
      discarded++;
    }
  } finally {
    spinUnlock(mem, lock);
  }
  return discarded;
}

/**
 * Give back the empty slabs every live cache keeps on its partial list (`kmem_cache_shrink` of
 * each; see `minPartial`); returns how many. Context: any attached thread holding no lock; takes
 * the list_lock of each cache whose partial list is not empty.
 */
export function shrinkCaches(mem: PhysMem): number {
  let discarded = 0;
  for (let cache = 0; cache < KMEM_CACHES; cache++) {
    if ((Atomics.load(mem.i32, cacheWord(mem, cache, Cache.GEN)) & 1) === 0) continue; // dead
    if (Atomics.load(mem.i32, cacheWord(mem, cache, Cache.NR_PARTIAL)) === 0) continue; // a hint
    discarded += inKernel(mem, () => shrinkCache(mem, cache));
  }
  return discarded;
}
