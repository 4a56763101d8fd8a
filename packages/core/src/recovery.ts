/**
 * Recovery from dead threads: stop the world, undo the dead thread's half-done call, rebuild what
 * the authoritative records imply, release its locks and its read sections.
 *
 * Kernel counterparts: `exit_robust_list` (locks of a dead owner are released), `stop_machine`
 * (nothing else runs in the kernel meanwhile) and the repair half of `fsck`.
 *
 * The authoritative records are: area records with `NR_PAGES > 0` and their kernel PTEs; live mm
 * slots (odd generation) with their VMA lists and page tables; the deferred list; metadata. From
 * them recovery rebuilds everything derived: the area list, free list and area map; kernel PTEs
 * outside live areas (cleared); each live mm's PTEs outside its VMAs (cleared) and their
 * protections (set to the VMA's); the VMA pool, the mm free list and every counter; and the frame
 * table (references, owner kinds, bitmap and free count). Frames that an aborted call took and
 * never linked are thereby freed; frames a live thread holds in flight are kept.
 *
 * Why the rebuild is safe while other threads are alive: a live thread is either outside the
 * kernel, or parked waiting for a lock before it changed anything in its call (see thread.ts), so
 * the records are stable. Locks that a parked thread holds guard nothing it has changed.
 *
 * @module
 */
import {
  Area,
  Frame,
  FRAME_WORDS,
  FrameKind,
  Hdr,
  Mm,
  MM_WORDS,
  OWNER_ID_SHIFT,
  OWNER_KIND_MASK,
  PTRS_PER_TABLE,
  Thread,
  THREAD_WORDS,
  ThreadState,
  VMA_STASH_SLOTS,
  VMA_WORDS,
  VmaWord,
} from './layout.js';
import { mmGet, mmLiveGen, mmWord, vmaSlotsLocked } from './mm.js';
import { splitHugeEdgesLocked } from './page-table.js';
import {
  forEachPteLocked,
  pdeIsHuge,
  pdeSlotIndex,
  ptePfn,
  pteIndex,
  pteWithProt,
  slotStart,
  tableFramesLocked,
} from './pgtable.js';
import type { PhysMem } from './phys-mem.js';
import { reclaimDeferred, releaseFrame } from './rcu.js';
import { recoverSlabs, slabFrameRefs } from './slab-check.js';
import { EAGAIN } from './errno.js';
import { reapRings, ringLocksFree } from './ringbuf-check.js';
import { areaWord, vfree } from './vmalloc.js';
import { deadlineAfter, pause, pauseUntil } from './cpu-relax.js';
import { kernelEnter, kernelExit, threadWord } from './thread.js';
import { undoThreadLog } from './undo.js';
import { vmaGet } from './vma.js';

/** Claim the right to recover (one recovery at a time). Context: a thread outside kernel calls. */
function claimRecovery(mem: PhysMem): void {
  for (;;) {
    const owner = Atomics.compareExchange(mem.i32, Hdr.RECOVERY, 0, mem.tid);
    if (owner === 0) return;
    pause(mem.i32, Hdr.RECOVERY, owner, 1);
  }
}

/**
 * Wait until no live thread but this one is inside a kernel call (stop_machine). False when one is
 * still inside at `deadline` (a `performance.now()` time; `Infinity`: no limit). Such a thread may
 * be alive and busy in a long call, or dead (terminated inside a call) and not reaped yet: nothing
 * here can tell the two apart, and the thread that reaps it may be this one, so a wait without a
 * limit could last for ever.
 */
function stopTheWorld(mem: PhysMem, deadline: number): boolean {
  const { i32 } = mem;
  for (let slot = 0; slot < mem.layout.maxThreads; slot++) {
    if (slot === mem.current.slot) continue;
    const state = threadWord(mem, slot, Thread.STATE);
    while (Atomics.load(i32, state) === ThreadState.IN) {
      if (!pauseUntil(i32, state, ThreadState.IN, deadline)) return false;
    }
  }
  return true;
}

/** Slots and tids of threads marked dead. */
function deadThreads(mem: PhysMem): { slots: number[]; tids: Set<number> } {
  const slots: number[] = [];
  const tids = new Set<number>();
  for (let slot = 0; slot < mem.layout.maxThreads; slot++) {
    if (Atomics.load(mem.i32, threadWord(mem, slot, Thread.STATE)) !== ThreadState.DEAD) continue;
    slots.push(slot);
    tids.add(Atomics.load(mem.i32, threadWord(mem, slot, Thread.TID)));
  }
  return { slots, tids };
}

/** Rebuild the vmalloc structures from the area records (NR_PAGES > 0 = live). */
function rebuildAreas(mem: PhysMem): void {
  const { i32, layout } = mem;
  const live: number[] = [];
  for (let slot = 0; slot < layout.maxAreas; slot++) {
    if (Atomics.load(i32, areaWord(mem, slot, Area.NR_PAGES)) > 0) live.push(slot);
  }
  live.sort(
    (a, b) =>
      Atomics.load(i32, areaWord(mem, a, Area.START)) -
      Atomics.load(i32, areaWord(mem, b, Area.START)),
  );
  i32.fill(0, mem.areaMap, mem.areaMap + layout.vmallocPages);
  const backed = new Uint8Array(layout.vmallocPages);
  let pages = 0;
  live.forEach((slot, i) => {
    const start = Atomics.load(i32, areaWord(mem, slot, Area.START));
    const nr = Atomics.load(i32, areaWord(mem, slot, Area.NR_PAGES));
    Atomics.store(i32, areaWord(mem, slot, Area.PREV), i === 0 ? 0 : live[i - 1]! + 1);
    Atomics.store(i32, areaWord(mem, slot, Area.NEXT), i + 1 < live.length ? live[i + 1]! + 1 : 0);
    i32.fill(slot + 1, mem.areaMap + start, mem.areaMap + start + nr + 1);
    backed.fill(1, start, start + nr);
    pages += nr;
  });
  Atomics.store(i32, Hdr.AREA_HEAD, live.length > 0 ? live[0]! + 1 : 0);
  for (let p = 0; p < layout.vmallocPages; p++) {
    if (!backed[p]) Atomics.store(i32, mem.kernelPageTable + p, 0);
  }
  let freeHead = 0;
  for (let slot = layout.maxAreas - 1; slot >= 0; slot--) {
    if (Atomics.load(i32, areaWord(mem, slot, Area.NR_PAGES)) > 0) continue;
    Atomics.store(i32, areaWord(mem, slot, Area.PREV), 0);
    Atomics.store(i32, areaWord(mem, slot, Area.NEXT), freeHead);
    freeHead = slot + 1;
  }
  Atomics.store(i32, Hdr.AREA_FREE_HEAD, freeHead);
  Atomics.store(i32, Hdr.FREE_CACHE, 0); // the next search starts from the lowest address
  Atomics.store(i32, Hdr.CACHED_HOLE, 0);
  Atomics.store(i32, Hdr.NR_AREAS, live.length);
  Atomics.store(i32, Hdr.VMALLOC_USED_PAGES, pages);
}

/** Make a live mm's PTEs agree with its VMAs and recount it. Returns its table frames. */
function repairMm(mem: PhysMem, slot: number, onVma: (vma: number) => void): number[] {
  const { i32 } = mem;
  const pgd = mmGet(mem, slot, Mm.PGD);
  const vmas = vmaSlotsLocked(mem, slot);
  const ranges = vmas.map((v) => {
    onVma(v);
    return [
      vmaGet(mem, v, VmaWord.START),
      vmaGet(mem, v, VmaWord.END),
      vmaGet(mem, v, VmaWord.PROT),
    ] as const;
  });
  let ptes = 0;
  let r = 0;
  // the first VMA range that ends after `upage` (pages are visited in increasing order)
  const rangeAfter = (upage: number): (typeof ranges)[number] | undefined => {
    while (r < ranges.length && ranges[r]![1] <= upage) r++;
    return ranges[r];
  };
  for (let dir = 0; dir < PTRS_PER_TABLE; dir++) {
    const pdeAt = pdeSlotIndex(pgd, dir);
    let pde = Atomics.load(i32, pdeAt);
    const lo = slotStart(dir);
    if (pdeIsHuge(pde)) {
      const range = rangeAfter(lo);
      if (range !== undefined && range[0] <= lo && range[1] >= lo + PTRS_PER_TABLE) {
        // inside one VMA: a dead mprotect's rewrite, completed
        Atomics.store(i32, pdeAt, pteWithProt(pde, range[2]));
        ptes += PTRS_PER_TABLE;
        continue;
      }
      if (range === undefined || range[0] >= lo + PTRS_PER_TABLE) {
        Atomics.store(i32, pdeAt, 0); // outside every VMA: a dead munmap's zap, completed
        continue;
      }
      // cut by a VMA edge (munmap and mprotect split such entries first, so this is not expected):
      // split it and repair its PTEs one by one; with no frame for a table, unmap it all
      if (splitHugeEdgesLocked(mem, slot, pgd, lo + 1, lo + 1) < 0) {
        Atomics.store(i32, pdeAt, 0);
        continue;
      }
      pde = Atomics.load(i32, pdeAt);
    }
    if (pde === 0) continue;
    for (let upage = lo; upage < lo + PTRS_PER_TABLE; upage++) {
      const at = pteIndex(pde, upage);
      const pte = Atomics.load(i32, at);
      if (pte === 0) continue;
      const range = rangeAfter(upage);
      if (range === undefined || upage < range[0]) {
        Atomics.store(i32, at, 0); // outside every VMA: a dead munmap's zap, completed
      } else {
        Atomics.store(i32, at, pteWithProt(pte, range[2])); // a dead mprotect's rewrite
        ptes++;
      }
    }
  }
  const tables = tableFramesLocked(mem, pgd);
  Atomics.store(i32, mmWord(mem, slot, Mm.NR_VMAS), vmas.length);
  Atomics.store(i32, mmWord(mem, slot, Mm.NR_PTES), ptes);
  Atomics.store(i32, mmWord(mem, slot, Mm.NR_PT), tables.length);
  return [pgd, ...tables];
}

/**
 * Rebuild mm free list, VMA pool (around the live threads' stashes) and every mm's counters;
 * returns page-table frames by mm slot.
 */
function rebuildMms(mem: PhysMem, deadSlots: Set<number>): Map<number, number[]> {
  const { i32, layout } = mem;
  const onList = new Uint8Array(layout.maxVmas);
  const tables = new Map<number, number[]>();
  let mmFree = 0;
  let live = 0;
  for (let slot = layout.maxAddressSpaces - 1; slot >= 0; slot--) {
    if (mmLiveGen(mem, slot) === 0) {
      Atomics.store(i32, mmWord(mem, slot, Mm.NEXT_FREE), mmFree);
      Atomics.store(i32, mmWord(mem, slot, Mm.VMA_HEAD), 0);
      mmFree = slot + 1;
      continue;
    }
    live++;
    tables.set(
      slot,
      repairMm(mem, slot, (v) => (onList[v] = 1)),
    );
  }
  Atomics.store(i32, Hdr.MM_FREE_HEAD, mmFree);
  // PTEs were undone and repaired above: every translation cache must drop what it holds (a
  // lock-free getUser32 may have cached a PTE of a remap that never committed), and a dead
  // thread's half-done flush must not leave a TLB generation odd
  for (let slot = 0; slot < layout.maxAddressSpaces; slot++) {
    const tlbGen = mmWord(mem, slot, Mm.TLB_GEN);
    Atomics.add(i32, tlbGen, Atomics.load(i32, tlbGen) & 1 ? 1 : 2);
  }
  Atomics.store(i32, Hdr.NR_MMS, live);
  // a live thread's stashed VMA slots stay its own; a dead thread's go back to the pool
  let used = 0;
  for (let t = 0; t < layout.maxThreads; t++) {
    const state = Atomics.load(i32, threadWord(mem, t, Thread.STATE));
    const dead = state === ThreadState.FREE || deadSlots.has(t);
    for (let k = 0; k < VMA_STASH_SLOTS; k++) {
      const at = threadWord(mem, t, Thread.VMA_STASH) + k;
      const v = Atomics.load(i32, at) - 1;
      if (v < 0) continue;
      if (dead || onList[v] === 1) {
        Atomics.store(i32, at, 0); // freed below (or linked: a stash never holds a used slot)
        continue;
      }
      onList[v] = 1;
      used++;
    }
  }
  let vmaFree = 0;
  for (let v = layout.maxVmas - 1; v >= 0; v--) {
    const base = mem.vmaTable + v * VMA_WORDS;
    if (onList[v]) {
      if (Atomics.load(i32, base + VmaWord.MM) !== 0) used++;
      continue;
    }
    if (Atomics.load(i32, base + VmaWord.MM) !== 0) {
      Atomics.store(i32, base + VmaWord.MM, 0);
      Atomics.add(i32, base + VmaWord.GEN, 1); // handles to it go stale
    }
    Atomics.store(i32, base + VmaWord.NEXT, vmaFree);
    vmaFree = v + 1;
  }
  Atomics.store(i32, Hdr.VMA_FREE_HEAD, vmaFree);
  Atomics.store(i32, Hdr.NR_VMAS, used);
  return tables;
}

/**
 * Rebuild every frame's references, owner, bitmap bit, and the free and deferred counts. Returns
 * the frames that were in use and have no reference left (a dead thread's half-done munmap or
 * destroy, its frames in flight): they are not free yet, but released by the caller through the
 * grace-period rule, since a live reader may still hold a view of them.
 */
function rebuildFrames(
  mem: PhysMem,
  tables: Map<number, number[]>,
  deadSlots: Set<number>,
): number[] {
  const { i32, layout } = mem;
  const refs = new Int32Array(layout.totalFrames);
  const owner = new Int32Array(layout.totalFrames);
  for (let pfn = 0; pfn < layout.metadataFrames; pfn++) {
    refs[pfn] = 1;
    owner[pfn] = FrameKind.META;
  }
  slabFrameRefs(mem, refs, owner);
  for (
    let cur = Atomics.load(i32, Hdr.AREA_HEAD);
    cur !== 0;
    cur = Atomics.load(i32, areaWord(mem, cur - 1, Area.NEXT))
  ) {
    const start = Atomics.load(i32, areaWord(mem, cur - 1, Area.START));
    const nr = Atomics.load(i32, areaWord(mem, cur - 1, Area.NR_PAGES));
    for (let p = start; p < start + nr; p++) {
      const pfn = ptePfn(Atomics.load(i32, mem.kernelPageTable + p));
      refs[pfn]!++;
      owner[pfn] = FrameKind.VMALLOC | ((cur - 1) << OWNER_ID_SHIFT);
    }
  }
  const mapcounts = new Int32Array(layout.maxAreas);
  for (const [slot, frames] of tables) {
    for (const pfn of frames) {
      refs[pfn]!++;
      owner[pfn] = FrameKind.PAGE_TABLE | (slot << OWNER_ID_SHIFT);
    }
    forEachPteLocked(mem, mmGet(mem, slot, Mm.PGD), (_upage, pte) => {
      const pfn = ptePfn(pte);
      const tag = owner[pfn]!;
      if ((tag & OWNER_KIND_MASK) === FrameKind.VMALLOC) {
        mapcounts[tag >>> OWNER_ID_SHIFT]!++; // a live area's page: counted in its MAPCOUNT
      } else {
        refs[pfn]!++; // its area was freed: an orphan page, one reference per PTE
        owner[pfn] = FrameKind.ORPHAN;
      }
    });
  }
  for (let a = 0; a < layout.maxAreas; a++)
    Atomics.store(i32, areaWord(mem, a, Area.MAPCOUNT), mapcounts[a]!);
  const deferred = new Uint8Array(layout.totalFrames);
  let nrDeferred = 0;
  for (
    let cur = Atomics.load(i32, Hdr.DEFER_HEAD);
    cur !== 0;
    cur = Atomics.load(i32, mem.frameTable + (cur - 1) * FRAME_WORDS + Frame.LINK)
  ) {
    deferred[cur - 1] = 1;
    nrDeferred++;
  }
  let free = 0;
  const released: number[] = [];
  for (let pfn = layout.metadataFrames; pfn < layout.totalFrames; pfn++) {
    const entry = mem.frameTable + pfn * FRAME_WORDS;
    const current = Atomics.load(i32, entry + Frame.OWNER);
    const kind = current & OWNER_KIND_MASK;
    let n = refs[pfn]!;
    let tag = owner[pfn]!;
    // a live thread's in-flight frames stay with it (it is parked, or outside with none)
    if (n === 0 && kind === FrameKind.INFLIGHT && !deadSlots.has(current >>> OWNER_ID_SHIFT)) {
      const state = Atomics.load(i32, threadWord(mem, current >>> OWNER_ID_SHIFT, Thread.STATE));
      if (state !== ThreadState.FREE) {
        n = 1;
        tag = current;
      }
    }
    if (deferred[pfn]) tag = current;
    if (n === 0 && !deferred[pfn] && kind !== FrameKind.FREE) {
      // in use until now: keep it allocated here, the caller releases it
      Atomics.store(i32, entry + Frame.REFCOUNT, 0);
      Atomics.or(i32, mem.frameBitmap + (pfn >>> 5), 1 << (pfn & 31));
      released.push(pfn);
      continue;
    }
    Atomics.store(i32, entry + Frame.REFCOUNT, n);
    // a free frame keeps its word: FREE_ZEROED (never handed out) or FREE_DIRTY
    Atomics.store(i32, entry + Frame.OWNER, n > 0 || deferred[pfn] ? tag : current);
    const bit = 1 << (pfn & 31);
    if (n > 0 || deferred[pfn]) Atomics.or(i32, mem.frameBitmap + (pfn >>> 5), bit);
    else {
      Atomics.and(i32, mem.frameBitmap + (pfn >>> 5), ~bit);
      free++;
    }
  }
  Atomics.store(i32, Hdr.FREE_FRAMES, free);
  Atomics.store(i32, Hdr.DEFERRED_FRAMES, nrDeferred);
  let ptFrames = 0;
  for (const frames of tables.values()) ptFrames += frames.length;
  Atomics.store(i32, Hdr.PT_FRAMES, ptFrames);
  return released;
}

/** Release every lock a dead thread holds. */
function releaseLocks(mem: PhysMem, tids: Set<number>): void {
  const { i32 } = mem;
  const locks = [Hdr.VMAP_LOCK, Hdr.VMA_POOL_LOCK, Hdr.MM_TABLE_LOCK];
  for (let slot = 0; slot < mem.layout.maxAddressSpaces; slot++)
    locks.push(mem.mmTable + slot * MM_WORDS + Mm.LOCK);
  for (const lock of locks) {
    if (tids.has(Atomics.load(i32, lock))) Atomics.store(i32, lock, 0);
  }
}

/** End the dead threads' read sections and free their slots; recount readers. */
function releaseThreads(mem: PhysMem, slots: readonly number[]): void {
  const { i32 } = mem;
  for (const slot of slots) {
    const base = mem.threadTable + slot * THREAD_WORDS;
    Atomics.store(i32, base + Thread.RCU_NESTING, 0);
    Atomics.store(i32, base + Thread.UNDO_LEN, 0);
    Atomics.store(i32, base + Thread.COPY_SEQ, 0); // its copy is over: nobody waits for it
    Atomics.store(i32, base + Thread.COPY_MM, 0);
    Atomics.store(i32, base + Thread.STATE, ThreadState.FREE);
  }
  let readers = 0;
  for (let slot = 0; slot < mem.layout.maxThreads; slot++) {
    const base = mem.threadTable + slot * THREAD_WORDS;
    if (
      Atomics.load(i32, base + Thread.STATE) !== ThreadState.FREE &&
      Atomics.load(i32, base + Thread.RCU_NESTING) > 0
    )
      readers++;
  }
  Atomics.store(i32, Hdr.RCU_READERS, readers);
}

/**
 * Declare the threads that `isDead(slot)` selects dead and recover from them. Returns how many
 * were reaped: those selected, and any an earlier interrupted or deferred recovery left marked
 * dead. Returns `-EAGAIN` when another thread is still inside a kernel call after `timeoutMs`
 * (negative: no limit): the selected threads stay marked dead, nothing else changed, and the next
 * recovery (whatever it selects) recovers them. Context: a live attached thread outside any kernel
 * call; stops every other thread at its next kernel entry or lock wait until done.
 */
export function reapThreads(
  mem: PhysMem,
  isDead: (slot: number) => boolean,
  timeoutMs: number,
): number {
  const { i32 } = mem;
  const deadline = deadlineAfter(timeoutMs);
  let unusedRings: number[] = [];
  claimRecovery(mem);
  try {
    for (let slot = 0; slot < mem.layout.maxThreads; slot++) {
      if (slot === mem.current.slot || !isDead(slot)) continue;
      const state = threadWord(mem, slot, Thread.STATE);
      const s = Atomics.load(i32, state);
      if (s !== ThreadState.FREE) Atomics.store(i32, state, ThreadState.DEAD);
    }
    const dead = deadThreads(mem);
    if (dead.slots.length === 0) return 0;
    // Two threads terminated at once: the first one's reap finds the second still marked inside
    // the call it died in, and the second's exit cannot be handled while this thread waits here
    if (!stopTheWorld(mem, deadline) || !ringLocksFree(mem, dead.tids, deadline)) return -EAGAIN;
    for (const slot of dead.slots) undoThreadLog(mem, slot);
    const deadSlots = new Set(dead.slots);
    recoverSlabs(mem, deadSlots, dead.tids);
    rebuildAreas(mem);
    const tables = rebuildMms(mem, deadSlots);
    const released = rebuildFrames(mem, tables, deadSlots);
    releaseLocks(mem, dead.tids);
    // their open ring records are discarded, what their waits held given back
    unusedRings = reapRings(mem, deadSlots, dead.tids);
    releaseThreads(mem, dead.slots);
    // as any release: deferred while a live thread is inside a read section (readers recounted)
    for (const pfn of released) releaseFrame(mem, pfn);
    return dead.slots.length;
  } finally {
    Atomics.store(i32, Hdr.RECOVERY, 0);
    // the dead threads' sections are over: free what they held back, as a kernel call of its own
    kernelEnter(mem);
    try {
      reclaimDeferred(mem);
    } finally {
      kernelExit(mem);
    }
    // freed rings whose last reference was a dead thread's wait: as the last `ringPut` would
    for (const kaddr of unusedRings) vfree(mem, kaddr);
  }
}
