/**
 * The slab allocator's invariant checks and its recovery from dead threads.
 *
 * Kernel counterparts: `validate_slab` and `check_slab` (`CONFIG_SLUB_DEBUG`) for the checks;
 * for recovery, what `kmem_cache_cpu` flushing does for a CPU that goes offline (`slub_cpu_dead`).
 *
 * The truth of a slab is its first frame's owner tag (the slab exists), its cache's geometry, and
 * its two bitmaps (which object is allocated, which was freed remotely). Everything else — free
 * lists, the partial lists and the counters — follows from them, which is how recovery
 * rebuilds what a dead thread left half-written.
 *
 * @module
 */
import { bug } from './bug.js';
import {
  Cache,
  Frame,
  FRAME_WORDS,
  FrameKind,
  Hdr,
  KMEM_CACHES,
  OWNER_ID_SHIFT,
  OWNER_KIND_MASK,
  Slab,
  SLAB_HEADER_WORDS,
  Thread,
  ThreadState,
} from './layout.js';
import type { PhysMem } from './phys-mem.js';
import {
  allFreed,
  cacheName,
  cacheWord,
  cpuFullSlabs,
  deactivateSlabLocked,
  discardSlabLocked,
  minPartial,
  objOffset,
  PAGE_WORDS,
  SLAB_CACHE_MASK,
  SLAB_FRAME_SHIFT,
  SLAB_LARGE,
  slabTag,
} from './slab.js';
import { threadWord } from './thread.js';

/** A slab or large kmalloc found by a scan: its cache, first frame and frame count. */
interface SlabRun {
  readonly cache: number;
  readonly head: number;
  readonly frames: number;
}

/** Every committed slab and large kmalloc, by a scan of the frame table. */
function slabRuns(mem: PhysMem): SlabRun[] {
  const { i32 } = mem;
  const runs: SlabRun[] = [];
  for (let pfn = mem.layout.metadataFrames; pfn < mem.layout.totalFrames; pfn++) {
    const tag = Atomics.load(i32, mem.frameTable + pfn * FRAME_WORDS + Frame.OWNER);
    if ((tag & OWNER_KIND_MASK) !== FrameKind.SLAB || (tag >>> OWNER_ID_SHIFT) >>> SLAB_FRAME_SHIFT)
      continue;
    const cache = (tag >>> OWNER_ID_SHIFT) & SLAB_CACHE_MASK;
    const frames =
      cache === SLAB_LARGE
        ? i32[mem.frameTable + pfn * FRAME_WORDS + Frame.LINK]!
        : i32[cacheWord(mem, cache, Cache.FRAMES)]!;
    runs.push({ cache, head: pfn, frames });
  }
  return runs;
}

/**
 * Add one reference for every frame of a committed slab or large kmalloc to `refs`, and its tag
 * to `owner` (recovery's frame rebuild). Context: recovery, the world stopped.
 */
export function slabFrameRefs(mem: PhysMem, refs: Int32Array, owner: Int32Array): void {
  for (const { cache, head, frames } of slabRuns(mem)) {
    for (let j = 0; j < frames; j++) {
      refs[head + j]!++;
      owner[head + j] = slabTag(cache, j);
    }
  }
}

/** Rebuild a dead holder's free list from the alloc bitmap (the truth). */
function rebuildPrivate(mem: PhysMem, cache: number, head: number): void {
  const { i32 } = mem;
  const g = cacheWord(mem, cache, 0);
  const base = head * PAGE_WORDS;
  const bw = i32[g + Cache.BITMAP_WORDS]!;
  let link = 0;
  for (let idx = i32[g + Cache.OBJS]! - 1; idx >= 0; idx--) {
    const w = base + SLAB_HEADER_WORDS + (idx >>> 5);
    const bit = 1 << (idx & 31);
    if (i32[w]! & bit) continue;
    Atomics.and(i32, w + bw, ~bit); // a collect that died between its two steps: free wins
    const off = objOffset(i32, g, idx);
    i32[base + off / 4] = link;
    link = ((idx + 1) << 16) | off;
  }
  i32[base + Slab.FREELIST] = link;
}

/**
 * Recover the slab allocator from dead threads: their locks are released, the slabs they held are
 * rebuilt from their bitmaps and let go (discarded when empty), every partial list is rebuilt from
 * the slabs nobody holds, and the counters are recounted. Live threads' held slabs are not touched
 * (their fast paths may run meanwhile; remote frees only set bits, and a free that needs the list
 * lock waits for the recovery to end). Context: recovery, the world stopped, before the frame rebuild.
 */
export function recoverSlabs(mem: PhysMem, deadSlots: Set<number>, deadTids: Set<number>): void {
  const { i32 } = mem;
  if (deadTids.has(Atomics.load(i32, Hdr.KMEM_LOCK))) Atomics.store(i32, Hdr.KMEM_LOCK, 0);
  for (let cache = 0; cache < KMEM_CACHES; cache++) {
    const lock = cacheWord(mem, cache, Cache.LOCK);
    if (deadTids.has(Atomics.load(i32, lock))) Atomics.store(i32, lock, 0);
    i32[cacheWord(mem, cache, Cache.PARTIAL)] = 0;
    i32[cacheWord(mem, cache, Cache.PARTIAL_TAIL)] = 0;
    i32[cacheWord(mem, cache, Cache.NR_PARTIAL)] = 0;
  }
  const runs = slabRuns(mem);
  for (const { cache, head } of runs) {
    if (cache === SLAB_LARGE) continue;
    const base = head * PAGE_WORDS;
    i32[base + Slab.ON_LIST] = 0;
    i32[base + Slab.NEXT] = 0;
    i32[base + Slab.PREV] = 0;
    const holder = Atomics.load(i32, base + Slab.FROZEN) - 1;
    if (holder >= 0 && !deadSlots.has(holder)) continue; // a live thread's active slab
    if (holder >= 0) rebuildPrivate(mem, cache, head);
    Atomics.store(i32, base + Slab.LISTED, 0);
    Atomics.store(i32, base + Slab.FROZEN, mem.current.slot + 1);
    deactivateSlabLocked(mem, cache, head); // lists it, discards it when empty, or leaves it full
    if (
      Atomics.load(i32, mem.frameTable + head * FRAME_WORDS + Frame.OWNER) === slabTag(cache, 0) &&
      allFreed(mem, cache, head)
    )
      discardSlabLocked(mem, cache, head);
  }
  const slabs = new Int32Array(KMEM_CACHES);
  let slabFrames = 0;
  let largeFrames = 0;
  for (const run of slabRuns(mem)) {
    if (run.cache === SLAB_LARGE) largeFrames += run.frames;
    else {
      slabs[run.cache]!++;
      slabFrames += run.frames;
    }
  }
  for (let cache = 0; cache < KMEM_CACHES; cache++)
    Atomics.store(i32, cacheWord(mem, cache, Cache.NR_SLABS), slabs[cache]!);
  Atomics.store(i32, Hdr.SLAB_FRAMES, slabFrames);
  Atomics.store(i32, Hdr.KMALLOC_LARGE_FRAMES, largeFrames);
}

function fail(message: string): never {
  bug(`checkInvariants: ${message}`);
}

/** Check one slab: geometry, bitmaps, free list, holder and list state. */
function checkSlab(
  mem: PhysMem,
  cache: number,
  head: number,
  heldBy: Map<string, number>,
  emptyListed: Int32Array,
): void {
  const { i32 } = mem;
  const g = cacheWord(mem, cache, 0);
  const base = head * PAGE_WORDS;
  const bw = i32[g + Cache.BITMAP_WORDS]!;
  const objs = i32[g + Cache.OBJS]!;
  const what = `slab ${head} of cache ${cache} (${cacheName(mem, cache)})`;
  let allocated = 0;
  let remote = 0;
  for (let idx = 0; idx < bw * 32; idx++) {
    const a = (i32[base + SLAB_HEADER_WORDS + (idx >>> 5)]! >>> (idx & 31)) & 1;
    const r = (i32[base + SLAB_HEADER_WORDS + bw + (idx >>> 5)]! >>> (idx & 31)) & 1;
    if (idx >= objs && (a | r) !== 0) fail(`${what}: a bitmap bit past its ${objs} objects is set`);
    if (r && !a) fail(`${what}: object ${idx} is remote-freed but not allocated`);
    allocated += a;
    remote += r;
  }
  if (
    i32[base + Slab.GEOMETRY] !== (i32[g + Cache.STRIDE]! | (i32[g + Cache.OFFSET]! << 16)) ||
    i32[base + Slab.SHAPE] !== (i32[g + Cache.FIRST_OBJS]! | (bw << 16))
  )
    fail(`${what}: its geometry words are not its cache's`);
  const seen = new Uint8Array(objs);
  let free = 0;
  for (let link = i32[base + Slab.FREELIST]!; link !== 0; free++) {
    const idx = (link >>> 16) - 1;
    const off = link & 0xffff;
    if (idx < 0 || idx >= objs || seen[idx] || free >= objs)
      fail(`${what}: the free list is broken (object ${idx})`);
    seen[idx] = 1;
    if (off !== objOffset(i32, g, idx)) fail(`${what}: free object ${idx} has offset ${off}`);
    if ((i32[base + SLAB_HEADER_WORDS + (idx >>> 5)]! >>> (idx & 31)) & 1)
      fail(`${what}: object ${idx} is on the free list and allocated`);
    link = i32[base + off / 4]!;
  }
  if (free + allocated !== objs)
    fail(`${what}: ${free} free + ${allocated} allocated != ${objs} objects`);
  const holder = Atomics.load(i32, base + Slab.FROZEN) - 1;
  const onList = i32[base + Slab.ON_LIST] === 1;
  if (holder >= 0) {
    if (Atomics.load(i32, threadWord(mem, holder, Thread.STATE)) === ThreadState.FREE)
      fail(`${what} is held by free thread slot ${holder}`);
    if (onList) fail(`${what} is held by thread slot ${holder} and on the partial list`);
    // its active slab and the used-up slabs it keeps
    const key = `${holder}:${cache}`;
    const held = (heldBy.get(key) ?? 0) + 1;
    const most = 1 + cpuFullSlabs(i32[g + Cache.FRAMES]!, mem.layout.totalFrames);
    if (held > most)
      fail(
        `thread slot ${holder} holds ${held} slabs of cache ${cache} (${cacheName(mem, cache)}), more than ${most} (its active slab and the used-up ones it keeps): was a live thread reaped?`,
      );
    heldBy.set(key, held);
    return;
  }
  // an empty slab nobody holds stays only on the partial list (min_partial), else it is discarded
  if (remote === allocated && !onList) fail(`${what} has no live object and was not discarded`);
  const hasFree = free > 0 || remote > 0;
  if (hasFree !== onList)
    fail(
      `${what}: ${hasFree ? 'has free objects but is not' : 'is full but is'} on the partial list`,
    );
  if (onList && Atomics.load(i32, base + Slab.LISTED) !== 1) fail(`${what} is listed, LISTED is 0`);
  if (remote === allocated) emptyListed[cache]!++;
}

/**
 * Check every cache and slab, and add each slab and large-kmalloc frame's reference to `refs`.
 * Context: a quiescent kernel.
 */
export function checkSlabs(mem: PhysMem, refs: Int32Array): void {
  const { i32 } = mem;
  if (Atomics.load(i32, Hdr.KMEM_LOCK) !== 0) fail('slab_mutex is held');
  const slabs = new Int32Array(KMEM_CACHES);
  const heldBy = new Map<string, number>();
  const emptyListed = new Int32Array(KMEM_CACHES);
  let slabFrames = 0;
  let largeFrames = 0;
  for (const { cache, head, frames } of slabRuns(mem)) {
    for (let j = 0; j < frames; j++) {
      refs[head + j]!++;
      const tag = Atomics.load(i32, mem.frameTable + (head + j) * FRAME_WORDS + Frame.OWNER);
      if (tag !== slabTag(cache, j)) fail(`frame ${head + j} of slab ${head} has tag ${tag}`);
    }
    if (cache === SLAB_LARGE) {
      largeFrames += frames;
      continue;
    }
    if ((Atomics.load(i32, cacheWord(mem, cache, Cache.GEN)) & 1) === 0)
      fail(`slab ${head} belongs to dead cache ${cache}`);
    slabs[cache]!++;
    slabFrames += frames;
    checkSlab(mem, cache, head, heldBy, emptyListed);
  }
  for (let cache = 0; cache < KMEM_CACHES; cache++) {
    if (Atomics.load(i32, cacheWord(mem, cache, Cache.LOCK)) !== 0)
      fail(`list_lock of cache ${cache} (${cacheName(mem, cache)}) is held`);
    if (Atomics.load(i32, cacheWord(mem, cache, Cache.NR_SLABS)) !== slabs[cache])
      fail(`cache ${cache} (${cacheName(mem, cache)}): NR_SLABS is wrong (${slabs[cache]} slabs)`);
    let listed = 0;
    let prev = 0;
    for (let cur = i32[cacheWord(mem, cache, Cache.PARTIAL)]!; cur !== 0; listed++) {
      const base = (cur - 1) * PAGE_WORDS;
      if (listed > slabs[cache]!)
        fail(`cache ${cache} (${cacheName(mem, cache)}): the partial list has a cycle`);
      if (
        Atomics.load(i32, mem.frameTable + (cur - 1) * FRAME_WORDS + Frame.OWNER) !==
        slabTag(cache, 0)
      )
        fail(
          `cache ${cache} (${cacheName(mem, cache)}): partial list entry ${cur - 1} is not one of its slabs`,
        );
      if (i32[base + Slab.PREV] !== prev || i32[base + Slab.ON_LIST] !== 1)
        fail(
          `cache ${cache} (${cacheName(mem, cache)}): partial list entry ${cur - 1} has wrong links`,
        );
      prev = cur;
      cur = i32[base + Slab.NEXT]!;
    }
    if (i32[cacheWord(mem, cache, Cache.PARTIAL_TAIL)] !== prev)
      fail(
        `cache ${cache} (${cacheName(mem, cache)}): PARTIAL_TAIL is ${i32[cacheWord(mem, cache, Cache.PARTIAL_TAIL)]}, the last listed is ${prev}`,
      );
    if (listed !== i32[cacheWord(mem, cache, Cache.NR_PARTIAL)])
      fail(`cache ${cache} (${cacheName(mem, cache)}): NR_PARTIAL is wrong (${listed} listed)`);
    const keep = minPartial(i32[cacheWord(mem, cache, Cache.SIZE)]!);
    if (emptyListed[cache]! > keep)
      fail(
        `cache ${cache} (${cacheName(mem, cache)}): ${emptyListed[cache]} empty slabs listed, more than min_partial ${keep}`,
      );
  }
  if (Atomics.load(i32, Hdr.SLAB_FRAMES) !== slabFrames)
    fail(`SLAB_FRAMES is ${Atomics.load(i32, Hdr.SLAB_FRAMES)}, slabs hold ${slabFrames}`);
  if (Atomics.load(i32, Hdr.KMALLOC_LARGE_FRAMES) !== largeFrames)
    fail(`KMALLOC_LARGE_FRAMES is wrong (${largeFrames})`);
}
