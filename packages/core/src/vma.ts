/**
 * VMAs: the mapped ranges of an address space, and the slot pool they live in.
 *
 * Kernel counterpart: `struct vm_area_struct` and `vm_area_alloc`/`vm_area_free`
 * (`kernel/fork.c`), `find_vma` (`mm/mmap.c`).
 *
 * VMA records live in one table in shared memory. A free slot is on the pool's free list
 * (`Hdr.VMA_FREE_HEAD`, an llist: slots are given back lock-free and taken under
 * **vma_pool_lock**); a live slot belongs to one address space and is
 * linked into its list sorted by address (`Mm.VMA_HEAD`), and all its words are written under that
 * address space's **mmap_lock** (plain stores, published by the lock's release; `Vma` getters
 * read them lock-free with `Atomics.load`, a snapshot: aligned Int32 accesses never tear).
 * `VmaWord.GEN` is bumped whenever a slot is freed: a `Vma` handle whose generation no longer
 * matches is stale and is refused by every call that takes one.
 *
 * @module
 */
import { PAGE_SHIFT } from './errno.js';
import { Hdr, Thread, VMA_STASH_SLOTS, VMA_WORDS, VmaWord } from './layout.js';
import { llistAdd, llistDelFirst } from './llist.js';
import { spinLock, spinUnlock } from './lock.js';
import type { PhysMem } from './phys-mem.js';
import { txStore } from './thread.js';

/** Index of a VMA record's word. */
export function vmaWord(mem: PhysMem, slot: number, word: VmaWord): number {
  return mem.vmaTable + slot * VMA_WORDS + word;
}

/** Read a VMA word. Context: the owner's mmap_lock held (a plain read: the lock orders it). */
export function vmaGet(mem: PhysMem, slot: number, word: VmaWord): number {
  return mem.i32[vmaWord(mem, slot, word)]!;
}

/** Read a VMA word without the lock: an `Atomics.load` snapshot. Context: any thread. */
export function vmaLoad(mem: PhysMem, slot: number, word: VmaWord): number {
  return Atomics.load(mem.i32, vmaWord(mem, slot, word));
}

/** Write a VMA word (logged for undo inside a transaction). Context: the owner's mmap_lock held. */
export function vmaSet(mem: PhysMem, slot: number, word: VmaWord, value: number): void {
  txStore(mem, vmaWord(mem, slot, word), value);
}

/** Boot-time setup: every VMA slot on the free list. Context: boot, before sharing. */
export function initVmas(mem: PhysMem): void {
  const { maxVmas } = mem.layout;
  for (let slot = 0; slot < maxVmas; slot++) {
    mem.i32[vmaWord(mem, slot, VmaWord.NEXT)] = slot + 1 < maxVmas ? slot + 2 : 0;
  }
  mem.i32[Hdr.VMA_FREE_HEAD] = 1;
}

/**
 * Take `n` free VMA slots, all or nothing (`vm_area_alloc`); null when the pool is short. Slots
 * come from this thread's stash first (no shared word touched), the rest from the shared pool.
 * Context: any thread; takes vma_pool_lock only when the stash is short (the lock serialises
 * takers; givers are lock-free). Never waits on a lock after taking a slot off the stash, so a
 * recovery never finds a live thread holding slots that are neither stashed nor linked.
 */
export function reserveVmaSlots(mem: PhysMem, n: number): number[] | null {
  const out: number[] = [];
  if (n === 0) return out;
  const stashed = stashLen(mem);
  if (stashed < n && !refillStash(mem, n - stashed)) return null;
  const { i32 } = mem;
  const len = stashLen(mem);
  if (len >= n) {
    // this thread's own words: published for a recovery by the VMA_STASH_LEN store
    for (let k = 0; k < n; k++) out.push(i32[mem.threadBase + Thread.VMA_STASH + len - 1 - k]!);
    Atomics.store(i32, mem.threadBase + Thread.VMA_STASH_LEN, len - n);
    return out;
  }
  // no stash (a thread without a slot): straight from the pool
  return takeFromPool(mem, n);
}

/** Slots in this thread's stash (0 for a thread without a thread slot). */
function stashLen(mem: PhysMem): number {
  return mem.threadBase < 0 ? 0 : mem.i32[mem.threadBase + Thread.VMA_STASH_LEN]!;
}

/** Take `n` slots off the shared pool, all or nothing; null when it is short. */
function takeFromPool(mem: PhysMem, n: number): number[] | null {
  const out: number[] = [];
  const link = (slot: number): number => vmaWord(mem, slot, VmaWord.NEXT);
  spinLock(mem, Hdr.VMA_POOL_LOCK);
  while (out.length < n) {
    const slot = llistDelFirst(mem.i32, Hdr.VMA_FREE_HEAD, link);
    if (slot < 0) break;
    out.push(slot);
  }
  if (out.length < n) {
    for (const slot of out) llistAdd(mem.i32, Hdr.VMA_FREE_HEAD, link(slot), slot);
  }
  spinUnlock(mem, Hdr.VMA_POOL_LOCK);
  if (out.length < n) return null;
  // Hdr.NR_VMAS counts the slots off the pool: in use, or in a thread's stash
  Atomics.add(mem.i32, Hdr.NR_VMAS, n);
  return out;
}

/**
 * Move `n` slots from the pool into this thread's stash (if it has one and room). False when the
 * pool is short; true, having done nothing, for a thread whose stash cannot take them.
 */
function refillStash(mem: PhysMem, n: number): boolean {
  if (mem.threadBase < 0 || stashLen(mem) + n > VMA_STASH_SLOTS) return true;
  const slots = takeFromPool(mem, n);
  if (slots === null) return false;
  for (const slot of slots) stashPush(mem, slot);
  return true;
}

/** Append a free slot to this thread's stash (the caller checked there is room). */
function stashPush(mem: PhysMem, slot: number): void {
  const { i32 } = mem;
  const len = stashLen(mem);
  i32[mem.threadBase + Thread.VMA_STASH + len] = slot;
  Atomics.store(i32, mem.threadBase + Thread.VMA_STASH_LEN, len + 1);
}

/** Give one slot back to the shared pool. Context: any thread, lock-free. */
function giveToPool(mem: PhysMem, slot: number): void {
  llistAdd(mem.i32, Hdr.VMA_FREE_HEAD, vmaWord(mem, slot, VmaWord.NEXT), slot);
  Atomics.sub(mem.i32, Hdr.NR_VMAS, 1);
}

/**
 * Give VMA slots back (`vm_area_free`): to this thread's stash while it has room, else to the
 * shared pool; each slot's generation is bumped so that old handles go stale.
 * Context: any thread, lock-free; the slots are unreachable from any list.
 */
export function releaseVmaSlots(mem: PhysMem, slots: readonly number[]): void {
  const { i32 } = mem;
  for (const slot of slots) {
    Atomics.add(i32, vmaWord(mem, slot, VmaWord.GEN), 1);
    Atomics.store(i32, vmaWord(mem, slot, VmaWord.MM), 0);
    if (mem.threadBase >= 0 && stashLen(mem) < VMA_STASH_SLOTS) stashPush(mem, slot);
    else giveToPool(mem, slot);
  }
}

/** Empty this thread's stash into the shared pool (at detach). Context: the owning thread. */
export function drainVmaStash(mem: PhysMem): void {
  const { i32 } = mem;
  for (let len = stashLen(mem); len > 0; len--) {
    const slot = i32[mem.threadBase + Thread.VMA_STASH + len - 1]!;
    Atomics.store(i32, mem.threadBase + Thread.VMA_STASH_LEN, len - 1);
    giveToPool(mem, slot);
  }
}

/**
 * A mapped range of an address space (`struct vm_area_struct`). A small handle: its getters read
 * shared memory, so after a split they report the new bounds. A `Vma` whose range was wholly
 * unmapped, or whose address space was destroyed, is stale.
 */
export class Vma {
  /** @internal */
  readonly mem: PhysMem;
  /** @internal the VMA slot */
  readonly slot: number;
  /** @internal the slot generation this handle was made for */
  readonly gen: number;

  /** @internal */
  constructor(mem: PhysMem, slot: number, gen: number) {
    this.mem = mem;
    this.slot = slot;
    this.gen = gen;
  }

  /** True while the VMA is mapped. Context: any thread, lock-free snapshot. */
  get live(): boolean {
    return (
      vmaLoad(this.mem, this.slot, VmaWord.GEN) === this.gen &&
      vmaLoad(this.mem, this.slot, VmaWord.MM) !== 0
    );
  }

  /** First user address of the VMA (`vm_start`). */
  get start(): number {
    return vmaLoad(this.mem, this.slot, VmaWord.START) * 2 ** PAGE_SHIFT;
  }

  /** End user address, exclusive (`vm_end`). */
  get end(): number {
    return vmaLoad(this.mem, this.slot, VmaWord.END) * 2 ** PAGE_SHIFT;
  }

  /** `PROT_*` the VMA grants. */
  get prot(): number {
    return vmaLoad(this.mem, this.slot, VmaWord.PROT);
  }

  /** `VM_*` VMA flags (`vm_flags`). */
  get flags(): number {
    return vmaLoad(this.mem, this.slot, VmaWord.FLAGS);
  }

  /** @internal the owning mm slot + 1 (0 when the slot is free). */
  get mmId(): number {
    return vmaLoad(this.mem, this.slot, VmaWord.MM);
  }
}
