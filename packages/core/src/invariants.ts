/**
 * `checkInvariants`: a full consistency check of the kernel state, for tests and debugging.
 *
 * Kernel counterpart: the `CONFIG_DEBUG_VM` checks (`VM_BUG_ON`, `check_mm`).
 *
 * Meant for a quiescent kernel (no call in flight in any thread): it reads every structure and
 * throws an `Error` naming the first broken invariant.
 *
 * @module
 */
import { PAGE_SIZE } from './errno.js';
import { frameInUse, frameKind, frameOwner, frameRefcount } from './frame-alloc.js';
import {
  Area,
  Frame,
  FRAME_WORDS,
  FrameKind,
  FREE_DIRTY,
  FREE_ZEROED,
  Hdr,
  Mm,
  OWNER_ID_SHIFT,
  TASK_SIZE,
  Thread,
  THREAD_WORDS,
  ThreadState,
  VMA_STASH_SLOTS,
  VmaWord,
} from './layout.js';
import { mmGet, mmLiveGen, mmWord, vmaSlotsLocked } from './mm.js';
import {
  forEachPde,
  forEachPteLocked,
  mkPte,
  pdeIsHuge,
  ptePfn,
  slotAligned,
  tableFramesLocked,
} from './pgtable.js';
import type { PhysMem } from './phys-mem.js';
import { checkSlabs } from './slab-check.js';
import { checkRings } from './ringbuf-check.js';
import { areaGet } from './vmalloc.js';
import { vmaGet } from './vma.js';
import { mergeableLocked } from './vma-merge.js';
import { bug } from './bug.js';

function fail(message: string): never {
  bug(`checkInvariants: ${message}`);
}

/**
 * A free frame's owner word says zeroed or dirty, nothing else; a zeroed one must hold zeros. Only
 * its first and last words are probed: a full read of every free frame would cost a page fault per
 * untouched frame of a large kernel, and a frame handed out and written without its owner word
 * saying so is written at one end or the other by every path that writes frames.
 */
function checkFreeFrame(mem: PhysMem, pfn: number): void {
  const owner = frameOwner(mem, pfn);
  if (owner === FREE_DIRTY) return;
  if (owner !== FREE_ZEROED) fail(`free frame ${pfn} has owner word ${owner}`);
  const first = (pfn * PAGE_SIZE) / 4;
  const last = first + PAGE_SIZE / 4 - 1;
  if (mem.i32[first] !== 0 || mem.i32[last] !== 0)
    fail(`free frame ${pfn} is marked zeroed (never handed out) but holds data`);
}

/**
 * Check every frame against the references the kernel structures account for.
 * `expectedRefs[pfn]` is the number of references the caller found for each frame.
 */
function checkFrames(mem: PhysMem, expectedRefs: Int32Array): void {
  const { i32, layout } = mem;
  const { totalFrames, metadataFrames } = layout;
  const deferred = new Uint8Array(totalFrames);
  let nrDeferred = 0;
  for (
    let cur = Atomics.load(i32, Hdr.DEFER_HEAD);
    cur !== 0;
    cur = Atomics.load(i32, mem.frameTable + (cur - 1) * FRAME_WORDS + Frame.LINK)
  ) {
    if (deferred[cur - 1] || nrDeferred > totalFrames)
      fail(`the deferred list has a cycle at frame ${cur - 1}`);
    deferred[cur - 1] = 1;
    nrDeferred++;
  }
  let clear = 0;
  for (let pfn = 0; pfn < totalFrames; pfn++) {
    const refs = frameRefcount(mem, pfn);
    const inUse = frameInUse(mem, pfn);
    const kind = frameKind(mem, pfn);
    if (!inUse) clear++;
    if (pfn < metadataFrames) {
      if (!inUse || refs !== 1 || kind !== FrameKind.META) {
        fail(`metadata frame ${pfn} is not held (refs ${refs}, kind ${kind})`);
      }
      continue;
    }
    if (deferred[pfn]) {
      if (!inUse || refs !== 0 || kind !== FrameKind.DEFERRED)
        fail(`deferred frame ${pfn}: refs ${refs}, kind ${kind}`);
      continue;
    }
    if (kind === FrameKind.INFLIGHT || kind === FrameKind.DEFERRED)
      fail(
        `frame ${pfn} is ${kind === FrameKind.INFLIGHT ? 'in flight' : 'deferred'} outside any call or list`,
      );
    if (inUse !== refs > 0)
      fail(`frame ${pfn}: bitmap says ${inUse ? 'used' : 'free'}, refs ${refs}`);
    if ((kind === FrameKind.FREE) !== (refs === 0))
      fail(`frame ${pfn}: owner kind ${kind}, refs ${refs}`);
    if (kind === FrameKind.FREE) checkFreeFrame(mem, pfn);
    if (refs !== expectedRefs[pfn]) {
      fail(
        `frame ${pfn} (kind ${kind}) has ${refs} references, the structures account for ${expectedRefs[pfn]}`,
      );
    }
  }
  const free = Atomics.load(i32, Hdr.FREE_FRAMES);
  if (free !== clear) fail(`freeFrames is ${free} but ${clear} frames are free in the bitmap`);
  if (Atomics.load(i32, Hdr.DEFERRED_FRAMES) !== nrDeferred)
    fail(`DEFERRED_FRAMES is wrong (${nrDeferred} on the list)`);
}

/** Check the thread table: no recovery running, no call in flight, reader count right. */
function checkThreads(mem: PhysMem): void {
  const { i32 } = mem;
  if (Atomics.load(i32, Hdr.RECOVERY) !== 0) fail('a recovery is running');
  let readers = 0;
  for (let slot = 0; slot < mem.layout.maxThreads; slot++) {
    const base = mem.threadTable + slot * THREAD_WORDS;
    const state = Atomics.load(i32, base + Thread.STATE);
    if (state === ThreadState.FREE) continue;
    if (state !== ThreadState.OUT)
      fail(`thread slot ${slot} is in state ${state} (a call in flight, or dead and not reaped)`);
    if (Atomics.load(i32, base + Thread.UNDO_LEN) !== 0)
      fail(`thread slot ${slot} has an uncommitted undo log`);
    if (Atomics.load(i32, base + Thread.RCU_NESTING) > 0) readers++;
  }
  if (Atomics.load(i32, Hdr.RCU_READERS) !== readers)
    fail(`RCU_READERS is wrong (${readers} threads in a section)`);
}

/** Check the vmalloc areas; adds each backed page's reference to `refs`. */
function checkAreas(mem: PhysMem, refs: Int32Array): void {
  const { i32, layout } = mem;
  const seen = new Uint8Array(layout.maxAreas);
  let count = 0;
  let pages = 0;
  let prev = 0;
  let prevEnd = 0;
  for (
    let cur = Atomics.load(i32, Hdr.AREA_HEAD);
    cur !== 0;
    cur = areaGet(mem, cur - 1, Area.NEXT)
  ) {
    const slot = cur - 1;
    if (seen[slot]) fail(`area list has a cycle at slot ${slot}`);
    seen[slot] = 1;
    const start = areaGet(mem, slot, Area.START);
    const nr = areaGet(mem, slot, Area.NR_PAGES);
    if (nr <= 0) fail(`area slot ${slot} on the live list has ${nr} pages`);
    if (areaGet(mem, slot, Area.PREV) !== prev) fail(`area slot ${slot} has a wrong PREV link`);
    if (start < prevEnd)
      fail(`area slot ${slot} at page ${start} overlaps the previous area or its guard`);
    if (start + nr + 1 > layout.vmallocPages) fail(`area slot ${slot} runs past the vmalloc range`);
    for (let p = start; p < start + nr + 1; p++) {
      if (Atomics.load(i32, mem.areaMap + p) !== cur)
        fail(`area map of page ${p} does not name slot ${slot}`);
    }
    for (let p = start; p < start + nr; p++) {
      const pte = Atomics.load(i32, mem.kernelPageTable + p);
      if (pte === 0) fail(`area slot ${slot} page ${p - start} has no kernel PTE`);
      const pfn = ptePfn(pte);
      if (pfn < layout.metadataFrames || pfn >= layout.totalFrames)
        fail(`kernel PTE of page ${p} names frame ${pfn}`);
      refs[pfn]!++;
      if (frameKind(mem, pfn) !== FrameKind.VMALLOC)
        fail(`frame ${pfn} of an area is not owned by vmalloc`);
    }
    if (Atomics.load(i32, mem.kernelPageTable + start + nr) !== 0)
      fail(`guard page of area slot ${slot} is mapped`);
    count++;
    pages += nr;
    prev = cur;
    prevEnd = start + nr + 1;
  }
  if (count !== Atomics.load(i32, Hdr.NR_AREAS)) fail(`NR_AREAS is wrong (${count} on the list)`);
  if (pages !== Atomics.load(i32, Hdr.VMALLOC_USED_PAGES))
    fail(`VMALLOC_USED_PAGES is wrong (${pages})`);
  // nothing outside live areas is mapped or owned
  for (let p = 0; p < layout.vmallocPages; p++) {
    const owner = Atomics.load(i32, mem.areaMap + p);
    if (owner !== 0 && !seen[owner - 1]) fail(`area map of page ${p} names dead slot ${owner - 1}`);
    if (owner === 0 && Atomics.load(i32, mem.kernelPageTable + p) !== 0)
      fail(`kernel PTE of page ${p} is outside any area`);
  }
  let free = 0;
  for (
    let cur = Atomics.load(i32, Hdr.AREA_FREE_HEAD);
    cur !== 0;
    cur = areaGet(mem, cur - 1, Area.NEXT)
  ) {
    if (seen[cur - 1]) fail(`area slot ${cur - 1} is both live and free`);
    seen[cur - 1] = 1;
    free++;
  }
  if (free + count !== layout.maxAreas)
    fail(`area slots: ${count} live + ${free} free != ${layout.maxAreas}`);
}

/** Check one live address space; adds PTE and table references to `refs`. */
function checkMm(
  mem: PhysMem,
  slot: number,
  refs: Int32Array,
  vmaOwner: Int32Array,
  mapcounts: Int32Array,
): number {
  const pgd = mmGet(mem, slot, Mm.PGD);
  const { layout } = mem;
  if (frameKind(mem, pgd) !== FrameKind.PAGE_TABLE)
    fail(`mm ${slot + 1}: pgd ${pgd} is not a page-table frame`);
  refs[pgd]!++;
  const tables = tableFramesLocked(mem, pgd);
  for (const pt of tables) {
    if (frameKind(mem, pt) !== FrameKind.PAGE_TABLE)
      fail(`mm ${slot + 1}: table ${pt} is not a page-table frame`);
    refs[pt]!++;
  }
  if (tables.length !== mmGet(mem, slot, Mm.NR_PT)) fail(`mm ${slot + 1}: NR_PT is wrong`);
  forEachPde(mem, pgd, (dir, pde) => {
    // a huge entry maps an aligned run of 1024 frames (its pages are checked one by one below)
    if (pdeIsHuge(pde) && !slotAligned(ptePfn(pde)))
      fail(`mm ${slot + 1}: huge entry of slot ${dir} names unaligned frame ${ptePfn(pde)}`);
  });
  const vmas = vmaSlotsLocked(mem, slot);
  if (vmas.length !== mmGet(mem, slot, Mm.NR_VMAS)) fail(`mm ${slot + 1}: NR_VMAS is wrong`);
  let prevEnd = 1;
  const ranges: [number, number, number][] = [];
  for (const v of vmas) {
    if (vmaOwner[v] !== 0) fail(`VMA slot ${v} is on two lists`);
    vmaOwner[v] = slot + 1;
    if (vmaGet(mem, v, VmaWord.MM) !== slot + 1) fail(`VMA slot ${v} does not name mm ${slot + 1}`);
    const s = vmaGet(mem, v, VmaWord.START);
    const e = vmaGet(mem, v, VmaWord.END);
    if (s < prevEnd || e <= s || e > TASK_SIZE / PAGE_SIZE)
      fail(`mm ${slot + 1}: VMA [${s}, ${e}) overlaps, is empty or out of range`);
    prevEnd = e;
    ranges.push([s, e, vmaGet(mem, v, VmaWord.PROT)]);
  }
  checkMerged(mem, slot, vmas);
  let ptes = 0;
  let r = 0;
  forEachPteLocked(mem, pgd, (upage, pte) => {
    while (r < ranges.length && ranges[r]![1] <= upage) r++;
    const range = ranges[r];
    if (range === undefined || upage < range[0])
      fail(`mm ${slot + 1}: PTE of page ${upage} is outside every VMA`);
    const pfn = ptePfn(pte);
    if (pfn < layout.metadataFrames || pfn >= layout.totalFrames)
      fail(`mm ${slot + 1}: PTE names frame ${pfn}`);
    if (pte !== mkPte(pfn, range[2]))
      fail(`mm ${slot + 1}: PTE of page ${upage} does not carry its VMA's protection`);
    // a page of a live area is counted in its area's MAPCOUNT; an orphan page in its refcount
    const kind = frameKind(mem, pfn);
    if (kind === FrameKind.VMALLOC) mapcounts[frameOwner(mem, pfn) >>> OWNER_ID_SHIFT]!++;
    else if (kind === FrameKind.ORPHAN) refs[pfn]!++;
    else fail(`mm ${slot + 1}: PTE of page ${upage} maps frame ${pfn} of kind ${kind}`);
    ptes++;
  });
  if (ptes !== mmGet(mem, slot, Mm.NR_PTES))
    fail(`mm ${slot + 1}: NR_PTES is ${mmGet(mem, slot, Mm.NR_PTES)}, found ${ptes}`);
  return 1 + tables.length;
}

/** No two neighbours of mm `slot` that should be one VMA are left apart (vma-merge.ts). */
function checkMerged(mem: PhysMem, slot: number, vmas: readonly number[]): void {
  for (let i = 1; i < vmas.length; i++) {
    if (mergeableLocked(mem, vmas[i - 1]!, vmas[i]!))
      fail(`mm ${slot + 1}: VMA slots ${vmas[i - 1]} and ${vmas[i]} should have merged`);
  }
}

/** The whole check: locks free, areas, address spaces, VMA pool, then every frame's references. */
export function checkInvariants(mem: PhysMem): void {
  const { i32, layout } = mem;
  for (const lock of [Hdr.VMAP_LOCK, Hdr.VMA_POOL_LOCK, Hdr.MM_TABLE_LOCK]) {
    if (Atomics.load(i32, lock) !== 0)
      fail(`lock word ${lock} is held by thread ${Atomics.load(i32, lock)}`);
  }
  checkThreads(mem);
  const refs = new Int32Array(layout.totalFrames);
  checkAreas(mem, refs);
  const vmaOwner = new Int32Array(layout.maxVmas);
  const mapcounts = new Int32Array(layout.maxAreas);
  let mms = 0;
  let ptFrames = 0;
  for (let slot = 0; slot < layout.maxAddressSpaces; slot++) {
    if (Atomics.load(i32, mmWord(mem, slot, Mm.LOCK)) !== 0)
      fail(`mmap_lock of mm ${slot + 1} is held`);
    if (Atomics.load(i32, mmWord(mem, slot, Mm.TLB_GEN)) & 1) {
      fail(`mm ${slot + 1}: TLB generation is odd (a flush never ended)`);
    }
    if (mmLiveGen(mem, slot) === 0) continue;
    mms++;
    ptFrames += checkMm(mem, slot, refs, vmaOwner, mapcounts);
  }
  if (mms !== Atomics.load(i32, Hdr.NR_MMS)) fail(`NR_MMS is wrong (${mms} live)`);
  for (let a = 0; a < layout.maxAreas; a++) {
    const mapcount = areaGet(mem, a, Area.MAPCOUNT);
    if (mapcount !== mapcounts[a]) {
      fail(`area slot ${a}: MAPCOUNT is ${mapcount}, ${mapcounts[a]} user PTEs map its pages`);
    }
    if (mapcount > 0 && areaGet(mem, a, Area.NR_PAGES) === 0)
      fail(`freed area slot ${a} is still mapped`);
  }
  if (ptFrames !== Atomics.load(i32, Hdr.PT_FRAMES))
    fail(`PT_FRAMES is ${Atomics.load(i32, Hdr.PT_FRAMES)}, found ${ptFrames}`);
  let usedVmas = 0;
  for (let v = 0; v < layout.maxVmas; v++) {
    if (vmaGet(mem, v, VmaWord.MM) === 0) continue;
    usedVmas++;
    if (vmaOwner[v] === 0) fail(`VMA slot ${v} is in use but on no live address space's list`);
  }
  // NR_VMAS counts the slots off the shared pool: in use, or kept in a live thread's stash
  let stashed = 0;
  const inStash = new Uint8Array(layout.maxVmas);
  for (let t = 0; t < layout.maxThreads; t++) {
    const base = mem.threadTable + t * THREAD_WORDS;
    const free = Atomics.load(i32, base + Thread.STATE) === ThreadState.FREE;
    for (let k = 0; k < VMA_STASH_SLOTS; k++) {
      const v = Atomics.load(i32, base + Thread.VMA_STASH + k) - 1;
      if (v < 0) continue;
      if (free) fail(`free thread slot ${t} keeps VMA slot ${v} in its stash`);
      if (v >= layout.maxVmas || inStash[v] === 1)
        fail(`thread slot ${t}: bad or repeated VMA slot ${v} in its stash`);
      inStash[v] = 1;
      if (vmaGet(mem, v, VmaWord.MM) !== 0) fail(`stashed VMA slot ${v} is in use`);
      stashed++;
    }
  }
  for (
    let cur = Atomics.load(i32, Hdr.VMA_FREE_HEAD);
    cur !== 0;
    cur = vmaGet(mem, cur - 1, VmaWord.NEXT)
  ) {
    if (inStash[cur - 1] === 1) fail(`VMA slot ${cur - 1} is both stashed and in the pool`);
  }
  if (usedVmas + stashed !== Atomics.load(i32, Hdr.NR_VMAS))
    fail(
      `NR_VMAS is ${Atomics.load(i32, Hdr.NR_VMAS)}, ${usedVmas} in use + ${stashed} in stashes`,
    );
  checkSlabs(mem, refs);
  checkFrames(mem, refs);
  checkRings(mem);
}
