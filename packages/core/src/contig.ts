/**
 * Physically contiguous runs of frames, and where they are placed.
 *
 * Kernel counterpart: `alloc_contig_pages` / `alloc_contig_range` (`mm/page_alloc.c`), which find
 * and claim a free physically contiguous range for callers that need one (CMA, huge pages), and the
 * placement half of anti-fragmentation (`mm/page_alloc.c`'s migrate types keep movable and
 * unmovable allocations apart so large blocks stay free).
 *
 * Placement: small allocations take frames from the low end of memory (the frame allocator's
 * hint starts at the lowest freed frame); a large run is searched from the **high** end down. The
 * two grow towards each other, so churn among small areas leaves the top of memory in long free
 * runs:
 *
 * ```
 *   pfn 0                                                                   totalFrames
 *   │ meta │ small areas, churned → │      free: one long run      │ ← large runs (16 MiB…) │
 * ```
 *
 * Context of everything here: any thread, lock-free. The search reads the bitmap with plain
 * loads (a hint); the claim sets each bitmap word of the run by compare-and-exchange from "all of
 * these bits clear", and a lost race gives back the words claimed so far and searches again.
 *
 * @module
 */
import { reserveFrames } from './frame-alloc.js';
import { Frame, FRAME_WORDS, FREE_ZEROED, Hdr } from './layout.js';
import type { PhysMem } from './phys-mem.js';
import { reclaimDeferred } from './rcu.js';

/** Mask of the bits of bitmap word `w` inside the frame range `[first, end)`. */
function maskOf(w: number, first: number, end: number): number {
  const lo = Math.max(first, w * 32) - w * 32;
  const hi = Math.min(end, w * 32 + 32) - w * 32; // exclusive, 1..32
  return (hi === 32 ? -1 : (1 << hi) - 1) & ~((1 << lo) - 1);
}

/**
 * Claim the frames `[first, first + n)` if all are free right now (the caller reserved `n` in
 * the free-frame counter). On success each gets refcount 1 and `owner`, `out[0..n)` their pfns and
 * `dirty[i]` (when given) 1 for a frame that may hold old data. On failure nothing is claimed.
 */
function claimRun(
  mem: PhysMem,
  first: number,
  n: number,
  owner: number,
  out: Int32Array,
  dirty: Uint8Array | null,
): boolean {
  const { i32, frameBitmap } = mem;
  const end = first + n;
  const firstWord = first >>> 5;
  const lastWord = (end - 1) >>> 5;
  let w = firstWord;
  for (; w <= lastWord; w++) {
    const mask = maskOf(w, first, end);
    const word = Atomics.load(i32, frameBitmap + w);
    if ((word & mask) !== 0) break;
    if (Atomics.compareExchange(i32, frameBitmap + w, word, word | mask) !== word) break;
  }
  if (w <= lastWord) {
    for (let k = firstWord; k < w; k++) Atomics.and(i32, frameBitmap + k, ~maskOf(k, first, end));
    return false;
  }
  // The frames are this thread's alone from the bitmap claim on, and nothing else reads their
  // words until the caller publishes them (an area's NR_PAGES store and the release of
  // vmap_area_lock, both Atomics): plain loads and stores here, one pass, no locked instruction
  // per frame (`takeFrame` is the same with Atomics, for frames claimed one at a time).
  // Locals for the layout's values: an imported binding is a cell load in every iteration.
  const stride = FRAME_WORDS;
  const ownerWord = Frame.OWNER;
  const refWord = Frame.REFCOUNT;
  const zeroed = FREE_ZEROED;
  let entry = mem.frameTable + first * stride;
  for (let i = 0; i < n; i++, entry += stride) {
    out[i] = first + i;
    if (dirty !== null) dirty[i] = i32[entry + ownerWord] === zeroed ? 0 : 1;
    i32[entry + ownerWord] = owner;
    i32[entry + refWord] = 1;
  }
  return true;
}

/**
 * The first pfn of a free run of `n` frames whose first pfn is a multiple of `align`, searched
 * from the high end of memory down (the highest such run) or from the low end up; -1 if none.
 * A snapshot: the caller claims it and searches again if it lost a race.
 */
export function findFreeRun(mem: PhysMem, n: number, align: number, fromTop: boolean): number {
  const { i32, frameBitmap } = mem;
  const total = mem.layout.totalFrames;
  const used = (pfn: number): boolean =>
    (i32[frameBitmap + (pfn >>> 5)]! & (1 << (pfn & 31))) !== 0;
  if (fromTop) {
    // walk down; `runStart` is the lowest pfn of the free run that ends at `runEnd`
    let runEnd = total;
    let pfn = total;
    while (pfn > 0) {
      const w = (pfn - 1) >>> 5;
      const word = i32[frameBitmap + w]!;
      if (word === 0 && (pfn & 31) === 0) {
        pfn -= 32; // a whole free word
      } else if (word === -1 && (pfn & 31) === 0) {
        pfn -= 32;
        runEnd = pfn;
        continue;
      } else {
        pfn--;
        if (used(pfn)) {
          runEnd = pfn;
          continue;
        }
      }
      // the free run is [pfn, runEnd): the highest aligned start that fits
      const start = Math.floor((runEnd - n) / align) * align;
      if (start >= pfn && start >= 0) return start;
    }
    return -1;
  }
  let runStart = 0;
  let pfn = 0;
  while (pfn < total) {
    const word = i32[frameBitmap + (pfn >>> 5)]!;
    if ((pfn & 31) === 0 && word === -1) {
      pfn += 32;
      runStart = pfn;
      continue;
    }
    if ((pfn & 31) === 0 && word === 0 && pfn + 32 <= total) pfn += 32;
    else if (used(pfn)) {
      pfn++;
      runStart = pfn;
      continue;
    } else pfn++;
    const start = Math.ceil(runStart / align) * align;
    if (start + n <= pfn) return start;
  }
  return -1;
}

/**
 * Take `n` physically contiguous frames whose first pfn is a multiple of `align` (a power of two),
 * writing their pfns to `out[0..n)` and, when `dirty` is given, 1 in `dirty[i]` for each frame that
 * may hold old data (0: never written since boot, already zero). `fromTop` searches from the high
 * end of memory (large runs) instead of the low end. Returns false, having taken nothing, when no
 * such run is free.
 */
export function allocContig(
  mem: PhysMem,
  n: number,
  align: number,
  fromTop: boolean,
  owner: number,
  out: Int32Array,
  dirty: Uint8Array | null,
): boolean {
  if (n <= 0) return true;
  for (;;) {
    const first = findFreeRun(mem, n, align, fromTop);
    if (first < 0) {
      // frames held back by a grace period may complete a run
      if (Atomics.load(mem.i32, Hdr.DEFERRED_FRAMES) > 0 && reclaimDeferred(mem) > 0) continue;
      return false;
    }
    // the free-frame counter is reserved only for the moment of the claim, so other threads'
    // allocations never see memory short because of a search
    if (!reserveFrames(mem, n)) return false;
    if (claimRun(mem, first, n, owner, out, dirty)) return true;
    Atomics.add(mem.i32, Hdr.FREE_FRAMES, n); // lost a race for this run: search again
  }
}
