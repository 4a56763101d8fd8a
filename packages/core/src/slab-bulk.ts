/**
 * Bulk frees: `kfree_bulk` and `kmem_cache_free_bulk`.
 *
 * Kernel counterpart: `mm/slub.c` (`kmem_cache_free_bulk`, `build_detached_freelist`): objects of
 * one slab in a row go back together. Here the objects of a slab that another thread holds (or
 * nobody) that come one after another in the array go back with one `Atomics.or` per word of its
 * remote bitmap and one look at the slab's state (FROZEN; listing or discarding it once), where
 * single frees pay all of that per object: a thread that frees what another allocated — the
 * consumer of a queue of objects — pays for the atomics once per up to 32 objects. Objects of slabs
 * this thread holds are freed as by `kfree` (plain stores), large kmallocs as by `kfree`, and
 * anything that is not a live object is counted as a bad free.
 *
 * A run's objects are checked live when they join it and freed when it is flushed (at an object of
 * another slab, or the end): a second free of one of them by another thread in between is caught
 * by the `Atomics.or`'s old value and counted once, as for single frees.
 *
 * @module
 */
import { PAGE_SIZE } from './errno.js';
import { Hdr, Slab, SLAB_HEADER_WORDS } from './layout.js';
import { kfreeLarge } from './kmalloc.js';
import { PAGE_WORDS } from './slab.js';
import { FreeResult, type SlabCpu } from './slab-cpu.js';

/** Words of the largest alloc bitmap (16 frames of 8-byte objects). */
const MAX_BITMAP_WORDS = (16 * PAGE_SIZE) / 8 / 32;
/**
 * The pending run's objects, per word of its slab's bitmap: this thread's scratch, all zero
 * between calls (a bulk free calls nothing that frees in bulk).
 */
const runMasks = new Int32Array(MAX_BITMAP_WORDS);

/** The slab whose objects are pending (see {@link kfreeBulk}). */
interface Run {
  head: number;
  cache: number;
  words: number;
  seq: number;
  /** the slab's GEOMETRY and SHAPE words (its first frame's objects are found from them) */
  geometry: number;
  shape: number;
  /** first and last bitmap word with a pending object */
  lo: number;
  hi: number;
}

/**
 * Free the pending objects of `run`: one `Atomics.or` per bitmap word, then the slab's unowned
 * work once. Returns the objects another free had freed first (bad frees).
 */
function flushRun(cpu: SlabCpu, run: Run): number {
  if (run.head < 0) return 0;
  const { i32 } = cpu.mem;
  const remote = run.head * PAGE_WORDS + SLAB_HEADER_WORDS + run.words;
  const alloc = run.head * PAGE_WORDS + SLAB_HEADER_WORDS;
  let lost = 0;
  let won = false;
  let emptied = false;
  for (let w = run.lo; w <= run.hi; w++) {
    const mask = runMasks[w]!;
    if (mask === 0) continue;
    runMasks[w] = 0;
    const old = Atomics.or(i32, remote + w, mask);
    for (let bits = old & mask; bits !== 0; bits &= bits - 1) lost++;
    if ((mask & ~old) !== 0) won = true;
    if ((i32[alloc + w]! & ~(old | mask)) === 0) emptied = true;
  }
  if (won) cpu.afterRemote(run.cache, run.head, run.words, run.seq, emptied);
  run.head = -1;
  return lost;
}

/**
 * Free `kaddrs[start … end)`; with `only` ≥ 0, only objects of that cache (others are bad frees).
 * Null entries are skipped. Context: the owning thread, attached; lock-free unless a free empties
 * or first frees into a slab nobody holds (as `kfree`).
 */
export function kfreeBulk(
  cpu: SlabCpu,
  kaddrs: ArrayLike<unknown>,
  start: number,
  end: number,
  only: number,
): void {
  const { i32 } = cpu.mem;
  let bad = 0;
  const run: Run = { head: -1, cache: 0, words: 0, seq: 0, geometry: 0, shape: 0, lo: 0, hi: 0 };
  try {
    for (let i = start; i < end; i++) {
      const kaddr = kaddrs[i];
      if (kaddr === null) continue;
      // an object of the run's slab's first frame: its index from the words read at the run's start
      const idx =
        run.head >= 0 && typeof kaddr === 'number'
          ? cpu.indexIn(kaddr, run.head, run.geometry, run.shape)
          : -1;
      if (idx >= 0) {
        const w = idx >>> 5;
        const bit = 1 << (idx & 31);
        const aw = run.head * PAGE_WORDS + SLAB_HEADER_WORDS + w;
        if ((i32[aw]! & bit) === 0 || (i32[aw + run.words]! & bit) !== 0)
          bad++; // not live
        else if ((runMasks[w]! & bit) !== 0)
          bad++; // the same object twice in the run
        else {
          runMasks[w]! |= bit;
          if (w < run.lo) run.lo = w;
          if (w > run.hi) run.hi = w;
        }
        continue;
      }
      const r = typeof kaddr === 'number' ? cpu.locate(kaddr, only) : FreeResult.BAD;
      if (r === FreeResult.LARGE) {
        if (!kfreeLarge(cpu.mem, cpu.largeHead)) bad++;
      } else if (r !== FreeResult.FREED) {
        bad++;
      } else if (cpu.foundHeld()) {
        cpu.freeFound();
      } else {
        if (cpu.foundHead !== run.head) {
          bad += flushRun(cpu, run);
          run.head = cpu.foundHead;
          run.cache = cpu.foundCache;
          run.words = cpu.foundWords;
          run.seq = i32[run.head * PAGE_WORDS + Slab.SEQ]!; // read while the objects are live
          run.geometry = i32[run.head * PAGE_WORDS + Slab.GEOMETRY]!;
          run.shape = i32[run.head * PAGE_WORDS + Slab.SHAPE]!;
          run.lo = MAX_BITMAP_WORDS;
          run.hi = -1;
        }
        const w = cpu.foundWord - run.head * PAGE_WORDS - SLAB_HEADER_WORDS;
        if ((runMasks[w]! & cpu.foundBit) !== 0) bad++; // the same object twice in the run
        runMasks[w]! |= cpu.foundBit;
        if (w < run.lo) run.lo = w;
        if (w > run.hi) run.hi = w;
      }
    }
    bad += flushRun(cpu, run);
  } finally {
    if (run.head >= 0) runMasks.fill(0); // a throw (a kernel bug) left a run: the scratch is clean
  }
  if (bad > 0) Atomics.add(i32, Hdr.BAD_FREES, bad);
}
