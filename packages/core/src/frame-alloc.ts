/**
 * The frame allocator and frame references.
 *
 * Kernel counterpart: the page allocator (`mm/page_alloc.c`: `alloc_pages`, `__free_pages`) and
 * page references (`get_page`/`put_page`).
 *
 * Lock-free. Three shared structures, all touched only through `Atomics`:
 * - the **frame bitmap**, one bit per frame, 1 = in use. A frame is taken by a compare-and-exchange
 *   that sets its bit, so two threads never get the same frame; up to 32 frames are taken by one
 *   CAS, which also makes runs physically contiguous where memory allows.
 * - the **free-frame counter** `Hdr.FREE_FRAMES`: an allocation first *reserves* its frames by
 *   subtracting from it (failing at once when memory is short, with nothing to roll back), then
 *   searches the bitmap, where a reservation guarantees enough clear bits. A free clears the bit
 *   first and then adds to the counter, so the counter never exceeds the clear bits.
 * - the **frame table**: a reference count, an owner tag and a list link per frame. A frame leaves
 *   the allocator with one reference; {@link putFrame} releases it when the last one goes (at
 *   once, or after a grace period: see rcu.ts).
 *
 * @module
 */
import { Frame, FRAME_WORDS, FrameKind, Hdr, OWNER_ID_SHIFT, OWNER_KIND_MASK } from './layout.js';
import type { PhysMem } from './phys-mem.js';
import { reclaimDeferred, releaseFrame } from './rcu.js';
import { bug } from './bug.js';

/** Owner word of a frame: a kind and an id (area slot, mm slot). */
export function ownerTag(kind: FrameKind, id: number): number {
  return kind | (id << OWNER_ID_SHIFT);
}

/** Subtract `n` from the free-frame counter if that many are free. Context: any thread, lock-free. */
function reserveFrames(mem: PhysMem, n: number): boolean {
  const { i32 } = mem;
  for (;;) {
    const free = Atomics.load(i32, Hdr.FREE_FRAMES);
    if (free < n) return false;
    if (Atomics.compareExchange(i32, Hdr.FREE_FRAMES, free, free - n) === free) return true;
  }
}

/**
 * Take `n` frames, preferring physically contiguous runs, and write their pfns to `out[0..n)`.
 * Each frame gets refcount 1 and the given owner. Returns false, having taken nothing, when fewer
 * than `n` frames are free. Context: any thread, lock-free (never blocks).
 */
export function allocFrames(mem: PhysMem, n: number, owner: number, out: Int32Array): boolean {
  if (n <= 0) return true;
  if (!reserveFrames(mem, n) && (reclaimDeferred(mem) === 0 || !reserveFrames(mem, n)))
    return false;
  const { i32, frameBitmap, frameTable } = mem;
  const words = mem.layout.frameBitmapWords;
  const totalFrames = mem.layout.totalFrames;
  let w = Atomics.load(i32, Hdr.FRAME_HINT);
  if (w >= words) w = 0;
  let got = 0;
  // The reservation guarantees `n` clear bits exist (possibly after other threads' frees land),
  // so this loop ends; it wraps around the bitmap as often as needed.
  while (got < n) {
    const word = Atomics.load(i32, frameBitmap + w);
    if (word !== -1) {
      const free = ~word;
      let take: number;
      const want = n - got;
      if (free === -1 && want >= 32) {
        take = -1;
      } else {
        take = 0;
        let rest = free;
        for (let k = 0; k < want && rest !== 0; k++) {
          const low = rest & -rest;
          take |= low;
          rest ^= low;
        }
      }
      // The last word may have bits past the last frame: those are set at boot and never cleared.
      if (Atomics.compareExchange(i32, frameBitmap + w, word, word | take) === word) {
        let bits = take;
        while (bits !== 0) {
          const bit = 31 - Math.clz32(bits & -bits);
          bits &= bits - 1;
          const pfn = w * 32 + bit;
          const entry = frameTable + pfn * FRAME_WORDS;
          Atomics.store(i32, entry + Frame.OWNER, owner);
          Atomics.store(i32, entry + Frame.REFCOUNT, 1);
          out[got++] = pfn;
        }
        if (got >= n) break;
        continue; // the word may still have free bits
      }
      continue; // lost a race on this word: look at it again
    }
    w = w + 1 === words ? 0 : w + 1;
  }
  Atomics.store(i32, Hdr.FRAME_HINT, w);
  if (got !== n || out[n - 1]! >= totalFrames) {
    bug(`allocFrames: bitmap and counter disagree (took ${got} of ${n})`);
  }
  return true;
}

/**
 * Take `n` physically contiguous frames whose first pfn is a multiple of `align` (a power of two,
 * at least 32), the lowest such free run, writing their pfns to `out[0..n)` — what a huge mapping
 * needs (Linux's `alloc_contig_pages`). Returns false, having taken nothing, when no such run is
 * free right now (the caller then falls back to {@link allocFrames}).
 * Context: any thread, lock-free: each bitmap word of the run is claimed by a compare-and-exchange
 * from "all of these bits clear"; a lost race gives back the words claimed so far and moves on.
 */
export function allocFramesAligned(
  mem: PhysMem,
  n: number,
  align: number,
  owner: number,
  out: Int32Array,
): boolean {
  if (n <= 0) return true;
  const { i32, frameBitmap } = mem;
  const totalWords = mem.layout.frameBitmapWords;
  const step = align >>> 5; // bitmap words per alignment unit
  const fullWords = n >>> 5;
  const tailMask = (1 << (n & 31)) - 1; // low bits of the word after the full ones (0: none)
  const words = fullWords + (tailMask === 0 ? 0 : 1);
  const maskOf = (k: number): number => (k < fullWords ? -1 : tailMask);
  const looksFree = (w0: number): boolean => {
    for (let k = 0; k < words; k++) {
      if ((Atomics.load(i32, frameBitmap + w0 + k) & maskOf(k)) !== 0) return false;
    }
    return true;
  };
  for (let w0 = 0; w0 + words <= totalWords; w0 += step) {
    // find a candidate first: the free-frame counter is reserved only for the moment of the claim,
    // so other threads' allocations never see memory short because of a search
    if (!looksFree(w0)) continue;
    if (!reserveFrames(mem, n)) return false;
    let claimed = 0;
    for (; claimed < words; claimed++) {
      const mask = maskOf(claimed);
      const word = Atomics.load(i32, frameBitmap + w0 + claimed);
      if ((word & mask) !== 0) break;
      if (Atomics.compareExchange(i32, frameBitmap + w0 + claimed, word, word | mask) !== word)
        break;
    }
    if (claimed === words) {
      giveRun(mem, w0 * 32, n, owner, out);
      return true;
    }
    // lost a race for this run: give back what was claimed, then the reservation
    for (let k = 0; k < claimed; k++) Atomics.and(i32, frameBitmap + w0 + k, ~maskOf(k));
    Atomics.add(i32, Hdr.FREE_FRAMES, n);
  }
  return false;
}

/**
 * Take `n` physically contiguous frames anywhere (no alignment), writing their pfns to `out[0..n)`:
 * a slab of several frames, or a large kmalloc (`alloc_pages` of an order, without the buddy
 * allocator's alignment). Returns false, having taken nothing, when no free run of `n` frames is
 * found. Context: any thread, lock-free: the search reads the bitmap with plain loads (a hint),
 * then each word of the run is claimed by a compare-and-exchange; a lost race gives back what it
 * claimed and searches on.
 */
export function allocFramesContig(
  mem: PhysMem,
  n: number,
  owner: number,
  out: Int32Array,
): boolean {
  if (n <= 1) return allocFrames(mem, n, owner, out);
  const { i32, frameBitmap } = mem;
  const words = mem.layout.frameBitmapWords;
  if (!reserveFrames(mem, n) && (reclaimDeferred(mem) === 0 || !reserveFrames(mem, n)))
    return false;
  let run = 0;
  for (let w = 0; w < words; w++) {
    const word = i32[frameBitmap + w]!;
    if (word === -1) {
      run = 0;
      continue;
    }
    if (word === 0 && run + 32 < n) {
      run += 32;
      continue;
    }
    for (let b = 0; b < 32; b++) {
      if (word & (1 << b)) {
        run = 0;
        continue;
      }
      if (++run < n) continue;
      const first = w * 32 + b - n + 1;
      if (claimRun(mem, first, n, owner, out)) return true;
      run = 0;
    }
  }
  Atomics.add(i32, Hdr.FREE_FRAMES, n); // no run: give the reservation back
  return false;
}

/** Claim the frames `[first, first + n)` if all are free; the caller has reserved `n`. */
function claimRun(mem: PhysMem, first: number, n: number, owner: number, out: Int32Array): boolean {
  const { i32, frameBitmap } = mem;
  const end = first + n;
  const maskOf = (w: number): number => {
    const lo = Math.max(first, w * 32) - w * 32;
    const hi = Math.min(end, w * 32 + 32) - w * 32; // exclusive, 1..32
    return (hi === 32 ? -1 : (1 << hi) - 1) & ~((1 << lo) - 1);
  };
  const firstWord = first >>> 5;
  const lastWord = (end - 1) >>> 5;
  let w = firstWord;
  for (; w <= lastWord; w++) {
    const mask = maskOf(w);
    const word = Atomics.load(i32, frameBitmap + w);
    if ((word & mask) !== 0) break;
    if (Atomics.compareExchange(i32, frameBitmap + w, word, word | mask) !== word) break;
  }
  if (w <= lastWord) {
    for (let k = firstWord; k < w; k++) Atomics.and(i32, frameBitmap + k, ~maskOf(k));
    return false;
  }
  giveRun(mem, first, n, owner, out);
  return true;
}

/** The frames `[first, first + n)`, claimed in the bitmap: one reference each, `owner`, into `out`. */
function giveRun(mem: PhysMem, first: number, n: number, owner: number, out: Int32Array): void {
  const { i32, frameTable } = mem;
  for (let i = 0; i < n; i++) {
    const entry = frameTable + (first + i) * FRAME_WORDS;
    Atomics.store(i32, entry + Frame.OWNER, owner);
    Atomics.store(i32, entry + Frame.REFCOUNT, 1);
    out[i] = first + i;
  }
}

/** Take one frame; its pfn, or -1 when none is free. Context: any thread, lock-free. */
export function allocFrame(mem: PhysMem, owner: number): number {
  const out = new Int32Array(1);
  return allocFrames(mem, 1, owner, out) ? out[0]! : -1;
}

/** Add a reference to a frame that already has one (`get_page`). Context: any thread. */
export function getFrame(mem: PhysMem, pfn: number): void {
  const prev = Atomics.add(mem.i32, mem.frameTable + pfn * FRAME_WORDS + Frame.REFCOUNT, 1);
  if (prev <= 0) bug(`getFrame: frame ${pfn} has no reference to add to`);
}

/**
 * Drop a reference (`put_page`); the last one frees the frame, or defers it past the grace period
 * of other threads' read sections (rcu.ts). Context: any thread, lock-free.
 */
export function putFrame(mem: PhysMem, pfn: number): void {
  const prev = Atomics.sub(mem.i32, mem.frameTable + pfn * FRAME_WORDS + Frame.REFCOUNT, 1);
  if (prev === 1) releaseFrame(mem, pfn);
  else if (prev <= 0) bug(`putFrame: frame ${pfn} had no reference to drop`);
}

/** References held on a frame. Context: any thread (a snapshot). */
export function frameRefcount(mem: PhysMem, pfn: number): number {
  return Atomics.load(mem.i32, mem.frameTable + pfn * FRAME_WORDS + Frame.REFCOUNT);
}

/** Owner word of a frame. Context: any thread (a snapshot). */
export function frameOwner(mem: PhysMem, pfn: number): number {
  return Atomics.load(mem.i32, mem.frameTable + pfn * FRAME_WORDS + Frame.OWNER);
}

/** The owner kind of a frame. Context: any thread (a snapshot). */
export function frameKind(mem: PhysMem, pfn: number): FrameKind {
  return frameOwner(mem, pfn) & OWNER_KIND_MASK;
}

/** True when the frame's bitmap bit is set (in use or reserved). Context: any thread (a snapshot). */
export function frameInUse(mem: PhysMem, pfn: number): boolean {
  return (Atomics.load(mem.i32, mem.frameBitmap + (pfn >>> 5)) & (1 << (pfn & 31))) !== 0;
}

/**
 * Boot-time setup: metadata frames and the bitmap bits past the last frame are in use, every
 * other frame is free. Context: boot, before the buffer is shared.
 */
export function initFrames(mem: PhysMem): void {
  const { i32, frameBitmap, frameTable } = mem;
  const { totalFrames, metadataFrames, frameBitmapWords } = mem.layout;
  for (let pfn = 0; pfn < metadataFrames; pfn++) {
    i32[frameTable + pfn * FRAME_WORDS + Frame.REFCOUNT] = 1;
    i32[frameTable + pfn * FRAME_WORDS + Frame.OWNER] = FrameKind.META;
    i32[frameBitmap + (pfn >>> 5)]! |= 1 << (pfn & 31);
  }
  for (let pfn = totalFrames; pfn < frameBitmapWords * 32; pfn++) {
    i32[frameBitmap + (pfn >>> 5)]! |= 1 << (pfn & 31);
  }
  i32[Hdr.FREE_FRAMES] = totalFrames - metadataFrames;
  i32[Hdr.FRAME_HINT] = metadataFrames >>> 5;
}
